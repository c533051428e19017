//! Interruption on Windows, with the interface of `signals.rs`: Ctrl-C, Ctrl-Break and the
//! console's close, logoff and shutdown events are taken by a console control handler and
//! waited for, so that the verb that waits (`create`, `lock`, `demo`) gives back what it
//! holds before it exits.
//!
//! Dying of Ctrl-C would leave nothing behind (a section and a semaphore die with their last
//! handle) except in one case that matters: a holder of a segment's lock that dies takes a
//! unit of Qt's lock semaphore with it, and every Qt process that shares the segment then
//! waits for that lock for ever. Hence a handler, not Windows' default handling.
//!
//! The handler runs in a thread Windows starts for it; it records the event and wakes the
//! waiter. A qshm lock is released by the thread that took it, so the waiter (the verb's own
//! thread), not the handler, unlocks and detaches. Ctrl-C and Ctrl-Break reach every process
//! of the console, a command that `lock` runs included, so nothing is forwarded; and a
//! handler is not inherited, so commands and workers start with Windows' default handling.
//!
//! # References
//!
//! * <https://learn.microsoft.com/windows/console/setconsolectrlhandler>
//! * <https://learn.microsoft.com/windows/console/handlerroutine>
#![allow(unsafe_code)] // SetConsoleCtrlHandler; the one block says why it is sound

use std::io;
use std::process::Command;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_C_EVENT};

/// Ctrl-C, reported as SIGINT's number (2, as in the C runtime's `signal.h`), so that a verb
/// interrupted by it exits with 130, as on Unix.
const SIGINT: i32 = 2;
/// Ctrl-Break (the C runtime's `SIGBREAK`).
const SIGBREAK: i32 = 21;
/// The console's close, logoff and shutdown events: a request to terminate (`SIGTERM`).
const SIGTERM: i32 = 15;

/// The event received and not yet waited for (the latest, as with one pending signal).
static PENDING: Mutex<Option<i32>> = Mutex::new(None);
/// Notified when an event is recorded.
static ARRIVED: Condvar = Condvar::new();

/// The console control handler: records the event and wakes the waiter.
///
/// For Ctrl-C and Ctrl-Break it returns at once: handled, the process goes on and the waiter
/// exits in its own time. After a close, logoff or shutdown event Windows ends the process
/// when the handler returns (or after a few seconds), so the handler does not return: the
/// waiter's exit ends the process, and this thread with it.
extern "system" fn handler(event: u32) -> BOOL {
    let sig = match event {
        CTRL_C_EVENT => SIGINT,
        CTRL_BREAK_EVENT => SIGBREAK,
        _ => SIGTERM, // CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT
    };
    // Never panics (a poisoned lock is used all the same): it runs across the FFI boundary.
    *PENDING.lock().unwrap_or_else(|e| e.into_inner()) = Some(sig);
    ARRIVED.notify_all();
    if event != CTRL_C_EVENT && event != CTRL_BREAK_EVENT {
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    1
}

/// The console events, taken by the handler; they are received by [`Blocked::wait`].
#[derive(Debug)]
pub(crate) struct Blocked {
    _private: (),
}

/// Installs the console control handler (once per process), so that Ctrl-C, Ctrl-Break and
/// the console's close no longer end the process but wait to be received.
pub(crate) fn block() -> io::Result<Blocked> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        // SAFETY: `handler` is a function of the right signature that lives as long as the
        // process, never unwinds, and only touches statics that are safe to use from any
        // thread; adding a handler has no other precondition.
        match unsafe { SetConsoleCtrlHandler(Some(handler), 1) } {
            0 => Err(io::Error::last_os_error().raw_os_error().unwrap_or(0)),
            _ => Ok(()),
        }
    });
    match installed {
        Ok(()) => Ok(Blocked { _private: () }),
        Err(code) => Err(io::Error::from_raw_os_error(*code)),
    }
}

impl Blocked {
    /// Waits for one of the events, at most `timeout` (`None`: as long as it takes).
    /// Returns it as a signal number (2 for Ctrl-C, 21 for Ctrl-Break, 15 for the console's
    /// close, logoff or shutdown), or `None` when the time ran out.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Option<i32> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(sig) = pending.take() {
                return Some(sig);
            }
            pending = match deadline {
                None => ARRIVED.wait(pending).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    ARRIVED
                        .wait_timeout(pending, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

/// Nothing to do: a console's Ctrl-C and Ctrl-Break reach every process attached to it, the
/// child included.
pub(crate) fn forward(pid: u32, sig: i32) {
    let _ = (pid, sig);
}

/// Nothing to do: a console control handler is not inherited, so the command starts with
/// Windows' default handling (Ctrl-C ends it).
pub(crate) fn unblocked_in_child(cmd: &mut Command) -> &mut Command {
    cmd
}
