//! Operating-system backends: the only place with `unsafe` code. Which backends a target gets
//! is decided by `build.rs`'s gates (see `ARCHITECTURE.md`).
//!
//! `imp` is the platform module; it provides the dispatch enums `Segment` and `Semaphore`
//! (one variant per backend available on the platform), the naming rules and the helpers the
//! portable code needs. Each backend implements the contract in [`crate::backend`].
//! `locked` turns a mapping into slices for the holder of its lock, the one place shared
//! memory becomes Rust references.
#![allow(unsafe_code)]

#[cfg(any(qshm_linux, qshm_sysv_only, qshm_posix_portable))]
#[path = "unix/mod.rs"]
mod imp;

#[cfg(qshm_windows)]
#[path = "windows/mod.rs"]
mod imp;

#[cfg(not(any(qshm_linux, qshm_sysv_only, qshm_posix_portable, qshm_windows)))]
#[path = "unsupported.rs"]
mod imp;

#[cfg(qshm_apple)]
mod apple;
#[cfg(any(qshm_mapped_unix, qshm_windows))]
pub(crate) mod cell;
#[cfg(test)]
pub(crate) mod conformance;
pub(crate) mod fork;
mod locked;
#[cfg(any(qshm_mapped_unix, qshm_windows))]
mod peer;
pub(crate) mod portable;
#[cfg(any(qshm_linux, qshm_unix_other))]
pub(crate) mod procfs;
#[cfg(any(qshm_mapped_unix, qshm_windows))]
pub(crate) mod queue;
#[cfg(any(qshm_linux, qshm_windows, qshm_posix_portable))]
pub(crate) mod random;
#[cfg(any(qshm_mapped_unix, qshm_windows))]
mod segment_header;
#[cfg(any(qshm_linux, qshm_unix_other))]
mod user;
#[cfg(any(qshm_mapped_unix, qshm_windows))]
#[allow(dead_code)] // used by notify, queue and cell as they land
pub(crate) mod wait_word;
#[cfg(any(qshm_mapped_unix, qshm_windows))]
mod word_lock;

/// Inspection's system calls (`sys/unix/inspect.rs` where there is System V: Linux, macOS,
/// FreeBSD); elsewhere (iOS, other Unix) every call reports that it is unsupported.
#[cfg(all(qshm_unix_other, not(qshm_sysv_only)))]
pub(crate) mod inspect {
    use std::io;
    use std::path::Path;

    fn unsupported<T>() -> io::Result<T> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    #[derive(Clone, Copy, Debug)]
    pub(crate) struct SemState {
        pub(crate) value: u32,
        pub(crate) last_pid: u32,
        pub(crate) waiters: u32,
    }

    pub(crate) fn ftok(_: &Path, _: u8) -> io::Result<i32> {
        unsupported()
    }
    /// No qshm POSIX segment exists here, so no attach count to respect.
    pub(crate) fn try_lock_exclusive(_: &std::fs::File) -> bool {
        true
    }
    pub(crate) fn sem_state(_: i32) -> io::Result<SemState> {
        unsupported()
    }
    pub(crate) fn open_no_wait(_: &Path) -> io::Result<std::fs::File> {
        unsupported()
    }
    pub(crate) fn sem_remove_id(_: i32) -> io::Result<()> {
        unsupported()
    }
    pub(crate) fn shm_key_and_nattch(_: i32) -> io::Result<(i32, u64)> {
        unsupported()
    }
    pub(crate) fn shm_remove_id(_: i32) -> io::Result<()> {
        unsupported()
    }
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct PosixSemState {
        pub(crate) value: u32,
        pub(crate) owner_pid: u32,
        pub(crate) owner_alive: bool,
    }

    pub(crate) fn posix_sem_state(_: &Path) -> Option<PosixSemState> {
        None
    }
}

#[cfg(qshm_apple)]
pub(crate) use apple::{apple_sandboxed, darwin_user_temp_dir};
pub(crate) use imp::*;

/// Not an Apple platform: never sandboxed the Apple way.
#[cfg(not(qshm_apple))]
pub(crate) fn apple_sandboxed() -> bool {
    false
}

/// Not an Apple platform: no per-user temporary directory of Apple's.
#[cfg(not(qshm_apple))]
pub(crate) fn darwin_user_temp_dir() -> Option<String> {
    None
}
#[cfg(any(qshm_mapped_unix, qshm_windows))]
pub(crate) use locked::SegmentLock;
pub(crate) use locked::{copy_out, copy_out_unlocked, InProcessLock, LockRef, Locked, Mapping};
#[cfg(any(qshm_linux, qshm_unix_other))]
pub(crate) use user::{euid, user_name};

/// No Unix user ids on this target: no object reports an owner to compare with.
#[cfg(not(any(qshm_linux, qshm_unix_other)))]
pub(crate) fn euid() -> u32 {
    u32::MAX
}
