//! Interruption without a signal handler: SIGINT, SIGTERM and SIGHUP are blocked and then
//! waited for with `sigtimedwait` (Apple platforms: `sigpending` polled, then `sigwait`), so nothing runs in signal context and no crate is needed.
//!
//! Blocked signals stay pending until waited for. A signal mask is inherited across
//! `fork` and `exec` (and Rust's `Command` leaves it so), so commands are started through
//! [`unblocked_in_child`], which clears it between the two. The block is per thread and
//! inherited by threads spawned later: call [`block`] before spawning any.
#![allow(unsafe_code)] // sigprocmask and sigtimedwait; each block says why it is sound

use std::io;
use std::mem::MaybeUninit;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The three signals, blocked in the calling thread; they are received by [`Blocked::wait`].
#[derive(Debug)]
pub(crate) struct Blocked {
    set: libc::sigset_t,
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread.
pub(crate) fn block() -> io::Result<Blocked> {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given a valid pointer to.
    unsafe { libc::sigemptyset(set.as_mut_ptr()) };
    // SAFETY: sigemptyset above initialised `set`.
    let mut set = unsafe { set.assume_init() };
    for sig in SIGNALS {
        // SAFETY: `set` is an initialised sigset_t and `sig` a valid signal number.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(Blocked { set })
}

impl Blocked {
    /// Waits for one of the signals, at most `timeout` (`None`: as long as it takes).
    /// Returns the signal, or `None` when the time ran out.
    ///
    /// Apple platforms have neither `sigtimedwait` nor `sigwaitinfo`: the pending set is
    /// polled (`sigpending`, every 10 ms), and a pending signal taken with `sigwait`, which
    /// then returns at once.
    #[cfg(target_vendor = "apple")]
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Option<libc::c_int> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let mut pending = MaybeUninit::<libc::sigset_t>::uninit();
            // SAFETY: sigemptyset initialises the set it is given a valid pointer to.
            unsafe { libc::sigemptyset(pending.as_mut_ptr()) };
            // SAFETY: sigemptyset above initialised `pending`.
            let mut pending = unsafe { pending.assume_init() };
            // SAFETY: `pending` is a valid, initialised sigset_t to write into.
            unsafe { libc::sigpending(&mut pending) };
            let is_pending = |sig| {
                // SAFETY: `pending` is an initialised sigset_t and `sig` a valid signal.
                unsafe { libc::sigismember(&pending, sig) == 1 }
            };
            if SIGNALS.into_iter().any(is_pending) {
                let mut sig = 0;
                // SAFETY: `set` is an initialised sigset_t, `sig` a valid out-pointer; one of
                // its signals is pending and blocked, so sigwait returns at once.
                if unsafe { libc::sigwait(&self.set, &mut sig) } == 0 {
                    return Some(sig);
                }
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return None;
            }
            let pause = Duration::from_millis(10);
            std::thread::sleep(left.map_or(pause, |l| l.min(pause)));
        }
    }

    /// Waits for one of the signals, at most `timeout` (`None`: as long as it takes).
    /// Returns the signal, or `None` when the time ran out.
    #[cfg(not(target_vendor = "apple"))]
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Option<libc::c_int> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let rc = match left {
                Some(left) => {
                    let ts = libc::timespec {
                        tv_sec: left.as_secs().min(i64::MAX as u64) as libc::time_t,
                        tv_nsec: libc::c_long::from(left.subsec_nanos() as i32),
                    };
                    // SAFETY: `set` is an initialised sigset_t, `ts` a valid timespec, and a
                    // null siginfo pointer is allowed.
                    unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) }
                }
                // SAFETY: `set` is an initialised sigset_t; a null siginfo pointer is allowed.
                None => unsafe { libc::sigwaitinfo(&self.set, std::ptr::null_mut()) },
            };
            if rc > 0 {
                return Some(rc);
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) => return None,
                _ if left.is_some_and(|l| l.is_zero()) => return None,
                _ => continue, // EINTR: another signal (SIGCHLD, a stop) interrupted the wait
            }
        }
    }
}

/// Sends `sig` to process `pid` (forwarding an interruption to a child).
pub(crate) fn forward(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill takes plain integers; `pid` is a child this process spawned and has not
    // reaped yet, so it names that child.
    unsafe { libc::kill(pid, sig) };
}

/// Makes `cmd` start with SIGINT, SIGTERM and SIGHUP unblocked (they are blocked here and the
/// mask would be inherited), so that the command is interrupted as usual.
pub(crate) fn unblocked_in_child(cmd: &mut Command) -> &mut Command {
    let hook = || {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set it is given a valid pointer to; it is
        // async-signal-safe, as code between fork and exec must be.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised just above.
        let mut set = unsafe { set.assume_init() };
        for sig in SIGNALS {
            // SAFETY: `set` is an initialised sigset_t and `sig` a valid signal number.
            unsafe { libc::sigaddset(&mut set, sig) };
        }
        // SAFETY: `set` is initialised; a null old-set pointer is allowed; sigprocmask is
        // async-signal-safe.
        match unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    };
    // SAFETY: the hook runs in the child between fork and exec and only calls
    // async-signal-safe functions (sigemptyset, sigaddset, sigprocmask) on its own stack
    // data; it allocates nothing and takes no lock.
    unsafe { cmd.pre_exec(hook) }
}
