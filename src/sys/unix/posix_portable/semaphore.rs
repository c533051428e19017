//! The lock and `SystemSemaphore`: the C library's named semaphore (`sem_open`), with the
//! owner record in its companion.

use super::*;
use crate::sys::portable::{hit, Backoff, Fallback};

/// The largest value of a POSIX semaphore (`SEM_VALUE_MAX`): 32767 on Apple platforms,
/// `INT_MAX` elsewhere.
const SEM_VALUE_MAX: u32 = if cfg!(qshm_apple) {
    i16::MAX as u32
} else {
    i32::MAX as u32
};

/// A named POSIX semaphore opened by this backend.
pub(crate) struct PortablePosixSemaphore {
    sem: NonNull<libc::sem_t>,
    key: NativeKey,
    text: Arc<str>,
    name: CString,
    /// Its companion, which this handle counts itself a user of while it lives.
    companion: Arc<Companion>,
}

// SAFETY: a `sem_t *` from `sem_open` may be used from any thread (POSIX semaphores are
// thread-safe) and closed on any; the companion is Send and Sync.
unsafe impl Send for PortablePosixSemaphore {}
// SAFETY: as above: `sem_wait`/`sem_post` may run on one semaphore from several threads.
unsafe impl Sync for PortablePosixSemaphore {}

impl std::fmt::Debug for PortablePosixSemaphore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortablePosixSemaphore")
            .field("name", &self.name)
            .finish()
    }
}

impl crate::backend::sealed::Sealed for PortablePosixSemaphore {}

/// `sem_open(name, flags, mode, value)`.
fn sem_open(
    name: &CString,
    flags: std::ffi::c_int,
    mode: u32,
    value: u32,
) -> std::result::Result<NonNull<libc::sem_t>, i32> {
    // SAFETY: `name` is a NUL-terminated string; with O_CREAT the two variadic arguments
    // are the mode and the initial value, passed as `unsigned int` (what a `mode_t` is
    // promoted to); without it they are ignored.
    let sem = unsafe {
        libc::sem_open(
            name.as_ptr(),
            flags,
            (mode & 0o777) as std::ffi::c_uint,
            value as std::ffi::c_uint,
        )
    };
    // SEM_FAILED is the documented failure; a null handle (which no C library returns) is
    // taken for one too.
    match NonNull::new(sem) {
        Some(sem) if sem.as_ptr() != libc::SEM_FAILED => Ok(sem),
        _ => Err(errno()),
    }
}

impl PortablePosixSemaphore {
    fn ctx(&self, op: Operation) -> Ctx<'_> {
        Ctx::shared(op, &self.key, &self.text)
    }

    fn try_wait(&self) -> std::result::Result<(), i32> {
        loop {
            // SAFETY: `self.sem` is a live semaphore from sem_open, closed only in Drop.
            if unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {
                return Ok(());
            }
            match errno() {
                libc::EINTR => continue,
                e => return Err(e),
            }
        }
    }

    /// The value, where the C library tells it (Apple platforms have no `sem_getvalue`).
    #[cfg(qshm_apple)]
    fn value(&self) -> Option<u32> {
        None
    }

    /// The value, where the C library tells it (Apple platforms have no `sem_getvalue`).
    #[cfg(not(qshm_apple))]
    fn value(&self) -> Option<u32> {
        let mut v: std::ffi::c_int = 0;
        // SAFETY: as in `try_wait`; `v` is a valid out-pointer.
        let rc = unsafe { libc::sem_getvalue(self.sem.as_ptr(), &mut v) };
        (rc == 0).then(|| v.max(0) as u32)
    }

    fn post(&self) -> std::result::Result<(), i32> {
        // SAFETY: as in `try_wait`.
        if unsafe { libc::sem_post(self.sem.as_ptr()) } == 0 {
            Ok(())
        } else {
            Err(errno())
        }
    }

    /// Waits for a unit until `deadline` (`None`: for ever) without an owner record.
    fn wait_plain(&self, deadline: Option<Instant>) -> std::result::Result<(), i32> {
        match self.try_wait() {
            Err(libc::EAGAIN) => {}
            done => return done,
        }
        let _waiting = self.companion.waiting();
        let Some(deadline) = deadline else {
            loop {
                // SAFETY: as in `try_wait`.
                if unsafe { libc::sem_wait(self.sem.as_ptr()) } == 0 {
                    return Ok(());
                }
                match errno() {
                    libc::EINTR => continue,
                    e => return Err(e),
                }
            }
        };
        hit(Fallback::PosixTimed);
        let mut backoff = Backoff::new();
        loop {
            match self.try_wait() {
                Err(libc::EAGAIN) if backoff.sleep_until(deadline) => {}
                Err(libc::EAGAIN) => return Err(libc::ETIMEDOUT),
                other => return other,
            }
        }
    }

    /// Whether a holder died and nobody has declared the data consistent since.
    fn suspect(&self) -> bool {
        self.companion.state().load(Ordering::Acquire) & 1 != 0
    }

    /// Takes the dead holder's unit when the record names a holder the kernel says is gone.
    /// Exactly one waiter wins the compare-and-swap.
    fn take_over_from_dead_holder(&self, me: u64) -> bool {
        let record = self.companion.record();
        let old = record.load(Ordering::Acquire);
        if old == 0 || old == me || self.companion.is_alive(old) {
            return false;
        }
        let taken = record
            .compare_exchange(old, me, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if taken {
            self.companion.state().fetch_or(1, Ordering::AcqRel);
        }
        taken
    }

    /// The segment lock: `sem_trywait` polled with a backoff, recording the holder, asking
    /// every [`SLICE`] by the clock whether the recorded holder died.
    fn acquire_tracked(&self, wait: Wait, op: Operation) -> Result<bool> {
        let me = self.companion.token();
        let record = self.companion.record();
        let mut backoff = Backoff::new();
        // (deadline, next liveness check), from the first miss: a free lock is taken
        // without reading the clock.
        let mut timing: Option<(Option<Instant>, Instant)> = None;
        let mut waiting = None;
        loop {
            match self.try_wait() {
                Ok(()) => {
                    record.store(me, Ordering::Release);
                    return Ok(self.suspect());
                }
                Err(libc::EAGAIN) => {}
                Err(e) => return Err(self.ctx(op).err(e)),
            }
            let now = Instant::now();
            let (deadline, next_check) = timing.get_or_insert_with(|| {
                let deadline = match wait {
                    Wait::Poll => Some(now),
                    _ => super::super::deadline(wait),
                };
                (deadline, now)
            });
            if now >= *next_check {
                if self.take_over_from_dead_holder(me) {
                    return Ok(true);
                }
                *next_check = now + SLICE;
            }
            if deadline.is_some_and(|d| now >= d) {
                let e = if wait == Wait::Poll {
                    libc::EAGAIN
                } else {
                    libc::ETIMEDOUT
                };
                return Err(self.ctx(op).err(e));
            }
            if waiting.is_none() {
                hit(Fallback::PosixTimed);
                waiting = Some(self.companion.waiting());
            }
            let until = deadline.map_or(*next_check, |d| d.min(*next_check));
            if !backoff.sleep_until(until) {
                std::thread::yield_now();
            }
        }
    }
}

/// Removes the companion of the semaphore `name` if the semaphore is gone (a Qt process
/// unlinks the lock it created when it ends, and knows nothing of companions).
pub(super) fn remove_orphaned_companion(name: &CString) {
    match sem_open(name, 0, 0, 0) {
        Ok(sem) => {
            // SAFETY: the handle this call opened, closed once.
            unsafe { libc::sem_close(sem.as_ptr()) };
        }
        Err(libc::ENOENT) => {
            let path = companion::path_of(Kind::Semaphore, name.to_str().unwrap_or_default());
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// Gives a semaphore this call created exactly the permissions `mode`, as System V objects
/// get them (`sem_open` applies the umask), where the C library keeps it in a file of a known
/// name: glibc's `/dev/shm/sem.<name>`. macOS keeps semaphores in the kernel and FreeBSD's
/// libc in its shared memory namespace, neither with a way to change the mode of a `sem_t`:
/// the umask applies there.
fn exact_mode(name: &CString, mode: u32) {
    let rest = name.to_str().unwrap_or_default().trim_start_matches('/');
    let path = if cfg!(target_os = "linux") {
        format!("/dev/shm/sem.{rest}")
    } else {
        return;
    };
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o777));
}

impl PortablePosixSemaphore {
    #[cfg(target_os = "linux")]
    fn same_object_by_name(&self) -> bool {
        match sem_open(&self.name, 0, 0, 0) {
            Ok(other) => {
                // SAFETY: `other` is a handle this call opened, closed once here (where it
                // is `self.sem`, the C library counts the two opens).
                unsafe { libc::sem_close(other.as_ptr()) };
                other == self.sem
            }
            Err(_) => false,
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn same_object_by_name(&self) -> bool {
        true
    }
}

impl Drop for PortablePosixSemaphore {
    fn drop(&mut self) {
        // SAFETY: this handle's own `sem_open`, closed once, here; waits borrow `self`, so
        // nobody waits on it through this handle.
        unsafe { libc::sem_close(self.sem.as_ptr()) };
    }
}

impl RawSemaphore for PortablePosixSemaphore {
    /// `sem_open(name, O_CREAT|O_EXCL, mode, initial)`, or `sem_open(name, 0)` when it
    /// exists (Qt's Open mode); the companion is opened first (see `still_named`).
    fn open(
        key: &NativeKey,
        initial: u32,
        how: SemOpen,
        mode: u32,
    ) -> Result<(PortablePosixSemaphore, bool)> {
        let ctx = Ctx::new(Operation::SemaphoreOpen, key);
        let name = object_name(ctx)?;
        if initial > SEM_VALUE_MAX {
            return Err(ctx.kind(
                ErrorKind::OutOfResources,
                "initial value above SEM_VALUE_MAX",
            ));
        }
        let text = name.to_str().unwrap_or_default();
        if how == SemOpen::Existing {
            // Nothing is created for a semaphore that is not there, not even a companion.
            let probe = sem_open(&name, 0, 0, 0).map_err(|e| ctx.err(e))?;
            // SAFETY: the handle this call opened, closed once.
            unsafe { libc::sem_close(probe.as_ptr()) };
        }
        let companion = companion(ctx, Kind::Semaphore, text, Some(mode), false)?;
        let made = |sem| PortablePosixSemaphore {
            sem,
            key: key.clone(),
            text: key.to_string().into(),
            name: name.clone(),
            companion: Arc::clone(&companion),
        };
        let mut create = how == SemOpen::CreateOrOpen;
        for _ in 0..100 {
            if create {
                match sem_open(&name, libc::O_CREAT | libc::O_EXCL, mode, initial) {
                    Ok(sem) => {
                        exact_mode(&name, mode);
                        // A new semaphore starts with no record and nothing suspect.
                        companion.record().store(0, Ordering::Release);
                        companion.state().store(0, Ordering::Release);
                        return Ok((made(sem), true));
                    }
                    Err(libc::EEXIST) => {}
                    Err(e) => return Err(ctx.err(e)),
                }
            }
            match sem_open(&name, 0, 0, 0) {
                Ok(sem) => {
                    let sem = made(sem);
                    if how == SemOpen::CreateOrReset {
                        // A reset semaphore has no holder: no record to take over.
                        companion.record().store(0, Ordering::Release);
                        companion.state().store(0, Ordering::Release);
                        while sem.try_wait().is_ok() {}
                        for _ in 0..initial {
                            sem.post().map_err(|e| ctx.err(e))?;
                        }
                    }
                    return Ok((sem, false));
                }
                Err(libc::ENOENT) if how != SemOpen::Existing => create = true,
                Err(e) => return Err(ctx.err(e)),
            }
        }
        Err(ctx.kind(
            ErrorKind::Unknown,
            "the semaphore kept vanishing while being opened",
        ))
    }

    fn acquire(&self, wait: Wait, undo: Undo, op: Operation) -> Result<bool> {
        match undo {
            Undo::Yes => self.acquire_tracked(wait, op),
            Undo::No => {
                let result = match wait {
                    Wait::Poll => self.try_wait(),
                    _ => self.wait_plain(super::super::deadline(wait)),
                };
                result.map(|()| false).map_err(|e| self.ctx(op).err(e))
            }
        }
    }

    /// `n` posts; a post refused (the maximum) takes back the ones made, and reports
    /// `OutOfResources`.
    fn release(&self, n: u32, undo: Undo, op: Operation) -> Result<()> {
        if undo == Undo::Yes {
            let record = self.companion.record();
            if record.load(Ordering::Relaxed) == self.companion.token() {
                record.store(0, Ordering::Release);
            }
        }
        // Refused before any post where it cannot fit (a consumer running meanwhile must
        // get nothing of a release reported failed); where the value cannot be read (macOS
        // has no sem_getvalue), a post refused at the maximum takes back the ones made.
        if u64::from(n) + u64::from(self.value().unwrap_or(0)) > u64::from(SEM_VALUE_MAX) {
            return Err(self.ctx(op).kind(
                ErrorKind::OutOfResources,
                "the release would pass SEM_VALUE_MAX",
            ));
        }
        for done in 0..n {
            if let Err(e) = self.post() {
                for _ in 0..done {
                    let _ = self.try_wait();
                }
                let err = self.ctx(op).err(e);
                return Err(if e == libc::EOVERFLOW {
                    err.with_kind(ErrorKind::OutOfResources)
                } else {
                    err
                });
            }
        }
        Ok(())
    }

    /// Not known here (no `sem_getvalue` on macOS, no waiter count anywhere).
    fn waiters(&self) -> usize {
        0
    }

    /// A thread of another qshm process waits for the semaphore (its companion's waiters'
    /// lock). One that opened it and has not begun to wait finds it removed when it has
    /// it (`still_named`), and opens it anew.
    fn in_use_elsewhere(&self) -> bool {
        self.companion.waited_for_elsewhere()
    }

    fn mark_consistent(&self) {
        self.companion.state().fetch_and(!1, Ordering::AcqRel);
    }

    /// A handle whose companion is no longer named serves a removed semaphore (the
    /// companion is removed after it). A semaphore Qt replaced under the same name (Qt's
    /// `Create` mode unlinks and recreates it, docs/qt-ipc.md §5) keeps the companion: glibc
    /// and musl hand out one `sem_t` per semaphore and process (they compare the file's
    /// inode), so opening the name again tells. macOS gives every `sem_open` a handle of its
    /// own, and FreeBSD's behaviour is not verified here: there a replaced semaphore goes
    /// unnoticed (a wait it shares with nobody, until the name is removed).
    fn still_named(&self) -> bool {
        self.companion.still_named() && self.same_object_by_name()
    }

    fn remove_while_held(&self) -> Result<()> {
        super::super::remove_then_release(self)
    }

    /// `sem_unlink`, then the companion (in this order: see `still_named`).
    fn remove(&self) -> Result<()> {
        // SAFETY: `name` is NUL-terminated.
        if unsafe { libc::sem_unlink(self.name.as_ptr()) } != 0 && errno() != libc::ENOENT {
            return Err(self.ctx(Operation::Remove).err(errno()));
        }
        if self.companion.still_named() {
            let _ = std::fs::remove_file(companion::path_of(
                Kind::Semaphore,
                self.name.to_str().unwrap_or_default(),
            ));
        }
        Ok(())
    }
}
