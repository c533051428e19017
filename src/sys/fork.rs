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

#[cfg(any(qshm_linux, qshm_unix_other))]
extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The current generation (never 0). Only a child forked after [`watch`] was first called
/// gets a new one: call that before anything worth telling apart exists.
#[inline]
pub(crate) fn generation() -> u32 {
    GENERATION.load(Ordering::Relaxed)
}

/// Registers the handler that counts generations (once; later calls cost an atomic load).
pub(crate) fn watch() {
    #[cfg(any(qshm_linux, qshm_unix_other))]
    {
        static ATFORK: std::sync::Once = std::sync::Once::new();
        ATFORK.call_once(|| {
            // SAFETY: registers a handler that only increments an atomic, which is
            // async-signal-safe and so allowed in a fork child handler; the function lives
            // for the whole program.
            unsafe {
                libc::pthread_atfork(None, None, Some(after_fork_in_child));
            }
        });
    }
}
