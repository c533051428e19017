"""Misuse of a lock guard is never silent and never a panic: buffer exports that outlive
the lock (LiveExportsError, a BufferError), guards used from another thread (qshm.Error,
kind "LockError"), odd arguments (TypeError, ValueError, IndexError, OverflowError)."""

import os
import sys
import threading

import pytest

import qshm

PEEK = """
m = qshm.SharedMemory.from_native({native!r})
m.attach()
for line in sys.stdin:
    with m.try_lock() as g:  # raises if the lock were still held
        say(g[0:4].hex())
"""


def test_memoryview_kept_past_the_with_block(shm, key, child):
    """Raises at the end of the block, after releasing the lock and writing back what the
    view wrote under it; then the view reaches a detached copy, never the segment."""
    k = key()
    a = shm(k)
    a.create(64)
    peer = child(PEEK.format(native=a.native_key))
    with pytest.raises(qshm.LiveExportsError) as e:
        with a.lock() as g:
            v = memoryview(g)
            assert not v.readonly and len(v) == 64 and v.format == "B"
            v[0:4] = b"abcd"
            assert g[0:4] == b"abcd"  # indexing sees the exports' copy
            assert g.exports == 1
    # A BufferError (as mmap.close() with exports) that names the problem and the fix.
    assert isinstance(e.value, BufferError) and e.value.kind == "LockError"
    assert "outlived the lock" in str(e.value) and "with memoryview(g) as v:" in str(e.value)
    assert not g.locked and g.exports == 1
    # Another process takes the lock at once (try_lock) and sees what the view wrote
    # before the end of the block.
    peer.send("peek")
    assert peer.line() == b"abcd".hex()
    # Late writes go to the detached copy: the other process sees no change ...
    v[0:4] = b"LATE"
    peer.send("peek")
    assert peer.line() == b"abcd".hex()
    # ... and late reads do not see the segment's new bytes.
    b = shm(k)
    b.attach()
    with b.lock() as h:
        h[0:4] = b"xyzw"
    assert bytes(v[0:4]) == b"LATE"
    peer.send("peek")
    assert peer.line() == b"xyzw".hex()
    # The copy lives as long as the view, even after every detach.
    b.detach()
    a.detach()
    assert bytes(v[0:4]) == b"LATE"
    v.release()
    assert g.exports == 0
    # The peer detaches last (at EOF), removing the segment.
    peer.check()


def test_numpy_array_kept_past_the_with_block(shm, key):
    np = pytest.importorskip("numpy")
    a = shm(key())
    a.create(16)
    with pytest.raises(BufferError):
        with a.lock() as g:
            arr = np.frombuffer(g, dtype=np.uint8)
            arr[0] = 9
    with a.try_lock() as g:
        assert g[0] == 9  # written back at unlock
        g[0] = 1
    assert arr[0] == 9  # the copy, not the segment
    arr[1] = 5  # goes nowhere
    with a.lock() as g:
        assert g[0:2] == b"\x01\x00"
    a.detach()
    assert arr.tolist()[:2] == [9, 5]  # still valid memory after the detach


def test_exports_ended_inside_the_block_are_fine(shm, key):
    np = pytest.importorskip("numpy")
    a = shm(key())
    a.create(8)
    with a.lock() as g:
        with memoryview(g) as v:
            v[0] = 1
        w = memoryview(g)[2:4]  # a slice shares its parent's export
        w[0] = 2
        w.release()
        arr = np.frombuffer(g, dtype=np.uint8)
        arr[4] = 3
        del arr
        assert g.exports == 0
    with a.lock() as g:
        assert g[0:5] == b"\x01\x00\x02\x00\x03"


def test_unlock_with_live_exports_raises_after_unlocking(shm, key):
    a = shm(key())
    a.create(8)
    g = a.lock()
    v = memoryview(g)
    v[0] = 42
    with pytest.raises(qshm.LiveExportsError):
        g.unlock()
    assert not g.locked
    g.unlock()  # again: nothing to do, nothing raised
    with a.try_lock() as h:
        assert h[0] == 42
    v.release()


def test_live_exports_do_not_mask_an_exception_in_flight(shm, key):
    a = shm(key())
    a.create(8)
    with pytest.raises(ZeroDivisionError) as e:
        with a.lock() as g:
            v = memoryview(g)
            v[0] = 7
            1 / 0
    # The block's own exception goes on, with a note (Python 3.11+); the lock is
    # released and the view's write made it back.
    if sys.version_info >= (3, 11):
        assert any("outlived the lock" in n for n in e.value.__notes__)
    assert not g.locked
    with a.try_lock() as h:
        assert h[0] == 7
    v.release()


def test_a_guard_collected_without_unlock_writes_back_and_unlocks(shm, key):
    a = shm(key())
    a.create(8)
    g = a.lock()
    v = memoryview(g)
    v[0] = 9
    v.release()
    del g
    with a.try_lock() as h:
        assert h[0] == 9


def test_guard_used_from_another_thread_raises_a_typed_error(shm, key):
    a = shm(key())
    a.create(8)
    g = a.lock()
    seen = []

    def other():
        ops = [
            lambda: g[0],
            lambda: g.__setitem__(0, 1),
            lambda: g[0:2],
            lambda: g.read(),
            lambda: g.write(b"x"),
            lambda: len(g),
            lambda: memoryview(g),
            g.mark_consistent,
            g.unlock,
            lambda: g.__exit__(None, None, None),
        ]
        for op in ops:
            try:
                op()
                seen.append("no error")
            except BaseException as e:
                seen.append((type(e), getattr(e, "kind", None), str(e)))
        seen.append((g.locked, g.exports, g.owner_died, g.writable, "locked" in repr(g)))

    t = threading.Thread(target=other)
    t.start()
    t.join(10)
    *errors, state = seen
    assert len(errors) == 10
    for cls, kind, message in errors:
        assert cls is qshm.Error and kind == "LockError"
        assert "a lock guard belongs to the thread that took it" in message
    assert state == (True, 0, False, True, True)  # nothing touched, nothing unlocked
    assert g[0] == 0
    g.unlock()


def test_a_view_released_in_another_thread_is_counted(shm, key):
    a = shm(key())
    a.create(8)
    with a.lock() as g:
        v = memoryview(g)
        t = threading.Thread(target=v.release)
        t.start()
        t.join(10)
        assert g.exports == 0


def test_guard_collected_on_another_thread_is_reported(key, child):
    native = qshm.SharedMemory(key(), type="posix").native_key
    c = child(
        f"""
        import threading
        m = qshm.SharedMemory.from_native({native!r})
        m.create(8)
        holder = [m.lock()]
        reported = []
        sys.unraisablehook = lambda u: reported.append(u.exc_value)
        t = threading.Thread(target=holder.clear)  # the guard's last reference dies there
        t.start()
        t.join(10)
        e = reported[0]
        say(len(reported), type(e).__name__, e.kind, "another thread" in str(e))
        """
    )
    try:
        assert c.line() == "1 Error LockError True"
        c.check()
    finally:
        qshm.SharedMemory.force_remove(native)


def test_no_misuse_panics(shm, key):
    """Odd arguments raise ordinary exceptions, never PyO3's PanicException (which is a
    BaseException: `except Exception` lets it through)."""
    a = shm(key())
    a.create(16)
    odd = [0, -1, -17, 16, 2**31, 2**63, 2**64, 10**30, -(10**30), 1.5, None, "3", b"x", True,
           float("nan"), float("inf")]
    outcomes = set()

    def attempt(f):
        try:
            f()
            outcomes.add("ok")
        except Exception as e:
            outcomes.add(type(e).__name__)

    for n in odd:
        with a.lock() as g:
            attempt(lambda: g[n])
            attempt(lambda: g.__setitem__(n, n))
            attempt(lambda: g[n:n])
            attempt(lambda: g[::n])
            attempt(lambda: g[n::-1])
            attempt(lambda: g.__setitem__(slice(None, None, n), b"x" * 16))
            attempt(lambda: g.__delitem__(n))
            attempt(lambda: g.read(n))
            attempt(lambda: g.read(0, n))
            attempt(lambda: g.write(n))
            attempt(lambda: g.write(b"ab", n))
        attempt(lambda: a.lock(timeout=n).unlock())
        attempt(lambda: qshm.MappedSegment.memfd("odd", n).detach())
        m = shm(key(), type="posix")
        attempt(lambda: m.create(n))
    for text in ["", "a\0b", "\ud800", "x" * 5000, "/", "posix:/", "systemv:", "posix:/a/b",
                 "windows:x", "posix:/" + "y" * 300]:
        attempt(lambda: qshm.SharedMemory(text))
        attempt(lambda: qshm.SharedMemory.from_native(text).attach())
        attempt(lambda: qshm.SharedMemory.remove_orphan(text))
        attempt(lambda: qshm.MappedSegment.open_file(text))
        attempt(lambda: qshm.MappedSegment.memfd(text, 8).detach())
    assert {"TypeError", "ValueError", "IndexError", "OverflowError", "Error"} <= outcomes


def test_a_segment_shrunk_by_another_process_is_an_error_not_sigbus(shm, key):
    """A peer's ftruncate of a POSIX segment under our mapping: touching the pages that are
    gone would kill the interpreter (SIGBUS). The first touch of the bytes in each lock
    checks the size: indexing, slicing, read, write and buffer exports raise qshm.Error
    (kind "InvalidSize"); a lock that touches nothing still works; a staging copy is not
    written back into a segment shrunk while it was exported (unlock says so, and unlocks)."""
    a = shm(key(), type="posix")
    a.create(65536)
    path = "/dev/shm" + a.native_name
    with a.lock() as g:
        g[0:5] = b"hello"
        v = memoryview(g)
        v[5:7] = b"!!"
        os.truncate(path, 100)  # shrunk while a writable export lives
        v.release()
        with pytest.raises(qshm.Error) as e:
            g.unlock()
        assert e.value.kind == "InvalidSize", e.value
    for touch in [lambda g: g[0], lambda g: g[60000:60005], lambda g: g.read(0, 5),
                  lambda g: g.write(b"x", 0), lambda g: g.__setitem__(3, 1),
                  lambda g: memoryview(g), lambda g: bytes(g)]:
        with a.lock() as g:
            with pytest.raises(qshm.Error) as e:
                touch(g)
            assert e.value.kind == "InvalidSize", e.value
            assert "shrank the segment to 100 bytes" in str(e.value)
    with a.lock():
        pass
    os.truncate(path, 65536)  # whole again (zero-filled past 100)
    with a.lock() as g:
        assert bytes(g[0:7]) == b"hello\0\0"


def test_a_mapped_file_truncated_by_another_process_is_an_error_not_sigbus(cleanup, key):
    """The lock word of a mapped segment is in its file: truncated below it (or below the
    data), the lock is refused with InvalidSize, before and after it would be taken; a
    staging copy is not written back into a file truncated while it was exported."""
    seg = qshm.MappedSegment.create_file(key("qpyseg"), 4096)
    cleanup(lambda: seg.is_attached and seg.detach())
    # Truncated while a writable export lives: the staging copy is not written back.
    with seg.lock() as g:
        v = memoryview(g)
        v[0:2] = b"hi"
        os.truncate(seg.path, 100)
        v.release()
        with pytest.raises(qshm.Error) as e:
            g.unlock()
        assert e.value.kind == "InvalidSize", e.value
    for size in [0, 100, 4096]:
        os.truncate(seg.path, size)
        for take in [seg.lock, seg.try_lock]:
            with pytest.raises(qshm.Error) as e:
                take()
            assert e.value.kind == "InvalidSize", e.value


def test_timeouts(shm, key):
    """None, math.inf and timeouts beyond any clock wait forever (here: a free lock is taken
    at once); a held lock times out after a finite one; negative and NaN ones are a
    ValueError that names what was given."""
    a = shm(key())
    a.create(8)
    for forever in [None, float("inf"), 1e300, 2.0**64]:
        a.lock(timeout=forever).unlock()
    b = shm(a.key)
    b.attach()
    outcome = []

    def contend():
        try:
            b.lock(timeout=0.05).unlock()
            outcome.append("locked")
        except TimeoutError as e:
            outcome.append(("TimeoutError", getattr(e, "kind", None)))
        except Exception as e:  # noqa: BLE001 (reported below)
            outcome.append(repr(e))

    with a.lock():
        t = threading.Thread(target=contend)
        t.start()
        t.join(30)
    assert outcome == [("TimeoutError", "Timeout")]
    for bad in [-1, -0.001, float("-inf"), float("nan")]:
        with pytest.raises(ValueError, match="timeout must be None or a number of seconds >= 0"):
            a.lock(timeout=bad)


def test_slices_with_steps_and_negative_indices(shm, key):
    a = shm(key())
    a.create(8)
    with a.lock() as g:
        g[:] = bytes(range(8))
        ref = bytearray(range(8))
        for sl in [slice(None, None, -1), slice(None, None, 3), slice(-2, None),
                   slice(6, 1, -2), slice(100, -100, -1), slice(5, 5), slice(0, 0, -1)]:
            assert g[sl] == bytes(ref[sl]), sl
        g[::-2] = b"abcd"
        ref[::-2] = b"abcd"
        assert g[:] == bytes(ref)
        assert g[-1] == ref[-1] and g[True] == ref[1]
        with pytest.raises(IndexError):
            g[-9]
        with pytest.raises(IndexError):
            g[2**100]
        with pytest.raises(TypeError):
            g[1.0]
        with pytest.raises(TypeError):
            g[0] = "a"
        with pytest.raises(ValueError):
            g[0] = 256
        with pytest.raises(TypeError):
            del g[0]
        with pytest.raises(ValueError):
            g[::0]
        g[0:4] = memoryview(g)[4:8]  # a buffer of the guard itself
        g.write(g[4:8], 0)
        g.write(g, 0)
        assert g[0:4] == g[4:8]
        assert g.exports == 0


def test_shared_memory_exit_does_not_mask_an_exception_in_flight(key):
    m = qshm.SharedMemory(key())
    with pytest.raises(KeyError):
        with m:
            m.create(8)
            g = m.lock()  # a live guard: the detach at the end of the block fails
            raise KeyError("the block's own")
    assert m.is_attached
    with pytest.raises(qshm.Error) as e:
        with m:
            pass  # no exception in flight: the failed detach is raised
    assert e.value.kind == "LockError"
    g.unlock()
    m.detach()
