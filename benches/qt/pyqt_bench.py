#!/usr/bin/env python3
"""Qt 6.11's QSharedMemory life cycle, through PyQt6 (the wheels ci/setup-venv.sh installs).

Debian's Qt 6.4 (benches/qt/qt_bench.cpp) has no POSIX backend; Qt 6.6+ does. This measures
Qt 6.11's create+detach and attach+detach on both backends, so that qshm's POSIX life cycle
has a Qt figure on the same backend, and the System V rows show what the Python layer adds
next to qt_bench's C++ figures for Qt 6.4 (a PyQt call costs well under a microsecond; a life
cycle tens of microseconds).

Output: one JSON line per benchmark, {"id", "iters", "times"} with times in ns per sample,
the shape of qt_bench's lines and criterion's sample.json. PYQT_BENCH_QUICK=1: a smoke run.

    "$(ci/setup-venv.sh)" benches/qt/pyqt_bench.py >> target/qt_bench.jsonl
"""
import json
import os
import sys
import time

from PyQt6.QtCore import QNativeIpcKey, QSharedMemory

QUICK = os.environ.get("PYQT_BENCH_QUICK") == "1"
SAMPLES = 2 if QUICK else 30
SAMPLE_NS = 5e6 if QUICK else 100e6  # aim per sample
T = QNativeIpcKey.Type


def check(ok, what, shm):
    if not ok:
        raise SystemExit(f"pyqt_bench: {what}: {shm.errorString()}")


def run(bench_id, body):
    """Calls body(n) (n iterations) for SAMPLES samples of about SAMPLE_NS each."""
    body(10)  # warm up
    t0 = time.perf_counter_ns()
    body(10)
    per = max((time.perf_counter_ns() - t0) / 10, 1)
    n = max(int(SAMPLE_NS / per), 1)
    times = []
    for _ in range(SAMPLES):
        t0 = time.perf_counter_ns()
        body(n)
        times.append(float(time.perf_counter_ns() - t0))
    print(json.dumps({"id": bench_id, "iters": [n] * SAMPLES, "times": times}), flush=True)
    med = sorted(times)[len(times) // 2] / n
    print(f"{bench_id}: median {med:.0f} ns/iter", file=sys.stderr)


def key(backend, name):
    name = f"qshm-pyqt-bench-{name}-{os.getpid()}"
    if backend == "posix":
        return QNativeIpcKey("/" + name, T.PosixRealtime)
    return QSharedMemory.legacyNativeKey(name, T.SystemV)


def remove_posix(k):
    """Qt leaves POSIX segments behind at the last detach (spec §8.1); a create loop must
    remove each one (one unlink, as qshm's removal also is) before the next create."""
    try:
        os.unlink("/dev/shm" + k.nativeKey())
    except FileNotFoundError:
        pass


def bench_create(backend):
    k = key(backend, "create")
    shm = QSharedMemory(k)

    def body(n):
        for _ in range(n):
            check(shm.create(4096), "create", shm)
            check(shm.detach(), "detach", shm)
            if backend == "posix":
                remove_posix(k)

    try:
        run(f"qt611/{backend}_create_4k", body)
    finally:
        cleanup(backend, k)


def bench_attach(backend):
    k = key(backend, "attach")
    owner, shm = QSharedMemory(k), QSharedMemory(k)
    check(owner.create(4096), "create", owner)

    def body(n):
        for _ in range(n):
            check(shm.attach(), "attach", shm)
            check(shm.detach(), "detach", shm)

    try:
        run(f"qt611/{backend}_attach", body)
    finally:
        owner.detach()
        cleanup(backend, k)


def cleanup(backend, k):
    """Leaves nothing behind: the segment and the lock's semaphore (POSIX), or the key files
    (System V, whose objects Qt's last detach removes)."""
    native = k.nativeKey()
    if backend == "posix":
        remove_posix(k)
        for f in os.listdir("/dev/shm"):
            if f.startswith("sem." + native[1:]):
                os.unlink("/dev/shm/" + f)


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    for backend in ("sysv", "posix"):
        if only in f"qt611/{backend}_create_4k":
            bench_create(backend)
        if only in f"qt611/{backend}_attach":
            bench_attach(backend)


if __name__ == "__main__":
    main()
