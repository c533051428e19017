//! `qshm` for Python: the native part (`qshm._qshm`) of the `qshm` package.
//!
//! Qt-compatible shared memory (`SharedMemory`), semaphores (`SystemSemaphore`) and the
//! crash-robust mapped segments (`MappedSegment`) of the qshm Rust library, for Python.
//! The Python package (`python/qshm/`) re-exports these classes and defines the exceptions.
//!
//! # Memory safety
//!
//! Python code reaches a segment's bytes only through a [`guard::LockGuard`], which holds the
//! segment's lock: its indexing reads and writes the segment directly while the lock is
//! held, and its buffer exports (`memoryview`, `numpy.frombuffer`, `bytes`) are a private
//! copy taken under the lock and written back before the lock is released, so that an
//! export that outlives the lock reaches only that copy, never the shared memory. Exports
//! are counted, and unlocking with exports alive raises `qshm.LiveExportsError` (a
//! `BufferError`) after unlocking. The held lock is bound to the thread that took it: from
//! another thread the guard raises `qshm.Error`. See `python/README.md`.
//!
//! # Unsafe code
//!
//! Each place has its `// SAFETY:` comment: the owned guard's `'static` borrow of the
//! segment it keeps alive (`guard::static_ref`), the `Send` wrapper that carries a guard
//! across `Python::detach` on the same thread (`wait::SameThread`), the thread-bound held
//! lock and the staging copy made `Send`/`Sync` for PyO3 (`guard::ThreadBound`,
//! `guard::Staging`), and the buffer export (`guard::LockGuard::__getbuffer__` and
//! `__releasebuffer__`).

mod errors;
mod guard;
mod mapped;
mod notify;
mod sem;
mod shm;
mod wait;

use pyo3::prelude::*;

/// The native module; `import qshm` re-exports its classes.
#[pymodule]
fn _qshm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<shm::SharedMemory>()?;
    m.add_class::<guard::LockGuard>()?;
    m.add_class::<sem::SystemSemaphore>()?;
    m.add_class::<mapped::MappedSegment>()?;
    m.add_class::<notify::Notifier>()?;
    m.add("MEMFD_ENV", qshm::mapped::MEMFD_ENV)?;
    Ok(())
}
