//! The lock inside a mapped segment's header: a process-shared, robust mutex on one 64-bit
//! word, with a futex to sleep on. The protocol is the one `include/qshm.h` implements in C
//! (`qshm_lock`, `qshm_unlock`), and both must stay identical: a C or Qt program that maps the
//! same file takes the same lock.
//!
//! The portable protocol and the lock word's layout are in `sys/word_lock.rs`; this file is
//! Linux's half ([`Owners`]): a thread names itself by its TID and its process's liveness
//! slot, sleeps on a futex on the low 32 bits of the word (shared, not private: the waker
//! may be another process), and judges owners as follows.
//!
//! # Liveness
//!
//! A qshm process takes, in each fork generation, a random *slot* (`liveness.rs`): every
//! handle locks the slot's byte of the segment file (`F_OFD_SETLK`, a read lock) through a
//! description of its own, before its first lock. Its identity is `TOKEN | slot << 32 |
//! tid`, written by the same compare-and-swap that takes the lock, so there is no moment at
//! which it holds the lock unnamed. A waiter asks the kernel whether the slot is still
//! locked (`F_OFD_GETLK`, through its own description): the kernel drops the lock when the
//! owner's last descriptor closes, in any PID or time namespace, under `hidepid`, under
//! qemu-user. Not locked: dead. Locked, or no answer: alive.
//!
//! Owners without a token are C programs (`qshm.h`) and a qshm handle that could not make a
//! description of its own (a received or inherited descriptor and no `/proc` to reopen it):
//! their thread id and start-time tag are checked in `/proc` (a zombie or a different start
//! time is dead; when `/proc` hides the task, `kill(tid, 0)` decides), and only by a waiter
//! in the PID namespace the header records for the segment's creator (the time namespace
//! too for the tag): anywhere else they are taken for alive.
//!
//! # What remains
//!
//! * A token belongs to a process: a thread that exits holding the lock (a guard leaked with
//!   `mem::forget`) is recovered only when its process dies or closes the segment.
//! * A process that forks shares its descriptions with the child: a holder that dies while a
//!   forked child still has the segment open is taken for alive until the child closes it
//!   or dies (a wait, never two holders). The child takes its own slot and identity.
//! * Tag owners (C programs) are recognised only in the creator's PID namespace; a thread id
//!   reused within the same clock tick (10 ms) as its dead owner would be taken for it.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man2/futex.2.html>
//! * <https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html> (fields 3 and 22)

use std::cell::Cell;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

use super::liveness::{lock_slot, random_slots, slot_locked, SLOTS};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::procfs::read_stat;
use crate::sys::word_lock::{Owners, WordLock, TID_MASK, TOKEN};

/// A tag: the low 31 bits of a start time (bit 63 stays clear).
const TAG_MASK: u64 = 0x7fff_ffff;

thread_local! {
    /// (fork generation, tag-based lock-word identity) of this thread.
    static IDENTITY: Cell<(u32, u64)> = const { Cell::new((0, 0)) };
}

/// This thread's tag identity: `tag << 32 | tid`. Cached: no system call unless this
/// thread has never asked or the process has forked since.
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
    let tag = read_stat("/proc/thread-self/stat").map_or(0, |s| s.start & TAG_MASK);
    tag << 32 | tid
}

/// This process's slot in the current fork generation (random, taken once per generation;
/// see the module docs), as the high half of a lock word: `TOKEN >> 32 | slot`.
fn process_token() -> u32 {
    static TOKEN_OF_GENERATION: AtomicU64 = AtomicU64::new(0);
    let generation = crate::sys::fork::generation();
    let cached = TOKEN_OF_GENERATION.load(Ordering::Relaxed);
    if (cached >> 32) as u32 == generation {
        return cached as u32;
    }
    crate::sys::fork::watch();
    let token = (TOKEN >> 32) as u32 | random_slots().next().unwrap_or(1);
    // Two threads of a new generation may race: the first one's token stands.
    match TOKEN_OF_GENERATION.compare_exchange(
        cached,
        u64::from(generation) << 32 | u64::from(token),
        Ordering::Relaxed,
        Ordering::Relaxed,
    ) {
        Ok(_) => token,
        Err(now) if (now >> 32) as u32 == generation => now as u32,
        Err(_) => process_token(),
    }
}

/// Whether the tag owner in `word` is certainly gone, judged from `/proc` of the caller's
/// PID namespace (which must be the owner's); its start time is compared only when
/// `compare_start` (same time namespace).
pub(crate) fn tag_owner_is_dead(word: u64, compare_start: bool) -> bool {
    let tid = (word & TID_MASK) as i32;
    let tag = (word >> 32) & TAG_MASK;
    if tid == 0 {
        return false;
    }
    match crate::sys::procfs::task_stat(tid as u32) {
        Ok(stat) => stat.is_dead() || (compare_start && tag != 0 && stat.start & TAG_MASK != tag),
        // Gone, or hidden from us (`hidepid`): ask the kernel whether the id exists at all.
        Err(_) => match rustix::process::Pid::from_raw(tid) {
            Some(pid) => rustix::process::test_kill_process(pid) == Err(Errno::SRCH),
            None => false,
        },
    }
}

/// What a handle needs to name itself and to judge an owner: the segment's descriptor, a
/// description of its own in the current fork generation, and the namespaces.
pub(crate) struct Liveness {
    /// The segment's descriptor; the segment closes it only after dropping the lock. -1:
    /// none (then every owner token is taken for alive).
    fd: RawFd,
    /// Whether `fd`'s description was opened by this process in fork generation `made`
    /// (so no other process shares it).
    private: bool,
    made: u32,
    /// The header's creator namespaces compared with ours: whether tag owners can be
    /// judged here, and their start times compared.
    same_pid_ns: bool,
    same_time_ns: bool,
    /// `generation << 32 | fd` of a description reopened through `/proc/self/fd` (when `fd`
    /// is not private in the current generation); 0: none yet. Owned: closed on drop.
    reopened: AtomicU64,
    /// `generation << 32 | high half of this handle's identity` once this handle has locked
    /// its slot in that generation (high half 0: no slot, the tag identity); 0: not yet.
    prepared: AtomicU64,
}

/// The namespaces a segment's header records for its creator, and whether they are ours.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SameNamespaces {
    /// Same PID namespace, both known.
    pub(crate) pid: bool,
    /// Same time namespace, both known.
    pub(crate) time: bool,
}

impl Liveness {
    /// # Safety
    ///
    /// `fd` (unless -1) must stay open for as long as the returned value is used (the
    /// segment closes or replaces it only when it is closed, after its last lock).
    pub(crate) unsafe fn new(fd: RawFd, private: bool, ns: SameNamespaces) -> Liveness {
        crate::sys::fork::watch();
        Liveness {
            fd,
            private: private && fd >= 0,
            made: crate::sys::fork::generation(),
            same_pid_ns: ns.pid,
            same_time_ns: ns.time,
            reopened: AtomicU64::new(0),
            prepared: AtomicU64::new(0),
        }
    }

    fn segment_fd(&self) -> Option<BorrowedFd<'_>> {
        // SAFETY: `fd` stays open while `self` lives (the contract of `new`).
        (self.fd >= 0).then(|| unsafe { BorrowedFd::borrow_raw(self.fd) })
    }

    /// A description of the segment file no other process shares, in fork generation
    /// `generation` (the current one): the segment's own if it is, else one reopened
    /// through `/proc/self/fd` (once per generation). `None` without one.
    fn own_description(&self, generation: u32) -> Option<BorrowedFd<'_>> {
        let fd = self.segment_fd()?;
        if self.private && generation == self.made {
            return Some(fd);
        }
        let current = self.reopened.load(Ordering::Acquire);
        if (current >> 32) as u32 != generation {
            let new = super::liveness::reopen(&fd, false)?;
            let value = u64::from(generation) << 32 | new.as_raw_fd() as u32 as u64;
            match self.reopened.compare_exchange(
                current,
                value,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(old) => {
                    std::mem::forget(new);
                    if old != 0 {
                        // SAFETY: a descriptor this value reopened in an older generation
                        // (a copy inherited over fork, which this process owns); no thread
                        // of this process uses it any more, since all are in the new
                        // generation.
                        drop(unsafe { OwnedFd::from_raw_fd(old as u32 as RawFd) });
                    }
                }
                Err(_) => drop(new), // another thread reopened first
            }
        }
        let now = self.reopened.load(Ordering::Acquire);
        // SAFETY: a descriptor this value owns, closed only on drop or when replaced in a
        // later generation (which cannot start while this thread is in this one).
        ((now >> 32) as u32 == generation)
            .then(|| unsafe { BorrowedFd::borrow_raw(now as u32 as RawFd) })
    }

    /// The high half of this handle's identity in the current generation: the token after
    /// locking its slot, or 0 for the tag identity.
    #[inline]
    fn high(&self) -> Result<u32> {
        let generation = crate::sys::fork::generation();
        let prepared = self.prepared.load(Ordering::Relaxed);
        if (prepared >> 32) as u32 == generation {
            Ok(prepared as u32)
        } else {
            self.prepare(generation)
        }
    }

    #[cold]
    fn prepare(&self, generation: u32) -> Result<u32> {
        let token = process_token();
        let slot = token & (SLOTS - 1);
        let high = match self.own_description(generation) {
            Some(fd) if lock_slot(&fd, slot, false).is_ok() => token,
            _ => 0,
        };
        if high == 0 && !self.same_pid_ns && self.fd >= 0 {
            return Err(
                Error::new(ErrorKind::Unsupported, Operation::Lock, String::new()).with_detail(
                    "this process cannot take a liveness slot (the descriptor was received \
                     or inherited and /proc is not there to reopen it), and it does not \
                     share the PID namespace of the segment's creator: its thread id would \
                     mean nothing to the other users",
                ),
            );
        }
        self.prepared.store(
            u64::from(generation) << 32 | u64::from(high),
            Ordering::Relaxed,
        );
        Ok(high)
    }

    /// Whether the owner in `word` is certainly gone (module docs, "Liveness").
    fn owner_is_dead(&self, word: u64) -> bool {
        if word & TID_MASK == 0 {
            return false;
        }
        if word & TOKEN == 0 {
            return self.same_pid_ns && tag_owner_is_dead(word, self.same_time_ns);
        }
        let token = (word >> 32) as u32;
        if token == process_token() {
            return false; // a thread of this process
        }
        let generation = crate::sys::fork::generation();
        self.own_description(generation)
            .is_some_and(|fd| slot_locked(&fd, token & (SLOTS - 1)) == Some(false))
    }
}

impl Drop for Liveness {
    fn drop(&mut self) {
        let reopened = *self.reopened.get_mut();
        if reopened != 0 {
            // SAFETY: a descriptor this value reopened and owns; nothing uses it any more.
            drop(unsafe { OwnedFd::from_raw_fd(reopened as u32 as RawFd) });
        }
    }
}

/// The lock in a mapped segment's header, with Linux's half.
pub(crate) type RobustLock = WordLock<Liveness>;

impl Owners for Liveness {
    /// `TOKEN | slot << 32 | tid` through this handle, or the tag identity without a slot.
    #[inline]
    fn me(&self) -> Result<u64> {
        let high = self.high()?;
        let id = self_id();
        Ok(if high == 0 {
            id
        } else {
            u64::from(high) << 32 | id & TID_MASK
        })
    }

    fn owner_is_dead(&self, word: u64) -> bool {
        Liveness::owner_is_dead(self, word)
    }

    fn sleep(&self, word: &AtomicU64, expected: u64, timeout: Duration) -> Result<bool> {
        let ts = futex::Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        // Shared (not PRIVATE): the waker may be another process.
        match futex::wait(
            crate::sys::word_lock::low_half(word),
            futex::Flags::empty(),
            expected as u32,
            Some(&ts),
        ) {
            Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(false),
            Err(Errno::TIMEDOUT) => Ok(true),
            Err(e) => Err(futex_error(e, "futex wait failed")),
        }
    }

    fn wake_one(&self, word: &AtomicU64) -> Result<()> {
        futex::wake(
            crate::sys::word_lock::low_half(word),
            futex::Flags::empty(),
            1,
        )
        .map(drop)
        .map_err(|e| futex_error(e, "futex wake failed"))
    }
}

#[cold]
fn futex_error(e: Errno, detail: &'static str) -> Error {
    crate::sys::os_error(e.raw_os_error(), Operation::Lock, String::new())
        .with_kind(ErrorKind::LockError)
        .with_detail(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Wait;
    use crate::sys::SegmentLock;

    /// Private memory has no file: owners are judged by their tags, as in the creator's
    /// namespaces.
    fn no_file() -> Liveness {
        let same = SameNamespaces {
            pid: true,
            time: true,
        };
        // SAFETY: no descriptor.
        unsafe { Liveness::new(-1, false, same) }
    }

    #[test]
    fn send_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RobustLock>();
        send_sync::<Liveness>();
    }

    #[test]
    fn identity_is_cached_and_per_thread() {
        let a = self_id();
        assert_eq!(a, self_id());
        assert_ne!(a & TID_MASK, 0);
        let b = std::thread::spawn(self_id).join().unwrap();
        assert_ne!(a & TID_MASK, b & TID_MASK);
        assert!(!tag_owner_is_dead(a, true));
        // That thread has exited: its id is gone (or reused by a thread with another start).
        wait_until_gone(b);
        assert!(tag_owner_is_dead(b, true));
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
        let lock = unsafe { RobustLock::new(&mut word, &mut state, &mut generation, no_file()) };
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
        let lock = unsafe { RobustLock::new(&mut word, &mut state, &mut generation, no_file()) };
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
