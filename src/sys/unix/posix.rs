//! POSIX realtime shared memory and the C library's named semaphores, as Qt uses them
//! (docs/qt-ipc.md §4.2, §5),
//! with the two things Qt's POSIX backend lacks: segments removed by the last detach, and a
//! lock that survives its holder's death.
//!
//! # Names
//!
//! A native key `/name` is the file `/dev/shm/name` (glibc's `shm_open`, which is what
//! `open("/dev/shm/name", …|O_NOFOLLOW|O_CLOEXEC)` is) and the semaphore `/dev/shm/sem.name`
//! (glibc's `sem_open`). Names are checked before any system call.
//!
//! # Attach counting
//!
//! Every qshm attachment holds a shared `flock` on its own descriptor of the segment; the
//! kernel drops it when the process dies, so a crash cannot corrupt the count. A detacher
//! that can turn its lock exclusive is the last qshm user; it then removes the segment only
//! if no other process maps it. Qt takes no part in the count, so the kernel is asked: a
//! write lease (`F_SETLEASE`, taken and released at once) is granted only when no other open
//! file description of the file exists, and every mapping keeps the one it was made from.
//! When it is granted, only children forked by this process can still map the file, and
//! their `/proc/<pid>/maps` are read; when it is refused (a Qt process maps the file, say)
//! or unavailable (not the file's owner), every process's maps are, matching the file by
//! device and inode. The lock's semaphore is checked the same way before it is removed.
//! The check and the removal happen under the segment's lock, holding the count
//! exclusively.
//!
//! Neither attach nor a detach that is not the last needs the segment's lock, which is
//! what lets them cost what Qt's cost (Qt keeps its semaphore open and takes it without a
//! system call; qshm opens the lock only at the first `lock()`):
//!
//! * an attacher opens the file, takes its shared count (waiting while a last detach
//!   holds it exclusively) and only then reads `st_nlink`: a file the last detach unlinked
//!   meanwhile is given up and the name looked up again;
//! * a detacher unmaps, then tries to turn its count exclusive, which drops its shared
//!   count first (`flock(2)`): when it fails, another attachment is still counted and that
//!   one will do the last detach's checks (of several leaving at once, the last to try
//!   cannot fail because of the others, whose counts are gone); when it succeeds, it drops
//!   the count again, takes the segment's lock and checks once more, as above;
//! * a creator makes the file unnamed (`O_TMPFILE`), sizes and maps it, and links it under
//!   the name last, so nobody finds a half-made qshm segment. A Qt creator names its file
//!   before sizing it, under the lock: an attacher that finds the file empty attaches
//!   under the lock instead;
//! * a copy of an attachment in a forked process (no exec) shares its open file
//!   description, and so its count: before touching the count it opens the file anew
//!   ([`PosixSegment::own_descriptor`]), and its lock's last-user check reads every
//!   process's maps, since the lease cannot tell it from the process it was forked from.
//!
//! # The lock and its owner record
//!
//! The lock is the C library's semaphore Qt uses (`sem_wait`/`sem_post`), so Qt and qshm
//! exclude each other. qshm keeps an *owner record* in bytes 16..24 of the semaphore file
//! and a state word in bytes 24..32 (see [`SEM_FILE_LEN`]): the holder's pid and process
//! start time, written after `sem_wait` and cleared before `sem_post`. Where the record lives
//! depends on the C library, and is checked at compile time:
//!
//! * 64-bit glibc: `sem_t` is 32 bytes, of which `struct new_sem` uses the first 16 (value
//!   and waiter count, `private`, padding); `sem_open` zero-fills the rest. The record is in
//!   that unused tail.
//! * 32-bit glibc: `sem_t` is 16 bytes, all used. The record is *beside* it: qshm makes the
//!   file 32 bytes long (a semaphore file Qt made, 16 bytes, is lengthened to 32 the first
//!   time qshm opens it; glibc maps only the first 16 and never looks past them).
//! * musl: `sem_t` is 32 bytes on 64-bit targets, of which musl uses the first 12: the
//!   record is in the tail, as on 64-bit glibc. On 32-bit targets it is 16 bytes, and the
//!   record is beside it, as on 32-bit glibc.
//!
//! A waiter that has waited [`SLICE`] without success reads it; when the recorded process is gone (or its pid now
//! belongs to a younger process) while the semaphore is still taken, the waiter takes the
//! record over with a compare-and-swap (exactly one waiter wins), and with it the unit the
//! dead holder never gave back, and reports that the owner died. Bytes 24..32 hold a state
//! word whose bit 0 says "a holder died and nobody has declared the data consistent since":
//! every later holder is told, until one calls `mark_consistent`.
//!
//! What remains: a Qt process writes no record, so a Qt holder that dies still blocks
//! everyone, Qt and qshm (Qt's own behaviour, docs/qt-ipc.md §8.2); and a qshm process
//! killed in the
//! few instructions between taking the semaphore and writing its record, or between
//! clearing it and posting, cannot be recognised.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man3/shm_open.3.html>, `sem_open(3)`,
//!   `sem_overview(7)`, `flock(2)`, `fcntl(2)` (leases), `proc_pid_maps(5)`

use std::ffi::c_int;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::fd::OwnedFd;
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::mm::{MapFlags, ProtFlags};

use super::{errno, Ctx};
use crate::backend::{Detached, RawSegment, RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::procfs::{mapped_files, process_stat, FileId};
use crate::{AccessMode, NativeKey};

/// Where glibc keeps POSIX shared memory and semaphores.
const SHM_DIR: &str = "/dev/shm/";

/// The longest file name Linux allows.
const NAME_MAX: usize = 255;

/// How long a waiter sleeps on the semaphore before it checks whether the holder died.
const SLICE: Duration = Duration::from_millis(50);

/// The longest value of a POSIX semaphore (`SEM_VALUE_MAX`).
const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// The size of the C library's `sem_t`.
const SEM_T_LEN: usize = std::mem::size_of::<libc::sem_t>();

/// How much of a semaphore file qshm maps and keeps: the `sem_t`, and at least the owner
/// record (bytes 16..24) and the state word (24..32) (see the module docs).
pub(crate) const SEM_FILE_LEN: usize = if SEM_T_LEN > 32 { SEM_T_LEN } else { 32 };

// The C libraries whose `sem_t` layout the record and `sem_head` rely on.
#[cfg(qshm_libc = "glibc64")]
const _: () = assert!(SEM_T_LEN == 32);
#[cfg(qshm_libc = "glibc32")]
const _: () = assert!(SEM_T_LEN == 16);
#[cfg(qshm_libc = "musl")]
const _: () = assert!(SEM_T_LEN == 4 * std::mem::size_of::<std::ffi::c_long>());

/// The value and the waiter count in the first 16 bytes of a `sem_t`, as the C library
/// keeps them (native byte order).
pub(crate) fn sem_head(head: [u8; 16]) -> (u32, u32) {
    #[cfg(any(qshm_libc = "glibc32", qshm_libc = "musl"))]
    let u32_at =
        |at: usize| u32::from_ne_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    #[cfg(qshm_libc = "glibc64")]
    {
        // struct new_sem { uint64_t data; int private; int pad; }: the value in the low
        // 32 bits of `data`, the waiter count in the high 32 (glibc's SEM_NWAITERS_SHIFT).
        let data = u64::from_ne_bytes(head[..8].try_into().unwrap_or_default());
        (data as u32, (data >> 32) as u32)
    }
    #[cfg(qshm_libc = "glibc32")]
    {
        // struct new_sem { unsigned value; int private; int pad; unsigned nwaiters; }: the
        // value shifted left by one (SEM_VALUE_SHIFT), bit 0 set while there are waiters.
        (u32_at(0) >> 1, u32_at(12))
    }
    #[cfg(qshm_libc = "musl")]
    {
        // int __val[]: [0] the value (its top bit flags waiters in musl 1.2; -1 in older
        // ones means 0 with waiters), [1] the waiter count, [2] the sharing flag.
        let value = match u32_at(0) {
            u32::MAX => 0,
            v => v & 0x7fff_ffff,
        };
        (value, u32_at(4))
    }
}

/// Checks a POSIX native key and returns the file name under `/dev/shm` (without the `/`).
/// `prefix` is what glibc puts before it (`"sem."` for semaphores).
fn file_name<'k>(ctx: Ctx<'_>, native: &'k str, prefix: &str) -> Result<&'k str> {
    let err = |detail: String| {
        Error::new(ErrorKind::KeyError, ctx.op, ctx.key.to_string()).with_detail(detail)
    };
    let Some(name) = native.strip_prefix('/') else {
        return Err(err("a POSIX name must start with `/`".into()));
    };
    if name.is_empty() {
        return Err(err("the name after the `/` is empty".into()));
    }
    if name.contains('/') {
        return Err(err(
            "a POSIX name has no `/` after the first character".into()
        ));
    }
    if name == "." || name == ".." {
        return Err(err(format!("`{native}` is not a valid POSIX name")));
    }
    if name.contains('\0') {
        return Err(err("the name contains a NUL character".into()));
    }
    let len = prefix.len() + name.len();
    if len > NAME_MAX {
        return Err(err(format!(
            "the name is {} bytes; Linux allows {} here",
            name.len(),
            NAME_MAX - prefix.len()
        )));
    }
    Ok(name)
}

fn shm_path(name: &str) -> String {
    format!("{SHM_DIR}{name}")
}

fn io_err(ctx: Ctx<'_>, e: rustix::io::Errno) -> Error {
    ctx.err(e.raw_os_error())
}

/// A mapped POSIX shared memory segment.
pub(crate) struct PosixSegment {
    fd: OwnedFd,
    /// The file's inode, to tell it from another file given its name later.
    ino: u64,
    addr: NonNull<u8>,
    len: usize,
    writable: bool,
    path: String,
    mapped: bool,
    /// The process that opened `fd`. A process forked from it shares `fd`'s open file
    /// description, and with it the attach count: see [`PosixSegment::own_descriptor`].
    opener: u32,
}

// SAFETY: the struct owns a descriptor and a mapping, neither tied to the thread that made
// them; munmap and close may run on any thread. It never reads or writes the mapped bytes
// itself: access goes through `Locked`, which requires the cross-process lock. Checked at
// compile time in `tests::send_sync`.
unsafe impl Send for PosixSegment {}
// SAFETY: `&PosixSegment` exposes only the address, the length and the descriptor's number;
// see the `Send` justification for the bytes.
unsafe impl Sync for PosixSegment {}

impl fmt::Debug for PosixSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PosixSegment")
            .field("path", &self.path)
            .field("addr", &self.addr)
            .field("len", &self.len)
            .finish()
    }
}

fn open_existing(path: &str, access: AccessMode) -> rustix::io::Result<OwnedFd> {
    let rw = match access {
        AccessMode::ReadOnly => OFlags::RDONLY,
        AccessMode::ReadWrite => OFlags::RDWR,
    };
    rustix::fs::open(path, rw | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
}

impl PosixSegment {
    /// `create` where `O_TMPFILE` is refused: glibc's `shm_open(O_CREAT|O_EXCL)`, sized
    /// and mapped under its name (an attacher that finds it still empty waits for the
    /// lock, which the creator holds), unlinked again on failure.
    #[cold]
    fn create_named(
        ctx: Ctx<'_>,
        path: String,
        len: u64,
        access: AccessMode,
        mode: Mode,
    ) -> Result<PosixSegment> {
        let flags =
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut retried = false;
        let fd = loop {
            match rustix::fs::open(&path, flags, mode) {
                Ok(fd) => break fd,
                Err(rustix::io::Errno::EXIST) if !retried && is_half_created(&path) => {
                    retried = true;
                    let _ = rustix::fs::unlink(&path);
                }
                Err(e) => return Err(io_err(ctx, e)),
            }
        };
        PosixSegment::prepare(ctx, fd, &path, len, access, mode).inspect_err(|_| {
            let _ = rustix::fs::unlink(&path);
        })
    }

    /// The steps of `create` between opening the new file and naming it: exact mode, size,
    /// room, then counted and mapped as by `attach`.
    fn prepare(
        ctx: Ctx<'_>,
        fd: OwnedFd,
        path: &str,
        len: u64,
        access: AccessMode,
        mode: Mode,
    ) -> Result<PosixSegment> {
        rustix::fs::ftruncate(&fd, len).map_err(|e| {
            let err = io_err(ctx, e);
            if matches!(e, rustix::io::Errno::INVAL | rustix::io::Errno::FBIG) {
                err.with_kind(ErrorKind::InvalidSize)
            } else {
                err
            }
        })?;
        if let Err(avail) = super::check_room(&fd, len) {
            return Err(ctx.kind(ErrorKind::OutOfResources, "").with_detail(format!(
                "not enough room in /dev/shm for the segment ({avail} bytes free)"
            )));
        }
        rustix::fs::flock(&fd, FlockOperation::LockShared).map_err(|e| io_err(ctx, e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err(ctx, e))?;
        exact_mode(&fd, &st, mode).map_err(|e| io_err(ctx, e))?;
        PosixSegment::map(ctx, fd, &st, path.to_owned(), access)
    }

    fn map(
        ctx: Ctx<'_>,
        fd: OwnedFd,
        st: &rustix::fs::Stat,
        path: String,
        access: AccessMode,
    ) -> Result<PosixSegment> {
        let Ok(len) = usize::try_from(st.st_size) else {
            return Err(ctx.kind(
                ErrorKind::InvalidSize,
                "the segment is larger than the address space",
            ));
        };
        let (prot, writable) = match access {
            AccessMode::ReadOnly => (ProtFlags::READ, false),
            AccessMode::ReadWrite => (ProtFlags::READ | ProtFlags::WRITE, true),
        };
        let addr = map_file(&fd, len, prot).map_err(|e| {
            let err = io_err(ctx, e);
            if e == rustix::io::Errno::NOMEM {
                err.with_kind(ErrorKind::OutOfResources)
            } else {
                err
            }
        })?;
        Ok(PosixSegment {
            fd,
            ino: st.st_ino,
            addr,
            len,
            writable,
            path,
            mapped: true,
            opener: my_pid(),
        })
    }

    fn unmap(&mut self) {
        if self.mapped {
            self.mapped = false;
            // SAFETY: `addr`/`len` are this object's own mapping, made by mmap and not
            // unmapped before (`mapped` was true); no borrow of the bytes outlives the
            // object, since borrows come from `Locked`, which borrows it.
            let _ = unsafe { rustix::mm::munmap(self.addr.as_ptr().cast(), self.len) };
        }
    }

    /// Makes sure the descriptor is this process's own before its attach count is touched.
    ///
    /// A process forked from the one that opened it (and that did not exec) shares its open
    /// file description, and so its `flock`: turning it exclusive would drop the other
    /// process's count, or leave it holding an exclusive lock that blocks every attacher,
    /// and the file lease would see no other description and look only at this process's
    /// children. So the forked copy, already unmapped, closes the shared descriptor and
    /// opens the file anew, counted from then on like any other attachment. `Err` when the
    /// name no longer refers to this segment (removed, or replaced since).
    fn own_descriptor(&mut self) -> std::result::Result<(), Detached> {
        let me = my_pid();
        if self.opener == me {
            return Ok(());
        }
        match super::reopen_same_file(self.path.as_ref(), self.writable, self.ino) {
            Ok(Some(fresh)) => {
                self.fd = fresh; // closes the shared one
                self.opener = me;
                Ok(())
            }
            Ok(None) => Err(Detached::AlreadyRemoved),
            Err(_) => Err(Detached::Kept),
        }
    }

    /// Maps and counts again a segment [`detach_unlocked`] handed back, so that the object
    /// stays attached when the detach cannot finish. The address may differ.
    ///
    /// [`detach_unlocked`]: PosixSegment::detach_unlocked
    fn remap_file(&mut self) -> rustix::io::Result<()> {
        if self.mapped {
            return Ok(());
        }
        flock_shared(&self.fd)?;
        let prot = if self.writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        self.addr = map_file(&self.fd, self.len, prot)?;
        self.mapped = true;
        Ok(())
    }
}

impl crate::backend::sealed::Sealed for PosixSegment {}

// SAFETY: `addr..addr+len` is this value's own shared mapping of the segment file, unmapped
// only by `detach`/`detach_unlocked` (which consume the value or hand it back for `remap`,
// never to a borrower) or Drop; a new segment's file is zero-filled by the kernel;
// `writable` is true only for mappings made with PROT_WRITE.
unsafe impl RawSegment for PosixSegment {
    /// Creates the segment whole before giving it its name: an unnamed file in `/dev/shm`
    /// (`O_TMPFILE`) is sized, checked for room (no page is touched: the cost does not
    /// depend on the size; `populate` allocates the pages when asked), counted and mapped,
    /// and only then linked under the name (which fails, `AlreadyExists`, when the name is
    /// taken). Nobody can attach to a half-made qshm segment, and a failed or interrupted
    /// create leaves nothing behind. Where unnamed files are not available, glibc's
    /// `shm_open(O_CREAT|O_EXCL)` is what it does instead.
    #[doc(alias = "shm_open")]
    fn create(key: &NativeKey, size: usize, access: AccessMode, mode: u32) -> Result<PosixSegment> {
        let ctx = Ctx {
            op: Operation::Create,
            key,
        };
        let name = file_name(ctx, key.native_key(), "")?;
        let path = shm_path(name);
        let mode = Mode::from_raw_mode(mode & 0o777);
        let Ok(len) = u64::try_from(size) else {
            return Err(ctx.kind(ErrorKind::InvalidSize, "size too large"));
        };
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(SHM_DIR, flags, mode) {
            Ok(fd) => fd,
            Err(
                rustix::io::Errno::OPNOTSUPP
                | rustix::io::Errno::ISDIR
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::NOENT,
            ) => return PosixSegment::create_named(ctx, path, len, access, mode),
            Err(e) => return Err(io_err(ctx, e)),
        };
        // A name already taken is what a caller most needs to hear about, before any
        // complaint about the size (Qt's order: shm_open fails first).
        let taken = |err: Error| {
            if std::fs::symlink_metadata(&path).is_ok() && !is_half_created(&path) {
                io_err(ctx, rustix::io::Errno::EXIST)
            } else {
                err
            }
        };
        let seg = PosixSegment::prepare(ctx, fd, &path, len, access, mode).map_err(taken)?;
        let mut retried = false;
        loop {
            match link_unnamed(&seg.fd, &path) {
                Ok(()) => return Ok(seg),
                Err(rustix::io::Errno::EXIST) if !retried && is_half_created(&path) => {
                    // Size 0 under the lock: a creator (Qt's, which names the file before
                    // sizing it) died between shm_open and ftruncate. Nobody can be using
                    // it; replace it.
                    retried = true;
                    let _ = rustix::fs::unlink(&path);
                }
                // No /proc to name the descriptor by.
                Err(rustix::io::Errno::NOENT)
                    if !std::path::Path::new("/proc/self/fd").exists() =>
                {
                    drop(seg);
                    return PosixSegment::create_named(ctx, path, len, access, mode);
                }
                Err(e) => return Err(io_err(ctx, e)),
            }
        }
    }

    /// Attaches with the segment's lock held (when [`attach_unlocked`] could not): open,
    /// `flock(LOCK_SH)`, `fstat` for the size, `mmap`.
    ///
    /// [`attach_unlocked`]: PosixSegment::attach_unlocked
    fn attach(key: &NativeKey, access: AccessMode) -> Result<PosixSegment> {
        let ctx = Ctx {
            op: Operation::Attach,
            key,
        };
        let path = shm_path(file_name(ctx, key.native_key(), "")?);
        let Some((fd, st)) = open_counted(ctx, &path, access)? else {
            return Err(ctx.kind(ErrorKind::NotFound, "removed while being attached"));
        };
        if st.st_size == 0 {
            // With the lock held, a creator cannot be half-way: Qt's died between shm_open
            // and ftruncate.
            return Err(ctx.kind(
                ErrorKind::NotFound,
                "does not exist (its creator died creating it)",
            ));
        }
        PosixSegment::map(ctx, fd, &st, path, access)
    }

    /// Attaches without the segment's lock, which the attach count makes safe: a last
    /// detach removes the segment while holding the count's exclusive `flock`, so an
    /// attacher that opened the file just before gets its shared `flock` only afterwards,
    /// sees the file unlinked (`st_nlink == 0`) and looks again. `Ok(None)` when the file
    /// is still empty (a Qt creator names it before sizing it, under the lock): the caller
    /// then attaches under the lock.
    fn attach_unlocked(key: &NativeKey, access: AccessMode) -> Result<Option<PosixSegment>> {
        let ctx = Ctx {
            op: Operation::Attach,
            key,
        };
        let path = shm_path(file_name(ctx, key.native_key(), "")?);
        for _ in 0..100 {
            let Some((fd, st)) = open_counted(ctx, &path, access)? else {
                continue; // removed while we waited for the count: look again
            };
            if st.st_size == 0 {
                return Ok(None);
            }
            return PosixSegment::map(ctx, fd, &st, path, access).map(Some);
        }
        Err(ctx.kind(
            ErrorKind::NotFound,
            "the segment kept being removed while being attached",
        ))
    }

    fn ptr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn writable(&self) -> bool {
        self.writable
    }

    /// Unmaps and, when this is certainly not the last attachment, finishes the detach
    /// without the segment's lock: `None`. `Some` (unmapped, no longer counted) when it may
    /// be the last one: the caller takes the lock and calls [`detach`], or [`remap`] when it
    /// cannot have the lock.
    ///
    /// Turning a shared `flock` exclusive first drops it (flock(2)), so of several
    /// attachments leaving at once the last to try succeeds: the others fail because it
    /// still held its count, and it does not fail because of theirs. The exclusive lock is
    /// dropped again before the caller waits for the segment's lock, so that no one holds
    /// the count while waiting (an attach under the lock takes the count).
    ///
    /// [`detach`]: PosixSegment::detach
    /// [`remap`]: PosixSegment::remap
    fn detach_unlocked(mut self, remove_if_last: bool) -> Option<PosixSegment> {
        self.unmap();
        if !remove_if_last || self.own_descriptor().is_err() {
            return None;
        }
        match rustix::fs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive) {
            // Someone else is attached, or is leaving and will do the last detach's checks.
            Err(rustix::io::Errno::WOULDBLOCK) => None,
            Ok(()) => {
                let _ = rustix::fs::flock(&self.fd, FlockOperation::Unlock);
                Some(self)
            }
            Err(_) => Some(self),
        }
    }

    /// Unmaps; when this was the last attachment anywhere (qshm's shared `flock`s and every
    /// process's mappings), removes the segment.
    /// The key file argument is System V's: a POSIX segment has none.
    fn detach(mut self, remove_if_last: bool, _remove_key_file: bool) -> Result<Detached> {
        self.unmap();
        if !remove_if_last {
            return Ok(Detached::Kept);
        }
        if let Err(gone) = self.own_descriptor() {
            return Ok(gone);
        }
        if !is_last_user(&self.fd) {
            return Ok(Detached::Kept);
        }
        // Removed by `force_remove` while mapped, and perhaps made anew since: the name is
        // not this segment's any more, and the other one is not ours to remove.
        if file_inode(&self.path) != Some(self.ino) {
            return Ok(Detached::AlreadyRemoved);
        }
        match rustix::fs::unlink(&self.path) {
            Ok(()) => Ok(Detached::Removed),
            Err(rustix::io::Errno::NOENT) => Ok(Detached::AlreadyRemoved),
            Err(e) => Err(Error::from_errno(
                e.raw_os_error(),
                Operation::Detach,
                self.path.clone(),
            )),
        }
    }

    /// Removes the segment behind `key` (only when nobody uses it, if `only_if_unused`).
    /// Returns whether one was removed. The caller holds the segment's lock.
    fn remove(key: &NativeKey, only_if_unused: bool) -> Result<bool> {
        let ctx = Ctx {
            op: Operation::Remove,
            key,
        };
        let name = file_name(ctx, key.native_key(), "")?;
        let path = shm_path(name);
        // Held until after the unlink: the attach count taken exclusively, so that an
        // attacher (which takes no lock) that opened the file meanwhile sees it unlinked.
        let _counted = if only_if_unused {
            let fd = match open_existing(&path, AccessMode::ReadOnly) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => return Ok(false),
                Err(e) => return Err(io_err(ctx, e)),
            };
            if !is_last_user(&fd) {
                return Ok(false);
            }
            Some(fd)
        } else {
            None
        };
        match rustix::fs::unlink(&path) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(io_err(ctx, e)),
        }
    }

    /// Whether a segment exists behind `key`.
    fn exists(key: &NativeKey) -> bool {
        let ctx = Ctx {
            op: Operation::Remove,
            key,
        };
        file_name(ctx, key.native_key(), "")
            .is_ok_and(|name| std::path::Path::new(&shm_path(name)).exists())
    }

    fn remap(&mut self) -> Result<()> {
        self.remap_file()
            .map_err(|e| Error::from_errno(e.raw_os_error(), Operation::Detach, self.path.clone()))
    }
}

impl Drop for PosixSegment {
    fn drop(&mut self) {
        self.unmap();
    }
}

/// Gives the file open as `fd`, whose status is `st`, exactly the permissions `mode`, as
/// System V objects get (open applies the umask, which usually clears none of the bits
/// asked for: then there is nothing to do).
fn exact_mode(fd: &OwnedFd, st: &rustix::fs::Stat, mode: Mode) -> rustix::io::Result<()> {
    if st.st_mode & 0o7777 == mode.bits() {
        return Ok(());
    }
    rustix::fs::fchmod(fd, mode)
}

/// Gives the unnamed file open as `fd` (`O_TMPFILE`) the name `path`; `EEXIST` when the
/// name is taken.
///
/// `linkat(fd, "", AT_EMPTY_PATH)` names the descriptor itself; Linux allows it to anyone
/// since 6.10 for a file opened with the caller's own credentials (before, only with
/// `CAP_DAC_READ_SEARCH`). Elsewhere the descriptor is named through `/proc/self/fd`
/// (`AT_SYMLINK_FOLLOW`), the documented way and ~2.5 µs slower: a walk through procfs.
/// Which one works is remembered.
fn link_unnamed(fd: &OwnedFd, path: &str) -> rustix::io::Result<()> {
    use std::sync::atomic::AtomicBool;
    static EMPTY_PATH_REFUSED: AtomicBool = AtomicBool::new(false);
    let cwd = rustix::fs::CWD;
    if !EMPTY_PATH_REFUSED.load(Ordering::Relaxed) {
        match rustix::fs::linkat(fd, "", cwd, path, rustix::fs::AtFlags::EMPTY_PATH) {
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::PERM | rustix::io::Errno::INVAL) => {
                EMPTY_PATH_REFUSED.store(true, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    link_through_proc(fd, path)
}

/// `link_unnamed` through `/proc/self/fd/<fd>`.
fn link_through_proc(fd: &OwnedFd, path: &str) -> rustix::io::Result<()> {
    let fd_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd));
    let (cwd, follow) = (rustix::fs::CWD, rustix::fs::AtFlags::SYMLINK_FOLLOW);
    rustix::fs::linkat(cwd, fd_path.as_str(), cwd, path, follow)
}

/// `flock(LOCK_SH)`, waiting (a last detach holds the lock exclusively for a moment).
fn flock_shared(fd: &OwnedFd) -> rustix::io::Result<()> {
    loop {
        match rustix::fs::flock(fd, FlockOperation::LockShared) {
            Err(rustix::io::Errno::INTR) => {}
            other => return other,
        }
    }
}

/// Opens the segment file, counts the attachment (`flock(LOCK_SH)`) and reads its size and
/// inode; `Ok(None)` when the file was unlinked before the count was had (a last detach
/// removes it holding the count exclusively).
fn open_counted(
    ctx: Ctx<'_>,
    path: &str,
    access: AccessMode,
) -> Result<Option<(OwnedFd, rustix::fs::Stat)>> {
    let fd = open_existing(path, access).map_err(|e| io_err(ctx, e))?;
    flock_shared(&fd).map_err(|e| io_err(ctx, e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io_err(ctx, e))?;
    Ok((st.st_nlink > 0).then_some((fd, st)))
}

/// A new shared mapping of the first `len` bytes of `fd`.
fn map_file(fd: &OwnedFd, len: usize, prot: ProtFlags) -> rustix::io::Result<NonNull<u8>> {
    // SAFETY: a null address hint lets the kernel choose where to map, so this creates a new
    // mapping and modifies no existing one; the caller passes a descriptor open for the
    // access `prot` asks for. A length beyond the file's end is not an error here (touching
    // it would be): every caller passes the size the file had under its lock or count.
    let addr =
        unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0) }?;
    NonNull::new(addr.cast::<u8>()).ok_or(rustix::io::Errno::NOMEM)
}

/// A segment of size 0: what a creator that died between `shm_open` and `ftruncate` leaves.
fn is_half_created(path: &str) -> bool {
    open_existing(path, AccessMode::ReadOnly)
        .and_then(|fd| rustix::fs::fstat(&fd))
        .is_ok_and(|st| st.st_size == 0)
}

/// Whether nobody but the caller uses the segment open as `fd`: no other qshm attachment
/// holds its shared `flock`, and no other process maps the file.
fn is_last_user(fd: &OwnedFd) -> bool {
    if rustix::fs::flock(fd, FlockOperation::NonBlockingLockExclusive).is_err() {
        return false;
    }
    !used_by_another_process(fd, false)
}

/// Whether a process other than this one maps (or has open) the file open as `fd`.
///
/// First the kernel is asked whether any open file description other than `fd`'s own refers
/// to the file ([`sole_open_file`]); a mapping keeps the one it was made from, so every
/// process that opened or mapped the file itself shows up there. When none does, the only
/// possible other users are processes that share `fd`'s own description: children forked
/// by this process (and theirs), which are looked at one by one. Otherwise, or when the
/// kernel cannot tell, every process's maps are read; also when `fd` was inherited through
/// a fork (`forked`): its opener and the opener's other children share it too.
fn used_by_another_process(fd: &OwnedFd, forked: bool) -> bool {
    let scope = match sole_open_file(fd) {
        Some(true) if forked => Scope::Everyone,
        // No child at all, the usual case: nobody else.
        Some(true) if !has_children() => return false,
        Some(true) => Scope::Descendants,
        Some(false) | None => Scope::Everyone,
    };
    match rustix::fs::fstat(fd) {
        Ok(st) => mapped_by_another_process(FileId::new(st.st_dev, st.st_ino), scope),
        Err(_) => true, // cannot tell: in use
    }
}

/// `F_SETSIG` (`<fcntl.h>`; the same number on every Linux architecture, missing from the
/// `libc` crate for glibc targets).
const F_SETSIG: c_int = 10;

/// Whether `fd`'s open file description is the only one of its file anywhere: `Some(true)`
/// when the kernel grants a write lease on it, which it does only when no other description
/// of the file is open (fcntl(2), "Leases"), `Some(false)` when it refuses for that reason,
/// `None` when it cannot say (not the file's owner, leases disabled).
///
/// The lease is released at once. A process that opens the file in that instant waits for
/// the release, and the kernel signals the lease holder; the signal is set to `SIGURG`,
/// whose default action is to ignore it (`SIGIO`, the default, would kill this process).
fn sole_open_file(fd: &OwnedFd) -> Option<bool> {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl(F_SETSIG) takes an int and changes only which signal this open file
    // description raises; `raw` is a live descriptor borrowed from `fd`.
    if unsafe { libc::fcntl(raw, F_SETSIG, libc::SIGURG) } == -1 {
        return None;
    }
    // SAFETY: fcntl(F_SETLEASE) takes an int; `raw` is live.
    if unsafe { libc::fcntl(raw, libc::F_SETLEASE, libc::F_WRLCK) } == 0 {
        // SAFETY: as above; releases the lease just taken.
        unsafe { libc::fcntl(raw, libc::F_SETLEASE, libc::F_UNLCK) };
        return Some(true);
    }
    match errno() {
        libc::EAGAIN | libc::EBUSY => Some(false),
        _ => None,
    }
}

/// Which processes [`mapped_by_another_process`] reads the maps of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Every process but this one.
    Everyone,
    /// This process's descendants: when no other process has the file open, only they can
    /// still map it, through a mapping inherited from this process.
    Descendants,
}

/// Whether a process other than this one maps `file` (read from `/proc/<pid>/maps`;
/// processes of other users whose maps cannot be read cannot open a 0600 segment either).
///
/// A child this process is spawning maps everything this process maps until it calls
/// `exec` (`posix_spawn`/`vfork` even shares the address space). So children of ours that
/// map the file are looked at again, for up to about a second on a busy machine: one that
/// still does all along is a real user (a forked worker that inherited the mapping); ones
/// that exec or exit meanwhile (a program spawning processes all the time shows a new one
/// at every look) were not. Their addresses are not compared with ours: under an emulator
/// (qemu-user) another process's maps show host addresses, which differ from the ones the
/// emulated process sees, and a `vfork` there is a real fork.
fn mapped_by_another_process(file: FileId, scope: Scope) -> bool {
    let me = std::process::id();
    let mut pause = Duration::from_micros(250);
    let mut persistent: Option<std::collections::HashSet<u32>> = None;
    for _ in 0..12 {
        let mut copies = std::collections::HashSet::new();
        let pids = match scope {
            Scope::Descendants => descendants(me).unwrap_or_else(|| other_processes(me)),
            Scope::Everyone => other_processes(me),
        };
        for pid in pids {
            let at = mapping_addresses(pid, file);
            if at.is_empty() {
                continue;
            }
            match parent_of(pid) {
                // Gone since its maps were read: not a user.
                None => {}
                Some(parent) if parent == me => {
                    copies.insert(pid);
                }
                // A real user, unless it has just exec'd away from the mapping.
                Some(_) if !mapping_addresses(pid, file).is_empty() => return true,
                Some(_) => {}
            }
        }
        let still = match persistent {
            None => copies,
            Some(seen) => seen.intersection(&copies).copied().collect(),
        };
        if still.is_empty() {
            return false;
        }
        persistent = Some(still);
        std::thread::sleep(pause);
        pause *= 2;
    }
    true
}

/// Every descendant of process `me`, from `/proc/<pid>/task/<tid>/children`; `None` when
/// the kernel does not provide those files (built without `CONFIG_PROC_CHILDREN`).
fn descendants(me: u32) -> Option<Vec<u32>> {
    if !has_children() {
        return Some(Vec::new());
    }
    let mut found = Vec::new();
    let mut queue = vec![me];
    while let Some(pid) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue; // gone meanwhile
        };
        let mut any_list = false;
        for task in tasks.filter_map(|t| t.ok()) {
            let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
                continue; // the thread exited, or the kernel has no such file
            };
            any_list = true;
            for child in list.split_ascii_whitespace().filter_map(|c| c.parse().ok()) {
                if child != me && !found.contains(&child) {
                    found.push(child);
                    queue.push(child);
                }
            }
        }
        if pid == me && !any_list {
            return None; // this process has a live thread: the kernel has no such files
        }
    }
    Some(found)
}

/// Whether this process has a child, living or not yet reaped: one system call
/// (`waitid(WNOHANG|WNOWAIT)`, which reaps and consumes nothing: a waiting parent still
/// sees everything).
fn has_children() -> bool {
    use rustix::process::{WaitId, WaitIdOptions};
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    rustix::process::waitid(WaitId::All, options).err() != Some(rustix::io::Errno::CHILD)
}

fn other_processes(me: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
                .filter(|&pid| pid != me)
                .collect()
        })
        .unwrap_or_default()
}

/// Where process `pid` maps `file`: the start of each mapping.
fn mapping_addresses(pid: u32, file: FileId) -> Vec<usize> {
    let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
        return Vec::new();
    };
    mapped_files(&maps)
        .filter(|&(_, f)| f == file)
        .map(|(start, _)| start)
        .collect()
}

/// The parent of process `pid`.
fn parent_of(pid: u32) -> Option<u32> {
    process_stat(pid).ok().map(|stat| stat.ppid)
}

/// This process's identity for the owner record: pid in the high half, the low 32 bits of
/// its start time (clock ticks since boot, `/proc/self/stat` field 22) in the low half.
/// Cached: one relaxed load once known.
#[inline]
fn my_identity() -> u64 {
    match IDENTITY.load(Ordering::Relaxed) {
        0 => compute_identity(),
        id => id,
    }
}

/// This process's id, from the cached identity (no system call once known).
#[inline]
fn my_pid() -> u32 {
    (my_identity() >> 32) as u32
}

/// The cache of `my_identity`, forgotten in the child of a `fork`.
static IDENTITY: AtomicU64 = AtomicU64::new(0);

#[cold]
fn compute_identity() -> u64 {
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        extern "C" fn forget() {
            IDENTITY.store(0, Ordering::Relaxed);
        }
        // SAFETY: registers a handler that only stores to an atomic, which is
        // async-signal-safe, in the child after fork; the handler lives for the program.
        unsafe { libc::pthread_atfork(None, None, Some(forget)) };
    });
    let pid = std::process::id();
    let id = identity_of(pid).unwrap_or(u64::from(pid) << 32);
    IDENTITY.store(id, Ordering::Relaxed);
    id
}

/// The identity of a running process, `None` when there is no process `pid` (a zombie,
/// dead but not yet reaped, counts as none).
fn identity_of(pid: u32) -> Option<u64> {
    let stat = process_stat(pid).ok().filter(|stat| !stat.is_dead())?;
    Some(u64::from(pid) << 32 | (stat.start & 0xffff_ffff))
}

/// Whether the process an owner record names is still running.
pub(crate) fn is_alive(record: u64) -> bool {
    let pid = (record >> 32) as u32;
    if pid == 0 {
        return true; // not a record qshm wrote: assume a live holder
    }
    identity_of(pid).is_some_and(|id| id == record || (record & 0xffff_ffff) == 0)
}

/// A glibc named semaphore (`sem_open`).
pub(crate) struct PosixSemaphore {
    /// This handle's own mapping of the semaphore file (see [`map_sem_file`]).
    sem: NonNull<libc::sem_t>,
    /// The semaphore file, the one mapped at `sem`.
    file: OwnedFd,
    key: NativeKey,
    path: String,
    /// The inode of the semaphore file when opened, to notice a semaphore replaced under
    /// the same name.
    ino: u64,
    /// The process that opened `file` (a forked copy shares its open file description).
    opener: u32,
}

// SAFETY: `sem` points into this handle's own shared mapping of the semaphore file, not tied
// to the thread that made it; glibc's sem_wait/sem_post on a process-shared sem_t are
// thread-safe, and the record words are accessed only atomically. munmap and close in Drop
// may run on any thread.
unsafe impl Send for PosixSemaphore {}
// SAFETY: every operation through `&PosixSemaphore` is a thread-safe glibc call or an
// atomic access.
unsafe impl Sync for PosixSemaphore {}

impl fmt::Debug for PosixSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PosixSemaphore")
            .field("path", &self.path)
            .finish()
    }
}

/// A semaphore file mapped by this process: the descriptor, the `sem_t`, the inode.
type SemFile = (OwnedFd, NonNull<libc::sem_t>, u64);

/// Creates the semaphore file `path` with value `initial` unless it exists, and maps it;
/// `Ok(None)` when the name exists.
///
/// glibc's `sem_open(O_CREAT)` writes a named temporary file `sem.XXXXXX` and links it into
/// place, so a process killed in between leaves that file behind for good. Here the file is
/// written unnamed (`O_TMPFILE`) and linked into place in one step: a crash leaves nothing.
/// It starts with a `sem_t` that the C library's own `sem_init(pshared = 1)` initialised, so
/// the layout is the library's by construction, and its `sem_open` opens it as any other;
/// it is [`SEM_FILE_LEN`] bytes long. The
/// descriptor that wrote it is the one kept: no second open.
fn create_sem_file(
    path: &str,
    initial: u32,
    mode: u32,
) -> std::result::Result<Option<SemFile>, i32> {
    let mode = Mode::from_raw_mode(mode & 0o777);
    let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
    let tmp = rustix::fs::open(SHM_DIR, flags, mode).map_err(|e| e.raw_os_error())?;
    // SAFETY: an all-zero sem_t is valid storage for sem_init to initialise.
    let mut sem: libc::sem_t = unsafe { std::mem::zeroed() };
    // SAFETY: `sem` is valid, writable storage for a sem_t; pshared = 1 makes it usable
    // from shared memory, which is what the file becomes.
    if unsafe { libc::sem_init(&mut sem, 1, initial) } == -1 {
        return Err(errno());
    }
    // The sem_t, then zeros up to SEM_FILE_LEN (an empty owner record and state word).
    let mut bytes = [0u8; SEM_FILE_LEN];
    // SAFETY: `sem` is an initialised sem_t: reading its SEM_T_LEN bytes is reading plain
    // memory, and `bytes` has room for them (SEM_FILE_LEN >= SEM_T_LEN).
    unsafe {
        std::ptr::copy_nonoverlapping(
            std::ptr::from_ref(&sem).cast::<u8>(),
            bytes.as_mut_ptr(),
            SEM_T_LEN,
        )
    };
    let mut written = 0;
    while written < bytes.len() {
        match rustix::io::write(&tmp, &bytes[written..]) {
            Ok(n) => written += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.raw_os_error()),
        }
    }
    let st = rustix::fs::fstat(&tmp).map_err(|e| e.raw_os_error())?;
    exact_mode(&tmp, &st, mode).map_err(|e| e.raw_os_error())?;
    let ino = st.st_ino;
    match link_unnamed(&tmp, path) {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Ok(None),
        Err(e) => return Err(e.raw_os_error()),
    }
    let addr = map_file(&tmp, SEM_FILE_LEN, ProtFlags::READ | ProtFlags::WRITE)
        .map_err(|e| e.raw_os_error())?;
    Ok(Some((tmp, addr.cast(), ino)))
}

fn file_inode(path: &str) -> Option<u64> {
    rustix::fs::stat(path).ok().map(|st| st.st_ino)
}

/// Why a semaphore file could not be mapped.
enum SemFileError {
    Os(i32),
    /// Shorter than a `sem_t`: not a semaphore (or truncated by someone): touching it would
    /// raise SIGBUS.
    TooShort(u64),
}

/// What glibc's `sem_open(name, 0)` does (`open(O_RDWR|O_NOFOLLOW)`, `mmap` of one `sem_t`),
/// with the descriptor kept, the file's inode taken from it, and a short file refused.
///
/// The descriptor stays open so that [`sole_open_file`] can ask the kernel about the
/// semaphore, and its inode is that of the semaphore actually mapped (not of whatever the
/// name refers to a moment later). glibc's `sem_wait`/`sem_post` work on any process-shared
/// `sem_t`, so Qt (through glibc's own `sem_open`) and qshm still share one semaphore.
fn map_sem_file(path: &str) -> std::result::Result<SemFile, SemFileError> {
    let os = |e: rustix::io::Errno| SemFileError::Os(e.raw_os_error());
    let file = open_existing(path, AccessMode::ReadWrite).map_err(os)?;
    let st = rustix::fs::fstat(&file).map_err(os)?;
    let size = st.st_size as u64;
    if size < SEM_T_LEN as u64 {
        return Err(SemFileError::TooShort(size));
    }
    if size < SEM_FILE_LEN as u64 {
        // A semaphore the C library made, with no room for the record after its sem_t
        // (32-bit glibc): lengthen the file. Idempotent, and never shortens: two processes
        // doing it at once both make it SEM_FILE_LEN long, zero-filled past the sem_t.
        rustix::fs::ftruncate(&file, SEM_FILE_LEN as u64).map_err(os)?;
    }
    let addr = map_file(&file, SEM_FILE_LEN, ProtFlags::READ | ProtFlags::WRITE).map_err(os)?;
    Ok((file, addr.cast(), st.st_ino))
}

impl PosixSemaphore {
    /// Brings the value to `value` (Qt's Create mode resets; Qt unlinks and recreates,
    /// which cuts off every process that has it open, docs/qt-ipc.md §5).
    fn reset(&self, value: u32, ctx: Ctx<'_>) -> Result<()> {
        // SAFETY: `self.sem` is a live semaphore (map_sem_file).
        while unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {}
        for _ in 0..value {
            // SAFETY: as above.
            if unsafe { libc::sem_post(self.sem.as_ptr()) } == -1 {
                return Err(sem_error(ctx, errno()));
            }
        }
        Ok(())
    }

    /// The owner record after the C library's part of the `sem_t` (see the module docs).
    #[inline]
    fn record(&self) -> &AtomicU64 {
        self.tail_word(16)
    }

    /// The state word after it: bit 0 set while the data is suspect (a holder died and
    /// nobody has called `mark_consistent` since).
    #[inline]
    fn state(&self) -> &AtomicU64 {
        self.tail_word(24)
    }

    #[inline]
    fn tail_word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset == 16 || offset == 24);
        // SAFETY: map_sem_file and create_sem_file map SEM_FILE_LEN (>= 32) bytes of a file
        // at least that long, at a page boundary, so bytes 16..32 are mapped, 8-byte
        // aligned, and live as long as `self` (until Drop unmaps them). The C library never
        // touches them (checked per library at compile time: see SEM_T_LEN); every access to
        // them is atomic, in every process.
        unsafe {
            &*self
                .sem
                .as_ptr()
                .cast::<u8>()
                .add(offset)
                .cast::<AtomicU64>()
        }
    }

    /// Whether a holder died and nobody has declared the data consistent since.
    #[inline]
    fn suspect(&self) -> bool {
        self.state().load(Ordering::Acquire) & 1 != 0
    }

    fn value(&self) -> i32 {
        let mut v: c_int = 0;
        // SAFETY: `self.sem` is live; `v` is a valid out-pointer.
        unsafe { libc::sem_getvalue(self.sem.as_ptr(), &mut v) };
        v
    }

    /// Waits until `deadline` at the latest: on the monotonic clock where the C library
    /// can (`sem_clockwait`, glibc 2.30+), so that a step of the wall clock neither stretches
    /// nor cuts the wait; elsewhere `sem_timedwait` on the wall clock, whose waits the
    /// callers keep short and re-check against the monotonic deadline.
    fn wait_until(&self, deadline: Instant) -> std::result::Result<(), i32> {
        let rc = match sem_clockwait() {
            Some(clockwait) => {
                let abs = super::absolute_timespec(libc::CLOCK_MONOTONIC, deadline);
                // SAFETY: `self.sem` is live; `abs` is a valid absolute time on the clock
                // named; `clockwait` is glibc's sem_clockwait (see `sem_clockwait`).
                unsafe { clockwait(self.sem.as_ptr(), libc::CLOCK_MONOTONIC, &abs) }
            }
            None => {
                let abs = super::absolute_timespec(libc::CLOCK_REALTIME, deadline);
                // SAFETY: `self.sem` is live; `abs` is a valid absolute CLOCK_REALTIME time.
                unsafe { libc::sem_timedwait(self.sem.as_ptr(), &abs) }
            }
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(errno())
        }
    }

    /// Takes the dead holder's unit when the record names a process that is gone while the
    /// semaphore is still taken. Exactly one waiter wins the compare-and-swap.
    fn take_over_from_dead_holder(&self) -> bool {
        let record = self.record();
        let old = record.load(Ordering::Acquire);
        if old == 0 || is_alive(old) || self.value() > 0 {
            return false;
        }
        let taken = record
            .compare_exchange(old, my_identity(), Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if taken {
            self.state().fetch_or(1, Ordering::AcqRel);
        }
        taken
    }

    /// One `sem_wait` / `sem_trywait` / `sem_timedwait`, retried on `EINTR`.
    fn wait_once(&self, wait: Wait, deadline: Option<Instant>) -> std::result::Result<(), i32> {
        loop {
            let rc = match (wait, deadline) {
                (Wait::Poll, _) => {
                    // SAFETY: `self.sem` is a live semaphore (map_sem_file).
                    if unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {
                        Ok(())
                    } else {
                        Err(errno())
                    }
                }
                (_, Some(deadline)) => self.wait_until(deadline),
                (_, None) => {
                    // SAFETY: `self.sem` is a live semaphore (map_sem_file).
                    if unsafe { libc::sem_wait(self.sem.as_ptr()) } == 0 {
                        Ok(())
                    } else {
                        Err(errno())
                    }
                }
            };
            match rc {
                Err(libc::EINTR) => continue,
                other => return other,
            }
        }
    }

    /// A plain counting acquire (no owner record).
    fn acquire_plain(&self, wait: Wait, op: Operation) -> Result<()> {
        let deadline = match wait {
            Wait::For(d) => Some(Instant::now().checked_add(d).unwrap_or_else(far_future)),
            _ => None,
        };
        self.wait_once(wait, deadline)
            .map_err(|e| wait_error(Ctx { op, key: &self.key }, e))
    }

    /// The segment lock: `sem_wait` in slices, recording the holder, recovering from a dead
    /// one. Returns whether the previous holder died.
    ///
    /// The uncontended path, inlined: one `sem_trywait` (an atomic, no system call while the
    /// value is positive) and a store of the owner record.
    #[inline]
    fn acquire_tracked(&self, wait: Wait, op: Operation) -> Result<bool> {
        // SAFETY: `self.sem` is a live semaphore (map_sem_file).
        if unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {
            self.record().store(my_identity(), Ordering::Release);
            // Still suspect if a holder died before, even if whoever took over then (perhaps
            // inside create/attach) did not repair the data.
            return Ok(self.suspect());
        }
        self.acquire_tracked_slow(wait, op)
    }

    #[cold]
    fn acquire_tracked_slow(&self, wait: Wait, op: Operation) -> Result<bool> {
        let ctx = Ctx { op, key: &self.key };
        let me = my_identity();
        let deadline = match wait {
            Wait::Forever => None,
            Wait::Poll => Some(Instant::now()),
            Wait::For(d) => Some(Instant::now().checked_add(d).unwrap_or_else(far_future)),
        };
        // The uncontended path: one sem_trywait, no system call when the value is positive.
        let mut result = self.wait_once(Wait::Poll, None);
        loop {
            match result {
                Ok(()) => {
                    self.record().store(me, Ordering::Release);
                    // Still suspect if a holder died before, even if whoever took over then
                    // (perhaps inside create/attach) did not repair the data.
                    return Ok(self.suspect());
                }
                Err(libc::EAGAIN | libc::ETIMEDOUT) => {}
                Err(e) => return Err(wait_error(ctx, e)),
            }
            if self.take_over_from_dead_holder() {
                return Ok(true);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(wait_error(
                    ctx,
                    if wait == Wait::Poll {
                        libc::EAGAIN
                    } else {
                        libc::ETIMEDOUT
                    },
                ));
            }
            let slice_end = deadline.map_or(now + SLICE, |d| d.min(now + SLICE));
            result = self.wait_once(Wait::Forever, Some(slice_end));
        }
    }

    /// The waiter count the C library keeps in the `sem_t` ([`sem_head`]).
    fn nwaiters(&self) -> usize {
        let word = |at: usize| {
            // SAFETY: bytes 0..16 of a live, mapped, page-aligned sem_t: two aligned 8-byte
            // words, which the C library itself changes only atomically.
            let word = unsafe { &*self.sem.as_ptr().cast::<u8>().add(at).cast::<AtomicU64>() };
            word.load(Ordering::Relaxed).to_ne_bytes()
        };
        let mut head = [0u8; 16];
        head[..8].copy_from_slice(&word(0));
        head[8..].copy_from_slice(&word(8));
        sem_head(head).1 as usize
    }
}

/// `int sem_clockwait(sem_t *, clockid_t, const struct timespec *)`.
type SemClockwait =
    unsafe extern "C" fn(*mut libc::sem_t, libc::clockid_t, *const libc::timespec) -> c_int;

/// glibc's `sem_clockwait` (2.30 and later), looked up once at run time: linking it would
/// make the program refuse to start on an older glibc, and musl has none.
fn sem_clockwait() -> Option<SemClockwait> {
    static FN: std::sync::OnceLock<Option<SemClockwait>> = std::sync::OnceLock::new();
    *FN.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has no other
        // precondition; it returns null when the symbol does not exist.
        let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"sem_clockwait".as_ptr()) };
        // SAFETY: a non-null `sem_clockwait` of the C library has exactly this signature
        // (sem_clockwait(3)).
        (!sym.is_null())
            .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, SemClockwait>(sym) })
    })
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(60 * 60 * 24 * 365 * 100)
}

/// The error of a failed wait.
fn wait_error(ctx: Ctx<'_>, e: i32) -> Error {
    match e {
        libc::ETIMEDOUT => ctx.err(e).with_kind(ErrorKind::Timeout),
        _ => sem_error(ctx, e),
    }
}

/// Qt's error table for semaphores (docs/qt-ipc.md §4.3), with name errors as key errors.
fn sem_error(ctx: Ctx<'_>, e: i32) -> Error {
    let err = ctx.err(e);
    match e {
        libc::EINVAL => err
            .with_kind(ErrorKind::KeyError)
            .with_detail("invalid POSIX semaphore name"),
        libc::EAGAIN => err.with_kind(ErrorKind::WouldBlock),
        _ => err,
    }
}

impl PosixSemaphore {
    /// `n` posts (or the first failed one of a single post), rolled back on failure as Qt
    /// does.
    #[cold]
    fn release_slow(&self, n: u32, op: Operation) -> Result<()> {
        for done in 0..n {
            // SAFETY: `self.sem` is a live semaphore (map_sem_file).
            if unsafe { libc::sem_post(self.sem.as_ptr()) } == -1 {
                let e = errno();
                // Roll back the posts already made, as Qt does.
                for _ in 0..done {
                    // SAFETY: as above.
                    unsafe { libc::sem_trywait(self.sem.as_ptr()) };
                }
                let err = Ctx { op, key: &self.key }.err(e);
                return Err(if e == libc::EOVERFLOW {
                    err.with_kind(ErrorKind::OutOfResources)
                } else {
                    err
                });
            }
        }
        Ok(())
    }
}

impl Drop for PosixSemaphore {
    fn drop(&mut self) {
        // SAFETY: `self.sem` is this handle's own mapping of one sem_t (map_sem_file),
        // unmapped exactly once, here; nothing borrows it past `self`. Nobody can be waiting
        // on it through this handle: waits borrow `self`. (The descriptor closes after.)
        let _ = unsafe { rustix::mm::munmap(self.sem.as_ptr().cast(), SEM_FILE_LEN) };
    }
}

impl crate::backend::sealed::Sealed for PosixSemaphore {}

impl RawSemaphore for PosixSemaphore {
    /// `sem_open(name, O_CREAT|O_EXCL, mode, initial)`, or `sem_open(name, 0)` when it
    /// exists (Qt's Open mode).
    #[doc(alias = "sem_open")]
    fn open(
        key: &NativeKey,
        initial: u32,
        how: SemOpen,
        mode: u32,
    ) -> Result<(PosixSemaphore, bool)> {
        let ctx = Ctx {
            op: Operation::SemaphoreOpen,
            key,
        };
        let file = file_name(ctx, key.native_key(), "sem.")?;
        if initial > SEM_VALUE_MAX {
            return Err(ctx.kind(
                ErrorKind::OutOfResources,
                "initial value above SEM_VALUE_MAX",
            ));
        }
        let path = format!("{SHM_DIR}sem.{file}");
        let made = |(file, sem, ino): SemFile| PosixSemaphore {
            sem,
            file,
            key: key.clone(),
            path: path.clone(),
            ino,
            opener: my_pid(),
        };
        // Usually the semaphore exists: open it straight away, and create it only when the
        // first attempt finds nothing; a creator expecting to create it tries that first.
        let mut create = how == SemOpen::CreateOrOpen;
        for _ in 0..100 {
            if create {
                match create_sem_file(&path, initial, mode) {
                    Ok(Some(file)) => return Ok((made(file), true)),
                    Ok(None) => {}
                    Err(e) => return Err(sem_error(ctx, e)),
                }
            }
            let e = match map_sem_file(&path) {
                Ok(file) => {
                    let sem = made(file);
                    if how == SemOpen::CreateOrReset {
                        sem.reset(initial, ctx)?;
                    }
                    return Ok((sem, false));
                }
                Err(SemFileError::TooShort(len)) => {
                    return Err(ctx.kind(ErrorKind::Unknown, "").with_detail(format!(
                        "{path} is not a semaphore ({len} bytes, a sem_t has {SEM_T_LEN})"
                    )))
                }
                Err(SemFileError::Os(e)) => e,
            };
            if e != libc::ENOENT || how == SemOpen::Existing {
                return Err(sem_error(ctx, e));
            }
            // Not there (yet, or removed meanwhile): create it.
            create = true;
        }
        Err(ctx.kind(
            ErrorKind::Unknown,
            "the semaphore kept vanishing while being opened",
        ))
    }

    #[inline]
    fn acquire(&self, wait: Wait, undo: Undo, op: Operation) -> Result<bool> {
        match undo {
            Undo::Yes => self.acquire_tracked(wait, op),
            Undo::No => self.acquire_plain(wait, op).map(|()| false),
        }
    }

    #[inline]
    fn release(&self, n: u32, undo: Undo, op: Operation) -> Result<()> {
        if undo == Undo::Yes {
            // Clear the record if it is ours. Only this process writes its own identity and
            // only a holder writes a record, so a load and a store suffice: between them
            // nobody else can hold the lock (short of a process posting it without holding
            // it, which the in-process lock refuses to lend memory through anyway).
            let record = self.record();
            if record.load(Ordering::Relaxed) == my_identity() {
                record.store(0, Ordering::Release);
            }
            // SAFETY: `self.sem` is a live semaphore (map_sem_file).
            if n == 1 && unsafe { libc::sem_post(self.sem.as_ptr()) } == 0 {
                return Ok(());
            }
        }
        self.release_slow(n, op)
    }

    /// Whether the name still refers to the semaphore this handle has open (it may have
    /// been removed by the last detach, or replaced by a Qt creator, meanwhile).
    fn still_named(&self) -> bool {
        file_inode(&self.path) == Some(self.ino)
    }

    fn waiters(&self) -> usize {
        self.nwaiters()
    }

    /// Another process has the semaphore open: glibc (and qshm) map the semaphore file into
    /// every process that opens it, waiters included. (glibc's waiter count is no guide: a waiter
    /// killed in `sem_wait` never takes itself off it.) A semaphore removed while open is
    /// not noticed by its holder, unlike System V's `EIDRM`, so this is checked before
    /// removing; threads of this process notice it in `still_named`.
    fn in_use_elsewhere(&self) -> bool {
        let forked = self.opener != my_pid();
        used_by_another_process(&self.file, forked)
    }

    fn mark_consistent(&self) {
        self.state().fetch_and(!1, Ordering::AcqRel);
    }

    fn remove_while_held(&self) -> Result<()> {
        // Only our semaphore: if the name was given to another one meanwhile, that one is
        // someone else's to remove.
        let removed = if self.still_named() {
            self.remove()
        } else {
            Ok(())
        };
        let released = self.release(1, Undo::Yes, Operation::Remove);
        removed.and(released)
    }

    /// `sem_unlink`, which is `unlink` of the semaphore file.
    fn remove(&self) -> Result<()> {
        match rustix::fs::unlink(&self.path) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(Error::from_errno(
                e.raw_os_error(),
                Operation::Remove,
                self.key.to_string(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PosixSegment>();
        assert_send_sync::<PosixSemaphore>();
    }

    #[test]
    fn identity_is_this_process() {
        let me = my_identity();
        assert_eq!((me >> 32) as u32, std::process::id());
        assert!(is_alive(me));
        assert_eq!(identity_of(std::process::id()), Some(me));
        // A start time that does not match: a reused pid, so not the recorded process.
        assert!(!is_alive(me ^ 1));
        assert!(identity_of(u32::MAX).is_none());
    }

    #[test]
    fn a_replaced_semaphore_is_noticed() {
        let key = NativeKey::platform_safe(
            &format!("qshm-unit-replaced-{}", std::process::id()),
            crate::KeyType::PosixRealtime,
        );
        let (sem, created) = PosixSemaphore::open(&key, 1, SemOpen::OpenOrCreate, 0o600).unwrap();
        assert!(created);
        assert!(sem.still_named());
        // Someone removes it and makes another under the same name.
        sem.remove().unwrap();
        let (other, created) = PosixSemaphore::open(&key, 1, SemOpen::OpenOrCreate, 0o600).unwrap();
        assert!(created);
        assert!(!sem.still_named(), "the old handle must notice");
        assert!(other.still_named());
        // Removing through the old handle must not remove the new semaphore.
        sem.acquire(Wait::Forever, Undo::Yes, Operation::Lock)
            .unwrap();
        sem.remove_while_held().unwrap();
        assert!(
            other.still_named(),
            "the old handle removed the new semaphore"
        );
        other.remove().unwrap();
    }

    /// A child forked while the segment is mapped maps it too (System V counts such a child
    /// as an attachment): the lease sees no other opener, the look at the descendants finds
    /// the child, and the segment stays until the child is gone.
    #[test]
    fn a_forked_child_keeps_the_segment() {
        let key = NativeKey::platform_safe(
            &format!("qshm-unit-forked-{}", std::process::id()),
            crate::KeyType::PosixRealtime,
        );
        let seg = PosixSegment::create(&key, 4096, AccessMode::ReadWrite, 0o600).unwrap();
        let path = seg.path.clone();
        // A socket pair as the pipe (std::io::pipe is newer than the MSRV).
        let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: the child calls only async-signal-safe functions (read, _exit) before it
        // exits, as is required after fork in a multi-threaded process.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            use std::os::fd::AsRawFd;
            let mut byte = 0u8;
            // SAFETY: valid descriptors and a one-byte buffer; the child's copy of the write
            // end is closed so that the read ends when the parent closes its own; _exit
            // skips every Rust destructor and atexit handler the child must not run.
            unsafe {
                libc::close(w.as_raw_fd());
                libc::read(r.as_raw_fd(), std::ptr::from_mut(&mut byte).cast(), 1);
                libc::_exit(0);
            }
        }
        drop(r);
        let removed = seg.detach(true, false);
        let kept = std::path::Path::new(&path).exists();
        drop(w); // the child reads EOF and exits
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let _ = rustix::fs::unlink(&path);
        assert_eq!(
            removed.unwrap(),
            Detached::Kept,
            "removed while a forked child maps it"
        );
        assert!(kept);
        // Once it is gone, the next last detach removes the segment again.
        let seg = PosixSegment::create(&key, 4096, AccessMode::ReadWrite, 0o600).unwrap();
        assert_eq!(seg.detach(true, false).unwrap(), Detached::Removed);
        assert!(!std::path::Path::new(&path).exists());
    }

    /// Opening the file while the lease is held breaks it, and the kernel signals the
    /// holder: with the default `SIGIO` this process would die. Another thread opens the
    /// file in a tight loop while the lease is taken and released many times.
    #[test]
    fn a_broken_lease_does_not_kill() {
        let path = format!("{SHM_DIR}qshm-unit-lease-{}", std::process::id());
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path.as_str(), flags, Mode::from_raw_mode(0o600)).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let opener = {
            let (stop, path) = (stop.clone(), path.clone());
            std::thread::spawn(move || {
                let mut opens = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _ = open_existing(&path, AccessMode::ReadOnly);
                    opens += 1;
                }
                opens
            })
        };
        let (mut alone, mut shared) = (0, 0);
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            match sole_open_file(&fd) {
                Some(true) => alone += 1,
                Some(false) => shared += 1,
                None => {}
            }
        }
        stop.store(true, Ordering::Relaxed);
        let opens = opener.join().unwrap();
        let _ = rustix::fs::unlink(path.as_str());
        assert!(opens > 0);
        assert!(
            alone + shared > 0,
            "leases unavailable here: nothing was tested"
        );
        assert!(shared > 0, "another open was never seen");
    }

    /// Both ways of naming an unnamed file: the name appears, refers to the file, and a
    /// taken name is `EEXIST` without harm to the file that has it.
    #[test]
    fn unnamed_files_are_named_either_way() {
        for (i, link) in [link_unnamed, link_through_proc].into_iter().enumerate() {
            let path = format!("{SHM_DIR}qshm-unit-link-{}-{i}", std::process::id());
            let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
            let tmp = rustix::fs::open(SHM_DIR, flags, Mode::from_raw_mode(0o600)).unwrap();
            rustix::io::write(&tmp, b"first").unwrap();
            let linked = link(&tmp, &path);
            let content = std::fs::read(&path);
            let other = rustix::fs::open(SHM_DIR, flags, Mode::from_raw_mode(0o600)).unwrap();
            let taken = link(&other, &path);
            let after = std::fs::read(&path);
            let _ = rustix::fs::unlink(&path);
            linked.unwrap();
            assert_eq!(content.unwrap(), b"first");
            assert_eq!(taken, Err(rustix::io::Errno::EXIST));
            assert_eq!(after.unwrap(), b"first");
        }
    }

    #[test]
    fn parent_is_read_from_proc() {
        assert_eq!(
            parent_of(std::process::id()),
            Some(std::os::unix::process::parent_id())
        );
        assert_eq!(parent_of(u32::MAX), None);
    }

    #[test]
    fn names_are_checked() {
        let key = NativeKey::new("/x", crate::KeyType::PosixRealtime);
        let ctx = Ctx {
            op: Operation::Create,
            key: &key,
        };
        assert_eq!(file_name(ctx, "/ok", "").unwrap(), "ok");
        for bad in ["", "/", "noslash", "/a/b", "/.", "/..", "/a\0b"] {
            assert_eq!(
                file_name(ctx, bad, "").unwrap_err().kind(),
                ErrorKind::KeyError,
                "{bad:?}"
            );
        }
        let long = format!("/{}", "x".repeat(255));
        assert!(file_name(ctx, &long, "").is_ok());
        assert_eq!(
            file_name(ctx, &long, "sem.").unwrap_err().kind(),
            ErrorKind::KeyError
        );
        assert!(file_name(ctx, &format!("/{}", "x".repeat(256)), "").is_err());
    }
}
