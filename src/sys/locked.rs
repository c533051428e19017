//! The holder of a segment's lock, and the only place shared memory becomes a Rust slice.
//!
//! A slice of shared memory is sound only while nobody else writes the bytes. Other
//! processes are kept out by the cross-process lock (a [`SegmentLock`]: the segment's
//! semaphore, or a lock inside the segment); other threads of this process are kept out by
//! the same lock *and*, for locks anyone can release (counting semaphores), by
//! [`InProcessLock`], which refuses a second [`Locked`] for the same object even if some
//! process released the lock without holding it. Locks that only their owning thread can
//! release need no such help ([`LockRef::Mapped`]). What remains assumed,
//! and is documented on the public guard: every process that writes the segment takes the
//! lock first.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::backend::{RawSegment, RawSemaphore, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::NativeKey;

use super::Semaphore;

/// A mapping of shared memory that slices may be made of.
///
/// # Safety
///
/// Implementors guarantee that `ptr()..ptr()+len()` is mapped, initialised memory for as long
/// as the implementing value lives (a shared borrow of it keeps it mapped), and that it is
/// mapped writable when `writable()` is true. Only `sys` implements this trait.
pub(crate) unsafe trait Mapping: Sync {
    /// The first byte.
    fn ptr(&self) -> *mut u8;
    /// The number of bytes.
    fn len(&self) -> usize;
    /// Whether the mapping allows writes.
    fn writable(&self) -> bool;
    /// Called before the lock is taken: a mapping whose lock lives in its own backing object
    /// (a mapped segment's header), which may have shrunk (a plain file a peer can
    /// truncate), checks that here, since taking the lock touches it.
    fn check_before_lock(&self) -> Result<()> {
        Ok(())
    }
    /// Called with the lock held, before any slice is made: a mapping whose backing object
    /// may have shrunk checks that here (ordered after the previous holder's unlock: a peer
    /// that shrank it under the lock is seen).
    fn check_locked(&self) -> Result<()> {
        Ok(())
    }
}

// SAFETY: `RawSegment`'s safety contract is exactly `Mapping`'s.
unsafe impl<S: RawSegment> Mapping for S {
    fn ptr(&self) -> *mut u8 {
        RawSegment::ptr(self)
    }
    fn len(&self) -> usize {
        RawSegment::len(self)
    }
    fn writable(&self) -> bool {
        RawSegment::writable(self)
    }
}

/// Copies `buf.len()` bytes at `offset` of `mapping` into `buf`.
///
/// The caller holds the lock that every writer of the mapping takes, and has checked that
/// `offset + buf.len()` is within it (checked again here: a violation panics rather than
/// reading out of bounds).
pub(crate) fn copy_out<M: Mapping>(mapping: &M, offset: usize, buf: &mut [u8]) {
    assert!(offset
        .checked_add(buf.len())
        .is_some_and(|end| end <= mapping.len()));
    // SAFETY: `offset..offset+buf.len()` lies in the mapping (asserted; `Mapping`
    // guarantees `ptr..ptr+len` is mapped and initialised), `buf` is a distinct Rust buffer,
    // and the caller holds the lock, so no one writes the bytes meanwhile.
    unsafe {
        std::ptr::copy_nonoverlapping(mapping.ptr().add(offset), buf.as_mut_ptr(), buf.len());
    }
}

/// Copies `buf.len()` bytes at `offset` of `mapping` into `buf` **without** the lock: for
/// rescuing data from a segment whose lock is stuck. Another process may write the bytes
/// meanwhile, so the copy may be torn; it is made byte by byte with volatile reads into a
/// buffer of our own, and no reference to the shared bytes is ever made. The caller has
/// checked `offset + buf.len()` (checked again here: a violation panics).
pub(crate) fn copy_out_unlocked<M: Mapping>(mapping: &M, offset: usize, buf: &mut [u8]) {
    assert!(offset
        .checked_add(buf.len())
        .is_some_and(|end| end <= mapping.len()));
    let base = mapping.ptr();
    for (i, byte) in buf.iter_mut().enumerate() {
        // SAFETY: `offset + i` lies in the mapping (asserted above; `Mapping` guarantees
        // `ptr..ptr+len` is mapped and initialised while `mapping` is borrowed). The read is
        // volatile and of one `u8`, which has no invalid values: a concurrent write by
        // another process can change what is read, never make it an invalid value, and no
        // Rust reference to the shared byte exists.
        *byte = unsafe { base.add(offset + i).read_volatile() };
    }
}

/// A cross-process lock that lives in a mapped segment (the in-segment robust lock, or the
/// no-op lock of a write-sealed segment).
#[cfg(any(qshm_mapped_unix, qshm_windows))]
pub(crate) trait SegmentLock: Sync {
    /// Takes the lock, waiting as `wait` says. Returns whether the previous holder died
    /// holding it (as far as this kind of lock can tell).
    fn lock(&self, wait: Wait, op: Operation) -> Result<bool>;
    /// Releases the lock.
    fn unlock(&self) -> Result<()>;
    /// After an owner died: declares the protected data consistent again.
    fn mark_consistent(&self) {}
}

/// The lock a [`Locked`] holds: a small `Copy` enum rather than a trait object, so that the
/// uncontended lock and unlock of each kind inline into the caller.
#[derive(Clone, Copy)]
pub(crate) enum LockRef<'a> {
    /// The segment lock of Qt's `QSharedMemory`: a counting semaphore, taken and given back
    /// with `SEM_UNDO` (System V) or with qshm's owner record (POSIX), so that a holder that
    /// dies gives it back. Anyone can release a counting semaphore, so one released by a
    /// process that did not hold it could admit two threads of this process at once: the
    /// key's [`InProcessLock`] keeps them apart.
    Semaphore(&'a Semaphore, &'a InProcessLock),
    /// A lock in a mapped segment: owned by a thread, which alone can release it, so threads
    /// are kept apart already.
    #[cfg(any(qshm_mapped_unix, qshm_windows))]
    Mapped(&'a super::imp::mapped::LockKind),
}

impl LockRef<'_> {
    #[inline]
    fn lock(self, wait: Wait, label: &dyn fmt::Display) -> Result<bool> {
        match self {
            LockRef::Semaphore(sem, inproc) => {
                let me = thread_token();
                if inproc.holder.load(Ordering::Relaxed) == me {
                    return Err(already_locked(label));
                }
                let owner_died = sem
                    .acquire(wait, Undo::Yes, Operation::Lock)
                    .map_err(as_lock_error)?;
                if let Err(held) =
                    inproc
                        .holder
                        .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
                {
                    inproc.take_over_from_parent(held, me, sem, label)?;
                }
                Ok(owner_died)
            }
            #[cfg(any(qshm_mapped_unix, qshm_windows))]
            LockRef::Mapped(lock) => lock.lock(wait, Operation::Lock).map_err(as_lock_error),
        }
    }

    #[inline(always)] // so that the match folds away where the kind of lock is known
    fn unlock(self) -> Result<()> {
        match self {
            LockRef::Semaphore(sem, inproc) => {
                // A guard copied into a forked child: the parent holds the lock, and the
                // child must not give it back (its copy of the semaphore's undo is empty).
                if inproc.holder.load(Ordering::Relaxed) != thread_token() {
                    return Err(forked_copy());
                }
                // Clear the in-process holder first: the moment the lock is released another
                // thread may take it, and it must not find the holder still set.
                inproc.holder.store(0, Ordering::Release);
                sem.release(1, Undo::Yes, Operation::Unlock)
            }
            #[cfg(any(qshm_mapped_unix, qshm_windows))]
            LockRef::Mapped(lock) => lock.unlock(),
        }
    }

    fn mark_consistent(self) {
        match self {
            LockRef::Semaphore(sem, _) => RawSemaphore::mark_consistent(sem),
            #[cfg(any(qshm_mapped_unix, qshm_windows))]
            LockRef::Mapped(lock) => lock.mark_consistent(),
        }
    }
}

#[cold]
fn as_lock_error(e: Error) -> Error {
    if e.kind() == ErrorKind::Unknown {
        e.with_kind(ErrorKind::LockError)
    } else {
        e
    }
}

#[cold]
fn already_locked(label: &dyn fmt::Display) -> Error {
    Error::new(ErrorKind::LockError, Operation::Lock, label.to_string())
        .with_detail("already locked by this thread (a second lock would deadlock)")
}

#[cold]
fn forked_copy() -> Error {
    Error::new(ErrorKind::LockError, Operation::Unlock, String::new())
        .with_detail("a guard copied by fork: the lock is the parent's, and stays held")
}

#[cold]
fn released_by_stranger(label: &dyn fmt::Display) -> Error {
    Error::new(ErrorKind::LockError, Operation::Lock, label.to_string()).with_detail(
        "the lock was released by a process that did not hold it; \
         refusing to lend the memory to two holders",
    )
}

/// The in-process half of a counting-semaphore lock: which thread of this process holds it
/// (0: none; see [`thread_token`]), and since which `fork` generation. One per key in the process ([`InProcessLock::of`]), shared by every object for
/// that key: the lock belongs to the process, not to an object.
#[derive(Debug, Default)]
pub(crate) struct InProcessLock {
    holder: AtomicU64,
}

impl InProcessLock {
    /// The in-process half of `key`'s lock, shared by every object of this process for the
    /// key while one lives: a thread that locks the key through a second object while it
    /// holds it through a first gets `LockError` instead of waiting on itself for ever.
    pub(crate) fn of(key: &NativeKey) -> Arc<InProcessLock> {
        super::fork::watch();
        /// Every key's, weakly held; pruned of the dead ones whenever it has doubled.
        struct Registry {
            locks: HashMap<NativeKey, Weak<InProcessLock>>,
            prune_at: usize,
        }
        static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
        let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        let registry = registry.get_or_insert_with(|| Registry {
            locks: HashMap::new(),
            prune_at: 64,
        });
        if let Some(lock) = registry.locks.get(key).and_then(Weak::upgrade) {
            return lock;
        }
        if registry.locks.len() >= registry.prune_at {
            registry.locks.retain(|_, lock| lock.strong_count() > 0);
            registry.prune_at = (registry.locks.len() * 2).max(64);
        }
        let lock = Arc::new(InProcessLock::default());
        registry.locks.insert(key.clone(), Arc::downgrade(&lock));
        lock
    }

    /// Whether the calling thread holds the lock (through any object of this process).
    pub(crate) fn held_here(&self) -> bool {
        self.holder.load(Ordering::Relaxed) == thread_token()
    }

    /// After `acquire` found `held` instead of 0: a holder of an earlier `fork` generation
    /// was the parent's (this process never held the lock, the semaphore says it is ours
    /// now), and `me` replaces it; any other means someone released the lock without
    /// holding it, and it is given back.
    #[cold]
    fn take_over_from_parent(
        &self,
        held: u64,
        me: u64,
        sem: &Semaphore,
        label: &dyn fmt::Display,
    ) -> Result<()> {
        if held >> GENERATION_SHIFT != me >> GENERATION_SHIFT
            && self
                .holder
                .compare_exchange(held, me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Ok(());
        }
        let _ = sem.release(1, Undo::Yes, Operation::Unlock);
        Err(released_by_stranger(label))
    }
}

/// Where the `fork` generation sits in a [`thread_token`]: above any user-space address
/// (48 bits on every 64-bit Linux, 32 on 32-bit targets).
const GENERATION_SHIFT: u32 = 48;

/// A number unique to the calling thread among the threads alive now, never 0: the address
/// of a thread-local, with the process's `fork` generation above it, so that a forked
/// child's copy of the forking thread (same address) is another thread.
#[inline]
fn thread_token() -> u64 {
    thread_local!(static TOKEN: u8 = const { 0 });
    let address = TOKEN.with(|t| t as *const u8 as usize) as u64;
    address | u64::from(super::fork::generation()) << GENERATION_SHIFT
}

/// Proof that this thread holds a segment's lock, with access to the segment's bytes.
///
/// Not `Send` and not `Sync` (it holds a raw pointer): the lock is released by the thread
/// that took it, and the bytes are lent only through borrows of it.
pub(crate) struct Locked<'a> {
    lock: LockRef<'a>,
    ptr: *mut u8,
    len: usize,
    writable: bool,
    owner_died: bool,
}

impl<'a> Locked<'a> {
    /// Takes `lock`, the cross-process lock of `mapping`.
    ///
    /// `lock` must be the lock that every user of the memory behind `mapping` takes, and the
    /// in-process half of a semaphore lock must belong to the object that owns both; the
    /// caller keeps them together.
    ///
    /// Inlined, with every failure in a cold function, so that the uncontended path of each
    /// lock is a few instructions in the caller.
    #[inline]
    pub(crate) fn acquire<M: Mapping>(
        lock: LockRef<'a>,
        mapping: &'a M,
        wait: Wait,
        label: &dyn fmt::Display,
    ) -> Result<Locked<'a>> {
        mapping.check_before_lock()?;
        let owner_died = lock.lock(wait, label)?;
        let locked = Locked {
            lock,
            ptr: mapping.ptr(),
            len: mapping.len(),
            writable: mapping.writable(),
            owner_died,
        };
        // On failure `locked` drops here and unlocks.
        mapping.check_locked()?;
        Ok(locked)
    }

    /// Whether the previous holder died holding the lock.
    #[inline]
    pub(crate) fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Declares the data consistent after an owner died.
    pub(crate) fn mark_consistent(&mut self) {
        self.lock.mark_consistent();
        self.owner_died = false;
    }

    /// The segment's bytes, for as long as this borrow of the lock lasts.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr..ptr+len` comes from a `Mapping` borrowed for 'a, which guarantees it
        // stays mapped and initialised while borrowed, and `self` cannot outlive 'a. This
        // thread holds the memory's cross-process lock and the only `Locked` of this object,
        // so no cooperating thread or process writes the bytes while the returned borrow of
        // `self` lasts; the only `&mut` to them comes from `bytes_mut`, which needs
        // `&mut self` and so cannot overlap this borrow.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The segment's bytes, writable; `None` on a read-only mapping.
    #[inline]
    pub(crate) fn bytes_mut(&mut self) -> Option<&mut [u8]> {
        if !self.writable {
            return None;
        }
        if self.len == 0 {
            return Some(&mut []);
        }
        // SAFETY: as in `bytes`; in addition the `Mapping` said it is writable, and
        // `&mut self` makes this the only reference into the bytes from this process for the
        // borrow's duration.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) })
    }

    /// Releases the lock, reporting failure.
    #[inline]
    pub(crate) fn release(self) -> Result<()> {
        let this = std::mem::ManuallyDrop::new(self);
        this.lock.unlock()
    }
}

impl Drop for Locked<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // Errors are ignored: the only way to report them from drop would be a panic.
        let _ = self.lock.unlock();
    }
}

impl fmt::Debug for Locked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Locked")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("writable", &self.writable)
            .field("owner_died", &self.owner_died)
            .finish()
    }
}
