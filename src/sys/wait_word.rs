//! Sleeping on a 32-bit word of shared memory until some process changes it: the one
//! primitive under change notification, the queue and the latest-value cell.
//!
//! On Linux this is the futex, shared (not `PRIVATE`), so the waker may be another process,
//! in another PID namespace too (the kernel keys a shared futex by the page it lives in, not
//! by any process id). macOS 14.4 and iOS 17.4 have the same in `os_sync_wait_on_address`
//! with `OS_SYNC_WAIT_ON_ADDRESS_SHARED`, looked up at run time (earlier versions poll, as
//! below; never a private API); FreeBSD in `_umtx_op` (`UMTX_OP_WAIT_UINT`, `UMTX_OP_WAKE`:
//! the shared operations, not the `_PRIVATE` ones). These two are built only: no macOS or
//! FreeBSD machine runs them here. Elsewhere (Windows, and Linux's portable-Unix test mode,
//! which runs the path of an older macOS) no system call waits on an address across
//! processes, so a waiter polls the word with a backoff from 20 µs to 1 ms: correct (a
//! change is seen at the latest 1 ms after it happened), costly only while something waits,
//! and `wake` has nothing to do. One call polls at most 10 ms before it returns early, so
//! callers notice cancellation.
//!
//! A caller that wants to skip `wake` when nobody sleeps counts its sleepers itself (see
//! `notify.rs`); this module never misses a wake-up on its own: `wait` returns at once if
//! the word no longer holds `expected`, atomically with going to sleep.

#[cfg(not(any(all(qshm_linux, not(qshm_portable)), qshm_freebsd)))]
use std::sync::atomic::Ordering;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::Duration;

use crate::error::Result;
use crate::sys::word_lock::low_half;

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

// Also Linux with `--cfg qshm_portable`, which runs the path of a macOS without
// `os_sync_wait_on_address`.
#[cfg(not(any(all(qshm_linux, not(qshm_portable)), qshm_freebsd)))]
#[cfg_attr(qshm_apple, allow(dead_code))] // its fallback
mod poll {
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
        Ok(wait_until(
            || word.load(Ordering::Acquire) != expected,
            timeout,
        ))
    }

    /// Polls `changed` with the backoff until it says yes (`Early`), `timeout` passes
    /// (`TimedOut`) or [`CALL`] has been spent (`Early`).
    pub(crate) fn wait_until(changed: impl Fn() -> bool, timeout: Option<Duration>) -> Woke {
        crate::sys::portable::hit(crate::sys::portable::Fallback::WaitWord);
        let timeout = timeout.unwrap_or(Duration::MAX);
        let start = Instant::now();
        let mut pause = FIRST;
        loop {
            if changed() {
                return Woke::Early;
            }
            let spent = start.elapsed();
            let left = timeout.saturating_sub(spent);
            if left.is_zero() {
                return Woke::TimedOut;
            }
            if spent >= CALL {
                return Woke::Early;
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(MOST);
        }
    }

    pub(crate) fn wake(_: &AtomicU32, _: u32) -> Result<()> {
        Ok(())
    }
}

#[cfg(not(any(all(qshm_linux, not(qshm_portable)), qshm_apple, qshm_freebsd)))]
use poll as imp;

#[cfg(qshm_apple)]
mod imp {
    use super::{poll, Woke};
    use crate::error::{Error, ErrorKind, Operation, Result};
    use std::ffi::{c_int, c_void};
    use std::sync::atomic::AtomicU32;
    use std::sync::OnceLock;
    use std::time::Duration;

    /// Sleepers are woken when the system has the calls (else [`wake`] does nothing).
    pub(crate) const KERNEL_WAKES: bool = true;

    /// `os_sync_wait_on_address_with_timeout(addr, value, size, flags, clockid, timeout_ns)`.
    type WaitFn = unsafe extern "C" fn(*mut c_void, u64, usize, u32, u32, u64) -> c_int;
    /// `os_sync_wake_by_address_any` / `_all(addr, size, flags)`.
    type WakeFn = unsafe extern "C" fn(*mut c_void, usize, u32) -> c_int;

    struct Calls {
        wait: WaitFn,
        wake_any: WakeFn,
        wake_all: WakeFn,
    }

    /// The three calls, looked up once (macOS 14.4, iOS 17.4 and later).
    fn calls() -> Option<&'static Calls> {
        static CALLS: OnceLock<Option<Calls>> = OnceLock::new();
        CALLS
            .get_or_init(|| {
                let find = |name: &std::ffi::CStr| {
                    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only looks up
                    // a symbol in the loaded images.
                    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
                    (!p.is_null()).then_some(p)
                };
                let wait = find(c"os_sync_wait_on_address_with_timeout")?;
                let wake_any = find(c"os_sync_wake_by_address_any")?;
                let wake_all = find(c"os_sync_wake_by_address_all")?;
                // SAFETY: the symbols are the functions of <os/os_sync_wait_on_address.h>,
                // whose C signatures the two types spell.
                unsafe {
                    Some(Calls {
                        wait: std::mem::transmute::<*mut c_void, WaitFn>(wait),
                        wake_any: std::mem::transmute::<*mut c_void, WakeFn>(wake_any),
                        wake_all: std::mem::transmute::<*mut c_void, WakeFn>(wake_all),
                    })
                }
            })
            .as_ref()
    }

    /// No deadline given: sleeps are cut at a day (the call takes a relative timeout; 0
    /// would mean none, but a bound costs nothing and callers re-check anyway).
    const LONGEST: Duration = Duration::from_secs(86_400);

    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<Woke> {
        let Some(calls) = calls() else {
            return poll::wait(word, expected, timeout);
        };
        let ns = timeout.unwrap_or(LONGEST).min(LONGEST).as_nanos().max(1) as u64;
        // SAFETY: `word` is a live, aligned 4-byte atomic (in shared memory that stays mapped
        // while borrowed); the call reads it atomically and sleeps while it holds
        // `expected`. OS_SYNC_WAIT_ON_ADDRESS_SHARED: wakers may be other processes.
        let rc = unsafe {
            (calls.wait)(
                word.as_ptr().cast(),
                u64::from(expected),
                4,
                libc::OS_SYNC_WAIT_ON_ADDRESS_SHARED,
                libc::OS_CLOCK_MACH_ABSOLUTE_TIME,
                ns,
            )
        };
        if rc >= 0 {
            return Ok(Woke::Early);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ETIMEDOUT) if timeout.is_some() => Ok(Woke::TimedOut),
            Some(libc::ETIMEDOUT | libc::EINTR) => Ok(Woke::Early),
            e => Err(wait_error(e.unwrap_or(0), "os_sync_wait_on_address failed")),
        }
    }

    pub(crate) fn wake(word: &AtomicU32, count: u32) -> Result<()> {
        let Some(calls) = calls() else {
            return Ok(()); // sleepers poll
        };
        let wake = if count == 1 {
            calls.wake_any
        } else {
            calls.wake_all
        };
        // SAFETY: as in `wait`; waking touches no memory.
        let rc = unsafe {
            wake(
                word.as_ptr().cast(),
                4,
                libc::OS_SYNC_WAKE_BY_ADDRESS_SHARED,
            )
        };
        match rc {
            0 => Ok(()),
            _ => match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ENOENT) => Ok(()), // nobody sleeps
                e => Err(wait_error(e.unwrap_or(0), "os_sync_wake_by_address failed")),
            },
        }
    }

    #[cold]
    fn wait_error(errno: i32, detail: &'static str) -> Error {
        crate::sys::os_error(errno, Operation::Wait, String::new())
            .with_kind(ErrorKind::Unknown)
            .with_detail(detail)
    }

    /// Whether the calls are there (else sleepers poll).
    pub(crate) fn sleeps_in_kernel() -> bool {
        calls().is_some()
    }
}

#[cfg(qshm_freebsd)]
mod imp {
    use super::Woke;
    use crate::error::{Error, ErrorKind, Operation, Result};
    use std::ffi::c_void;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    /// The kernel wakes sleepers: `wake` must be called after a change.
    pub(crate) const KERNEL_WAKES: bool = true;

    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Result<Woke> {
        // SAFETY: _umtx_time is a plain C struct, for which all-zero is valid.
        let mut time: libc::_umtx_time = unsafe { std::mem::zeroed() };
        let (size, time_ptr) = match timeout {
            Some(t) => {
                time._timeout.tv_sec = t.as_secs().min(i64::MAX as u64) as _;
                time._timeout.tv_nsec = t.subsec_nanos() as _;
                time._clockid = libc::CLOCK_MONOTONIC as u32; // relative (no UMTX_ABSTIME)
                (
                    std::mem::size_of::<libc::_umtx_time>(),
                    std::ptr::from_mut(&mut time).cast::<c_void>(),
                )
            }
            None => (0, std::ptr::null_mut()),
        };
        // SAFETY: `word` is a live, aligned 4-byte atomic, which the kernel reads atomically;
        // UMTX_OP_WAIT_UINT (not _PRIVATE) keys the sleep by the shared page, so wakers may
        // be other processes; the timeout argument is the size of the struct at `time_ptr`
        // (passed as a pointer-sized integer, as the call wants), or none.
        let rc = unsafe {
            libc::_umtx_op(
                word.as_ptr().cast(),
                libc::UMTX_OP_WAIT_UINT,
                libc::c_ulong::from(expected),
                size as *mut c_void,
                time_ptr,
            )
        };
        if rc == 0 {
            return Ok(Woke::Early);
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ETIMEDOUT) => Ok(Woke::TimedOut),
            Some(libc::EINTR) => Ok(Woke::Early),
            e => Err(umtx_error(e.unwrap_or(0), "_umtx_op wait failed")),
        }
    }

    pub(crate) fn wake(word: &AtomicU32, count: u32) -> Result<()> {
        let count = count.min(i32::MAX as u32);
        // SAFETY: waking touches no memory; `word` is a live address.
        let rc = unsafe {
            libc::_umtx_op(
                word.as_ptr().cast(),
                libc::UMTX_OP_WAKE,
                libc::c_ulong::from(count),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        match rc {
            0 => Ok(()),
            _ => Err(umtx_error(
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                "_umtx_op wake failed",
            )),
        }
    }

    #[cold]
    fn umtx_error(errno: i32, detail: &'static str) -> Error {
        crate::sys::os_error(errno, Operation::Wait, String::new())
            .with_kind(ErrorKind::Unknown)
            .with_detail(detail)
    }
}

/// Whether a sleeper in [`wait`] sleeps in the kernel until woken, rather than polling.
#[allow(dead_code)] // the mapped lock's, off Linux
pub(crate) fn sleeps_in_kernel() -> bool {
    #[cfg(qshm_apple)]
    return imp::sleeps_in_kernel();
    #[cfg(not(qshm_apple))]
    imp::KERNEL_WAKES
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

/// [`wait`] for a 64-bit word that others change with 64-bit atomics (a lock word): the
/// kernel sleeps on its low half ([`low_half`]); a poll reads the whole word, so that Rust
/// code never reads the half with a 32-bit access while another thread writes the word with
/// a 64-bit one (racing mixed-size atomic accesses are undefined behaviour in Rust's memory
/// model). Only a change of the low half is certain to end a sleep in the kernel.
#[allow(dead_code)] // the mapped lock's, off Linux
pub(crate) fn wait_u64(word: &AtomicU64, expected: u64, timeout: Option<Duration>) -> Result<Woke> {
    #[cfg(not(any(all(qshm_linux, not(qshm_portable)), qshm_freebsd)))]
    if !sleeps_in_kernel() {
        return Ok(poll::wait_until(
            || word.load(Ordering::Acquire) != expected,
            timeout,
        ));
    }
    imp::wait(low_half(word), expected as u32, timeout)
}

/// Wakes up to `count` sleepers of the 64-bit `word` (see [`wait_u64`]).
#[allow(dead_code)] // the mapped lock's, off Linux
pub(crate) fn wake_u64(word: &AtomicU64, count: u32) -> Result<()> {
    imp::wake(low_half(word), count)
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

    #[test]
    fn a_lock_word_changed_by_a_64_bit_swap_ends_the_wait() {
        const HELD: u64 = 7 << 32 | 2;
        assert_eq!(
            wait_u64(
                &AtomicU64::new(HELD),
                HELD - 1,
                Some(Duration::from_secs(5))
            )
            .unwrap(),
            Woke::Early
        );
        let w = Arc::new(AtomicU64::new(HELD));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || {
            while w2.load(Ordering::Acquire) == HELD {
                wait_u64(&w2, HELD, Some(Duration::from_secs(10))).unwrap();
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        // What the lock does: a 64-bit compare-and-swap (here freeing it), then a wake.
        w.compare_exchange(HELD, 0, Ordering::AcqRel, Ordering::Acquire)
            .unwrap();
        wake_u64(&w, 1).unwrap();
        t.join().unwrap();
    }
}
