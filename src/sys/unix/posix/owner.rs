//! The owner record's liveness token: an open-file-description lock the kernel drops when
//! its holder dies, whatever PID namespace, time namespace, `/proc` mount or emulator the
//! holder and its waiter run in.
//!
//! Each handle of a semaphore that takes it as a lock first takes a *slot* (`liveness.rs`): one
//! byte of the semaphore file, locked with `F_OFD_SETLK` through the handle's
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

use super::super::liveness::{lock_slot, random_slots, slot_locked, SLOTS};
use super::*;

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
    for slot in random_slots().take(64) {
        if avoid & TOKEN_FLAG != 0 && u64::from(slot) == avoid & u64::from(SLOTS - 1) {
            continue;
        }
        match lock_slot(fd, slot, true) {
            Ok(()) => return Some(slot),
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
    slot_locked(fd, slot) != Some(false)
}

pub(super) use crate::sys::fork::my_pid;
