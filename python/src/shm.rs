//! `qshm.SharedMemory`: Qt's `QSharedMemory`.

use std::str::FromStr;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::errors::{self, IntoPy};
use crate::guard::{static_ref, Held, LockGuard, Owner};
use crate::notify::Notifier;
use crate::wait;

/// A Qt legacy key type from its Python name.
pub(crate) fn key_type(py: Python<'_>, name: &str) -> PyResult<qshm::KeyType> {
    match name {
        "systemv" | "sysv" => Ok(qshm::KeyType::SystemV),
        "posix" => Ok(qshm::KeyType::PosixRealtime),
        "windows" => Ok(qshm::KeyType::Windows),
        _ => Err(errors::make(
            py,
            "KeyError",
            &format!("unknown key type {name:?}: \"systemv\", \"posix\" or \"windows\""),
            None,
        )),
    }
}

/// The Python name of a key type.
pub(crate) fn type_name(t: qshm::KeyType) -> &'static str {
    match t {
        qshm::KeyType::PosixRealtime => "posix",
        qshm::KeyType::Windows => "windows",
        _ => "systemv",
    }
}

/// A native key from its `QNativeIpcKey` text form.
pub(crate) fn parse_native(py: Python<'_>, text: &str) -> PyResult<qshm::NativeKey> {
    qshm::NativeKey::from_str(text).py(py)
}

/// A named shared memory segment shared by threads and processes: Qt's ``QSharedMemory``.
///
/// ``SharedMemory(key)`` names the segment a Qt program's ``QSharedMemory(key)`` names (Qt's
/// default key type: System V on Linux); ``type="posix"`` gives the segment of Qt's
/// ``QSharedMemory::legacyNativeKey(key, PosixRealtime)``; ``SharedMemory.from_native(text)``
/// takes a ``QNativeIpcKey`` text form (``"posix:/name"``, ``"systemv:/path"``).
///
/// ``create(size)`` makes the segment and attaches to it; ``attach()`` attaches to one
/// another process made. The bytes are reached through ``lock()``, whose guard lends them
/// while it holds the segment's cross-process lock, the same lock Qt's ``lock()`` takes.
///
/// As on Unix in Qt, the segment belongs to all its users together: the last ``detach()``
/// (or garbage collection of the last attached object) anywhere destroys it.
///
/// Threads may share one object: ``lock()`` excludes them from each other as it excludes
/// processes, and releases the GIL while it waits. ``create``, ``attach`` and ``detach``
/// raise ``qshm.Error`` (kind ``"LockError"``) while a guard of this object is alive.
///
/// Pickling passes the key, never the memory: the unpickled object is not attached.
#[pyclass(module = "qshm", name = "SharedMemory")]
pub(crate) struct SharedMemory {
    inner: Arc<qshm::SharedMemory>,
    /// The legacy key and its type, for `__repr__`, `key`, `type` and pickling.
    legacy: Option<String>,
    /// The native key's text form, made once (every guard names it).
    label: Arc<str>,
}

impl SharedMemory {
    /// `&mut` to the library object: refused while a guard keeps a clone of the Arc.
    fn exclusive(&mut self, py: Python<'_>, what: &str) -> PyResult<&mut qshm::SharedMemory> {
        let label = Arc::clone(&self.label);
        Arc::get_mut(&mut self.inner).ok_or_else(|| {
            errors::make(
                py,
                "LockError",
                &format!(
                    "cannot {what} shared memory `{label}`: a lock guard of this object is \
                     still alive (unlock it first)"
                ),
                None,
            )
        })
    }

    fn label(&self) -> String {
        self.label.to_string()
    }

    fn wrap(shm: qshm::SharedMemory, legacy: Option<String>) -> SharedMemory {
        SharedMemory {
            label: shm.native_key().to_string().into(),
            inner: Arc::new(shm),
            legacy,
        }
    }

    fn guard(
        &self,
        py: Python<'_>,
        deadline: Option<std::time::Instant>,
        poll_only: bool,
    ) -> PyResult<LockGuard> {
        let arc = Arc::clone(&self.inner);
        // SAFETY: `arc` goes into the `Held` with every guard made from `shm`, and is
        // dropped after that guard (`Held`'s field order); no `&mut` to the object is taken
        // while it lives (`exclusive` fails while this clone exists).
        let shm: &'static qshm::SharedMemory = unsafe { static_ref(&arc) };
        let guard = if poll_only {
            shm.try_lock().py(py)?
        } else {
            wait::wait(py, deadline, || shm.try_lock(), |d| shm.lock_timeout(d))?
        };
        Ok(LockGuard::new(
            Held::new(guard, Owner::Shm(arc)),
            Arc::clone(&self.label),
        ))
    }
}

#[pymethods]
impl SharedMemory {
    /// A handle for the Qt key ``key`` (not attached yet). ``type`` is the Qt key type:
    /// ``"systemv"`` (Qt's default on Linux) or ``"posix"`` (``PosixRealtime``).
    #[new]
    #[pyo3(signature = (key, r#type = "systemv"), text_signature = "(key, type='systemv')")]
    fn new(py: Python<'_>, key: &str, r#type: &str) -> PyResult<SharedMemory> {
        let t = key_type(py, r#type)?;
        Ok(SharedMemory::wrap(
            qshm::SharedMemory::with_native_key(qshm::NativeKey::legacy(key, t)),
            Some(key.to_owned()),
        ))
    }

    /// A handle for a native key in ``QNativeIpcKey``'s text form: ``"posix:/name"``
    /// (``shm_open`` name ``/name``), ``"systemv:/path"`` (``ftok`` of that file).
    #[staticmethod]
    fn from_native(py: Python<'_>, key: &str) -> PyResult<SharedMemory> {
        let native = parse_native(py, key)?;
        let legacy = native.legacy_key().map(str::to_owned);
        Ok(SharedMemory::wrap(
            qshm::SharedMemory::with_native_key(native),
            legacy,
        ))
    }

    /// Creates the segment of ``size`` bytes (zero-filled) and attaches to it.
    ///
    /// Raises ``FileExistsError`` (kind ``"AlreadyExists"``) if it exists,
    /// ``qshm.Error`` kind ``"InvalidSize"`` for a size of 0.
    #[pyo3(signature = (size, readonly = false))]
    fn create(&mut self, py: Python<'_>, size: usize, readonly: bool) -> PyResult<()> {
        let mode = access(readonly);
        let shm = self.exclusive(py, "create")?;
        py.detach(|| shm.create(size, mode)).py(py)
    }

    /// Attaches to the existing segment, read-write or ``readonly``.
    ///
    /// Raises ``FileNotFoundError`` (kind ``"NotFound"``) if there is none.
    #[pyo3(signature = (readonly = false))]
    fn attach(&mut self, py: Python<'_>, readonly: bool) -> PyResult<()> {
        let mode = access(readonly);
        let shm = self.exclusive(py, "attach")?;
        py.detach(|| shm.attach(mode)).py(py)
    }

    /// Detaches; the last detach anywhere destroys the segment.
    fn detach(&mut self, py: Python<'_>) -> PyResult<()> {
        let shm = self.exclusive(py, "detach")?;
        py.detach(|| shm.detach()).py(py)
    }

    /// The segment's change counter (``qshm.Notifier``): ``notify()`` after writing,
    /// ``wait(seen, timeout)`` for a change in any process. It lives in a companion file
    /// that Qt ignores, made by the first caller and removed with the segment. Raises
    /// ``qshm.Error`` kind ``"NotAttached"`` when not attached.
    fn notifier(&self, py: Python<'_>) -> PyResult<Notifier> {
        let shm = Arc::clone(&self.inner);
        py.detach(move || shm.notifier()).py(py).map(Notifier::new)
    }

    /// Takes the segment's lock, waiting at most ``timeout`` seconds (``None`` or
    /// ``math.inf``: forever), and returns the guard that lends the bytes; use it as
    /// ``with m.lock() as g:``.
    ///
    /// The GIL is released while waiting, and Ctrl-C (``KeyboardInterrupt``) ends the wait
    /// with nothing locked. Raises ``TimeoutError`` (kind ``"Timeout"``) when the lock
    /// stayed held, ``qshm.Error`` kind ``"LockError"`` when not attached or when this
    /// thread holds it already.
    #[pyo3(signature = (timeout = None))]
    fn lock(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<LockGuard> {
        let deadline = wait::deadline(timeout)?;
        self.guard(py, deadline, false)
    }

    /// Takes the lock if it is free, without waiting; raises ``BlockingIOError`` (kind
    /// ``"WouldBlock"``) if it is held.
    fn try_lock(&self, py: Python<'_>) -> PyResult<LockGuard> {
        self.guard(py, None, true)
    }

    /// Removes the segment of the native key ``native_key`` (text form) if nobody is
    /// attached to it, with its key file and lock: what a crashed last user leaves behind.
    /// Returns whether a segment was removed.
    ///
    /// Qt never removes a POSIX segment on Linux (it lives until reboot or ``shm_unlink``):
    /// this is how to remove one.
    #[staticmethod]
    fn remove_orphan(py: Python<'_>, native_key: &str) -> PyResult<bool> {
        let key = parse_native(py, native_key)?;
        py.detach(|| qshm::SharedMemory::remove_orphan(&key)).py(py)
    }

    /// Removes the segment of the native key ``native_key`` (text form), with its key file
    /// and lock, even while processes are attached (they keep their mapping until they
    /// detach; nobody new can attach). Returns whether a segment was removed.
    #[staticmethod]
    fn force_remove(py: Python<'_>, native_key: &str) -> PyResult<bool> {
        let key = parse_native(py, native_key)?;
        py.detach(|| qshm::SharedMemory::force_remove(&key)).py(py)
    }

    /// The segment's size in bytes (0 when not attached).
    #[getter]
    fn size(&self) -> usize {
        self.inner.size()
    }

    /// Whether this object is attached to the segment.
    #[getter]
    fn is_attached(&self) -> bool {
        self.inner.is_attached()
    }

    /// Whether the attachment is read-only (``None`` when not attached).
    #[getter]
    fn readonly(&self) -> Option<bool> {
        self.inner
            .access_mode()
            .map(|m| m == qshm::AccessMode::ReadOnly)
    }

    /// The Qt (legacy) key, or ``None`` for a handle made from a native key alone.
    #[getter]
    fn key(&self) -> Option<String> {
        self.legacy.clone()
    }

    /// The key type: ``"systemv"``, ``"posix"`` or ``"windows"``.
    #[getter]
    fn r#type(&self) -> &'static str {
        type_name(self.inner.native_key().key_type())
    }

    /// The native key in ``QNativeIpcKey``'s text form (``QNativeIpcKey::toString()``).
    #[getter]
    fn native_key(&self) -> String {
        self.label()
    }

    /// The operating system's name for the segment: a file path (System V, whose ``ftok``
    /// names the segment) or a ``shm_open`` name (POSIX).
    #[getter]
    fn native_name(&self) -> String {
        self.inner.native_key().native_key().to_owned()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Detaches if attached. A failure to detach is raised, unless an exception is
    /// already propagating: that one goes on, with the failure as a note.
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        if self.inner.is_attached() {
            if let Err(e) = self.detach(py) {
                errors::note_or_raise(py, exc_type, exc, e)?;
            }
        }
        Ok(false)
    }

    /// Pickles the key only: the unpickled object is not attached.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.borrow();
        let cls = slf.get_type();
        let (ctor, args): (Bound<'py, PyAny>, Bound<'py, PyTuple>) =
            match (&this.legacy, this.inner.native_key().key_type()) {
                (Some(key), t) if qshm::NativeKey::legacy(key, t) == *this.inner.native_key() => (
                    cls.into_any(),
                    (key.as_str(), type_name(t)).into_pyobject(py)?,
                ),
                _ => (
                    cls.getattr("from_native")?,
                    (this.label(),).into_pyobject(py)?,
                ),
            };
        (ctor, args).into_pyobject(py)
    }

    fn __repr__(&self) -> String {
        let key = match &self.legacy {
            Some(k) => format!("key={k:?} type={:?}", self.r#type()),
            None => format!("native_key={:?}", self.label()),
        };
        if self.inner.is_attached() {
            format!(
                "<qshm.SharedMemory {key} size={} {}>",
                self.inner.size(),
                if self.readonly() == Some(true) {
                    "attached read-only"
                } else {
                    "attached"
                }
            )
        } else {
            format!("<qshm.SharedMemory {key} not attached>")
        }
    }
}

/// The library's access mode for a `readonly` flag.
pub(crate) fn access(readonly: bool) -> qshm::AccessMode {
    if readonly {
        qshm::AccessMode::ReadOnly
    } else {
        qshm::AccessMode::ReadWrite
    }
}
