//! The two words of change notification on Windows, mapped: in a mapped segment's header
//! (offsets 88 and 92, through a section of the file), or in the *companion* of a
//! Qt-compatible segment, a one-page named pagefile section `Local\qshm_notify_<hash>`
//! (`Global\` for a `Global\` key) that Qt never opens and that Windows destroys with its
//! last handle, as it does the segment (`struct qshm_notify` in `qshm.h`).
//!
//! Windows has no system call that waits on an address across processes: sleepers wait on a
//! named semaphore beside the counter (`<the counter's name>_wake`), and a notify that sees
//! sleepers releases it once per sleeper. A unit released for a sleeper that timed out
//! meanwhile wakes a later one early, which finds nothing new and sleeps again; a release
//! that comes between a sleeper's check of the counter and its wait is kept by the
//! semaphore, so no wake-up is lost.

use std::fs::File;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use std::time::Duration;

use windows_sys::Win32::Foundation::{INVALID_HANDLE_VALUE, WAIT_OBJECT_0, WAIT_TIMEOUT};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, MapViewOfFile, UnmapViewOfFile, FILE_MAP_READ, FILE_MAP_WRITE,
    MEMORY_MAPPED_VIEW_ADDRESS, PAGE_READONLY, PAGE_READWRITE,
};
use windows_sys::Win32::System::Threading::{
    CreateSemaphoreW, ReleaseSemaphore, WaitForSingleObject, INFINITE,
};

use super::{last_error, os_error, wait_ms};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::segment_header::{Header, MIN_HEADER_SIZE};
use crate::sys::wait_word::Woke;

const COMPANION_MAGIC: [u8; 8] = *b"QSHM\0NTF";
const COMPANION_CHANGES: usize = 16;
const COMPANION_WAITERS: usize = 20;
const COMPANION_LEN: usize = 4096;

/// The change counter and sleeper count, in a view this value owns.
#[derive(Debug)]
pub(crate) struct ChangeWords {
    view: NonNull<u8>,
    changes: usize,
    waiters: usize,
    writable: bool,
    /// A companion's section: Windows keeps a name only while a handle is open.
    _section: Option<OwnedHandle>,
    /// The semaphore sleepers wait on.
    wake: OwnedHandle,
}

// SAFETY: the value owns a process-wide view (not tied to a thread); it hands out only
// `&AtomicU32`s into it, which any thread may use.
unsafe impl Send for ChangeWords {}
// SAFETY: as for `Send`; `&ChangeWords` gives only atomics.
unsafe impl Sync for ChangeWords {}

impl ChangeWords {
    /// The words in the header of the mapped segment `file`, whose header is `header_size`
    /// bytes (validated when the segment was opened).
    /// `name`: the segment's name among kernel objects (from the file's identity), which
    /// the wake semaphore's is made from.
    pub(crate) fn of_mapped(
        file: &File,
        name: &str,
        header_size: usize,
        writable: bool,
        label: &str,
    ) -> Result<ChangeWords> {
        debug_assert!(header_size >= MIN_HEADER_SIZE);
        let (page, access) = if writable {
            (PAGE_READWRITE, FILE_MAP_READ | FILE_MAP_WRITE)
        } else {
            (PAGE_READONLY, FILE_MAP_READ)
        };
        // SAFETY: an unnamed section of the whole file, default security.
        let raw = unsafe {
            CreateFileMappingW(
                file.as_raw_handle(),
                std::ptr::null(),
                page,
                0,
                0,
                std::ptr::null(),
            )
        };
        if raw.is_null() {
            return Err(failed(label, "CreateFileMappingW of the header failed"));
        }
        // SAFETY: a handle this call just opened and nothing else owns; the view keeps the
        // section once it is closed.
        let section = unsafe { OwnedHandle::from_raw_handle(raw) };
        let view = map(&section, access, header_size)
            .ok_or_else(|| failed(label, "MapViewOfFile of the header failed"))?;
        let wake = wake_semaphore(name, label).inspect_err(|_| unmap(view))?;
        Ok(ChangeWords {
            view,
            changes: std::mem::offset_of!(Header, changes),
            waiters: std::mem::offset_of!(Header, change_waiters),
            writable,
            _section: None,
            wake,
        })
    }

    /// Opens or creates the companion section `name` (`Local\…` or `Global\…`).
    pub(crate) fn companion(
        name: &str,
        _key: &str,
        _mode: u32,
        _create: bool,
        label: &str,
    ) -> Result<ChangeWords> {
        let wide: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
        // SAFETY: a pagefile-backed section (INVALID_HANDLE_VALUE) of one page, default
        // security, with a NUL-terminated name that outlives the call; opens it if it exists.
        let raw = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                PAGE_READWRITE,
                0,
                COMPANION_LEN as u32,
                wide.as_ptr(),
            )
        };
        if raw.is_null() {
            return Err(failed(
                label,
                "cannot open or create the notifier's companion section",
            ));
        }
        // SAFETY: a handle this call just opened and nothing else owns.
        let section = unsafe { OwnedHandle::from_raw_handle(raw) };
        let view = map(&section, FILE_MAP_READ | FILE_MAP_WRITE, COMPANION_LEN)
            .ok_or_else(|| failed(label, "MapViewOfFile of the notifier's companion failed"))?;
        let wake = wake_semaphore(name, label).inspect_err(|_| unmap(view))?;
        let words = ChangeWords {
            view,
            changes: COMPANION_CHANGES,
            waiters: COMPANION_WAITERS,
            writable: true,
            _section: Some(section),
            wake,
        };
        // The magic, read and written as two atomic words (another process may be doing the
        // same: the same bytes).
        let magic = |i: usize| -> &AtomicU32 {
            // SAFETY: offsets 0 and 4 of the page-aligned view, which lives with `words`.
            unsafe { &*words.view.as_ptr().add(4 * i).cast::<AtomicU32>() }
        };
        let want =
            |i: usize| u32::from_ne_bytes(COMPANION_MAGIC[4 * i..4 * i + 4].try_into().expect("4"));
        for i in 0..2 {
            let found = magic(i)
                .compare_exchange(
                    0,
                    want(i),
                    std::sync::atomic::Ordering::AcqRel,
                    std::sync::atomic::Ordering::Acquire,
                )
                .unwrap_or_else(|v| v);
            if found != 0 && found != want(i) {
                return Err(
                    Error::new(ErrorKind::KeyError, Operation::Notify, label.to_owned())
                        .with_detail("the notifier's companion section was not made by qshm"),
                );
            }
        }
        Ok(words)
    }

    /// The change counter.
    #[inline]
    pub(crate) fn changes(&self) -> &AtomicU32 {
        // SAFETY: `changes` is a 4-aligned offset inside the view (fixed above), which lives
        // as long as `self`; every process accesses it atomically.
        unsafe { &*self.view.as_ptr().add(self.changes).cast::<AtomicU32>() }
    }

    /// The number of sleepers.
    #[inline]
    pub(crate) fn waiters(&self) -> &AtomicU32 {
        // SAFETY: as for `changes`.
        unsafe { &*self.view.as_ptr().add(self.waiters).cast::<AtomicU32>() }
    }

    /// Whether the words may be written.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// Sleeps on the wake semaphore, at most `left` (`None`: until woken). The caller
    /// counted itself in `waiters` and saw the counter at `seen` first.
    pub(crate) fn sleep(&self, _seen: u32, left: Option<Duration>) -> Result<Woke> {
        let ms = left.map_or(INFINITE, wait_ms);
        // SAFETY: waits on a semaphore handle this value owns.
        match unsafe { WaitForSingleObject(self.wake.as_raw_handle(), ms) } {
            WAIT_OBJECT_0 => Ok(Woke::Early),
            WAIT_TIMEOUT => Ok(Woke::TimedOut),
            _ => Err(os_error(last_error(), Operation::Wait, String::new())
                .with_detail("WaitForSingleObject on the wake semaphore failed")),
        }
    }

    /// Releases the wake semaphore once per counted sleeper.
    pub(crate) fn wake_all(&self) -> Result<()> {
        let n = self.waiters().load(std::sync::atomic::Ordering::SeqCst);
        if n == 0 {
            return Ok(());
        }
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        // SAFETY: releases a semaphore handle this value owns; no previous count asked for.
        if unsafe { ReleaseSemaphore(self.wake.as_raw_handle(), n, std::ptr::null_mut()) } == 0 {
            let code = last_error();
            // ERROR_TOO_MANY_POSTS: units piled up to the maximum; every sleeper wakes anyway.
            if code != windows_sys::Win32::Foundation::ERROR_TOO_MANY_POSTS {
                return Err(os_error(code, Operation::Notify, String::new())
                    .with_detail("ReleaseSemaphore of the wake semaphore failed"));
            }
        }
        Ok(())
    }
}

/// The wake semaphore `<name>_wake`, created (count 0, maximum `i32::MAX`) or opened.
fn wake_semaphore(name: &str, label: &str) -> Result<OwnedHandle> {
    let wide: Vec<u16> = format!("{name}_wake")
        .encode_utf16()
        .chain(std::iter::once(0))
        .collect();
    // SAFETY: creates or opens a named semaphore; the name is NUL-terminated and outlives
    // the call.
    let raw = unsafe { CreateSemaphoreW(std::ptr::null(), 0, i32::MAX, wide.as_ptr()) };
    if raw.is_null() {
        return Err(failed(
            label,
            "cannot create or open the notifier's wake semaphore",
        ));
    }
    // SAFETY: a handle this call just opened and nothing else owns.
    Ok(unsafe { OwnedHandle::from_raw_handle(raw) })
}

fn unmap(view: NonNull<u8>) {
    let view = MEMORY_MAPPED_VIEW_ADDRESS {
        Value: view.as_ptr().cast(),
    };
    // SAFETY: a view `map` made that nothing else refers to (its ChangeWords was not made).
    unsafe { UnmapViewOfFile(view) };
}

impl Drop for ChangeWords {
    fn drop(&mut self) {
        let view = MEMORY_MAPPED_VIEW_ADDRESS {
            Value: self.view.as_ptr().cast(),
        };
        // SAFETY: the view `map` made, unmapped once; every reference into it borrows `self`.
        unsafe { UnmapViewOfFile(view) };
    }
}

fn map(section: &OwnedHandle, access: u32, len: usize) -> Option<NonNull<u8>> {
    // SAFETY: maps a view of a live section handle; unmapped by `ChangeWords::drop`.
    let view = unsafe { MapViewOfFile(section.as_raw_handle(), access, 0, 0, len) };
    NonNull::new(view.Value.cast::<u8>())
}

#[cold]
fn failed(label: &str, detail: &'static str) -> Error {
    os_error(last_error(), Operation::Notify, label.to_owned()).with_detail(detail)
}
