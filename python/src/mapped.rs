//! `qshm.MappedSegment`: the crash-robust mapped segments (`qshm::mapped`).

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{self, IntoPy};
use crate::guard::{static_ref, Held, LockGuard, Owner};
use crate::notify::Notifier;
use crate::shm::access;
use crate::wait;

/// A file-backed or memfd shared memory segment with a crash-robust lock in its header
/// (``qshm::mapped`` in Rust).
///
/// Made by ``create_file`` / ``open_file`` (a file, by default under ``/dev/shm``),
/// ``create_temporary`` (a file no one else can name), ``memfd`` (anonymous, sealed against
/// shrinking) or, in a child process, ``from_env`` (a segment the parent passed with
/// ``popen_kwargs``). A holder of the lock that dies is noticed at once: the next
/// ``lock()`` succeeds with ``owner_died`` True.
///
/// C programs share the layout through ``include/qshm.h``; other qshm processes (Rust or
/// Python) through the same calls.
#[pyclass(module = "qshm", name = "MappedSegment")]
pub(crate) struct MappedSegment {
    inner: Option<Arc<qshm::mapped::MappedSegment>>,
    label: Arc<str>,
}

impl MappedSegment {
    fn wrap(seg: qshm::mapped::MappedSegment) -> MappedSegment {
        let label = match seg.path() {
            Some(p) => p.display().to_string(),
            None => format!("{:?}", seg.backing()).to_lowercase(),
        };
        MappedSegment {
            inner: Some(Arc::new(seg)),
            label: label.into(),
        }
    }

    fn seg(&self, py: Python<'_>) -> PyResult<&Arc<qshm::mapped::MappedSegment>> {
        self.inner.as_ref().ok_or_else(|| {
            errors::make(
                py,
                "NotAttached",
                &format!("mapped segment `{}` is detached", self.label),
                None,
            )
        })
    }

    fn guard(
        &self,
        py: Python<'_>,
        deadline: Option<std::time::Instant>,
        poll_only: bool,
    ) -> PyResult<LockGuard> {
        let arc = Arc::clone(self.seg(py)?);
        // SAFETY: `arc` goes into the `Held` with every guard made from `seg`, and is
        // dropped after that guard (`Held`'s field order); nothing takes the segment out of
        // its Arc while this clone exists (`detach` fails then).
        let seg: &'static qshm::mapped::MappedSegment = unsafe { static_ref(&arc) };
        let guard = if poll_only {
            seg.try_lock().py(py)?
        } else {
            wait::wait(py, deadline, || seg.try_lock(), |d| seg.lock_timeout(d))?
        };
        Ok(LockGuard::new(
            Held::new(guard, Owner::Mapped(arc)),
            Arc::clone(&self.label),
        ))
    }
}

#[pymethods]
impl MappedSegment {
    /// Creates the segment file ``name`` (relative to ``/dev/shm``, or an absolute path) of
    /// ``size`` data bytes. By default the last qshm user to detach removes the file.
    #[staticmethod]
    fn create_file(py: Python<'_>, name: &str, size: usize) -> PyResult<MappedSegment> {
        let seg = qshm::mapped::MappedSegment::create_file(name, size).py(py)?;
        Ok(MappedSegment::wrap(seg))
    }

    /// Opens the existing segment file ``name``, read-write or ``readonly``.
    #[staticmethod]
    #[pyo3(signature = (name, readonly = false))]
    fn open_file(py: Python<'_>, name: &str, readonly: bool) -> PyResult<MappedSegment> {
        let seg = qshm::mapped::FileOptions::new()
            .access(access(readonly))
            .open(name)
            .py(py)?;
        Ok(MappedSegment::wrap(seg))
    }

    /// Creates a segment in a file no other process can name (removed at once; pass it to
    /// children with ``popen_kwargs``).
    #[staticmethod]
    fn create_temporary(py: Python<'_>, size: usize) -> PyResult<MappedSegment> {
        let seg = qshm::mapped::MappedSegment::create_temporary(size).py(py)?;
        Ok(MappedSegment::wrap(seg))
    }

    /// Creates an anonymous memfd segment (``memfd_create``; ``name`` shows in
    /// ``/proc/<pid>/fd``), sealed against shrinking.
    #[staticmethod]
    fn memfd(py: Python<'_>, name: &str, size: usize) -> PyResult<MappedSegment> {
        let seg = qshm::mapped::MappedSegment::memfd(name, size).py(py)?;
        Ok(MappedSegment::wrap(seg))
    }

    /// In a child process: adopts the segment its parent passed (``popen_kwargs``), named
    /// by the environment variable ``var``. A file segment (not a memfd) arrives as a plain
    /// descriptor, accepted only with ``allow_unsealed=True``.
    #[staticmethod]
    #[pyo3(
        signature = (var = qshm::mapped::MEMFD_ENV, allow_unsealed = false, readonly = false),
        text_signature = "(var='QSHM_MEMFD', allow_unsealed=False, readonly=False)"
    )]
    fn from_env(
        py: Python<'_>,
        var: &str,
        allow_unsealed: bool,
        readonly: bool,
    ) -> PyResult<MappedSegment> {
        let mut options = qshm::mapped::ReceiveOptions::new();
        options
            .allow_unsealed(allow_unsealed)
            .access(access(readonly));
        let seg = qshm::mapped::MappedSegment::from_env_var(var, &options).py(py)?;
        Ok(MappedSegment::wrap(seg))
    }

    /// Keyword arguments for ``subprocess.Popen`` (or ``run``) that pass this segment to the
    /// child: ``pass_fds`` with its descriptor and ``env`` (a copy of ``env``, by default of
    /// ``os.environ``) with ``var=<fd>:<size>``, which the child reads with
    /// ``MappedSegment.from_env(var)``. Merge your own ``pass_fds`` if you have any.
    #[pyo3(
        signature = (var = qshm::mapped::MEMFD_ENV, env = None),
        text_signature = "($self, var='QSHM_MEMFD', env=None)"
    )]
    fn popen_kwargs<'py>(
        &self,
        py: Python<'py>,
        var: &str,
        env: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let seg = self.seg(py)?;
        let fd = seg.as_fd().as_raw_fd();
        let new_env = match env {
            Some(e) => e.copy()?,
            None => {
                let environ = py.import("os")?.getattr("environ")?;
                PyDict::from_sequence(&environ.call_method0("items")?)?
            }
        };
        new_env.set_item(var, format!("{fd}:{}", seg.size()))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("pass_fds", (fd,))?;
        kwargs.set_item("env", new_env)?;
        Ok(kwargs)
    }

    /// The segment's descriptor (owned by this object).
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        Ok(self.seg(py)?.as_fd().as_raw_fd())
    }

    /// Takes the segment's lock, waiting at most ``timeout`` seconds (``None`` or
    /// ``math.inf``: forever); see ``SharedMemory.lock``. The guard's ``owner_died`` tells
    /// that the previous holder died holding it.
    #[pyo3(signature = (timeout = None))]
    fn lock(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<LockGuard> {
        let deadline = wait::deadline(timeout)?;
        self.guard(py, deadline, false)
    }

    /// Takes the lock if it is free; raises ``BlockingIOError`` (kind ``"WouldBlock"``)
    /// otherwise.
    fn try_lock(&self, py: Python<'_>) -> PyResult<LockGuard> {
        self.guard(py, None, true)
    }

    /// The number of data bytes (0 once detached).
    #[getter]
    fn size(&self) -> usize {
        self.inner.as_ref().map_or(0, |s| s.size())
    }

    /// The file's path, or ``None`` for a memfd or received descriptor.
    #[getter]
    fn path(&self) -> Option<String> {
        self.inner
            .as_ref()
            .and_then(|s| s.path())
            .map(|p| p.display().to_string())
    }

    /// What backs it: ``"file"``, ``"memfd"`` or ``"fd"``.
    #[getter]
    fn backing(&self) -> Option<String> {
        self.inner
            .as_ref()
            .map(|s| format!("{:?}", s.backing()).to_lowercase())
    }

    /// Whether this object is still attached.
    #[getter]
    fn is_attached(&self) -> bool {
        self.inner.is_some()
    }

    /// The segment's change counter (``qshm.Notifier``), in its header: ``notify()`` after
    /// writing, ``wait(seen, timeout)`` for a change in any process (Rust and C ones too).
    fn notifier(&self, py: Python<'_>) -> PyResult<Notifier> {
        let seg = Arc::clone(self.seg(py)?);
        py.detach(move || seg.notifier()).py(py).map(Notifier::new)
    }

    /// Unmaps and closes; returns whether this was the last user of a
    /// remove-on-last-detach file, which is now removed. Refused while a guard of this
    /// object is alive.
    fn detach(&mut self, py: Python<'_>) -> PyResult<bool> {
        let Some(arc) = self.inner.take() else {
            return Ok(false);
        };
        match Arc::try_unwrap(arc) {
            Ok(seg) => py.detach(|| seg.detach()).py(py),
            Err(arc) => {
                self.inner = Some(arc);
                Err(errors::make(
                    py,
                    "LockError",
                    &format!(
                        "cannot detach mapped segment `{}`: a lock guard of it is still alive \
                         (unlock it first)",
                        self.label
                    ),
                    None,
                ))
            }
        }
    }

    /// Removes the segment file ``path`` (``/dev/shm``-relative or absolute) if no process
    /// uses it; returns whether it was removed.
    #[staticmethod]
    fn remove_file(py: Python<'_>, path: &str) -> PyResult<bool> {
        qshm::mapped::MappedSegment::remove_file(path).py(py)
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Detaches. A failure to detach is raised, unless an exception is already
    /// propagating: that one goes on, with the failure as a note.
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        if let Err(e) = self.detach(py) {
            errors::note_or_raise(py, exc_type, exc, e)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match &self.inner {
            Some(s) => format!(
                "<qshm.MappedSegment {} {:?} size={}>",
                format!("{:?}", s.backing()).to_lowercase(),
                self.label,
                s.size()
            ),
            None => format!("<qshm.MappedSegment {:?} detached>", self.label),
        }
    }
}
