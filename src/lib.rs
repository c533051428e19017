//! Qt's `QSharedMemory` and `QSystemSemaphore`, done right, in Rust.
//!
//! Named shared memory segments shared by threads and processes, with a cross-process lock,
//! named exactly as Qt names them: a Rust process and a Qt program given the same key attach
//! to the same segment and exclude each other through the same lock.
//!
//! ```
//! use qshm::{AccessMode, SharedMemory};
//! # let key = format!("qshm-doc-crate-{}", std::process::id());
//!
//! // Create a 1 KiB segment under a Qt key ("my-app-state" in a Qt program).
//! let mut shm = SharedMemory::with_key(&key);
//! shm.create(1024, AccessMode::ReadWrite)?;
//!
//! // Lock it, write, unlock (dropping the guard unlocks).
//! let mut guard = shm.lock()?;
//! guard.as_mut_slice()?[..6].copy_from_slice(b"hello!");
//! drop(guard);
//!
//! // Detach: the last detach anywhere destroys the segment.
//! shm.detach()?;
//! # Ok::<(), qshm::Error>(())
//! ```
//!
//! * [`SharedMemory`]: create, attach, detach, lock ([`LockGuard`]), size, Qt's errors.
//! * [`NativeKey`] and [`KeyType`]: Qt's `QNativeIpcKey`, its text form and key derivation.
//! * [`SystemSemaphore`]: Qt's `QSystemSemaphore`.
//! * [`Error`] and [`ErrorKind`]: Qt's nine error kinds, with the operation, key and cause.
//! * `mapped` (Linux, Windows, macOS, iOS, FreeBSD): the memory-mapped-file alternative,
//!   and on Linux and FreeBSD memfds, sealed and passed to children or over Unix sockets,
//!   with a crash-robust lock inside the segment whose protocol C programs share through
//!   `include/qshm.h` (Linux).
//! * [`inspect`] (Unix): what segments exist, who uses them, their locks, and what a crash
//!   left behind; the library under the `qshm` command-line tool.
//!
//! Every lock returns the same [`LockGuard`], which lends the bytes only while the lock is
//! held, and reports [`owner_died`](LockGuard::owner_died) where the lock kind can tell that
//! a holder died holding it.
//!
//! # Platform-specific behavior
//!
//! Linux has the System V backend (Qt's Linux default for Qt keys) and the POSIX one, chosen
//! per key by its [`KeyType`]. Windows has Qt's named sections and semaphores
//! ([`KeyType::Windows`]); there a segment goes with its last handle, so nothing is ever
//! left behind and nothing can be removed while in use, and a qshm lock holder that dies is
//! recognised through a named mutex Windows reports abandoned. On targets without a backend
//! the crate compiles and every operation reports [`ErrorKind::Unsupported`]. See
//! [`NativeKey`] for how keys become native names.
#![deny(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
// docs.rs (nightly, `--cfg docsrs`): "Available on ... only" on platform-only items.
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub mod asynchronous;
mod backend;
mod error;
#[cfg(any(qshm_linux, qshm_unix_other))]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod inspect;
mod key;
mod lock;
#[cfg(any(qshm_mapped_unix, qshm_windows))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        all(target_os = "linux", any(target_env = "gnu", target_env = "musl")),
        windows,
        target_vendor = "apple",
        target_os = "freebsd"
    )))
)]
pub mod mapped;
#[cfg(any(qshm_mapped_unix, qshm_windows))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        target_os = "linux",
        windows,
        target_vendor = "apple",
        target_os = "freebsd"
    )))
)]
pub mod notify;
mod platform;
mod semaphore;
mod shared_memory;
mod sys;
#[cfg(feature = "bytemuck")]
#[cfg_attr(docsrs, doc(cfg(feature = "bytemuck")))]
pub mod view;

/// The portable-Unix test mode (`--cfg qshm_portable`, set by `ci/test.sh`): not an API.
#[cfg(qshm_portable)]
#[doc(hidden)]
pub mod portable {
    /// Each fallback path of the mode and how often this process took it.
    pub fn fallback_counts() -> Vec<(&'static str, u64)> {
        crate::sys::portable::counts()
    }

    /// The Linux-only mechanisms this process used (`/proc`, leases, open-file-description
    /// locks), each with how often: what macOS, iOS and FreeBSD lack. The System V, POSIX
    /// and `mapped` backends of the mode use none.
    pub fn linux_only_uses() -> Vec<(&'static str, u64)> {
        crate::sys::portable::linux_only_uses()
    }
}

pub use error::{Error, ErrorKind, Operation, Result};
pub use key::{KeyType, NativeKey, TempDirStyle};
pub use lock::LockGuard;
#[cfg(any(qshm_mapped_unix, qshm_windows))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(
        all(target_os = "linux", any(target_env = "gnu", target_env = "musl")),
        windows,
        target_vendor = "apple",
        target_os = "freebsd"
    )))
)]
pub use mapped::MappedSegment;
pub use semaphore::{SemaphoreGuard, SemaphoreMode, SystemSemaphore};
pub use shared_memory::{AccessMode, LastDetach, SharedMemory};

/// The README's Rust snippets, compiled and run by `cargo test --doc` (where a backend
/// exists: elsewhere they would fail with `Unsupported`).
#[cfg(all(doctest, any(qshm_linux, qshm_windows)))]
#[doc = include_str!("../README.md")]
mod readme_doctests {}

/// The snippets of docs/mapped.md (`qshm::mapped`, Linux), compiled and run the same way.
#[cfg(all(doctest, qshm_linux))]
#[doc = include_str!("../docs/mapped.md")]
mod mapped_doctests {}

/// The snippets of docs/notify.md (change notification), compiled the same way.
#[cfg(all(doctest, qshm_linux))]
#[doc = include_str!("../docs/notify.md")]
mod notify_doctests {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_send_sync_as_documented() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<SharedMemory>();
        send_sync::<SystemSemaphore>();
        send_sync::<NativeKey>();
        send_sync::<Error>();
    }
}
