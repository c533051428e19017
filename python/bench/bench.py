#!/usr/bin/env python3
"""Benchmarks of the qshm Python package against PyQt6 and multiprocessing.shared_memory.

    python python/bench/bench.py              # full run (figures for BENCHMARKS.md)
    PYTHON_BENCH_QUICK=1 python python/bench/bench.py   # a quick run: it only has to work

* ``with m.lock()`` round trip (lock + unlock, the guard made and dropped) against PyQt6's
  ``lock()``/``unlock()`` on the same segment, System V and POSIX legacy keys. PyQt6 runs in
  its own interpreter ($QSHM_PYTHON, else .venv/bin/python), timed there by the same loop.
* ``create(4096)`` + ``detach()`` and ``attach()`` + ``detach()`` of a ``posix:`` key against
  ``multiprocessing.shared_memory.SharedMemory`` (create + close + unlink; open + close)
  on the same names; qshm's create+detach with no child process, then with one (the
  resource tracker), since its detach looks through children's descriptors.

Each figure is the best of ``ROUNDS`` rounds of ``N`` operations, in ns per operation; the
rounds of qshm and ``multiprocessing`` alternate.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import qshm

QUICK = bool(os.environ.get("PYTHON_BENCH_QUICK"))
ROUNDS = 2 if QUICK else 7
N_LOCK = 2_000 if QUICK else 100_000
N_LIFE = 200 if QUICK else 5_000
REPO = Path(__file__).resolve().parents[2]


def best(fn, n: int) -> float:
    """ns per operation: the best of ROUNDS rounds of fn(n)."""
    times = []
    for _ in range(ROUNDS):
        t0 = time.perf_counter_ns()
        fn(n)
        times.append((time.perf_counter_ns() - t0) / n)
    return min(times)


def best_interleaved(fns: dict, n: int) -> dict:
    """ns per operation of each of ``fns``: the best of ROUNDS rounds each, the rounds of
    the contenders alternating, so that a load that comes and goes (a shared machine)
    weighs on both alike."""
    times = {name: [] for name in fns}
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            t0 = time.perf_counter_ns()
            fn(n)
            times[name].append((time.perf_counter_ns() - t0) / n)
    return {name: min(t) for name, t in times.items()}


QT_LOOP = """
import sys, time
from PyQt6.QtCore import QSharedMemory, QNativeIpcKey
m = QSharedMemory()
m.setNativeKey(QNativeIpcKey.fromString(sys.argv[1]))
assert m.attach(), m.errorString()
n, rounds = int(sys.argv[2]), int(sys.argv[3])
times = []
for _ in range(rounds):
    t0 = time.perf_counter_ns()
    for _ in range(n):
        m.lock()
        m.unlock()
    times.append((time.perf_counter_ns() - t0) / n)
print(min(times))
m.detach()
"""


def qt_python() -> str | None:
    env = os.environ.get("QSHM_PYTHON")
    if env:
        return env
    for root in (REPO, REPO.parent / "main"):
        p = root / ".venv" / "bin" / "python"
        if p.exists():
            return str(p)
    return None


def bench_lock(kind: str, qt: str | None) -> tuple[float, float | None]:
    m = qshm.SharedMemory(f"qpybench{os.getpid()}", type=kind)
    m.create(4096)
    try:

        def loop(n):
            lock = m.lock
            for _ in range(n):
                with lock():
                    pass

        # The rounds alternate, one Qt round per run of the Qt interpreter (whose start is
        # not timed), so that a load that comes and goes weighs on both alike.
        ours, theirs = [], []
        for _ in range(ROUNDS):
            t0 = time.perf_counter_ns()
            loop(N_LOCK)
            ours.append((time.perf_counter_ns() - t0) / N_LOCK)
            if qt:
                out = subprocess.run(
                    [qt, "-c", QT_LOOP, m.native_key, str(N_LOCK), "1"],
                    check=True,
                    capture_output=True,
                    text=True,
                    timeout=600,
                ).stdout
                theirs.append(float(out.split()[-1]))
        return min(ours), (min(theirs) if theirs else None)
    finally:
        m.detach()
        if kind == "posix":
            qshm.SharedMemory.force_remove(m.native_key)


def bench_life() -> dict[str, float]:
    from multiprocessing import resource_tracker, shared_memory

    name = f"qpybench{os.getpid()}"
    native = f"posix:/{name}"

    def qshm_create(n):
        for _ in range(n):
            m = qshm.SharedMemory.from_native(native)
            m.create(4096)
            m.detach()

    def mp_create(n):
        for _ in range(n):
            s = shared_memory.SharedMemory(name=name, create=True, size=4096)
            s.close()
            s.unlink()

    # qshm's detach checks that no other process has the segment open before removing it;
    # while this process has a child (multiprocessing's resource tracker is one) it also
    # looks through the children's descriptors in /proc, which costs far more. So qshm is
    # timed twice: with no child process (before the tracker starts), then with one.
    results = {"qshm create+detach, no child": best(qshm_create, N_LIFE)}
    resource_tracker.ensure_running()
    results.update(
        best_interleaved(
            {
                "qshm create+detach, a child": qshm_create,
                "mp create+close+unlink": mp_create,
            },
            N_LIFE,
        )
    )

    # attach + detach of a segment that stays: qshm's, then multiprocessing's.
    keep = qshm.SharedMemory.from_native(native)
    keep.create(4096)
    try:

        def qshm_attach(n):
            for _ in range(n):
                m = qshm.SharedMemory.from_native(native)
                m.attach()
                m.detach()

        def mp_attach(n):
            for _ in range(n):
                s = shared_memory.SharedMemory(name=name)
                s.close()
                # Opening registers the name with the resource tracker (cpython#82300);
                # unregister, or the tracker unlinks the segment at exit. Part of the cost
                # of opening a segment safely on Python < 3.13.
                resource_tracker.unregister(s._name, "shared_memory")

        results.update(
            best_interleaved(
                {
                    "qshm attach+detach, a child": qshm_attach,
                    "mp open+close(+unregister)": mp_attach,
                },
                N_LIFE,
            )
        )
    finally:
        keep.detach()
        qshm.SharedMemory.force_remove(native)
    return results


def main() -> None:
    qt = qt_python()
    if qt and not Path(qt).exists():
        qt = None
    print(f"python {sys.version.split()[0]}, qshm {qshm.__name__}, rounds {ROUNDS}")
    for kind in ("systemv", "posix"):
        ours, theirs = bench_lock(kind, qt)
        line = f"lock round trip {kind:8}: qshm `with m.lock()` {ours:8.0f} ns"
        if theirs is not None:
            line += f", PyQt6 lock()+unlock() {theirs:8.0f} ns, ratio {ours / theirs:.2f}x"
        print(line)
    life = bench_life()
    for k, v in life.items():
        print(f"{k:30}: {v / 1000:8.1f} us")
    mp_create = life["mp create+close+unlink"]
    print(
        f"ratio create: {life['qshm create+detach, no child'] / mp_create:.2f}x with no "
        f"child process, {life['qshm create+detach, a child'] / mp_create:.2f}x with one; "
        f"attach: {life['qshm attach+detach, a child'] / life['mp open+close(+unregister)']:.2f}x "
        "(qshm / multiprocessing)"
    )


if __name__ == "__main__":
    main()
