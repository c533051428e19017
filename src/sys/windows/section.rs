//! Segments: pagefile-backed named sections (`CreateFileMappingW` / `OpenFileMappingW`),
//! as Qt makes them.

use std::ffi::c_void;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::ptr::NonNull;

use windows_sys::Win32::Foundation::{ERROR_ALREADY_EXISTS, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile, VirtualQuery,
    FILE_MAP_ALL_ACCESS, FILE_MAP_READ, MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS,
    PAGE_READWRITE,
};

use super::{last_error, os_error, wide_name};
use crate::backend::{Detached, RawSegment};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::{AccessMode, NativeKey};

/// `SECTION_QUERY`: lets `NtQuerySection` read the section's size.
const SECTION_QUERY: u32 = 0x0001;

/// A named section mapped into this process.
#[derive(Debug)]
pub(crate) struct Section {
    /// Keeps the section's name: Windows removes a name with the object's last handle,
    /// mapped views or not.
    _handle: OwnedHandle,
    view: NonNull<u8>,
    len: usize,
    writable: bool,
    /// The name (UTF-16, NUL-terminated), to tell at a detach whether the section is gone.
    name: Vec<u16>,
}

impl crate::backend::sealed::Sealed for Section {}

/// Whether a section is named `name` (NUL-terminated UTF-16): one `OpenFileMappingW`.
fn named(name: &[u16]) -> bool {
    // SAFETY: opens a named section; the name is NUL-terminated and outlives the call.
    let raw = unsafe { OpenFileMappingW(FILE_MAP_READ, 0, name.as_ptr()) };
    if raw.is_null() {
        return false;
    }
    // SAFETY: a handle this call just opened and nothing else owns.
    drop(unsafe { OwnedHandle::from_raw_handle(raw) });
    true
}

// SAFETY: the view is mapped process-wide and the handle may be used and closed from any
// thread; the value itself never reads or writes the memory (slices are made by the lock
// guard, which requires the lock).
unsafe impl Send for Section {}
// SAFETY: `&Section` exposes the address, size and flag only; see `Send`.
unsafe impl Sync for Section {}

/// The part of `SECTION_BASIC_INFORMATION` (`NtQuerySection`, class 0) that qshm reads.
#[repr(C)]
struct SectionBasicInformation {
    base_address: *mut c_void,
    allocation_attributes: u32,
    maximum_size: i64,
}

#[link(name = "ntdll")]
extern "system" {
    /// `ntdll!NtQuerySection` (documented in the Windows Driver Kit, exported to user mode,
    /// implemented by Wine): a section's size, which `VirtualQuery` only gives rounded up to
    /// pages.
    fn NtQuerySection(
        section: HANDLE,
        class: i32,
        info: *mut c_void,
        length: usize,
        returned: *mut usize,
    ) -> i32;
}

/// The size the section was created with, where the OS says.
fn section_size(handle: &OwnedHandle) -> Option<usize> {
    let mut info = SectionBasicInformation {
        base_address: std::ptr::null_mut(),
        allocation_attributes: 0,
        maximum_size: 0,
    };
    // SAFETY: `handle` is a live section handle; `info` is a writable buffer of the length
    // passed; the returned length may be null.
    let status = unsafe {
        NtQuerySection(
            handle.as_raw_handle(),
            0,
            (&mut info as *mut SectionBasicInformation).cast(),
            std::mem::size_of::<SectionBasicInformation>(),
            std::ptr::null_mut(),
        )
    };
    (status >= 0 && info.maximum_size > 0).then_some(info.maximum_size as usize)
}

/// The size of the region `view` starts (page-rounded): what Qt reports.
fn region_size(view: NonNull<u8>) -> usize {
    // SAFETY: MEMORY_BASIC_INFORMATION is a plain C struct, for which all-zero is valid.
    let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: queries this process's own address space into a buffer of the given size.
    let n = unsafe {
        VirtualQuery(
            view.as_ptr().cast(),
            &mut info,
            std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
        )
    };
    if n == 0 {
        0
    } else {
        info.RegionSize
    }
}

fn view_access(access: AccessMode) -> u32 {
    match access {
        AccessMode::ReadOnly => FILE_MAP_READ,
        AccessMode::ReadWrite => FILE_MAP_ALL_ACCESS,
    }
}

/// Maps `handle` whole; `size`: the size it was created with, when this process made it.
fn map(
    handle: OwnedHandle,
    name: Vec<u16>,
    access: AccessMode,
    size: Option<usize>,
    op: Operation,
    key: &NativeKey,
) -> Result<Section> {
    // SAFETY: maps a view of a live section handle; the view is unmapped in `detach` or
    // `Drop`, never while a slice of it lives (slices borrow the segment).
    let view = unsafe {
        MapViewOfFile(
            handle.as_raw_handle(),
            view_access(access),
            0,
            0,
            size.unwrap_or(0),
        )
    };
    let Some(ptr) = NonNull::new(view.Value.cast::<u8>()) else {
        return Err(os_error(last_error(), op, key.to_string()));
    };
    let len = size
        .or_else(|| section_size(&handle))
        .unwrap_or_else(|| region_size(ptr));
    Ok(Section {
        _handle: handle,
        view: ptr,
        len,
        writable: access == AccessMode::ReadWrite,
        name,
    })
}

// SAFETY: `view..view+len` is a view of the section mapped by `map` (whole: `len` is never
// more than the section's size, which the view covers) and stays mapped until `detach` or
// drop, which take the value; a section's pages are zero-filled by Windows, so initialised;
// `writable` is true only for a view mapped with FILE_MAP_ALL_ACCESS.
unsafe impl RawSegment for Section {
    fn create(key: &NativeKey, size: usize, access: AccessMode, _mode: u32) -> Result<Section> {
        let op = Operation::Create;
        let name = wide_name(key.native_key(), op, key)?;
        let size64 = size as u64;
        // SAFETY: a pagefile-backed section (INVALID_HANDLE_VALUE) with default security
        // and a NUL-terminated name that outlives the call.
        let raw = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                std::ptr::null(),
                PAGE_READWRITE,
                (size64 >> 32) as u32,
                size64 as u32,
                name.as_ptr(),
            )
        };
        let code = last_error();
        if raw.is_null() {
            return Err(os_error(code, op, key.to_string()));
        }
        // SAFETY: a handle this call just opened and nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(raw) };
        if code == ERROR_ALREADY_EXISTS {
            // Someone else's section: let go of it at once (Qt keeps the handle, and so
            // keeps the other's segment alive for as long as its object lives).
            drop(handle);
            return Err(os_error(code, op, key.to_string()));
        }
        map(handle, name, access, Some(size), op, key)
    }

    fn attach(key: &NativeKey, access: AccessMode) -> Result<Section> {
        let op = Operation::Attach;
        let name = wide_name(key.native_key(), op, key)?;
        // SAFETY: opens a named section; the name is NUL-terminated and outlives the call.
        let raw =
            unsafe { OpenFileMappingW(view_access(access) | SECTION_QUERY, 0, name.as_ptr()) };
        if raw.is_null() {
            return Err(os_error(last_error(), op, key.to_string()));
        }
        // SAFETY: a handle this call just opened and nothing else owns.
        let handle = unsafe { OwnedHandle::from_raw_handle(raw) };
        map(handle, name, access, None, op, key)
    }

    fn ptr(&self) -> *mut u8 {
        self.view.as_ptr()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn writable(&self) -> bool {
        self.writable
    }

    fn exists(key: &NativeKey) -> bool {
        wide_name(key.native_key(), Operation::Attach, key).is_ok_and(|name| named(&name))
    }

    /// Windows destroys a section with its last handle: one nobody has open does not
    /// exist, and one somebody has open cannot be destroyed.
    fn remove(key: &NativeKey, only_if_unattached: bool) -> Result<bool> {
        if only_if_unattached {
            return Ok(false);
        }
        Err(
            Error::new(ErrorKind::Unsupported, Operation::Remove, key.to_string()).with_detail(
                "Windows destroys a segment with its last handle; nothing can remove it while \
                 a process has it open",
            ),
        )
    }

    const PERSISTENT: bool = false;

    /// Unmaps and closes. Windows destroys the section with its last handle, whatever
    /// `remove_if_last` says (nothing can keep it); whether this was the last is seen by
    /// looking the name up afterwards.
    fn detach(self, _remove_if_last: bool, _remove_key_file: bool) -> Result<Detached> {
        let mut this = self;
        let name = std::mem::take(&mut this.name);
        drop(this); // unmaps and closes
        Ok(if named(&name) {
            Detached::Kept
        } else {
            Detached::Removed
        })
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        let view = MEMORY_MAPPED_VIEW_ADDRESS {
            Value: self.view.as_ptr().cast(),
        };
        // SAFETY: the view mapped in `map`, unmapped once, here; no slice of it outlives the
        // value (slices borrow it).
        unsafe { UnmapViewOfFile(view) };
    }
}
