//! POSIX realtime shared memory and named semaphores where the system offers only what
//! POSIX says (macOS, iOS, FreeBSD; on Linux, the portable-Unix test mode, `--cfg
//! qshm_portable`): `shm_open`, `ftruncate` once, `mmap`, `sem_open`, `sem_wait`,
//! `sem_trywait`, `sem_post`, and record locks on regular files. No `/proc`, no `/dev/shm`
//! files, no `sem_timedwait`, no leases, no `O_TMPFILE`, no open-file-description locks, no
//! `flock` on shared memory objects (macOS refuses it there).
//!
//! The names are Qt's (the key rules of `crate::key`), so Qt's `QSharedMemory` and
//! `QSystemSemaphore` of type `PosixRealtime` and this backend open the same objects and
//! exclude each other through the same semaphore.
//!
//! # What the objects cannot hold: the companion files
//!
//! A segment and a semaphore get, each, a small regular file in the temporary directory
//! ([`companion`]), which carries what Linux's backend keeps in the objects themselves:
//!
//! * **attach counting**: every qshm process attached to a segment holds a read lock on
//!   its companion's users' byte. A detacher lets go of its read lock and tries a write
//!   lock: granted, it is the last qshm user anywhere (of several leaving at once, the last
//!   to try is); it then lets go again, takes the segment's lock, asks once more, and
//!   removes the segment (`shm_unlink`), if qshm created it, and the companion, holding the
//!   write lock only for that. An attacher takes its read lock *before* it opens the
//!   segment, so a last detach either counts it or has removed the name already: neither
//!   needs the segment's lock, and nobody waits for the users' byte while holding a lock
//!   someone else waits for.
//! * **the lock's owner record**: a holder writes a token naming a *slot* (a byte its
//!   process keeps write-locked) into the semaphore's companion after `sem_wait` and clears
//!   it before `sem_post`. A waiter that finds the semaphore taken asks the kernel, every
//!   [`SLICE`] of waiting by the clock, whether the recorded slot is still locked; when it is
//!   not (the holder died, `kill -9` included), exactly one waiter takes the record over
//!   with a compare-and-swap and, with it, the unit the dead holder never gave back, and
//!   reports that the owner died. Record locks are the kernel's, per file: they hold across
//!   PID namespaces, where a pid means nothing.
//! * **who uses a semaphore**: every process with the semaphore open holds the read lock on
//!   its companion's users' byte, which is what `in_use_elsewhere` asks before the last
//!   detach removes the lock.
//!
//! # What this backend cannot see
//!
//! Qt writes no record and takes no lock on the companions: a Qt process that dies holding
//! the semaphore still blocks it (as it blocks Qt), and a Qt process attached to a segment
//! is not counted, so qshm's last detach removes the segment's *name* while such a process
//! is still attached (its mapping stays valid; a later attach finds no segment). Qt itself
//! never removes a POSIX segment. A copy of an attachment in a process forked without exec
//! is counted (a fork handler takes its users' locks, `companion.rs`), unless the fork
//! caught another thread of the parent inside the companion's bookkeeping. Companions live
//! in the temporary directory (`$TMPDIR`; on macOS a per-user directory): processes that
//! share objects must share it.
//! A sandboxed Apple application's temporary directory is its own, not its group's: for
//! its `<group>/<name>` keys the last detach removes nothing (as Qt), and a holder in
//! another application of the group is never taken for dead (waited for, never two
//! holders).
//!
//! # Waiting
//!
//! POSIX semaphores have no timed wait on macOS: a timed or tracked wait polls `sem_trywait`
//! with a backoff: 50 µs of yielding, then sleeps from 20 µs to 2 ms (`portable::Backoff`,
//! counted as the `posix_timed_poll` fallback).

mod companion;
mod segment;
mod semaphore;

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::Mode;
use rustix::mm::{MapFlags, ProtFlags};

use super::{c_path, errno, Ctx};
use crate::backend::{Detached, RawSegment, RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::{AccessMode, NativeKey};
use companion::{Companion, Kind};

pub(crate) use segment::PortablePosixSegment;
pub(crate) use semaphore::PortablePosixSemaphore;

/// How often a waiter asks whether the lock's holder died, by the clock.
const SLICE: Duration = Duration::from_millis(50);

/// The longest name after the `/` this system takes for both objects: Linux's file name
/// limit less glibc's `sem.` prefix; FreeBSD's path limit (its objects are not files).
/// Apple's 30 bytes are checked by its naming rules.
const NAME_MAX: usize = if cfg!(target_os = "freebsd") {
    1023
} else {
    251
};

/// Checks a POSIX native key before any system call and returns it as a C string: the
/// platform's own rules first (Apple's 30 bytes, its sandbox's `<group>/<name>`), then, off
/// Apple platforms, POSIX's portable form: `/` and a name without another `/`.
fn object_name(ctx: Ctx<'_>) -> Result<CString> {
    let name = c_path(ctx)?;
    let native = name.to_str().unwrap_or_default();
    let err = |detail: String| ctx.kind(ErrorKind::KeyError, detail);
    let naming = crate::platform::naming();
    naming.check_posix_name(native).map_err(err)?;
    if naming.apple_posix {
        return Ok(name);
    }
    let rest = super::posix_name_body(native).map_err(err)?;
    if rest.len() > NAME_MAX {
        let os = if cfg!(target_os = "freebsd") {
            "FreeBSD"
        } else {
            "Linux"
        };
        return Err(err(format!(
            "the name is {} bytes; {os} allows {NAME_MAX} here",
            rest.len()
        )));
    }
    Ok(name)
}

/// The companion of `key`'s object, opened (created with `mode` when `Some`); a companion
/// removed while being opened is opened again. `join` counts this process in as a user.
fn companion(
    ctx: Ctx<'_>,
    kind: Kind,
    name: &str,
    mode: Option<u32>,
    join: bool,
) -> Result<Arc<Companion>> {
    crate::sys::portable::hit(crate::sys::portable::Fallback::PosixPortable);
    let path = companion::path_of(kind, name);
    for _ in 0..100 {
        let c = Companion::open(&path, mode).map_err(|e| match e.raw_os_error() {
            // The OS error is the error's source, which its message shows once.
            Some(_) => ctx
                .io(&e)
                .with_detail(format!("its companion file {}", path.display())),
            // A file at the companion's name that no qshm process made (`map_words`): `e`
            // says why it is refused.
            None if e.kind() == std::io::ErrorKind::PermissionDenied => {
                ctx.kind(ErrorKind::PermissionDenied, e.to_string())
            }
            None => ctx.kind(ErrorKind::Unknown, e.to_string()),
        })?;
        if !join || c.join().map_err(|e| ctx.io(&e))? {
            return Ok(c);
        }
    }
    Err(ctx.kind(
        ErrorKind::Unknown,
        "the companion file kept vanishing while being opened",
    ))
}
