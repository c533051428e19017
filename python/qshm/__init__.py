"""Qt's QSharedMemory and QSystemSemaphore for Python, without Qt.

``qshm.SharedMemory("my-key")`` is the segment a Qt program's ``QSharedMemory("my-key")``
is, locked by the same lock; ``qshm.SystemSemaphore`` is ``QSystemSemaphore``;
``qshm.MappedSegment`` is a file or memfd segment with a crash-robust lock. Built on the
qshm Rust library.

>>> import qshm, os
>>> m = qshm.SharedMemory(f"doc-{os.getpid()}")
>>> m.create(4096)
>>> with m.lock() as g:
...     g[0:5] = b"hello"
...     bytes(g[0:5])
b'hello'
>>> m.detach()

Errors are ``qshm.Error`` with ``.kind``; see ``help(qshm.Error)``. How no Python object
reaches shared memory without the lock: ``help(qshm.LockGuard)``.
"""

from ._errors import (
    AlreadyExistsError,
    Error,
    LiveExportsError,
    NotFoundError,
    PermissionDeniedError,
    TimeoutError_,
    WouldBlockError,
)
from ._qshm import MEMFD_ENV, LockGuard, MappedSegment, Notifier, SharedMemory, SystemSemaphore

__all__ = [
    "SharedMemory",
    "LockGuard",
    "SystemSemaphore",
    "MappedSegment",
    "Notifier",
    "MEMFD_ENV",
    "Error",
    "LiveExportsError",
    "NotFoundError",
    "AlreadyExistsError",
    "PermissionDeniedError",
    "TimeoutError_",
    "WouldBlockError",
]
