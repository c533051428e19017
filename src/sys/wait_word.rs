//! Sleeping on a 32-bit word of shared memory until some process changes it: the one
//! primitive under change notification, the queue and the latest-value cell.
//!
//! On Linux this is the futex, shared (not `PRIVATE`), so the waker may be another process,
//! in another PID namespace too (the kernel keys a shared futex by the page it lives in, not
//! by any process id). Elsewhere (Windows, and the portable fallback that macOS and FreeBSD
//! builds take) no system call waits on an address across processes, so a waiter polls the
//! word with a backoff from 20 µs to 1 ms: correct (a change is seen at the latest 1 ms after
//! it happened), costly only while something waits, and `wake` has nothing to do. One call
//! polls at most 10 ms before it returns early, so callers notice cancellation.
//!
//! A caller that wants to skip `wake` when nobody sleeps counts its sleepers itself (see
//! `notify.rs`); this module never misses a wake-up on its own: `wait` returns at once if
//! the word no longer holds `expected`, atomically with going to sleep.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use crate::error::Result;

/// How a [`wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Woke {
    /// The word changed, a wake came, or the sleep ended early (callers re-check the word).
    Early,
    /// `timeout` passed with the word still `expected`.
    TimedOut,
}

#[cfg(all(qshm_linux, not(qshm_portable)))]
mod imp {
    use super::Woke;
    use crate::error::{Error, ErrorKind, Operation, Result};
    use rustix::io::Errno;
    use rustix::thread::futex;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    /// The kernel wakes sleepers: `wake` must be called after a change.
    pub(crate) const KERNEL_WAKES: bool = true;

    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<Woke> {
        // No timeout: no timer for the kernel to arm (a measurable part of a wake-up).
        let ts = timeout.map(|t| futex::Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as _,
            tv_nsec: t.subsec_nanos() as _,
        });
        // Shared (not PRIVATE): the waker may be another process.
        match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
            Ok(()) | Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(Woke::Early),
            Err(Errno::TIMEDOUT) => Ok(Woke::TimedOut),
            Err(e) => Err(futex_error(e, "futex wait failed")),
        }
    }

    pub(crate) fn wake(word: &AtomicU32, count: u32) -> Result<()> {
        futex::wake(word, futex::Flags::empty(), count)
            .map(drop)
            .map_err(|e| futex_error(e, "futex wake failed"))
    }

    #[cold]
    fn futex_error(e: Errno, detail: &'static str) -> Error {
        crate::sys::os_error(e.raw_os_error(), Operation::Wait, String::new())
            .with_kind(ErrorKind::Unknown)
            .with_detail(detail)
    }
}

// Also Linux with `--cfg qshm_portable`, which runs the path macOS and FreeBSD take.
#[cfg(not(all(qshm_linux, not(qshm_portable))))]
mod imp {
    use super::Woke;
    use crate::error::Result;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    /// Waiters poll: `wake` has nothing to do.
    pub(crate) const KERNEL_WAKES: bool = false;

    const FIRST: Duration = Duration::from_micros(20);
    const MOST: Duration = Duration::from_millis(1);

    /// One call polls at most this long, so that callers see cancellation (which has no
    /// kernel wake to send here) within it.
    const CALL: Duration = Duration::from_millis(10);

    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<Woke> {
        crate::sys::portable::hit(crate::sys::portable::Fallback::WaitWord);
        let timeout = timeout.unwrap_or(Duration::MAX);
        let start = Instant::now();
        let mut pause = FIRST;
        loop {
            if word.load(Ordering::Acquire) != expected {
                return Ok(Woke::Early);
            }
            let spent = start.elapsed();
            let left = timeout.saturating_sub(spent);
            if left.is_zero() {
                return Ok(Woke::TimedOut);
            }
            if spent >= CALL {
                return Ok(Woke::Early);
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(MOST);
        }
    }

    pub(crate) fn wake(_: &AtomicU32, _: u32) -> Result<()> {
        Ok(())
    }
}

/// Whether sleepers need [`wake`] (the futex), or poll (the fallback).
#[allow(dead_code)]
pub(crate) const KERNEL_WAKES: bool = imp::KERNEL_WAKES;

/// Sleeps while `word` holds `expected`, at most `timeout` (`None`: until woken); may
/// return early (callers re-check). Never misses a change made before or while it sleeps.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<Woke> {
    imp::wait(word, expected, timeout)
}

/// Wakes up to `count` sleepers of `word` (in any process).
pub(crate) fn wake(word: &AtomicU32, count: u32) -> Result<()> {
    imp::wake(word, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_wait_on_a_changed_word_returns_at_once() {
        let w = AtomicU32::new(5);
        assert_eq!(
            wait(&w, 4, Some(Duration::from_secs(5))).unwrap(),
            Woke::Early
        );
    }

    #[test]
    fn a_wait_times_out() {
        let w = AtomicU32::new(5);
        let t = Instant::now();
        let mut woke = Woke::Early;
        while woke == Woke::Early && t.elapsed() < Duration::from_millis(50) {
            woke = wait(
                &w,
                5,
                Some(Duration::from_millis(50).saturating_sub(t.elapsed())),
            )
            .unwrap();
        }
        assert!(t.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_change_and_wake_ends_the_wait() {
        let w = Arc::new(AtomicU32::new(0));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == 0 {
                wait(&w2, 0, None).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        w.store(1, Ordering::Release);
        wake(&w, u32::MAX).unwrap();
        t.join().unwrap();
    }
}
