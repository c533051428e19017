//! Memory-mapped files with their lock inside, on Windows (`qshm::mapped`): the same file
//! layout as on Linux (`include/qshm.h`, layout version 2), views of a file mapping, and the
//! in-segment lock with Windows' half (`owners.rs`).
//!
//! * Files are created with `FILE_ATTRIBUTE_TEMPORARY` (the cache manager keeps their pages
//!   in memory while it can, and writes them back lazily) under a temporary name, sized, given
//!   their header, and only then renamed to their name (`MoveFileExW` without replacing), so
//!   that no process opens a half-made segment. Temporary segments also get
//!   `FILE_FLAG_DELETE_ON_CLOSE`: Windows deletes them when their last handle closes, crashes
//!   included.
//! * Every user opens the file sharing read, write and delete. The user who detaches last
//!   (the one whose exclusive open, sharing nothing, succeeds) removes a file flagged
//!   remove-on-last-detach.
//! * A read-only attachment maps the data through a second, read-only view: the header's view
//!   stays writable, to take the lock.
//! * Children inherit the file handle ([`spawn_child`]) in place of a descriptor.
//!
//! # References
//!
//! * <https://learn.microsoft.com/windows/win32/api/fileapi/nf-fileapi-createfilew>
//!   (`FILE_ATTRIBUTE_TEMPORARY`, `FILE_FLAG_DELETE_ON_CLOSE`)
//! * <https://learn.microsoft.com/windows/win32/api/memoryapi/nf-memoryapi-createfilemappingw>
//! * <https://learn.microsoft.com/windows/win32/procthread/inheritance>

use std::fs::{File, OpenOptions};
use std::os::windows::fs::{FileExt, OpenOptionsExt};
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle, RawHandle};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::ptr::NonNull;
use std::sync::Mutex;

use windows_sys::Win32::Foundation::{
    SetHandleInformation, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_PATH_NOT_FOUND,
    ERROR_SHARING_VIOLATION, GENERIC_READ, GENERIC_WRITE, HANDLE_FLAG_INHERIT,
};
use windows_sys::Win32::Storage::FileSystem::{
    FileDispositionInfo, GetFileInformationByHandle, GetFileType, GetFinalPathNameByHandleW,
    MoveFileExW, SetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION, DELETE,
    FILE_ATTRIBUTE_TEMPORARY, FILE_DISPOSITION_INFO, FILE_FLAG_DELETE_ON_CLOSE, FILE_SHARE_DELETE,
    FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_TYPE_DISK,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, MapViewOfFile, UnmapViewOfFile, FILE_MAP_READ, FILE_MAP_WRITE,
    MEMORY_MAPPED_VIEW_ADDRESS, PAGE_READWRITE,
};

use super::{io_error, last_error, os_error};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::segment_header::{
    check_layout, checked_total, new_header_bytes, validate_header, FLAG_REMOVE_ON_LAST_DETACH,
    MIN_HEADER_SIZE,
};
use crate::sys::word_lock::WordLock;
use crate::sys::Mapping;
use crate::AccessMode;

mod owners;

use owners::{FileId, WinOwners};

/// The lock of a mapped segment.
pub(crate) type LockKind = WordLock<WinOwners>;

/// Every user shares the file for reading, writing and deleting (renaming, and the last
/// detach's removal).
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

/// The header size new segments get: one page.
const HEADER_SIZE: usize = 4096;

/// How a segment's memory is backed.
#[derive(Debug)]
pub(crate) enum Backing {
    /// A named file; the path it was opened or created at.
    File {
        path: PathBuf,
        remove_on_last_detach: bool,
    },
}

/// What the options of `qshm::mapped` ask for, as the backend needs it.
#[derive(Clone, Debug)]
#[allow(dead_code)] // Windows has no seals, no RAM-only file systems, no truncation under a view
pub(crate) struct OpenParams {
    pub(crate) access: AccessMode,
    pub(crate) allow_disk_backed: bool,
    pub(crate) allow_unsealed: bool,
    pub(crate) check_size_on_lock: bool,
    /// The layout stamp to write (create) or to expect (open); `None`: none / any.
    pub(crate) layout: Option<(u32, u64)>,
}

/// A mapped segment: header, lock and data area.
#[derive(Debug)]
pub(crate) struct MappedInner {
    /// The view of header and data (read-write), `map_len` bytes.
    view: NonNull<u8>,
    /// A read-only view of the same bytes, through which a read-only attachment reaches the
    /// data area.
    read_only_view: Option<NonNull<u8>>,
    data: NonNull<u8>,
    header_size: usize,
    data_size: usize,
    writable: bool,
    /// `None` once closed.
    lock: Option<LockKind>,
    /// `None` once closed.
    file: Option<File>,
    id: FileId,
    backing: Backing,
}

impl MappedInner {
    /// The change counter and its sleeper count in this segment's header, mapped anew.
    pub(crate) fn change_words(&self, label: &str) -> Result<crate::sys::notify::ChangeWords> {
        let file = self.file.as_ref().ok_or_else(|| {
            Error::new(ErrorKind::NotAttached, Operation::Notify, label.to_owned())
        })?;
        let name = format!("Local\\qshm_notify_{:08x}_{:016x}", self.id.0, self.id.1);
        crate::sys::notify::ChangeWords::of_mapped(file, &name, self.header_size, true, label)
    }
}

// SAFETY: the struct owns process-wide views and a file handle, neither tied to the thread
// that made them (unmapping and closing may happen on any thread). It never reads or writes
// the data area itself: slices are made by `Locked`, which requires the lock; the header is
// accessed only atomically (`WordLock`).
unsafe impl Send for MappedInner {}
// SAFETY: `&MappedInner` exposes plain values (addresses, sizes) and the lock, whose
// operations are atomic; see `Send` for the data area.
unsafe impl Sync for MappedInner {}

/// The temporary directory (`GetTempPath`): where relative names are created and opened.
pub(crate) fn default_dir() -> PathBuf {
    std::env::temp_dir()
}

fn label_of(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// The file's identity: volume serial number and file index.
fn file_id(file: &File) -> std::io::Result<FileId> {
    // SAFETY: a plain C struct, for which all-zero is valid.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: a live file handle and a writable struct of the right type.
    if unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) } == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((
        info.dwVolumeSerialNumber,
        u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow),
    ))
}

fn wide(path: &Path) -> Vec<u16> {
    use std::os::windows::ffi::OsStrExt;
    path.as_os_str()
        .encode_wide()
        .chain(std::iter::once(0))
        .collect()
}

/// Creates a new segment file at `path` (exclusively), sized and initialised before it
/// appears under its name. `temporary`: deleted by Windows with its last handle.
pub(crate) fn create_file(
    path: &Path,
    data_size: usize,
    _mode: u32,
    remove_on_last_detach: bool,
    temporary: bool,
    params: &OpenParams,
) -> Result<MappedInner> {
    let op = Operation::Create;
    let label = label_of(path);
    let total = checked_total(data_size, HEADER_SIZE, op, &label)?;
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(
            Error::new(ErrorKind::KeyError, op, label.as_str()).with_detail("not a file name")
        );
    };
    // A temporary segment's name is new and random: nobody can open it before this call
    // returns it, so it is made in place (and Wine's delete-on-close follows the name the
    // file was opened by, not a later one).
    let staged = if temporary {
        path.to_path_buf()
    } else {
        let mut staged = name.to_os_string();
        staged.push(format!(
            ".{}-{:016x}.qshm-new",
            std::process::id(),
            crate::sys::random::random_u64()
        ));
        dir.join(staged)
    };
    let mut flags = 0;
    if temporary {
        flags |= FILE_FLAG_DELETE_ON_CLOSE;
    }
    let file = OpenOptions::new()
        .write(true) // for `create_new`; the access is `access_mode`'s
        .access_mode(GENERIC_READ | GENERIC_WRITE | DELETE)
        .share_mode(SHARE_ALL)
        .create_new(true)
        .attributes(FILE_ATTRIBUTE_TEMPORARY)
        .custom_flags(flags)
        .open(&staged)
        .map_err(|e| io_error(&e, op, &label))?;
    // Whatever fails from here on, the staged file goes.
    let staged_guard = Staged {
        path: &staged,
        armed: !temporary,
    };
    file.set_len(total as u64).map_err(|e| {
        io_error(&e, op, &label)
            .with_kind(ErrorKind::OutOfResources)
            .with_detail(format!("cannot size the file to {total} bytes"))
    })?;
    let flags = if remove_on_last_detach {
        FLAG_REMOVE_ON_LAST_DETACH
    } else {
        0
    };
    let header = new_header_bytes(
        HEADER_SIZE,
        data_size,
        flags,
        (0, 0),
        params.layout.unwrap_or((0, 0)),
    );
    write_all_at(&file, &header, 0).map_err(|e| io_error(&e, op, &label))?;
    let id = file_id(&file).map_err(|e| io_error(&e, op, &label))?;
    // Mapped under the staged name, removed by nobody but the guard until it has its name.
    let unnamed = Backing::File {
        path: PathBuf::new(),
        remove_on_last_detach: false,
    };
    let mut inner = map(
        file,
        id,
        HEADER_SIZE,
        data_size,
        params,
        unnamed,
        op,
        &label,
    )?;
    if temporary {
        std::mem::forget(staged_guard);
        inner.backing = Backing::File {
            path: path.to_path_buf(),
            remove_on_last_detach,
        };
        return Ok(inner);
    }
    let (from, to) = (wide(&staged), wide(path));
    // SAFETY: two NUL-terminated paths that outlive the call. No flags: an existing file is
    // not replaced (ERROR_ALREADY_EXISTS).
    if unsafe { MoveFileExW(from.as_ptr(), to.as_ptr(), 0) } == 0 {
        let err = os_error(last_error(), op, label.as_str())
            .with_detail("cannot give the new file its name (MoveFileExW)");
        drop(inner); // closes the file, so that the guard can remove it
        return Err(err);
    }
    std::mem::forget(staged_guard);
    inner.backing = Backing::File {
        path: path.to_path_buf(),
        remove_on_last_detach,
    };
    Ok(inner)
}

/// Removes a staged file that never got its name (unless Windows deletes it at close).
struct Staged<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(self.path);
        }
    }
}

fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match file.seek_write(buf, offset)? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Opens an existing segment file, after checking its header.
pub(crate) fn open_file(path: &Path, params: &OpenParams) -> Result<MappedInner> {
    let op = Operation::Attach;
    let label = label_of(path);
    let mut tries = 0;
    let file = loop {
        match OpenOptions::new()
            .read(true)
            .write(true)
            .share_mode(SHARE_ALL)
            .open(path)
        {
            Ok(file) => break file,
            // The last user is removing it (its exclusive open): gone in a moment.
            Err(e) if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION as i32) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(e) if e.raw_os_error() == Some(ERROR_SHARING_VIOLATION as i32) => {
                return Err(Error::new(ErrorKind::NotFound, op, label.as_str())
                    .with_detail("the file is being removed by its last user"))
            }
            Err(e) if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) => {
                return Err(io_error(&e, op, &label).with_detail(
                    "no read and write permission, or the file is being deleted (a temporary \
                     segment whose creator has detached)",
                ))
            }
            Err(e) => return Err(io_error(&e, op, &label)),
        }
    };
    from_file(file, path.to_path_buf(), params, op, &label)
}

/// Reads and checks the header of an open segment file, and maps it.
fn from_file(
    file: File,
    path: PathBuf,
    params: &OpenParams,
    op: Operation,
    label: &str,
) -> Result<MappedInner> {
    let len = file.metadata().map_err(|e| io_error(&e, op, label))?.len();
    let mut bytes = [0u8; MIN_HEADER_SIZE];
    let mut got = 0;
    while got < bytes.len() {
        match file.seek_read(&mut bytes[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(io_error(&e, op, label)),
        }
    }
    let facts = validate_header(&bytes[..got], len)
        .map_err(|(kind, msg)| Error::new(kind, op, label).with_detail(msg))?;
    check_layout(facts.layout, params.layout, op, label)?;
    let (header_size, data_size, flags) = (facts.header_size, facts.data_size, facts.flags);
    let id = file_id(&file).map_err(|e| io_error(&e, op, label))?;
    map(
        file,
        id,
        header_size,
        data_size,
        params,
        Backing::File {
            path,
            remove_on_last_detach: flags & FLAG_REMOVE_ON_LAST_DETACH != 0,
        },
        op,
        label,
    )
}

/// One view of `len` bytes of `section` from offset 0.
fn view(section: &OwnedHandle, access: u32, len: usize) -> Option<NonNull<u8>> {
    // SAFETY: maps a view of a live section handle; the view is unmapped in `unmap`, never
    // while a slice of it lives (slices borrow the segment).
    let view = unsafe { MapViewOfFile(section.as_raw_handle(), access, 0, 0, len) };
    NonNull::new(view.Value.cast::<u8>())
}

fn unmap_view(view: NonNull<u8>) {
    let view = MEMORY_MAPPED_VIEW_ADDRESS {
        Value: view.as_ptr().cast(),
    };
    // SAFETY: a view `view()` mapped, unmapped once (by `unmap`, which forgets it).
    unsafe { UnmapViewOfFile(view) };
}

#[allow(clippy::too_many_arguments)]
fn map(
    file: File,
    id: FileId,
    header_size: usize,
    data_size: usize,
    params: &OpenParams,
    backing: Backing,
    op: Operation,
    label: &str,
) -> Result<MappedInner> {
    let map_len = checked_total(data_size, header_size, op, label)?;
    // SAFETY: a section of the whole file (size 0: the file's), unnamed, default security.
    let raw = unsafe {
        CreateFileMappingW(
            file.as_raw_handle(),
            std::ptr::null(),
            PAGE_READWRITE,
            0,
            0,
            std::ptr::null(),
        )
    };
    if raw.is_null() {
        return Err(os_error(last_error(), op, label).with_detail("CreateFileMappingW failed"));
    }
    // SAFETY: a handle this call just opened and nothing else owns. Closed at the end of
    // this function: the views keep the section.
    let section = unsafe { OwnedHandle::from_raw_handle(raw) };
    let Some(rw) = view(&section, FILE_MAP_READ | FILE_MAP_WRITE, map_len) else {
        return Err(os_error(last_error(), op, label).with_detail("MapViewOfFile failed"));
    };
    let writable = params.access == AccessMode::ReadWrite;
    let read_only_view = if writable {
        None
    } else {
        match view(&section, FILE_MAP_READ, map_len) {
            Some(ro) => Some(ro),
            None => {
                let err = os_error(last_error(), op, label)
                    .with_detail("MapViewOfFile (read-only) failed");
                unmap_view(rw);
                return Err(err);
            }
        }
    };
    let owners = match WinOwners::new(id, &file, label) {
        Ok(owners) => owners,
        Err(e) => {
            unmap_view(rw);
            if let Some(ro) = read_only_view {
                unmap_view(ro);
            }
            return Err(e.with_op(op));
        }
    };
    let base = rw.as_ptr();
    // SAFETY: the view is page-aligned, so the lock fields at offsets 64, 72 and 80 are
    // aligned; the view stays mapped writable for as long as the lock lives (`close` drops
    // the lock before unmapping); every process accesses these fields atomically (the
    // protocol of qshm.h).
    let lock = unsafe {
        use crate::sys::segment_header::Header;
        LockKind::new(
            base.add(std::mem::offset_of!(Header, lock)).cast(),
            base.add(std::mem::offset_of!(Header, state)).cast(),
            base.add(std::mem::offset_of!(Header, generation)).cast(),
            owners,
        )
    };
    // SAFETY: `header_size < map_len`, and both views are `map_len` bytes long, so the
    // result stays inside a view, whose address is not null.
    let data =
        unsafe { NonNull::new_unchecked(read_only_view.unwrap_or(rw).as_ptr().add(header_size)) };
    Ok(MappedInner {
        view: rw,
        read_only_view,
        data,
        header_size,
        data_size,
        writable,
        lock: Some(lock),
        file: Some(file),
        id,
        backing,
    })
}

/// Removes the file at `path` if no process has it open. Returns whether it was removed.
pub(crate) fn remove_file(path: &Path) -> Result<bool> {
    remove_if_unused(path, None).map_err(|e| io_error(&e, Operation::Remove, &label_of(path)))
}

/// Opens `path` sharing nothing (so only when nobody else has it open) and, if it is the
/// file `expected` (when given), deletes it.
fn remove_if_unused(path: &Path, expected: Option<FileId>) -> std::io::Result<bool> {
    let file = match OpenOptions::new()
        .access_mode(DELETE | GENERIC_READ)
        .share_mode(0)
        .open(path)
    {
        Ok(file) => file,
        Err(e)
            if matches!(
                e.raw_os_error().map(|c| c as u32),
                Some(ERROR_SHARING_VIOLATION | ERROR_FILE_NOT_FOUND | ERROR_PATH_NOT_FOUND)
            ) =>
        {
            return Ok(false)
        }
        // Already being deleted (a temporary segment): nothing left to do.
        Err(e) if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) && expected.is_some() => {
            return Ok(false)
        }
        Err(e) => return Err(e),
    };
    if expected.is_some_and(|id| file_id(&file).ok() != Some(id)) {
        return Ok(false);
    }
    let info = FILE_DISPOSITION_INFO { DeleteFile: true };
    // SAFETY: a live handle opened with DELETE access; the struct is of the class's type and
    // size.
    let ok = unsafe {
        SetFileInformationByHandle(
            file.as_raw_handle(),
            FileDispositionInfo,
            (&info as *const FILE_DISPOSITION_INFO).cast(),
            std::mem::size_of::<FILE_DISPOSITION_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(true) // deleted when `file` closes, now
}

/// Handles adopted by `handle_from_env`, so that none is adopted twice.
static CLAIMED: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Spawns `cmd` with an inheritable duplicate of the segment's file handle, named in the
/// environment variable `var` (`<handle>:<size>`); the duplicate is closed here once the
/// child has it.
pub(crate) fn spawn_child(
    inner: &MappedInner,
    cmd: &mut Command,
    var: &str,
    label: &str,
) -> Result<Child> {
    let op = Operation::Send;
    let file = inner
        .file
        .as_ref()
        .ok_or_else(|| Error::new(ErrorKind::NotAttached, op, label))?;
    let dup = file.try_clone().map_err(|e| io_error(&e, op, label))?;
    // SAFETY: a live handle this function owns.
    if unsafe {
        SetHandleInformation(
            dup.as_raw_handle(),
            HANDLE_FLAG_INHERIT,
            HANDLE_FLAG_INHERIT,
        )
    } == 0
    {
        return Err(os_error(last_error(), op, label));
    }
    // `<handle>:<size>:<path>`: the path, because a process cannot always learn it from the
    // handle (Wine reports the name the file was opened by, before its rename).
    let Backing::File { path, .. } = &inner.backing;
    let mut value = std::ffi::OsString::from(format!(
        "{}:{}:",
        dup.as_raw_handle() as usize,
        inner.data_size
    ));
    value.push(path.as_os_str());
    cmd.env(var, value);
    cmd.spawn().map_err(|e| {
        io_error(&e, op, label).with_detail(format!("cannot spawn {:?}", cmd.get_program()))
    })
}

/// The file handle, size and path an inheriting parent named in `var` (see `spawn_child`).
pub(crate) fn handle_from_env(var: &str) -> Result<(File, u64, PathBuf)> {
    let op = Operation::Receive;
    let label = format!("%{var}%");
    let value = std::env::var(var).map_err(|_| {
        Error::new(ErrorKind::NotFound, op, label.as_str()).with_detail(format!(
            "the environment variable {var} is not set (or not Unicode)"
        ))
    })?;
    let mut parts = value.splitn(3, ':');
    let parsed = (|| {
        let handle = parts.next()?.parse::<usize>().ok()?;
        let size = parts.next()?.parse::<u64>().ok()?;
        Some((handle, size, PathBuf::from(parts.next().unwrap_or(""))))
    })();
    let Some((raw, size, path)) = parsed.filter(|&(h, _, _)| h != 0) else {
        return Err(
            Error::new(ErrorKind::KeyError, op, label.as_str()).with_detail(format!(
                "malformed value {value:?} (expected <handle>:<size>[:<path>])"
            )),
        );
    };
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    if claimed.contains(&raw) {
        return Err(
            Error::new(ErrorKind::AlreadyAttached, op, label.as_str()).with_detail(format!(
                "handle {raw:#x} was already adopted by this process"
            )),
        );
    }
    let handle = raw as RawHandle;
    // SAFETY: GetFileType on any value is harmless: it reads the object's type or fails.
    if unsafe { GetFileType(handle) } != FILE_TYPE_DISK {
        return Err(
            Error::new(ErrorKind::NotFound, op, label.as_str()).with_detail(format!(
                "handle {raw:#x} is not an open file (not inherited?)"
            )),
        );
    }
    claimed.push(raw);
    // SAFETY: the handle is an open file (checked above); the environment variable, set by
    // the parent for this child (`spawn_child`), names it as inherited, and CLAIMED makes
    // this the only adoption of it through qshm, so this File is its only owner. What
    // remains assumed (documented on `from_env`): no other code of this process uses it.
    let file = unsafe { File::from_raw_handle(handle) };
    // Do not pass it on to our own children.
    // SAFETY: a live handle this process owns.
    unsafe { SetHandleInformation(file.as_raw_handle(), HANDLE_FLAG_INHERIT, 0) };
    Ok((file, size, path))
}

/// Maps an inherited segment file; `path`: where the parent said it is (used only if it
/// names the same file, else the path Windows reports for the handle, if that does).
pub(crate) fn from_inherited(
    file: File,
    path: PathBuf,
    params: &OpenParams,
    label: &str,
) -> Result<MappedInner> {
    let same = |p: &Path| {
        OpenOptions::new()
            .access_mode(0) // attributes only: no sharing conflict with anyone
            .share_mode(SHARE_ALL)
            .open(p)
            .ok()
            .and_then(|f| file_id(&f).ok())
            .is_some_and(|id| file_id(&file).ok() == Some(id))
    };
    let path = if !path.as_os_str().is_empty() && same(&path) {
        path
    } else {
        final_path(&file).filter(|p| same(p)).unwrap_or_default()
    };
    from_file(file, path, params, Operation::Receive, label)
}

/// The path of an open file (`GetFinalPathNameByHandleW`).
fn final_path(file: &File) -> Option<PathBuf> {
    use std::os::windows::ffi::OsStringExt;
    let mut buf = vec![0u16; 512];
    loop {
        // SAFETY: a live file handle and a writable buffer of the length passed.
        let n = unsafe {
            GetFinalPathNameByHandleW(file.as_raw_handle(), buf.as_mut_ptr(), buf.len() as u32, 0)
        } as usize;
        if n == 0 {
            return None;
        }
        if n < buf.len() {
            buf.truncate(n);
            return Some(PathBuf::from(std::ffi::OsString::from_wide(&buf)));
        }
        buf.resize(n + 1, 0);
    }
}

impl MappedInner {
    /// `MappedSegment::check_size`: nothing to check (see the `Mapping` impl below).
    pub(crate) fn check_size_now(&self) -> Result<()> {
        Ok(())
    }

    /// The data area: its first byte.
    #[inline]
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        self.data.as_ptr()
    }

    pub(crate) fn data_size(&self) -> usize {
        self.data_size
    }

    pub(crate) fn header_size(&self) -> usize {
        self.header_size
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    pub(crate) fn backing(&self) -> &Backing {
        &self.backing
    }

    /// The segment file's handle (until closed).
    pub(crate) fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    #[inline]
    pub(crate) fn segment_lock(&self) -> &LockKind {
        self.lock
            .as_ref()
            .expect("the lock lives until the segment is closed, which takes it by value")
    }

    /// Identities and liveness of the processes using the segment (its lock's
    /// [`Owners`](crate::sys::word_lock::Owners)); `None` once closed.
    pub(crate) fn owners(&self) -> Option<&dyn crate::sys::word_lock::Owners> {
        self.lock
            .as_ref()
            .map(|l| l.owners() as &dyn crate::sys::word_lock::Owners)
    }

    /// How many times the lock was taken over from a dead holder.
    /// The layout stamp the header records (version, hash); (0, 0): none.
    pub(crate) fn layout(&self) -> (u32, u64) {
        // SAFETY: `view` is the page-aligned start of the read-write view of header and
        // data, which stays mapped while `self` is borrowed (only `close`, which takes
        // `&mut self`, unmaps it).
        unsafe { crate::sys::segment_header::mapped_layout(self.view.as_ptr()) }
    }

    pub(crate) fn lock_generation(&self) -> u64 {
        self.lock.as_ref().map_or(0, LockKind::generation)
    }

    fn unmap(&mut self) {
        unmap_view(self.view);
        if let Some(ro) = self.read_only_view.take() {
            unmap_view(ro);
        }
    }

    /// Unmaps and closes; a file flagged remove-on-last-detach is removed when no other
    /// process has it open. Returns whether the file was removed.
    pub(crate) fn close(&mut self) -> std::io::Result<bool> {
        if self.file.is_none() {
            return Ok(false);
        }
        // The lock first (it points into the view, and its slot lease holds the file open),
        // then the views, then the handle.
        self.lock = None;
        self.unmap();
        self.file = None;
        match &self.backing {
            Backing::File {
                path,
                remove_on_last_detach: true,
            } if !path.as_os_str().is_empty() => remove_if_unused(path, Some(self.id)),
            Backing::File { .. } => Ok(false),
        }
    }
}

impl Drop for MappedInner {
    fn drop(&mut self) {
        // Errors are ignored: the only way to report them would be through panicking.
        let _ = self.close();
    }
}

// SAFETY: `data_ptr()..+data_size` lies inside a view, which stays mapped while the value
// lives (only `close`, which needs `&mut self`, unmaps it). The file was sized with
// `SetEndOfFile`, which zero-fills, so the bytes are initialised. `writable()` is true only
// when the data is reached through the read-write view.
unsafe impl Mapping for MappedInner {
    #[inline]
    fn ptr(&self) -> *mut u8 {
        self.data_ptr()
    }

    #[inline]
    fn len(&self) -> usize {
        self.data_size
    }

    #[inline]
    fn writable(&self) -> bool {
        self.writable
    }

    // No size check: Windows refuses to truncate a file while any process maps it
    // (`ERROR_USER_MAPPED_FILE`), and this value maps it until it is closed.
}
