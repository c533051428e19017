"""qshm's exceptions: ``qshm.Error`` with ``.kind``, and its subclasses that are also
Python's built-in exceptions where one fits."""

from __future__ import annotations

from typing import Optional


class Error(Exception):
    """An error of a shared memory, semaphore or mapped segment operation.

    ``kind`` is the Rust library's ``ErrorKind`` name: ``"PermissionDenied"``,
    ``"InvalidSize"``, ``"KeyError"``, ``"AlreadyExists"``, ``"NotFound"``, ``"LockError"``,
    ``"OutOfResources"``, ``"Unknown"``, ``"Unsupported"``, ``"NotAttached"``,
    ``"AlreadyAttached"``, ``"Timeout"`` or ``"WouldBlock"``. ``errno`` is the operating
    system's error number where the failure came from a system call, else ``None``.

    The kinds with a natural built-in raise a subclass that derives from it too:
    ``NotFoundError`` (``FileNotFoundError``), ``AlreadyExistsError`` (``FileExistsError``),
    ``PermissionDeniedError`` (``PermissionError``), ``TimeoutError_``
    (``TimeoutError``), ``WouldBlockError`` (``BlockingIOError``); and
    ``LiveExportsError`` (``BufferError``, kind ``"LockError"``) when a lock is released
    while buffer exports of its guard are alive.
    """

    kind: str = "Unknown"
    errno: Optional[int] = None


class NotFoundError(Error, FileNotFoundError):
    """``attach`` found no segment (kind ``"NotFound"``)."""


class AlreadyExistsError(Error, FileExistsError):
    """``create`` found the segment already there (kind ``"AlreadyExists"``)."""


class PermissionDeniedError(Error, PermissionError):
    """The caller lacks the permissions the operation needs (kind ``"PermissionDenied"``)."""


class TimeoutError_(Error, TimeoutError):
    """A lock or acquire with a timeout gave up (kind ``"Timeout"``)."""


class WouldBlockError(Error, BlockingIOError):
    """``try_lock``/``try_acquire`` found the lock held (kind ``"WouldBlock"``)."""


class LiveExportsError(Error, BufferError):
    """A lock was released while buffer exports of its guard (``memoryview``, numpy arrays)
    were still alive (kind ``"LockError"``).

    Raised by ``LockGuard.unlock()`` and at the end of a ``with m.lock() as g:`` block,
    after the lock was released anyway and what the exports wrote was written back: from
    then on they hold a private copy detached from the segment (stale reads, lost writes).
    End exports inside the block: ``with memoryview(g) as v:``, or ``del`` / ``release()``.
    """


_CLASSES = {
    "NotFound": NotFoundError,
    "AlreadyExists": AlreadyExistsError,
    "PermissionDenied": PermissionDeniedError,
    "Timeout": TimeoutError_,
    "WouldBlock": WouldBlockError,
}


def _make(kind: str, message: str, errno: Optional[int], cls: Optional[str] = None) -> Error:
    """The exception for an error of ``kind``, of class ``cls`` if given (called by the
    native module)."""
    exc = (globals()[cls] if cls else _CLASSES.get(kind, Error))(message)
    exc.kind = kind
    exc.errno = errno
    return exc
