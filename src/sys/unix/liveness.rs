//! Liveness from the kernel: open-file-description locks (`F_OFD_SETLK`) on one byte of a
//! file, which the kernel drops when the last descriptor of the description closes, that is
//! when its process dies, whatever PID namespace, time namespace, `/proc` mount or emulator
//! the process and the one asking run in.
//!
//! A *slot* is a byte of the file at [`SLOT_BASE`] + slot number. Its owner locks it through
//! a description of its own and names it in the record or lock word it writes when it holds
//! a lock; a waiter asks the kernel (`F_OFD_GETLK`) whether some description holds a lock on
//! that byte: yes means alive. Two rules make the answer right:
//!
//! * the kernel answers `F_OFD_GETLK` *ignoring the asking description's own locks*, so a
//!   waiter must ask through a description no other process shares (one it opened itself,
//!   not one inherited over `fork` or received from another process);
//! * a question the kernel does not answer means alive: unknown is never taken for dead.
//!
//! Locks past the end of a file are allowed and change nothing in it; glibc, musl, Qt and
//! `flock(2)` never look at them.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man2/fcntl.2.html> ("Open file description locks")

use std::ffi::c_int;
use std::os::fd::{AsRawFd, OwnedFd};

/// Where slots start in a file: past a semaphore file's 32 bytes, below 2^31 (a 32-bit
/// `off_t`). They may overlap a segment's data: byte-range locks are advisory and change
/// nothing in the file.
const SLOT_BASE: i64 = 1 << 20;
/// How many slots there are. Picked at random, so that a slot is rarely one another live
/// process holds (which would only make a dead holder look alive for as long as that
/// process lives: a wait, never two holders).
pub(crate) const SLOTS: u32 = 1 << 30;

/// Random slot numbers (different on each call and in each thread).
pub(crate) fn random_slots() -> impl Iterator<Item = u32> {
    crate::sys::random::random_below(SLOTS)
}

/// Takes `slot` through `fd`'s description: a write lock (which also tells whether another
/// description has it) or a read lock (which several descriptions of one process may share).
/// `Err(errno)`: `EAGAIN`/`EACCES` when another description holds a conflicting lock.
pub(crate) fn lock_slot(fd: &impl AsRawFd, slot: u32, write: bool) -> Result<(), i32> {
    let kind = if write { libc::F_WRLCK } else { libc::F_RDLCK };
    ofd_lock(fd, libc::F_OFD_SETLK, kind, slot).map(drop)
}

/// Whether a description other than `fd`'s holds a lock on `slot`: `Some(true)` yes,
/// `Some(false)` no, `None` when the kernel does not say.
pub(crate) fn slot_locked(fd: &impl AsRawFd, slot: u32) -> Option<bool> {
    ofd_lock(fd, libc::F_OFD_GETLK, libc::F_WRLCK, slot)
        .ok()
        .map(|kind| kind != libc::F_UNLCK)
}

/// Opens a new description of the file `fd` refers to (read-only, or read-write when
/// `writable`; close-on-exec), through `/proc/self/fd`: one that no other process shares.
/// `None` without `/proc`, or if what opened is not the same file.
#[cfg_attr(qshm_posix_portable, allow(dead_code))] // the mapped backend's, on Linux
pub(crate) fn reopen(fd: &impl AsRawFd, writable: bool) -> Option<OwnedFd> {
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
    use rustix::fs::OFlags;
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let access = if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    let new = rustix::fs::open(
        path.as_str(),
        access | OFlags::CLOEXEC | OFlags::NONBLOCK,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    // SAFETY: `fd` is a live descriptor for the duration of this call.
    let old = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd.as_raw_fd()) };
    let (a, b) = (rustix::fs::fstat(old).ok()?, rustix::fs::fstat(&new).ok()?);
    (a.st_dev == b.st_dev && a.st_ino == b.st_ino).then_some(new)
}

/// `fcntl(fd, cmd, {kind, SEEK_SET, SLOT_BASE + slot, 1})`: the lock type `F_OFD_GETLK`
/// reports, or `kind` after a set.
fn ofd_lock(fd: &impl AsRawFd, cmd: c_int, kind: c_int, slot: u32) -> Result<c_int, i32> {
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::OfdLock);
    // SAFETY: flock is a plain C struct of integers, for which all-zero is valid.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = (SLOT_BASE + i64::from(slot % SLOTS)) as _;
    lock.l_len = 1;
    // l_pid must be 0 for the OFD commands (fcntl(2)); zeroed above.
    // SAFETY: `fd` is a live descriptor; the OFD commands take a pointer to a struct flock,
    // which the C library converts where its layout differs from the kernel's (32-bit
    // `off_t`: glibc converts the OFD commands since 2.28).
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut lock) };
    super::cvt(rc)?;
    Ok(c_int::from(lock.l_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "fcntl")]
    fn a_slot_is_seen_from_another_description_only() {
        let dir = std::env::temp_dir();
        let file = tempfile_in(&dir);
        let a = std::fs::File::open(&file.0).unwrap();
        let b = std::fs::File::open(&file.0).unwrap();
        let slot = random_slots().next().unwrap();
        assert_eq!(slot_locked(&b, slot), Some(false));
        lock_slot(&a, slot, false).unwrap();
        assert_eq!(slot_locked(&b, slot), Some(true));
        // The kernel ignores the asking description's own locks: the rule of this module.
        assert_eq!(slot_locked(&a, slot), Some(false));
        // A description of our own, through /proc, sees it too.
        let c = reopen(&a, false).expect("/proc/self/fd");
        assert_eq!(slot_locked(&c, slot), Some(true));
        drop(a);
        assert_eq!(slot_locked(&b, slot), Some(false));
    }

    struct Temp(std::path::PathBuf);
    impl Drop for Temp {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    fn tempfile_in(dir: &std::path::Path) -> Temp {
        let path = dir.join(format!(
            "qshm-liveness-{}-{}",
            std::process::id(),
            random_slots().next().unwrap()
        ));
        std::fs::write(&path, b"x").unwrap();
        Temp(path)
    }
}
