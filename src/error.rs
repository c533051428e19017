//! The error type: Qt's `QSharedMemory::SharedMemoryError` kinds, with the operation, the key
//! and the operating-system cause.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::sync::Arc;

/// What went wrong, in Qt's terms (`QSharedMemory::SharedMemoryError`), plus the kinds Qt
/// has no name for.
///
/// # Examples
///
/// ```
/// use qshm::{AccessMode, ErrorKind, SharedMemory};
///
/// let mut shm = SharedMemory::new();
/// let err = shm.create(1024, AccessMode::ReadWrite).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::KeyError);
/// assert_eq!(err.kind().qt_code(), 3);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller lacks the permissions the operation needs (`EACCES`, `EPERM`).
    PermissionDenied,
    /// `create` was given a size of zero, or one the system cannot provide in one segment.
    InvalidSize,
    /// The key is empty, too long, or not a valid name for its backend.
    KeyError,
    /// `create` found a segment with this key already.
    AlreadyExists,
    /// `attach` found no segment with this key.
    NotFound,
    /// Taking or releasing the lock failed, or there is nothing to lock.
    LockError,
    /// The system ran out of memory, identifiers, file descriptors or space.
    OutOfResources,
    /// Any other failure; [`Error::raw_os_error`] tells the cause.
    Unknown,
    /// This platform or build has no backend for the key's type.
    Unsupported,
    /// The operation needs an attached segment and this object is not attached.
    NotAttached,
    /// `attach` or `create` was called on an object that is already attached.
    AlreadyAttached,
    /// `lock_timeout` gave up: the lock stayed held for the whole timeout.
    Timeout,
    /// `try_lock` or `try_acquire` found the lock held.
    WouldBlock,
    /// The bytes do not have the layout asked for: a typed view at an offset not aligned
    /// for its type, or a mapped segment created with another layout stamp.
    Layout,
    /// A wait was cancelled from another thread before it ended (`CancelToken::cancel`).
    Cancelled,
    /// The other side of a queue or cell is gone: it died or closed its end.
    Disconnected,
}

impl ErrorKind {
    /// The numeric value of the matching `QSharedMemory::SharedMemoryError` (1–8); kinds Qt
    /// has no value for report 8 (`UnknownError`), or 6 (`LockError`) for lock time-outs.
    pub fn qt_code(self) -> i32 {
        match self {
            ErrorKind::PermissionDenied => 1,
            ErrorKind::InvalidSize => 2,
            ErrorKind::KeyError => 3,
            ErrorKind::AlreadyExists => 4,
            ErrorKind::NotFound => 5,
            ErrorKind::LockError | ErrorKind::Timeout | ErrorKind::WouldBlock => 6,
            ErrorKind::OutOfResources => 7,
            ErrorKind::Unknown
            | ErrorKind::Unsupported
            | ErrorKind::NotAttached
            | ErrorKind::AlreadyAttached
            | ErrorKind::Layout
            | ErrorKind::Cancelled
            | ErrorKind::Disconnected => 8,
        }
    }

    /// A short lower-case description, used as the cause when there is no OS error.
    pub fn description(self) -> &'static str {
        match self {
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::InvalidSize => "invalid size",
            ErrorKind::KeyError => "invalid key",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::NotFound => "does not exist",
            ErrorKind::LockError => "lock error",
            ErrorKind::OutOfResources => "out of resources",
            ErrorKind::Unknown => "unknown error",
            ErrorKind::Unsupported => "not supported on this platform",
            ErrorKind::NotAttached => "not attached",
            ErrorKind::AlreadyAttached => "already attached",
            ErrorKind::Timeout => "timed out waiting for the lock",
            ErrorKind::WouldBlock => "the lock is held by someone else",
            ErrorKind::Layout => "the bytes do not have the layout asked for",
            ErrorKind::Cancelled => "the wait was cancelled",
            ErrorKind::Disconnected => "the other side is gone",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// The operation that failed, named in [`Error`]'s message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `SharedMemory::create`.
    Create,
    /// `SharedMemory::attach`.
    Attach,
    /// `SharedMemory::detach`.
    Detach,
    /// `SharedMemory::lock` and its variants.
    Lock,
    /// Releasing the segment's lock.
    Unlock,
    /// Writing through the lock guard.
    Write,
    /// Removing a segment and its lock by key.
    Remove,
    /// Parsing a native key's text form.
    ParseKey,
    /// Opening or creating a `SystemSemaphore`.
    SemaphoreOpen,
    /// `SystemSemaphore::acquire` and its variants.
    Acquire,
    /// `SystemSemaphore::release`.
    Release,
    /// Sealing a mapped segment (`MappedSegment::seal_write`).
    Seal,
    /// Handing a mapped segment to another process (over a socket or to a child).
    Send,
    /// Receiving a mapped segment from another process.
    Receive,
    /// Looking at what segments and semaphores exist (`qshm::inspect`).
    Inspect,
    /// Viewing a locked segment's bytes as a type (`LockGuard::view` and its variants).
    View,
    /// Waiting for a change (`Notifier::wait` and its variants).
    Wait,
    /// Announcing a change (`Notifier::notify`), or opening the notifier of a segment.
    Notify,
    /// Making or opening a message queue in a mapped segment (`mapped::queue`).
    QueueOpen,
    /// Sending on a message queue (`queue::Sender::send` and its variants).
    QueueSend,
    /// Receiving from a message queue (`queue::Receiver::recv` and its variants).
    QueueReceive,
    /// Making or opening a latest-value cell in a mapped segment (`mapped::cell`).
    CellOpen,
    /// Writing a latest-value cell (`cell::Writer::write`).
    CellWrite,
    /// Reading a latest-value cell, or waiting for its next value (`cell::Reader`).
    CellRead,
}

impl Operation {
    fn verb(self) -> &'static str {
        match self {
            Operation::Create => "cannot create shared memory",
            Operation::Attach => "cannot attach shared memory",
            Operation::Detach => "cannot detach shared memory",
            Operation::Lock => "cannot lock shared memory",
            Operation::Unlock => "cannot unlock shared memory",
            Operation::Write => "cannot write shared memory",
            Operation::Remove => "cannot remove shared memory",
            Operation::ParseKey => "cannot parse native key",
            Operation::SemaphoreOpen => "cannot open system semaphore",
            Operation::Acquire => "cannot acquire system semaphore",
            Operation::Release => "cannot release system semaphore",
            Operation::Seal => "cannot seal shared memory",
            Operation::Send => "cannot send shared memory",
            Operation::Receive => "cannot receive shared memory",
            Operation::Inspect => "cannot inspect shared memory",
            Operation::View => "cannot view shared memory as a type",
            Operation::Wait => "cannot wait for a change of shared memory",
            Operation::Notify => "cannot notify a change of shared memory",
            Operation::QueueOpen => "cannot open a queue in shared memory",
            Operation::QueueSend => "cannot send on a queue in shared memory",
            Operation::QueueReceive => "cannot receive from a queue in shared memory",
            Operation::CellOpen => "cannot open a latest-value cell in shared memory",
            Operation::CellWrite => "cannot write a latest-value cell in shared memory",
            Operation::CellRead => "cannot read a latest-value cell in shared memory",
        }
    }
}

/// An error from a shared memory or semaphore operation.
///
/// It carries Qt's [`ErrorKind`], the [`Operation`] that failed, the key it was done on and,
/// where the operating system gave one, the `errno` value. Its `Display` names all three:
///
/// ```text
/// cannot create shared memory `systemv:/tmp/qipc_sharedmemory_helloaaf4…?legacyKey=hello`: already exists (os error 17)
/// ```
///
/// The operating system's error is its [`source`](std::error::Error::source), an
/// [`io::Error`]; [`detail`](Error::detail) is what qshm adds to the kind's description.
///
/// One pointer wide (the details live on the heap), so that `Result<T>` stays small and the
/// success path of a lock does not pay for the failure path's data. The key's text is
/// shared, not copied: a handle formats its key once, and its errors point to that text.
pub struct Error {
    inner: Box<ErrorInner>,
}

struct ErrorInner {
    kind: ErrorKind,
    op: Operation,
    key: Arc<str>,
    os: Option<io::Error>,
    detail: Option<Cow<'static, str>>,
}

impl Clone for Error {
    fn clone(&self) -> Error {
        let e = &*self.inner;
        Error {
            inner: Box::new(ErrorInner {
                kind: e.kind,
                op: e.op,
                key: Arc::clone(&e.key),
                os: e.os.as_ref().map(|os| match os.raw_os_error() {
                    Some(errno) => io::Error::from_raw_os_error(errno),
                    None => io::Error::new(os.kind(), os.to_string()),
                }),
                detail: e.detail.clone(),
            }),
        }
    }
}

impl Error {
    #[cold]
    pub(crate) fn new(kind: ErrorKind, op: Operation, key: impl Into<Arc<str>>) -> Error {
        Error {
            inner: Box::new(ErrorInner {
                kind,
                op,
                key: key.into(),
                os: None,
                detail: None,
            }),
        }
    }

    /// Records the operating system's error number as the cause (`source`).
    pub(crate) fn with_errno(mut self, errno: i32) -> Error {
        self.inner.os = Some(io::Error::from_raw_os_error(errno));
        self
    }

    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Error {
        self.inner.kind = kind;
        self
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Error {
        self.inner.detail = Some(detail.into());
        self
    }

    pub(crate) fn with_op(mut self, op: Operation) -> Error {
        self.inner.op = op;
        self
    }

    pub(crate) fn with_key(mut self, key: impl Into<Arc<str>>) -> Error {
        self.inner.key = key.into();
        self
    }

    /// Qt's kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.inner.op
    }

    /// The key the operation was done on, in Qt's text form where one was set.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The operating system's error number, where the failure came from a system call.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.inner.os.as_ref().and_then(io::Error::raw_os_error)
    }

    /// What qshm says about the failure beyond its kind (for instance "key is empty", or
    /// which limit was reached), where it says anything.
    pub fn detail(&self) -> Option<&str> {
        self.inner.detail.as_deref()
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &*self.inner;
        f.debug_struct("Error")
            .field("kind", &e.kind)
            .field("operation", &e.op)
            .field("key", &e.key)
            .field("os", &e.os)
            .field("detail", &e.detail)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &*self.inner;
        f.write_str(e.op.verb())?;
        if e.key.is_empty() {
            f.write_str(" (no key set)")?;
        } else {
            write!(f, " `{}`", e.key)?;
        }
        match &e.detail {
            Some(detail) => write!(f, ": {detail}")?,
            None => write!(f, ": {}", e.kind)?,
        }
        if let Some(os) = &e.os {
            write!(f, " ({os})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    /// The operating system's error, where the failure came from a system call.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .os
            .as_ref()
            .map(|os| os as &(dyn std::error::Error + 'static))
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err.kind() {
            ErrorKind::PermissionDenied => io::ErrorKind::PermissionDenied,
            ErrorKind::InvalidSize | ErrorKind::KeyError => io::ErrorKind::InvalidInput,
            ErrorKind::AlreadyExists => io::ErrorKind::AlreadyExists,
            ErrorKind::NotFound => io::ErrorKind::NotFound,
            ErrorKind::OutOfResources => io::ErrorKind::OutOfMemory,
            ErrorKind::Unsupported => io::ErrorKind::Unsupported,
            ErrorKind::Timeout => io::ErrorKind::TimedOut,
            ErrorKind::WouldBlock => io::ErrorKind::WouldBlock,
            ErrorKind::Cancelled => io::ErrorKind::Interrupted,
            ErrorKind::Disconnected => io::ErrorKind::BrokenPipe,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_operation_key_and_cause() {
        let e = Error::new(
            ErrorKind::AlreadyExists,
            Operation::Create,
            "systemv:/tmp/x",
        )
        .with_errno(libc::EEXIST);
        let source = std::error::Error::source(&e).expect("an OS error as the source");
        assert_eq!(
            source.to_string(),
            io::Error::from_raw_os_error(libc::EEXIST).to_string()
        );
        assert_eq!(e.detail(), None);
        assert_eq!(e.clone().with_detail("why").detail(), Some("why"));
        assert_eq!(e.clone().raw_os_error(), Some(libc::EEXIST));
        let s = e.to_string();
        assert!(
            s.starts_with("cannot create shared memory `systemv:/tmp/x`: already exists"),
            "{s}"
        );
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::AlreadyExists);
    }
}
