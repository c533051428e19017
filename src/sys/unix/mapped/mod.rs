//! Memory-mapped segments with their lock inside: files on a RAM-backed file system, and
//! memfds passed by inheritance or over Unix sockets (`qshm::mapped`).
//!
//! The segment starts with the header `include/qshm.h` describes (layout version 2); the
//! data area follows at `header_size`, a multiple of the page size, so that a read-only
//! attachment can map the data without write permission while still taking the lock.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man2/memfd_create.2.html>, `fcntl(2)` (file seals)
//! * <https://man7.org/linux/man-pages/man2/open.2.html> (`O_TMPFILE`), `linkat(2)`,
//!   `flock(2)`, `statfs(2)`
//! * <https://man7.org/linux/man-pages/man7/unix.7.html> (`SCM_RIGHTS`)
#![allow(clippy::unnecessary_cast)] // stat/statfs field types vary across architectures

use std::ffi::c_void;
use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[cfg(not(qshm_posix_portable))]
use rustix::fs::{AtFlags, FlockOperation, CWD};
use rustix::fs::{Mode, OFlags};

use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use seals::SealFlags;

#[cfg(qshm_posix_portable)]
use super::record_lock::LockedFile;
#[cfg(not(qshm_posix_portable))]
use super::robust_lock::{Liveness, RobustLock, SameNamespaces};
use super::Ctx;
use crate::backend::Wait;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::{Mapping, SegmentLock};
use crate::AccessMode;

mod file;
mod handover;
mod header;
mod memfd;
#[cfg(qshm_posix_portable)]
mod owners;
mod seals;

/// The lock in a segment's header where record locks judge its owners.
#[cfg(qshm_posix_portable)]
type RobustLock = crate::sys::word_lock::WordLock<owners::RecordOwners>;

/// The descriptor a segment keeps: its own on Linux; where record locks tell users and
/// owners apart, the process's one open file of it (`sys/unix/record_lock.rs`: closing any
/// other descriptor of the file would drop the process's locks on it).
#[cfg(not(qshm_posix_portable))]
pub(crate) type SegFd = OwnedFd;
#[cfg(qshm_posix_portable)]
pub(crate) type SegFd = std::sync::Arc<LockedFile>;

/// The byte of a segment file whose read locks count its users where record locks do
/// (`sys/unix/record_lock.rs`): inside the header, which no process reads through locks.
#[cfg(qshm_posix_portable)]
const USERS: i64 = 56;

pub(crate) use {file::*, handover::*, header::*, memfd::*};

fn page_size() -> usize {
    rustix::param::page_size()
}

/// The inode numbers of this process's PID and time namespaces (0 when unknown), read
/// again in a forked child (which `unshare(CLONE_NEWPID)` puts in a new one).
#[cfg(qshm_posix_portable)]
fn namespaces() -> (u64, u64) {
    (0, 0) // no namespaces to record (and owners are judged by record locks)
}

/// The inode numbers of this process's PID and time namespaces (0 when unknown), read
/// again in a forked child (which `unshare(CLONE_NEWPID)` puts in a new one).
#[cfg(not(qshm_posix_portable))]
fn namespaces() -> (u64, u64) {
    static NS: Mutex<(u32, u64, u64)> = Mutex::new((0, 0, 0));
    crate::sys::fork::watch();
    let generation = crate::sys::fork::generation();
    let mut ns = NS.lock().unwrap_or_else(|e| e.into_inner());
    if ns.0 != generation {
        crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
        let inode = |path: &str| rustix::fs::stat(path).map_or(0, |s| s.st_ino as u64);
        *ns = (
            generation,
            inode("/proc/self/ns/pid"),
            inode("/proc/self/ns/time"),
        );
    }
    (ns.1, ns.2)
}

/// How a segment's memory is backed.
#[derive(Debug)]
pub(crate) enum Backing {
    /// A named file; the path it was opened or created at.
    File {
        path: PathBuf,
        remove_on_last_detach: bool,
        /// The process that opened the descriptor: a process forked from it shares the
        /// descriptor's open file description, and so its `flock` (see `close`).
        #[cfg_attr(qshm_posix_portable, allow(dead_code))] // forks are counted otherwise
        opener: u32,
    },
    /// A memfd (its seals are read from the descriptor when asked).
    Memfd,
    /// A descriptor received from elsewhere that is not a sealable memfd.
    Fd {
        /// For a received file flagged remove-on-last-detach, the path this process takes
        /// part in removing it at (`memfd::from_fd`): it holds a shared `flock` on a
        /// description of its own while attached, as an opener does.
        remove_at: Option<PathBuf>,
    },
}

impl Backing {
    /// The path a last user removes the file at: a file flagged remove-on-last-detach (for
    /// a received one, where this process takes part in removing it).
    #[cfg_attr(not(qshm_posix_portable), allow(dead_code))] // found through /proc on Linux
    pub(crate) fn removes_at(&self) -> Option<&Path> {
        match self {
            Backing::File {
                path,
                remove_on_last_detach: true,
                ..
            }
            | Backing::Fd {
                remove_at: Some(path),
            } => Some(path),
            _ => None,
        }
    }
}

/// What the options of `qshm::mapped` ask for, as the backend needs it.
#[derive(Clone, Debug)]
pub(crate) struct OpenParams {
    pub(crate) access: AccessMode,
    pub(crate) allow_disk_backed: bool,
    pub(crate) allow_unsealed: bool,
    pub(crate) check_size_on_lock: bool,
    /// The layout stamp to write (create) or to expect (open); `None`: none / any.
    pub(crate) layout: Option<(u32, u64)>,
}

/// The lock of a mapped segment: one enum, so that `Locked::acquire` inlines its fast path.
pub(crate) enum LockKind {
    Robust(RobustLock),
    Immutable(ImmutableLock),
}

impl SegmentLock for LockKind {
    #[inline]
    fn lock(&self, wait: Wait, op: Operation) -> Result<bool> {
        match self {
            LockKind::Robust(l) => l.lock(wait, op),
            LockKind::Immutable(l) => l.lock(wait, op),
        }
    }

    #[inline]
    fn unlock(&self) -> Result<()> {
        match self {
            LockKind::Robust(l) => l.unlock(),
            LockKind::Immutable(l) => l.unlock(),
        }
    }

    fn mark_consistent(&self) {
        match self {
            LockKind::Robust(l) => l.mark_consistent(),
            LockKind::Immutable(l) => l.mark_consistent(),
        }
    }
}

/// A mapped segment: header, lock and data area.
pub(crate) struct MappedInner {
    map: NonNull<u8>,
    map_len: usize,
    /// A second, read-only mapping of the same `map_len` bytes, through which the data area
    /// is reached when it must be read-only but does not start on a page boundary (a header
    /// size that is not a multiple of the page size, which `qshm.h` allows): `mprotect` can
    /// only protect whole pages, and the first one holds the lock, which must stay writable.
    read_only_view: Option<NonNull<u8>>,
    /// The data area's first byte, in `map` or in `read_only_view`: worked out once, so that
    /// a lock costs no branch for it.
    data: NonNull<u8>,
    header_size: usize,
    data_size: usize,
    writable: bool,
    check_size: bool,
    lock: LockKind,
    fd: SegFd,
    /// Whether this handle counts itself among the file's users (`record_lock.rs`), which
    /// `close` ends.
    #[cfg(qshm_posix_portable)]
    joined: bool,
    /// Whether `fd`'s description is this process's own ([`MapRequest::private`]).
    private: bool,
    /// [`MapRequest::creator_ns`].
    creator_ns: (u64, u64),
    backing: Backing,
    /// [`forks_started`](crate::sys::fork::forks_started) before the mapping was made: a
    /// child forked earlier holds no copy of it (at most a stray copy of `fd`).
    #[cfg(not(qshm_posix_portable))] // record locks count forks otherwise
    forks_before: u32,
    closed: bool,
}

// SAFETY: the struct owns a process-wide mapping and a descriptor, neither tied to the thread
// that made them (munmap and close may run on any thread). It never reads or writes the data
// area itself: slices are made by `Locked`, which requires the lock; the header is accessed
// only atomically (`RobustLock`). Checked at compile time in `tests::send_sync`.
unsafe impl Send for MappedInner {}
// SAFETY: `&MappedInner` exposes plain values (address, sizes, descriptor) and the lock,
// whose operations are atomic; see `Send` for the data area.
unsafe impl Sync for MappedInner {}

impl fmt::Debug for MappedInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedInner")
            .field("backing", &self.backing)
            .field("fd", &self.fd.as_raw_fd())
            .field("addr", &self.map)
            .field("header_size", &self.header_size)
            .field("data_size", &self.data_size)
            .field("writable", &self.writable)
            .finish()
    }
}

/// How to map what `map_fd` maps.
struct MapRequest {
    header_size: usize,
    data_size: usize,
    /// The data area is mapped writable.
    data_writable: bool,
    /// Nobody can write the segment (write-sealed): map everything read-only, no lock.
    immutable: bool,
    check_size: bool,
    /// The descriptor's open file description was opened by this process (not received
    /// or inherited): no other process shares it (see `robust_lock.rs`, "Liveness").
    private: bool,
    /// The (PID, time) namespaces the header records for the creator (read with the
    /// header, not through the mapping, which is not touched before it is used).
    creator_ns: (u64, u64),
}

impl MapRequest {
    /// A plain file segment's mapping, as `params` ask.
    fn file(
        header_size: usize,
        data_size: usize,
        params: &OpenParams,
        creator_ns: (u64, u64),
    ) -> MapRequest {
        MapRequest {
            header_size,
            data_size,
            data_writable: params.access == AccessMode::ReadWrite,
            immutable: false,
            check_size: params.check_size_on_lock,
            private: true,
            creator_ns,
        }
    }
}

fn map_fd(
    fd: SegFd,
    backing: Backing,
    req: MapRequest,
    op: Operation,
    label: &str,
) -> Result<MappedInner> {
    let map_len = req.header_size + req.data_size;
    #[cfg(not(qshm_posix_portable))]
    let forks_before = crate::sys::fork::forks_started();
    #[cfg(qshm_posix_portable)]
    if !req.immutable && !fd.takes_record_locks() {
        return Err(Error::new(ErrorKind::Unsupported, op, label).with_detail(
            "the system takes no record locks on this descriptor (a shared memory \
                 object, as FreeBSD's memfds are?), so its lock's holders could not be told \
                 alive or dead: use a file segment",
        ));
    }
    let prot = if req.immutable {
        ProtFlags::READ
    } else {
        ProtFlags::READ | ProtFlags::WRITE
    };
    // SAFETY: a null address lets the kernel choose where to map; this creates a new mapping
    // and does not modify any existing one. `fd` is open and at least `map_len` bytes long
    // (checked by the callers).
    let addr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            map_len,
            prot,
            MapFlags::SHARED,
            &fd,
            0,
        )
    }
    .map_err(|e| {
        Ctx::label(op, label)
            .errno(e)
            .with_detail(format!("mmap failed ({e})"))
    })?;
    let map = NonNull::new(addr.cast::<u8>()).expect("mmap never returns null on success");
    let mut writable = !req.immutable;
    let mut read_only_view = None;
    if !req.immutable && !req.data_writable {
        if req.header_size % page_size() != 0 {
            // SAFETY: as for the first mapping: a new read-only mapping of the same file.
            let view = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    ProtFlags::READ,
                    MapFlags::SHARED,
                    &fd,
                    0,
                )
            };
            match view {
                Ok(view) => read_only_view = NonNull::new(view.cast::<u8>()),
                Err(e) => {
                    // SAFETY: unmapping the mapping created above, which nothing references.
                    let _ = unsafe { rustix::mm::munmap(addr, map_len) };
                    return Err(Ctx::label(op, label)
                        .errno(e)
                        .with_detail(format!("mmap failed ({e})")));
                }
            }
        } else {
            // SAFETY: the range lies inside the mapping just created, which nothing else
            // references yet; mprotect only removes write permission from it.
            let r = unsafe {
                rustix::mm::mprotect(
                    addr.cast::<u8>().add(req.header_size).cast::<c_void>(),
                    req.data_size,
                    MprotectFlags::READ,
                )
            };
            if let Err(e) = r {
                // SAFETY: unmapping the mapping created above, which nothing references.
                let _ = unsafe { rustix::mm::munmap(addr, map_len) };
                return Err(Ctx::label(op, label)
                    .errno(e)
                    .with_detail(format!("mprotect failed ({e})")));
            }
        }
        writable = false;
    }
    let lock = if req.immutable {
        LockKind::Immutable(ImmutableLock)
    } else {
        let base = addr.cast::<u8>();
        #[cfg(qshm_posix_portable)]
        let live = owners::RecordOwners::new(fd.clone());
        #[cfg(not(qshm_posix_portable))]
        let live = {
            let (pid_ns, time_ns) = namespaces();
            let same = |theirs: u64, ours: u64| theirs != 0 && theirs == ours;
            let ns = SameNamespaces {
                pid: same(req.creator_ns.0, pid_ns),
                time: same(req.creator_ns.1, time_ns),
            };
            // SAFETY: `fd` moves into the segment, which drops the lock before closing it.
            unsafe { Liveness::new(fd.as_raw_fd(), req.private, ns) }
        };
        // SAFETY: the header lies at the start of the mapping, which is page-aligned, so the
        // fields at offsets 64, 72 and 80 are aligned; the header page stays mapped writable
        // for as long as the lock lives (it is dropped before the munmap in `close`); every
        // process accesses these fields atomically (the protocol of qshm.h).
        unsafe {
            LockKind::Robust(RobustLock::new(
                base.add(std::mem::offset_of!(Header, lock)).cast(),
                base.add(std::mem::offset_of!(Header, state)).cast(),
                base.add(std::mem::offset_of!(Header, generation)).cast(),
                live,
            ))
        }
    };
    // SAFETY: `header_size < map_len`, and both mappings are `map_len` bytes long, so the
    // result stays inside a mapping, whose address is not null.
    let data = unsafe {
        NonNull::new_unchecked(read_only_view.unwrap_or(map).as_ptr().add(req.header_size))
    };
    Ok(MappedInner {
        map,
        map_len,
        read_only_view,
        data,
        header_size: req.header_size,
        data_size: req.data_size,
        writable,
        check_size: req.check_size,
        lock,
        fd,
        #[cfg(qshm_posix_portable)]
        joined: false,
        private: req.private,
        creator_ns: req.creator_ns,
        backing,
        #[cfg(not(qshm_posix_portable))]
        forks_before,
        closed: false,
    })
}

/// Refuses a new segment larger than the room left on its file system (see
/// `check_room`), without touching a page.
fn check_room(fd: &OwnedFd, total: usize, op: Operation, label: &str) -> Result<()> {
    super::check_room(fd, total as u64).map_err(|avail| {
        Error::new(ErrorKind::OutOfResources, op, label).with_detail(format!(
            "not enough room for the segment's {total} bytes ({avail} bytes free)"
        ))
    })
}

fn size_err(e: Errno, op: Operation, label: &str) -> Error {
    let err = Ctx::label(op, label).errno(e);
    match e {
        Errno::FBIG | Errno::INVAL => err.with_kind(ErrorKind::InvalidSize),
        Errno::NOSPC | Errno::NOMEM => err.with_kind(ErrorKind::OutOfResources),
        _ => err,
    }
}

impl MappedInner {
    /// The data area: its first byte.
    #[inline]
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.data.as_ptr()
    }

    pub(crate) fn data_size(&self) -> usize {
        self.data_size
    }

    pub(crate) fn header_size(&self) -> usize {
        self.header_size
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    pub(crate) fn backing(&self) -> &Backing {
        &self.backing
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The descriptor the segment keeps ([`SegFd`]).
    pub(crate) fn seg_fd(&self) -> &SegFd {
        &self.fd
    }

    /// The path a child handed this segment should take part in removing, named to it where
    /// it has no `/proc` to find it (`pass_to_child`): a file flagged remove-on-last-detach.
    pub(crate) fn removal_path(&self) -> Option<&Path> {
        if cfg!(qshm_posix_portable) {
            self.backing.removes_at()
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn segment_lock(&self) -> &LockKind {
        &self.lock
    }

    /// Identities and liveness of the processes using the segment (its lock's
    /// [`Owners`](crate::sys::word_lock::Owners)); `None` for a write-sealed segment.
    pub(crate) fn owners(&self) -> Option<&dyn crate::sys::word_lock::Owners> {
        match &self.lock {
            LockKind::Robust(l) => Some(l.owners()),
            LockKind::Immutable(_) => None,
        }
    }

    /// The change counter and its sleeper count in this segment's header, mapped anew.
    pub(crate) fn change_words(&self, label: &str) -> Result<crate::sys::notify::ChangeWords> {
        crate::sys::notify::ChangeWords::of_mapped(
            self.fd.as_fd(),
            self.header_size,
            !matches!(self.lock, LockKind::Immutable(_)),
            label,
        )
    }

    /// How many times the lock was taken over from a dead holder.
    /// The layout stamp the header records (version, hash); (0, 0): none.
    pub(crate) fn layout(&self) -> (u32, u64) {
        // SAFETY: `map` is the page-aligned start of the header mapping (readable, at least
        // a header long), which stays mapped while `self` is borrowed (only `close` and
        // `seal_write`, which take `&mut self` or `self`, unmap it).
        unsafe { crate::sys::segment_header::mapped_layout(self.map.as_ptr()) }
    }

    pub(crate) fn lock_generation(&self) -> u64 {
        match &self.lock {
            LockKind::Robust(l) => l.generation(),
            LockKind::Immutable(_) => 0,
        }
    }

    /// Whether the backing file system keeps the pages in RAM only.
    pub(crate) fn is_ram_backed(&self) -> bool {
        rustix::fs::fstatfs(&self.fd).is_ok_and(|s| is_ram_fs(&s))
    }

    /// The seals on the descriptor (empty for plain files).
    fn seals(&self) -> SealFlags {
        seals::get(&self.fd).unwrap_or(SealFlags::empty())
    }

    pub(crate) fn is_shrink_sealed(&self) -> bool {
        self.seals().contains(SealFlags::SHRINK)
    }

    pub(crate) fn is_write_sealed(&self) -> bool {
        self.seals().contains(SealFlags::WRITE)
    }

    /// Seals a memfd against writing (after unmapping every writable mapping of ours), then
    /// maps it again read-only. Fails with `Busy`-like errors when another process still has
    /// it mapped writable.
    pub(crate) fn seal_write(mut self, label: &str) -> Result<MappedInner> {
        let op = Operation::Seal;
        if !matches!(self.backing, Backing::Memfd) {
            return Err(Error::new(ErrorKind::Unsupported, op, label)
                .with_detail("only memfd segments can be sealed"));
        }
        if matches!(self.lock, LockKind::Immutable(_)) {
            return Ok(self);
        }
        let word = self.lock_word();
        if word != 0 {
            return Err(Error::new(ErrorKind::LockError, op, label)
                .with_detail("the segment's lock is held"));
        }
        #[cfg(not(qshm_posix_portable))]
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0)
            .map_err(|e| Ctx::label(op, label).errno(e))?;
        #[cfg(qshm_posix_portable)]
        let fd = self.fd.clone();
        self.unmap();
        let sealed = seals::add(&fd, SealFlags::WRITE);
        let sealed_ok = sealed.is_ok();
        let header_size = self.header_size;
        let data_size = self.data_size;
        let req = MapRequest {
            header_size,
            data_size,
            data_writable: !sealed_ok,
            immutable: sealed_ok,
            check_size: false,
            // A duplicate shares the description of ours.
            private: self.private,
            creator_ns: self.creator_ns,
        };
        let remapped = map_fd(fd, Backing::Memfd, req, op, label);
        match (sealed, remapped) {
            (Ok(()), Ok(m)) => Ok(m),
            (Err(e), _) => Err(Ctx::label(op, label).errno(e).with_detail(match e {
                Errno::BUSY => "another process still maps the memfd writable (EBUSY)".to_string(),
                Errno::PERM => {
                    "the memfd does not allow this seal (F_SEAL_SEAL, or not sealable)".to_string()
                }
                other => format!("cannot add F_SEAL_WRITE ({other})"),
            })),
            (Ok(()), Err(e)) => Err(e),
        }
    }

    fn lock_word(&self) -> u64 {
        // SAFETY: offset 64 of the page-aligned mapping is an aligned u64 inside it, and every
        // process accesses the lock word only atomically.
        let word = unsafe {
            &*self
                .map
                .as_ptr()
                .add(std::mem::offset_of!(Header, lock))
                .cast::<AtomicU64>()
        };
        word.load(Ordering::Relaxed)
    }

    fn unmap(&mut self) {
        if self.map_len != 0 {
            // The lock points into the header: it goes first (see `map_fd`).
            self.lock = LockKind::Immutable(ImmutableLock);
            // SAFETY: `map..map+map_len` is the mapping this value created; the only things
            // pointing into it were the lock (gone, above) and slices lent by `Locked`,
            // which borrow the owner of this value and so are gone by the time it can be
            // closed (`close` takes `&mut self` or runs in drop).
            let _ = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), self.map_len) };
            if let Some(view) = self.read_only_view.take() {
                // SAFETY: as above, for the read-only view of the same length.
                let _ = unsafe { rustix::mm::munmap(view.as_ptr().cast(), self.map_len) };
            }
            self.map_len = 0;
        }
    }

    /// Unmaps and closes; a file flagged remove-on-last-detach is removed when no other
    /// qshm user holds it. Returns whether the file was removed.
    pub(crate) fn close(&mut self) -> std::result::Result<bool, Errno> {
        if self.closed {
            return Ok(false);
        }
        self.closed = true;
        self.unmap();
        #[cfg(qshm_posix_portable)]
        return self.leave();
        #[cfg(not(qshm_posix_portable))]
        let removal = match &self.backing {
            Backing::File {
                path,
                remove_on_last_detach: true,
                opener,
            } => Some((path, Some(*opener))),
            // Received: the description is this process's own (reopened on receipt).
            Backing::Fd {
                remove_at: Some(path),
            } => Some((path, None)),
            _ => None,
        };
        #[cfg(not(qshm_posix_portable))]
        if let Some((path, opener)) = removal {
            // Whether this is a copy in another process than the opener's: the pid asked
            // once (a system call: glibc no longer caches it), and not for a received fd.
            let foreign = opener.is_some_and(|opener| opener != std::process::id());
            // A copy in a process forked from the opener shares the descriptor's open file
            // description, and so the opener's shared flock: turning it exclusive would
            // succeed while the opener still uses the file. Such a copy asks with a
            // descriptor of its own (closing the shared one first, which ends the count if
            // the opener has gone). So does an opener with children forked since the mapping
            // was made: one forked without exec still holds the description, and so the
            // count, through its copy. Children forked before cannot (no reopen, and no
            // retries for a copy: the common case of a process with long-lived children).
            let copied = foreign || crate::sys::fork::forks_started() != self.forks_before;
            if copied && (foreign || super::has_children()) {
                let ino = rustix::fs::fstat(&self.fd)?.st_ino;
                match super::reopen_same_file(path, false, ino)? {
                    Some(fresh) => self.fd = fresh,
                    None => return Ok(false),
                }
            }
            return match super::flock_exclusive_settled(&self.fd, copied)? {
                true => unlink_if_same(path, &self.fd),
                false => Ok(false),
            };
        }
        #[cfg(not(qshm_posix_portable))]
        Ok(false)
    }

    /// Counts this handle out of the file's users (`record_lock.rs`); the last user anywhere
    /// removes a file flagged remove-on-last-detach. Whether it removed it.
    #[cfg(qshm_posix_portable)]
    fn leave(&mut self) -> std::result::Result<bool, Errno> {
        if !std::mem::take(&mut self.joined) {
            return Ok(false);
        }
        match (self.fd.leave(), self.backing.removes_at()) {
            (Some(last), Some(path)) => last
                .remove_at(path)
                .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO)),
            _ => Ok(false),
        }
    }
}

/// The lock of a segment nobody can write (a write-sealed memfd): nothing to exclude, so
/// taking it always succeeds at once.
#[derive(Debug, Default)]
pub(crate) struct ImmutableLock;

impl SegmentLock for ImmutableLock {
    fn lock(&self, _: Wait, _: Operation) -> Result<bool> {
        Ok(false)
    }

    fn unlock(&self) -> Result<()> {
        Ok(())
    }
}

impl Drop for MappedInner {
    fn drop(&mut self) {
        // Errors are ignored: the only way to report them would be through panicking.
        let _ = self.close();
    }
}

// SAFETY: `data_ptr()..+data_size` lies inside the mapping, which stays mapped while the
// value lives (only `close`/`seal_write`, which need `&mut self` or ownership, unmap it).
// New files and memfds are zero-filled by the kernel (ftruncate), so the bytes are
// initialised. `writable()` is true only when the data area is mapped PROT_WRITE.
unsafe impl Mapping for MappedInner {
    #[inline]
    fn ptr(&self) -> *mut u8 {
        self.data_ptr()
    }

    #[inline]
    fn len(&self) -> usize {
        self.data_size
    }

    #[inline]
    fn writable(&self) -> bool {
        self.writable
    }

    /// The lock word is in the header, in the file: a file truncated below it would make
    /// taking the lock SIGBUS, so the size is checked before it is taken.
    #[inline]
    fn check_before_lock(&self) -> Result<()> {
        self.check_size_if_asked()
    }

    /// Checked again under the lock, before a slice is lent: the file may have been
    /// truncated since the check before it (while this waited, or by a holder in between).
    #[inline]
    fn check_locked(&self) -> Result<()> {
        self.check_size_if_asked()
    }
}

impl MappedInner {
    /// The lock's size check, when the segment asks for it (`check_size_on_lock`).
    #[inline]
    fn check_size_if_asked(&self) -> Result<()> {
        if !self.check_size {
            return Ok(());
        }
        self.check_size_now()
    }

    /// The size check made before and under the lock: one `fstat`.
    pub(crate) fn check_size_now(&self) -> Result<()> {
        let needed = (self.header_size + self.data_size) as u64;
        let st =
            rustix::fs::fstat(&self.fd).map_err(|e| Ctx::label(Operation::Lock, "").errno(e))?;
        if (st.st_size as u64) < needed {
            return Err(
                Error::new(ErrorKind::InvalidSize, Operation::Lock, "").with_detail(format!(
                "the file was truncated to {} bytes by someone else; the segment needs {needed}: \
                 refusing to lend memory that is no longer backed",
                st.st_size
            )),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
