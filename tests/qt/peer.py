#!/usr/bin/env python3
"""A real Qt peer for qshm's interoperability tests, driven over stdin/stdout.

Usage: python peer.py 6   (PyQt6)
       python peer.py 5   (PyQt5)

No QCoreApplication is created: QSharedMemory and QSystemSemaphore work
without one. Qt's own warnings (e.g. "XDG_RUNTIME_DIR not set") go to stderr;
stdout carries only protocol answers.

Protocol
--------
The peer reads one command per line on stdin and answers exactly one line per
command on stdout (flushed after every line), except `lockhold` (two lines on
success) and `crash` (none). Every answer is

    ok <t> [fields...]
    err <t> <code> <hex message>

where <t> is CLOCK_MONOTONIC in nanoseconds (time.monotonic_ns(), the clock
Rust's std::time::Instant uses on Linux) taken when the operation *completed*.
<code> is Qt's error enum as an int (QSharedMemory::SharedMemoryError or
QSystemSemaphore::SystemSemaphoreError), read with error()/errorString() right
after the call. Qt does not reset them on every call: a call that returned
false without setting an error (detach when not attached, unlock when not
locked, release -1) answers whatever was there before, usually `0` (NoError)
with an empty message (`-`), but e.g. a stale LockError after a failed lock.
A Python exception (bad arguments, unknown command, no semaphore yet, out of
range read/write, ...) answers `err <t> -1 <hex of the exception text>`.

All free-form strings (keys, texts, bytes) are hex-encoded (UTF-8 for text),
both in commands and answers; `-` stands for the empty string.
Numbers are decimal. Modes default to rw / open when omitted.

The peer has one QSharedMemory `mem` (initially default-constructed, no key)
and one QSystemSemaphore `sem` (initially none).

  key <hex>                  mem.setKey(k)  (Qt legacy key, Qt's default type:
                             System V on these wheels)
  nkey <hex>                 Qt6: mem.setNativeKey(QNativeIpcKey.fromString(t))
                             ("systemv:/path", "posix:/name", ...; text that
                             does not parse gives an empty, invalid key);
                             Qt5: mem.setNativeKey(t)  (raw native key; Qt5
                             has no lock semaphore then: lock fails, code 6)
  info                       ok <t> <hex mem.nativeKey()>
                                    <hex mem.nativeIpcKey().toString() | - on Qt5>
                                    <hex mem.key()>
  keys <hex k>               derives keys without touching mem:
                             ok <t> <hex QSharedMemory(k).nativeKey()>
                                    <hex QSystemSemaphore.legacyNativeKey(k).nativeKey()
                                         | - on Qt5>
                                    <hex QSharedMemory.legacyNativeKey(k, PosixRealtime)
                                         .nativeKey() | - on Qt5>
                                    <hex QSharedMemory.platformSafeKey(k, SystemV)
                                         .nativeKey() | - on Qt5>
                                    <hex QSharedMemory.platformSafeKey(k, PosixRealtime)
                                         .nativeKey() | - on Qt5>
                                    <hex QSharedMemory.legacyNativeKey(k).toString()
                                         | - on Qt5>
                                    <hex QSharedMemory.platformSafeKey(k).nativeKey()
                                         | - on Qt5>  (the platform's default type)
                                    <hex QSharedMemory.platformSafeKey(k).toString()
                                         | - on Qt5>
                             platformSafeKey(k, SystemV) is a path in
                             $XDG_RUNTIME_DIR; unset, Qt warns on stderr and
                             uses (and creates) /tmp/runtime-<user>.
  create <size> [ro|rw]      mem.create(size, mode)
  attach [ro|rw]             mem.attach(mode)
  detach                     mem.detach()
  lock                       mem.lock()
  unlock                     mem.unlock()
  size                       ok <t> <mem.size()>
  attached                   ok <t> 0|1
  read <offset> <len>        ok <t> <hex bytes>  (from mem.constData(), no locking)
  write <offset> <hex>       write into mem.data(), no locking. Writing into a
                             read-only attachment kills the peer with SIGSEGV.
  incr <offset> <n>          n times: lock(); u64 little-endian at offset += 1;
                             unlock(). ok <t> at the end (for counting tests).
  sleep <ms>                 sleep, then ok <t>  (`sleep 0` is a clock ping)
  lockhold <ms>              lock(); answer `ok <t_locked>` at once; sleep ms;
                             unlock(); answer a SECOND line
                             `ok <t_unlocked> <t_just_before_unlock>`
                             (or `err ...` if unlock failed). If lock() fails
                             there is only the one `err` line. Commands sent
                             meanwhile are read after the second line.
  sem <hex key> <initial> [create|open]
                             sem = QSystemSemaphore(k, initial, mode) (legacy
                             key). The previous sem is destroyed first (its
                             destructor may remove the semaphore it created).
                             Answers err if sem.error() is set after the
                             construction, ok otherwise.
  nsem <hex native key text> <initial> [create|open]
                             Qt6 only: the same with
                             QSystemSemaphore(QNativeIpcKey.fromString(t), ...)
  acquire                    sem.acquire()
  release [n]                sem.release(n)  (n defaults to 1)
  drop                       destroys mem and sem (running Qt's destructors:
                             QSharedMemory's detaches and may remove the
                             segment) and makes a fresh default mem, no sem.
  pid                        ok <t> <os.getpid()>
  version                    ok <t> <qVersion()> <PYQT_VERSION_STR>
                             (not hex: e.g. `ok <t> 6.11.2 6.11.0`)
  exit                       destroys mem and sem, answers ok <t> (t after the
                             destructors ran), exits with status 0.
  crash                      os.kill(getpid(), SIGKILL): no answer, no destructors.

On EOF of stdin the peer destroys mem and sem (Qt destructors run) and exits 0.
"""

import os
import signal
import struct
import sys
import time
import traceback

if len(sys.argv) != 2 or sys.argv[1] not in ("5", "6"):
    sys.stderr.write("usage: peer.py 5|6\n")
    sys.exit(2)

QT6 = sys.argv[1] == "6"

if QT6:
    from PyQt6 import sip
    from PyQt6.QtCore import (
        PYQT_VERSION_STR,
        QNativeIpcKey,
        QSharedMemory,
        QSystemSemaphore,
        qVersion,
    )
else:
    from PyQt5 import sip
    from PyQt5.QtCore import (
        PYQT_VERSION_STR,
        QSharedMemory,
        QSystemSemaphore,
        qVersion,
    )

    QNativeIpcKey = None


class Fail(Exception):
    """A Qt call failed: carries Qt's error code and errorString."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def enc(text):
    """Hex of the UTF-8 of text; '-' for empty or None."""
    if not text:
        return "-"
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    return bytes(text).hex()


def dec_bytes(field):
    return b"" if field == "-" else bytes.fromhex(field)


def dec(field):
    return dec_bytes(field).decode("utf-8")


def code_of(e):
    """Qt enum -> int (PyQt6 enums are Python enums, PyQt5's are ints)."""
    return int(getattr(e, "value", e))


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def now():
    return time.monotonic_ns()


def shm_mode(args, i):
    m = args[i] if len(args) > i else "rw"
    if m == "ro":
        return QSharedMemory.AccessMode.ReadOnly
    if m == "rw":
        return QSharedMemory.AccessMode.ReadWrite
    raise ValueError("mode must be ro or rw, got %r" % m)


def sem_mode(args, i):
    m = args[i] if len(args) > i else "open"
    if m == "create":
        return QSystemSemaphore.AccessMode.Create
    if m == "open":
        return QSystemSemaphore.AccessMode.Open
    raise ValueError("mode must be create or open, got %r" % m)


class Peer:
    def __init__(self):
        self.mem = QSharedMemory()
        self.sem = None

    # -- helpers ---------------------------------------------------------

    def check(self, result):
        """Raise Fail unless the QSharedMemory call returned true."""
        if not result:
            raise Fail(code_of(self.mem.error()), self.mem.errorString())

    def check_sem(self, result):
        if not result:
            raise Fail(code_of(self.sem.error()), self.sem.errorString())

    def need_sem(self):
        if self.sem is None:
            raise RuntimeError("no semaphore: use `sem` or `nsem` first")
        return self.sem

    def span(self, offset, length):
        size = self.mem.size()
        if offset < 0 or length < 0 or offset + length > size:
            raise ValueError(
                "range %d+%d outside the segment (size %d)" % (offset, length, size)
            )

    def const_ptr(self):
        p = self.mem.constData()
        if p is None or int(p) == 0:
            raise RuntimeError("not attached (constData() is null)")
        p.setsize(self.mem.size())
        return p

    def ptr(self):
        p = self.mem.data()
        if p is None or int(p) == 0:
            raise RuntimeError("not attached (data() is null)")
        p.setsize(self.mem.size())
        return p

    def destroy(self):
        """Run the C++ destructors of mem and sem now."""
        if self.sem is not None:
            sip.delete(self.sem)
            self.sem = None
        if self.mem is not None:
            sip.delete(self.mem)
            self.mem = None

    # -- commands --------------------------------------------------------
    # Each returns the list of answer fields after "ok <t>".

    def c_key(self, args):
        self.mem.setKey(dec(args[0]))
        return []

    def c_nkey(self, args):
        text = dec(args[0])
        if QT6:
            self.mem.setNativeKey(QNativeIpcKey.fromString(text))
        else:
            self.mem.setNativeKey(text)
        return []

    def c_info(self, args):
        ipc = self.mem.nativeIpcKey().toString() if QT6 else ""
        return [enc(self.mem.nativeKey()), enc(ipc), enc(self.mem.key())]

    def c_keys(self, args):
        k = dec(args[0])
        tmp = QSharedMemory(k)
        shm = tmp.nativeKey()
        sip.delete(tmp)
        if not QT6:
            return [enc(shm), "-", "-", "-", "-", "-", "-", "-"]
        T = QNativeIpcKey.Type
        safe = QSharedMemory.platformSafeKey(k)
        return [
            enc(shm),
            enc(QSystemSemaphore.legacyNativeKey(k).nativeKey()),
            enc(QSharedMemory.legacyNativeKey(k, T.PosixRealtime).nativeKey()),
            enc(QSharedMemory.platformSafeKey(k, T.SystemV).nativeKey()),
            enc(QSharedMemory.platformSafeKey(k, T.PosixRealtime).nativeKey()),
            enc(QSharedMemory.legacyNativeKey(k).toString()),
            # The platform's default type (Windows there): the native key, and its text.
            enc(safe.nativeKey()),
            enc(safe.toString()),
        ]

    def c_create(self, args):
        self.check(self.mem.create(int(args[0]), shm_mode(args, 1)))
        return []

    def c_attach(self, args):
        self.check(self.mem.attach(shm_mode(args, 0)))
        return []

    def c_detach(self, args):
        self.check(self.mem.detach())
        return []

    def c_lock(self, args):
        self.check(self.mem.lock())
        return []

    def c_unlock(self, args):
        self.check(self.mem.unlock())
        return []

    def c_size(self, args):
        return [str(self.mem.size())]

    def c_attached(self, args):
        return ["1" if self.mem.isAttached() else "0"]

    def c_read(self, args):
        offset, length = int(args[0]), int(args[1])
        self.span(offset, length)
        p = self.const_ptr()
        return [enc(bytes(p[offset : offset + length]))]

    def c_write(self, args):
        offset, data = int(args[0]), dec_bytes(args[1])
        self.span(offset, len(data))
        if data:
            p = self.ptr()
            p[offset : offset + len(data)] = data
        return []

    def c_incr(self, args):
        offset, n = int(args[0]), int(args[1])
        self.span(offset, 8)
        p = self.ptr()
        for _ in range(n):
            self.check(self.mem.lock())
            (v,) = struct.unpack("<Q", bytes(p[offset : offset + 8]))
            p[offset : offset + 8] = struct.pack("<Q", (v + 1) & 0xFFFFFFFFFFFFFFFF)
            self.check(self.mem.unlock())
        return []

    def c_sleep(self, args):
        time.sleep(int(args[0]) / 1000.0)
        return []

    def c_lockhold(self, args):
        ms = int(args[0])
        self.check(self.mem.lock())
        out("ok %d" % now())
        time.sleep(ms / 1000.0)
        before_unlock = now()
        self.check(self.mem.unlock())
        return [str(before_unlock)]

    def _new_sem(self, key, args):
        initial = int(args[1]) if len(args) > 1 else 0
        mode = sem_mode(args, 2)
        if self.sem is not None:
            sip.delete(self.sem)
            self.sem = None
        self.sem = QSystemSemaphore(key, initial, mode)
        if code_of(self.sem.error()) != 0:
            raise Fail(code_of(self.sem.error()), self.sem.errorString())
        return []

    def c_sem(self, args):
        return self._new_sem(dec(args[0]), args)

    def c_nsem(self, args):
        if not QT6:
            raise RuntimeError("nsem needs Qt 6")
        return self._new_sem(QNativeIpcKey.fromString(dec(args[0])), args)

    def c_acquire(self, args):
        sem = self.need_sem()
        self.check_sem(sem.acquire())
        return []

    def c_release(self, args):
        sem = self.need_sem()
        n = int(args[0]) if args else 1
        self.check_sem(sem.release(n))
        return []

    def c_drop(self, args):
        self.destroy()
        self.mem = QSharedMemory()
        return []

    def c_pid(self, args):
        return [str(os.getpid())]

    def c_version(self, args):
        return [qVersion(), PYQT_VERSION_STR]

    def c_exit(self, args):
        self.destroy()
        out("ok %d" % now())
        sys.exit(0)

    def c_crash(self, args):
        sys.stdout.flush()
        if sys.platform == "win32":
            import ctypes

            k32 = ctypes.windll.kernel32
            k32.TerminateProcess(k32.GetCurrentProcess(), 9)
        os.kill(os.getpid(), signal.SIGKILL)

    # -- loop ------------------------------------------------------------

    def handle(self, line):
        words = line.split()
        if not words:
            raise ValueError("empty command")
        fn = getattr(self, "c_" + words[0], None)
        if fn is None:
            raise ValueError("unknown command %r" % words[0])
        return fn(words[1:])

    def run(self):
        stdin = sys.stdin.buffer
        while True:
            raw = stdin.readline()
            if not raw:
                break
            line = raw.decode("utf-8", "replace").strip()
            try:
                fields = self.handle(line)
            except Fail as e:
                out("err %d %d %s" % (now(), e.code, enc(e.message)))
            except Exception as e:  # noqa: BLE001 - reported to the driver
                text = "%s: %s" % (type(e).__name__, e)
                traceback.print_exc(file=sys.stderr)
                out("err %d -1 %s" % (now(), enc(text)))
            else:
                out(" ".join(["ok", str(now())] + fields))
        self.destroy()


def die_with_parent():
    """SIGKILL this peer when the test process that spawned it dies (prctl
    PR_SET_PDEATHSIG; on Windows a thread waits on the parent's process
    handle), so that a test run killed by its watchdog leaves no Qt process
    behind, even one blocked in lock()."""
    if sys.platform == "win32":
        import ctypes
        import threading

        k32 = ctypes.windll.kernel32
        k32.OpenProcess.restype = ctypes.c_void_p
        SYNCHRONIZE = 0x00100000
        parent = k32.OpenProcess(SYNCHRONIZE, False, os.getppid())
        if not parent:
            os._exit(1)

        def watch():
            k32.WaitForSingleObject(ctypes.c_void_p(parent), 0xFFFFFFFF)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before prctl
            os._exit(1)
    except Exception:  # not Linux: rely on stdin EOF
        pass


if __name__ == "__main__":
    die_with_parent()
    Peer().run()
