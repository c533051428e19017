"""Interop with real Qt 6 (PyQt6 in its own process, tests/qt/peer.py): segments either
side creates, read-only and read-write, and lock exclusion both ways with timestamps, on
System V and POSIX legacy keys and a ``posix:`` native key."""

import time

import pytest

import qshm

from conftest import dec, enc, unique


def keys():
    """(id, make qshm object, command that gives the Qt peer the same key)."""

    def sysv():
        k = unique()
        return qshm.SharedMemory(k), f"key {enc(k)}"

    def posix_legacy():
        k = unique()
        m = qshm.SharedMemory(k, type="posix")
        # Qt: QSharedMemory.legacyNativeKey(k, PosixRealtime), in its text form.
        return m, f"nkey {enc(m.native_key)}"

    def posix_native():
        text = f"posix:/{unique()}"
        return qshm.SharedMemory.from_native(text), f"nkey {enc(text)}"

    return [("systemv", sysv), ("posix-legacy", posix_legacy), ("posix-native", posix_native)]


KEYS = keys()


@pytest.fixture(params=[k[1] for k in KEYS], ids=[k[0] for k in KEYS])
def pair(request, qt, cleanup):
    m, setkey = request.param()
    # Qt never removes a POSIX segment (nor, when qshm created it, its lock semaphore):
    # remove what is left once both sides are done (cleanup runs last registered first).
    cleanup(lambda: qshm.SharedMemory.force_remove(m.native_key))
    cleanup(lambda: m.is_attached and m.detach())
    peer = qt()
    peer.cmd(setkey)
    return m, peer


def test_qt_creates_qshm_reads_and_writes_back(pair):
    m, peer = pair
    peer.cmd("create 256")
    peer.cmd(f"write 0 {enc(b'from qt')}")
    # Read-only: reads, cannot write.
    ro = qshm.SharedMemory.from_native(m.native_key)
    ro.attach(readonly=True)
    with ro.lock() as g:
        assert g[0:7] == b"from qt" and len(g) == 256
        with pytest.raises(TypeError):
            g[0] = 1
    ro.detach()
    # Read-write: writes back; Qt sees it.
    m.attach()
    assert m.size == 256
    with m.lock() as g:
        assert g[0:7] == b"from qt"
        g[0:9] = b"from qshm"
    _, (hexed,) = peer.cmd("read 0 9")
    assert dec(hexed) == b"from qshm"
    m.detach()
    peer.cmd("detach")


def test_qshm_creates_qt_reads_and_writes_back(pair):
    m, peer = pair
    m.create(128)
    with m.lock() as g:
        g[0:4] = b"qshm"
    peer.cmd("attach ro")
    _, (size,) = peer.cmd("size")
    assert int(size) == 128
    _, (hexed,) = peer.cmd("read 0 4")
    assert dec(hexed) == b"qshm"
    peer.cmd("detach")
    peer.cmd("attach rw")
    peer.cmd("lock")
    peer.cmd(f"write 0 {enc(b'Qt6!')}")
    peer.cmd("unlock")
    with m.lock() as g:
        assert g[0:4] == b"Qt6!"
    peer.cmd("detach")
    m.detach()


def test_lock_excludes_qt_and_qshm_both_ways(pair):
    m, peer = pair
    m.create(64)
    peer.cmd("attach")
    # Qt holds the lock for 300 ms; qshm waits and gets it only after Qt unlocked.
    peer.send("lockhold 300")
    t_locked, _ = peer.recv()
    t0 = time.monotonic_ns()
    with m.lock(timeout=10) as g:
        t_got = time.monotonic_ns()
        g[0] = 1
    t_unlocked, (t_before_unlock,) = peer.recv()
    assert t_got >= int(t_before_unlock) >= t_locked, (t_locked, t_before_unlock, t_got)
    assert t_got - t0 > 100_000_000  # it did wait
    # qshm holds the lock for 300 ms; Qt's lock() returns only after qshm unlocked.
    with m.lock() as g:
        peer.send("lock")
        time.sleep(0.3)
        t_release = time.monotonic_ns()
    t_qt, _ = peer.recv()
    assert t_qt >= t_release, (t_qt, t_release)
    peer.cmd("unlock")
    peer.cmd("detach")
    m.detach()


def test_system_semaphore_with_qt(qt, cleanup):
    peer = qt()
    k = unique()
    sem = qshm.SystemSemaphore(k, initial=0, create=True)
    peer.cmd(f"sem {enc(k)} 0 open")
    peer.send("acquire")  # blocks in Qt until qshm releases
    time.sleep(0.2)
    t_rel = time.monotonic_ns()
    sem.release(1)
    t_acq, _ = peer.recv()
    assert t_acq >= t_rel
    peer.cmd("release 1")
    sem.acquire(timeout=5)
    with pytest.raises(TimeoutError):
        sem.acquire(timeout=0.1)
    peer.cmd("drop")
    del sem
