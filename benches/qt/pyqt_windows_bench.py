"""Qt for Windows' QSharedMemory through PyQt (run by benches/windows.sh with the Windows
CPython under Wine): lock()+unlock(), create+detach and attach+detach, medians of 15 samples
of about 100 ms. Each figure includes the PyQt call layer (well under a microsecond a call;
under Wine every kernel-object call costs microseconds). Usage: python pyqt_windows_bench.py 6|5
"""
import os
import sys
import time

if sys.argv[1:] == ["5"]:
    from PyQt5.QtCore import QSharedMemory, qVersion
else:
    from PyQt6.QtCore import QSharedMemory, qVersion


def measure(name, body):
    body(10)
    t0 = time.perf_counter_ns()
    body(100)
    per = max((time.perf_counter_ns() - t0) / 100, 1)
    n = max(int(100e6 / per), 10)
    samples = []
    for _ in range(15):
        t0 = time.perf_counter_ns()
        body(n)
        samples.append((time.perf_counter_ns() - t0) / n)
    samples.sort()
    med = samples[len(samples) // 2]
    print("Qt %s %s: %.0f ns/iter" % (qVersion(), name, med), flush=True)
    return med


def main():
    key = "qshm-bench-qt-%d" % os.getpid()
    owner = QSharedMemory(key)
    assert owner.create(4096), owner.errorString()

    def lock(n):
        for _ in range(n):
            owner.lock()
            owner.unlock()

    def create(n):
        for _ in range(n):
            s = QSharedMemory(key + "-life")
            assert s.create(4096), s.errorString()
            s.detach()

    def attach(n):
        for _ in range(n):
            s = QSharedMemory(key)
            assert s.attach(), s.errorString()
            s.detach()

    measure("lock() + unlock()", lock)
    measure("create(4096) + detach", create)
    measure("attach + detach (segment held elsewhere)", attach)
    owner.detach()


main()
