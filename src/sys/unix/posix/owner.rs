//! The owner record's liveness token: an open-file-description lock the kernel drops when
//! its holder dies, whatever PID namespace, time namespace, `/proc` mount or emulator the
//! holder and its waiter run in.
//!
//! Each handle of a semaphore that takes it as a lock first takes a *slot*: one byte of the
//! semaphore file, at [`SLOT_BASE`] + slot, locked with `F_OFD_SETLK` through the handle's
//! own descriptor and kept until the handle closes it (or the process dies, which closes it).
//! The record it writes when it holds the semaphore is [`token`]: the slot, a flag saying
//! "this is a slot", and the process's pid as a hint for people (`qshm info`; a pid in the
//! holder's own PID namespace, never used to decide anything). A waiter asks the kernel
//! whether the slot's byte is locked (`F_OFD_GETLK`) through its own descriptor of the same
//! file: locked means alive. A record without the flag, or a question the kernel does not
//! answer, means alive too: unknown is never taken for dead.
//!
//! Byte-range locks of one open file description do not conflict with each other, so a
//! forked child that shares its parent's descriptor keeps the slot locked: a holder that
//! forked and died is taken for alive while the child lives (it waits; it is never two
//! holders). Locks past the end of a file are allowed and change nothing in it; glibc, musl
//! and Qt never look at them.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man2/fcntl.2.html> ("Open file description locks")

use std::os::fd::AsRawFd;

use super::*;

/// Where the slots start in the semaphore file: far past its 32 bytes, below 2^31 (32-bit
/// `off_t`).
const SLOT_BASE: i64 = 1 << 20;
/// How many slots there are: picked at random, so that a dead holder's slot is rarely the
/// one a newcomer takes (which would only make waiters wait for the newcomer).
const SLOTS: u32 = 1 << 30;
/// Marks a record that names a slot (a record is never 0 when held).
const TOKEN_FLAG: u64 = 1 << 31;

/// The record of a holder through slot `slot`: `pid << 32 | TOKEN_FLAG | slot`.
pub(super) fn token(slot: u32) -> u64 {
    u64::from(my_pid()) << 32 | TOKEN_FLAG | u64::from(slot)
}

/// The pid a record names, as a hint (0: none).
pub(crate) fn record_pid(record: u64) -> u32 {
    (record >> 32) as u32
}

/// Takes a free slot through `fd`, avoiding `avoid` (the slot of the record found now,
/// perhaps a dead holder's). `None` when the kernel refuses byte-range locks here (then
/// this handle records no slot, and a crash of it is not recognised).
pub(super) fn take_slot(fd: &OwnedFd, avoid: u64) -> Option<u32> {
    use std::hash::{BuildHasher, Hasher};
    // Random per call (std seeds each thread's hasher keys from the OS and steps them).
    let mut seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        | 1;
    for _ in 0..64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let slot = (seed % u64::from(SLOTS)) as u32;
        if avoid & TOKEN_FLAG != 0 && u64::from(slot) == avoid & u64::from(SLOTS - 1) {
            continue;
        }
        match ofd_lock(fd, libc::F_OFD_SETLK, libc::F_WRLCK, slot) {
            Ok(_) => return Some(slot),
            Err(libc::EAGAIN | libc::EACCES) => continue, // another handle's slot
            Err(_) => return None,
        }
    }
    None
}

/// Whether the holder a record names is alive, asked through `fd` (a descriptor of the same
/// semaphore file). True for a record that names no slot, and whenever the kernel does not
/// answer.
pub(crate) fn is_alive(fd: &impl AsRawFd, record: u64) -> bool {
    if record & TOKEN_FLAG == 0 {
        return true;
    }
    let slot = (record & u64::from(SLOTS - 1)) as u32;
    !matches!(
        ofd_lock(fd, libc::F_OFD_GETLK, libc::F_WRLCK, slot),
        Ok(libc::F_UNLCK)
    )
}

/// `fcntl(fd, cmd, {type, SEEK_SET, SLOT_BASE + slot, 1})`: the lock type `F_OFD_GETLK`
/// reports, or `kind` after a set.
fn ofd_lock(
    fd: &impl AsRawFd,
    cmd: c_int,
    kind: c_int,
    slot: u32,
) -> std::result::Result<c_int, i32> {
    // SAFETY: flock is a plain C struct of integers, for which all-zero is valid.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = (SLOT_BASE + i64::from(slot)) as _;
    lock.l_len = 1;
    // l_pid must be 0 for the OFD commands (fcntl(2)); zeroed above.
    // SAFETY: `fd` is a live descriptor; the OFD commands take a pointer to a struct flock,
    // which the C library converts where its layout differs from the kernel's (32-bit
    // `off_t`: glibc converts the OFD commands since 2.28).
    let rc = unsafe { libc::fcntl(fd.as_raw_fd(), cmd, &mut lock) };
    super::super::cvt(rc)?;
    Ok(c_int::from(lock.l_type))
}

/// This process's id, cached (getpid is a system call in current C libraries), recomputed
/// in a forked child.
#[inline]
pub(super) fn my_pid() -> u32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached >> 32 == u64::from(crate::sys::fork::generation()) {
        cached as u32
    } else {
        compute_pid()
    }
}

/// The pid in the low half, the fork generation it belongs to in the high half.
static PID: AtomicU64 = AtomicU64::new(0);

#[cold]
fn compute_pid() -> u32 {
    crate::sys::fork::watch();
    let generation = crate::sys::fork::generation();
    let pid = std::process::id();
    PID.store(
        u64::from(generation) << 32 | u64::from(pid),
        Ordering::Relaxed,
    );
    pid
}
