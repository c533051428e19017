//! Windows: named file mappings (sections) and named semaphores, under exactly the names Qt
//! gives them, so that Qt programs and qshm meet; plus a named mutex beside each segment
//! lock, through which the kernel tells a waiter that a qshm holder died (`WAIT_ABANDONED`).
//!
//! Windows destroys a section or a semaphore with its last handle: there is never anything
//! to clean up after a crash, and nothing can be removed while a process has it open.
//!
//! # References
//!
//! * <https://learn.microsoft.com/windows/win32/memory/creating-named-shared-memory>
//! * <https://learn.microsoft.com/windows/win32/api/winbase/nf-winbase-createfilemappingw>
//! * <https://learn.microsoft.com/windows/win32/api/synchapi/nf-synchapi-waitformultipleobjects>
//!   (`WAIT_ABANDONED_0`)
//! * Qt, `qsharedmemory_win.cpp` and `qsystemsemaphore_win.cpp` (behaviour described in
//!   `docs/qt-ipc.md`; no code taken).

use std::os::windows::ffi::OsStrExt;
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_COMMITMENT_LIMIT, ERROR_DISK_FULL,
    ERROR_FILE_EXISTS, ERROR_FILE_NOT_FOUND, ERROR_HANDLE_DISK_FULL, ERROR_INVALID_NAME,
    ERROR_INVALID_PARAMETER, ERROR_NOT_ENOUGH_MEMORY, ERROR_NO_SYSTEM_RESOURCES,
    ERROR_PATH_NOT_FOUND, ERROR_TOO_MANY_POSTS,
};

use crate::backend::Wait;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::NativeKey;

pub(crate) mod mapped;
pub(crate) mod notify;
mod section;
mod semaphore;

pub(crate) use section::Section as Segment;
pub(crate) use semaphore::WinSemaphore as Semaphore;

/// Qt's table of Windows errors (`qsharedmemory_win.cpp`, `qsystemsemaphore_win.cpp`), with
/// the errors Qt has no entry for placed where a caller would look for them.
pub(crate) fn error_kind(code: u32) -> ErrorKind {
    match code {
        ERROR_ALREADY_EXISTS | ERROR_FILE_EXISTS => ErrorKind::AlreadyExists,
        ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND => ErrorKind::NotFound,
        ERROR_COMMITMENT_LIMIT | ERROR_INVALID_PARAMETER => ErrorKind::InvalidSize,
        ERROR_NO_SYSTEM_RESOURCES
        | ERROR_NOT_ENOUGH_MEMORY
        | ERROR_TOO_MANY_POSTS
        | ERROR_DISK_FULL
        | ERROR_HANDLE_DISK_FULL => ErrorKind::OutOfResources,
        ERROR_ACCESS_DENIED => ErrorKind::PermissionDenied,
        ERROR_INVALID_NAME => ErrorKind::KeyError,
        _ => ErrorKind::Unknown,
    }
}

/// An error from a Windows error code, with the kind Qt maps it to and the OS error as its
/// source.
#[cold]
pub(crate) fn os_error(code: u32, op: Operation, key: impl Into<std::sync::Arc<str>>) -> Error {
    Error::new(error_kind(code), op, key).with_errno(code as i32)
}

/// An error from a `std::io::Error` of a Windows call (its OS error code).
#[cold]
pub(crate) fn io_error(e: &std::io::Error, op: Operation, key: &str) -> Error {
    match e.raw_os_error() {
        Some(code) => os_error(code as u32, op, key),
        None => Error::new(ErrorKind::Unknown, op, key).with_detail(e.to_string()),
    }
}

/// `GetLastError()`.
pub(crate) fn last_error() -> u32 {
    // SAFETY: reads the calling thread's last-error value; no arguments.
    unsafe { windows_sys::Win32::Foundation::GetLastError() }
}

/// A kernel object name as Windows takes it: UTF-16, NUL-terminated. `KeyError` for an
/// empty name or one with a NUL in it.
pub(crate) fn wide_name(name: &str, op: Operation, key: &NativeKey) -> Result<Vec<u16>> {
    let err = |detail: &'static str| {
        Err(Error::new(ErrorKind::KeyError, op, key.to_string()).with_detail(detail))
    };
    if name.is_empty() {
        return err("the key is empty (or names nothing on Windows)");
    }
    if name.contains('\0') {
        return err("the name contains a NUL character");
    }
    Ok(std::ffi::OsStr::new(name)
        .encode_wide()
        .chain(std::iter::once(0))
        .collect())
}

/// Milliseconds for a Windows wait of at most `left` (rounded up, below `INFINITE`).
pub(crate) fn wait_ms(left: Duration) -> u32 {
    let ms = left.as_nanos().div_ceil(1_000_000);
    ms.min(u128::from(
        windows_sys::Win32::System::Threading::INFINITE - 1,
    )) as u32
}

/// When a wait of kind `wait` must end; `None`: never.
pub(crate) fn deadline(wait: Wait) -> Option<Instant> {
    match wait {
        Wait::Forever => None,
        Wait::Poll => Some(Instant::now()),
        Wait::For(d) => Some(Instant::now().checked_add(d).unwrap_or_else(far_future)),
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Asks Windows to bring every page of the mapping in (`PrefetchVirtualMemory`). A
/// pagefile-backed section is committed whole when it is created, so there is nothing a
/// write could still fail on later: `write` changes nothing.
pub(crate) fn populate<M: crate::sys::Mapping>(mapping: &M, _write: bool) -> std::io::Result<()> {
    use windows_sys::Win32::System::Memory::{PrefetchVirtualMemory, WIN32_MEMORY_RANGE_ENTRY};
    use windows_sys::Win32::System::Threading::GetCurrentProcess;
    let range = WIN32_MEMORY_RANGE_ENTRY {
        VirtualAddress: mapping.ptr().cast(),
        NumberOfBytes: mapping.len(),
    };
    // SAFETY: one valid range entry, describing memory this process maps (`Mapping`);
    // prefetching reads nothing into Rust and changes no byte.
    let ok = unsafe { PrefetchVirtualMemory(GetCurrentProcess(), 1, &range, 0) };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod contract {
    use super::*;
    use crate::key::KeyType;
    crate::sys::conformance::suite!(windows, Segment, Semaphore, KeyType::Windows);
}
