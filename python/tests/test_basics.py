"""SharedMemory in one process: create/attach/detach, errors, the guard, pickling."""

import pickle
import threading

import pytest

import qshm


@pytest.mark.parametrize("kind", ["systemv", "posix"])
def test_create_attach_write_read(shm, key, kind):
    k = key()
    a = shm(k, type=kind)
    a.create(4096)
    assert a.is_attached and a.size == 4096 and a.key == k and a.type == kind
    assert a.native_key.startswith(kind + ":")
    with a.lock() as g:
        assert len(g) == 4096 and g[0] == 0 and not g.owner_died
        g[0:5] = b"hello"
        g[10] = 7
    b = shm(k, type=kind)
    b.attach(readonly=True)
    assert b.readonly is True
    with b.lock() as g:
        assert g[0:5] == b"hello" and g[10] == 7 and g.read(0, 5) == b"hello"
        assert g[-4096] == ord("h") and g[0:10:2] == b"hlo\0\0"
    b.detach()
    a.detach()
    assert not a.is_attached and a.size == 0
    with pytest.raises(FileNotFoundError) as e:
        shm(k, type=kind).attach()
    assert isinstance(e.value, qshm.Error) and e.value.kind == "NotFound"


def test_errors_have_kinds_and_builtins(shm, key):
    k = key()
    a = shm(k)
    a.create(16)
    with pytest.raises(FileExistsError) as e:
        shm(k).create(16)
    assert isinstance(e.value, qshm.AlreadyExistsError) and e.value.kind == "AlreadyExists"
    assert e.value.errno is not None
    with pytest.raises(qshm.Error) as e:
        shm(key()).create(0)
    assert e.value.kind == "InvalidSize"
    with pytest.raises(qshm.Error) as e:
        shm(key()).lock()
    assert e.value.kind == "LockError"
    with pytest.raises(qshm.Error) as e:
        qshm.SharedMemory.from_native("nonsense:/x")
    assert e.value.kind == "KeyError"
    with pytest.raises(qshm.Error) as e:
        qshm.SharedMemory("x", type="nonsense")
    assert e.value.kind == "KeyError"


def test_try_lock_and_timeout_raise_builtins(shm, key):
    k = key()
    a = shm(k)
    a.create(8)
    b = shm(k)
    b.attach()
    got = {}

    def other_thread():
        with pytest.raises(BlockingIOError) as e:
            b.try_lock()
        got["kind"] = e.value.kind
        with pytest.raises(TimeoutError) as e:
            b.lock(timeout=0.2)
        got["timeout"] = e.value.kind

    with a.lock():
        t = threading.Thread(target=other_thread)
        t.start()
        t.join(10)
    assert got == {"kind": "WouldBlock", "timeout": "Timeout"}
    with b.lock(timeout=1):
        pass


def test_second_lock_in_same_thread_is_refused(shm, key):
    a = shm(key())
    a.create(8)
    with a.lock():
        with pytest.raises(qshm.Error) as e:
            a.lock(timeout=0.1)
        assert e.value.kind == "LockError"


def test_guard_after_unlock_refuses(shm, key):
    a = shm(key())
    a.create(8)
    with a.lock() as g:
        g[0] = 1
    assert not g.locked
    for op in (lambda: g[0], lambda: g.__setitem__(0, 1), lambda: len(g), lambda: g.read()):
        with pytest.raises(qshm.Error) as e:
            op()
        assert e.value.kind == "LockError"
    with pytest.raises(qshm.Error):
        memoryview(g)
    g.unlock()  # again: nothing to do


def test_numpy_frombuffer(shm, key):
    np = pytest.importorskip("numpy")
    a = shm(key())
    a.create(8 * 16)
    with a.lock() as g:
        arr = np.frombuffer(g, dtype=np.uint64)
        arr[:] = np.arange(16, dtype=np.uint64)
        del arr  # the export ends inside the block
    with a.lock() as g:
        assert np.frombuffer(g, dtype=np.uint64).tolist() == list(range(16))
        assert int.from_bytes(g[8:16], "little") == 1
        assert g.exports == 0  # the temporary array is gone


def test_read_only_attachment_refuses_writes(shm, key):
    k = key()
    a = shm(k)
    a.create(16)
    b = shm(k)
    b.attach(readonly=True)
    with b.lock() as g:
        assert not g.writable
        with pytest.raises(TypeError):
            g[0] = 1
        with pytest.raises(TypeError):
            g[0:2] = b"ab"
        with pytest.raises(TypeError):
            g.write(b"x")
        v = memoryview(g)
        assert v.readonly
        with pytest.raises(TypeError):
            v[0] = 1
        np = pytest.importorskip("numpy")
        arr = np.frombuffer(g, dtype=np.uint8)
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 1
        del v, arr


def test_create_read_only_then_write_refused(shm, key):
    a = shm(key())
    a.create(16, readonly=True)
    with a.lock() as g:
        with pytest.raises(TypeError):
            g[0] = 1


def test_detach_refused_while_guard_alive(shm, key):
    a = shm(key())
    a.create(16)
    g = a.lock()
    with pytest.raises(qshm.Error) as e:
        a.detach()
    assert e.value.kind == "LockError"
    g.unlock()
    a.detach()


def test_guard_keeps_segment_mapped_after_handle_is_gone(key):
    m = qshm.SharedMemory(key())
    m.create(16)
    g = m.lock()
    del m  # the guard still holds the segment
    g[0] = 5
    assert g[0] == 5
    g.unlock()  # unlocks, then the segment is detached (last user: destroyed)


def test_slices_and_bounds(shm, key):
    a = shm(key())
    a.create(10)
    with a.lock() as g:
        with pytest.raises(IndexError):
            g[10]
        with pytest.raises(ValueError):
            g[0:3] = b"ab"
        with pytest.raises(ValueError):
            g[0] = 256
        with pytest.raises(ValueError):
            g.read(5, 6)
        g.write(bytearray(b"12"), 8)
        assert g[8:] == b"12" and g.read(8) == b"12"


def test_pickle_passes_the_key(shm, key):
    k = key()
    a = shm(k, type="posix")
    a.create(8)
    b = pickle.loads(pickle.dumps(a))
    assert b.key == k and b.type == "posix" and not b.is_attached
    assert b.native_key == a.native_key
    n = qshm.SharedMemory.from_native(f"posix:/{key()}")
    assert pickle.loads(pickle.dumps(n)).native_key == n.native_key


def test_repr_and_context_manager(key):
    k = key()
    with qshm.SharedMemory(k) as m:
        m.create(32)
        assert "attached" in repr(m) and k in repr(m)
        with m.lock() as g:
            assert "locked" in repr(g)
        assert "unlocked" in repr(g)
    assert not m.is_attached and "not attached" in repr(m)


def test_help_reads_like_the_docs():
    assert "QSharedMemory" in qshm.SharedMemory.__doc__
    assert "timeout" in qshm.SharedMemory.lock.__doc__
    assert "memoryview" in qshm.LockGuard.__doc__
    assert "kind" in qshm.Error.__doc__


def test_threads_increment_exactly(shm, key):
    k = key()
    a = shm(k)
    a.create(8)
    n, per = 4, 5000

    def work():
        for _ in range(per):
            with a.lock() as g:
                v = int.from_bytes(g[0:8], "little")
                g[0:8] = (v + 1).to_bytes(8, "little")

    threads = [threading.Thread(target=work) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with a.lock() as g:
        assert int.from_bytes(g[0:8], "little") == n * per


def test_wait_releases_the_gil(shm, key):
    k = key()
    a = shm(k)
    a.create(8)
    done = threading.Event()
    g = a.lock()

    def waiter():
        with a.lock(timeout=10):
            done.set()

    t = threading.Thread(target=waiter)
    t.start()
    # This thread keeps running Python code while the other waits for the lock.
    spins = 0
    for _ in range(200000):
        spins += 1
    g.unlock()
    t.join(10)
    assert done.is_set() and spins == 200000


def test_exports_are_counted_and_bytes_copy(shm, key):
    a = shm(key())
    a.create(4)
    with a.lock() as g:
        g[0:4] = b"abcd"
        assert bytes(g) == b"abcd" and g.exports == 0  # bytes() releases its export
        v = memoryview(g)
        w = v[1:3]
        assert g.exports == 1 and bytes(w) == b"bc"
        w.release()
        v.release()
        assert g.exports == 0
        g[0] = ord("z")  # still reaches the (now staged) bytes
    with a.lock() as g:
        assert g[0:4] == b"zbcd"
