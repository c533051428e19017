//! Named semaphores (`CreateSemaphoreW`, maximum `MAXLONG`, as Qt makes them), and the lock
//! built on one: Qt's semaphore, so that Qt and qshm exclude each other, plus a named mutex
//! that only qshm processes take, through which the kernel reports a qshm holder's death.
//!
//! # The lock
//!
//! A qshm locker takes the mutex and the semaphore together, in one
//! `WaitForMultipleObjects(wait all)`: among qshm processes, owning the mutex and holding a
//! unit of the semaphore go together. It gives them back in the other order (the semaphore,
//! then the mutex). A waiter that has waited a slice (10 ms, doubling to 100 ms) asks the
//! mutex alone, without waiting:
//!
//! * `WAIT_ABANDONED`: its owner died holding it, and the waiter owns it now. The dead
//!   holder's unit is lost unless it died between its two releases: the waiter tries the
//!   semaphore without waiting; taken or not, it is the holder, told the owner died.
//! * free: no qshm process holds the lock (a Qt process may); the waiter lets go of the
//!   mutex and waits on.
//! * owned: a live qshm holder; wait on.
//!
//! Exactly one waiter can own an abandoned mutex, so exactly one takes over. What remains:
//! a Qt holder that dies blocks every locker for ever, as in Qt (`lock_timeout` and the
//! bounded detach turn that into errors); a qshm holder killed between its two releases,
//! while a Qt process takes the semaphore in that instant, is taken over while the Qt
//! process holds it. A mutex has one owner, so the `lock()` guards of one
//! `SystemSemaphore` exclude each other across qshm processes whatever its count; and a
//! mutex is owned by a thread, so a guard is released by the thread that took it.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ALREADY_EXISTS, ERROR_TOO_MANY_POSTS, WAIT_ABANDONED_0, WAIT_FAILED, WAIT_OBJECT_0,
    WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Threading::{
    CreateMutexW, CreateSemaphoreW, OpenSemaphoreW, ReleaseMutex, ReleaseSemaphore,
    WaitForMultipleObjects, WaitForSingleObject, INFINITE, SEMAPHORE_ALL_ACCESS,
};

use super::{deadline, last_error, os_error, wait_ms, wide_name};
use crate::backend::{RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::NativeKey;

/// Qt's maximum (`MAXLONG`).
const MAX_COUNT: i32 = i32::MAX;
/// First and longest slice a lock waiter waits before asking whether a qshm holder died.
const FIRST_SLICE: Duration = Duration::from_millis(10);
const LONGEST_SLICE: Duration = Duration::from_millis(100);

/// A named semaphore, and the owner mutex of the lock built on it (opened at its first
/// use as a lock).
#[derive(Debug)]
pub(crate) struct WinSemaphore {
    sem: OwnedHandle,
    /// The native key's text, for errors.
    text: String,
    /// The semaphore's name, from which the mutex's is made.
    name: String,
    owner: OnceLock<OwnedHandle>,
}

impl crate::backend::sealed::Sealed for WinSemaphore {}

/// The name of the owner mutex of the semaphore `name`: in the same namespace (`Global\`,
/// `Local\`), `qshm_owner_` and the SHA-1 of the name (so that it fits wherever the
/// semaphore's name does).
fn owner_name(name: &str) -> String {
    let (prefix, rest) = match name.find('\\') {
        Some(i) => name.split_at(i + 1),
        None => ("", name),
    };
    format!("{prefix}qshm_owner_{}", crate::key::sha1_hex(rest))
}

impl WinSemaphore {
    fn error(&self, op: Operation) -> Error {
        os_error(last_error(), op, self.text.as_str())
    }

    /// The owner mutex, created or opened on first use.
    fn owner(&self, op: Operation) -> Result<&OwnedHandle> {
        if let Some(m) = self.owner.get() {
            return Ok(m);
        }
        let key = NativeKey::new(owner_name(&self.name), crate::key::KeyType::Windows);
        let wide = wide_name(key.native_key(), op, &key)?;
        // SAFETY: creates or opens a named mutex, not owned; the name is NUL-terminated and
        // outlives the call.
        let raw = unsafe { CreateMutexW(std::ptr::null(), 0, wide.as_ptr()) };
        if raw.is_null() {
            return Err(self.error(op));
        }
        // SAFETY: a handle this call just opened and nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(raw) };
        Ok(self.owner.get_or_init(|| handle))
    }

    /// One `WaitForSingleObject` on the semaphore: `Ok(true)` taken, `Ok(false)` timed out.
    fn wait_sem(&self, ms: u32, op: Operation) -> Result<bool> {
        // SAFETY: waits on a live handle.
        match unsafe { WaitForSingleObject(self.sem.as_raw_handle(), ms) } {
            WAIT_OBJECT_0 => Ok(true),
            WAIT_TIMEOUT => Ok(false),
            _ => Err(self.error(op)),
        }
    }

    /// A counting acquire: the semaphore alone.
    fn acquire_plain(&self, wait: Wait, op: Operation) -> Result<()> {
        let ms = match wait {
            Wait::Forever => INFINITE,
            Wait::Poll => 0,
            Wait::For(d) => wait_ms(d),
        };
        if self.wait_sem(ms, op)? {
            Ok(())
        } else {
            Err(timed_out(wait, op, &self.text))
        }
    }

    /// The lock (see the module docs); whether the previous holder died holding it.
    fn acquire_tracked(&self, wait: Wait, op: Operation) -> Result<bool> {
        let owner = self.owner(op)?.as_raw_handle();
        let both = [owner, self.sem.as_raw_handle()];
        let end = deadline(wait);
        let mut slice = FIRST_SLICE;
        loop {
            let ms = match end {
                None => wait_ms(slice),
                Some(end) => wait_ms(slice.min(end.saturating_duration_since(Instant::now()))),
            };
            // SAFETY: two live handles in an array that outlives the call.
            let r = unsafe { WaitForMultipleObjects(2, both.as_ptr(), 1, ms) };
            match r {
                r if r == WAIT_OBJECT_0 || r == WAIT_OBJECT_0 + 1 => return Ok(false),
                // The mutex was abandoned, and the semaphore had a unit: the holder died
                // between its two releases. Both are ours now.
                r if r == WAIT_ABANDONED_0 || r == WAIT_ABANDONED_0 + 1 => return Ok(true),
                WAIT_TIMEOUT => {}
                WAIT_FAILED => return Err(self.error(op)),
                _ => return Err(self.error(op)),
            }
            // SAFETY: waits on a live handle, without blocking.
            match unsafe { WaitForSingleObject(owner, 0) } {
                WAIT_ABANDONED_0 => {
                    // Its holder died holding the lock; the mutex is ours. Its unit of the
                    // semaphore is lost, unless it gave it back just before dying.
                    let _ = self.wait_sem(0, op)?;
                    return Ok(true);
                }
                WAIT_OBJECT_0 => {
                    // Free: no qshm holder (a Qt process may hold the semaphore).
                    // SAFETY: this thread owns the mutex: it just took it.
                    unsafe { ReleaseMutex(owner) };
                }
                WAIT_TIMEOUT => {}
                _ => return Err(self.error(op)),
            }
            if end.is_some_and(|end| Instant::now() >= end) {
                return Err(timed_out(wait, op, &self.text));
            }
            slice = (slice * 2).min(LONGEST_SLICE);
        }
    }

    fn release_sem(&self, n: u32, op: Operation) -> Result<()> {
        let Ok(count) = i32::try_from(n) else {
            return Err(too_many(op, &self.text));
        };
        // SAFETY: releases units of a live semaphore handle; the previous count is not
        // wanted.
        if unsafe { ReleaseSemaphore(self.sem.as_raw_handle(), count, std::ptr::null_mut()) } == 0 {
            let code = last_error();
            if code == ERROR_TOO_MANY_POSTS {
                return Err(too_many(op, &self.text));
            }
            return Err(os_error(code, op, self.text.as_str()));
        }
        Ok(())
    }
}

fn too_many(op: Operation, text: &str) -> Error {
    Error::new(ErrorKind::OutOfResources, op, text)
        .with_detail("the release would pass the semaphore's maximum (2^31 - 1); nothing released")
}

fn timed_out(wait: Wait, op: Operation, text: &str) -> Error {
    match wait {
        Wait::Poll => Error::new(ErrorKind::WouldBlock, op, text),
        _ => Error::new(ErrorKind::Timeout, op, text),
    }
}

impl RawSemaphore for WinSemaphore {
    const PERSISTENT: bool = false;

    /// Qt's `Create` mode does not reset an existing semaphore on Windows
    /// (`CreateSemaphoreW` opens one that exists as it is): neither does `CreateOrReset`
    /// here.
    fn open(key: &NativeKey, initial: u32, how: SemOpen, _mode: u32) -> Result<(Self, bool)> {
        let op = Operation::SemaphoreOpen;
        let text = key.to_string();
        let name = key.native_key().to_owned();
        let wide = wide_name(&name, op, key)?;
        let (raw, created) = match how {
            SemOpen::Existing => {
                // SAFETY: opens a named semaphore; the name outlives the call.
                let raw = unsafe { OpenSemaphoreW(SEMAPHORE_ALL_ACCESS, 0, wide.as_ptr()) };
                (raw, false)
            }
            SemOpen::OpenOrCreate | SemOpen::CreateOrOpen | SemOpen::CreateOrReset => {
                let initial = i32::try_from(initial).map_err(|_| {
                    Error::new(ErrorKind::InvalidSize, op, text.as_str())
                        .with_detail("initial value above 2^31 - 1")
                })?;
                // SAFETY: creates or opens a named semaphore with default security; the
                // name outlives the call.
                let raw = unsafe {
                    CreateSemaphoreW(std::ptr::null(), initial, MAX_COUNT, wide.as_ptr())
                };
                (raw, last_error() != ERROR_ALREADY_EXISTS)
            }
        };
        if raw.is_null() {
            return Err(os_error(last_error(), op, text));
        }
        // SAFETY: a handle this call just opened and nothing else owns.
        let sem = unsafe { OwnedHandle::from_raw_handle(raw) };
        let sem = WinSemaphore {
            sem,
            text,
            name,
            owner: OnceLock::new(),
        };
        // The owner mutex too, now: a process that has it open keeps it alive, so that a
        // holder that dies before this process's first lock is still reported
        // (`WAIT_ABANDONED` needs a mutex that outlives its owner).
        sem.owner(op)?;
        Ok((sem, created))
    }

    fn acquire(&self, wait: Wait, undo: Undo, op: Operation) -> Result<bool> {
        match undo {
            Undo::Yes => self.acquire_tracked(wait, op),
            Undo::No => self.acquire_plain(wait, op).map(|()| false),
        }
    }

    fn release(&self, n: u32, undo: Undo, op: Operation) -> Result<()> {
        self.release_sem(n, op)?;
        if undo == Undo::Yes {
            if let Some(owner) = self.owner.get() {
                // SAFETY: releases the mutex this thread took with the unit (a lock guard
                // is released by the thread that took it).
                if unsafe { ReleaseMutex(owner.as_raw_handle()) } == 0 {
                    return Err(self.error(op).with_kind(ErrorKind::LockError).with_detail(
                        "the lock's owner mutex is not this thread's (released by another \
                         thread than the one that took it?)",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Windows does not say how many threads wait on a semaphore.
    fn waiters(&self) -> usize {
        0
    }

    /// Windows destroys a semaphore with its last handle: nothing to remove.
    fn remove(&self) -> Result<()> {
        Ok(())
    }

    /// The semaphore goes with its last handle: giving the hold back is all there is to do.
    fn remove_while_held(&self) -> Result<()> {
        self.release(1, Undo::Yes, Operation::Remove)
    }

    /// A handle kept open keeps the object and its name, as Qt's `QSharedMemory` keeps its
    /// semaphore: nobody else is affected.
    fn keepable(&self) -> bool {
        true
    }

    /// While this handle is open the name refers to its object, whoever else closes theirs.
    fn reusable(&self) -> bool {
        true
    }
}
