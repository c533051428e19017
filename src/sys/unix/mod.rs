//! Linux: the System V and POSIX backends, plus what every Unix backend shares (errno mapping, key
//! files, the runtime directory).

#[cfg(any(qshm_linux, qshm_sysv_only))]
pub(crate) mod inspect;
#[cfg(qshm_linux)]
mod liveness;
#[cfg(qshm_mapped_unix)]
pub(crate) mod mapped;
#[cfg(qshm_mapped_unix)]
pub(crate) mod notify;
#[cfg(qshm_linux)]
#[cfg_attr(qshm_posix_portable, allow(dead_code))] // inspect reads its files; no segment
mod posix;
#[cfg(qshm_posix_portable)]
mod posix_portable;
#[cfg(qshm_posix_portable)]
pub(crate) mod record_lock;
#[cfg(all(qshm_linux, not(qshm_posix_portable)))]
mod robust_lock;
#[cfg(any(qshm_linux, qshm_sysv_only))]
mod sysv;

use std::ffi::CString;
#[cfg(any(qshm_linux, qshm_sysv_only))]
use std::fs;
use std::io;
#[cfg(any(qshm_linux, qshm_sysv_only))]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::sync::Arc;

use crate::backend::{Detached, RawSegment, RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
#[cfg(any(test, qshm_linux, qshm_posix_portable))]
use crate::key::KeyType;
use crate::{AccessMode, NativeKey};

#[cfg(all(qshm_linux, not(qshm_posix_portable)))]
pub(crate) use posix::{PosixSegment, PosixSemaphore};
#[cfg(qshm_posix_portable)]
pub(crate) use posix_portable::{
    PortablePosixSegment as PosixSegment, PortablePosixSemaphore as PosixSemaphore,
};
#[cfg(any(qshm_linux, qshm_sysv_only))]
pub(crate) use sysv::{SysvSegment, SysvSemaphore};

/// Qt's errno table (docs/qt-ipc.md §3.7 and §4.3), with the errors Qt has no entry for
/// placed where a
/// caller would look for them.
pub(crate) fn errno_kind(errno: i32) -> ErrorKind {
    match errno {
        libc::EACCES | libc::EPERM => ErrorKind::PermissionDenied,
        libc::EEXIST => ErrorKind::AlreadyExists,
        libc::ENOENT | libc::EIDRM => ErrorKind::NotFound,
        libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOSPC | libc::ERANGE => {
            ErrorKind::OutOfResources
        }
        libc::ENAMETOOLONG => ErrorKind::KeyError,
        // A symbolic link where a key file or POSIX name should be (O_NOFOLLOW, or refused
        // in a world-writable directory): possibly planted by another user.
        libc::ELOOP => ErrorKind::PermissionDenied,
        libc::EAGAIN => ErrorKind::WouldBlock,
        libc::ETIMEDOUT => ErrorKind::Timeout,
        libc::ENOSYS | libc::EOPNOTSUPP => ErrorKind::Unsupported,
        _ => ErrorKind::Unknown,
    }
}

/// An error from an `errno` value, with the kind Qt maps it to ([`errno_kind`]) and the OS
/// error as its source.
#[cold]
pub(crate) fn os_error(errno: i32, op: Operation, key: impl Into<std::sync::Arc<str>>) -> Error {
    Error::new(errno_kind(errno), op, key).with_errno(errno)
}

#[cfg(any(qshm_linux, qshm_sysv_only))]
/// `open(path, flags | O_NONBLOCK)`: a FIFO planted at the name does not make it wait for a
/// writer. `O_NONBLOCK` also makes an open fail at once (`EWOULDBLOCK`) while another
/// process holds a lease on the file, where the last-user check of a qshm process holds one
/// for a moment (`posix/users.rs`): such an open is tried again for up to 50 ms, then waits
/// for the lease to be broken as a plain open does, once `lstat` says it is a regular file.
pub(crate) fn open_no_wait(
    path: &str,
    flags: rustix::fs::OFlags,
) -> rustix::io::Result<rustix::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
    loop {
        match rustix::fs::open(path, flags | OFlags::NONBLOCK, Mode::empty()) {
            Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            Err(rustix::io::Errno::WOULDBLOCK) => {
                let st = rustix::fs::lstat(path)?;
                if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                    return Err(rustix::io::Errno::WOULDBLOCK);
                }
                return rustix::fs::open(path, flags - OFlags::NONBLOCK, Mode::empty());
            }
            other => return other,
        }
    }
}

#[cfg(any(qshm_linux, qshm_sysv_only, qshm_mapped_unix))]
/// A C library call's return value: `Err(errno)` when it is -1 (the convention of almost
/// every call), else the value. The one place that reads that convention.
#[inline]
pub(super) fn cvt<T: PartialEq + From<i8>>(rc: T) -> std::result::Result<T, i32> {
    if rc == T::from(-1) {
        Err(errno())
    } else {
        Ok(rc)
    }
}

#[cfg(qshm_linux)]
/// Whether this process has a child, living or not yet reaped: one system call
/// (`waitid(WNOHANG|WNOWAIT)`, which reaps and consumes nothing: a waiting parent still
/// sees everything).
pub(super) fn has_children() -> bool {
    use rustix::process::{WaitId, WaitIdOptions};
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    rustix::process::waitid(WaitId::All, options).err() != Some(rustix::io::Errno::CHILD)
}

#[cfg(all(qshm_linux, not(qshm_posix_portable)))]
/// `flock(LOCK_EX|LOCK_NB)` on `fd`: whether this open file description is now the only
/// holder of the file's `flock`. When another holds it, `copied` (a child may hold a copy of
/// a description of the file this process had) and this process has children, it is tried
/// again a few times (pauses of 0.25, 0.5 and 1 ms): a child this process is forking holds
/// a copy of every descriptor, and so of every `flock`, until it execs, and that copy is no
/// user of the file.
pub(super) fn flock_exclusive_settled(
    fd: &std::os::fd::OwnedFd,
    copied: bool,
) -> rustix::io::Result<bool> {
    use rustix::fs::FlockOperation;
    let mut pause = std::time::Duration::from_micros(250);
    for attempt in 0..4 {
        match rustix::fs::flock(fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) if attempt < 3 && copied && has_children() => {
                std::thread::sleep(pause);
                pause *= 2;
            }
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// The calling thread's `errno`.
pub(super) fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// What a system call failed in: the one way the backends build [`Error`]s, with the
/// operation and the key (or a mapped segment's label) filled in and the OS error as the
/// source.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) op: Operation,
    name: Name<'a>,
}

/// What an error names.
#[derive(Clone, Copy)]
enum Name<'a> {
    /// A key, formatted when an error is made.
    Key(&'a NativeKey),
    /// A key whose text the caller keeps formatted (a handle formats its key once, not at
    /// every failure).
    Shared(&'a NativeKey, &'a Arc<str>),
    /// A label: a mapped segment's path or memfd name.
    #[cfg_attr(not(qshm_linux), allow(dead_code))] // mapped segments are Linux's here
    Label(&'a str),
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(op: Operation, key: &'a NativeKey) -> Ctx<'a> {
        Ctx {
            op,
            name: Name::Key(key),
        }
    }

    /// A context whose key's text is already formatted.
    pub(crate) fn shared(op: Operation, key: &'a NativeKey, text: &'a Arc<str>) -> Ctx<'a> {
        Ctx {
            op,
            name: Name::Shared(key, text),
        }
    }

    /// A context named by a label instead of a key.
    #[cfg_attr(not(qshm_linux), allow(dead_code))] // mapped segments are Linux's here
    pub(crate) fn label(op: Operation, label: &'a str) -> Ctx<'a> {
        Ctx {
            op,
            name: Name::Label(label),
        }
    }

    /// The key, for a context made with one.
    pub(crate) fn key(self) -> Option<&'a NativeKey> {
        match self.name {
            Name::Key(key) | Name::Shared(key, _) => Some(key),
            Name::Label(_) => None,
        }
    }

    fn text(self) -> Arc<str> {
        match self.name {
            Name::Key(key) => key.to_string().into(),
            Name::Shared(_, text) => Arc::clone(text),
            Name::Label(label) => label.into(),
        }
    }

    /// From an `errno` value.
    #[cold]
    pub(crate) fn err(self, errno: i32) -> Error {
        os_error(errno, self.op, self.text())
    }

    /// From a `rustix` error.
    #[cold]
    #[cfg_attr(not(qshm_linux), allow(dead_code))] // the POSIX and mapped backends' (Linux)
    pub(crate) fn errno(self, e: rustix::io::Errno) -> Error {
        self.err(e.raw_os_error())
    }

    /// Of a kind, without an OS error.
    #[cold]
    pub(crate) fn kind(
        self,
        kind: ErrorKind,
        detail: impl Into<std::borrow::Cow<'static, str>>,
    ) -> Error {
        Error::new(kind, self.op, self.text()).with_detail(detail)
    }

    /// From a `std` I/O error.
    #[cold]
    pub(crate) fn io(self, err: &io::Error) -> Error {
        match err.raw_os_error() {
            Some(errno) => self.err(errno),
            None => self.kind(ErrorKind::Unknown, "unexpected I/O error"),
        }
    }
}

/// When a [`Wait::For`] ends, from now; a timeout too long to add to the clock ends in about
/// a century. `None` for the waits without a timeout. The one deadline rule of the backends.
pub(super) fn deadline(wait: Wait) -> Option<std::time::Instant> {
    let now = std::time::Instant::now();
    match wait {
        Wait::For(d) => Some(
            now.checked_add(d)
                .unwrap_or_else(|| now + std::time::Duration::from_secs(60 * 60 * 24 * 365 * 100)),
        ),
        Wait::Forever | Wait::Poll => None,
    }
}

/// `d` as a `timespec`, capped at the largest `time_t` (32 bits on some targets).
#[cfg(not(qshm_portable))]
pub(super) fn relative_timespec(d: std::time::Duration) -> libc::timespec {
    // SAFETY: timespec is a plain C struct of integers, for which all-zero is valid.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    let max = if std::mem::size_of_val(&ts.tv_sec) == 4 {
        i32::MAX as u64
    } else {
        i64::MAX as u64
    };
    ts.tv_sec = d.as_secs().min(max) as _;
    ts.tv_nsec = d.subsec_nanos() as _;
    ts
}

/// `deadline` as an absolute time on `clock` (what `sem_timedwait` and `sem_clockwait`
/// take), capped as [`relative_timespec`] is.
#[cfg(all(qshm_linux, not(qshm_portable)))]
pub(super) fn absolute_timespec(
    clock: libc::clockid_t,
    deadline: std::time::Instant,
) -> libc::timespec {
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    // SAFETY: as above.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `now` is a valid out-pointer; the clocks used here always exist.
    unsafe { libc::clock_gettime(clock, &mut now) };
    let now = std::time::Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    );
    relative_timespec(now.saturating_add(left))
}

/// POSIX's portable form of a shared memory or semaphore name: `/`, then a name that is not
/// empty, `.` or `..` and has no other `/`. Returns the name after the `/`, or what is wrong.
/// (The platform's own rules, Apple's, come first: see `NamingRules::check_posix_name`.)
#[cfg(any(qshm_linux, qshm_posix_portable))]
pub(super) fn posix_name_body(native: &str) -> std::result::Result<&str, String> {
    let Some(name) = native.strip_prefix('/') else {
        return Err("a POSIX name must start with `/`".into());
    };
    if name.is_empty() {
        return Err("the name after the `/` is empty".into());
    }
    if name.contains('/') {
        return Err("a POSIX name has no `/` after the first character".into());
    }
    if name == "." || name == ".." {
        return Err(format!("`{native}` is not a valid POSIX name"));
    }
    Ok(name)
}

/// `remove_while_held` of the POSIX backends, whose semaphores do not wake their waiters when
/// removed: the name goes (only if it still names this semaphore: a semaphore given the name
/// meanwhile is someone else's to remove), then the hold is given up, so that a waiter on the
/// removed semaphore wakes, finds it unnamed (`still_named`) and opens the name anew.
#[cfg(any(qshm_linux, qshm_posix_portable))]
pub(super) fn remove_then_release<S: RawSemaphore>(sem: &S) -> Result<()> {
    let removed = if sem.still_named() {
        sem.remove()
    } else {
        Ok(())
    };
    let released = sem.release(1, Undo::Yes, Operation::Remove);
    removed.and(released)
}

/// The native key as a C path, refused when it cannot be one.
pub(super) fn c_path(ctx: Ctx<'_>) -> Result<CString> {
    let native = ctx.key().map_or("", NativeKey::native_key);
    if native.is_empty() {
        return Err(ctx.kind(ErrorKind::KeyError, "key is empty"));
    }
    CString::new(native).map_err(|_| ctx.kind(ErrorKind::KeyError, "key contains a NUL character"))
}

#[cfg(any(qshm_linux, qshm_sysv_only))] // System V's key files; iOS has none
/// Creates Qt's empty ftok key file (like Qt's `open(O_CREAT|O_EXCL)` + `close`, mode 0640
/// less the umask; a symbolic link planted in its place is not followed). Returns whether
/// this call created it.
///
/// `mknod(S_IFREG)` makes the same empty file in one system call instead of two; should a
/// file system refuse it, `open` is tried and has the last word.
pub(super) fn create_key_file(ctx: Ctx<'_>) -> Result<bool> {
    let path = ctx.key().map_or("", NativeKey::native_key);
    // Qt's own open(O_CREAT|O_EXCL): what macOS, which has no `mknodat`, does always.
    let open_new = |path: &str| {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o640)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map(drop)
    };
    #[cfg(qshm_portable)]
    let make = open_new;
    #[cfg(not(qshm_portable))]
    let make = |path: &str| {
        let mode = rustix::fs::Mode::from_raw_mode(0o640);
        match rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::RegularFile,
            mode,
            0,
        ) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::EXIST || e == rustix::io::Errno::NOENT => {
                Err(io::Error::from_raw_os_error(e.raw_os_error()))
            }
            Err(_) => open_new(path),
        }
    };
    match make(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && is_runtime_fallback(path) => {
            // Qt creates its fallback runtime directory on first use.
            let _ = fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(crate::key::runtime_dir());
            match make(path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(ctx.io(&e)),
            }
        }
        Err(e) => Err(ctx.io(&e)),
    }
}

#[cfg(any(qshm_linux, qshm_sysv_only))] // System V's key files; iOS has none
fn is_runtime_fallback(path: &str) -> bool {
    path.starts_with(&format!("{}/", crate::key::runtime_dir()))
}

#[cfg(qshm_linux)]
/// Opens the file at `path` anew (no symbolic link followed), if it is still the file with
/// inode `ino`: how a copy of an attachment in a process forked without exec, which shares
/// its parent's open file description (and so its `flock`), gets a descriptor of its own.
/// `Ok(None)` when the name is gone or now names another file.
pub(super) fn reopen_same_file(
    path: &std::path::Path,
    write: bool,
    ino: u64,
) -> rustix::io::Result<Option<std::os::fd::OwnedFd>> {
    use rustix::fs::{Mode, OFlags};
    let rw = if write { OFlags::RDWR } else { OFlags::RDONLY };
    let fd = match rustix::fs::open(path, rw | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok((rustix::fs::fstat(&fd)?.st_ino == ino).then_some(fd))
}

#[cfg(any(qshm_linux, qshm_sysv_only))] // System V's key files; iOS has none
/// Removes a key file; a file already gone is not an error (Qt reports one, docs/qt-ipc.md §8.11).
pub(super) fn remove_key_file(path: &str) {
    let _ = fs::remove_file(path);
}

/// The backend a key type selects here.
#[derive(Clone, Copy)]
enum Backend {
    #[cfg(any(qshm_linux, qshm_sysv_only))]
    SystemV,
    #[cfg(any(qshm_linux, qshm_posix_portable))]
    Posix,
}

impl Backend {
    fn of(key: &NativeKey, op: Operation) -> Result<Backend> {
        match key.key_type() {
            #[cfg(any(qshm_linux, qshm_sysv_only))]
            t if t.is_system_v() => Ok(Backend::SystemV),
            #[cfg(any(qshm_linux, qshm_posix_portable))]
            KeyType::PosixRealtime => Ok(Backend::Posix),
            _ => Err(Error::new(ErrorKind::Unsupported, op, key.to_string())
                .with_detail("no backend for this key type on this platform")),
        }
    }
}

/// The segment backends available here.
#[derive(Debug)]
pub(crate) enum Segment {
    #[cfg(any(qshm_linux, qshm_sysv_only))]
    SystemV(SysvSegment),
    #[cfg(any(qshm_linux, qshm_posix_portable))]
    Posix(PosixSegment),
}

/// The semaphore backends available here.
#[derive(Debug)]
pub(crate) enum Semaphore {
    #[cfg(any(qshm_linux, qshm_sysv_only))]
    SystemV(SysvSemaphore),
    #[cfg(any(qshm_linux, qshm_posix_portable))]
    Posix(PosixSemaphore),
}

impl crate::backend::sealed::Sealed for Segment {}
impl crate::backend::sealed::Sealed for Semaphore {}

/// The enum dispatch, written once: `each!(Enum, value, |b| expr)` runs `expr` with `b` bound
/// to the backend inside `value`; `by_key!(key, op, |B| expr)` runs `expr` with `B` the
/// backend type the key selects.
macro_rules! each {
    ($enum:ident, $value:expr, |$b:ident| $body:expr) => {
        match $value {
            #[cfg(any(qshm_linux, qshm_sysv_only))]
            $enum::SystemV($b) => $body,
            #[cfg(any(qshm_linux, qshm_posix_portable))]
            $enum::Posix($b) => $body,
        }
    };
}

macro_rules! by_key {
    ($key:expr, $op:expr, $seg:ident / $sem:ident => $body:expr) => {
        match Backend::of($key, $op)? {
            #[cfg(any(qshm_linux, qshm_sysv_only))]
            Backend::SystemV => {
                type $seg = SysvSegment;
                type $sem = SysvSemaphore;
                $body
            }
            #[cfg(any(qshm_linux, qshm_posix_portable))]
            Backend::Posix => {
                type $seg = PosixSegment;
                type $sem = PosixSemaphore;
                $body
            }
        }
    };
}

// SAFETY: every variant is a `RawSegment` and keeps that contract; the enum only forwards.
unsafe impl RawSegment for Segment {
    fn create(key: &NativeKey, size: usize, access: AccessMode, mode: u32) -> Result<Segment> {
        by_key!(key, Operation::Create, S / _X => S::create(key, size, access, mode).map(Segment::from))
    }

    fn attach(key: &NativeKey, access: AccessMode) -> Result<Segment> {
        by_key!(key, Operation::Attach, S / _X => S::attach(key, access).map(Segment::from))
    }

    #[inline]
    fn ptr(&self) -> *mut u8 {
        each!(Segment, self, |s| s.ptr())
    }

    #[inline]
    fn len(&self) -> usize {
        each!(Segment, self, |s| s.len())
    }

    #[inline]
    fn writable(&self) -> bool {
        each!(Segment, self, |s| s.writable())
    }

    fn exists(key: &NativeKey) -> bool {
        (|| -> Result<bool> { Ok(by_key!(key, Operation::Remove, S / _X => S::exists(key))) })()
            .unwrap_or(false)
    }

    fn remove(key: &NativeKey, only_if_unattached: bool) -> Result<bool> {
        by_key!(key, Operation::Remove, S / _X => S::remove(key, only_if_unattached))
    }

    fn owner_of(key: &NativeKey) -> Option<(u32, u32)> {
        (|| -> Result<Option<(u32, u32)>> {
            Ok(by_key!(key, Operation::Attach, S / _X => S::owner_of(key)))
        })()
        .unwrap_or(None)
    }

    fn size_now(&self) -> io::Result<Option<u64>> {
        each!(Segment, self, |s| s.size_now())
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        each!(Segment, self, |s| s.read_at(offset, buf))
    }

    fn read_at_unlocked(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        each!(Segment, self, |s| s.read_at_unlocked(offset, buf))
    }

    fn detach(self, remove_if_last: bool, remove_key_file: bool) -> Result<Detached> {
        each!(Segment, self, |s| s.detach(remove_if_last, remove_key_file))
    }

    fn attach_unlocked(key: &NativeKey, access: AccessMode) -> Result<Option<Segment>> {
        by_key!(key, Operation::Attach, S / _X => Ok(S::attach_unlocked(key, access)?.map(Segment::from)))
    }

    fn detach_unlocked(self, remove_if_last: bool) -> Option<Segment> {
        each!(Segment, self, |s| s
            .detach_unlocked(remove_if_last)
            .map(Segment::from))
    }

    fn remap(&mut self) -> Result<()> {
        each!(Segment, self, |s| s.remap())
    }

    fn populate(&self, write: bool) -> io::Result<()> {
        each!(Segment, self, |s| s.populate(write))
    }
}

impl RawSemaphore for Semaphore {
    fn open(key: &NativeKey, initial: u32, how: SemOpen, mode: u32) -> Result<(Semaphore, bool)> {
        by_key!(key, Operation::SemaphoreOpen, _X / S => {
            let (sem, created) = S::open(key, initial, how, mode)?;
            Ok((Semaphore::from(sem), created))
        })
    }

    #[inline]
    fn acquire(&self, wait: Wait, undo: Undo, op: Operation) -> Result<bool> {
        each!(Semaphore, self, |s| s.acquire(wait, undo, op))
    }

    #[inline]
    fn release(&self, n: u32, undo: Undo, op: Operation) -> Result<()> {
        each!(Semaphore, self, |s| s.release(n, undo, op))
    }

    fn waiters(&self) -> usize {
        each!(Semaphore, self, |s| s.waiters())
    }

    fn in_use_elsewhere(&self) -> bool {
        each!(Semaphore, self, |s| s.in_use_elsewhere())
    }

    fn remove(&self) -> Result<()> {
        each!(Semaphore, self, |s| s.remove())
    }

    fn mark_consistent(&self) {
        each!(Semaphore, self, |s| s.mark_consistent())
    }

    fn owner(&self) -> Option<(u32, u32)> {
        each!(Semaphore, self, |s| s.owner())
    }

    fn remove_while_held(&self) -> Result<()> {
        each!(Semaphore, self, |s| s.remove_while_held())
    }

    fn still_named(&self) -> bool {
        each!(Semaphore, self, |s| s.still_named())
    }

    fn keepable(&self) -> bool {
        each!(Semaphore, self, |s| s.keepable())
    }

    fn reusable(&self) -> bool {
        each!(Semaphore, self, |s| s.reusable())
    }
}

macro_rules! wrap {
    ($enum:ident { $($variant:ident($ty:ty)),* }) => {
        $(impl From<$ty> for $enum {
            fn from(value: $ty) -> $enum {
                $enum::$variant(value)
            }
        })*
    };
}
#[cfg(any(qshm_linux, qshm_sysv_only))]
wrap!(Segment { SystemV(SysvSegment) });
#[cfg(any(qshm_linux, qshm_sysv_only))]
wrap!(Semaphore { SystemV(SysvSemaphore) });
#[cfg(any(qshm_linux, qshm_posix_portable))]
wrap!(Segment { Posix(PosixSegment) });
#[cfg(any(qshm_linux, qshm_posix_portable))]
wrap!(Semaphore { Posix(PosixSemaphore) });

/// Maps every page of `mapping` now: `madvise(MADV_POPULATE_WRITE)` for a writer (which
/// also allocates the pages, so that a full tmpfs fails here, with `OutOfResources`, rather
/// than with SIGBUS at a later write), `MADV_POPULATE_READ` for a reader. Kernels before
/// 5.14 lack both: the pages are then touched one by one (an atomic read, or an atomic add
/// of zero for a writer, so the bytes never change), which maps them but does not turn a
/// SIGBUS into an error.
///
/// Elsewhere (macOS, FreeBSD: no `MADV_POPULATE_*`) the pages are touched one by one.
#[cfg(not(qshm_linux))]
pub(crate) fn populate<M: crate::sys::Mapping>(mapping: &M, write: bool) -> io::Result<()> {
    let page = rustix::param::page_size();
    let start = mapping.ptr() as usize;
    let aligned = start & !(page - 1);
    if !write || mapping.writable() {
        touch_pages(aligned, mapping.len() + (start - aligned), page, write);
    }
    Ok(())
}

/// See the other `populate`.
#[cfg(qshm_linux)]
pub(crate) fn populate<M: crate::sys::Mapping>(mapping: &M, write: bool) -> io::Result<()> {
    let page = rustix::param::page_size();
    let start = mapping.ptr() as usize;
    let aligned = start & !(page - 1);
    let len = mapping.len() + (start - aligned);
    let advice = if write {
        rustix::mm::Advice::LinuxPopulateWrite
    } else {
        rustix::mm::Advice::LinuxPopulateRead
    };
    // SAFETY: `aligned..start+len` lies in the mapping: `Mapping` guarantees
    // `ptr..ptr+len` is mapped, mappings begin and end on page boundaries, so the page that
    // holds `ptr` and the rest of the last page are part of it. Populating changes no byte.
    match unsafe { rustix::mm::madvise(aligned as *mut _, len, advice) } {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::INVAL) if !write || mapping.writable() => {
            touch_pages(aligned, len, page, write);
            Ok(())
        }
        Err(rustix::io::Errno::FAULT | rustix::io::Errno::NOMEM | rustix::io::Errno::NOSPC) => {
            Err(io::Error::from_raw_os_error(libc::ENOMEM))
        }
        Err(e) => Err(e.into()),
    }
}

/// The fallback of `populate`: one atomic access per page.
fn touch_pages(aligned: usize, len: usize, page: usize, write: bool) {
    use std::sync::atomic::{AtomicU8, Ordering};
    for offset in (0..len).step_by(page) {
        // SAFETY: `aligned + offset` is inside the mapping (see `populate`); every byte of
        // shared memory may be accessed atomically, and neither access changes its value.
        let byte = unsafe { &*((aligned + offset) as *const AtomicU8) };
        if write {
            byte.fetch_add(0, Ordering::Relaxed);
        } else {
            byte.load(Ordering::Relaxed);
        }
    }
}

#[cfg(qshm_mapped_unix)]
/// Whether the file system of `fd` has room for `size` more bytes, as `fstatvfs` counts
/// them: a quick check at create, so that a full `/dev/shm` fails there (`Err` carries the
/// bytes available) without touching a page. File systems without a limit (tmpfs mounted
/// with `size=0`, the internal mount of memfds) always have room. Others may fill the
/// file system later; [`populate`] at create closes that window by allocating the pages.
pub(crate) fn check_room(fd: impl std::os::fd::AsFd, size: u64) -> std::result::Result<(), u64> {
    let Ok(st) = rustix::fs::fstatvfs(fd) else {
        return Ok(());
    };
    if st.f_blocks == 0 {
        return Ok(());
    }
    let avail = st.f_bavail.saturating_mul(st.f_frsize);
    if size > avail {
        Err(avail)
    } else {
        Ok(())
    }
}

/// The trait-level conformance suite (`sys/conformance.rs`), once per backend, and once
/// through the dispatch enums.
#[cfg(test)]
mod contract {
    use super::*;
    #[cfg(any(qshm_linux, qshm_sysv_only))]
    crate::sys::conformance::suite!(system_v, SysvSegment, SysvSemaphore, KeyType::SystemV);
    #[cfg(any(qshm_linux, qshm_posix_portable))]
    crate::sys::conformance::suite!(posix, PosixSegment, PosixSemaphore, KeyType::PosixRealtime);
    #[cfg(any(qshm_linux, qshm_posix_portable))]
    crate::sys::conformance::suite!(dispatch_posix, Segment, Semaphore, KeyType::PosixRealtime);
    #[cfg(not(qshm_linux))]
    crate::sys::conformance::suite!(dispatch_system_v, Segment, Semaphore, KeyType::SystemV);
}
