//! [`SharedMemory`]: Qt's `QSharedMemory`.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::backend::{Detached, RawSegment, RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{KeyType, NativeKey};
use crate::lock::LockGuard;
use crate::sys::{InProcessLock, LockRef, Locked, Segment, Semaphore};

/// How a segment is mapped into this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessMode {
    /// Read only: the segment is mapped without write permission, so
    /// [`LockGuard::as_mut_slice`] refuses, and a write through [`SharedMemory::as_mut_ptr`]
    /// faults (the process gets `SIGSEGV`) instead of changing the data.
    ReadOnly,
    /// Reading and writing.
    ReadWrite,
}

/// A named shared memory segment shared by threads and processes: Qt's `QSharedMemory`.
///
/// A `SharedMemory` names a segment by a key. [`create`](SharedMemory::create) makes the
/// segment and attaches to it; [`attach`](SharedMemory::attach) attaches to one another
/// process (a Rust or a Qt program) made. The bytes are reached through
/// [`lock`](SharedMemory::lock), whose guard lends them as slices while it holds the
/// segment's cross-process lock, the same lock Qt's `lock()` takes.
///
/// # Ownership
///
/// As on Unix in Qt, the segment belongs to all its users together: the last
/// [`detach`](SharedMemory::detach) (or drop) anywhere destroys it, along with its key file
/// and its lock. A process that dies without detaching leaves its attachment counted until
/// the kernel notices its death; a segment whose every user died is an orphan, which the
/// next `attach` adopts (its detach then removes it) and [`SharedMemory::remove_orphan`]
/// removes.
///
/// # Threads
///
/// `SharedMemory` is `Send + Sync`. Threads share one through an `Arc` and exclude each other
/// with [`lock`](SharedMemory::lock), exactly as processes do. `create`, `attach` and `detach`
/// take `&mut self`, so they cannot run while a guard lends the bytes.
///
/// # Examples
///
/// ```
/// use qshm::{AccessMode, SharedMemory};
/// # let key = format!("qshm-doc-shared-memory-{}", std::process::id());
///
/// let mut shm = SharedMemory::with_key(&key);
/// shm.create(4096, AccessMode::ReadWrite)?;
/// {
///     let mut guard = shm.lock()?;
///     guard.as_mut_slice()?[..5].copy_from_slice(b"hello");
/// }
/// let mut other = SharedMemory::with_key(&key);
/// other.attach(AccessMode::ReadOnly)?;
/// assert_eq!(&other.lock()?.as_slice()[..5], b"hello");
/// # Ok::<(), qshm::Error>(())
/// ```
pub struct SharedMemory {
    key: NativeKey,
    /// The key's text form, made once: every error of this object shares it.
    key_text: Arc<str>,
    /// The segment's lock, open while attached, except after an attach that did not need
    /// it (POSIX): then the first `lock()` opens it.
    lock: OnceLock<Semaphore>,
    /// The lock of the last attachment, kept after its detach where the backend allows it
    /// ([`RawSemaphore::keepable`]), for the next `create` or `attach` (boxed: rarely
    /// there, and the object stays small).
    spare_lock: Option<Box<Semaphore>>,
    segment: Option<Segment>,
    access: AccessMode,
    /// This process's hold on the key's lock, shared with its other objects for the key.
    inproc: Arc<InProcessLock>,
    mode: u32,
    last_detach: LastDetach,
    populate: bool,
    /// Whether `lock` checks the segment's size first (see `set_check_size_on_lock`).
    check_size: bool,
    /// How long a detach waits for the lock (see `set_detach_timeout`).
    detach_wait: Duration,
    /// Attached by `attach_unlocked`: the detach only unmaps, without the lock.
    rescue: bool,
    last_error: Mutex<Option<Error>>,
}

/// How long a detach waits for the lock by default (`set_detach_timeout`).
const DEFAULT_DETACH_WAIT: Duration = Duration::from_secs(10);

/// What the last detach does with a segment.
///
/// ```
/// use qshm::{LastDetach, SharedMemory};
/// let mut shm = SharedMemory::with_key("my-app");
/// shm.set_last_detach(LastDetach::Keep); // Qt's POSIX behaviour: the segment stays
/// assert_eq!(shm.last_detach(), LastDetach::Keep);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LastDetach {
    /// Unix ownership (Qt's System V behaviour): the last detach anywhere destroys the
    /// segment, its key file and its lock.
    #[default]
    Remove,
    /// Leave the segment behind for the next user (Qt's POSIX behaviour on Linux). It is
    /// removed by [`SharedMemory::remove_orphan`] or [`SharedMemory::force_remove`].
    Keep,
}

/// Opens the lock of the segment `key` and takes it: the lock, and whether this call
/// created it. A lock whose name was removed or replaced meanwhile (the last detach removes
/// it; a Qt creator replaces it) is opened again, so that everyone serialises on the one the
/// name now refers to.
/// Removes the change notifier's companion of the segment `key` ([`SharedMemory::notifier`])
/// along with the segment: one `unlink` where none exists.
fn remove_companion(key: &NativeKey) {
    #[cfg(qshm_linux)]
    let _ = crate::sys::notify::remove_companion(&crate::key::companion_name(key));
    #[cfg(not(qshm_linux))]
    let _ = key;
}

fn lock_by_name(
    key: &NativeKey,
    how: SemOpen,
    mode: u32,
    op: Operation,
    wait: Wait,
) -> Result<(Semaphore, bool)> {
    for _ in 0..100 {
        let (sem, created) = open_lock_of(key, how, mode, op)?;
        sem.acquire(wait, Undo::Yes, op)?;
        // Taken: it must still be the one the name refers to (a remover killed between
        // unlinking the name and removing the object leaves one no name reaches, which its
        // death's undo frees for whoever waited on it).
        if sem.still_named() {
            return Ok((sem, created));
        }
        let _ = sem.release(1, Undo::Yes, op);
    }
    Err(Error::new(ErrorKind::LockError, op, key.to_string())
        .with_detail("the lock kept being replaced while being taken"))
}

/// Opens (with `how`) the lock of the segment `key`, an error saying so on failure.
fn open_lock_of(
    key: &NativeKey,
    how: SemOpen,
    mode: u32,
    op: Operation,
) -> Result<(Semaphore, bool)> {
    let (sem, created) = Semaphore::open(&key.lock_key(), 1, how, mode).map_err(|e| {
        let detail = format!("cannot open its lock ({e})");
        e.with_op(op).with_key(key.to_string()).with_detail(detail)
    })?;
    if !created {
        trust_found_lock(key, &sem, mode, op)?;
    }
    Ok((sem, created))
}

/// A lock semaphore that was there already is adopted only if it is consistent with the
/// segment it protects: owned by this user, by root, or by the segment's owner, and writable
/// by nobody the segment does not admit (its mode, or `mode` for one still to be created).
/// Otherwise another local user made it first, and controls it: its value decides who gets
/// in (0 hangs every `create`; 3 lets three holders in), so it is refused.
fn trust_found_lock(key: &NativeKey, sem: &Semaphore, mode: u32, op: Operation) -> Result<()> {
    let Some((uid, sem_mode)) = sem.owner() else {
        return Ok(()); // the OS does not say: nothing to judge by
    };
    let me = crate::sys::euid();
    let segment = Segment::owner_of(key);
    let trusted = uid == me || uid == 0 || segment.is_some_and(|(owner, _)| owner == uid);
    let admitted = segment.map_or(mode, |(_, seg_mode)| seg_mode) & 0o022;
    if trusted && sem_mode & 0o022 & !admitted == 0 {
        return Ok(());
    }
    Err(
        Error::new(ErrorKind::PermissionDenied, op, key.to_string()).with_detail(format!(
            "its lock semaphore was made by uid {uid} with mode {sem_mode:04o}, which is not \
         this user's, root's or the segment's owner's, or lets in writers the segment does \
         not: refusing a lock someone else controls"
        )),
    )
}

impl SharedMemory {
    /// An object with no key: set one with [`set_key`](SharedMemory::set_key) or
    /// [`set_native_key`](SharedMemory::set_native_key) before `create` or `attach`.
    pub fn new() -> SharedMemory {
        SharedMemory::with_native_key(NativeKey::default())
    }

    /// An object for the Qt key `key`, named exactly as Qt names it
    /// ([`NativeKey::legacy`] with Qt's default type, System V on Linux), so that it meets a
    /// Qt program's `QSharedMemory(key)`.
    pub fn with_key(key: &str) -> SharedMemory {
        SharedMemory::with_native_key(NativeKey::legacy(key, KeyType::legacy_default_for_os()))
    }

    /// An object for a native key, which also picks the backend.
    ///
    /// ```
    /// use qshm::SharedMemory;
    /// let shm = SharedMemory::with_native_key("systemv:/tmp/my-key-file".parse()?);
    /// assert_eq!(shm.native_key().native_key(), "/tmp/my-key-file");
    /// assert_eq!(shm.key(), None);
    /// # Ok::<(), qshm::Error>(())
    /// ```
    pub fn with_native_key(key: NativeKey) -> SharedMemory {
        let inproc = InProcessLock::of(&key);
        SharedMemory {
            key_text: key.to_string().into(),
            key,
            lock: OnceLock::new(),
            spare_lock: None,
            segment: None,
            access: AccessMode::ReadWrite,
            inproc,
            mode: 0o600,
            last_detach: LastDetach::Remove,
            rescue: false,
            populate: false,
            check_size: false,
            detach_wait: DEFAULT_DETACH_WAIT,
            last_error: Mutex::new(None),
        }
    }

    /// Sets the Qt key, detaching first when attached (Qt's `setKey`). Setting the key the
    /// object already has does nothing.
    pub fn set_key(&mut self, key: &str) {
        self.set_native_key(NativeKey::legacy(key, KeyType::legacy_default_for_os()));
    }

    /// Sets the native key, detaching first when attached (Qt's `setNativeKey`). Setting the
    /// key the object already has does nothing.
    pub fn set_native_key(&mut self, key: NativeKey) {
        if key == self.key {
            return;
        }
        if self.is_attached() {
            let _ = self.detach();
        }
        self.spare_lock = None;
        self.key_text = key.to_string().into();
        self.inproc = InProcessLock::of(&key);
        self.key = key;
    }

    /// The Qt key, or `None` when the object was given a native key without one.
    pub fn key(&self) -> Option<&str> {
        self.key.legacy_key()
    }

    /// The native key: what the operating system calls the segment.
    pub fn native_key(&self) -> &NativeKey {
        &self.key
    }

    /// Creates a segment of `size` bytes and attaches to it with `mode` (Qt's `create`).
    ///
    /// The segment's bytes start zeroed. Creation is serialised with every other `create`,
    /// and with the last `detach`, on the key (Qt programs' included) by the segment's lock;
    /// a POSIX segment gets its name only once it is whole, so an attacher never sees it
    /// half-made. A failed `create` leaves nothing behind: a lock semaphore it made for the
    /// attempt goes again (unless another process uses it by then). On Windows, where the
    /// system creates a section atomically by name and destroys it with its last handle,
    /// `create`, `attach` and `detach` take no lock (they open it without taking it).
    ///
    /// # Errors
    ///
    /// * [`ErrorKind::AlreadyExists`]: a segment with this key exists; [`attach`] to it.
    /// * [`ErrorKind::InvalidSize`]: `size` is 0, or larger than the system allows for one
    ///   segment.
    /// * [`ErrorKind::OutOfResources`]: the system is out of memory or segments.
    /// * [`ErrorKind::KeyError`]: the key is empty or cannot name a segment.
    /// * [`ErrorKind::AlreadyAttached`]: this object is attached already.
    /// * [`ErrorKind::PermissionDenied`], [`ErrorKind::Unsupported`], [`ErrorKind::Unknown`].
    ///
    /// [`attach`]: SharedMemory::attach
    #[doc(alias = "shmget")]
    pub fn create(&mut self, size: usize, mode: AccessMode) -> Result<()> {
        let result = self.create_inner(size, mode);
        self.record(result)
    }

    fn create_inner(&mut self, size: usize, access: AccessMode) -> Result<()> {
        self.check_can_attach(Operation::Create)?;
        if size == 0 || isize::try_from(size).is_err() {
            return Err(self
                .make_error(ErrorKind::InvalidSize, Operation::Create)
                .with_detail(if size == 0 {
                    "size is 0"
                } else {
                    "size is larger than isize::MAX"
                }));
        }
        let seg = if Segment::PERSISTENT {
            self.with_lock(Operation::Create, Wait::Forever, |key, mode| {
                Segment::create(key, size, access, mode)
            })?
        } else {
            // Windows: created atomically by name, destroyed by the system.
            let seg = Segment::create(&self.key, size, access, self.mode)?;
            self.open_lock_unlocked(Operation::Create)?;
            seg
        };
        self.segment = Some(seg);
        self.access = access;
        self.populate_now(Operation::Create)
    }

    /// With [`set_populate`](SharedMemory::set_populate): maps (and at create, allocates)
    /// every page of the segment just attached; on failure detaches again.
    fn populate_now(&mut self, op: Operation) -> Result<()> {
        let Some(seg) = self.segment.as_ref().filter(|_| self.populate) else {
            return Ok(());
        };
        let write = op == Operation::Create && self.access == AccessMode::ReadWrite;
        #[cfg(test)]
        let seg_populate = |write| match tests::FAIL_POPULATE.with(|f| f.take()) {
            true => Err(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            false => seg.populate(write),
        };
        #[cfg(not(test))]
        let seg_populate = |write| seg.populate(write);
        let Err(e) = seg_populate(write) else {
            return Ok(());
        };
        let mut err = self.make_error(ErrorKind::OutOfResources, op);
        if let Some(errno) = e.raw_os_error() {
            err = err.with_errno(errno);
        }
        let err = err.with_detail(format!(
            "cannot populate the {} bytes of the segment ({e})",
            seg.len()
        ));
        // A segment this call created goes again, whatever the last-detach policy: nobody
        // else can have used it yet, and the caller is told it was not created.
        let policy = self.last_detach;
        if op == Operation::Create {
            self.last_detach = LastDetach::Remove;
        }
        let _ = self.detach_inner();
        self.last_detach = policy;
        Err(err)
    }

    /// Attaches to the segment with this object's key (Qt's `attach`).
    ///
    /// A System V attach takes the segment's lock, as Qt's does (the last detach reads the
    /// kernel's attach count under it). A POSIX attach needs no lock: it counts itself with
    /// a shared `flock` on the segment, which a last detach respects, and the lock is opened
    /// at the first [`lock`](SharedMemory::lock). It does not wait for a holder of the lock.
    /// Nor does a Windows attach (see [`create`](SharedMemory::create)).
    ///
    /// # Errors
    ///
    /// * [`ErrorKind::NotFound`]: no segment has this key.
    /// * [`ErrorKind::PermissionDenied`]: the segment's permissions forbid `mode`.
    /// * [`ErrorKind::KeyError`]: the key is empty or cannot name a segment, or its name is
    ///   taken by something that is not one (a FIFO at a POSIX name, say).
    /// * [`ErrorKind::AlreadyAttached`], [`ErrorKind::Unsupported`], [`ErrorKind::Unknown`].
    #[doc(alias = "shmat")]
    pub fn attach(&mut self, mode: AccessMode) -> Result<()> {
        let result = self.attach_inner(mode, Wait::Forever);
        self.record(result)
    }

    /// [`attach`](SharedMemory::attach), waiting at most `timeout` for the segment's lock
    /// where the attach takes it (System V). A zero `timeout` does not wait at all.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when the lock stayed held (a zero `timeout`: it was held);
    /// otherwise as [`attach`](SharedMemory::attach).
    pub fn attach_timeout(&mut self, mode: AccessMode, timeout: Duration) -> Result<()> {
        let wait = if timeout.is_zero() {
            Wait::Poll
        } else {
            Wait::For(timeout)
        };
        let result = self.attach_inner(mode, wait).map_err(|e| {
            // One kind for "the lock stayed held", whatever the wait.
            if e.kind() == ErrorKind::WouldBlock {
                e.with_kind(ErrorKind::Timeout)
            } else {
                e
            }
        });
        self.record(result)
    }

    /// Attaches read-only **without the segment's lock**, even where attaching takes it
    /// (System V): to rescue data, with [`read_at_unlocked`](SharedMemory::read_at_unlocked),
    /// from a segment whose lock is stuck (a hung process that keeps it, or a Qt process
    /// that died holding a POSIX lock). The detach that follows only unmaps, without the
    /// lock, and never removes the segment.
    ///
    /// The lock orders an attach against another process's last detach. Without it, a last
    /// detach elsewhere may remove the segment while this object maps it (the mapping stays
    /// valid until this object detaches), or count this attachment and leave the segment
    /// for a later user (`qshm clean` removes it). Use [`attach`](SharedMemory::attach)
    /// whenever the lock can be had.
    ///
    /// # Errors
    ///
    /// As [`attach`](SharedMemory::attach), except that it never waits.
    pub fn attach_unlocked(&mut self) -> Result<()> {
        let result = (|| {
            self.check_can_attach(Operation::Attach)?;
            // POSIX attaches without the lock anyway (counted by its `flock`); System V's
            // attach is the lock's critical section, done here without it.
            let seg = match Segment::attach_unlocked(&self.key, AccessMode::ReadOnly)? {
                Some(seg) => seg,
                None => Segment::attach(&self.key, AccessMode::ReadOnly)?,
            };
            self.segment = Some(seg);
            self.access = AccessMode::ReadOnly;
            self.rescue = true;
            Ok(())
        })();
        self.record(result)
    }

    fn attach_inner(&mut self, access: AccessMode, wait: Wait) -> Result<()> {
        self.check_can_attach(Operation::Attach)?;
        // Without the lock where the backend's attach count allows it (POSIX; Qt's POSIX
        // attach takes the lock but makes no system call for it: its semaphore is open).
        let seg = match Segment::attach_unlocked(&self.key, access)? {
            Some(seg) => seg,
            None if !Segment::PERSISTENT => {
                let seg = Segment::attach(&self.key, access)?;
                self.open_lock_unlocked(Operation::Attach)?;
                seg
            }
            None => self.with_lock(Operation::Attach, wait, |key, _| {
                Segment::attach(key, access)
            })?,
        };
        self.segment = Some(seg);
        self.access = access;
        self.populate_now(Operation::Attach)
    }

    fn check_can_attach(&self, op: Operation) -> Result<()> {
        if self.segment.is_some() {
            return Err(self.make_error(ErrorKind::AlreadyAttached, op));
        }
        if self.key.is_empty() {
            return Err(self
                .make_error(ErrorKind::KeyError, op)
                .with_detail("key is empty"));
        }
        if !self.key.key_type().is_supported() {
            return Err(self
                .make_error(ErrorKind::Unsupported, op)
                .with_detail("no backend for this key type on this platform"));
        }
        Ok(())
    }

    /// Where create and attach take no lock (`!PERSISTENT`): opens the lock without taking
    /// it (or adopts the one kept at the last detach, if it still serves the key), as Qt
    /// keeps its semaphore open, so that the lock outlives a holder that dies.
    fn open_lock_unlocked(&mut self, op: Operation) -> Result<()> {
        if let Some(sem) = self.spare_lock.take().filter(|sem| sem.reusable()) {
            self.lock = OnceLock::from(*sem);
            return Ok(());
        }
        let (sem, _created) = open_lock_of(&self.key, SemOpen::OpenOrCreate, self.mode, op)?;
        self.lock = OnceLock::from(sem);
        Ok(())
    }

    /// `LockError` when the calling thread holds the key's lock (through another object):
    /// `create`, `attach` and `detach` take that lock, and would wait on it for ever.
    fn not_held_here(&self, op: Operation) -> Result<()> {
        if self.inproc.held_here() {
            return Err(self.make_error(ErrorKind::LockError, op).with_detail(
                "this thread holds the key's lock (through another object), which this \
                 operation takes: it would wait for ever",
            ));
        }
        Ok(())
    }

    /// Opens the lock, takes it, runs `f`, and keeps the lock open on success. A lock this
    /// call created is removed again on failure, unless someone waits for it.
    fn with_lock(
        &mut self,
        op: Operation,
        wait: Wait,
        f: impl FnOnce(&NativeKey, u32) -> Result<Segment>,
    ) -> Result<Segment> {
        self.not_held_here(op)?;
        // A creator usually finds no lock yet; an attacher usually finds one.
        let how = if op == Operation::Create {
            SemOpen::CreateOrOpen
        } else {
            SemOpen::OpenOrCreate
        };
        let (sem, created) = match self.spare_lock.take().filter(|sem| sem.reusable()) {
            Some(sem) => {
                if let Err(err) = sem.acquire(wait, Undo::Yes, op) {
                    self.spare_lock = Some(sem); // kept for the next try
                    return Err(err);
                }
                (*sem, false)
            }
            None => lock_by_name(&self.key, how, self.mode, op, wait)?,
        };
        match f(&self.key, self.mode) {
            Ok(seg) => {
                sem.release(1, Undo::Yes, op)?;
                self.lock = OnceLock::from(sem);
                Ok(seg)
            }
            Err(err) => {
                // No segment (none was found, or creating it failed): the lock serves nobody
                // unless someone else is using it, whoever created it.
                let no_segment =
                    err.kind() != ErrorKind::AlreadyExists && !Segment::exists(&self.key);
                // A lock this call created, where something holds the name (a segment
                // whose lock was gone, or a file or segment another user planted there),
                // goes again too: the failed call leaves things as it found them. Not while
                // another object of this process has the key (it may have opened the lock
                // meanwhile: removing it would split the lock), nor while another process
                // uses it.
                let made_here = created && Arc::strong_count(&self.inproc) == 1;
                if (no_segment || made_here) && !sem.in_use_elsewhere() {
                    let _ = sem.remove_while_held();
                } else {
                    let _ = sem.release(1, Undo::Yes, op);
                }
                Err(err)
            }
        }
    }

    /// Detaches from the segment (Qt's `detach`). When this was the last attachment
    /// anywhere, the segment is destroyed, with its key file and, when nobody waits for it,
    /// its lock.
    ///
    /// Unlike Qt, success is reported whenever the segment was detached, even if its key
    /// file had already been removed by someone else.
    ///
    /// On the POSIX backend the last detach asks the kernel whether any other process has
    /// the segment or its lock open by taking a file lease for an instant; a process that
    /// opens the file in that instant makes the kernel send this process `SIGURG`, which is
    /// ignored unless the program installed a handler for it. Like Qt, a System V object
    /// keeps its lock's id for its next `create` or `attach`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotAttached`] when not attached; [`ErrorKind::Timeout`] when the lock
    /// stayed held for the [detach timeout](SharedMemory::set_detach_timeout): the object
    /// is detached all the same, the segment left for a later user; any other lock failure
    /// leaves the object attached.
    #[doc(alias = "shmdt")]
    pub fn detach(&mut self) -> Result<()> {
        let result = self.detach_inner();
        self.record(result)
    }

    fn detach_inner(&mut self) -> Result<()> {
        let Some(seg) = self.segment.take() else {
            return Err(self.make_error(ErrorKind::NotAttached, Operation::Detach));
        };
        if std::mem::take(&mut self.rescue) {
            // An `attach_unlocked`: unmap only; whatever is to remove is a later user's.
            self.lock = OnceLock::new();
            return seg
                .detach(false, false)
                .map(drop)
                .map_err(|e| e.with_key(Arc::clone(&self.key_text)));
        }
        if !Segment::PERSISTENT {
            // The system destroys the segment with its last handle: nothing here needs the
            // lock (nor waits behind a holder that died). An open lock is kept for the next
            // `create` or `attach` where it may be. Dropping the segment unmaps and closes
            // it, which is all a detach is there (its `detach` would also look up whether
            // the section is gone, which nobody asks).
            if let Some(sem) = self.lock.take().filter(|sem| sem.keepable()) {
                self.spare_lock = Some(Box::new(sem));
            }
            let _unmapped_and_closed_here = seg;
            return Ok(());
        }
        let remove = self.last_detach == LastDetach::Remove;
        let (seg, sem) = match self.lock.take() {
            Some(sem) => match self
                .not_held_here(Operation::Detach)
                .and_then(|()| self.lock_for_detach(&sem))
            {
                Ok(None) => (seg, sem),
                Ok(Some(fresh)) => (seg, fresh),
                Err(err) if err.kind() == ErrorKind::Timeout => {
                    return Err(self.detach_without_lock(seg, err))
                }
                Err(err) => {
                    self.segment = Some(seg);
                    self.lock = OnceLock::from(sem);
                    return Err(err);
                }
            },
            // Attached without the lock and never locked since: where the backend can tell
            // that this is not the last attachment, nothing needs the lock.
            None => {
                let Some(mut seg) = seg.detach_unlocked(remove) else {
                    return Ok(());
                };
                match self.not_held_here(Operation::Detach).and_then(|()| {
                    lock_by_name(
                        &self.key,
                        SemOpen::OpenOrCreate,
                        self.mode,
                        Operation::Detach,
                        Wait::For(self.detach_wait),
                    )
                    .map(|(sem, _created)| sem)
                }) {
                    Ok(sem) => (seg, sem),
                    Err(err) if err.kind() == ErrorKind::Timeout => {
                        return Err(self.detach_without_lock(seg, err))
                    }
                    Err(err) => {
                        if seg.remap().is_ok() {
                            self.segment = Some(seg);
                        }
                        return Err(err);
                    }
                }
            }
        };
        // A System V key without a Qt key shares its key file with its lock
        // (docs/qt-ipc.md §2): the
        // file goes with the lock, not with the segment.
        let shares_key_file = self.key.legacy_key().is_none();
        match seg.detach(remove, !shares_key_file) {
            // The segment is gone: its lock goes too, unless someone is using it, or a new
            // segment took the key meanwhile (after a `force_remove`; a segment this detach
            // removed under the lock cannot have been replaced).
            Ok(Detached::Removed) if !sem.in_use_elsewhere() => {
                remove_companion(&self.key);
                sem.remove_while_held()
            }
            Ok(Detached::AlreadyRemoved)
                if !sem.in_use_elsewhere() && !Segment::exists(&self.key) =>
            {
                remove_companion(&self.key);
                sem.remove_while_held()
            }
            Ok(_) => {
                let released = sem.release(1, Undo::Yes, Operation::Detach);
                if released.is_ok() && sem.keepable() {
                    self.spare_lock = Some(Box::new(sem));
                }
                released
            }
            Err(err) => {
                let _ = sem.release(1, Undo::Yes, Operation::Detach);
                Err(err.with_key(Arc::clone(&self.key_text)))
            }
        }
    }

    /// Takes the open lock `sem` for a detach: `None` when `sem` is held now. A lock replaced
    /// under its name (a Qt creator does that, docs/qt-ipc.md §8.5) gives way to the one the name
    /// refers to now, on which every newcomer serialises: that one is returned, held.
    fn lock_for_detach(&self, sem: &Semaphore) -> Result<Option<Semaphore>> {
        let wait = Wait::For(self.detach_wait);
        sem.acquire(wait, Undo::Yes, Operation::Detach)?;
        if sem.still_named() {
            return Ok(None);
        }
        let _ = sem.release(1, Undo::Yes, Operation::Detach);
        lock_by_name(
            &self.key,
            SemOpen::OpenOrCreate,
            self.mode,
            Operation::Detach,
            wait,
        )
        .map(|(sem, _created)| Some(sem))
    }

    /// A detach whose lock stayed held for the detach timeout: unmaps without it, which is
    /// safe, and leaves the segment (even if this was its last user: deciding that needs
    /// the lock) for a later user or `qshm clean`. The object is detached; the error says
    /// what was left.
    #[cold]
    fn detach_without_lock(&mut self, seg: Segment, timeout: Error) -> Error {
        let unmapped = seg.detach(false, false);
        let err = timeout.with_detail(format!(
            "the lock stayed held for {:?}: detached without it; the segment, if this was \
             its last user, is left for a later one (qshm clean)",
            self.detach_wait
        ));
        match unmapped {
            Ok(_) => err,
            Err(e) => e.with_key(Arc::clone(&self.key_text)),
        }
    }

    /// The segment's change counter ([`Notifier`](crate::notify::Notifier)), in its
    /// *companion*: a one-page file `/dev/shm/qshm-notify-<hash of the native key>` that Qt
    /// never looks at, made by the first caller (with this object's
    /// [permissions](SharedMemory::permissions)) and removed with the segment by qshm's last
    /// detach or [`force_remove`](SharedMemory::force_remove) (and by `qshm clean` when a
    /// Qt process detached last). Opt-in: a segment nobody asks a notifier for has none,
    /// and nothing else costs anything more.
    ///
    /// A Qt program that writes without notifying leaves waiters waiting (they time out);
    /// one that wants to notify uses the companion as `qshm.h` describes.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotAttached`] when not attached (a companion of no segment would be left
    /// behind); the errors of opening, sizing and mapping the companion;
    /// [`ErrorKind::KeyError`] when something not made by qshm has its name.
    #[cfg(any(qshm_linux, qshm_windows))]
    #[cfg_attr(docsrs, doc(cfg(any(target_os = "linux", windows))))]
    pub fn notifier(&self) -> Result<crate::notify::Notifier> {
        if self.segment.is_none() {
            return Err(self.make_error(ErrorKind::NotAttached, Operation::Notify));
        }
        let name = crate::key::companion_name(&self.key);
        let words = crate::sys::notify::ChangeWords::companion(
            &name,
            &self.key_text,
            self.mode,
            true,
            &self.key_text,
        )?;
        Ok(crate::notify::Notifier::new(
            words,
            Arc::clone(&self.key_text),
        ))
    }

    /// How long `detach` (and dropping the object) waits for the lock: 10 s unless set.
    pub fn detach_timeout(&self) -> Duration {
        self.detach_wait
    }

    /// Sets how long `detach` (and dropping the object) waits for the lock, which it takes
    /// as Qt's does (the last detach removes the segment, and must not race an attach).
    /// When the lock stays held that long (a holder that keeps it, or a Qt holder that died
    /// holding a POSIX lock, which nothing gives back), the object detaches without it and
    /// the segment stays for a later user or `qshm clean`: `detach` then returns
    /// [`ErrorKind::Timeout`], and the object is detached. `Duration::MAX` waits as long as
    /// it takes, as Qt does.
    pub fn set_detach_timeout(&mut self, timeout: Duration) {
        self.detach_wait = timeout;
    }

    /// True while attached.
    pub fn is_attached(&self) -> bool {
        self.segment.is_some()
    }

    /// The size of the attached segment in bytes, as the system reports it (at least the
    /// size given to `create`); 0 when not attached.
    pub fn size(&self) -> usize {
        self.segment.as_ref().map_or(0, RawSegment::len)
    }

    /// The access mode of the current attachment, `None` when not attached.
    pub fn access_mode(&self) -> Option<AccessMode> {
        self.segment.as_ref().map(|_| self.access)
    }

    /// Takes the segment's lock, waiting as long as it takes (Qt's `lock`).
    ///
    /// The guard lends the segment's bytes and releases the lock when dropped. The lock is
    /// the one Qt programs take for the same key, so they and this process exclude each
    /// other. A process that dies holding it gives it back (System V `SEM_UNDO`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LockError`] when not attached, when this thread already holds the lock
    /// (through this object or another of this process for the same key: a second lock
    /// would deadlock; Qt returns true instead), or when the system call fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # use qshm::{AccessMode, SharedMemory};
    /// # let mut shm = SharedMemory::with_key(&format!("qshm-doc-lock-{}", std::process::id()));
    /// # shm.create(8, AccessMode::ReadWrite)?;
    /// let mut guard = shm.lock()?;
    /// guard.as_mut_slice()?[0] += 1;
    /// drop(guard); // unlocks
    /// # Ok::<(), qshm::Error>(())
    /// ```
    #[doc(alias = "semop")]
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.lock_with(Wait::Forever)
    }

    /// Takes the lock if it is free, without waiting.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WouldBlock`] when it is held; otherwise as [`lock`](SharedMemory::lock).
    #[inline]
    pub fn try_lock(&self) -> Result<LockGuard<'_>> {
        self.lock_with(Wait::Poll)
    }

    /// [`lock`](SharedMemory::lock) as a future, for any executor (feature `async`; see
    /// [`qshm::asynchronous`](crate::asynchronous)): tries the lock, and again after a
    /// backoff of 50 µs to 2 ms while it is held, with no thread of its own; a holder that
    /// died is recovered as by [`try_lock`](SharedMemory::try_lock). Dropping it gives up
    /// the attempt and leaves nothing behind.
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn lock_async(&self) -> impl std::future::Future<Output = Result<LockGuard<'_>>> + '_ {
        crate::asynchronous::retrying(self.key_text.to_string(), move || self.try_lock())
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when it stayed held; otherwise as [`lock`](SharedMemory::lock).
    #[doc(alias = "semtimedop")]
    #[inline]
    pub fn lock_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        self.lock_with(Wait::For(timeout))
    }

    #[inline]
    fn lock_with(&self, wait: Wait) -> Result<LockGuard<'_>> {
        self.lock_checking(wait, self.check_size)
    }

    /// The lock, checking the segment's size first when `check_size`.
    #[inline]
    fn lock_checking(&self, wait: Wait, check_size: bool) -> Result<LockGuard<'_>> {
        let Some(seg) = &self.segment else {
            return Err(self.not_attached_for_lock());
        };
        // One path builds the guard: a second one (from the cold path) made the compiler
        // assemble the result in one place and copy it to another, stalling on the copy.
        let sem = match self.lock.get() {
            Some(sem) => sem,
            None => self.open_lock()?,
        };
        match Locked::acquire(LockRef::Semaphore(sem, &self.inproc), seg, wait, &self.key) {
            Ok(locked) if check_size => match self.size_unchanged(seg) {
                Ok(()) => Ok(LockGuard::new(locked, &self.key)),
                Err(err) => Err(self.lock_failed(err)), // `locked` unlocks as it drops
            },
            Ok(locked) => Ok(LockGuard::new(locked, &self.key)),
            Err(err) => Err(self.lock_failed(err)),
        }
    }

    /// `InvalidSize` when another process has shrunk the segment's object below what this
    /// object maps (only a POSIX segment can be shrunk).
    #[cold]
    fn size_unchanged(&self, seg: &Segment) -> Result<()> {
        match seg.size_now() {
            Ok(Some(now)) if now < seg.len() as u64 => Err(self
                .make_error(ErrorKind::InvalidSize, Operation::Lock)
                .with_detail(format!(
                    "another process shrank the segment to {now} bytes (this attachment maps \
                     {}): its bytes are not lent",
                    seg.len()
                ))),
            Ok(_) => Ok(()),
            Err(e) => Err(self
                .make_error(ErrorKind::Unknown, Operation::Lock)
                .with_errno(e.raw_os_error().unwrap_or(0))
                .with_detail("cannot read the segment's size")),
        }
    }

    /// Copies `buf.len()` bytes at `offset` out of the segment, under the lock (taken and
    /// released here, waiting as [`lock`](SharedMemory::lock) does). Never dies of SIGBUS,
    /// whatever other processes do: where another process can shrink the segment (POSIX),
    /// the bytes are read from its file, not from the mapping, and what is gone is
    /// [`ErrorKind::InvalidSize`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`] when `offset + buf.len()` passes the segment's size, or the
    /// segment was shrunk; otherwise as [`lock`](SharedMemory::lock).
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.read_at_with(offset, buf, Wait::Forever)
    }

    /// [`read_at`](SharedMemory::read_at), waiting at most `timeout` for the lock; a zero
    /// `timeout` does not wait.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when the lock stayed held (a zero `timeout`: it was held);
    /// otherwise as [`read_at`](SharedMemory::read_at).
    pub fn read_at_timeout(&self, offset: usize, buf: &mut [u8], timeout: Duration) -> Result<()> {
        let wait = if timeout.is_zero() {
            Wait::Poll
        } else {
            Wait::For(timeout)
        };
        self.read_at_with(offset, buf, wait).map_err(|e| {
            if e.kind() == ErrorKind::WouldBlock {
                e.with_kind(ErrorKind::Timeout)
            } else {
                e
            }
        })
    }

    fn read_at_with(&self, offset: usize, buf: &mut [u8], wait: Wait) -> Result<()> {
        let Some(seg) = &self.segment else {
            return Err(self.not_attached_for_lock());
        };
        if offset
            .checked_add(buf.len())
            .map_or(true, |end| end > seg.len())
        {
            return Err(self.record_err(
                self.make_error(ErrorKind::InvalidSize, Operation::Lock)
                    .with_detail(format!(
                        "{} bytes at offset {offset} run past the end of the segment ({} \
                         bytes)",
                        buf.len(),
                        seg.len()
                    )),
            ));
        }
        // No size check: the read itself finds what is gone.
        let guard = self.lock_checking(wait, false)?;
        let read = seg
            .read_at(offset, buf)
            .map_err(|e| self.record_err(e.with_key(Arc::clone(&self.key_text))));
        drop(guard);
        read
    }

    /// Copies `buf.len()` bytes at `offset` out of the segment **without taking the lock**:
    /// a way to rescue data from a segment whose lock is stuck (a Qt process that died
    /// holding a POSIX lock, which nothing gives back). Another process may be writing
    /// meanwhile, so the copy may be torn or inconsistent; it is a copy into `buf`, never a
    /// slice of the shared bytes, and like [`read_at`](SharedMemory::read_at) never dies of
    /// SIGBUS. Use [`read_at`](SharedMemory::read_at) whenever the lock can be had.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`] when `offset + buf.len()` passes the segment's size, or the
    /// segment was shrunk; [`ErrorKind::NotAttached`] when not attached.
    pub fn read_at_unlocked(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let Some(seg) = &self.segment else {
            return Err(self.not_attached_for_lock());
        };
        if offset
            .checked_add(buf.len())
            .map_or(true, |end| end > seg.len())
        {
            return Err(self.record_err(
                self.make_error(ErrorKind::InvalidSize, Operation::Lock)
                    .with_detail(format!(
                        "{} bytes at offset {offset} run past the end of the segment ({} \
                         bytes)",
                        buf.len(),
                        seg.len()
                    )),
            ));
        }
        seg.read_at_unlocked(offset, buf)
            .map_err(|e| self.record_err(e.with_key(Arc::clone(&self.key_text))))
    }

    /// Checks that no other process has shrunk the segment below what this object maps:
    /// the check [`set_check_size_on_lock`](SharedMemory::set_check_size_on_lock) makes at
    /// every lock, for a caller that makes it only when it is about to touch the bytes (a
    /// lock taken and released without touching them needs none). Only a POSIX segment can
    /// be shrunk (a peer's `ftruncate`): one `fstat` there, nothing on System V or Windows.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`] when the segment was shrunk (touching its missing pages
    /// would be SIGBUS); [`ErrorKind::NotAttached`] when not attached;
    /// [`ErrorKind::Unknown`] when the size cannot be read.
    pub fn check_size(&self) -> Result<()> {
        let Some(seg) = &self.segment else {
            let err = self.make_error(ErrorKind::NotAttached, Operation::Lock);
            return Err(self.record_err(err.with_detail("not attached")));
        };
        self.size_unchanged(seg).map_err(|e| self.record_err(e))
    }

    /// Whether [`lock`](SharedMemory::lock) checks, once it holds the lock, that no other
    /// process has shrunk the segment below what this object maps. Off by default.
    pub fn check_size_on_lock(&self) -> bool {
        self.check_size
    }

    /// Makes [`lock`](SharedMemory::lock) (and `try_lock`, `lock_timeout`) check, once it
    /// holds the lock, that no other process has shrunk the segment below what this object
    /// maps, and fail with [`ErrorKind::InvalidSize`] instead of lending bytes whose pages
    /// are gone (touching them is SIGBUS). Only a POSIX segment can be shrunk (a peer's
    /// `ftruncate`); the check is one `fstat` per lock there (see `BENCHMARKS.md`), nothing
    /// on System V. A peer that shrinks the segment while you hold the lock still can crash
    /// you: with untrusted peers, copy out with [`read_at`](SharedMemory::read_at).
    pub fn set_check_size_on_lock(&mut self, check: bool) {
        self.check_size = check;
    }

    /// The lock of an object attached without it (POSIX): opened at the first `lock()`.
    #[cold]
    fn open_lock(&self) -> Result<&Semaphore> {
        match open_lock_of(&self.key, SemOpen::OpenOrCreate, self.mode, Operation::Lock) {
            // Another thread may have opened it meanwhile: then its handle is the one kept.
            Ok((sem, _created)) => drop(self.lock.set(sem)),
            Err(e) => {
                let kind = match e.kind() {
                    ErrorKind::Unknown => ErrorKind::LockError,
                    kind => kind,
                };
                return Err(self.record_err(e.with_kind(kind)));
            }
        }
        self.lock.get().ok_or_else(|| self.not_attached_for_lock())
    }

    #[cold]
    fn not_attached_for_lock(&self) -> Error {
        let err = self
            .make_error(ErrorKind::LockError, Operation::Lock)
            .with_detail("not attached: create() or attach() first");
        self.record_err(err)
    }

    #[cold]
    fn lock_failed(&self, err: Error) -> Error {
        self.record_err(
            err.with_op(Operation::Lock)
                .with_key(Arc::clone(&self.key_text)),
        )
    }

    /// A pointer to the first byte of the segment, null when not attached (Qt's
    /// `constData`).
    ///
    /// Reading through it is a data race unless you hold the lock and every other process
    /// honours it; prefer [`lock`](SharedMemory::lock) and the guard's slices.
    pub fn as_ptr(&self) -> *const u8 {
        self.segment
            .as_ref()
            .map_or(std::ptr::null(), |s| s.ptr().cast_const())
    }

    /// A mutable pointer to the first byte of the segment, null when not attached (Qt's
    /// `data`). Writing through it on a read-only attachment faults.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.segment
            .as_ref()
            .map_or(std::ptr::null_mut(), RawSegment::ptr)
    }

    /// The kind of the last error, `None` when the last operation succeeded (Qt's `error`).
    pub fn error(&self) -> Option<ErrorKind> {
        self.last_error().map(|e| e.kind())
    }

    /// The message of the last error, empty when the last operation succeeded (Qt's
    /// `errorString`).
    pub fn error_string(&self) -> String {
        self.last_error().map(|e| e.to_string()).unwrap_or_default()
    }

    /// The last error.
    pub fn last_error(&self) -> Option<Error> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The permission bits `create` gives the segment and its lock (default `0o600`).
    pub fn permissions(&self) -> u32 {
        self.mode
    }

    /// Sets the permission bits `create` gives the segment and its lock (Unix mode bits;
    /// default `0o600`, Qt's). Use e.g. `0o660` to share with a group.
    pub fn set_permissions(&mut self, mode: u32) {
        self.mode = mode & 0o777;
    }

    /// Removes the segment named by `key` if nobody is attached to it, with its key file and
    /// lock: what a crashed last user leaves behind. Returns whether a segment was removed.
    ///
    /// The check and the removal happen under the segment's lock, so a process that is
    /// attaching (under the same lock) is never cut off.
    pub fn remove_orphan(key: &NativeKey) -> Result<bool> {
        SharedMemory::remove_with(key, true)
    }

    /// Removes the segment named by `key`, with its key file and lock, even while processes
    /// are attached (they keep their mapping until they detach; nobody new can attach).
    pub fn force_remove(key: &NativeKey) -> Result<bool> {
        SharedMemory::remove_with(key, false)
    }

    fn remove_with(key: &NativeKey, only_if_unattached: bool) -> Result<bool> {
        if key.is_empty() {
            return Err(
                Error::new(ErrorKind::KeyError, Operation::Remove, key.to_string())
                    .with_detail("key is empty"),
            );
        }
        // Removing an orphan waits for the lock (its holder may be attaching); forcing does
        // not wait for a lock a live process holds.
        let wait = if only_if_unattached {
            Wait::For(Duration::from_secs(10))
        } else {
            Wait::Poll
        };
        let (sem, locked) =
            match lock_by_name(key, SemOpen::Existing, 0o600, Operation::Remove, wait) {
                Ok((sem, _created)) => (sem, true),
                // No lock at all: nobody is creating, attaching or detaching (they would hold or
                // have made it); what may be left is a segment, or nothing.
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    let removed = Segment::remove(key, only_if_unattached);
                    if matches!(removed, Ok(true)) || !Segment::exists(key) {
                        remove_companion(key);
                    }
                    return removed;
                }
                Err(err) if only_if_unattached || err.kind() != ErrorKind::WouldBlock => {
                    return Err(err)
                }
                Err(_) => (
                    Semaphore::open(&key.lock_key(), 1, SemOpen::Existing, 0o600)?.0,
                    false,
                ),
            };
        let removed = Segment::remove(key, only_if_unattached);
        let gone = matches!(removed, Ok(true)) || !Segment::exists(key);
        if gone {
            remove_companion(key);
        }
        if gone && !sem.in_use_elsewhere() {
            let _ = if locked {
                sem.remove_while_held()
            } else {
                sem.remove()
            };
        } else if locked {
            let _ = sem.release(1, Undo::Yes, Operation::Remove);
        }
        removed
    }

    /// Whether create and attach map every page at once (default false).
    pub fn populate(&self) -> bool {
        self.populate
    }

    /// Makes [`create`](SharedMemory::create) and [`attach`](SharedMemory::attach) map every
    /// page of the segment at once instead of one page fault at a time on first touch (Qt
    /// always faults page by page).
    ///
    /// * At **attach**, the pages are mapped for reading (`MADV_POPULATE_READ`): a process
    ///   that reads a large segment it did not write reads it several times faster on its
    ///   first pass (see BENCHMARKS.md), for a longer `attach`.
    /// * At **create**, the pages are also allocated (`MADV_POPULATE_WRITE`), so that a full
    ///   `/dev/shm` or memory limit fails `create` with [`ErrorKind::OutOfResources`] (and the
    ///   segment is removed again) instead of killing a later writer with SIGBUS.
    ///
    /// Without it create and attach cost the same for 4 KiB and 8 GiB (no page is touched);
    /// `create` of a POSIX segment still refuses, with `OutOfResources`, a size larger than
    /// the room left in `/dev/shm`.
    ///
    /// # Examples
    ///
    /// ```
    /// # use qshm::{AccessMode, SharedMemory};
    /// # let key = format!("qshm-doc-populate-{}", std::process::id());
    /// let mut shm = SharedMemory::with_key(&key);
    /// shm.set_populate(true);
    /// shm.create(1 << 20, AccessMode::ReadWrite)?; // 1 MiB, allocated and mapped now
    /// # Ok::<(), qshm::Error>(())
    /// ```
    pub fn set_populate(&mut self, populate: bool) {
        self.populate = populate;
    }

    /// What the last detach does with the segment (default [`LastDetach::Remove`]).
    pub fn last_detach(&self) -> LastDetach {
        self.last_detach
    }

    /// Sets what the last detach does with the segment. [`LastDetach::Keep`] is Qt's POSIX
    /// behaviour on Linux, for programs that rely on the segment outliving its users.
    pub fn set_last_detach(&mut self, policy: LastDetach) {
        self.last_detach = policy;
    }

    fn make_error(&self, kind: ErrorKind, op: Operation) -> Error {
        Error::new(kind, op, Arc::clone(&self.key_text))
    }

    fn record<T>(&self, result: Result<T>) -> Result<T> {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = result.as_ref().err().cloned();
        result
    }

    fn record_err(&self, err: Error) -> Error {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(err.clone());
        err
    }
}

impl Default for SharedMemory {
    fn default() -> SharedMemory {
        SharedMemory::new()
    }
}

impl Drop for SharedMemory {
    fn drop(&mut self) {
        if self.is_attached() {
            // Errors are ignored: the only way to report them would be through panicking.
            let _ = self.detach();
        }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemory")
            .field("key", &self.key)
            .field("attached", &self.is_attached())
            .field("access", &self.access_mode())
            .field("size", &self.size())
            .field("ptr", &self.as_ptr())
            .finish()
    }
}

#[cfg(test)]
mod tests;
