//! Blocking waits that release the GIL and let Ctrl-C through.
//!
//! A wait is done in slices of [`SLICE`]: each slice waits with the GIL released
//! (`Python::detach`), and between slices the thread takes the GIL back and runs Python's
//! signal handlers (`Python::check_signals`), so that `KeyboardInterrupt` ends the wait
//! within one slice, holding nothing.

use std::time::{Duration, Instant};

use pyo3::prelude::*;

use crate::errors::IntoPy;

/// How long one slice of a blocking wait lasts: the latency of Ctrl-C.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// A value that `Python::detach` carries back to the thread that called it.
///
/// A lock guard is not `Send` (the lock belongs to the thread that took it), but
/// `Python::detach` asks its result to be: it is, though, run on the calling thread.
pub(crate) struct SameThread<T>(pub(crate) T);

// SAFETY: `SameThread` is only made inside the closure given to `Python::detach` and taken
// apart by its caller; `Python::detach` runs that closure on the calling thread (it only
// releases and re-takes the GIL around it), so the wrapped value is made and used on one
// thread and never crosses to another.
unsafe impl<T> Send for SameThread<T> {}

/// A Python timeout in seconds (`None`: forever) as a deadline. A timeout no deadline can
/// hold (`math.inf`, `1e300`: beyond any clock's range) waits forever too, as `None` does;
/// a negative or NaN one is a `ValueError`.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    match timeout {
        None => Ok(None),
        Some(t) if t >= 0.0 => Ok(Duration::try_from_secs_f64(t)
            .ok()
            .and_then(|d| Instant::now().checked_add(d))),
        Some(t) => Err(pyo3::exceptions::PyValueError::new_err(format!(
            "timeout must be None or a number of seconds >= 0, not {t}"
        ))),
    }
}

/// Waits for `attempt` to succeed: first `poll` without releasing the GIL (the uncontended
/// case), then `timed` slices with the GIL released, checking signals between them, until
/// `deadline`. `poll` and `timed` report a held lock as `WouldBlock` and `Timeout`.
pub(crate) fn wait<T>(
    py: Python<'_>,
    deadline: Option<Instant>,
    poll: impl FnOnce() -> qshm::Result<T>,
    timed: impl Fn(Duration) -> qshm::Result<T> + Sync,
) -> PyResult<T> {
    match poll() {
        Err(e) if e.kind() == qshm::ErrorKind::WouldBlock => {}
        other => return other.py(py),
    }
    sliced(py, deadline, timed)
}

/// The slices of [`wait`] without its first poll: `timed` waits at most the slice it is
/// given and reports `Timeout` when nothing happened.
pub(crate) fn sliced<T>(
    py: Python<'_>,
    deadline: Option<Instant>,
    timed: impl Fn(Duration) -> qshm::Result<T> + Sync,
) -> PyResult<T> {
    loop {
        let slice = match deadline {
            None => SLICE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    // One last look, so that a timeout of 0 still polls the lock once more.
                    return timed(Duration::ZERO).py(py);
                }
                left.min(SLICE)
            }
        };
        let SameThread(result) = py.detach(|| SameThread(timed(slice)));
        match result {
            Err(e) if e.kind() == qshm::ErrorKind::Timeout => {
                py.check_signals()?;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(e).py(py);
                }
            }
            other => return other.py(py),
        }
    }
}
