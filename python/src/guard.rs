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
//!   releasing the lock.
//! * Live exports are counted (PEP 3118 `__getbuffer__` / `__releasebuffer__`). Unlocking
//!   with exports alive is an error made loud, not prevented: the copy is written back and
//!   the lock released all the same (a lock must never stay held by a forgotten view), then
//!   `unlock`/`__exit__` raise `LiveExportsError` (a `BufferError`, as `mmap.close()` raises
//!   with exports), unless an exception is already propagating through `__exit__`, which
//!   gets a note instead of being replaced. The late exports keep pointing to the copy,
//!   which lives as long as they do (each holds a reference to the guard): they read the
//!   bytes as they were at unlock, their writes reach no one, and they never touch shared
//!   memory, unlocked or unmapped.
//!
//! # Threads
//!
//! The lock belongs to the thread that took it (the library's guard is neither `Send` nor
//! `Sync`). The Python object may still be reached, and freed, from any thread, so the held
//! lock is wrapped in a [`ThreadBound`], touched only on its thread: from another thread
//! every operation raises `qshm.Error` (kind `"LockError"`), and a guard garbage-collected
//! on another thread without `unlock` is leaked (its lock stays held by its thread), with
//! an unraisable-exception report.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use pyo3::exceptions::{PyBufferError, PyIndexError, PyOverflowError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PySlice};

use crate::errors::{self, IntoPy};

/// What keeps a locked segment alive: the guard borrows from it.
pub(crate) enum Owner {
    /// A `qshm.SharedMemory`'s segment.
    Shm(Arc<qshm::SharedMemory>),
    /// A `qshm.MappedSegment` (its lock checks its file's size itself).
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
    /// Declared first, so that it is dropped (unlocking) before `owner`: it borrows from it.
    guard: qshm::LockGuard<'static>,
    owner: Owner,
}

impl Held {
    /// A guard of `owner`'s segment (borrowed through [`static_ref`] of `owner`'s Arc).
    pub(crate) fn new(guard: qshm::LockGuard<'static>, owner: Owner) -> Held {
        Held { guard, owner }
    }
}

/// This thread's number: unique for the life of the process (never reused, unlike a
/// `pthread_t`), `None` once the thread's locals are being destroyed.
fn this_thread() -> Option<u64> {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ID: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    ID.try_with(|id| *id).ok()
}

/// A [`Held`] lock bound to the thread that took it: touched (borrowed, taken out, dropped)
/// only on that thread.
struct ThreadBound {
    thread: u64,
    held: ManuallyDrop<Held>,
}

// SAFETY: the `Held` inside, which is neither `Send` nor `Sync`, is touched only on
// `thread`, the thread that made this wrapper: `get`, `get_mut` and `into_inner` check the
// current thread first, and `drop` leaks it on any other thread. What another thread can
// reach through the wrapper is `thread`, a plain number.
unsafe impl Send for ThreadBound {}
// SAFETY: as for `Send`: through `&ThreadBound`, another thread reads only `thread`.
unsafe impl Sync for ThreadBound {}

impl ThreadBound {
    /// Binds `held` to the current thread (the one that took the lock).
    fn new(held: Held) -> ThreadBound {
        ThreadBound {
            // A thread being torn down takes no lock; 0 is no thread's number.
            thread: this_thread().unwrap_or(0),
            held: ManuallyDrop::new(held),
        }
    }

    fn on_thread(&self) -> bool {
        this_thread() == Some(self.thread)
    }

    fn get(&self) -> Option<&Held> {
        self.on_thread().then_some(&*self.held)
    }

    fn get_mut(&mut self) -> Option<&mut Held> {
        if self.on_thread() {
            Some(&mut *self.held)
        } else {
            None
        }
    }

    /// The held lock, on its thread; the wrapper back on another.
    fn into_inner(self) -> Result<Held, ThreadBound> {
        if !self.on_thread() {
            return Err(self);
        }
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used nor dropped again (ManuallyDrop, shadowing nothing),
        // so the value is taken out exactly once.
        Ok(unsafe { ManuallyDrop::take(&mut this.held) })
    }
}

impl Drop for ThreadBound {
    /// Unlocks on the lock's thread; elsewhere leaks it, lock held (it cannot be released
    /// by another thread): `LockGuard`'s drop reports it.
    fn drop(&mut self) {
        if self.on_thread() {
            // SAFETY: dropped once, here; the field is not used again.
            unsafe { ManuallyDrop::drop(&mut self.held) }
        }
    }
}

/// The staging copy of a lock's buffer exports: bytes that the exports read and write
/// through raw pointers, hence `Cell`s.
struct Staging(Box<[Cell<u8>]>);

// SAFETY: `Sync` (`Send` it is already): this module reads and writes the cells only while
// holding the GIL, in methods of `LockGuard` that never release it, so no two threads run
// these accesses at once; the module does not declare itself free-threading-safe, so a
// free-threaded interpreter re-enables the GIL when importing it. Buffer consumers that
// write through the exported pointer without the GIL synchronize themselves, as they must
// for any `bytearray`.
unsafe impl Sync for Staging {}

impl Staging {
    fn new(bytes: &[u8]) -> Staging {
        Staging(bytes.iter().map(|b| Cell::new(*b)).collect())
    }

    fn get(&self, i: usize) -> u8 {
        self.0[i].get()
    }

    fn set(&self, i: usize, b: u8) {
        self.0[i].set(b);
    }

    fn copy_to(&self, dst: &mut [u8]) {
        for (d, c) in dst.iter_mut().zip(self.0.iter()) {
            *d = c.get();
        }
    }

    fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr().cast::<u8>().cast_mut()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Holds a segment's lock and lends its bytes; unlocking ends the loan.
///
/// Returned by ``SharedMemory.lock()``, ``try_lock()`` and their ``MappedSegment``
/// counterparts. Use it as a context manager (``with m.lock() as g:``): leaving the block
/// unlocks, whatever happens in it.
///
/// While locked it is a mutable byte sequence: ``g[0]``, ``g[-1]``, ``g[2:7]``, ``g[::2]``,
/// ``g[0:5] = b"hello"``, ``len(g)``, ``g.read()``, ``g.write()``, and it exports the buffer
/// protocol (``memoryview(g)``, ``numpy.frombuffer(g, dtype=...)``, ``bytes(g)``). After
/// unlock every access raises ``qshm.Error`` (kind ``"LockError"``).
///
/// Indexing reads and writes the segment directly. A buffer export is a private copy of
/// the segment made under the lock (one per lock, shared by its exports) and written back
/// when the lock is released, so an export never points into shared memory. End exports
/// inside the block (``with memoryview(g) as v:``, or ``del``/``release()`` them): leaving
/// the block, or ``unlock()``, with exports alive still writes back what they wrote and
/// releases the lock, then raises ``qshm.LiveExportsError`` (a ``BufferError``; when an
/// exception is already propagating, a note on it instead). The late exports hold a copy
/// detached from the segment: they read the bytes as they were at unlock, and their writes
/// reach no one.
///
/// A read-only attachment gives read-only exports and refuses writes with ``TypeError``.
///
/// The guard belongs to the thread that took the lock (the lock is that thread's): from
/// another thread every operation raises ``qshm.Error`` (kind ``"LockError"``), and one
/// garbage-collected on another thread without ``unlock()`` leaves its lock held, so
/// unlock it where it was taken (a ``with`` block does).
#[pyclass(module = "qshm", name = "LockGuard")]
pub(crate) struct LockGuard {
    held: Option<ThreadBound>,
    /// The staging copy of this lock's buffer exports (see the module docs).
    staging: Option<Staging>,
    /// Whether an export of this lock could write (so `unlock` writes the copy back).
    exported_writable: bool,
    /// Live buffer exports, shared with them (`Py_buffer.internal`), so that
    /// `__releasebuffer__` counts even while another method borrows the guard.
    /// Made at the first export, so that a lock without exports allocates nothing.
    exports: Option<Arc<AtomicUsize>>,
    writable: bool,
    len: usize,
    owner_died: bool,
    /// Whether the segment was found whole (not shrunk by another process) since this lock
    /// was taken: checked before the first touch of its bytes ([`LockGuard::bytes`]).
    /// (Only its thread reaches it: see [`ThreadBound`].)
    backed: AtomicBool,
    label: Arc<str>,
}

impl LockGuard {
    /// A guard over a freshly taken lock (by the current thread).
    pub(crate) fn new(mut held: Held, label: Arc<str>) -> LockGuard {
        // `as_mut_slice` fails exactly for a read-only mapping.
        let writable = held.guard.as_mut_slice().is_ok();
        let len = held.guard.len();
        let owner_died = held.guard.owner_died();
        LockGuard {
            held: Some(ThreadBound::new(held)),
            staging: None,
            exported_writable: false,
            exports: None,
            writable,
            len,
            owner_died,
            backed: AtomicBool::new(false),
            label,
        }
    }

    /// The library's guard, if the lock is held and this is its thread.
    fn held(&self, py: Python<'_>) -> PyResult<&qshm::LockGuard<'static>> {
        self.held_entry(py).map(|h| &h.guard)
    }

    /// The held lock and its owner, if the lock is held and this is its thread.
    fn held_entry(&self, py: Python<'_>) -> PyResult<&Held> {
        match &self.held {
            None => Err(self.unlocked(py)),
            Some(b) => b.get().ok_or_else(|| self.other_thread(py)),
        }
    }

    /// The library's guard, to touch the bytes: [`held`](LockGuard::held), and before the
    /// first touch in this lock, [`check_backed`](LockGuard::check_backed).
    fn bytes(&self, py: Python<'_>) -> PyResult<&qshm::LockGuard<'static>> {
        let held = self.held_entry(py)?;
        self.check_backed(py, held)?;
        Ok(&held.guard)
    }

    /// Once per lock, before its bytes are first touched: checks that no other process has
    /// shrunk the segment under the mapping (a POSIX segment, by a peer's `ftruncate`).
    /// Touching a page past the file's end would kill the interpreter with SIGBUS; a shrunk
    /// segment is `qshm.Error` kind `"InvalidSize"` instead. One `fstat` for a lock that
    /// touches the bytes, none for one that does not. (A mapped segment's lock checks its
    /// file itself, when it is taken.)
    fn check_backed(&self, py: Python<'_>, held: &Held) -> PyResult<()> {
        if !self.backed.load(Ordering::Relaxed) {
            if let Owner::Shm(shm) = &held.owner {
                shm.check_size().py(py)?;
            }
            self.backed.store(true, Ordering::Relaxed);
        }
        Ok(())
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

    fn other_thread(&self, py: Python<'_>) -> PyErr {
        errors::make(
            py,
            "LockError",
            &format!(
                "a lock guard belongs to the thread that took it: the lock of `{}` was taken \
                 by another thread (use the guard, and unlock it, in that thread; another \
                 thread takes the lock itself with lock())",
                self.label
            ),
            None,
        )
    }

    /// The number of live buffer exports.
    fn live_exports(&self) -> usize {
        self.exports
            .as_ref()
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn live_exports_message(&self, live: usize) -> String {
        format!(
            "{live} buffer export{s} (memoryview, numpy array) of the lock guard of `{}` \
             outlived the lock: the lock was released and what they wrote before it was \
             written back, but from now on they hold a private copy that never reaches the \
             segment (stale reads, lost writes). End exports inside the block: \
             `with memoryview(g) as v:`, or `del` / `.release()` them before it ends",
            self.label,
            s = if live == 1 { "" } else { "s" }
        )
    }

    fn read_only(&self) -> PyErr {
        PyTypeError::new_err(format!(
            "`{}` is attached read-only: its bytes cannot be written",
            self.label
        ))
    }

    /// Reads `n` bytes from `start` with step `step` (bounds-checked by the caller).
    fn get(&self, py: Python<'_>, start: isize, step: isize, n: usize) -> PyResult<Vec<u8>> {
        let held = self.bytes(py)?;
        let at = |i: usize| start.wrapping_add((i as isize).wrapping_mul(step)) as usize;
        Ok(match &self.staging {
            Some(s) => (0..n).map(|i| s.get(at(i))).collect(),
            None => {
                let bytes = held.as_slice();
                if step == 1 {
                    bytes[at(0)..at(0) + n].to_vec()
                } else {
                    (0..n).map(|i| bytes[at(i)]).collect()
                }
            }
        })
    }

    /// Writes `data` from `start` with step `step` (bounds-checked by the caller).
    fn put(&mut self, py: Python<'_>, start: isize, step: isize, data: &[u8]) -> PyResult<()> {
        self.held(py)?;
        if !self.writable {
            return Err(self.read_only());
        }
        self.bytes(py)?;
        let at = |i: usize| start.wrapping_add((i as isize).wrapping_mul(step)) as usize;
        if let Some(s) = &self.staging {
            for (i, b) in data.iter().enumerate() {
                s.set(at(i), *b);
            }
            // The copy now differs from the segment: write it back at unlock.
            self.exported_writable = true;
            return Ok(());
        }
        let Some(held) = self.held.as_mut().and_then(ThreadBound::get_mut) else {
            return Err(self.unlocked(py)); // not reached: checked above
        };
        let bytes = held.guard.as_mut_slice().py(py)?;
        if step == 1 && !data.is_empty() {
            bytes[at(0)..at(0) + data.len()].copy_from_slice(data);
        } else {
            for (i, b) in data.iter().enumerate() {
                bytes[at(i)] = *b;
            }
        }
        Ok(())
    }

    /// Resolves an index or slice into (start, step, count), bounds-checked.
    fn resolve(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Resolved> {
        self.held(py)?;
        if let Ok(slice) = key.cast::<PySlice>() {
            // A mapping's length fits an isize.
            let ind = slice.indices(self.len as isize)?;
            return Ok(Resolved(ind.start, ind.step, ind.slicelength));
        }
        let i = index(key)?;
        let i = if i < 0 { i + self.len as isize } else { i };
        if i < 0 || i as usize >= self.len {
            return Err(PyIndexError::new_err("LockGuard index out of range"));
        }
        Ok(Resolved(i, 1, 1))
    }

    /// Writes the staging copy back into `held`'s segment, if an export could change it.
    /// Checked again first (the exports may have lived long): into a segment another
    /// process has shrunk meanwhile nothing is written, and that is the error.
    fn write_back(&self, held: &mut Held) -> qshm::Result<()> {
        if let (Some(s), true) = (&self.staging, self.exported_writable) {
            match &held.owner {
                Owner::Shm(shm) => shm.check_size()?,
                Owner::Mapped(seg) => seg.check_size()?,
            }
            if let Ok(bytes) = held.guard.as_mut_slice() {
                s.copy_to(bytes);
            }
        }
        Ok(())
    }

    /// Writes the staging copy back (when an export could have changed it) and unlocks.
    /// Returns the number of buffer exports still alive (the caller makes that an error).
    fn release(&mut self, py: Python<'_>) -> PyResult<usize> {
        let Some(bound) = self.held.take() else {
            return Ok(0);
        };
        let mut held = match bound.into_inner() {
            Ok(held) => held,
            Err(bound) => {
                self.held = Some(bound);
                return Err(self.other_thread(py));
            }
        };
        let written = self.write_back(&mut held);
        let live = self.live_exports();
        if live == 0 {
            self.staging = None;
        }
        let Held { guard, owner } = held;
        let result = guard.unlock();
        drop(owner);
        result.py(py)?;
        written.py(py)?;
        Ok(live)
    }
}

impl Drop for LockGuard {
    /// A guard collected without `unlock()`: unlocks on its thread (writing back the
    /// staging copy first); on another thread leaks the lock, held, and reports it.
    fn drop(&mut self) {
        let Some(bound) = self.held.take() else {
            return;
        };
        match bound.into_inner() {
            Ok(mut held) => {
                // A segment shrunk meanwhile gets nothing written: reported as the
                // other-thread case is, there being no caller to raise it in.
                let written = self.write_back(&mut held);
                drop(held);
                if let Err(err) = written {
                    Python::attach(|py| errors::to_py(py, err).write_unraisable(py, None));
                }
            }
            Err(bound) => {
                drop(bound); // leaks the lock (see ThreadBound's drop)
                Python::attach(|py| {
                    errors::make(
                        py,
                        "LockError",
                        &format!(
                            "a lock guard of `{}` was garbage-collected in another thread \
                             than the one that took it, without unlock(): its lock stays \
                             held by that thread for good (unlock where you locked, as a \
                             `with` block does)",
                            self.label
                        ),
                        None,
                    )
                    .write_unraisable(py, None);
                });
            }
        }
    }
}

/// A resolved index or slice: start, step (not 0), count.
struct Resolved(isize, isize, usize);

/// An index (an int, or an object with `__index__`), as `bytes` takes one.
fn index(key: &Bound<'_, PyAny>) -> PyResult<isize> {
    match key.extract::<isize>() {
        Ok(i) => Ok(i),
        Err(e) if e.is_instance_of::<PyOverflowError>(key.py()) => Err(PyIndexError::new_err(
            "cannot fit 'int' into an index-sized integer",
        )),
        Err(_) => Err(PyTypeError::new_err(format!(
            "LockGuard indices must be integers or slices, not {}",
            type_name(key)
        ))),
    }
}

/// The type name of `value`, for messages.
fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A byte value (an int in `range(256)`), as `bytearray` takes one.
fn byte(value: &Bound<'_, PyAny>) -> PyResult<u8> {
    match value.extract::<i64>() {
        Ok(b) => {
            u8::try_from(b).map_err(|_| PyValueError::new_err("byte must be in range(0, 256)"))
        }
        Err(e) if e.is_instance_of::<PyOverflowError>(value.py()) => {
            Err(PyValueError::new_err("byte must be in range(0, 256)"))
        }
        Err(_) => Err(PyTypeError::new_err(format!(
            "'{}' object cannot be interpreted as an integer",
            type_name(value)
        ))),
    }
}

/// Bytes of a Python bytes-like object.
fn bytes_of(value: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    // Any other buffer (array.array, a numpy array, a memoryview of any format), as
    // bytes in C order; `memoryview` refuses what is not a buffer.
    let view = value
        .py()
        .get_type::<pyo3::types::PyMemoryView>()
        .call1((value,))
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "a bytes-like object is required, not '{}'",
                type_name(value)
            ))
        })?;
    let bytes = view.call_method0("tobytes")?;
    Ok(bytes.cast::<PyBytes>()?.as_bytes().to_vec())
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
        self.held(py)?;
        if let Some(h) = self.held.as_mut().and_then(ThreadBound::get_mut) {
            h.guard.mark_consistent();
        }
        Ok(())
    }

    /// Whether the bytes can be written (False for a read-only attachment).
    #[getter]
    fn writable(&self) -> bool {
        self.writable
    }

    /// The number of live buffer exports (memoryviews, numpy arrays) of this guard.
    #[getter]
    fn exports(&self) -> usize {
        self.live_exports()
    }

    /// Writes back what buffer exports changed and releases the lock; does nothing if
    /// already released. Raises ``qshm.Error`` (kind ``"LockError"``) in another thread
    /// than the one that took the lock (nothing is released then).
    ///
    /// With buffer exports still alive it writes back and releases all the same, then
    /// raises ``qshm.LiveExportsError`` (a ``BufferError``): the exports now hold a copy
    /// detached from the segment (see the class documentation).
    fn unlock(&mut self, py: Python<'_>) -> PyResult<()> {
        match self.release(py)? {
            0 => Ok(()),
            live => Err(errors::make_class(
                py,
                "LiveExportsError",
                "LockError",
                &self.live_exports_message(live),
            )),
        }
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
        let v = self.get(py, offset as isize, 1, size)?;
        Ok(PyBytes::new(py, &v).unbind())
    }

    /// Writes the bytes-like ``data`` at ``offset``.
    #[pyo3(signature = (data, offset = 0))]
    fn write(slf: &Bound<'_, Self>, data: &Bound<'_, PyAny>, offset: usize) -> PyResult<()> {
        let py = slf.py();
        slf.borrow().held(py)?;
        // Before borrowing the guard mutably: `data` may be a buffer of this very guard.
        let data = bytes_of(data)?;
        let mut this = slf.borrow_mut();
        if offset
            .checked_add(data.len())
            .is_none_or(|end| end > this.len)
        {
            return Err(PyValueError::new_err(format!(
                "{} bytes at offset {offset} pass the end of the segment ({} bytes)",
                data.len(),
                this.len
            )));
        }
        this.put(py, offset as isize, 1, &data)
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.held(py)?;
        Ok(self.len)
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let Resolved(start, step, n) = self.resolve(py, key)?;
        let v = self.get(py, start, step, n)?;
        if key.is_instance_of::<PySlice>() {
            Ok(PyBytes::new(py, &v).into_any().unbind())
        } else {
            Ok(v[0].into_pyobject(py)?.into_any().unbind())
        }
    }

    fn __setitem__(
        slf: &Bound<'_, Self>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let py = slf.py();
        let Resolved(start, step, n) = slf.borrow().resolve(py, key)?;
        // Before borrowing the guard mutably: `value` may be a buffer of this very guard.
        let data = if key.is_instance_of::<PySlice>() {
            let data = bytes_of(value)?;
            if data.len() != n {
                return Err(PyValueError::new_err(format!(
                    "cannot resize a segment: assigning {} bytes to a slice of {n}",
                    data.len()
                )));
            }
            data
        } else {
            vec![byte(value)?]
        };
        slf.borrow_mut().put(py, start, step, &data)
    }

    fn __delitem__(&self, _key: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "cannot delete bytes of a segment: its size is fixed",
        ))
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Unlocks (writing back what buffer exports changed); never swallows the exception.
    /// Raises ``qshm.LiveExportsError`` (a ``BufferError``) when buffer exports outlive
    /// the block, after unlocking. When an exception is propagating, that one goes on
    /// instead, with any such error as a note (``add_note``, Python 3.11+).
    fn __exit__(
        &mut self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        exc: &Bound<'_, PyAny>,
        _tb: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let live = match self.release(py) {
            Ok(live) => live,
            Err(e) => {
                errors::note_or_raise(py, exc_type, exc, e)?;
                0
            }
        };
        if live > 0 {
            let err = errors::make_class(
                py,
                "LiveExportsError",
                "LockError",
                &self.live_exports_message(live),
            );
            errors::note_or_raise(py, exc_type, exc, err)?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        let exports = self.live_exports();
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
            if exports > 0 {
                format!(" exports={exports}")
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
        slf.held(py)?;
        let writable = slf.writable;
        if flags & ffi::PyBUF_WRITABLE == ffi::PyBUF_WRITABLE && !writable {
            return Err(PyBufferError::new_err(format!(
                "`{}` is attached read-only: its buffer is read-only",
                slf.label
            )));
        }
        if slf.staging.is_none() {
            let copy = Staging::new(slf.bytes(py)?.as_slice());
            slf.staging = Some(copy);
        }
        if writable {
            slf.exported_writable = true;
        }
        let (ptr, len) = {
            let s = slf.staging.as_ref().expect("made above");
            (s.as_ptr(), s.len())
        };
        let counter = Arc::clone(slf.exports.get_or_insert_with(Default::default));
        let obj = slf.into_pyobject(py)?.into_any().unbind();
        // Counted once nothing can fail any more: `__releasebuffer__` counts it out.
        counter.fetch_add(1, Ordering::Relaxed);
        let counter = Arc::into_raw(counter);
        // SAFETY: `view` is a non-null `Py_buffer` that the interpreter lends for this call
        // (checked above). `ptr..ptr+len` is the staging copy: a heap allocation of `Cell`s
        // (writes through a shared pointer are allowed), never moved or freed while an
        // export lives (it is freed only when `exports` is 0, and dropped with this object,
        // which `obj` keeps alive until the export is released), and never shared memory.
        // `shape` and `strides` point into the view itself, which outlives its use.
        // `internal` carries a reference to the export counter to `__releasebuffer__`.
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
            (*view).internal = counter.cast_mut().cast::<c_void>();
        }
        Ok(())
    }

    /// Counts an export's end (from any thread); frees the staging copy once unlocked and
    /// unexported.
    ///
    /// # Safety
    ///
    /// Called by the interpreter (`bf_releasebuffer`), once, with a view `__getbuffer__`
    /// filled.
    unsafe fn __releasebuffer__(slf: &Bound<'_, Self>, view: *mut ffi::Py_buffer) {
        // The counter travels in the view, so that the count is right even while another
        // method borrows the guard (a garbage collection inside it can end an export).
        // SAFETY: `view` is the view `__getbuffer__` filled, released once (the buffer
        // protocol's contract); its `internal` is the `Arc::into_raw` made there, taken
        // back here exactly once.
        let counter = unsafe { Arc::from_raw((*view).internal.cast_const().cast::<AtomicUsize>()) };
        let left = counter.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        if left == 0 {
            // If another method borrows the guard now, the copy is freed later (at unlock,
            // or with the guard).
            if let Ok(mut this) = slf.try_borrow_mut() {
                if this.held.is_none() {
                    this.staging = None;
                }
            }
        }
    }
}
