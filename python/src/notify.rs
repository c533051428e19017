//! `qshm.Notifier`: a segment's change counter (the Rust library's `qshm::notify`), with
//! waits that release the GIL and let Ctrl-C through.

use pyo3::prelude::*;

use crate::errors::IntoPy;
use crate::wait;

/// A segment's change counter: a writer ``notify()``-s after changing the data; a reader
/// reads ``current``, reads the data, then ``wait(seen)``-s for anything newer, in any
/// process (Rust and C programs included), without polling and without missing a change
/// made in between.
///
/// Get one from ``MappedSegment.notifier()`` (the counter is in the segment's header) or
/// ``SharedMemory.notifier()`` (an opt-in companion file that Qt ignores, removed with the
/// segment).
#[pyclass(module = "qshm", frozen)]
pub(crate) struct Notifier {
    inner: qshm::notify::Notifier,
}

impl Notifier {
    pub(crate) fn new(inner: qshm::notify::Notifier) -> Notifier {
        Notifier { inner }
    }
}

#[pymethods]
impl Notifier {
    /// The change counter now (an int, wrapping at 2**32). Read it *before* reading the
    /// data; ``wait`` with it returns at once if a change came in between.
    #[getter]
    fn current(&self) -> u32 {
        self.inner.current()
    }

    /// Announces a change: increments the counter and wakes every waiter, in every
    /// process. Returns the new counter.
    fn notify(&self, py: Python<'_>) -> PyResult<u32> {
        self.inner.notify().py(py)
    }

    /// Waits until the counter differs from ``seen``, at most ``timeout`` seconds
    /// (``None`` or ``math.inf``: forever), and returns it. The GIL is released while
    /// waiting; Ctrl-C ends the wait (``KeyboardInterrupt``). Raises ``TimeoutError`` (kind
    /// ``"Timeout"``) when nothing changed in time.
    #[pyo3(signature = (seen, timeout = None))]
    fn wait(&self, py: Python<'_>, seen: u32, timeout: Option<f64>) -> PyResult<u32> {
        let deadline = wait::deadline(timeout)?;
        let now = self.inner.current();
        if now != seen {
            return Ok(now);
        }
        let inner = &self.inner;
        wait::sliced(py, deadline, |slice| inner.wait(seen, Some(slice)))
    }

    /// The segment this counter belongs to, as errors name it.
    #[getter]
    fn label(&self) -> String {
        self.inner.label().to_owned()
    }

    fn __repr__(&self) -> String {
        format!(
            "<qshm.Notifier of {:?} current={}>",
            self.inner.label(),
            self.inner.current()
        )
    }
}
