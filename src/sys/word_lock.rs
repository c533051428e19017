//! The lock inside a mapped segment's header, the part every platform shares: a
//! process-shared, robust mutex on one 64-bit word. How a thread names itself in the word,
//! how a waiter sleeps and is woken, and how it judges whether an owner is alive are the
//! platform's ([`Owners`]: futexes and open-file-description locks on Linux, a named event and
//! byte-range locks on Windows). The protocol is the one `include/qshm.h` implements in C,
//! and both must stay identical: a C or Qt program that maps the same file takes the same
//! lock.
//!
//! # The lock word (header offset 64, 8 bytes, native byte order; layout version 2)
//!
//! ```text
//! bits  0..30  owner's thread (Linux: its TID; Windows: a number per thread of its process),
//!              0 when free
//! bit   30     reserved, 0
//! bit   31     WAITERS: someone may sleep, waiting for a wake-up at unlock
//! bit   63     TOKEN: bits 32..62 name the owner's liveness slot (qshm)
//! bits 32..62  with TOKEN: the slot; without: a tag the platform defines (Linux: the low 31
//!              bits of the owning thread's start time)
//! ```
//!
//! * **Lock**: `CAS(0 → me)`, where `me` is cached per thread and per handle, so the
//!   uncontended path is one atomic instruction and no system call.
//! * **Unlock**: `CAS(me → 0)`; if that fails because WAITERS is set, `CAS(me|WAITERS → 0)`
//!   and wake one sleeper.
//! * **Contention**: spin briefly, then set WAITERS (CAS) and sleep with a timeout, unless
//!   the word changed meanwhile. A waiter that has slept takes a free lock as `me|WAITERS`,
//!   because others may still sleep (Drepper, "Futexes Are Tricky", mutex 3): no wake-up is
//!   lost, and a waiter killed in its sleep costs at most one spurious wake, since the bit
//!   is cleared at every unlock.
//! * **Owner death**: on every timeout (1 ms, doubling to 16 ms), a waiter asks whether the
//!   owner is alive. A dead owner is replaced by `CAS(observed → me|WAITERS)`: every waiter
//!   compares against the same observed value, so exactly one takes over. The winner sets
//!   `STATE_INCONSISTENT` and bumps the generation; every later locker is told the owner
//!   died until someone marks the data consistent.
//!
//! # References
//!
//! * Ulrich Drepper, "Futexes Are Tricky" (2011), mutex 3.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backend::Wait;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::SegmentLock;

/// The owner's thread bits of the lock word.
pub(crate) const TID_MASK: u64 = 0x3fff_ffff;
/// Someone may be sleeping, waiting for a wake-up.
pub(crate) const WAITERS: u64 = 0x8000_0000;
/// The high half names the owner's liveness slot (see the module docs).
pub(crate) const TOKEN: u64 = 1 << 63;
/// `state` bit: a holder died, and nobody has marked the data consistent since.
pub(crate) const STATE_INCONSISTENT: u32 = 1;

/// Iterations of the busy-wait before sleeping.
const SPIN_LIMIT: u32 = 100;
/// First and longest sleep between liveness checks of the owner.
const FIRST_NAP: Duration = Duration::from_millis(1);
const LONGEST_NAP: Duration = Duration::from_millis(16);

/// The low 32 bits of a lock word (where its WAITERS bit is), which a futex or an address
/// wait operates on.
#[allow(dead_code)] // the Unix halves' (Windows sleeps on an event)
pub(crate) fn low_half(word: &AtomicU64) -> &AtomicU32 {
    let base = std::ptr::from_ref(word).cast::<u8>();
    let offset = if cfg!(target_endian = "big") { 4 } else { 0 };
    // SAFETY: the low half of an aligned u64 is an aligned u32 that lives as long as `word`.
    // Rust code never accesses it through this reference: it is only handed to the system
    // calls that sleep on it and wake its sleepers, which read it atomically (a poll reads
    // the whole word instead: `wait_word::wait_u64`); all Rust accesses use the 64-bit
    // atomic.
    unsafe { &*base.add(offset).cast::<AtomicU32>() }
}

/// The platform's half of the lock: identities, sleeping and waking, liveness.
pub(crate) trait Owners: Sync {
    /// This thread's identity in the lock word, through this handle: never 0 in
    /// [`TID_MASK`], never with [`WAITERS`].
    fn me(&self) -> Result<u64>;
    /// Whether the owner named in `word` (not this thread) is certainly gone. Unknown is
    /// alive.
    fn owner_is_dead(&self, word: u64) -> bool;
    /// Sleeps until woken or until `timeout` has passed; returns at once if `word` no longer
    /// holds `expected` (or may do so spuriously). `Ok(true)`: the timeout passed.
    fn sleep(&self, word: &AtomicU64, expected: u64, timeout: Duration) -> Result<bool>;
    /// Wakes one sleeper of `word`, if any.
    fn wake_one(&self, word: &AtomicU64) -> Result<()>;
}

/// The lock in a mapped segment's header, with the platform's half `O`.
///
/// Points into a mapping the owning segment keeps alive for as long as this value lives
/// (both are dropped together, the lock first).
pub(crate) struct WordLock<O> {
    word: NonNull<AtomicU64>,
    state: NonNull<AtomicU32>,
    generation: NonNull<AtomicU64>,
    owners: O,
}

// SAFETY: the pointers address atomics in a shared mapping that stays mapped while the value
// lives (see the type's doc); atomics may be used from any thread, and every access here is
// atomic. `O` is `Sync` (the trait requires it) and sent with it when it is `Send`.
unsafe impl<O: Send + Sync> Send for WordLock<O> {}
// SAFETY: as for `Send`: `&WordLock` only performs atomic operations on the mapping and
// calls `O`'s methods, which take `&O` (`O: Sync`).
unsafe impl<O: Sync> Sync for WordLock<O> {}

impl<O> fmt::Debug for WordLock<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WordLock")
            .field("word", &self.word)
            .finish_non_exhaustive()
    }
}

impl<O: Owners> WordLock<O> {
    /// # Safety
    ///
    /// `word`, `state` and `generation` must be aligned, point to writable shared memory
    /// that stays mapped for as long as the returned value lives, and be accessed by every
    /// process only atomically (the layout of `include/qshm.h`); `owners` must describe the
    /// segment they are mapped from.
    pub(crate) unsafe fn new(
        word: *mut u64,
        state: *mut u32,
        generation: *mut u64,
        owners: O,
    ) -> WordLock<O> {
        WordLock {
            word: NonNull::new(word.cast()).expect("non-null lock word"),
            state: NonNull::new(state.cast()).expect("non-null state"),
            generation: NonNull::new(generation.cast()).expect("non-null generation"),
            owners,
        }
    }

    pub(crate) fn word(&self) -> &AtomicU64 {
        // SAFETY: aligned, mapped and only accessed atomically for as long as `self` lives
        // (the contract of `new`); AtomicU64 has the layout of u64.
        unsafe { self.word.as_ref() }
    }

    fn state(&self) -> &AtomicU32 {
        // SAFETY: as in `word`.
        unsafe { self.state.as_ref() }
    }

    fn generation_word(&self) -> &AtomicU64 {
        // SAFETY: as in `word`.
        unsafe { self.generation.as_ref() }
    }

    /// The platform's half: identities and liveness, which the queue and the cell reuse
    /// to name their ends and to tell a dead peer.
    pub(crate) fn owners(&self) -> &O {
        &self.owners
    }

    /// How many times the lock was taken over from a dead owner.
    pub(crate) fn generation(&self) -> u64 {
        self.generation_word().load(Ordering::Relaxed)
    }

    /// Called with the lock just taken: reports (and, after a takeover, records) whether the
    /// data may be inconsistent.
    #[inline]
    fn acquired(&self, took_over: bool) -> bool {
        if took_over {
            self.state().fetch_or(STATE_INCONSISTENT, Ordering::Relaxed);
            self.generation_word().fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.state().load(Ordering::Relaxed) & STATE_INCONSISTENT != 0
        }
    }

    #[cold]
    fn lock_contended(&self, me: u64, wait: Wait, op: Operation) -> Result<bool> {
        let deadline = match wait {
            Wait::For(d) => Instant::now().checked_add(d),
            Wait::Forever | Wait::Poll => None,
        };
        let word = self.word();
        let mut spins = 0;
        let mut slept = false;
        let mut nap = FIRST_NAP;
        let mut last_check = Instant::now();
        loop {
            let cur = word.load(Ordering::Relaxed);
            if cur & TID_MASK == 0 {
                let new = if slept { me | WAITERS } else { me };
                if word
                    .compare_exchange_weak(cur, new, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Ok(self.acquired(false));
                }
                continue;
            }
            if cur & !WAITERS == me {
                return Err(
                    Error::new(ErrorKind::LockError, op, String::new()).with_detail(
                        "already locked by this thread through another object of the same segment \
                     (a second lock would deadlock)",
                    ),
                );
            }
            if wait == Wait::Poll {
                if self.owners.owner_is_dead(cur) && self.take_over(cur, me) {
                    return Ok(self.acquired(true));
                }
                if word.load(Ordering::Relaxed) & TID_MASK == 0 {
                    continue;
                }
                return Err(Error::new(ErrorKind::WouldBlock, op, String::new()));
            }
            if spins < SPIN_LIMIT && cur & WAITERS == 0 {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            if cur & WAITERS == 0
                && word
                    .compare_exchange_weak(cur, cur | WAITERS, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            let mut timeout = nap;
            if matches!(wait, Wait::For(_)) {
                let left = deadline.map_or(Duration::MAX, |d| {
                    d.saturating_duration_since(Instant::now())
                });
                if left.is_zero() {
                    return Err(Error::new(ErrorKind::Timeout, op, String::new()));
                }
                timeout = timeout.min(left);
            }
            let timed_out = self
                .owners
                .sleep(word, cur | WAITERS, timeout)
                .map_err(|e| e.with_op(op).with_kind(ErrorKind::LockError))?;
            if timed_out {
                nap = (nap * 2).min(LONGEST_NAP);
            }
            // The owner is asked after a sleep that timed out, and at least every
            // LONGEST_NAP by the clock: where sleeps poll (the portable mode; macOS and
            // FreeBSD), a sleep ends early at every poll and never reports a timeout.
            if timed_out || last_check.elapsed() >= LONGEST_NAP {
                last_check = Instant::now();
                let now = word.load(Ordering::Relaxed);
                if now & TID_MASK != 0
                    && now & !WAITERS != me
                    && self.owners.owner_is_dead(now)
                    && self.take_over(now, me)
                {
                    return Ok(self.acquired(true));
                }
            }
            slept = true;
        }
    }

    /// Replaces the dead owner seen in `observed`; true for the one caller that succeeds.
    fn take_over(&self, observed: u64, me: u64) -> bool {
        self.word()
            .compare_exchange(observed, me | WAITERS, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    #[cold]
    fn unlock_contended(&self, me: u64) -> Result<()> {
        let word = self.word();
        let mut cur = word.load(Ordering::Relaxed);
        loop {
            if cur & !WAITERS != me {
                return Err(
                    Error::new(ErrorKind::LockError, Operation::Unlock, String::new()).with_detail(
                        "this thread does not hold the lock (taken over by another process \
                             that judged this one dead, or used after fork)",
                    ),
                );
            }
            match word.compare_exchange_weak(cur, 0, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur & WAITERS != 0 {
            self.owners
                .wake_one(word)
                .map_err(|e| e.with_op(Operation::Unlock).with_kind(ErrorKind::LockError))?;
        }
        Ok(())
    }
}

impl<O: Owners> SegmentLock for WordLock<O> {
    #[inline]
    fn lock(&self, wait: Wait, op: Operation) -> Result<bool> {
        let me = self.owners.me().map_err(|e| e.with_op(op))?;
        if self
            .word()
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(self.acquired(false));
        }
        self.lock_contended(me, wait, op)
    }

    #[inline]
    fn unlock(&self) -> Result<()> {
        let me = self.owners.me()?;
        if self
            .word()
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(());
        }
        self.unlock_contended(me)
    }

    fn mark_consistent(&self) {
        self.state()
            .fetch_and(!STATE_INCONSISTENT, Ordering::Relaxed);
    }
}
