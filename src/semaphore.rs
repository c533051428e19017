//! [`SystemSemaphore`]: Qt's `QSystemSemaphore`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::backend::{RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{IpcKind, KeyType, NativeKey, TempDirStyle};
use crate::sys::Semaphore;

/// How [`SystemSemaphore`] treats an existing semaphore (Qt's `QSystemSemaphore::AccessMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SemaphoreMode {
    /// Open the semaphore, creating it with the initial value if it does not exist.
    Open,
    /// Create the semaphore, or reset an existing one to the initial value, and own it.
    Create,
}

/// A named counting semaphore shared between processes: Qt's `QSystemSemaphore`.
///
/// It meets a Qt program's `QSystemSemaphore` with the same key. The object that created
/// the semaphore (or opened it in [`SemaphoreMode::Create`]) owns it and removes it when
/// dropped, as Qt does; [`set_remove_on_drop`](SystemSemaphore::set_remove_on_drop) changes
/// that.
///
/// # Differences from Qt
///
/// Qt undoes every operation of a process when it exits (System V `SEM_UNDO`), so a
/// `release` by a process that then exits is silently taken back, and a process that only
/// releases fails after 32 767 releases. Here [`acquire`](SystemSemaphore::acquire) and
/// [`release`](SystemSemaphore::release) are plain counting operations that stay done.
/// For the crash-safe pattern (a holder that dies gives its unit back), use
/// [`lock`](SystemSemaphore::lock) (and `try_lock`, `lock_timeout`), whose guard gives the
/// unit back when dropped or when the process dies.
///
/// # Examples
///
/// ```
/// use qshm::{SemaphoreMode, SystemSemaphore};
/// # let key = format!("qshm-doc-sem-{}", std::process::id());
/// let sem = SystemSemaphore::new(&key, 1, SemaphoreMode::Create)?;
/// sem.acquire()?;
/// // ... the one resource is ours ...
/// sem.release(1)?;
/// # Ok::<(), qshm::Error>(())
/// ```
pub struct SystemSemaphore {
    key: NativeKey,
    sem: Semaphore,
    owner: bool,
    last_error: Mutex<Option<Error>>,
}

impl SystemSemaphore {
    /// Opens or creates the semaphore for the Qt key `key` (named as Qt names it, with
    /// Qt's default type: System V on Linux).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyError`] for an empty key, [`ErrorKind::PermissionDenied`],
    /// [`ErrorKind::OutOfResources`] (`initial` above 32 767, or no more semaphores), and
    /// the other kinds of the system calls.
    pub fn new(key: &str, initial: u32, mode: SemaphoreMode) -> Result<SystemSemaphore> {
        let native = SystemSemaphore::legacy_native_key(key, KeyType::legacy_default_for_os());
        SystemSemaphore::with_native_key(native, initial, mode)
    }

    /// Opens or creates the semaphore with a native key.
    ///
    /// # Errors
    ///
    /// As [`SystemSemaphore::new`].
    pub fn with_native_key(
        key: NativeKey,
        initial: u32,
        mode: SemaphoreMode,
    ) -> Result<SystemSemaphore> {
        if key.is_empty() {
            return Err(Error::new(
                ErrorKind::KeyError,
                Operation::SemaphoreOpen,
                key.to_string(),
            )
            .with_detail("key is empty"));
        }
        let how = match mode {
            SemaphoreMode::Open => SemOpen::OpenOrCreate,
            SemaphoreMode::Create => SemOpen::CreateOrReset,
        };
        let (sem, created) = Semaphore::open(&key, initial, how, 0o600)?;
        // Before any guard exists: a child forked from now on is told apart.
        crate::sys::fork::watch();
        Ok(SystemSemaphore {
            key,
            sem,
            owner: created || mode == SemaphoreMode::Create,
            last_error: Mutex::new(None),
        })
    }

    /// The native key Qt derives for a semaphore's Qt key
    /// (`QSystemSemaphore::legacyNativeKey`): `…/qipc_systemsem_<letters><sha1>`.
    ///
    /// ```
    /// use qshm::{KeyType, SystemSemaphore};
    /// let k = SystemSemaphore::legacy_native_key("hello", KeyType::PosixRealtime);
    /// assert_eq!(k.native_key(), "/qipc_systemsem_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
    /// ```
    pub fn legacy_native_key(key: &str, key_type: KeyType) -> NativeKey {
        NativeKey::legacy_for(IpcKind::Semaphore, key, key_type, TempDirStyle::Current)
    }

    /// The Qt key, if the semaphore was named by one.
    pub fn key(&self) -> Option<&str> {
        self.key.legacy_key()
    }

    /// The native key.
    pub fn native_key(&self) -> &NativeKey {
        &self.key
    }

    /// Takes one unit, waiting until one is available.
    ///
    /// # Errors
    ///
    /// The kinds of the system call; the semaphore being removed meanwhile is not an error
    /// (it is opened again by name, as Qt does).
    pub fn acquire(&self) -> Result<()> {
        self.record(
            self.sem
                .acquire(Wait::Forever, Undo::No, Operation::Acquire)
                .map(drop),
        )
    }

    /// Takes one unit if one is available, without waiting.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WouldBlock`] when none is.
    pub fn try_acquire(&self) -> Result<()> {
        self.record(
            self.sem
                .acquire(Wait::Poll, Undo::No, Operation::Acquire)
                .map(drop),
        )
    }

    /// [`acquire`](SystemSemaphore::acquire) as a future, for any executor (feature
    /// `async`; see [`qshm::asynchronous`](crate::asynchronous)): tries, and again after a
    /// backoff of 50 µs to 2 ms, with no thread of its own. Dropping it takes nothing.
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn acquire_async(&self) -> impl std::future::Future<Output = Result<()>> + '_ {
        crate::asynchronous::retrying(self.key.native_key().to_owned(), move || self.try_acquire())
    }

    /// [`lock`](SystemSemaphore::lock) (a crash-safe unit) as a future (feature `async`),
    /// as [`acquire_async`](SystemSemaphore::acquire_async).
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn lock_async(&self) -> impl std::future::Future<Output = Result<SemaphoreGuard<'_>>> + '_ {
        crate::asynchronous::retrying(self.key.native_key().to_owned(), move || self.try_lock())
    }

    /// Takes one unit, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when none became available.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<()> {
        self.record(
            self.sem
                .acquire(Wait::For(timeout), Undo::No, Operation::Acquire)
                .map(drop),
        )
    }

    /// Takes one unit for as long as the guard lives, crash-safely: if this process dies
    /// first, the unit comes back (System V: the kernel's `SEM_UNDO`; POSIX: the next
    /// waiter recognises the dead holder from qshm's owner record and takes the unit over,
    /// and its guard reports [`owner_died`](SemaphoreGuard::owner_died)). The POSIX record
    /// names one holder, so recovery is exact for a binary semaphore (value 0 or 1).
    ///
    /// # Errors
    ///
    /// As [`acquire`](SystemSemaphore::acquire).
    pub fn lock(&self) -> Result<SemaphoreGuard<'_>> {
        self.lock_with(Wait::Forever)
    }

    /// As [`lock`](SystemSemaphore::lock), without waiting.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WouldBlock`] when no unit is available.
    pub fn try_lock(&self) -> Result<SemaphoreGuard<'_>> {
        self.lock_with(Wait::Poll)
    }

    /// As [`lock`](SystemSemaphore::lock), waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when no unit became available.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<SemaphoreGuard<'_>> {
        self.lock_with(Wait::For(timeout))
    }

    fn lock_with(&self, wait: Wait) -> Result<SemaphoreGuard<'_>> {
        let owner_died = self.record(self.sem.acquire(wait, Undo::Yes, Operation::Acquire))?;
        Ok(SemaphoreGuard {
            sem: self,
            owner_died,
            generation: crate::sys::fork::generation(),
            _not_send: std::marker::PhantomData,
        })
    }

    /// Gives back `n` units (0 does nothing), all or nothing.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfResources`], with nothing released, when the value would pass the
    /// system's maximum (32 767 for System V, `i32::MAX` for POSIX).
    pub fn release(&self, n: u32) -> Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.record(self.sem.release(n, Undo::No, Operation::Release))
    }

    /// Whether dropping this object removes the semaphore.
    pub fn removes_on_drop(&self) -> bool {
        self.owner
    }

    /// Sets whether dropping this object removes the semaphore (by default the object that
    /// created it does, as in Qt).
    pub fn set_remove_on_drop(&mut self, remove: bool) {
        self.owner = remove;
    }

    /// The kind of the last error, `None` when the last operation succeeded.
    pub fn error(&self) -> Option<ErrorKind> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Error::kind)
    }

    /// The message of the last error, empty when the last operation succeeded.
    pub fn error_string(&self) -> String {
        let last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref().map(ToString::to_string).unwrap_or_default()
    }

    fn record<T>(&self, result: Result<T>) -> Result<T> {
        let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        *last = result.as_ref().err().cloned();
        result
    }
}

impl Drop for SystemSemaphore {
    fn drop(&mut self) {
        if self.owner {
            // Errors are ignored: the only way to report them would be through panicking.
            let _ = self.sem.remove();
        }
    }
}

impl fmt::Debug for SystemSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemSemaphore")
            .field("key", &self.key)
            .field("owner", &self.owner)
            .finish()
    }
}

/// One unit of a [`SystemSemaphore`], given back when dropped or when the process dies.
///
/// The guard is neither `Send` nor `Sync`: it is given back by the thread that took it (on
/// Windows the kernel records the taking thread as the owner of the mutex through which a
/// dead holder is recognised).
#[must_use = "if unused the unit is given back at once"]
#[clippy::has_significant_drop]
pub struct SemaphoreGuard<'a> {
    sem: &'a SystemSemaphore,
    owner_died: bool,
    /// The `fork` generation that took the unit: a copy in a forked child gives nothing back
    /// (the unit is the parent's).
    generation: u32,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl SemaphoreGuard<'_> {
    /// Whether a previous holder died holding its unit (POSIX keys; System V gives the unit
    /// back silently). It stays true for later holders until one calls
    /// [`mark_consistent`](SemaphoreGuard::mark_consistent).
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Declares whatever the semaphore protects consistent again after an owner died.
    pub fn mark_consistent(&mut self) {
        self.sem.sem.mark_consistent();
        self.owner_died = false;
    }

    /// Gives the unit back, reporting failure. In a forked child, whose copy of the guard
    /// holds nothing (the unit is the parent's), it gives nothing back and says so
    /// ([`ErrorKind::LockError`]).
    pub fn release(self) -> Result<()> {
        let (sem, forked) = (self.sem, self.forked());
        std::mem::forget(self);
        if forked {
            let err = Error::new(
                ErrorKind::LockError,
                Operation::Release,
                sem.native_key().to_string(),
            )
            .with_detail("a guard copied by fork: the unit is the parent's, and stays taken");
            return sem.record(Err(err));
        }
        sem.record(sem.sem.release(1, Undo::Yes, Operation::Release))
    }

    fn forked(&self) -> bool {
        self.generation != crate::sys::fork::generation()
    }
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        if !self.forked() {
            let _ = self.sem.sem.release(1, Undo::Yes, Operation::Release);
        }
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard")
            .field("key", &self.sem.key)
            .field("owner_died", &self.owner_died)
            .finish()
    }
}
