//! The backend contract: what every operating-system backend in `sys/` must provide, and
//! the only way the portable code reaches one.
//!
//! [`SharedMemory`](crate::SharedMemory) and [`SystemSemaphore`](crate::SystemSemaphore) hold
//! their OS objects as `sys::Segment` and `sys::Semaphore`, enums that dispatch to one
//! implementation of these traits per backend (on Linux: System V and POSIX, chosen per key
//! at run time). A new backend is a new file under `sys/` implementing [`RawSegment`] and
//! [`RawSemaphore`], plus one variant in its platform's enums: nothing in
//! `shared_memory.rs` or `semaphore.rs` changes. A platform without any backend compiles
//! `sys/unsupported.rs`, whose types cannot be constructed, so every operation reports
//! [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
//!
//! The traits are private and sealed: only this crate implements them.

use std::io;
use std::time::Duration;

use crate::error::{Operation, Result};
use crate::{AccessMode, NativeKey};

/// How long an acquire may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Block until acquired.
    Forever,
    /// Fail with `WouldBlock` at once if it cannot be acquired.
    Poll,
    /// Fail with `Timeout` after this long.
    For(Duration),
}

/// Whether a semaphore operation is undone by the kernel when the process dies.
///
/// The segment lock uses [`Undo::Yes`] on its paired acquire and release, so that a holder
/// that crashes gives the lock back. Counting uses of a semaphore use [`Undo::No`]: a release
/// by a process that then exits stays released (Qt undoes it, docs/qt-ipc.md §8.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Undo {
    Yes,
    No,
}

/// How a named semaphore is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SemOpen {
    /// Open it, creating it with the initial value if it does not exist. Never changes the
    /// value of an existing semaphore (this is what the segment lock uses: Qt's Create mode
    /// resets a held lock, docs/qt-ipc.md §8.4).
    OpenOrCreate,
    /// `OpenOrCreate` for a caller that expects to create it (a segment's `create`): the
    /// same outcome, with the creating attempt made first where that saves system calls.
    CreateOrOpen,
    /// Qt's `QSystemSemaphore::Create`: as `OpenOrCreate`, and an existing semaphore's value
    /// is reset to the initial value.
    CreateOrReset,
    /// Open it only if it exists (`NotFound` otherwise), creating nothing, not even a key
    /// file: for removing what may already be gone.
    Existing,
}

/// A named semaphore, the primitive a segment's lock is built on.
///
/// # Contract
///
/// * `open` resolves the name and returns a handle whose `acquire`/`release` act on the
///   semaphore every other process (Qt's included) finds under the same native key.
/// * `acquire` and `release` are each one system call on the uncontended path and are
///   safe to call from several threads at once.
/// * When the semaphore was removed underneath the handle (another process deleted it),
///   `acquire` reopens it by name and retries, as Qt does.
/// * `remove` deletes the name and the object; processes still holding a handle see it
///   vanish and reopen by name.
pub(crate) trait RawSemaphore:
    Sized + Send + Sync + std::fmt::Debug + sealed::Sealed
{
    /// Whether a semaphore lives on by name until `remove`d, and [`SemOpen::CreateOrReset`]
    /// resets an existing one's value. False where the OS destroys a semaphore with its last
    /// handle and Qt's `Create` mode resets nothing (Windows): `remove` then does nothing.
    #[cfg_attr(not(test), allow(dead_code))] // read by the conformance suite
    const PERSISTENT: bool = true;

    /// Opens the semaphore named by `key`. Returns the handle and whether this call created
    /// the semaphore.
    fn open(key: &NativeKey, initial: u32, how: SemOpen, mode: u32) -> Result<(Self, bool)>;
    /// Decrements by one, waiting as `wait` says. With [`Undo::Yes`] (the segment lock) a
    /// holder that dies must not block the others forever; returns whether the previous
    /// holder died holding it, where the backend can tell.
    fn acquire(&self, wait: Wait, undo: Undo, op: Operation) -> Result<bool>;
    /// Increments by `n` (`n > 0`), all or nothing: an increment that would pass the
    /// semaphore's maximum is refused (`OutOfResources`) with nothing released.
    fn release(&self, n: u32, undo: Undo, op: Operation) -> Result<()>;
    /// How many processes are blocked in `acquire` right now, as far as the OS can tell.
    fn waiters(&self) -> usize;
    /// Whether anyone else may be using the semaphore: blocked in it, or (where the OS
    /// shows it) holding it open. Removing one in use would split the lock in two.
    fn in_use_elsewhere(&self) -> bool {
        self.waiters() > 0
    }
    /// Deletes the semaphore and its name.
    fn remove(&self) -> Result<()>;
    /// Declares the data the lock protects consistent again after a holder died (see
    /// `acquire`); backends that cannot tell have nothing to clear.
    fn mark_consistent(&self) {}
    /// Who owns the semaphore and its permission bits (`uid`, `mode & 0o777`); `None` where
    /// the OS cannot tell.
    fn owner(&self) -> Option<(u32, u32)> {
        None
    }
    /// Deletes the semaphore and its name while this process holds it (with [`Undo::Yes`]),
    /// giving the hold up. Someone who opened it just before must not be left waiting on a
    /// semaphore nobody will post: System V wakes them with `EIDRM` (they reopen by name);
    /// other backends post it after removing the name, and the waiter, finding the name gone
    /// (`still_named`), reopens.
    fn remove_while_held(&self) -> Result<()> {
        self.remove()
    }
    /// Whether the name still refers to the object this handle has open (the segment lock
    /// checks it once taken: a remover killed between unlinking a name and removing its
    /// object leaves an object no name reaches).
    fn still_named(&self) -> bool {
        true
    }
    /// Whether a handle of this kind may be kept after a detach, for the next `create` or
    /// `attach` of the same object, instead of opening the lock anew (Qt keeps its semaphore
    /// likewise). Only where keeping it open costs nobody anything: a POSIX semaphore kept
    /// open would look "in use" to every other process's last detach. No system call.
    fn keepable(&self) -> bool {
        false
    }
    /// Whether a kept handle (see `keepable`) still serves the name, checked before reuse.
    fn reusable(&self) -> bool {
        false
    }
}

/// A shared memory segment mapped into this process.
///
/// # Safety
///
/// Implementors guarantee what [`Mapping`](crate::sys::Mapping) requires of every value:
/// `ptr()..ptr()+len()` is mapped, initialised memory for as long as the value lives (a
/// shared borrow of it keeps it mapped), writable when `writable()` is true. The lock guard
/// makes slices of it on that promise.
///
/// # Contract
///
/// * `create` is called with the segment's lock held, creates the segment exclusively
///   (failing with `AlreadyExists` when the key is taken) and maps it; a failure leaves no
///   object behind that the call created.
/// * `attach` maps an existing segment; a `ReadOnly` mapping is mapped without write
///   permission, so a write through it faults at the OS level instead of changing the data.
///   `attach_unlocked` does the same without the lock where the backend can.
/// * `ptr()`/`len()` describe the mapping for as long as the value lives; the memory is
///   shared with other processes, so the crate hands out slices of it only to the holder of
///   the lock (see `lock.rs`).
/// * `detach` unmaps and, when this was the last attachment anywhere, destroys the segment
///   and (when `remove_key_file`) its key file, unless `remove_if_last` is false (Qt's
///   leave-it-behind policy). It says what became of the segment.
#[allow(unsafe_code)] // declares the contract; implementing it is what is unsafe
pub(crate) unsafe trait RawSegment:
    Sized + Send + Sync + std::fmt::Debug + sealed::Sealed
{
    /// Whether a segment can outlive its last attachment (`detach(false, ..)` keeps it) and
    /// be removed by name (`remove`). False where the OS destroys it with its last handle
    /// and creates it atomically by name (Windows): nothing is ever left behind, nothing can
    /// be removed while in use, and so `create`, `attach` and `detach` race nothing the
    /// segment's lock would have to exclude: `SharedMemory` does them without it.
    const PERSISTENT: bool = true;

    /// Creates and maps a new segment of exactly `size` bytes (`size > 0`).
    fn create(key: &NativeKey, size: usize, access: AccessMode, mode: u32) -> Result<Self>;
    /// Maps an existing segment.
    fn attach(key: &NativeKey, access: AccessMode) -> Result<Self>;
    /// The first byte of the mapping.
    fn ptr(&self) -> *mut u8;
    /// The size of the segment in bytes, as the OS reports it.
    fn len(&self) -> usize;
    /// Whether the mapping allows writes.
    fn writable(&self) -> bool;
    /// Whether a segment exists behind `key` (no attaching; an unreadable answer is `false`).
    fn exists(key: &NativeKey) -> bool;
    /// Removes the segment behind `key` (with `only_if_unattached`, only when nobody is
    /// attached), with its key file where it has one. Returns whether a segment was removed.
    /// The caller holds the segment's lock, or knows it has none.
    fn remove(key: &NativeKey, only_if_unattached: bool) -> Result<bool>;
    /// Who owns the segment behind `key` and its permission bits (`uid`, `mode & 0o777`),
    /// without attaching; `None` when there is none or it cannot be read.
    fn owner_of(key: &NativeKey) -> Option<(u32, u32)> {
        let _ = key;
        None
    }
    /// Maps every page now (see `SharedMemory::set_populate`); with `write`, allocates them
    /// too, so that a full file system fails here rather than with SIGBUS later.
    fn populate(&self, write: bool) -> io::Result<()> {
        crate::sys::populate(self, write)
    }
    /// The size of the segment's backing object now, where another process can shrink it
    /// under a mapping (a POSIX file: touching a page past its end is SIGBUS); `None` where
    /// nobody can (System V). `Err` when it cannot be read.
    fn size_now(&self) -> io::Result<Option<u64>> {
        Ok(None)
    }
    /// Copies `buf.len()` bytes at `offset` out of the segment; the caller holds the lock
    /// and has checked `offset + buf.len() <= len()`. Never SIGBUS: a backend whose object
    /// can shrink under the mapping reads the object instead (`pread`), and a short read is
    /// `InvalidSize`.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        crate::sys::copy_out(self, offset, buf);
        Ok(())
    }
    /// [`read_at`](RawSegment::read_at) without the lock (the caller does not hold it): the
    /// bytes may be torn by a concurrent writer, and are copied, never lent.
    fn read_at_unlocked(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        crate::sys::copy_out_unlocked(self, offset, buf);
        Ok(())
    }
    /// Unmaps; destroys the segment when nobody else has it attached.
    fn detach(self, remove_if_last: bool, remove_key_file: bool) -> Result<Detached>;
    /// Maps an existing segment without the segment's lock, where the backend counts
    /// attachments in a way a concurrent last detach respects (POSIX: `flock`); `Ok(None)`
    /// when this attach needs the lock after all, or always does (System V, whose count
    /// is the kernel's `shm_nattch`, read by the last detach under the lock).
    fn attach_unlocked(key: &NativeKey, access: AccessMode) -> Result<Option<Self>> {
        let _ = (key, access);
        Ok(None)
    }
    /// Begins a detach without the lock: `None` when the detach is complete (the segment
    /// stays: someone else is attached, or the policy keeps it), `Some` when the caller
    /// must take the lock and finish with `detach`. A segment handed back may be unmapped
    /// already; `remap` restores it if the lock cannot be had.
    fn detach_unlocked(self, remove_if_last: bool) -> Option<Self> {
        let _ = remove_if_last;
        Some(self)
    }
    /// Undoes the unmapping of a segment `detach_unlocked` handed back (the address may
    /// change), so that a detach that fails leaves the object attached.
    fn remap(&mut self) -> Result<()> {
        Ok(())
    }
}

/// What became of a segment at a detach.
// Only the Linux backends make one so far; the stub for other targets has no segments.
#[cfg_attr(not(qshm_linux), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Detached {
    /// It stays: someone else has it attached, or the policy keeps it.
    Kept,
    /// This detach destroyed it (under its lock, so nobody can have made another since).
    Removed,
    /// Someone had removed it already (`force_remove`): another segment may hold the key
    /// by now.
    AlreadyRemoved,
}

pub(crate) mod sealed {
    /// Keeps the backend traits implementable only inside this crate.
    pub(crate) trait Sealed {}
}
