"""Across Python processes: kill -9 of a lock holder, exact counters, Ctrl-C in a wait,
SystemSemaphore, MappedSegment passed to a child, and multiprocessing.shared_memory."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import qshm

from conftest import REPO, unique

HOLD = """
m = qshm.SharedMemory.from_native({native!r})
m.attach()
g = m.lock()
g[0:4] = b"half"
say("locked")
time.sleep(60)
"""


@pytest.mark.parametrize("kind", ["posix", "systemv"])
def test_kill_9_of_holder_next_locker_gets_it(shm, key, child, kind):
    m = shm(key(), type=kind)
    m.create(64)
    c = child(HOLD.format(native=m.native_key))
    assert c.line() == "locked"
    with pytest.raises(TimeoutError):
        m.lock(timeout=0.1)
    c.sigkill()
    t0 = time.monotonic()
    with m.lock(timeout=5) as g:
        waited = time.monotonic() - t0
        assert g[0:4] == b"half"
        if kind == "posix":
            # qshm's owner record names the dead holder.
            assert g.owner_died
            g.mark_consistent()
        else:
            # System V: the kernel gives the lock back (SEM_UNDO) and says nothing.
            assert not g.owner_died
    assert waited < 1.0, waited
    with m.lock(timeout=1) as g:
        assert not g.owner_died


def qshm_cli():
    """The `qshm` command-line tool if built (QSHM_CLI, or target/{debug,release}/qshm)."""
    env = os.environ.get("QSHM_CLI")
    if env:
        return env
    for d in ("release", "debug"):
        for root in (os.environ.get("CARGO_TARGET_DIR"), REPO / "target"):
            if root and (Path(root) / d / "qshm").exists():
                return str(Path(root) / d / "qshm")
    return None


def test_kill_9_of_python_holder_rust_cli_gets_it(shm, key, child):
    cli = qshm_cli()
    if cli is None:
        pytest.skip("the qshm CLI is not built (cargo build -p qshm-cli), or set QSHM_CLI")
    m = shm(key(), type="posix")
    m.create(64)
    c = child(HOLD.format(native=m.native_key))
    assert c.line() == "locked"
    c.sigkill()
    t0 = time.monotonic()
    out = subprocess.run(
        [cli, "lock", "--native", m.native_key, "--for", "0", "--json"],
        check=True,
        timeout=10,
        capture_output=True,
        text=True,
    ).stdout
    assert time.monotonic() - t0 < 1.5, out  # includes starting the process
    assert '"status":"locked"' in out, out
    # The CLI does not report owner_died, nor repair: the flag stays for the next holder.
    with m.lock(timeout=1) as g:
        assert g.owner_died


def test_kill_9_mapped_holder(cleanup, child):
    seg = qshm.MappedSegment.memfd("kill9", 64)
    cleanup(seg.detach)
    kwargs = seg.popen_kwargs()
    c = child(
        """
        s = qshm.MappedSegment.from_env()
        g = s.lock()
        g[0:4] = b"half"
        say("locked")
        time.sleep(60)
        """,
        **kwargs,
    )
    assert c.line() == "locked"
    with pytest.raises(TimeoutError):
        seg.lock(timeout=0.1)
    c.sigkill()
    t0 = time.monotonic()
    with seg.lock(timeout=5) as g:
        assert time.monotonic() - t0 < 1.0
        assert g.owner_died and g[0:4] == b"half"
        g.mark_consistent()
    with seg.lock() as g:
        assert not g.owner_died


COUNT = """
m = qshm.SharedMemory.from_native({native!r})
m.attach()
say("ready")
sys.stdin.readline()
for _ in range({n}):
    with m.lock() as g:
        v = int.from_bytes(g[0:8], "little")
        g[0:8] = (v + 1).to_bytes(8, "little")
m.detach()
"""


@pytest.mark.parametrize("kind", ["systemv", "posix"])
def test_four_processes_count_exactly(shm, key, child, kind):
    m = shm(key(), type=kind)
    m.create(8)
    n = 10_000
    kids = [child(COUNT.format(native=m.native_key, n=n)) for _ in range(4)]
    for c in kids:
        assert c.line() == "ready"
    for c in kids:
        c.send("go")
    for c in kids:
        c.check(timeout=100)
    with m.lock() as g:
        assert int.from_bytes(g[0:8], "little") == 4 * n


def test_ctrl_c_interrupts_a_wait_and_leaves_nothing_locked(shm, key, child):
    m = shm(key(), type="posix")
    m.create(8)
    c = child(
        """
        m = qshm.SharedMemory.from_native(%r)
        m.attach()
        say("waiting")
        try:
            m.lock()
            say("got it?!")
        except KeyboardInterrupt:
            say("interrupted")
        try:
            m.try_lock()
            say("got it?!")
        except BlockingIOError:
            say("still held by the parent")
        sys.stdin.readline()
        with m.lock(timeout=5) as g:
            g[0] = 42
        say("locked after")
        """
        % m.native_key
    )
    g = m.lock()
    assert c.line() == "waiting"
    time.sleep(0.3)
    t0 = time.monotonic()
    os.kill(c.proc.pid, signal.SIGINT)
    assert c.line() == "interrupted"
    assert time.monotonic() - t0 < 1.0
    assert c.line() == "still held by the parent"
    g.unlock()
    c.send("go")
    assert c.line() == "locked after"
    c.check()
    with m.lock(timeout=1) as g:
        assert g[0] == 42


def test_system_semaphore_across_processes(key, child, cleanup):
    k = key()
    sem = qshm.SystemSemaphore(k, initial=0, create=True)
    c = child(
        """
        s = qshm.SystemSemaphore(%r)
        say("open")
        s.acquire(timeout=10)
        say("acquired")
        s.release(2)
        """
        % k
    )
    assert c.line() == "open"
    time.sleep(0.2)
    sem.release()
    assert c.line() == "acquired"
    c.check()
    sem.acquire(timeout=1)  # the child released 2: one left
    with sem:
        pass
    sem.try_acquire()  # none left
    with pytest.raises(BlockingIOError):
        sem.try_acquire()
    assert "SystemSemaphore" in repr(sem)
    posix = qshm.SystemSemaphore(key(), initial=1, create=True, type="posix")
    posix.acquire(timeout=0)
    with pytest.raises(TimeoutError):
        posix.acquire(timeout=0.05)


def test_mapped_file_and_memfd_child(cleanup, child):
    name = unique("qpyseg")
    seg = qshm.MappedSegment.create_file(name, 128)
    cleanup(lambda: seg.is_attached and seg.detach())
    assert seg.backing == "file" and seg.size == 128 and seg.path.endswith(name)
    with seg.lock() as g:
        g[0:3] = b"abc"
    c = child(
        """
        s = qshm.MappedSegment.open_file(%r)
        with s.lock() as g:
            assert g[0:3] == b"abc"
            g[0:3] = b"xyz"
        s.detach()
        """
        % name
    )
    c.check()
    with seg.lock() as g:
        assert g[0:3] == b"xyz"
    mem = qshm.MappedSegment.memfd("child", 32)
    cleanup(lambda: mem.is_attached and mem.detach())
    c = child(
        """
        s = qshm.MappedSegment.from_env()
        with s.lock() as g:
            g[0:5] = b"child"
        """,
        **mem.popen_kwargs(),
    )
    c.check()
    with mem.lock() as g:
        assert g[0:5] == b"child"
    g = mem.lock()
    with pytest.raises(qshm.Error):
        mem.detach()
    g.unlock()
    mem.detach()
    assert seg.detach() is True  # the last user removes the file
    assert not Path(seg.path or "/nonexistent").exists()


# ------------------------------------------------------------ multiprocessing.shared_memory


def test_multiprocessing_creates_qshm_attaches(shm):
    from multiprocessing import shared_memory

    name = unique("qpymp")
    mp = shared_memory.SharedMemory(name=name, create=True, size=64)
    try:
        mp.buf[0:5] = b"mp->q"
        m = shm(native=f"posix:/{name}")
        m.attach(readonly=True)
        assert m.size == 64
        with m.lock() as g:
            assert g[0:5] == b"mp->q"
        m.detach()
    finally:
        mp.close()
        mp.unlink()  # also unregisters it from the resource tracker
        qshm.SharedMemory.force_remove(f"posix:/{name}")  # the lock semaphore qshm made


MP_OPEN = """
from multiprocessing import shared_memory, resource_tracker
mp = shared_memory.SharedMemory(name={name!r})
say(bytes(mp.buf[0:5]).decode())
if {unregister}:
    # What keeps the segment alive: Python 3.13+ has track=False instead.
    resource_tracker.unregister(mp._name, "shared_memory")
mp.close()
"""


@pytest.mark.parametrize("unregister", [True, False], ids=["unregistered", "tracked"])
def test_qshm_creates_multiprocessing_opens(shm, child, cleanup, unregister):
    name = unique("qpymp")
    # Last: whatever the tracker left of the segment, and the lock semaphore.
    cleanup(lambda: qshm.SharedMemory.force_remove(f"posix:/{name}"))
    m = shm(native=f"posix:/{name}")
    m.create(64)
    with m.lock() as g:
        g[0:5] = b"q->mp"
    c = child(MP_OPEN.format(name=name, unregister=unregister))
    assert c.line() == "q->mp"
    c.check()
    exists = Path(f"/dev/shm/{name}").exists()
    if unregister:
        assert exists
    else:
        # Python's resource tracker unlinked the segment that the child merely opened
        # (cpython#82300): qshm's mapping stays valid, but nobody can attach any more.
        assert not exists
        with m.lock() as g:
            assert g[0:5] == b"q->mp"
    m.detach()
