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
//! and a state word in bytes 24..32 (see [`SEM_FILE_LEN`]), written after `sem_wait` and
//! cleared before `sem_post`: a token naming the holder's *liveness slot*, a byte of the
//! semaphore file its handle keeps locked (`F_OFD_SETLK`) until it closes it, which the
//! kernel does when the process dies, and its pid as a hint for people (`owner.rs`). Where
//! the record lives depends on the C library, and is checked at compile time:
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
//! A waiter that finds the semaphore taken reads the record at once, and again after each
//! [`SLICE`](semaphore::SLICE) it waits in vain; when the kernel says the recorded slot is
//! free (its holder closed it, by dying) while the semaphore is still taken, the waiter
//! takes the record over with a compare-and-swap (exactly one waiter wins), and with it the
//! unit the dead holder never gave back, and reports that the owner died. Bytes 24..32 hold
//! a state word whose bit 0 says "a holder died and nobody has declared the data consistent
//! since": every later holder is told, until one calls `mark_consistent`.
//!
//! The slot is asked about through the waiter's own descriptor of the same file, so it
//! holds across PID and time namespaces, hidden `/proc`s and emulators, where a pid means
//! nothing; when the kernel cannot answer, the holder is taken for alive.
//!
//! What remains: a Qt process writes no record, so a Qt holder that dies still blocks
//! everyone, Qt and qshm (Qt's own behaviour, docs/qt-ipc.md §8.2); and a qshm process
//! killed in the few instructions between taking the semaphore and writing its record, or
//! between clearing it and posting, cannot be recognised.
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
use crate::sys::procfs::{mapped_files, task_stat, FileId};
use crate::{AccessMode, NativeKey};

mod owner;
mod segment;
mod semaphore;
mod users;

pub(crate) use owner::{is_alive, record_pid};
#[cfg_attr(qshm_posix_portable, allow(unused_imports))]
pub(crate) use segment::PosixSegment;
#[cfg_attr(qshm_posix_portable, allow(unused_imports))]
pub(crate) use semaphore::{sem_head, PosixSemaphore, SEM_FILE_LEN};
use {owner::*, users::*};

/// Where glibc keeps POSIX shared memory and semaphores.
const SHM_DIR: &str = "/dev/shm/";

/// The longest file name Linux allows.
const NAME_MAX: usize = 255;

/// Checks a POSIX native key and returns the file name under `/dev/shm` (without the `/`).
/// `prefix` is what glibc puts before it (`"sem."` for semaphores).
fn file_name<'k>(ctx: Ctx<'_>, native: &'k str, prefix: &str) -> Result<&'k str> {
    let err = |detail: String| ctx.kind(ErrorKind::KeyError, detail);
    // The platform's own limits first (Apple's 30 bytes, its sandbox's `<group>/<name>`).
    crate::platform::naming()
        .check_posix_name(native)
        .map_err(err)?;
    let name = super::posix_name_body(native).map_err(err)?;
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

/// Opens an existing segment or semaphore file as `shm_open`/`sem_open` do (no link
/// followed), and without waiting on a FIFO anyone may have put at the name (`O_NONBLOCK`,
/// which a regular file ignores); anything but a regular file is refused (`ENODEV`: Linux's
/// answer to mapping what cannot be mapped).
fn open_existing(path: &str, access: AccessMode) -> rustix::io::Result<OwnedFd> {
    let rw = match access {
        AccessMode::ReadOnly => OFlags::RDONLY,
        AccessMode::ReadWrite => OFlags::RDWR,
    };
    let fd = super::open_no_wait(path, rw | OFlags::NOFOLLOW | OFlags::CLOEXEC)?;
    match rustix::fs::fstat(&fd) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => Ok(fd),
        Ok(_) => Err(rustix::io::Errno::NODEV),
        Err(e) => Err(e),
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

fn file_inode(path: &str) -> Option<u64> {
    rustix::fs::stat(path).ok().map(|st| st.st_ino)
}

#[cfg(test)]
mod tests;
