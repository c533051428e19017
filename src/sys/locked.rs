//! The holder of a segment's lock, and the only place shared memory becomes a Rust slice.
//!
//! A slice of shared memory is sound only while nobody else writes the bytes. Other
//! processes are kept out by the cross-process lock (a [`SegmentLock`]: the segment's
//! semaphore, or a lock inside the segment); other threads of this process are kept out by
//! the same lock *and*, for locks anyone can release (counting semaphores), by
//! [`InProcessLock`], which refuses a second [`Locked`] for the same object even if some
//! process released the lock without holding it. Locks that only their owning thread can
//! release need no such help (`SegmentLock::needs_in_process_exclusion`). What remains assumed,
//! and is documented on the public guard: every process that writes the segment takes the
//! lock first.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::backend::{RawSemaphore, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};

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
    /// Called with the lock held, before any slice is made: a mapping whose backing object
    /// may have shrunk (a plain file a peer can truncate) checks that here.
    fn check_locked(&self) -> Result<()> {
        Ok(())
    }
}

/// A cross-process lock that guards a mapping.
pub(crate) trait SegmentLock: Sync {
    /// Takes the lock, waiting as `wait` says. Returns whether the previous holder died
    /// holding it (as far as this kind of lock can tell).
    fn lock(&self, wait: Wait, op: Operation) -> Result<bool>;
    /// Releases the lock.
    fn unlock(&self) -> Result<()>;
    /// After an owner died: declares the protected data consistent again.
    fn mark_consistent(&self) {}
    /// Whether [`Locked`] must keep threads of this process apart itself. A counting
    /// semaphore can be released by anyone, so one released by someone who did not hold it
    /// could admit two threads of this process at once: yes. A lock owned by a thread (only
    /// the owner can release it) or one that never lends writable bytes: no, and the
    /// uncontended path then costs nothing more than the lock itself.
    fn needs_in_process_exclusion(&self) -> bool {
        true
    }
}

/// The segment lock of Qt's `QSharedMemory`: the semaphore, taken and given back with
/// `SEM_UNDO` so that a holder that dies gives it back.
impl SegmentLock for Semaphore {
    fn lock(&self, wait: Wait, op: Operation) -> Result<bool> {
        self.acquire(wait, Undo::Yes, op)
    }

    fn unlock(&self) -> Result<()> {
        self.release(1, Undo::Yes, Operation::Unlock)
    }

    fn mark_consistent(&self) {
        RawSemaphore::mark_consistent(self);
    }
}

/// The in-process half of a segment lock: whether a [`Locked`] exists for this object, and
/// which thread made it.
#[derive(Debug, Default)]
pub(crate) struct InProcessLock {
    held: AtomicBool,
    holder: AtomicUsize,
}

/// A number unique to the calling thread among the threads alive now.
fn thread_token() -> usize {
    thread_local!(static TOKEN: u8 = const { 0 });
    TOKEN.with(|t| t as *const u8 as usize)
}

/// Proof that this thread holds a segment's lock, with access to the segment's bytes.
///
/// Not `Send` and not `Sync` (it holds a raw pointer): the lock is released by the thread
/// that took it, and the bytes are lent only through borrows of it.
pub(crate) struct Locked<'a> {
    lock: &'a dyn SegmentLock,
    /// `None` for locks that keep threads apart themselves.
    inproc: Option<&'a InProcessLock>,
    ptr: *mut u8,
    len: usize,
    writable: bool,
    owner_died: bool,
    released: bool,
}

impl<'a> Locked<'a> {
    /// Takes `lock`, the cross-process lock of `mapping`.
    ///
    /// `lock` must be the lock that every user of the memory behind `mapping` takes, and
    /// `inproc` must belong to the object that owns both; the caller keeps them together.
    ///
    /// Generic, so that the uncontended path of each lock is inlined here; the guard keeps
    /// the lock as a trait object, so that every backend shares one guard type.
    #[inline]
    pub(crate) fn acquire<L: SegmentLock, M: Mapping>(
        lock: &'a L,
        mapping: &'a M,
        inproc: &'a InProcessLock,
        wait: Wait,
        label: &dyn fmt::Display,
    ) -> Result<Locked<'a>> {
        let inproc = lock.needs_in_process_exclusion().then_some(inproc);
        let me = inproc.map_or(0, |_| thread_token());
        if let Some(inproc) = inproc {
            let mine = inproc.holder.load(Ordering::Relaxed) == me;
            if inproc.held.load(Ordering::Acquire) && mine {
                return Err(
                    Error::new(ErrorKind::LockError, Operation::Lock, label.to_string())
                        .with_detail(
                            "already locked by this thread (a second lock would deadlock)",
                        ),
                );
            }
        }
        let owner_died = lock.lock(wait, Operation::Lock).map_err(|e| {
            if e.kind() == ErrorKind::Unknown {
                e.with_kind(ErrorKind::LockError)
            } else {
                e
            }
        })?;
        if let Some(inproc) = inproc {
            if inproc.held.swap(true, Ordering::Acquire) {
                let _ = lock.unlock();
                return Err(
                    Error::new(ErrorKind::LockError, Operation::Lock, label.to_string())
                        .with_detail(
                            "the lock was released by a process that did not hold it; \
                         refusing to lend the memory to two holders",
                        ),
                );
            }
            inproc.holder.store(me, Ordering::Relaxed);
        }
        let locked = Locked {
            lock,
            inproc,
            ptr: mapping.ptr(),
            len: mapping.len(),
            writable: mapping.writable(),
            owner_died,
            released: false,
        };
        // On failure `locked` drops here and unlocks.
        mapping.check_locked()?;
        Ok(locked)
    }

    /// Whether the previous holder died holding the lock.
    pub(crate) fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Declares the data consistent after an owner died.
    pub(crate) fn mark_consistent(&mut self) {
        self.lock.mark_consistent();
        self.owner_died = false;
    }

    /// The segment's bytes, for as long as this borrow of the lock lasts.
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
    pub(crate) fn release(mut self) -> Result<()> {
        self.released = true;
        self.unlock()
    }

    fn unlock(&self) -> Result<()> {
        // Clear the in-process flag first: the moment the lock is released another thread
        // may take it, and it must not find the flag still set.
        if let Some(inproc) = self.inproc {
            inproc.holder.store(0, Ordering::Relaxed);
            inproc.held.store(false, Ordering::Release);
        }
        self.lock.unlock()
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        if !self.released {
            // Errors are ignored: the only way to report them from drop would be a panic.
            let _ = self.unlock();
        }
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
