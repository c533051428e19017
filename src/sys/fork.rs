//! Which `fork` generation this process is in: a number that changes in the child of every
//! `fork`, so that state copied from the parent (a held lock's holder, a cached identity)
//! can be told from the child's own. One `pthread_atfork` handler, registered on first use.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man3/pthread_atfork.3.html>

use std::sync::atomic::{AtomicU32, Ordering};

/// Incremented in the child of every `fork`. Starts at 1, so that a zeroed cache is stale.
static GENERATION: AtomicU32 = AtomicU32::new(1);

/// Incremented in this process before every `fork` it starts (after [`watch`]).
#[cfg(qshm_linux)] // read by the POSIX backend's last-user check only
static FORKS_STARTED: AtomicU32 = AtomicU32::new(0);

#[cfg(any(qshm_linux, qshm_unix_other))]
extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

#[cfg(any(qshm_linux, qshm_unix_other))]
extern "C" fn before_fork() {
    #[cfg(qshm_linux)]
    FORKS_STARTED.fetch_add(1, Ordering::SeqCst);
}

/// The current generation (never 0). Only a child forked after [`watch`] was first called
/// gets a new one: call that before anything worth telling apart exists.
#[inline]
pub(crate) fn generation() -> u32 {
    GENERATION.load(Ordering::Relaxed)
}

/// How many `fork`s this process has started since [`watch`] was first called (this call
/// makes sure it was). Counted before each `fork` copies anything, so a descriptor or a
/// mapping made after reading an unchanged count can be in no child forked since.
///
/// Children started without the fork handlers are not counted: `posix_spawn` and `vfork`
/// (which `exec` at once, and share this process's memory until then) and a raw `clone`.
#[cfg(qshm_linux)]
pub(crate) fn forks_started() -> u32 {
    watch();
    FORKS_STARTED.load(Ordering::SeqCst)
}

/// Registers the handlers that count generations and forks (once; later calls cost an atomic load).
pub(crate) fn watch() {
    #[cfg(any(qshm_linux, qshm_unix_other))]
    {
        static ATFORK: std::sync::Once = std::sync::Once::new();
        ATFORK.call_once(|| {
            // SAFETY: registers handlers that only increment an atomic, which is
            // async-signal-safe and so allowed in fork handlers; the functions live for the
            // whole program.
            unsafe {
                libc::pthread_atfork(Some(before_fork), None, Some(after_fork_in_child));
            }
        });
    }
}

/// This process's id, cached (getpid is a system call in current C libraries), recomputed
/// in a forked child.
#[cfg(any(qshm_linux, qshm_unix_other))]
#[inline]
pub(crate) fn my_pid() -> u32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached >> 32 == u64::from(generation()) {
        cached as u32
    } else {
        compute_pid()
    }
}

/// The pid in the low half, the fork generation it belongs to in the high half.
#[cfg(any(qshm_linux, qshm_unix_other))]
static PID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(any(qshm_linux, qshm_unix_other))]
#[cold]
fn compute_pid() -> u32 {
    watch();
    let generation = generation();
    let pid = std::process::id();
    PID.store(
        u64::from(generation) << 32 | u64::from(pid),
        Ordering::Relaxed,
    );
    pid
}
