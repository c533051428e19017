"""Change notification from Python (qshm.Notifier): across processes on System V, POSIX and
mapped segments, timeouts, Ctrl-C in a wait, the Qt-compatible companion removed with the
segment, and a PyQt6 writer that only writes leaving a waiter to time out."""

import hashlib
import os
import signal
import time

import pytest

import qshm

PONG = """
m = qshm.SharedMemory.from_native({native!r})
m.attach()
n = m.notifier()
say("ready")
for i in range(1, {rounds} + 1):
    while True:
        seen = n.current
        with m.lock() as g:
            if g[0] == i % 256:
                break
        n.wait(seen, timeout=5)
    with m.lock() as g:
        g[1] = i % 256
    n.notify()
say("done")
"""


@pytest.mark.parametrize("kind", ["systemv", "posix"])
def test_ping_pong_across_processes_loses_no_wake_up(shm, key, child, kind):
    m = shm(key(), type=kind)
    m.create(64)
    n = m.notifier()
    rounds = 300
    c = child(PONG.format(native=m.native_key, rounds=rounds))
    assert c.line() == "ready"
    for i in range(1, rounds + 1):
        with m.lock() as g:
            g[0] = i % 256
        n.notify()
        while True:
            seen = n.current
            with m.lock() as g:
                if g[1] == i % 256:
                    break
            n.wait(seen, timeout=5)  # a lost wake-up would raise TimeoutError here
    assert c.line() == "done"
    c.check()


def test_mapped_segment_notifier_in_a_child(cleanup, child):
    seg = qshm.MappedSegment.memfd("notify-py", 64)
    cleanup(seg.detach)
    n = seg.notifier()
    seen = n.current
    c = child(
        """
        seg = qshm.MappedSegment.from_env()
        n = seg.notifier()
        with seg.lock() as g:
            g[0:2] = b"hi"
        say("changed", n.notify())
        """,
        **seg.popen_kwargs(),
    )
    now = n.wait(seen, timeout=20)
    assert now != seen
    assert c.line().startswith("changed ")
    with seg.lock() as g:
        assert g[0:2] == b"hi"
    c.check()


def test_timeouts_are_honoured(shm, key):
    m = shm(key(), type="posix")
    m.create(64)
    n = m.notifier()
    for timeout in (0, 0.05, 0.3):
        seen = n.current
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as e:
            n.wait(seen, timeout=timeout)
        took = time.monotonic() - t0
        assert e.value.kind == "Timeout"
        assert timeout <= took < timeout + 1
    with pytest.raises(ValueError):
        n.wait(n.current, timeout=-1)


def test_not_attached_is_a_typed_error(shm, key):
    m = shm(key())
    with pytest.raises(qshm.Error) as e:
        m.notifier()
    assert e.value.kind == "NotAttached"


def test_ctrl_c_ends_a_wait(shm, key, child):
    m = shm(key(), type="posix")
    m.create(64)
    m.notifier()
    c = child(
        """
        m = qshm.SharedMemory.from_native({native!r})
        m.attach()
        n = m.notifier()
        say("waiting")
        try:
            n.wait(n.current)
        except KeyboardInterrupt:
            say("interrupted")
        """.format(native=m.native_key)
    )
    assert c.line() == "waiting"
    time.sleep(0.2)
    t0 = time.monotonic()
    os.kill(c.proc.pid, signal.SIGINT)
    assert c.line() == "interrupted"
    assert time.monotonic() - t0 < 1
    c.check()


def companion_path(m) -> str:
    """Where docs/notify.md says the companion of ``m``'s segment lives."""
    raw = {"systemv": 0x51, "posix": 0x100}[m.type]
    digest = hashlib.sha1(f"{raw}:{m.native_name}".encode()).hexdigest()
    return f"/dev/shm/qshm-notify-{digest[:24]}"


@pytest.mark.parametrize("kind", ["systemv", "posix"])
def test_the_companion_goes_with_the_segment(shm, key, kind):
    m = shm(key(), type=kind)
    m.create(64)
    path = companion_path(m)
    assert not os.path.exists(path), "no notifier asked: no companion"
    n = m.notifier()
    assert "qshm.Notifier" in repr(n)
    assert os.path.exists(path)
    m.detach()
    assert not os.path.exists(path), "the last detach removes it"
