//! `qshm.LockGuard`: a held lock and the bytes it lends.
//!
//! The library's [`qshm::LockGuard`] borrows its segment; a Python object cannot. Here the
//! guard keeps the segment alive itself (an `Arc`), and borrows it for as long as it keeps
//! it ([`Held`]).
//!
//! # How no Python object reaches the segment unlocked
//!
//! * Indexing, slicing, `read` and `write` reach the segment through the library's guard,
//!   and only while it is held: after `unlock` (or `__exit__`) they raise `qshm.Error`.
//! * Buffer exports (`memoryview(g)`, `numpy.frombuffer(g)`, `bytes(g)`) never point into
//!   the segment: the first export of a lock copies the segment into a private buffer (the
//!   *staging copy*), every export and every index operation of that lock then goes to that
//!   copy, and `unlock` writes it back into the segment (if any export was writable) before
//!   releasing the lock. An export kept past `unlock` still points to the copy, which lives
//!   as long as the guard object (each export holds a reference to it): it reads the bytes
//!   as they were at unlock, its writes go nowhere, and it never touches shared memory,
//!   unlocked or unmapped.
//! * The number of live exports is counted (PEP 3118 `__releasebuffer__`); `exports` tells
//!   it, and the staging copy is freed once the lock is released and no export is left.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::sync::Arc;

use pyo3::exceptions::{PyBufferError, PyIndexError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PySlice};

use crate::errors::{self, IntoPy};

/// What keeps a locked segment alive: the guard borrows from it.
#[allow(dead_code)] // never read: held only so that the segment outlives the guard
pub(crate) enum Owner {
    /// A `qshm.SharedMemory`'s segment.
    Shm(Arc<qshm::SharedMemory>),
    /// A `qshm.MappedSegment`.
    Mapped(Arc<qshm::mapped::MappedSegment>),
}

/// A `'static` borrow of what `arc` points to.
///
/// # Safety
///
/// The caller keeps `arc` (or a clone of it) alive, and never takes `&mut` to its value
/// (`Arc::get_mut` fails while the clone lives), for as long as the returned reference or
/// anything borrowed from it is used.
pub(crate) unsafe fn static_ref<T>(arc: &Arc<T>) -> &'static T {
    // SAFETY: the value lives on the heap behind the Arc and does not move; the caller
    // keeps an Arc to it, so it is not freed, and holds no `&mut` to it, while the
    // reference is used (this function's contract).
    unsafe { &*Arc::as_ptr(arc) }
}

/// A held lock, with what keeps its segment alive.
pub(crate) struct Held {
    /// Declared first, so that it is dropped (unlocking) before `_owner`: it borrows from it.
    guard: qshm::LockGuard<'static>,
    _owner: Owner,
}

impl Held {
    /// A guard of `owner`'s segment (borrowed through [`static_ref`] of `owner`'s Arc).
    pub(crate) fn new(guard: qshm::LockGuard<'static>, owner: Owner) -> Held {
        Held {
            guard,
            _owner: owner,
        }
    }
}

/// Holds a segment's lock and lends its bytes; unlocking ends the loan.
///
/// Returned by ``SharedMemory.lock()``, ``try_lock()`` and their ``MappedSegment``
/// counterparts. Use it as a context manager (``with m.lock() as g:``): leaving the block
/// unlocks, whatever happens in it.
///
/// While locked it is a mutable byte sequence: ``g[0]``, ``g[2:7]``, ``g[0:5] = b"hello"``,
/// ``len(g)``, ``g.read()``, ``g.write()``, and it exports the buffer protocol
/// (``memoryview(g)``, ``numpy.frombuffer(g, dtype=...)``, ``bytes(g)``). Indexing reads and
/// writes the segment directly. A buffer export is a private copy of the segment made
/// under the lock and written back when the lock is released, so an export kept after the
/// lock never reaches shared memory: it holds the bytes as they were at unlock, and writes
/// to it are lost.
///
/// A read-only attachment gives read-only exports and refuses writes with ``TypeError``.
///
/// The guard belongs to the thread that took the lock (the lock is that thread's): using
/// it from another thread raises PyO3's ``PanicException``; one dropped on another thread is never
/// unlocked, so unlock it where it was taken (a ``with`` block does).
#[pyclass(unsendable, module = "qshm", name = "LockGuard")]
pub(crate) struct LockGuard {
    held: Option<Held>,
    /// The staging copy of this lock's buffer exports (see the module docs). Cells: exports
    /// write it through raw pointers while this object holds it.
    staging: Option<Box<[Cell<u8>]>>,
    /// Whether an export of this lock could write (so `unlock` writes the copy back).
    exported_writable: bool,
    /// Live buffer exports.
    exports: usize,
    writable: bool,
    len: usize,
    owner_died: bool,
    label: Arc<str>,
}

impl LockGuard {
    /// A guard over a freshly taken lock.
    pub(crate) fn new(mut held: Held, label: Arc<str>) -> LockGuard {
        // `as_mut_slice` fails exactly for a read-only mapping.
        let writable = held.guard.as_mut_slice().is_ok();
        let len = held.guard.len();
        let owner_died = held.guard.owner_died();
        LockGuard {
            held: Some(held),
            staging: None,
            exported_writable: false,
            exports: 0,
            writable,
            len,
            owner_died,
            label,
        }
    }

    fn held(&self, py: Python<'_>) -> PyResult<&qshm::LockGuard<'static>> {
        match &self.held {
            Some(h) => Ok(&h.guard),
            None => Err(self.unlocked(py)),
        }
    }

    fn unlocked(&self, py: Python<'_>) -> PyErr {
        errors::make(
            py,
            "LockError",
            &format!(
                "the lock of `{}` was released: this guard lends no bytes any more",
                self.label
            ),
            None,
        )
    }

    fn read_only(&self) -> PyErr {
        PyTypeError::new_err(format!(
            "`{}` is attached read-only: its bytes cannot be written",
            self.label
        ))
    }

    /// Reads `len` bytes at `start` with step `step` (already bounds-checked).
    fn get(&self, py: Python<'_>, start: usize, step: usize, n: usize) -> PyResult<Vec<u8>> {
        let held = self.held(py)?;
        let idx = (0..n).map(|i| start + i * step);
        Ok(match &self.staging {
            Some(s) => idx.map(|i| s[i].get()).collect(),
            None => {
                let bytes = held.as_slice();
                if step == 1 {
                    bytes[start..start + n].to_vec()
                } else {
                    idx.map(|i| bytes[i]).collect()
                }
            }
        })
    }

    /// Writes `data` at `start` with step `step` (already bounds-checked).
    fn put(&mut self, py: Python<'_>, start: usize, step: usize, data: &[u8]) -> PyResult<()> {
        if !self.writable {
            self.held(py)?;
            return Err(self.read_only());
        }
        let Some(held) = &mut self.held else {
            return Err(self.unlocked(py));
        };
        match &self.staging {
            Some(s) => {
                for (i, b) in data.iter().enumerate() {
                    s[start + i * step].set(*b);
                }
                // The copy now differs from the segment: write it back at unlock.
                self.exported_writable = true;
            }
            None => {
                let bytes = held.guard.as_mut_slice().py(py)?;
                if step == 1 {
                    bytes[start..start + data.len()].copy_from_slice(data);
                } else {
                    for (i, b) in data.iter().enumerate() {
                        bytes[start + i * step] = *b;
                    }
                }
            }
        }
        Ok(())
    }

    /// Resolves an index or slice into (start, step, count), `step` > 0 only.
    fn resolve(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Resolved> {
        self.held(py)?;
        if let Ok(slice) = key.cast::<PySlice>() {
            let ind = slice.indices(self.len as isize)?;
            if ind.step <= 0 {
                return Err(PyValueError::new_err(
                    "only slices with a positive step are supported",
                ));
            }
            return Ok(Resolved::Slice(
                ind.start as usize,
                ind.step as usize,
                ind.slicelength,
            ));
        }
        let i: isize = key
            .extract()
            .map_err(|_| PyTypeError::new_err("LockGuard indices must be integers or slices"))?;
        let i = if i < 0 { i + self.len as isize } else { i };
        if i < 0 || i as usize >= self.len {
            return Err(PyIndexError::new_err("LockGuard index out of range"));
        }
        Ok(Resolved::Index(i as usize))
    }

    /// Writes the staging copy back (when an export could have changed it) and unlocks.
    fn release(&mut self, py: Python<'_>) -> PyResult<()> {
        let Some(mut held) = self.held.take() else {
            return Ok(());
        };
        if let (Some(s), true) = (&self.staging, self.exported_writable) {
            if let Ok(bytes) = held.guard.as_mut_slice() {
                for (d, c) in bytes.iter_mut().zip(s.iter()) {
                    *d = c.get();
                }
            }
        }
        if self.exports == 0 {
            self.staging = None;
        }
        let Held { guard, _owner } = held;
        let result = guard.unlock();
        drop(_owner);
        result.py(py)
    }
}

enum Resolved {
    Index(usize),
    Slice(usize, usize, usize),
}

/// Bytes of a Python bytes-like object.
fn bytes_of(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    let buf = pyo3::buffer::PyBuffer::<u8>::get(value)
        .map_err(|_| PyTypeError::new_err("a bytes-like object is required"))?;
    buf.to_vec(value.py())
}

#[pymethods]
impl LockGuard {
    /// True until ``unlock()`` (or the end of the ``with`` block).
    #[getter]
    fn locked(&self) -> bool {
        self.held.is_some()
    }

    /// True when a previous holder died holding the lock, so that the data may be
    /// half-written. It stays true for later holders until one calls
    /// ``mark_consistent()``. Locks that cannot tell (System V's, which the kernel gives
    /// back silently) report False.
    #[getter]
    fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// After ``owner_died``: declares the data repaired, so that the next holder is not
    /// told again.
    fn mark_consistent(&mut self, py: Python<'_>) -> PyResult<()> {
        match &mut self.held {
            Some(h) => {
                h.guard.mark_consistent();
                Ok(())
            }
            None => Err(self.unlocked(py)),
        }
    }

    /// Whether the bytes can be written (False for a read-only attachment).
    #[getter]
    fn writable(&self) -> bool {
        self.writable
    }

    /// The number of live buffer exports (memoryviews, numpy arrays) of this guard.
    #[getter]
    fn exports(&self) -> usize {
        self.exports
    }

    /// Writes back what buffer exports changed and releases the lock. Does nothing if
    /// already released. Exports made under the lock stay valid, detached from the
    /// segment: see the class documentation.
    fn unlock(&mut self, py: Python<'_>) -> PyResult<()> {
        self.release(py)
    }

    /// ``size`` bytes at ``offset`` (to the end by default), as ``bytes``.
    #[pyo3(signature = (offset = 0, size = None))]
    fn read(&self, py: Python<'_>, offset: usize, size: Option<usize>) -> PyResult<Py<PyBytes>> {
        self.held(py)?;
        let size = size.unwrap_or(self.len.saturating_sub(offset));
        if offset.checked_add(size).is_none_or(|end| end > self.len) {
            return Err(PyValueError::new_err(format!(
                "{size} bytes at offset {offset} pass the end of the segment ({} bytes)",
                self.len
            )));
        }
        let v = self.get(py, offset, 1, size)?;
        Ok(PyBytes::new(py, &v).unbind())
    }

    /// Writes the bytes-like ``data`` at ``offset``.
    #[pyo3(signature = (data, offset = 0))]
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>, offset: usize) -> PyResult<()> {
        self.held(py)?;
        let data = bytes_of(data)?;
        if offset
            .checked_add(data.len())
            .is_none_or(|end| end > self.len)
        {
            return Err(PyValueError::new_err(format!(
                "{} bytes at offset {offset} pass the end of the segment ({} bytes)",
                data.len(),
                self.len
            )));
        }
        self.put(py, offset, 1, &data)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.held(py)?;
        Ok(self.len)
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        match self.resolve(py, key)? {
            Resolved::Index(i) => Ok(self.get(py, i, 1, 1)?[0]
                .into_pyobject(py)?
                .into_any()
                .unbind()),
            Resolved::Slice(start, step, n) => {
                let v = self.get(py, start, step, n)?;
                Ok(PyBytes::new(py, &v).into_any().unbind())
            }
        }
    }

    fn __setitem__(
        &mut self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        match self.resolve(py, key)? {
            Resolved::Index(i) => {
                let b: u8 = value
                    .extract()
                    .map_err(|_| PyValueError::new_err("byte must be in range(0, 256)"))?;
                self.put(py, i, 1, &[b])
            }
            Resolved::Slice(start, step, n) => {
                let data = bytes_of(value)?;
                if data.len() != n {
                    return Err(PyValueError::new_err(format!(
                        "cannot resize a segment: assigning {} bytes to a slice of {n}",
                        data.len()
                    )));
                }
                self.put(py, start, step, &data)
            }
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Unlocks (writing back what buffer exports changed); never swallows the exception.
    fn __exit__(
        &mut self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.release(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<qshm.LockGuard key={:?} size={} {}{}{}>",
            self.label,
            self.len,
            if self.held.is_some() {
                "locked"
            } else {
                "unlocked"
            },
            if self.owner_died { " owner_died" } else { "" },
            if self.exports > 0 {
                format!(" exports={}", self.exports)
            } else {
                String::new()
            }
        )
    }

    /// The buffer protocol (PEP 3118): a one-dimensional buffer of unsigned bytes over the
    /// staging copy (see the class documentation), read-only for a read-only attachment.
    ///
    /// # Safety
    ///
    /// Called by the interpreter (`bf_getbuffer`) with `view` null or a `Py_buffer` to fill.
    unsafe fn __getbuffer__(
        mut slf: PyRefMut<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let py = slf.py();
        if view.is_null() {
            return Err(PyBufferError::new_err("null view"));
        }
        let writable = slf.writable;
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE && !writable {
            return Err(PyBufferError::new_err(format!(
                "`{}` is attached read-only: its buffer is read-only",
                slf.label
            )));
        }
        if slf.staging.is_none() {
            let copy: Box<[Cell<u8>]> = slf
                .held(py)?
                .as_slice()
                .iter()
                .map(|b| Cell::new(*b))
                .collect();
            slf.staging = Some(copy);
        } else {
            slf.held(py)?;
        }
        if writable {
            slf.exported_writable = true;
        }
        let (ptr, len) = {
            let s = slf.staging.as_ref().expect("made above");
            (s.as_ptr().cast::<u8>().cast_mut(), s.len())
        };
        slf.exports += 1;
        let obj = slf.into_pyobject(py)?.into_any().unbind();
        // SAFETY: `view` is a non-null `Py_buffer` that the interpreter lends for this call
        // (checked above). `ptr..ptr+len` is the staging copy: a heap allocation of `Cell`s
        // (writes through a shared pointer are allowed), never moved or freed while an
        // export lives (it is freed only when `exports` is 0, and dropped with this object,
        // which `obj` keeps alive until the export is released), and never shared memory.
        // `shape` and `strides` point into the view itself, which outlives its use.
        unsafe {
            (*view).obj = obj.into_ptr();
            (*view).buf = ptr.cast::<c_void>();
            (*view).len = len as ffi::Py_ssize_t;
            (*view).readonly = c_int::from(!writable);
            (*view).itemsize = 1;
            (*view).format = if flags & ffi::PyBUF_FORMAT == ffi::PyBUF_FORMAT {
                c"B".as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = 1;
            (*view).shape = if flags & ffi::PyBUF_ND == ffi::PyBUF_ND {
                &raw mut (*view).len
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if flags & ffi::PyBUF_STRIDES == ffi::PyBUF_STRIDES {
                &raw mut (*view).itemsize
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
        }
        Ok(())
    }

    /// Counts an export's end; frees the staging copy once unlocked and unexported.
    ///
    /// # Safety
    ///
    /// Called by the interpreter (`bf_releasebuffer`) with a view `__getbuffer__` filled;
    /// the view itself is not read.
    unsafe fn __releasebuffer__(mut slf: PyRefMut<'_, Self>, _view: *mut ffi::Py_buffer) {
        slf.exports = slf.exports.saturating_sub(1);
        if slf.exports == 0 && slf.held.is_none() {
            slf.staging = None;
        }
    }
}
