//! `qshm.SystemSemaphore`: Qt's `QSystemSemaphore`.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::errors::IntoPy;
use crate::shm::{key_type, parse_native, type_name};
use crate::wait;

/// A named counting semaphore shared by processes: Qt's ``QSystemSemaphore``.
///
/// ``SystemSemaphore(key, initial=0, create=False)`` opens the semaphore a Qt program's
/// ``QSystemSemaphore(key, initial, mode)`` opens, creating it with ``initial`` if it does
/// not exist; ``create=True`` (Qt's ``Create``) resets it to ``initial`` and makes this
/// object its owner, which removes it when garbage-collected. ``type="posix"`` and
/// ``SystemSemaphore.from_native(text)`` choose other keys, as for ``SharedMemory``.
///
/// ``acquire`` and ``release`` do not undo anything when a process dies (as in Qt); as a
/// context manager (``with sem:``) it acquires one and releases one.
#[pyclass(module = "qshm", name = "SystemSemaphore")]
pub(crate) struct SystemSemaphore {
    inner: Arc<qshm::SystemSemaphore>,
    legacy: Option<String>,
    initial: u32,
}

fn open(
    py: Python<'_>,
    native: qshm::NativeKey,
    initial: u32,
    create: bool,
    legacy: Option<String>,
) -> PyResult<SystemSemaphore> {
    let mode = if create {
        qshm::SemaphoreMode::Create
    } else {
        qshm::SemaphoreMode::Open
    };
    let sem = py
        .detach(|| qshm::SystemSemaphore::with_native_key(native, initial, mode))
        .py(py)?;
    Ok(SystemSemaphore {
        inner: Arc::new(sem),
        legacy,
        initial,
    })
}

#[pymethods]
impl SystemSemaphore {
    /// Opens (or with ``create=True`` creates or resets) the semaphore of the Qt key
    /// ``key``, of type ``"systemv"`` (Qt's default on Linux) or ``"posix"``.
    #[new]
    #[pyo3(
        signature = (key, initial = 0, create = false, r#type = "systemv"),
        text_signature = "(key, initial=0, create=False, type='systemv')"
    )]
    fn new(
        py: Python<'_>,
        key: &str,
        initial: u32,
        create: bool,
        r#type: &str,
    ) -> PyResult<SystemSemaphore> {
        let t = key_type(py, r#type)?;
        let native = qshm::SystemSemaphore::legacy_native_key(key, t);
        open(py, native, initial, create, Some(key.to_owned()))
    }

    /// Opens the semaphore of a native key in ``QNativeIpcKey``'s text form
    /// (``"posix:/name"``, ``"systemv:/path"``).
    #[staticmethod]
    #[pyo3(signature = (key, initial = 0, create = false))]
    fn from_native(
        py: Python<'_>,
        key: &str,
        initial: u32,
        create: bool,
    ) -> PyResult<SystemSemaphore> {
        let native = parse_native(py, key)?;
        let legacy = native.legacy_key().map(str::to_owned);
        open(py, native, initial, create, legacy)
    }

    /// Decrements the semaphore, waiting at most ``timeout`` seconds (``None`` or
    /// ``math.inf``: forever) while it is 0. The GIL is released while waiting; Ctrl-C ends
    /// the wait (``KeyboardInterrupt``) without decrementing. Raises ``TimeoutError`` (kind
    /// ``"Timeout"``) when it stayed 0.
    #[pyo3(signature = (timeout = None))]
    fn acquire(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let deadline = wait::deadline(timeout)?;
        let sem = Arc::clone(&self.inner);
        wait::wait(
            py,
            deadline,
            || sem.try_acquire(),
            |d| sem.acquire_timeout(d),
        )
    }

    /// Decrements the semaphore if it is above 0; raises ``BlockingIOError`` (kind
    /// ``"WouldBlock"``) otherwise.
    fn try_acquire(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.try_acquire().py(py)
    }

    /// Adds ``n`` to the semaphore.
    #[pyo3(signature = (n = 1))]
    fn release(&self, py: Python<'_>, n: u32) -> PyResult<()> {
        self.inner.release(n).py(py)
    }

    /// The Qt (legacy) key, or ``None`` for one made from a native key alone.
    #[getter]
    fn key(&self) -> Option<String> {
        self.legacy.clone()
    }

    /// The native key in ``QNativeIpcKey``'s text form.
    #[getter]
    fn native_key(&self) -> String {
        self.inner.native_key().to_string()
    }

    /// The key type: ``"systemv"``, ``"posix"`` or ``"windows"``.
    #[getter]
    fn r#type(&self) -> &'static str {
        type_name(self.inner.native_key().key_type())
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        slf.acquire(slf.py(), None)?;
        Ok(slf)
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.release(py, 1)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match &self.legacy {
            Some(k) => format!(
                "<qshm.SystemSemaphore key={k:?} type={:?} initial={}>",
                self.r#type(),
                self.initial
            ),
            None => format!(
                "<qshm.SystemSemaphore native_key={:?} initial={}>",
                self.native_key(),
                self.initial
            ),
        }
    }
}
