//! The owner record's identity of a process: its pid and start time.

use super::*;

/// This process's identity for the owner record: pid in the high half, the low 32 bits of
/// its start time (clock ticks since boot, `/proc/self/stat` field 22) in the low half.
/// Cached: one relaxed load once known.
#[inline]
pub(super) fn my_identity() -> u64 {
    match IDENTITY.load(Ordering::Relaxed) {
        0 => compute_identity(),
        id => id,
    }
}

/// This process's id, from the cached identity (no system call once known).
#[inline]
pub(super) fn my_pid() -> u32 {
    (my_identity() >> 32) as u32
}

/// The cache of `my_identity`, forgotten in the child of a `fork`.
pub(super) static IDENTITY: AtomicU64 = AtomicU64::new(0);

#[cold]
pub(super) fn compute_identity() -> u64 {
    static AT_FORK: std::sync::Once = std::sync::Once::new();
    AT_FORK.call_once(|| {
        extern "C" fn forget() {
            IDENTITY.store(0, Ordering::Relaxed);
        }
        // SAFETY: registers a handler that only stores to an atomic, which is
        // async-signal-safe, in the child after fork; the handler lives for the program.
        unsafe { libc::pthread_atfork(None, None, Some(forget)) };
    });
    let pid = std::process::id();
    let id = identity_of(pid).unwrap_or(u64::from(pid) << 32);
    IDENTITY.store(id, Ordering::Relaxed);
    id
}

/// The identity of a running process, `None` when there is no process `pid` (a zombie,
/// dead but not yet reaped, counts as none).
pub(super) fn identity_of(pid: u32) -> Option<u64> {
    let stat = task_stat(pid).ok().filter(|stat| !stat.is_dead())?;
    Some(u64::from(pid) << 32 | (stat.start & 0xffff_ffff))
}

/// Whether the process an owner record names is still running.
pub(crate) fn is_alive(record: u64) -> bool {
    let pid = (record >> 32) as u32;
    if pid == 0 {
        return true; // not a record qshm wrote: assume a live holder
    }
    identity_of(pid).is_some_and(|id| id == record || (record & 0xffff_ffff) == 0)
}
