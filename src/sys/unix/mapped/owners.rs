//! The in-segment lock's platform half (`sys/word_lock.rs`) where there are no
//! open-file-description locks, no futex and no `/proc` (macOS, iOS, FreeBSD; on Linux the
//! portable-Unix test mode): who a thread is in the lock word, how a waiter sleeps, and how
//! it tells that an owner died.
//!
//! # Liveness: classic record locks
//!
//! Each process takes, per segment file and fork generation, a random *slot*: a byte of the
//! file that it write-locks (`F_SETLK`) through the one descriptor it has of the file
//! (`sys/unix/record_lock.rs`: closing any other would drop the lock). Its threads name
//! themselves `TOKEN | slot << 32 | n`, where `n` numbers the threads of this process (from
//! 1). The kernel drops a process's record locks when it dies, `kill -9` included. A waiter
//! asks (`F_GETLK`) whether the owner's slot is still locked by another process: no: dead;
//! yes, or no answer: alive. The answer does not depend on PID namespaces.
//!
//! Owners without `TOKEN` (a C program with `include/qshm.h`, which takes no record-lock
//! slot; a process the kernel refused a slot) are never judged: waited for, as a live owner
//! would be.
//!
//! # Sleeping
//!
//! A waiter sleeps on the low half of the lock word (`sys/wait_word.rs`): with
//! `os_sync_wait_on_address` on macOS 14.4 and later, `_umtx_op` on FreeBSD (both built
//! only here), and an unlock that clears WAITERS wakes one; elsewhere (older macOS, Linux's
//! portable-Unix test mode) it polls the whole 64-bit word (`wait_word::wait_u64`), within
//! the lock's bounded naps (1 to 16 ms), which wake it for its liveness checks.

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::super::record_lock::{LockedFile, SLOTS, TOKEN_FLAG};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::word_lock::{Owners, TID_MASK, TOKEN};

/// The process's threads, numbered from 1 as they first take a lock.
static THREADS: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// This thread's number (0: none yet).
    static THREAD: Cell<u32> = const { Cell::new(0) };
}

/// This thread's number in the lock word: never 0, within [`TID_MASK`]. A forked child's
/// one thread keeps its number (its token differs: a slot of its own).
#[inline]
fn thread_number() -> u64 {
    THREAD.with(|cell| {
        let mut n = cell.get();
        if n == 0 {
            n = loop {
                let n = THREADS.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
                let n = n & TID_MASK as u32;
                if n != 0 {
                    break n;
                }
            };
            cell.set(n);
        }
        u64::from(n)
    })
}

/// The owners of a segment's lock, judged through the segment file's record locks.
pub(crate) struct RecordOwners {
    file: Arc<LockedFile>,
}

impl RecordOwners {
    pub(crate) fn new(file: Arc<LockedFile>) -> RecordOwners {
        RecordOwners { file }
    }
}

impl Owners for RecordOwners {
    /// `TOKEN | slot << 32 | n`. Without a slot (the kernel refused the record lock) there
    /// is no identity that other processes could judge, nor one unique among them: the lock
    /// is refused rather than taken under a name another process might share.
    #[inline]
    fn me(&self) -> Result<u64> {
        let mut high = self.file.token() & 0xffff_ffff;
        if high & TOKEN_FLAG == 0 {
            high = self.file.retry_slot() & 0xffff_ffff;
            if high & TOKEN_FLAG == 0 {
                return Err(no_slot());
            }
        }
        Ok(high << 32 | thread_number())
    }

    fn owner_is_dead(&self, word: u64) -> bool {
        if word & TID_MASK == 0 || word & TOKEN == 0 {
            return false;
        }
        let slot = (word >> 32) as u32 & (SLOTS - 1);
        let mine = self.file.token();
        if mine & TOKEN_FLAG != 0 && mine as u32 & (SLOTS - 1) == slot {
            return false; // a thread of this process
        }
        crate::sys::portable::hit(crate::sys::portable::Fallback::MappedRecordLocks);
        !self.file.slot_held_elsewhere(slot)
    }

    fn sleep(&self, word: &AtomicU64, expected: u64, timeout: Duration) -> Result<bool> {
        if !crate::sys::wait_word::sleeps_in_kernel() {
            crate::sys::portable::hit(crate::sys::portable::Fallback::MappedLock);
        }
        let woke = crate::sys::wait_word::wait_u64(word, expected, Some(timeout))?;
        Ok(woke == crate::sys::wait_word::Woke::TimedOut)
    }

    fn wake_one(&self, word: &AtomicU64) -> Result<()> {
        crate::sys::wait_word::wake_u64(word, 1)
    }
}

#[cold]
fn no_slot() -> Error {
    Error::new(ErrorKind::LockError, Operation::Lock, String::new()).with_detail(
        "the system refused this process a record lock on the segment file (its liveness \
         slot), without which no other process could tell whether it is alive",
    )
}
