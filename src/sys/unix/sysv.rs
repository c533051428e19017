//! System V shared memory and semaphores, with Qt's system calls and permissions
//! (docs/qt-ipc.md §3, §4).
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man2/shmget.2.html>, `shmat(2)`, `shmctl(2)`
//! * <https://man7.org/linux/man-pages/man2/semget.2.html>, `semop(2)`, `semctl(2)`
//! * <https://man7.org/linux/man-pages/man3/ftok.3.html>

use std::ffi::{c_int, c_ushort, CStr, CString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use super::{c_path, create_key_file, cvt, errno, remove_key_file, Ctx};
use crate::backend::{Detached, RawSegment, RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{ErrorKind, Operation, Result};
use crate::{AccessMode, NativeKey};

#[cfg(not(qshm_portable))]
extern "C" {
    /// `semtimedop(2)`, which the `libc` crate does not declare. The C library's wrapper,
    /// not the raw system call: 32-bit x86 has no `semtimedop` system call of its own (it
    /// goes through `ipc(2)`), and the wrapper picks the right one everywhere.
    fn semtimedop(
        semid: c_int,
        sops: *mut libc::sembuf,
        nsops: libc::size_t,
        timeout: *const libc::timespec,
    ) -> c_int;
}

/// The `semctl` commands and `semop` flag used here: the C library's on Linux; on macOS and
/// FreeBSD their `<sys/sem.h>` values (the `libc` crate lacks some for FreeBSD).
pub(crate) mod sem_cmd {
    #[cfg(qshm_linux)]
    pub(crate) use libc::{GETNCNT, GETPID, GETVAL, SEM_UNDO, SETVAL};
    #[cfg(not(qshm_linux))]
    mod bsd {
        use std::ffi::c_int;
        pub(crate) const SEM_UNDO: c_int = 0o10000;
        pub(crate) const GETNCNT: c_int = 3;
        pub(crate) const GETPID: c_int = 4;
        pub(crate) const GETVAL: c_int = 5;
        pub(crate) const SETVAL: c_int = 8;
    }
    #[cfg(not(qshm_linux))]
    pub(crate) use bsd::*;
}

/// A System V key held in 32 bits: `key_t` is `int` on Linux and macOS and `long` on
/// FreeBSD, whose `ftok` makes 32 bits and sign-extends them.
#[allow(clippy::unnecessary_cast)] // a cast only where key_t is wider
pub(crate) fn key_to_i32(key: libc::key_t) -> i32 {
    key as i32
}

/// The inverse of [`key_to_i32`].
#[allow(clippy::unnecessary_cast)] // a cast only where key_t is wider
pub(crate) fn key_from_i32(key: i32) -> libc::key_t {
    key as libc::key_t
}

/// `SEMVMX`: the largest value of a System V semaphore on Linux.
const SEMVMX: u32 = 32767;

/// The fourth argument of `semctl` (`union semun`, which callers must define themselves).
#[repr(C)]
#[allow(dead_code)] // the other members give the union its C size and alignment
union Semun {
    val: c_int,
    buf: *mut std::ffi::c_void, // `struct semid_ds *`
    array: *mut c_ushort,
}

/// `ftok(path, proj)`: the System V key of a key file.
///
/// glibc's `ftok` is `(proj & 0xff) << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff)` of
/// `stat(path)` (sysvipc/ftok.c; checked against `libc::ftok` in the tests). Computed here
/// from `lstat` instead, for one reason: `ftok` follows symbolic links, and in a
/// world-writable directory (`/tmp`, Qt's default) a link where a key file goes may have been
/// planted by another user to steer us onto a key of their choosing. There such a link is
/// refused (`ELOOP`); elsewhere it is followed as `ftok` would. One system call, as `ftok`.
pub(crate) fn ftok(path: &CStr, proj: u8) -> std::result::Result<libc::key_t, i32> {
    let p = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
    let mut meta =
        std::fs::symlink_metadata(p).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    if meta.file_type().is_symlink() {
        let dir = p.parent().unwrap_or(std::path::Path::new("/"));
        if std::fs::metadata(dir).is_ok_and(|d| d.permissions().mode() & 0o002 != 0) {
            return Err(libc::ELOOP);
        }
        meta = std::fs::metadata(p).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    }
    Ok(ftok_of(meta.dev(), meta.ino(), proj))
}

/// glibc's `ftok` formula.
fn ftok_of(dev: u64, ino: u64, proj: u8) -> libc::key_t {
    let key = (u32::from(proj) << 24) | (((dev & 0xff) as u32) << 16) | ((ino & 0xffff) as u32);
    key_from_i32(key as i32)
}

fn project_id(key: &NativeKey) -> u8 {
    key.key_type().ftok_project_id().unwrap_or(b'Q')
}

/// `shmctl(id, IPC_STAT)`.
pub(crate) fn shm_stat(id: c_int) -> std::result::Result<libc::shmid_ds, i32> {
    // SAFETY: shmid_ds is a plain C struct of integers, for which all-zero is valid.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds for the kernel to fill.
    let rc = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
    cvt(rc).map(|_| ds)
}

/// `shmctl(id, IPC_RMID)`: the segment goes when its last attachment does.
fn shm_remove(id: c_int) -> std::result::Result<(), i32> {
    // SAFETY: IPC_RMID takes no buffer; a null pointer is what the man page prescribes.
    let rc = unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    cvt(rc).map(|_| ())
}

/// A mapped System V segment.
pub(crate) struct SysvSegment {
    id: c_int,
    addr: NonNull<u8>,
    len: usize,
    sysv_key: libc::key_t,
    path: CString,
    proj: u8,
    writable: bool,
    attached: bool,
}

// SAFETY: the struct owns an attachment (a process-wide mapping) and an id, neither of which
// is tied to the thread that made them; shmdt may be called from any thread. The struct
// never reads or writes the bytes behind `addr` itself: access goes through `Locked`, which
// requires the cross-process lock. Checked at compile time in `tests::send_sync`.
unsafe impl Send for SysvSegment {}
// SAFETY: `&SysvSegment` only exposes the address, the length and the id (plain values);
// see the `Send` justification for the bytes.
unsafe impl Sync for SysvSegment {}

impl fmt::Debug for SysvSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SysvSegment")
            .field("shmid", &self.id)
            .field("key", &format_args!("{:#010x}", self.sysv_key))
            .field("addr", &self.addr)
            .field("len", &self.len)
            .finish()
    }
}

impl SysvSegment {
    fn attach_id(
        ctx: Ctx<'_>,
        id: c_int,
        sysv_key: libc::key_t,
        path: CString,
        proj: u8,
        access: AccessMode,
        size: Option<usize>,
    ) -> Result<SysvSegment> {
        let flags = match access {
            AccessMode::ReadOnly => libc::SHM_RDONLY,
            AccessMode::ReadWrite => 0,
        };
        // SAFETY: a null address lets the kernel choose where to map; this creates a new
        // mapping and does not modify any existing one.
        let addr = unsafe { libc::shmat(id, std::ptr::null(), flags) };
        if addr as isize == -1 {
            let e = errno();
            let err = ctx.err(e);
            return Err(if e == libc::EINVAL || e == libc::EIDRM {
                err.with_kind(ErrorKind::NotFound)
                    .with_detail("does not exist (removed meanwhile)")
            } else {
                err
            });
        }
        let Some(addr) = NonNull::new(addr.cast::<u8>()) else {
            return Err(ctx.kind(ErrorKind::Unknown, "shmat returned a null address"));
        };
        let mut segment = SysvSegment {
            id,
            addr,
            len: 0,
            sysv_key,
            path,
            proj,
            writable: access == AccessMode::ReadWrite,
            attached: true,
        };
        // The size: known to a creator (shmget made exactly `size` bytes), asked of the
        // kernel otherwise.
        if let Some(size) = size {
            segment.len = size;
            return Ok(segment);
        }
        match shm_stat(id) {
            Ok(ds) => {
                segment.len = ds.shm_segsz;
                Ok(segment)
            }
            Err(e) => Err(ctx.err(e)), // `segment` drops here and detaches
        }
    }

    /// Information about the segment behind `key`, without attaching.
    pub(crate) fn stat(key: &NativeKey) -> Result<libc::shmid_ds> {
        let ctx = Ctx::new(Operation::Attach, key);
        let path = c_path(ctx)?;
        let sysv_key = ftok(&path, project_id(key)).map_err(|e| ctx.err(e))?;
        // SAFETY: shmget takes plain integers.
        let id = cvt(unsafe { libc::shmget(sysv_key, 0, 0) }).map_err(|e| ctx.err(e))?;
        shm_stat(id).map_err(|e| ctx.err(e))
    }
}

impl crate::backend::sealed::Sealed for SysvSegment {}

// SAFETY: `addr..addr+len` is this value's own attachment (shmat), detached only by
// `detach` (which consumes it) or Drop; the kernel zero-fills new segments; `writable` is
// true only for attachments made without SHM_RDONLY.
unsafe impl RawSegment for SysvSegment {
    /// `shmget(ftok(path), size, mode|IPC_CREAT|IPC_EXCL)`, then `shmat`. Qt's sequence, with
    /// the new segment's id attached directly instead of looked up again by key.
    #[doc(alias = "shmget")]
    fn create(key: &NativeKey, size: usize, access: AccessMode, mode: u32) -> Result<SysvSegment> {
        let ctx = Ctx::new(Operation::Create, key);
        let path = c_path(ctx)?;
        let proj = project_id(key);
        let created_file = create_key_file(ctx)?;
        let undo_file = || {
            if created_file {
                remove_key_file(key.native_key());
            }
        };
        let sysv_key = ftok(&path, proj).map_err(|e| {
            undo_file();
            ctx.err(e)
        })?;
        let flags = (mode & 0o777) as c_int | libc::IPC_CREAT | libc::IPC_EXCL;
        // SAFETY: shmget takes plain integers.
        let id = match cvt(unsafe { libc::shmget(sysv_key, size, flags) }) {
            Ok(id) => id,
            Err(e) => {
                if e != libc::EEXIST {
                    undo_file();
                }
                return Err(match e {
                    libc::EINVAL => ctx.err(e).with_kind(ErrorKind::InvalidSize).with_detail(
                        "size outside the system's limits for one segment (kernel.shmmax)",
                    ),
                    libc::ENOSPC => ctx.err(e).with_detail(
                        "out of resources (kernel.shmmni segments or kernel.shmall pages in use)",
                    ),
                    _ => ctx.err(e),
                });
            }
        };
        SysvSegment::attach_id(ctx, id, sysv_key, path, proj, access, Some(size)).inspect_err(
            |_| {
                let _ = shm_remove(id);
                undo_file();
            },
        )
    }

    /// `shmget(ftok(path), 0, 0400|0600)`, `shmat`, `shmctl(IPC_STAT)`: Qt's attach.
    #[doc(alias = "shmat")]
    fn attach(key: &NativeKey, access: AccessMode) -> Result<SysvSegment> {
        let ctx = Ctx::new(Operation::Attach, key);
        let path = c_path(ctx)?;
        let proj = project_id(key);
        let sysv_key = ftok(&path, proj).map_err(|e| {
            let err = ctx.err(e);
            if e == libc::ENOENT {
                err.with_detail("does not exist (no key file)")
            } else {
                err
            }
        })?;
        let perms = match access {
            AccessMode::ReadOnly => 0o400,
            AccessMode::ReadWrite => 0o600,
        };
        // SAFETY: shmget takes plain integers.
        let id = cvt(unsafe { libc::shmget(sysv_key, 0, perms) }).map_err(|e| ctx.err(e))?;
        SysvSegment::attach_id(ctx, id, sysv_key, path, proj, access, None)
    }

    /// `ftok`, `shmget(key, 0, 0)`, `shmctl(IPC_STAT)`: the segment's creator-given owner
    /// and mode.
    fn owner_of(key: &NativeKey) -> Option<(u32, u32)> {
        let path = c_path(Ctx::new(Operation::Attach, key)).ok()?;
        let sysv_key = ftok(&path, project_id(key)).ok()?;
        // SAFETY: shmget takes plain integers.
        let id = cvt(unsafe { libc::shmget(sysv_key, 0, 0) }).ok()?;
        let ds = shm_stat(id).ok()?;
        Some((ds.shm_perm.uid, ds.shm_perm.mode as u32 & 0o777))
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

    /// `shmdt`; then, when `shm_nattch` is 0, `IPC_RMID` and (when asked) the key file.
    fn detach(mut self, remove_if_last: bool, remove_key_file: bool) -> Result<Detached> {
        let err = |e: i32, path: &CStr| {
            crate::sys::os_error(e, Operation::Detach, path.to_string_lossy().into_owned())
        };
        self.attached = false;
        // SAFETY: `addr` is this object's own attachment, made by shmat and not detached
        // before (`attached` was true; Drop now skips it); nothing borrows the bytes, since
        // borrows come from `Locked`, which borrows the segment, and this consumes it.
        cvt(unsafe { libc::shmdt(self.addr.as_ptr().cast()) }).map_err(|e| err(e, &self.path))?;
        let ds = match shm_stat(self.id) {
            Ok(ds) => ds,
            // Already marked for removal (`force_remove`) and this was its last attachment:
            // the kernel destroyed it just now. Its key file is not ours to judge any more.
            Err(libc::EINVAL | libc::EIDRM) if remove_if_last => {
                return Ok(Detached::AlreadyRemoved)
            }
            Err(libc::EINVAL | libc::EIDRM) => return Ok(Detached::Kept),
            Err(e) => return Err(err(e, &self.path)),
        };
        if ds.shm_nattch != 0 || !remove_if_last {
            return Ok(Detached::Kept);
        }
        match shm_remove(self.id) {
            Ok(()) => {}
            // Removed meanwhile, or not ours to remove (shared through its mode): it stays
            // for its owner.
            Err(libc::EINVAL | libc::EIDRM | libc::EPERM) => return Ok(Detached::Kept),
            Err(e) => return Err(err(e, &self.path)),
        }
        // The key file may have been replaced meanwhile (a tmp cleaner, another program):
        // only remove the one that names this segment.
        if remove_key_file && ftok(&self.path, self.proj) == Ok(self.sysv_key) {
            remove_key_file_at(&self.path);
        }
        Ok(Detached::Removed)
    }

    fn exists(key: &NativeKey) -> bool {
        SysvSegment::stat(key).is_ok()
    }

    /// Removes the segment behind `key` (when `only_if_unattached`, only if nobody is
    /// attached) and its key file. Returns whether a segment was removed.
    fn remove(key: &NativeKey, only_if_unattached: bool) -> Result<bool> {
        let ctx = Ctx::new(Operation::Remove, key);
        let path = c_path(ctx)?;
        let sysv_key = match ftok(&path, project_id(key)) {
            Ok(k) => k,
            Err(libc::ENOENT) => return Ok(false),
            Err(e) => return Err(ctx.err(e)),
        };
        // SAFETY: shmget takes plain integers.
        let id = match cvt(unsafe { libc::shmget(sysv_key, 0, 0) }) {
            Ok(id) => id,
            Err(e) => {
                if e == libc::ENOENT {
                    // A key file without a segment is what a crash leaves: remove it too.
                    remove_key_file(key.native_key());
                    return Ok(false);
                }
                return Err(ctx.err(e));
            }
        };
        if only_if_unattached {
            let ds = shm_stat(id).map_err(|e| ctx.err(e))?;
            if ds.shm_nattch != 0 {
                return Ok(false);
            }
        }
        shm_remove(id).map_err(|e| ctx.err(e))?;
        remove_key_file(key.native_key());
        Ok(true)
    }
}

fn remove_key_file_at(path: &CStr) {
    remove_key_file(&path.to_string_lossy());
}

impl Drop for SysvSegment {
    fn drop(&mut self) {
        if self.attached {
            // SAFETY: `addr` is this object's own attachment, not yet detached; nothing
            // borrows the bytes once the segment is being dropped.
            unsafe { libc::shmdt(self.addr.as_ptr().cast()) };
        }
    }
}

/// A one-element System V semaphore set, as `QSystemSemaphore` makes it.
pub(crate) struct SysvSemaphore {
    key: NativeKey,
    /// The key's text, formatted once for the errors of this handle.
    text: std::sync::Arc<str>,
    path: CString,
    id: AtomicI32,
    /// The System V key `id` was found under (`ftok` of the key file).
    sysv_key: AtomicI32,
    mode: u32,
    initial: u32,
}

impl fmt::Debug for SysvSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SysvSemaphore")
            .field("key", &self.key.native_key())
            .field("semid", &self.id.load(Ordering::Relaxed))
            .finish()
    }
}

impl SysvSemaphore {
    fn reopen(&self, op: Operation) -> Result<()> {
        let ctx = Ctx::shared(op, &self.key, &self.text);
        let (id, sysv_key, _) = get(
            ctx,
            &self.path,
            self.initial,
            SemOpen::OpenOrCreate,
            self.mode,
        )?;
        self.id.store(id, Ordering::Relaxed);
        self.sysv_key.store(key_to_i32(sysv_key), Ordering::Relaxed);
        Ok(())
    }

    /// The lock's common case, kept short (the code after a system call runs with cold
    /// branch predictors, so every instruction shows): one `semop` of `delta` without a
    /// timeout. False when it failed, which changed nothing: `op` then tries again and
    /// handles the failure.
    #[inline]
    fn semop_once(&self, delta: i16, undo: Undo) -> bool {
        let mut sop = sembuf(delta, undo, Wait::Forever);
        // SAFETY: `sop` is one valid sembuf, and the count says one.
        unsafe { libc::semop(self.id.load(Ordering::Relaxed), &mut sop, 1) == 0 }
    }

    /// One `semop` (or `semtimedop` with a timeout) of `delta`, retried on `EINTR`, and
    /// after reopening when the semaphore was removed underneath us.
    fn op(&self, delta: i16, wait: Wait, undo: Undo, op: Operation) -> Result<()> {
        let mut sop = sembuf(delta, undo, wait);
        let deadline = super::deadline(wait);
        let mut reopened = 0;
        loop {
            let id = self.id.load(Ordering::Relaxed);
            let rc = match deadline {
                None => {
                    // SAFETY: `sop` is one valid sembuf, and the count says one.
                    unsafe { libc::semop(id, &mut sop, 1) }
                }
                Some(deadline) => timed_semop(id, &mut sop, deadline),
            };
            if rc == 0 {
                return Ok(());
            }
            let ctx = Ctx::shared(op, &self.key, &self.text);
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN if deadline.is_some() => {
                    return Err(ctx.err(libc::EAGAIN).with_kind(ErrorKind::Timeout))
                }
                libc::EAGAIN => return Err(ctx.err(libc::EAGAIN)),
                libc::EINVAL | libc::EIDRM if delta > 0 && undo == Undo::Yes => {
                    // A lock removed while this process held it took the held unit with it.
                    // Posting the one the name refers to now (made afresh, free) would let
                    // two holders in: the hold is simply over.
                    let _ = self.reopen(op);
                    return Ok(());
                }
                libc::EINVAL | libc::EIDRM if reopened < 16 => {
                    // Removed by another process (Qt's owner does that): open it again by
                    // name, as Qt does, and retry.
                    reopened += 1;
                    self.reopen(op)?;
                }
                libc::ERANGE => {
                    return Err(ctx
                        .err(libc::ERANGE)
                        .with_detail("the value or its undo count would pass 32767 (SEMVMX)"))
                }
                e => return Err(ctx.err(e)),
            }
        }
    }
}

/// One operation of `delta` on the set's only semaphore: `SEM_UNDO` as asked, `IPC_NOWAIT`
/// for a poll.
#[inline]
/// One `semop` of `sop` that waits until `deadline` at the latest: `semtimedop`.
#[cfg(not(qshm_portable))]
fn timed_semop(id: c_int, sop: &mut libc::sembuf, deadline: Instant) -> c_int {
    let ts = super::relative_timespec(deadline.saturating_duration_since(Instant::now()));
    // SAFETY: `sop` is one valid sembuf and `ts` a valid relative timeout, as semtimedop(2)
    // takes them.
    unsafe { semtimedop(id, sop, 1, &ts) }
}

/// One `semop` of `sop` that waits until `deadline` at the latest, where there is no
/// `semtimedop` (macOS): `semop(IPC_NOWAIT)` polled with a backoff (`portable::Backoff`). Fails
/// with `EAGAIN` when the deadline passes, as `semtimedop` does, and with any other error at
/// once.
#[cfg(qshm_portable)]
fn timed_semop(id: c_int, sop: &mut libc::sembuf, deadline: Instant) -> c_int {
    use crate::sys::portable::{hit, Backoff, Fallback};
    hit(Fallback::SysvTimed);
    let mut nowait = *sop;
    nowait.sem_flg |= libc::IPC_NOWAIT as i16;
    let mut backoff = Backoff::new();
    loop {
        // SAFETY: `nowait` is one valid sembuf, and the count says one.
        let rc = unsafe { libc::semop(id, &mut nowait, 1) };
        // Nothing between the failed call and the caller's errno() sets errno: `Instant`
        // and `sleep` do not on success.
        if rc == 0 || errno() != libc::EAGAIN || !backoff.sleep_until(deadline) {
            return rc;
        }
    }
}

fn sembuf(delta: i16, undo: Undo, wait: Wait) -> libc::sembuf {
    let mut flags = if undo == Undo::Yes {
        sem_cmd::SEM_UNDO as i16
    } else {
        0
    };
    if wait == Wait::Poll {
        flags |= libc::IPC_NOWAIT as i16;
    }
    libc::sembuf {
        sem_num: 0,
        sem_op: delta,
        sem_flg: flags,
    }
}

/// Opens or creates the semaphore of `path`: its id, its System V key, whether it was
/// created.
fn get(
    ctx: Ctx<'_>,
    path: &CStr,
    initial: u32,
    how: SemOpen,
    mode: u32,
) -> Result<(c_int, libc::key_t, bool)> {
    if matches!(how, SemOpen::OpenOrCreate | SemOpen::Existing) {
        // Opening an existing one: `ftok` and one `semget`. For OpenOrCreate this is the
        // common case (an attach); Qt's create sequence below (key file with O_EXCL, semget
        // with IPC_EXCL) costs two failing calls when key file and semaphore exist. A
        // creator (CreateOrOpen) goes straight to that sequence, which also opens an
        // existing semaphore.
        let opened = ftok(path, ctx.key().map_or(b'Q', project_id)).and_then(|sysv_key| {
            // SAFETY: semget takes plain integers; 0600 asks for read and write permission.
            match unsafe { libc::semget(sysv_key, 1, 0o600) } {
                -1 => Err(errno()),
                id => Ok((id, sysv_key)),
            }
        });
        match opened {
            Ok((id, sysv_key)) => {
                settle(ctx, path, id, initial)?;
                return Ok((id, sysv_key, false));
            }
            Err(e) if how == SemOpen::Existing => return Err(ctx.err(e)),
            Err(_) => {}
        }
    }
    let created_file = create_key_file(ctx)?;
    let result = get_by_key_file(ctx, path, initial, how, mode);
    if result.is_err() && created_file {
        // Out of semaphores, say: leave no key file behind for nothing.
        if let Some(key) = ctx.key() {
            remove_key_file(key.native_key());
        }
    }
    result
}

fn get_by_key_file(
    ctx: Ctx<'_>,
    path: &CStr,
    initial: u32,
    how: SemOpen,
    mode: u32,
) -> Result<(c_int, libc::key_t, bool)> {
    let proj = ctx.key().map_or(b'Q', project_id);
    let perms = (mode & 0o777) as c_int;
    for _ in 0..100 {
        // The key is the key file's inode: computed anew on each try, and checked again
        // once the semaphore is made, since the file may be removed and made again (by a
        // last detach and a new creator) between `ftok` and `semget`. A semaphore made under
        // the old file's key would be a second lock that nobody else finds.
        let sysv_key = match ftok(path, proj) {
            Ok(k) => k,
            Err(libc::ENOENT) => {
                create_key_file(ctx)?;
                continue;
            }
            Err(e) => return Err(ctx.err(e)),
        };
        // Held from `semget` to `SETVAL` (see `settle`); a creator that cannot take it
        // creates as Qt does.
        let creating = CreationLock::for_creator(path);
        // SAFETY: semget takes plain integers.
        let id = unsafe { libc::semget(sysv_key, 1, perms | libc::IPC_CREAT | libc::IPC_EXCL) };
        if id != -1 {
            let set = set_value(ctx, id, initial);
            if set.is_err() || ftok(path, proj) != Ok(sysv_key) {
                // A semaphore stuck at 0 would block everyone, and one whose key file was
                // replaced names nothing: do not leave either.
                // SAFETY: IPC_RMID takes no fourth argument.
                unsafe { libc::semctl(id, 0, libc::IPC_RMID) };
                set?;
                continue;
            }
            return Ok((id, sysv_key, true));
        }
        let e = errno();
        drop(creating);
        if e != libc::EEXIST {
            return Err(ctx.err(e));
        }
        // SAFETY: semget takes plain integers; 0600 asks for read and write permission.
        let id = unsafe { libc::semget(sysv_key, 1, 0o600) };
        if id != -1 {
            if how == SemOpen::CreateOrReset {
                set_value(ctx, id, initial)?;
            } else {
                settle(ctx, path, id, initial)?;
            }
            return Ok((id, sysv_key, false));
        }
        match errno() {
            libc::ENOENT => continue, // removed between the two calls: create it again
            e => return Err(ctx.err(e)),
        }
    }
    Err(ctx.kind(
        ErrorKind::LockError,
        "the key file kept being replaced while the semaphore was being made",
    ))
}

/// How long a semaphore may stay created but unset (see [`settle`]) before an opener that
/// holds its creation lock sets it. A qshm creator holds that lock, so the wait is for the
/// creators that do not (Qt's, or one that may not read the key file), whose `semget` and
/// `SETVAL` follow each other within microseconds.
const UNSET_GRACE: Duration = Duration::from_millis(250);

/// The creation lock of a System V semaphore: `flock(LOCK_EX)` on its key file, held by a
/// qshm creator from its `semget(IPC_CREAT|IPC_EXCL)` to its `SETVAL`, and by an opener
/// while it sets a semaphore whose creator died in between. The kernel drops it with the
/// last descriptor of the process that holds it, whatever its PID namespace. Qt does not
/// take it (it never `flock`s key files), and it does not bar Qt from anything.
struct CreationLock {
    _file: std::fs::File,
}

impl CreationLock {
    /// The lock, if no one else holds it (`Ok(None)` when another does); `Err` when the key
    /// file cannot be opened for reading. It is opened without following links and without
    /// blocking: a FIFO planted there must not hang us.
    fn take(path: &CStr) -> std::result::Result<Option<CreationLock>, ()> {
        use std::os::unix::fs::OpenOptionsExt;
        let p = std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(p)
            .map_err(drop)?;
        loop {
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return Ok(Some(CreationLock { _file: file })),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::WOULDBLOCK) => return Ok(None),
                Err(_) => return Err(()),
            }
        }
    }

    /// A creator's: the lock, tried for up to 100 ms (an opener holds it for microseconds;
    /// a process forked by one keeps a copy of it until it execs or exits, and a creator
    /// must not wait for that). `None`: the creator goes on without it, as Qt's does.
    fn for_creator(path: &CStr) -> Option<CreationLock> {
        let until = Instant::now() + Duration::from_millis(100);
        loop {
            match CreationLock::take(path) {
                Ok(Some(lock)) => return Some(lock),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(1)),
                _ => return None,
            }
        }
    }
}

/// Whether semaphore `id` may be one that `semget(IPC_CREAT|IPC_EXCL)` made and nobody
/// has set yet: value 0, never operated on (`sem_otime` 0) and no `SETVAL` seen
/// (`GETPID` 0). A set semaphore can look like that only to a process that does not see
/// its setter's pid (another PID namespace) before anyone has operated on it. An error
/// reads as "set": there is nothing to repair then.
fn maybe_unset(id: c_int) -> bool {
    // SAFETY: GETVAL and GETPID take no fourth argument and only read kernel state.
    let get = |cmd| unsafe { libc::semctl(id, 0, cmd) };
    get(sem_cmd::GETVAL) == 0
        && sem_stat(id).is_some_and(|(otime, ..)| otime == 0)
        && get(sem_cmd::GETPID) == 0
}

/// `semctl(IPC_STAT)`: `sem_otime` (when the set was last operated on, 0: never; its low
/// word on 32-bit musl, whose `semid_ds` has the 64-bit time at its end), the owner's uid
/// and the permission bits.
pub(crate) fn sem_stat(id: c_int) -> Option<(i64, u32, u32)> {
    #[cfg(not(qshm_libc = "musl"))]
    type SemidDs = libc::semid_ds;
    // musl's `semid_ds`, which the `libc` crate lacks: the permissions, then `sem_otime`
    // (or its low word) on every architecture; the rest is room for what follows.
    #[cfg(qshm_libc = "musl")]
    #[repr(C)]
    struct SemidDs {
        sem_perm: libc::ipc_perm,
        sem_otime: libc::c_ulong,
        rest: [libc::c_ulong; 16],
    }
    // SAFETY: SemidDs is a plain C struct of integers, for which all-zero is valid.
    let mut ds: SemidDs = unsafe { std::mem::zeroed() };
    let arg = Semun {
        buf: (&mut ds as *mut SemidDs).cast(),
    };
    // SAFETY: IPC_STAT writes one `struct semid_ds` (of this C library's layout, which
    // `SemidDs` is or exceeds) through the union's `buf` member.
    let rc = unsafe { libc::semctl(id, 0, libc::IPC_STAT, arg) };
    (rc != -1).then_some((
        ds.sem_otime as i64,
        ds.sem_perm.uid,
        ds.sem_perm.mode as u32 & 0o777,
    ))
}

/// Finishes what a creator killed between `semget(IPC_CREAT|IPC_EXCL)` and `SETVAL` left:
/// a semaphore at 0 that nobody holds, on which every `lock()` would wait for ever (Qt's
/// too). An opener that finds one ([`maybe_unset`]) waits while another holds the creation
/// lock (a creator at work, however long it takes); once it holds that lock itself and the
/// semaphore has stayed unset for [`UNSET_GRACE`], it sets it to `initial`, as the creator
/// would have. When the key file cannot be read nothing can be proven, and the semaphore
/// is used as found, as Qt does. Costs an opener one `semctl(IPC_STAT)` once the semaphore
/// has been used, and nothing more unless it looks unset.
fn settle(ctx: Ctx<'_>, path: &CStr, id: c_int, initial: u32) -> Result<()> {
    if initial == 0 || !maybe_unset(id) {
        return Ok(());
    }
    let seen = Instant::now();
    loop {
        match CreationLock::take(path) {
            Ok(Some(_creating)) => {
                if !maybe_unset(id) {
                    return Ok(());
                }
                if seen.elapsed() >= UNSET_GRACE {
                    return set_value(ctx, id, initial);
                }
            }
            Ok(None) => {} // another holds it
            Err(()) => return Ok(()),
        }
        std::thread::sleep(Duration::from_millis(2));
        if !maybe_unset(id) {
            return Ok(());
        }
    }
}

/// `semctl(id, 0, SETVAL, value)`.
fn set_value(ctx: Ctx<'_>, id: c_int, value: u32) -> Result<()> {
    let arg = Semun {
        val: value as c_int,
    };
    // SAFETY: SETVAL reads the `val` member of the union passed by value, as semctl(2)
    // prescribes; `value` ≤ SEMVMX was checked by the caller.
    let rc = unsafe { libc::semctl(id, 0, sem_cmd::SETVAL, arg) };
    cvt(rc).map_err(|e| ctx.err(e))?;
    Ok(())
}

impl crate::backend::sealed::Sealed for SysvSemaphore {}

impl RawSemaphore for SysvSemaphore {
    /// Qt's `QSystemSemaphore::handle`: key file (0640, `O_EXCL`), `ftok`,
    /// `semget(key, 1, mode|IPC_CREAT|IPC_EXCL)` and `SETVAL` when it was created, else
    /// `semget(key, 1, 0600)` to open the existing one.
    #[doc(alias = "semget")]
    fn open(
        key: &NativeKey,
        initial: u32,
        how: SemOpen,
        mode: u32,
    ) -> Result<(SysvSemaphore, bool)> {
        let ctx = Ctx::new(Operation::SemaphoreOpen, key);
        if initial > SEMVMX {
            return Err(ctx.kind(
                ErrorKind::OutOfResources,
                "initial value above 32767 (SEMVMX)",
            ));
        }
        let path = c_path(ctx)?;
        let (id, sysv_key, created) = get(ctx, &path, initial, how, mode)?;
        let sem = SysvSemaphore {
            key: key.clone(),
            text: key.to_string().into(),
            path,
            id: AtomicI32::new(id),
            sysv_key: AtomicI32::new(key_to_i32(sysv_key)),
            mode,
            initial,
        };
        Ok((sem, created))
    }

    // Out of line: a system call dominates, and callers that inline the POSIX fast path
    // stay small.
    #[inline(never)]
    fn acquire(&self, wait: Wait, undo: Undo, op: Operation) -> Result<bool> {
        // The kernel gives a dead holder's unit back silently (SEM_UNDO): nothing to tell.
        if wait == Wait::Forever && self.semop_once(-1, undo) {
            return Ok(false);
        }
        self.op(-1, wait, undo, op).map(|()| false)
    }

    #[inline(never)]
    fn release(&self, n: u32, undo: Undo, op: Operation) -> Result<()> {
        if n == 1 && self.semop_once(1, undo) {
            return Ok(());
        }
        // All or nothing: one `semop` of `n`, which the kernel does whole or not at all
        // (ERANGE past SEMVMX); more than SEMVMX at once can never fit.
        if n > SEMVMX {
            return Err(Ctx::shared(op, &self.key, &self.text).kind(
                ErrorKind::OutOfResources,
                format!("releasing {n} at once: more than 32767 (SEMVMX); nothing released"),
            ));
        }
        self.op(n as i16, Wait::Forever, undo, op)
    }

    /// A System V semaphore known by id costs nobody anything (other processes' checks
    /// count waiters, not openers).
    fn keepable(&self) -> bool {
        true
    }

    fn owner(&self) -> Option<(u32, u32)> {
        sem_stat(self.id.load(Ordering::Relaxed)).map(|(_, uid, mode)| (uid, mode))
    }

    /// Whether the key file still names this semaphore: its `ftok` key is the one this
    /// handle was opened with, and that key's semaphore is this one. A remover unlinks the
    /// key file before `IPC_RMID`; one killed in between leaves a semaphore that no name
    /// reaches, which a waiter could take while others make and take the new one.
    fn still_named(&self) -> bool {
        let key = key_from_i32(self.sysv_key.load(Ordering::Relaxed));
        ftok(&self.path, project_id(&self.key)) == Ok(key)
            // SAFETY: semget takes plain integers; flags 0 opens an existing set, asking
            // for no permission.
            && unsafe { libc::semget(key, 0, 0) } == self.id.load(Ordering::Relaxed)
    }

    /// A removed semaphore fails with `EIDRM`, after which `op` opens the one the name
    /// refers to now; what a kept id cannot notice is its key file replaced while the old
    /// semaphore lives on, so the key file is checked (one `stat` instead of `stat` +
    /// `semget`).
    fn reusable(&self) -> bool {
        ftok(&self.path, project_id(&self.key))
            == Ok(key_from_i32(self.sysv_key.load(Ordering::Relaxed)))
    }

    fn waiters(&self) -> usize {
        // SAFETY: GETNCNT takes no fourth argument.
        let n = unsafe { libc::semctl(self.id.load(Ordering::Relaxed), 0, sem_cmd::GETNCNT) };
        usize::try_from(n).unwrap_or(0)
    }

    /// The key file goes first, then the semaphore (Qt's order). The other order leaves a
    /// window in which a process that found the semaphore gone (`EIDRM`) makes a new one
    /// under the key file that is about to be removed: that semaphore is then named by no
    /// file, and the next process makes a second lock for the same key (measured: the
    /// reliability churn left such semaphores behind).
    fn remove(&self) -> Result<()> {
        remove_key_file(self.key.native_key());
        // SAFETY: IPC_RMID takes no fourth argument.
        let rc = unsafe { libc::semctl(self.id.load(Ordering::Relaxed), 0, libc::IPC_RMID) };
        if rc == -1 {
            let e = errno();
            if e != libc::EINVAL && e != libc::EIDRM {
                return Err(crate::sys::os_error(
                    e,
                    Operation::Remove,
                    self.key.to_string(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftok_is_glibc_ftok() {
        for path in ["/", "/tmp", "/dev/null", "/proc/self"] {
            let c = CString::new(path).unwrap();
            for proj in [1u8, b'Q', 0x52, 0xff] {
                // SAFETY: `c` is a valid NUL-terminated path.
                let theirs = unsafe { libc::ftok(c.as_ptr(), c_int::from(proj)) };
                assert_eq!(ftok(&c, proj), Ok(theirs), "{path} {proj}");
            }
        }
    }

    #[test]
    fn send_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SysvSegment>();
        assert_send_sync::<SysvSemaphore>();
    }

    /// A lock removed while held, and made anew by the next user: the old holder's release
    /// must not post the new one, which would then admit two holders.
    #[test]
    fn releasing_a_removed_lock_does_not_post_its_successor() {
        let key = NativeKey::legacy(
            &format!("qshm-unit-removed-held-{}", std::process::id()),
            crate::KeyType::SystemV,
        );
        let (held, _) = SysvSemaphore::open(&key, 1, SemOpen::OpenOrCreate, 0o600).unwrap();
        held.acquire(Wait::Forever, Undo::Yes, Operation::Lock)
            .unwrap();
        let (other, _) = SysvSemaphore::open(&key, 1, SemOpen::Existing, 0o600).unwrap();
        other.remove().unwrap();
        let (fresh, created) = SysvSemaphore::open(&key, 1, SemOpen::OpenOrCreate, 0o600).unwrap();
        assert!(created);
        held.release(1, Undo::Yes, Operation::Unlock).unwrap();
        let first = fresh.acquire(Wait::Poll, Undo::Yes, Operation::Lock);
        let second = fresh.acquire(Wait::Poll, Undo::Yes, Operation::Lock);
        let _ = fresh.remove();
        assert!(first.is_ok());
        assert_eq!(
            second.unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "two holders"
        );
    }
}
