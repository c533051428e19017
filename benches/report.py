#!/usr/bin/env python3
"""Writes BENCHMARKS.md from one run: criterion's sample.json files and qt_bench's lines.

    report.py <target/criterion> <qt_bench.jsonl> <command that produced them>

Every figure is the median over samples of (sample time / sample iterations), with the
interquartile range as its spread; every ratio divides two medians of the same run.
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

GIB = 1 << 30

# Qt's figures, placed into the groups of the criterion suite: qt id -> (group/id, factor
# that turns qt's ns per iteration into the group's unit of work).
QT = {
    "qt/lock_unlock": ("uncontended/qt", 1),
    "qt/attach_detach": ("lifecycle/qt_attach", 1),
    "qt/create_detach_4k": ("lifecycle/qt_create_4k", 1),
    "qt/create_attach_1g": ("large/qt_1g", 1),
    "qt/create_attach_8g": ("large/qt_8g", 1),
    "qt/handoff": ("handoff/qt", 1),
    "qt/contended": ("contended/qt", 1),  # qt's iterations are increments already
    "qt/first_read_1g": ("first_read/qt", 1),
    "qt/first_read_1g_readonly": ("first_read/qt_read", 1),
    # Qt 6.11 through PyQt6 (benches/qt/pyqt_bench.py): Debian's Qt 6.4 has no POSIX backend.
    "qt611/sysv_create_4k": ("lifecycle/qt611_sysv_create_4k", 1),
    "qt611/sysv_attach": ("lifecycle/qt611_sysv_attach", 1),
    "qt611/posix_create_4k": ("lifecycle/qt611_posix_create_4k", 1),
    "qt611/posix_attach": ("lifecycle/qt611_posix_attach", 1),
}

# Per group: title, what one unit is, how to show it, the rows (id, description) and the
# baselines every row is compared with.
GROUPS = [
    ("uncontended", "Uncontended lock + unlock (one thread, nobody else)", "ns", 1, [
        ("floor_cas_store", "floor: CAS acquire + release store (a spin lock, cannot sleep)"),
        ("floor_futex_lock", "floor: bare futex CAS lock (CAS acquire, swap release, wake if contended)"),
        ("raw_sem_wait_post", "raw glibc `sem_wait` + `sem_post` (named semaphore)"),
        ("raw_semop_undo", "raw System V `semop(-1)` + `semop(+1)`, `SEM_UNDO`"),
        ("pthread_robust", "glibc robust process-shared `pthread_mutex_t`"),
        ("raw_sync", "`shared_memory` + `raw_sync` mutex (Rust peer)"),
        ("qt", "Qt 6.4 `QSharedMemory::lock()` + `unlock()` (System V)"),
        ("qshm_sysv", "qshm `SharedMemory::lock()` + drop, System V (Qt's lock)"),
        ("qshm_posix", "qshm `SharedMemory::lock()` + drop, POSIX (Qt's lock + owner record)"),
        ("qshm_posix_checked", "the same with `set_check_size_on_lock(true)` (one `fstat` per lock)"),
        ("qshm_mapped_memfd", "qshm `MappedSegment::lock()` + drop, sealed memfd (robust in-segment lock)"),
        ("qshm_mapped_file_unchecked", "the same on a /dev/shm file, `check_size_on_lock(false)`"),
        ("qshm_mapped_file", "the same with the default size check (one `fstat` per lock)"),
        ("qshm_protocol_c_x1000", "the in-segment protocol in C (`include/qshm.h`), per pair"),
    ], ["floor_futex_lock", "raw_sem_wait_post", "raw_semop_undo"]),
    ("handoff", "Hand-off: two processes take turns through the lock (µs per round trip)", "µs", 1e-3, [
        ("futex_pingpong", "floor: raw futex wait/wake ping-pong, no lock"),
        ("futex_spin_lock", "baseline: plain spin-then-futex lock"),
        ("pthread_robust", "glibc robust process-shared mutex"),
        ("raw_sync", "`shared_memory` + `raw_sync` mutex"),
        ("qt", "Qt 6.4 `QSharedMemory` lock"),
        ("qshm_sysv", "qshm System V (Qt's lock)"),
        ("qshm_posix", "qshm POSIX (Qt's lock + owner record)"),
        ("qshm_mapped", "qshm in-segment robust lock (memfd)"),
    ], ["futex_spin_lock", "futex_pingpong"]),
    ("wakeup", "Change notification: two processes take turns waiting for each other's change, nobody spins (µs per round trip, two wake-ups)", "µs", 1e-3, [
        ("futex_sleep_pingpong", "baseline: raw shared futex word, increment + `FUTEX_WAKE`, `FUTEX_WAIT` for the answer"),
        ("qshm_notify_mapped", "qshm `Notifier::notify` + `wait`, memfd header"),
        ("qshm_notify_posix", "qshm `Notifier` through a POSIX segment's companion"),
        ("async_10000_waiters", "10 000 tokio tasks pending on `Notifier::changed`: one notify until all have finished (not a round trip; no baseline)"),
    ], ["futex_sleep_pingpong"]),
    ("contended", "Contended: two processes increment one counter under the lock (M increments/s; totals checked)", "Mops", None, [
        ("futex_spin_lock", "baseline: plain spin-then-futex lock"),
        ("pthread_robust", "glibc robust process-shared mutex"),
        ("raw_sync", "`shared_memory` + `raw_sync` mutex"),
        ("qt", "Qt 6.4 `QSharedMemory` lock"),
        ("qshm_sysv", "qshm System V (Qt's lock)"),
        ("qshm_posix", "qshm POSIX"),
        ("qshm_mapped", "qshm in-segment robust lock (memfd)"),
    ], ["futex_spin_lock"]),
    ("lifecycle", "Segment life cycle (µs per pair)", "µs", 1e-3, [
        ("raw_sysv_create_4k", "raw System V: `shmget` + `shmat` + `shmdt` + `IPC_RMID`, 4 KiB"),
        ("qt_create_4k", "Qt 6.4 `create(4096)` + `detach()`"),
        ("qshm_sysv_create_4k", "qshm `create(4096)` + `detach()`, System V (Qt's protocol)"),
        ("raw_sysv_attach", "raw System V: `shmget` + `shmat` + `IPC_STAT` + `shmdt`"),
        ("qt_attach", "Qt 6.4 `attach()` + `detach()`"),
        ("qshm_sysv_attach", "qshm `attach()` + `detach()`, System V"),
        ("qt611_sysv_create_4k", "Qt 6.11 (PyQt6) `create(4096)` + `detach()`, System V: what Python adds next to `qt_create_4k`"),
        ("qt611_sysv_attach", "Qt 6.11 (PyQt6) `attach()` + `detach()`, System V"),
        ("raw_posix_create_4k", "raw POSIX: `shm_open` + `ftruncate` + `mmap` + `munmap` + `shm_unlink`"),
        ("raw_posix_create_4k_sem", "the same with its lock: `sem_open(O_CREAT)` before, `sem_close` + `sem_unlink` after (Qt's POSIX protocol, no redundant call)"),
        ("qt611_posix_create_4k", "Qt 6.11 (PyQt6) `create(4096)` + `detach()` + `unlink` of the segment Qt leaves, POSIX"),
        ("qshm_posix_create_4k", "qshm `create(4096)` + `detach()`, POSIX (last-user check and removal of segment and lock included)"),
        ("qshm_posix_create_4k_keep", "the same with `LastDetach::Keep` (Qt's POSIX policy) + `force_remove`"),
        ("raw_posix_attach", "raw POSIX: `shm_open` + `fstat` + `mmap` + `munmap`"),
        ("qt611_posix_attach", "Qt 6.11 (PyQt6) `attach()` + `detach()`, POSIX"),
        ("qshm_posix_attach", "qshm `attach()` + `detach()`, POSIX"),
        ("qshm_memfd_create_4k", "qshm `MappedSegment::memfd(4096)` + drop"),
        ("qshm_file_create_4k", "qshm `MappedSegment::create_temporary(4096)` + drop"),
        ("qshm_file_open", "qshm `FileOptions::open` + drop"),
        ("shared_memory_create_4k", "`shared_memory` crate: create 4 KiB + drop"),
        ("shared_memory_open", "`shared_memory` crate: open + drop"),
    ], ["raw_sysv_create_4k", "raw_sysv_attach", "qt_create_4k", "qt_attach", "qt611_posix_create_4k", "qt611_posix_attach"]),
    ("large", "Large segments: create(N) + attach by a second handle + both detach (µs)", "µs", 1e-3, [
        (f"{k}_{s}", f"{d}, {s.replace('k', ' KiB').replace('g', ' GiB')}")
        for k, d in [("raw_sysv", "raw System V"), ("qt", "Qt 6.4"), ("qshm_sysv", "qshm System V"),
                     ("raw_posix", "raw POSIX"), ("qshm_posix", "qshm POSIX"), ("qshm_memfd", "qshm memfd")]
        for s in ["4k", "1g", "8g"]
    ], ["raw_sysv_4k", "qshm_sysv_4k"]),
    ("bulk", "Bulk: one process writes 1 GiB through a 64 MiB segment, another reads it (GB/s)", "GBs", None, [
        ("memcpy_floor", "floor: the same two copies per byte, `memcpy` in one process"),
        ("qshm_sysv", "qshm System V"),
        ("qshm_posix", "qshm POSIX"),
        ("qshm_mapped", "qshm memfd"),
    ], ["memcpy_floor"]),
    ("queue_roundtrip", "Queue round trip: a 64-byte message to another process and back, over two queues (µs)", "µs", 1e-3, [
        ("futex_pingpong", "floor: raw futex wait/wake ping-pong (the `handoff` floor, measured again here)"),
        ("qshm_queue", "qshm `queue::Sender::send` + `Receiver::recv_into`, each way (memfd)"),
    ], ["futex_pingpong"]),
    ("queue_64", "Queue throughput, 64-byte messages, producer and consumer in two processes (ns per message)", "ns", 1, [
        ("qshm_queue", "qshm `queue` (256 KiB ring, memfd)"),
        ("iceoryx2", "iceoryx2 0.10 publish-subscribe (`[u8]` slices, 256-sample buffer, back-pressure `RetryUntilDelivered`, busy-polling subscriber)"),
        ("uds", "Unix stream socket (one `write`, one `read_exact` per message)"),
        ("pipe", "pipe (one `write`, one `read_exact` per message)"),
    ], ["iceoryx2", "uds", "pipe"]),
    ("queue_64k", "Queue throughput, 64 KiB messages, producer and consumer in two processes (µs per message)", "µs", 1e-3, [
        ("qshm_queue", "qshm `queue` (1 MiB ring, memfd)"),
        ("iceoryx2", "iceoryx2 0.10 publish-subscribe (as above)"),
        ("uds", "Unix stream socket"),
        ("pipe", "pipe"),
    ], ["iceoryx2", "uds", "pipe"]),
    ("cell", "Latest-value cell: an uncontended read of a 64-byte value (ns)", "ns", 1, [
        ("memcpy_64", "floor: a plain 64-byte copy"),
        ("qshm_cell_read", "qshm `cell::Reader::read` (seqlock: two sequence loads, eight relaxed 64-bit loads, a fence)"),
    ], ["memcpy_64"]),
    ("first_read", "First read: a fresh process attaches to a 1 GiB segment another wrote and reads it once (GB/s)", "GBs", None, [
        ("qt", "Qt 6.4: attach + read"),
        ("qt_read", "Qt 6.4: the read alone"),
        ("qshm_sysv", "qshm System V: attach + read"),
        ("qshm_sysv_read", "qshm System V: the read alone"),
        ("qshm_sysv_populate", "qshm System V, `set_populate(true)`: attach + read"),
        ("qshm_sysv_populate_read", "the read alone"),
        ("qshm_posix", "qshm POSIX: attach + read"),
        ("qshm_posix_read", "the read alone"),
        ("qshm_posix_populate", "qshm POSIX, `set_populate(true)`: attach + read"),
        ("qshm_posix_populate_read", "the read alone"),
    ], ["qt"]),
]

# Work per criterion iteration where it is not one unit: (group/id prefix) -> units.
PER_ITER = {"contended/": 2, "uncontended/qshm_protocol_c_x1000": 1000}

GOALS = [
    # (text, numerator id, denominator id, kind, bound); kind "time" compares ns per unit
    # (numerator / denominator must be <= bound), "rate" compares throughput (>= bound).
    ("System V `lock()`+unlock within 1.05× of a raw `semop` pair", "uncontended/qshm_sysv", "uncontended/raw_semop_undo", "time", 1.05),
    ("POSIX `lock()`+unlock within 1.2× of raw `sem_wait`/`sem_post`", "uncontended/qshm_posix", "uncontended/raw_sem_wait_post", "time", 1.2),
    ("System V `attach()`+`detach()` at most 0.75× Qt's", "lifecycle/qshm_sysv_attach", "lifecycle/qt_attach", "time", 0.75),
    ("System V `create(4 KiB)`+`detach()` at most 0.75× Qt's", "lifecycle/qshm_sysv_create_4k", "lifecycle/qt_create_4k", "time", 0.75),
    ("POSIX `attach()`+`detach()` at most 0.75× Qt's (Qt 6.11 through PyQt6)", "lifecycle/qshm_posix_attach", "lifecycle/qt611_posix_attach", "time", 0.75),
    ("POSIX `create(4 KiB)`+`detach()` at most 0.75× Qt's (Qt 6.11 through PyQt6)", "lifecycle/qshm_posix_create_4k", "lifecycle/qt611_posix_create_4k", "time", 0.75),
    ("In-segment lock uncontended within 2× of the bare futex CAS lock", "uncontended/qshm_mapped_memfd", "uncontended/floor_futex_lock", "time", 2.0),
    ("In-segment lock uncontended within 2× of a CAS + store spin lock (stricter floor)", "uncontended/qshm_mapped_memfd", "uncontended/floor_cas_store", "time", 2.0),
    ("In-segment lock hand-off within 1.3× of a spin-then-futex turn", "handoff/qshm_mapped", "handoff/futex_spin_lock", "time", 1.3),
    ("Change notification wake-up within 1.3× of a raw futex ping-pong (memfd header)", "wakeup/qshm_notify_mapped", "wakeup/futex_sleep_pingpong", "time", 1.3),
    ("Change notification wake-up within 1.3× of a raw futex ping-pong (POSIX companion)", "wakeup/qshm_notify_posix", "wakeup/futex_sleep_pingpong", "time", 1.3),
    ("In-segment lock contended throughput at least 0.8× a plain futex lock", "contended/qshm_mapped", "contended/futex_spin_lock", "rate", 0.8),
    ("System V 8 GiB create+attach within 2× of 4 KiB", "large/qshm_sysv_8g", "large/qshm_sysv_4k", "time", 2.0),
    ("POSIX 8 GiB create+attach within 2× of 4 KiB", "large/qshm_posix_8g", "large/qshm_posix_4k", "time", 2.0),
    ("memfd 8 GiB create+attach within 2× of 4 KiB", "large/qshm_memfd_8g", "large/qshm_memfd_4k", "time", 2.0),
    ("Warm bulk copy ≥ 90 % of memcpy, System V", "bulk/qshm_sysv", "bulk/memcpy_floor", "rate", 0.9),
    ("Warm bulk copy ≥ 90 % of memcpy, POSIX", "bulk/qshm_posix", "bulk/memcpy_floor", "rate", 0.9),
    ("Warm bulk copy ≥ 90 % of memcpy, memfd", "bulk/qshm_mapped", "bulk/memcpy_floor", "rate", 0.9),
    ("Queue round trip of 64 B within 1.5× of the futex ping-pong", "queue_roundtrip/qshm_queue", "queue_roundtrip/futex_pingpong", "time", 1.5),
    ("Queue throughput, 64 B, at least iceoryx2's publish-subscribe", "queue_64/qshm_queue", "queue_64/iceoryx2", "rate", 1.0),
    ("Queue throughput, 64 KiB, at least iceoryx2's publish-subscribe", "queue_64k/qshm_queue", "queue_64k/iceoryx2", "rate", 1.0),
    ("Queue throughput, 64 B, ahead of a Unix stream socket", "queue_64/qshm_queue", "queue_64/uds", "rate", 1.0),
    ("Queue throughput, 64 KiB, ahead of a pipe", "queue_64k/qshm_queue", "queue_64k/pipe", "rate", 1.0),
    ("Cell read of 64 B within 2× of a plain 64-byte copy", "cell/qshm_cell_read", "cell/memcpy_64", "time", 2.0),
    ("Populated first read of 1 GiB ≥ 3× faster than Qt's, System V (attach + read)", "first_read/qshm_sysv_populate", "first_read/qt", "rate", 3.0),
    ("Populated first read of 1 GiB ≥ 3× faster than Qt's, System V (the read alone)", "first_read/qshm_sysv_populate_read", "first_read/qt_read", "rate", 3.0),
    ("Populated first read of 1 GiB ≥ 3× faster than Qt's, POSIX (attach + read; Qt 6.4 is System V only)", "first_read/qshm_posix_populate", "first_read/qt", "rate", 3.0),
]


def quantile(xs, q):
    xs = sorted(xs)
    pos = (len(xs) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def per_unit_samples(iters, times, units_per_iter):
    return [t / i / units_per_iter for i, t in zip(iters, times) if i > 0]


def load(criterion_dir, qt_file):
    data = {}
    for path in Path(criterion_dir).glob("*/*/new/sample.json"):
        group, bench = path.parts[-4], path.parts[-3]
        sid = f"{group}/{bench}"
        s = json.loads(path.read_text())
        units = next((u for p, u in PER_ITER.items() if sid.startswith(p)), 1)
        data[sid] = per_unit_samples(s["iters"], s["times"], units)
    if os.path.exists(qt_file):
        for line in open(qt_file):
            line = line.strip()
            if not line:
                continue
            s = json.loads(line)
            if s["id"] in QT:
                sid, units = QT[s["id"]]
                data[sid] = per_unit_samples(s["iters"], s["times"], units)
    return data


def show(ns, unit):
    """A figure in the group's unit (ns per unit of work in, text out)."""
    if unit == "ns":
        return f"{ns:,.2f} ns" if ns < 100 else f"{ns:,.0f} ns"
    if unit == "µs":
        us = ns / 1e3
        return f"{us:,.2f} µs" if us < 100 else f"{us:,.0f} µs"
    if unit == "Mops":
        return f"{1e3 / ns:,.2f} M/s"
    if unit == "GBs":
        return f"{GIB / ns:,.2f} GB/s"
    raise ValueError(unit)


def machine():
    def run(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    cpu = run("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = run("grep MemTotal /proc/meminfo").split()[1:2] or ["?"]
    kernel, rustc = run("uname -sr"), run("rustc --version")
    return (f"{os.cpu_count()} CPUs ({cpu}), {int(mem[0]) >> 20} GiB, {kernel}, "
            f"glibc {platform.libc_ver()[1]}, {rustc}, "
            f"load average {os.getloadavg()[0]:.2f} at the end of the run")


def main():
    criterion_dir, qt_file, command = sys.argv[1], sys.argv[2], sys.argv[3]
    data = load(criterion_dir, qt_file)
    med = {k: quantile(v, 0.5) for k, v in data.items() if v}
    out = []
    w = out.append
    w("# Benchmarks\n")
    w("qshm next to the raw system calls it wraps, Qt's own `QSharedMemory`, the Rust peers and "
      "the physical floor, all measured in **one run** of")
    w(f"\n```sh\n{command}\n```\n")
    w("(`cargo bench -p qshm-benches` for the criterion part alone; `benches/qt/qt_bench.cpp` is "
      "Qt's side, built against Debian's `qt6-base-dev` (Qt 6.4, System V only); "
      "`benches/qt/pyqt_bench.py` measures Qt 6.11's life cycle on both backends through PyQt6.) "
      "Generated by `benches/report.py`; do not edit by hand.\n")
    w(f"**Machine**: {machine()}. A shared, virtualised machine: expect ±20 % between runs; "
      "the ratios, taken within one run, are the result.\n")
    w("**Figures**: the median over samples of the time per unit of work, with the interquartile "
      "range (p25–p75 of the samples) as spread. Ratios divide medians. A missing figure (—) "
      "was not measured in this run.\n")

    w("## Goals\n")
    w("| goal | measured | bound | |\n|---|---:|---:|---|")
    for text, num, den, kind, bound in GOALS:
        if num in med and den in med:
            r = med[num] / med[den] if kind == "time" else med[den] / med[num]
            ok = r <= bound if kind == "time" else r >= bound
            w(f"| {text} | {r:.2f}× | {'≤' if kind == 'time' else '≥'} {bound}× | {'met' if ok else '**missed**'} |")
        else:
            w(f"| {text} | — | {bound}× | not measured |")
    w("")

    for group, title, unit, _scale, rows, baselines in GROUPS:
        w(f"## {title}\n")
        rate = unit in ("Mops", "GBs")
        bl = [b for b in baselines if f"{group}/{b}" in med]
        head = "| benchmark | | median | spread (p25–p75) |" + "".join(
            f" {'×' if not rate else 'rate ×'} `{b}` |" for b in bl)
        w(head)
        w("|---|---|---:|---:|" + "---:|" * len(bl))
        for rid, desc in rows:
            sid = f"{group}/{rid}"
            if sid not in med:
                w(f"| `{rid}` | {desc} | — | — |" + " — |" * len(bl))
                continue
            xs = data[sid]
            m = med[sid]
            lo, hi = quantile(xs, 0.25), quantile(xs, 0.75)
            if rate:
                lo, hi = hi, lo
            ratios = "".join(
                f" {(m / med[f'{group}/{b}'] if not rate else med[f'{group}/{b}'] / m):.3g} |" for b in bl)
            w(f"| `{rid}` | {desc} | {show(m, unit)} | {show(lo, unit)} – {show(hi, unit)} |{ratios}")
        w("")
        footprint = Path(criterion_dir).parent / "async_waiters.json"
        if group == "wakeup" and footprint.exists():
            f = json.loads(footprint.read_text())
            w(f"{f['waiters']:,} pending `changed` futures added {f['threads']} thread(s) "
              f"(the notifier's helper) and {f['rss_kb'] / 1024:.1f} MiB of resident memory "
              "(the tasks, their futures and wakers) to the process.\n")
    notes = Path(__file__).with_name("NOTES.md")
    if notes.exists():
        w(notes.read_text())
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
