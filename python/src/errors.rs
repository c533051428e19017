//! qshm's errors as Python exceptions: `qshm.Error` with `.kind`, and the subclasses that
//! also derive from Python's built-in exceptions, all defined in `qshm/_errors.py`.

use pyo3::prelude::*;

/// The Python exception for a library error: `qshm._errors._make(kind, message, errno)`.
pub(crate) fn to_py(py: Python<'_>, err: qshm::Error) -> PyErr {
    make(
        py,
        &format!("{:?}", err.kind()),
        &err.to_string(),
        err.raw_os_error(),
    )
}

/// A `qshm.Error` (or the subclass for `kind`) made here, not by the library.
pub(crate) fn make(py: Python<'_>, kind: &str, message: &str, errno: Option<i32>) -> PyErr {
    let made = py
        .import("qshm._errors")
        .and_then(|m| m.getattr("_make"))
        .and_then(|f| f.call1((kind, message, errno)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A `qshm.<class>` exception (a subclass of `qshm.Error` defined in `qshm/_errors.py`)
/// of kind `kind`, made here.
pub(crate) fn make_class(py: Python<'_>, class: &str, kind: &str, message: &str) -> PyErr {
    let made = py
        .import("qshm._errors")
        .and_then(|m| m.getattr("_make"))
        .and_then(|f| f.call1((kind, message, None::<i32>, class)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// In `__exit__`: raises `err` when no exception is propagating (`exc_type` is None);
/// otherwise adds it as a note to the propagating exception `exc` (Python 3.11+), which
/// goes on unmasked.
pub(crate) fn note_or_raise(
    py: Python<'_>,
    exc_type: &Bound<'_, PyAny>,
    exc: &Bound<'_, PyAny>,
    err: PyErr,
) -> PyResult<()> {
    if exc_type.is_none() {
        return Err(err);
    }
    if exc.hasattr("add_note").unwrap_or(false) {
        let note = format!("qshm: {}", err.value(py));
        let _ = exc.call_method1("add_note", (note,));
    }
    Ok(())
}

/// Converts a library result, raising its error as the matching Python exception.
pub(crate) trait IntoPy<T> {
    /// The value, or the Python exception for the error.
    fn py(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPy<T> for qshm::Result<T> {
    fn py(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| to_py(py, e))
    }
}
