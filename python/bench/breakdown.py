#!/usr/bin/env python3
"""Where a ``posix:`` create+detach goes, call by call: qshm against
``multiprocessing.shared_memory``, the library's lock semaphore alone, and the raw calls.

    python python/bench/breakdown.py      # after pip install ./python (release build)

Each cycle of each contender runs in turn (interleaved, so that a passing load weighs on
all alike), first with no child process (so without multiprocessing, whose first segment
starts its resource tracker, a child process), then with the tracker running: qshm's
detach, making sure no other process uses the segment before removing it, looks through
its children's ``/proc`` entries. Per-call percentiles (p10, p50) in microseconds.
"""

from __future__ import annotations

import mmap
import os
import time

import _posixshmem  # multiprocessing.shared_memory's own shm_open / shm_unlink

import qshm

N = int(os.environ.get("PYTHON_BENCH_N", "3000"))
pc = time.perf_counter_ns


def run(label: str, with_mp: bool) -> None:
    # Each run uses new names: multiprocessing's tracker unlinks nothing here (every
    # segment is unlinked by its cycle), and qshm's are removed by their last detach.
    name = f"qpybd{os.getpid()}_{int(with_mp)}"
    native = f"posix:/{name}"
    from multiprocessing import shared_memory

    r: dict[str, list[int]] = {}

    def add(k: str, v: int) -> None:
        r.setdefault(k, []).append(v)

    for _ in range(N):
        t0 = pc()
        m = qshm.SharedMemory.from_native(native)
        t1 = pc()
        m.create(4096)
        t2 = pc()
        m.detach()
        t3 = pc()
        add("qshm SharedMemory.from_native()", t1 - t0)
        add("qshm create(4096)", t2 - t1)
        add("qshm detach()", t3 - t2)
        add("qshm total", t3 - t0)
        if with_mp:
            t0 = pc()
            s = shared_memory.SharedMemory(name=name, create=True, size=4096)
            t1 = pc()
            s.close()
            s.unlink()
            t2 = pc()
            add("mp SharedMemory(create=True)", t1 - t0)
            add("mp close() + unlink()", t2 - t1)
            add("mp total", t2 - t0)
        t0 = pc()
        sem = qshm.SystemSemaphore.from_native(f"posix:/s{name}", 1, create=True)
        del sem  # the owner removes it
        add("qshm lock semaphore alone (SystemSemaphore create + remove)", pc() - t0)
        t0 = pc()
        fd = _posixshmem.shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.ftruncate(fd, 4096)
        mm = mmap.mmap(fd, 4096)
        mm.close()
        os.close(fd)
        _posixshmem.shm_unlink("/" + name)
        add("raw shm_open+ftruncate+mmap+munmap+close+shm_unlink", pc() - t0)
    print(f"{label}:")
    for k, v in r.items():
        v.sort()
        print(f"  {k:60} p10 {v[len(v) // 10] / 1000:7.1f}  p50 {v[len(v) // 2] / 1000:7.1f}")


def main() -> None:
    from multiprocessing import resource_tracker

    run("no child process (so no multiprocessing)", with_mp=False)
    resource_tracker.ensure_running()  # a child process, as with any multiprocessing use
    run("multiprocessing's resource tracker running (a child process)", with_mp=True)


if __name__ == "__main__":
    main()
