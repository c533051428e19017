//! The holder of a segment's lock, and the only place shared memory becomes a Rust slice.
//!
//! A slice of shared memory is sound only while nobody else writes the bytes. Other
//! processes are kept out by the cross-process lock (the segment's semaphore); other threads
//! of this process are kept out by the same semaphore *and* by [`InProcessLock`], which
//! refuses a second [`Locked`] for the same object even if some process released the
//! semaphore without holding it. What remains assumed, and is documented on the public guard:
//! every process that writes the segment takes the lock first.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::backend::{RawSegment, RawSemaphore, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::NativeKey;

use super::{Segment, Semaphore};

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
    TOKEN.with(|t| std::ptr::from_ref(t) as usize)
}

/// Proof that this thread holds a segment's lock, with access to the segment's bytes.
///
/// Not `Send` and not `Sync` (it holds a raw pointer): the lock is released by the thread
/// that took it, and the bytes are lent only through borrows of it.
#[derive(Debug)]
pub(crate) struct Locked<'a> {
    sem: &'a Semaphore,
    inproc: &'a InProcessLock,
    ptr: *mut u8,
    len: usize,
    writable: bool,
    released: bool,
}

impl<'a> Locked<'a> {
    /// Takes the lock `sem` of the mapping `seg`.
    ///
    /// `sem` must be the lock of the segment `seg` is a mapping of, and `inproc` must belong
    /// to the object that owns both; the caller (`SharedMemory`) keeps them together.
    pub(crate) fn acquire(
        sem: &'a Semaphore,
        seg: &'a Segment,
        writable: bool,
        inproc: &'a InProcessLock,
        wait: Wait,
        key: &NativeKey,
    ) -> Result<Locked<'a>> {
        let me = thread_token();
        if inproc.held.load(Ordering::Acquire) && inproc.holder.load(Ordering::Relaxed) == me {
            return Err(
                Error::new(ErrorKind::LockError, Operation::Lock, key.to_string())
                    .with_detail("already locked by this thread (a second lock would deadlock)"),
            );
        }
        sem.acquire(wait, Undo::Yes, Operation::Lock).map_err(|e| {
            if e.kind() == ErrorKind::Unknown {
                e.with_kind(ErrorKind::LockError)
            } else {
                e
            }
        })?;
        if inproc.held.swap(true, Ordering::Acquire) {
            let _ = sem.release(1, Undo::Yes, Operation::Unlock);
            return Err(
                Error::new(ErrorKind::LockError, Operation::Lock, key.to_string()).with_detail(
                    "the lock semaphore was released by a process that did not hold it; \
                 refusing to lend the memory to two holders",
                ),
            );
        }
        inproc.holder.store(me, Ordering::Relaxed);
        Ok(Locked {
            sem,
            inproc,
            ptr: seg.ptr(),
            len: seg.len(),
            writable,
            released: false,
        })
    }

    /// The segment's bytes, for as long as this borrow of the lock lasts.
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr..ptr+len` is the mapping of the `Segment` borrowed for 'a, so it stays
        // mapped while `self` lives, and mapped memory is initialised (the kernel zero-fills
        // new segments). This thread holds the segment's cross-process lock and the only
        // `Locked` of this object, so no cooperating thread or process writes the bytes while
        // the returned borrow of `self` lasts; the only `&mut` to them comes from
        // `bytes_mut`, which needs `&mut self` and so cannot overlap this borrow.
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
        // SAFETY: as in `bytes`; in addition the mapping was made writable (PROT_WRITE /
        // no SHM_RDONLY, which `writable` records) and `&mut self` makes this the only
        // reference into the bytes from this process for the borrow's duration.
        Some(unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) })
    }

    /// Releases the lock, reporting failure.
    pub(crate) fn release(mut self) -> Result<()> {
        self.released = true;
        self.unlock()
    }

    fn unlock(&self) -> Result<()> {
        // Clear the in-process flag first: the moment the semaphore is posted another thread
        // may take it, and it must not find the flag still set.
        self.inproc.holder.store(0, Ordering::Relaxed);
        self.inproc.held.store(false, Ordering::Release);
        self.sem.release(1, Undo::Yes, Operation::Unlock)
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
