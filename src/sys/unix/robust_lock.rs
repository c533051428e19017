//! The lock inside a mapped segment's header: a process-shared, robust mutex on one 64-bit
//! word, with a futex to sleep on. The protocol is the one `include/qshm.h` implements in C
//! (`qshm_lock`, `qshm_unlock`), and both must stay identical: a C or Qt program that maps the
//! same file takes the same lock.
//!
//! # The lock word (header offset 64, 8 bytes, native byte order)
//!
//! ```text
//! bits  0..30  owner's thread id (Linux TID), 0 when free
//! bit   30     reserved, 0
//! bit   31     WAITERS: someone may sleep in FUTEX_WAIT on the low 32 bits
//! bits 32..64  owner's tag: the low 32 bits of the owning thread's start time
//!              (field 22 of /proc/thread-self/stat, clock ticks since boot), 0 if unknown
//! ```
//!
//! * **Lock**: `CAS(0 → me)`, where `me = tag << 32 | tid` is cached per thread, so the
//!   uncontended path is one atomic instruction and no system call.
//! * **Unlock**: `CAS(me → 0)`; if that fails because WAITERS is set, `CAS(me|WAITERS → 0)`
//!   and `FUTEX_WAKE(1)` on the low half.
//! * **Contention**: spin briefly, then set WAITERS (CAS) and `FUTEX_WAIT(low half,
//!   expected)` with a timeout. A waiter that has slept takes a free lock as `me|WAITERS`,
//!   because others may still sleep (Drepper, "Futexes Are Tricky", mutex 3): no wake-up is
//!   lost, and a waiter killed in its sleep costs at most one spurious wake, since the bit
//!   is cleared at every unlock.
//! * **Owner death**: on every timeout (1 ms, doubling to 16 ms), a waiter checks whether the
//!   owner is alive: `/proc/<tid>/task/<tid>/stat` exists, is not a zombie, and its start
//!   time matches the tag (so a reused thread id is not mistaken for the owner); when
//!   `/proc` hides the task (`hidepid`), `kill(tid, 0)` decides. A dead owner is replaced by
//!   `CAS(observed → me|WAITERS)`: every waiter compares against the same observed value,
//!   so exactly one takes over. The winner sets `STATE_INCONSISTENT` and bumps the
//!   generation; every later locker is told the owner died until someone marks the data
//!   consistent.
//!
//! # What remains
//!
//! * All users must share one PID namespace (thread ids are compared) and one time namespace
//!   (start times are compared); the header records the creator's PID namespace and opening
//!   from another one is refused.
//! * A thread id reused by a thread started in the same clock tick (10 ms) as the dead
//!   owner would be taken for it: the owner would need to die and 32 768+ threads be created
//!   within one tick.
//! * A process that forks while holding the lock: the child is not the owner. The per-thread
//!   cache is invalidated by a `pthread_atfork` handler, so a raw `clone`/`vfork` child that
//!   then locks would present its parent's identity; `std::process::Command` only execs.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man2/futex.2.html>
//! * Ulrich Drepper, "Futexes Are Tricky" (2011), mutex 3.
//! * <https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html> (fields 3 and 22)

use std::cell::Cell;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::thread::futex;

use crate::backend::Wait;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::procfs::read_stat;
use crate::sys::SegmentLock;

/// The owner's thread id bits of the lock word.
pub(crate) const TID_MASK: u64 = 0x3fff_ffff;
/// Someone may be sleeping on the futex.
pub(crate) const WAITERS: u64 = 0x8000_0000;
/// `state` bit: a holder died, and nobody has marked the data consistent since.
pub(crate) const STATE_INCONSISTENT: u32 = 1;

/// Iterations of the busy-wait before sleeping.
const SPIN_LIMIT: u32 = 100;
/// First and longest futex sleep between liveness checks of the owner.
const FIRST_NAP: Duration = Duration::from_millis(1);
const LONGEST_NAP: Duration = Duration::from_millis(16);

thread_local! {
    /// (fork generation, lock-word identity) of this thread.
    static IDENTITY: Cell<(u32, u64)> = const { Cell::new((0, 0)) };
}

/// This thread's identity in the lock word: `tag << 32 | tid`. Cached: no system call
/// unless this thread has never asked or the process has forked since.
#[inline]
pub(crate) fn self_id() -> u64 {
    IDENTITY.with(|cell| {
        let (generation, id) = cell.get();
        let now = crate::sys::fork::generation();
        if generation == now {
            id
        } else {
            let id = compute_self_id();
            cell.set((crate::sys::fork::generation(), id));
            id
        }
    })
}

#[cold]
fn compute_self_id() -> u64 {
    crate::sys::fork::watch();
    let tid = rustix::thread::gettid().as_raw_nonzero().get() as u64 & TID_MASK;
    let tag = read_stat("/proc/thread-self/stat").map_or(0, |s| s.start as u32);
    u64::from(tag) << 32 | tid
}

/// Whether the owner encoded in `word` is certainly gone.
pub(crate) fn owner_is_dead(word: u64) -> bool {
    let tid = (word & TID_MASK) as i32;
    let tag = (word >> 32) as u32;
    if tid == 0 {
        return false;
    }
    match crate::sys::procfs::task_stat(tid as u32) {
        Ok(stat) => stat.is_dead() || (tag != 0 && stat.start as u32 != tag),
        // Gone, or hidden from us (`hidepid`): ask the kernel whether the id exists at all.
        Err(_) => match rustix::process::Pid::from_raw(tid) {
            Some(pid) => rustix::process::test_kill_process(pid) == Err(Errno::SRCH),
            None => false,
        },
    }
}

/// The lock in a mapped segment's header.
///
/// Points into a mapping the owning `MappedInner` keeps alive for as long as this value
/// lives (both are dropped together, the lock first).
pub(crate) struct RobustLock {
    word: NonNull<AtomicU64>,
    state: NonNull<AtomicU32>,
    generation: NonNull<AtomicU64>,
}

// SAFETY: the pointers address atomics in a shared mapping that stays mapped while the value
// lives (see the type's doc); atomics may be used from any thread, and every access here is
// atomic. Checked at compile time in `tests::send_sync`.
unsafe impl Send for RobustLock {}
// SAFETY: as for `Send`: `&RobustLock` only performs atomic operations on the mapping.
unsafe impl Sync for RobustLock {}

impl fmt::Debug for RobustLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobustLock")
            .field("word", &self.word)
            .finish_non_exhaustive()
    }
}

impl RobustLock {
    /// # Safety
    ///
    /// `word`, `state` and `generation` must be aligned, point to writable shared memory
    /// that stays mapped for as long as the returned value lives, and be accessed by every
    /// process only atomically (the layout of `include/qshm.h`).
    pub(crate) unsafe fn new(word: *mut u64, state: *mut u32, generation: *mut u64) -> RobustLock {
        RobustLock {
            word: NonNull::new(word.cast()).expect("non-null lock word"),
            state: NonNull::new(state.cast()).expect("non-null state"),
            generation: NonNull::new(generation.cast()).expect("non-null generation"),
        }
    }

    fn word(&self) -> &AtomicU64 {
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

    /// The low 32 bits of the lock word, which the futex operates on.
    fn futex_word(&self) -> &AtomicU32 {
        let base = self.word.as_ptr().cast::<u8>();
        let offset = if cfg!(target_endian = "big") { 4 } else { 0 };
        // SAFETY: the low half of an aligned, mapped u64 is an aligned, mapped u32 that lives
        // as long as `self`. Rust code never accesses it through this reference: it is only
        // handed to the futex system call, which the kernel reads atomically; all Rust
        // accesses use the 64-bit atomic.
        unsafe { &*base.add(offset).cast::<AtomicU32>() }
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
        let deadline = super::deadline(wait);
        let word = self.word();
        let mut spins = 0;
        let mut slept = false;
        let mut nap = FIRST_NAP;
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
                if owner_is_dead(cur) && self.take_over(cur, me) {
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
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(ErrorKind::Timeout, op, String::new()));
                }
                timeout = timeout.min(left);
            }
            let ts = futex::Timespec {
                tv_sec: timeout.as_secs() as _,
                tv_nsec: timeout.subsec_nanos() as _,
            };
            let expected = (cur | WAITERS) as u32;
            // Shared (not PRIVATE): the waker may be another process.
            match futex::wait(
                self.futex_word(),
                futex::Flags::empty(),
                expected,
                Some(&ts),
            ) {
                Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => {}
                Err(Errno::TIMEDOUT) => {
                    nap = (nap * 2).min(LONGEST_NAP);
                    let now = word.load(Ordering::Relaxed);
                    if now & TID_MASK != 0
                        && now & !WAITERS != me
                        && owner_is_dead(now)
                        && self.take_over(now, me)
                    {
                        return Ok(self.acquired(true));
                    }
                }
                Err(e) => {
                    return Err(crate::sys::os_error(e.raw_os_error(), op, String::new())
                        .with_kind(ErrorKind::LockError)
                        .with_detail("futex wait failed"))
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
            futex::wake(self.futex_word(), futex::Flags::empty(), 1).map_err(|e| {
                crate::sys::os_error(e.raw_os_error(), Operation::Unlock, String::new())
                    .with_kind(ErrorKind::LockError)
                    .with_detail("futex wake failed")
            })?;
        }
        Ok(())
    }
}

impl SegmentLock for RobustLock {
    #[inline]
    fn lock(&self, wait: Wait, op: Operation) -> Result<bool> {
        let me = self_id();
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
        let me = self_id();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RobustLock>();
        send_sync::<ImmutableLock>();
    }

    #[test]
    fn identity_is_cached_and_per_thread() {
        let a = self_id();
        assert_eq!(a, self_id());
        assert_ne!(a & TID_MASK, 0);
        let b = std::thread::spawn(self_id).join().unwrap();
        assert_ne!(a & TID_MASK, b & TID_MASK);
        assert!(!owner_is_dead(a));
        // That thread has exited: its id is gone (or reused by a thread with another start).
        wait_until_gone(b);
        assert!(owner_is_dead(b));
    }

    /// Waits until the kernel no longer lists the thread of identity `id` (at most 5 s).
    /// A joined thread can outlive its join for a moment: under qemu-user the emulator
    /// wakes the joiner before its own thread has exited.
    fn wait_until_gone(id: u64) {
        let task = format!("/proc/self/task/{}", id & TID_MASK);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::path::Path::new(&task).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn lock_protocol_in_private_memory() {
        let mut word = 0u64;
        let mut state = 0u32;
        let mut generation = 0u64;
        // SAFETY: the three locals outlive `lock`, are aligned and are only accessed
        // through it.
        let lock = unsafe { RobustLock::new(&mut word, &mut state, &mut generation) };
        assert!(!lock.lock(Wait::Forever, Operation::Lock).unwrap());
        assert_eq!(
            lock.lock(Wait::Poll, Operation::Lock).unwrap_err().kind(),
            ErrorKind::LockError
        );
        lock.unlock().unwrap();
        assert!(lock.unlock().is_err());
        // Consistency is declared by a holder, and only matters after a death.
        assert!(!lock.lock(Wait::Forever, Operation::Lock).unwrap());
        lock.mark_consistent();
        lock.unlock().unwrap();
        assert_eq!(lock.generation(), 0);
    }

    /// Taking over from a dead owner needs the real operating system (`/proc`, thread
    /// ids): not under Miri, whose thread ids are its own.
    #[test]
    #[cfg_attr(miri, ignore = "thread liveness is read from /proc")]
    fn dead_owner_in_private_memory() {
        let mut word = 0u64;
        let mut state = 0u32;
        let mut generation = 0u64;
        // SAFETY: the three locals outlive `lock`, are aligned and are only accessed
        // through it.
        let lock = unsafe { RobustLock::new(&mut word, &mut state, &mut generation) };
        // A dead owner: a thread that has exited.
        let dead = std::thread::spawn(self_id).join().unwrap();
        wait_until_gone(dead);
        lock.word().store(dead, Ordering::Relaxed);
        assert!(lock.lock(Wait::Poll, Operation::Lock).unwrap());
        assert_eq!(lock.generation(), 1);
        lock.unlock().unwrap();
        assert!(lock.lock(Wait::Forever, Operation::Lock).unwrap());
        lock.mark_consistent();
        lock.unlock().unwrap();
        assert!(!lock.lock(Wait::Forever, Operation::Lock).unwrap());
        lock.unlock().unwrap();
    }
}
