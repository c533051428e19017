//! Memory-mapped segments with their lock inside: files on a RAM-backed file system, and
//! memfds passed by inheritance or over Unix sockets (`qshm::mapped`).
//!
//! The segment starts with the header `include/qshm.h` describes (layout version 1); the
//! data area follows at `header_size`, a multiple of the page size, so that a read-only
//! attachment can map the data without write permission while still taking the lock.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man2/memfd_create.2.html>, `fcntl(2)` (file seals)
//! * <https://man7.org/linux/man-pages/man2/open.2.html> (`O_TMPFILE`), `linkat(2)`,
//!   `flock(2)`, `statfs(2)`
//! * <https://man7.org/linux/man-pages/man7/unix.7.html> (`SCM_RIGHTS`)
#![allow(clippy::unnecessary_cast)] // stat/statfs field types vary across architectures

use std::ffi::c_void;
use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, SealFlags, CWD};
use rustix::io::Errno;
use rustix::mm::{MapFlags, MprotectFlags, ProtFlags};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use super::robust_lock::{ImmutableLock, RobustLock};
use crate::backend::Wait;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::{Mapping, SegmentLock};
use crate::AccessMode;

/// The first 8 bytes of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"QSHM\0SEG";
/// The layout version this build reads and writes.
pub(crate) const VERSION: u32 = 1;
/// Written in native byte order; a reader of the other byte order sees `0x04030201`.
pub(crate) const BYTE_ORDER: u32 = 0x0102_0304;
/// Header flag: the file is removed when its last qshm user detaches.
pub(crate) const FLAG_REMOVE_ON_LAST_DETACH: u32 = 1;
/// The smallest header size a version-1 segment may declare (the fields below).
pub(crate) const MIN_HEADER_SIZE: usize = std::mem::size_of::<Header>();
/// Upper bound on a declared header size, so garbage cannot make us map gigabytes.
const MAX_HEADER_SIZE: usize = 1 << 20;

/// `statfs(2)` `f_type` values of RAM-backed file systems. Source: `<linux/magic.h>`.
const TMPFS_MAGIC: i64 = 0x0102_1994;
const RAMFS_MAGIC: i64 = 0x8584_58f6;
const HUGETLBFS_MAGIC: i64 = 0x9584_58f6_u32 as i64;

/// The fixed part of the header, layout version 1 (`struct qshm_header` in `qshm.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) magic: [u8; 8],
    pub(crate) version: u32,
    pub(crate) header_size: u32,
    pub(crate) data_size: u64,
    pub(crate) flags: u32,
    pub(crate) byte_order: u32,
    pub(crate) pid_ns: u64,
    pub(crate) reserved0: [u8; 24],
    pub(crate) lock: u64,
    pub(crate) state: u32,
    pub(crate) reserved1: u32,
    pub(crate) generation: u64,
}

const _: () = {
    assert!(std::mem::offset_of!(Header, version) == 8);
    assert!(std::mem::offset_of!(Header, header_size) == 12);
    assert!(std::mem::offset_of!(Header, data_size) == 16);
    assert!(std::mem::offset_of!(Header, flags) == 24);
    assert!(std::mem::offset_of!(Header, byte_order) == 28);
    assert!(std::mem::offset_of!(Header, pid_ns) == 32);
    assert!(std::mem::offset_of!(Header, lock) == 64);
    assert!(std::mem::offset_of!(Header, state) == 72);
    assert!(std::mem::offset_of!(Header, generation) == 80);
    assert!(std::mem::size_of::<Header>() == 88);
};

impl Header {
    fn from_bytes(b: &[u8; MIN_HEADER_SIZE]) -> Header {
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        Header {
            magic: b[0..8].try_into().expect("8 bytes"),
            version: u32_at(8),
            header_size: u32_at(12),
            data_size: u64_at(16),
            flags: u32_at(24),
            byte_order: u32_at(28),
            pid_ns: u64_at(32),
            reserved0: [0; 24],
            lock: u64_at(64),
            state: u32_at(72),
            reserved1: 0,
            generation: u64_at(80),
        }
    }
}

/// Checks a header read from a file of `file_len` bytes; returns (header size, data size).
/// The error is (kind, message).
pub(crate) fn validate_header(
    bytes: &[u8],
    file_len: u64,
) -> std::result::Result<(usize, usize, u32, u64), (ErrorKind, String)> {
    if bytes.len() < MIN_HEADER_SIZE || file_len < MIN_HEADER_SIZE as u64 {
        return Err((
            ErrorKind::InvalidSize,
            format!(
                "the file is {file_len} bytes, smaller than a qshm header ({MIN_HEADER_SIZE} bytes)"
            ),
        ));
    }
    let h = Header::from_bytes(bytes[..MIN_HEADER_SIZE].try_into().expect("header bytes"));
    if h.magic != MAGIC {
        return Err((
            ErrorKind::KeyError,
            "not a qshm segment (bad magic: expected \"QSHM\\0SEG\" at offset 0)".into(),
        ));
    }
    if h.byte_order != BYTE_ORDER {
        return Err((
            ErrorKind::Unsupported,
            format!(
                "the segment was made on a machine of the other byte order ({:#010x})",
                h.byte_order
            ),
        ));
    }
    if h.version != VERSION {
        return Err((
            ErrorKind::Unsupported,
            format!(
                "layout version {} is not supported (this build reads version {VERSION})",
                h.version
            ),
        ));
    }
    let header_size = h.header_size as usize;
    if !(MIN_HEADER_SIZE..=MAX_HEADER_SIZE).contains(&header_size) || header_size % 64 != 0 {
        return Err((
            ErrorKind::KeyError,
            format!(
                "corrupt header: header size {header_size} (must be a multiple of 64 between \
                 {MIN_HEADER_SIZE} and {MAX_HEADER_SIZE})"
            ),
        ));
    }
    let needed = (header_size as u64).checked_add(h.data_size);
    let Some(needed) = needed.filter(|&n| n <= isize::MAX as u64) else {
        return Err((
            ErrorKind::InvalidSize,
            format!("corrupt header: data size {} is too large", h.data_size),
        ));
    };
    if h.data_size == 0 {
        return Err((ErrorKind::InvalidSize, "corrupt header: data size 0".into()));
    }
    if file_len < needed {
        return Err((
            ErrorKind::InvalidSize,
            format!(
                "the header claims {needed} bytes ({header_size} of header and {} of data) \
                 but the file has only {file_len}",
                h.data_size
            ),
        ));
    }
    Ok((header_size, h.data_size as usize, h.flags, h.pid_ns))
}

fn page_size() -> usize {
    rustix::param::page_size()
}

/// The header size new segments get: one page (at least 4096).
pub(crate) fn new_header_size() -> usize {
    page_size().max(4096)
}

/// The inode number of this process's PID namespace (0 when it cannot be read).
fn pid_namespace() -> u64 {
    static NS: OnceLock<u64> = OnceLock::new();
    *NS.get_or_init(|| rustix::fs::stat("/proc/self/ns/pid").map_or(0, |s| s.st_ino as u64))
}

/// Whether a `statfs` file-system type keeps its pages in RAM only.
pub(crate) fn is_ram_fs(f_type: i64) -> bool {
    matches!(f_type, TMPFS_MAGIC | RAMFS_MAGIC | HUGETLBFS_MAGIC)
}

fn fs_name(f_type: i64) -> String {
    match f_type {
        0xef53 => "ext2/ext3/ext4".into(),
        0x9123_683e => "btrfs".into(),
        0x5846_5342 => "xfs".into(),
        0x6969 => "nfs".into(),
        0x794c_7630 => "overlayfs".into(),
        0x0102_1994 => "tmpfs".into(),
        other => format!("file system type {other:#x}"),
    }
}

/// `$XDG_RUNTIME_DIR` when it is absolute, owned by this user and mode 0700; else `/dev/shm`.
pub(crate) fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            if let Ok(meta) = std::fs::metadata(&dir) {
                let uid = rustix::process::geteuid().as_raw();
                if meta.is_dir() && meta.uid() == uid && meta.mode() & 0o777 == 0o700 {
                    return dir;
                }
            }
        }
    }
    PathBuf::from("/dev/shm")
}

fn errno_err(e: Errno, op: Operation, label: &str) -> Error {
    Error::from_errno(e.raw_os_error(), op, label)
}

/// Refuses a file system whose pages are written back to disk, unless allowed.
fn check_ram_backed(f_type: i64, allow_disk: bool, what: &Path, op: Operation) -> Result<()> {
    if allow_disk || is_ram_fs(f_type) {
        return Ok(());
    }
    Err(
        Error::new(ErrorKind::KeyError, op, what.display().to_string()).with_detail(format!(
            "{} is on a disk-backed file system ({}): its pages would be written back to \
             storage; use a tmpfs directory (/dev/shm, $XDG_RUNTIME_DIR) or opt in with \
             allow_disk_backed(true)",
            what.display(),
            fs_name(f_type)
        )),
    )
}

/// How a segment's memory is backed.
#[derive(Debug)]
pub(crate) enum Backing {
    /// A named file; the path it was opened or created at.
    File {
        path: PathBuf,
        remove_on_last_detach: bool,
        /// The process that opened the descriptor: a process forked from it shares the
        /// descriptor's open file description, and so its `flock` (see `close`).
        opener: u32,
    },
    /// A memfd (its seals are read from the descriptor when asked).
    Memfd,
    /// A descriptor received from elsewhere that is not a sealable memfd.
    Fd,
}

/// What the options of `qshm::mapped` ask for, as the backend needs it.
#[derive(Clone, Debug)]
pub(crate) struct OpenParams {
    pub(crate) access: AccessMode,
    pub(crate) allow_disk_backed: bool,
    pub(crate) allow_unsealed: bool,
    pub(crate) check_size_on_lock: bool,
}

/// The lock of a mapped segment: one enum, so that `Locked::acquire` inlines its fast path.
pub(crate) enum LockKind {
    Robust(RobustLock),
    Immutable(ImmutableLock),
}

impl SegmentLock for LockKind {
    #[inline]
    fn lock(&self, wait: Wait, op: Operation) -> Result<bool> {
        match self {
            LockKind::Robust(l) => l.lock(wait, op),
            LockKind::Immutable(l) => l.lock(wait, op),
        }
    }

    #[inline]
    fn unlock(&self) -> Result<()> {
        match self {
            LockKind::Robust(l) => l.unlock(),
            LockKind::Immutable(l) => l.unlock(),
        }
    }

    fn mark_consistent(&self) {
        match self {
            LockKind::Robust(l) => l.mark_consistent(),
            LockKind::Immutable(l) => l.mark_consistent(),
        }
    }
}

/// A mapped segment: header, lock and data area.
pub(crate) struct MappedInner {
    map: NonNull<u8>,
    map_len: usize,
    /// A second, read-only mapping of the same `map_len` bytes, through which the data area
    /// is reached when it must be read-only but does not start on a page boundary (a header
    /// size that is not a multiple of the page size, which `qshm.h` allows): `mprotect` can
    /// only protect whole pages, and the first one holds the lock, which must stay writable.
    read_only_view: Option<NonNull<u8>>,
    header_size: usize,
    data_size: usize,
    writable: bool,
    check_size: bool,
    lock: LockKind,
    fd: OwnedFd,
    backing: Backing,
    closed: bool,
}

// SAFETY: the struct owns a process-wide mapping and a descriptor, neither tied to the thread
// that made them (munmap and close may run on any thread). It never reads or writes the data
// area itself: slices are made by `Locked`, which requires the lock; the header is accessed
// only atomically (`RobustLock`). Checked at compile time in `tests::send_sync`.
unsafe impl Send for MappedInner {}
// SAFETY: `&MappedInner` exposes plain values (address, sizes, descriptor) and the lock,
// whose operations are atomic; see `Send` for the data area.
unsafe impl Sync for MappedInner {}

impl fmt::Debug for MappedInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedInner")
            .field("backing", &self.backing)
            .field("fd", &self.fd.as_raw_fd())
            .field("addr", &self.map)
            .field("header_size", &self.header_size)
            .field("data_size", &self.data_size)
            .field("writable", &self.writable)
            .finish()
    }
}

/// How to map what `map_fd` maps.
struct MapRequest {
    header_size: usize,
    data_size: usize,
    /// The data area is mapped writable.
    data_writable: bool,
    /// Nobody can write the segment (write-sealed): map everything read-only, no lock.
    immutable: bool,
    check_size: bool,
}

impl MapRequest {
    /// A plain file segment's mapping, as `params` ask.
    fn file(header_size: usize, data_size: usize, params: &OpenParams) -> MapRequest {
        MapRequest {
            header_size,
            data_size,
            data_writable: params.access == AccessMode::ReadWrite,
            immutable: false,
            check_size: params.check_size_on_lock,
        }
    }
}

fn map_fd(
    fd: OwnedFd,
    backing: Backing,
    req: MapRequest,
    op: Operation,
    label: &str,
) -> Result<MappedInner> {
    let map_len = req.header_size + req.data_size;
    let prot = if req.immutable {
        ProtFlags::READ
    } else {
        ProtFlags::READ | ProtFlags::WRITE
    };
    // SAFETY: a null address lets the kernel choose where to map; this creates a new mapping
    // and does not modify any existing one. `fd` is open and at least `map_len` bytes long
    // (checked by the callers).
    let addr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            map_len,
            prot,
            MapFlags::SHARED,
            &fd,
            0,
        )
    }
    .map_err(|e| errno_err(e, op, label).with_detail(format!("mmap failed ({e})")))?;
    let map = NonNull::new(addr.cast::<u8>()).expect("mmap never returns null on success");
    let mut writable = !req.immutable;
    let mut read_only_view = None;
    if !req.immutable && !req.data_writable {
        if req.header_size % page_size() != 0 {
            // SAFETY: as for the first mapping: a new read-only mapping of the same file.
            let view = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    ProtFlags::READ,
                    MapFlags::SHARED,
                    &fd,
                    0,
                )
            };
            match view {
                Ok(view) => read_only_view = NonNull::new(view.cast::<u8>()),
                Err(e) => {
                    // SAFETY: unmapping the mapping created above, which nothing references.
                    let _ = unsafe { rustix::mm::munmap(addr, map_len) };
                    return Err(errno_err(e, op, label).with_detail(format!("mmap failed ({e})")));
                }
            }
        } else {
            // SAFETY: the range lies inside the mapping just created, which nothing else
            // references yet; mprotect only removes write permission from it.
            let r = unsafe {
                rustix::mm::mprotect(
                    addr.cast::<u8>().add(req.header_size).cast::<c_void>(),
                    req.data_size,
                    MprotectFlags::READ,
                )
            };
            if let Err(e) = r {
                // SAFETY: unmapping the mapping created above, which nothing references.
                let _ = unsafe { rustix::mm::munmap(addr, map_len) };
                return Err(errno_err(e, op, label).with_detail(format!("mprotect failed ({e})")));
            }
        }
        writable = false;
    }
    let lock = if req.immutable {
        LockKind::Immutable(ImmutableLock)
    } else {
        let base = addr.cast::<u8>();
        // SAFETY: the header lies at the start of the mapping, which is page-aligned, so the
        // fields at offsets 64, 72 and 80 are aligned; the header page stays mapped writable
        // for as long as the lock lives (it is dropped before the munmap in `close`); every
        // process accesses these fields atomically (the protocol of qshm.h).
        unsafe {
            LockKind::Robust(RobustLock::new(
                base.add(std::mem::offset_of!(Header, lock)).cast(),
                base.add(std::mem::offset_of!(Header, state)).cast(),
                base.add(std::mem::offset_of!(Header, generation)).cast(),
            ))
        }
    };
    Ok(MappedInner {
        map,
        map_len,
        read_only_view,
        header_size: req.header_size,
        data_size: req.data_size,
        writable,
        check_size: req.check_size,
        lock,
        fd,
        backing,
        closed: false,
    })
}

/// Writes a new header into a freshly sized, not yet shared descriptor.
fn write_header(
    fd: &OwnedFd,
    header_size: usize,
    data_size: usize,
    flags: u32,
    label: &str,
    op: Operation,
) -> Result<()> {
    let header = Header {
        magic: MAGIC,
        version: VERSION,
        header_size: header_size as u32,
        data_size: data_size as u64,
        flags,
        byte_order: BYTE_ORDER,
        pid_ns: pid_namespace(),
        reserved0: [0; 24],
        lock: 0,
        state: 0,
        reserved1: 0,
        generation: 0,
    };
    let mut bytes = [0u8; MIN_HEADER_SIZE];
    bytes[0..8].copy_from_slice(&header.magic);
    bytes[8..12].copy_from_slice(&header.version.to_ne_bytes());
    bytes[12..16].copy_from_slice(&header.header_size.to_ne_bytes());
    bytes[16..24].copy_from_slice(&header.data_size.to_ne_bytes());
    bytes[24..28].copy_from_slice(&header.flags.to_ne_bytes());
    bytes[28..32].copy_from_slice(&header.byte_order.to_ne_bytes());
    bytes[32..40].copy_from_slice(&header.pid_ns.to_ne_bytes());
    let n = rustix::io::pwrite(fd, &bytes, 0).map_err(|e| errno_err(e, op, label))?;
    if n != bytes.len() {
        return Err(Error::new(ErrorKind::OutOfResources, op, label)
            .with_detail("short write of the header"));
    }
    Ok(())
}

/// Reads and validates the header of `fd`, whose size is `file_len`.
fn read_header(
    fd: &OwnedFd,
    file_len: u64,
    op: Operation,
    label: &str,
) -> Result<(usize, usize, u32)> {
    let mut bytes = [0u8; MIN_HEADER_SIZE];
    let mut got = 0;
    while got < bytes.len() {
        match rustix::io::pread(fd, &mut bytes[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(errno_err(e, op, label)),
        }
    }
    let (header_size, data_size, flags, pid_ns) = validate_header(&bytes[..got], file_len)
        .map_err(|(kind, msg)| Error::new(kind, op, label).with_detail(msg))?;
    let mine = pid_namespace();
    if pid_ns != 0 && mine != 0 && pid_ns != mine {
        return Err(Error::new(ErrorKind::Unsupported, op, label).with_detail(
            "the segment was created in another PID namespace: its lock identifies owners by \
             thread id, which cannot work across namespaces",
        ));
    }
    Ok((header_size, data_size, flags))
}

fn checked_total(
    data_size: usize,
    header_size: usize,
    op: Operation,
    label: &str,
) -> Result<usize> {
    if data_size == 0 {
        return Err(Error::new(ErrorKind::InvalidSize, op, label).with_detail("size is 0"));
    }
    header_size
        .checked_add(data_size)
        .filter(|&t| t <= isize::MAX as usize)
        .ok_or_else(|| {
            Error::new(ErrorKind::InvalidSize, op, label)
                .with_detail("size is larger than isize::MAX")
        })
}

/// Refuses a new segment larger than the room left on its file system (see
/// `check_room`), without touching a page.
fn check_room(fd: &OwnedFd, total: usize, op: Operation, label: &str) -> Result<()> {
    super::check_room(fd, total as u64).map_err(|avail| {
        Error::new(ErrorKind::OutOfResources, op, label).with_detail(format!(
            "not enough room for the segment's {total} bytes ({avail} bytes free)"
        ))
    })
}

fn size_err(e: Errno, op: Operation, label: &str) -> Error {
    let err = errno_err(e, op, label);
    match e {
        Errno::FBIG | Errno::INVAL => err.with_kind(ErrorKind::InvalidSize),
        Errno::NOSPC | Errno::NOMEM => err.with_kind(ErrorKind::OutOfResources),
        _ => err,
    }
}

// ---------------------------------------------------------------------------------------
// Files

/// Creates a new segment file at `path` (exclusively), sized and initialised before it
/// becomes visible under its name.
pub(crate) fn create_file(
    path: &Path,
    data_size: usize,
    mode: u32,
    remove_on_last_detach: bool,
    params: &OpenParams,
) -> Result<MappedInner> {
    let op = Operation::Create;
    let label = format!("file:{}", path.display());
    let header_size = new_header_size();
    let total = checked_total(data_size, header_size, op, &label)?;
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(
            Error::new(ErrorKind::KeyError, op, &label).with_detail("path contains a NUL byte")
        );
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.file_name().is_none() {
        return Err(Error::new(ErrorKind::KeyError, op, &label).with_detail("path names no file"));
    }
    let st = rustix::fs::statfs(&dir).map_err(|e| {
        errno_err(e, op, &label)
            .with_detail(format!("cannot use directory {} ({e})", dir.display()))
    })?;
    check_ram_backed(st.f_type as i64, params.allow_disk_backed, &dir, op)
        .map_err(|e| e.with_key(label.clone()))?;

    // Prefer an anonymous O_TMPFILE, linked in when ready: nothing half-made is ever visible
    // and nothing is left behind by a crash. Fall back to a hidden temporary name.
    let (fd, tmp_name) = match rustix::fs::openat(
        CWD,
        &dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(fd) => (fd, None),
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOENT) => {
            let tmp = dir.join(format!(
                ".qshm-creating-{}-{:x}",
                std::process::id(),
                random_u64()
            ));
            let fd = rustix::fs::open(
                &tmp,
                OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| errno_err(e, op, &label))?;
            (fd, Some(tmp))
        }
        Err(e) => return Err(errno_err(e, op, &label)),
    };
    let cleanup_tmp = |tmp: &Option<PathBuf>| {
        if let Some(t) = tmp {
            let _ = rustix::fs::unlink(t);
        }
    };
    let prepared = (|| {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777))
            .map_err(|e| errno_err(e, op, &label))?;
        rustix::fs::ftruncate(&fd, total as u64).map_err(|e| size_err(e, op, &label))?;
        check_room(&fd, total, op, &label)?;
        let flags = if remove_on_last_detach {
            FLAG_REMOVE_ON_LAST_DETACH
        } else {
            0
        };
        write_header(&fd, header_size, data_size, flags, &label, op)?;
        // Users hold a shared flock while attached; the last one can take it exclusively.
        rustix::fs::flock(&fd, FlockOperation::LockShared).map_err(|e| errno_err(e, op, &label))?;
        Ok(())
    })();
    if let Err(e) = prepared {
        cleanup_tmp(&tmp_name);
        return Err(e);
    }
    let linked = match &tmp_name {
        None => {
            let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            match rustix::fs::linkat(CWD, proc_path.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW) {
                Err(Errno::NOENT) if !Path::new("/proc/self/fd").exists() => {
                    rustix::fs::linkat(&fd, "", CWD, path, AtFlags::EMPTY_PATH)
                }
                other => other,
            }
        }
        Some(tmp) => {
            let r = rustix::fs::link(tmp, path);
            cleanup_tmp(&tmp_name);
            r
        }
    };
    if let Err(e) = linked {
        return Err(errno_err(e, op, &label));
    }
    let req = MapRequest::file(header_size, data_size, params);
    let backing = Backing::File {
        path: path.to_path_buf(),
        remove_on_last_detach,
        opener: std::process::id(),
    };
    map_fd(fd, backing, req, op, &label).inspect_err(|_| {
        let _ = rustix::fs::unlink(path);
    })
}

/// Opens an existing segment file.
pub(crate) fn open_file(path: &Path, params: &OpenParams) -> Result<MappedInner> {
    let op = Operation::Attach;
    let label = format!("file:{}", path.display());
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(
            Error::new(ErrorKind::KeyError, op, &label).with_detail("path contains a NUL byte")
        );
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
            let err = errno_err(e, op, &label);
            if e == Errno::ACCESS && params.access == AccessMode::ReadOnly {
                err.with_detail("permission denied: even a read-only user needs write permission on the file to take the lock inside it")
            } else if e == Errno::ISDIR {
                err.with_kind(ErrorKind::KeyError).with_detail("not a regular file (a directory)")
            } else {
                err
            }
        })?;
        // Hold a shared flock while attached (see `close`). A last user removing the file
        // holds it exclusively for a moment.
        loop {
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockShared) {
                Ok(()) => break,
                Err(Errno::WOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(Errno::WOULDBLOCK) => {
                    return Err(Error::new(ErrorKind::Timeout, op, &label)
                        .with_detail("the file stayed locked exclusively (flock) for 5 s"))
                }
                Err(e) => return Err(errno_err(e, op, &label)),
            }
        }
        let st = rustix::fs::fstat(&fd).map_err(|e| errno_err(e, op, &label))?;
        if st.st_nlink == 0 {
            // Removed by its last user between our open and our flock: look again.
            if Instant::now() < deadline {
                continue;
            }
            return Err(
                Error::new(ErrorKind::NotFound, op, &label).with_detail("the file was removed")
            );
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(
                Error::new(ErrorKind::KeyError, op, &label).with_detail("not a regular file")
            );
        }
        let fs = rustix::fs::fstatfs(&fd).map_err(|e| errno_err(e, op, &label))?;
        check_ram_backed(fs.f_type as i64, params.allow_disk_backed, path, op)
            .map_err(|e| e.with_key(label.clone()))?;
        let (header_size, data_size, flags) = read_header(&fd, st.st_size as u64, op, &label)?;
        let req = MapRequest::file(header_size, data_size, params);
        let backing = Backing::File {
            path: path.to_path_buf(),
            remove_on_last_detach: flags & FLAG_REMOVE_ON_LAST_DETACH != 0,
            opener: std::process::id(),
        };
        return map_fd(fd, backing, req, op, &label);
    }
}

/// Removes the segment file at `path` if no qshm user has it attached (nobody holds its
/// shared flock). Returns whether it was removed.
pub(crate) fn remove_file(path: &Path) -> Result<bool> {
    let op = Operation::Remove;
    let label = format!("file:{}", path.display());
    let fd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(errno_err(e, op, &label)),
    };
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Ok(false),
        Err(e) => return Err(errno_err(e, op, &label)),
    }
    unlink_if_same(path, &fd).map_err(|e| errno_err(e, op, &label))
}

/// Unlinks `path` if it still names the file open as `fd`.
fn unlink_if_same(path: &Path, fd: &OwnedFd) -> std::result::Result<bool, Errno> {
    let mine = rustix::fs::fstat(fd)?;
    match rustix::fs::lstat(path) {
        Ok(st) if st.st_dev == mine.st_dev && st.st_ino == mine.st_ino => {
            rustix::fs::unlink(path)?;
            Ok(true)
        }
        Ok(_) | Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A random number for unique names (std's hasher keys are random per process and call).
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

// ---------------------------------------------------------------------------------------
// memfd

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`, sized, sealed (when `seal`)
/// against shrinking and growing before it is mapped, and initialised.
pub(crate) fn create_memfd(name: &str, data_size: usize, seal: bool) -> Result<MappedInner> {
    let op = Operation::Create;
    let label = format!("memfd:{name}");
    let header_size = new_header_size();
    let total = checked_total(data_size, header_size, op, &label)?;
    if name.contains('\0') || name.len() > 249 {
        return Err(Error::new(ErrorKind::KeyError, op, &label)
            .with_detail("a memfd name must have no NUL and at most 249 bytes"));
    }
    let fd = rustix::fs::memfd_create(
        name,
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| errno_err(e, op, &label))?;
    rustix::fs::ftruncate(&fd, total as u64).map_err(|e| size_err(e, op, &label))?;
    check_room(&fd, total, op, &label)?;
    write_header(&fd, header_size, data_size, 0, &label, op)?;
    let seals = if seal {
        SealFlags::SHRINK | SealFlags::GROW
    } else {
        SealFlags::empty()
    };
    if seal {
        rustix::fs::fcntl_add_seals(&fd, seals).map_err(|e| {
            errno_err(e, op, &label).with_detail(format!("cannot seal the memfd ({e})"))
        })?;
    }
    let req = MapRequest {
        header_size,
        data_size,
        data_writable: true,
        immutable: false,
        check_size: false,
    };
    map_fd(fd, Backing::Memfd, req, op, &label)
}

/// Maps a descriptor received from elsewhere, after checking its seals and size.
pub(crate) fn from_fd(fd: OwnedFd, params: &OpenParams, label: &str) -> Result<MappedInner> {
    let op = Operation::Attach;
    let st = rustix::fs::fstat(&fd).map_err(|e| errno_err(e, op, label))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::new(ErrorKind::KeyError, op, label)
            .with_detail("the descriptor is not a regular file or memfd"));
    }
    let seals = match rustix::fs::fcntl_get_seals(&fd) {
        Ok(s) => Some(s),
        Err(Errno::INVAL) => None,
        Err(e) => return Err(errno_err(e, op, label)),
    };
    let shrink_sealed = seals.is_some_and(|s| s.contains(SealFlags::SHRINK));
    if !shrink_sealed && !params.allow_unsealed {
        return Err(Error::new(ErrorKind::PermissionDenied, op, label).with_detail(
            "the segment is not sealed against shrinking (F_SEAL_SHRINK): a peer could truncate it \
             and crash this process; refused (opt in with allow_unsealed(true))",
        ));
    }
    if seals.is_none() {
        let fs = rustix::fs::fstatfs(&fd).map_err(|e| errno_err(e, op, label))?;
        check_ram_backed(
            fs.f_type as i64,
            params.allow_disk_backed,
            Path::new(label),
            op,
        )?;
    }
    // With F_SEAL_SHRINK the size checked here cannot decrease afterwards.
    let (header_size, data_size, _) = read_header(&fd, st.st_size as u64, op, label)?;
    let immutable = seals.is_some_and(|s| s.contains(SealFlags::WRITE));
    let req = MapRequest {
        header_size,
        data_size,
        data_writable: params.access == AccessMode::ReadWrite && !immutable,
        immutable,
        check_size: !shrink_sealed,
    };
    let backing = match seals {
        Some(_) => Backing::Memfd,
        None => Backing::Fd,
    };
    map_fd(fd, backing, req, op, label)
}

impl MappedInner {
    /// The data area: its first byte.
    #[inline]
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        let base = self.read_only_view.unwrap_or(self.map);
        // SAFETY: `header_size < map_len`, and both mappings are `map_len` bytes long, so the
        // result stays inside the mapping.
        unsafe { base.as_ptr().add(self.header_size) }
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

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    #[inline]
    pub(crate) fn segment_lock(&self) -> &LockKind {
        &self.lock
    }

    /// How many times the lock was taken over from a dead holder.
    pub(crate) fn lock_generation(&self) -> u64 {
        match &self.lock {
            LockKind::Robust(l) => l.generation(),
            LockKind::Immutable(_) => 0,
        }
    }

    /// Whether the backing file system keeps the pages in RAM only.
    pub(crate) fn is_ram_backed(&self) -> bool {
        rustix::fs::fstatfs(&self.fd).is_ok_and(|s| is_ram_fs(s.f_type as i64))
    }

    /// The seals on the descriptor (empty for plain files).
    fn seals(&self) -> SealFlags {
        rustix::fs::fcntl_get_seals(&self.fd).unwrap_or(SealFlags::empty())
    }

    pub(crate) fn is_shrink_sealed(&self) -> bool {
        self.seals().contains(SealFlags::SHRINK)
    }

    pub(crate) fn is_write_sealed(&self) -> bool {
        self.seals().contains(SealFlags::WRITE)
    }

    /// Seals a memfd against writing (after unmapping every writable mapping of ours), then
    /// maps it again read-only. Fails with `Busy`-like errors when another process still has
    /// it mapped writable.
    pub(crate) fn seal_write(mut self, label: &str) -> Result<MappedInner> {
        let op = Operation::Seal;
        if !matches!(self.backing, Backing::Memfd) {
            return Err(Error::new(ErrorKind::Unsupported, op, label)
                .with_detail("only memfd segments can be sealed"));
        }
        if matches!(self.lock, LockKind::Immutable(_)) {
            return Ok(self);
        }
        let word = self.lock_word();
        if word != 0 {
            return Err(Error::new(ErrorKind::LockError, op, label)
                .with_detail("the segment's lock is held"));
        }
        let fd =
            rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(|e| errno_err(e, op, label))?;
        self.unmap();
        let sealed = rustix::fs::fcntl_add_seals(&fd, SealFlags::WRITE);
        let sealed_ok = sealed.is_ok();
        let header_size = self.header_size;
        let data_size = self.data_size;
        let req = MapRequest {
            header_size,
            data_size,
            data_writable: !sealed_ok,
            immutable: sealed_ok,
            check_size: false,
        };
        let remapped = map_fd(fd, Backing::Memfd, req, op, label);
        match (sealed, remapped) {
            (Ok(()), Ok(m)) => Ok(m),
            (Err(e), _) => Err(errno_err(e, op, label).with_detail(match e {
                Errno::BUSY => "another process still maps the memfd writable (EBUSY)".to_string(),
                Errno::PERM => {
                    "the memfd does not allow this seal (F_SEAL_SEAL, or not sealable)".to_string()
                }
                other => format!("cannot add F_SEAL_WRITE ({other})"),
            })),
            (Ok(()), Err(e)) => Err(e),
        }
    }

    fn lock_word(&self) -> u64 {
        // SAFETY: offset 64 of the page-aligned mapping is an aligned u64 inside it, and every
        // process accesses the lock word only atomically.
        let word = unsafe {
            &*self
                .map
                .as_ptr()
                .add(std::mem::offset_of!(Header, lock))
                .cast::<AtomicU64>()
        };
        word.load(Ordering::Relaxed)
    }

    fn unmap(&mut self) {
        if self.map_len != 0 {
            // The lock points into the header: it goes first (see `map_fd`).
            self.lock = LockKind::Immutable(ImmutableLock);
            // SAFETY: `map..map+map_len` is the mapping this value created; the only things
            // pointing into it were the lock (gone, above) and slices lent by `Locked`,
            // which borrow the owner of this value and so are gone by the time it can be
            // closed (`close` takes `&mut self` or runs in drop).
            let _ = unsafe { rustix::mm::munmap(self.map.as_ptr().cast(), self.map_len) };
            if let Some(view) = self.read_only_view.take() {
                // SAFETY: as above, for the read-only view of the same length.
                let _ = unsafe { rustix::mm::munmap(view.as_ptr().cast(), self.map_len) };
            }
            self.map_len = 0;
        }
    }

    /// Unmaps and closes; a file flagged remove-on-last-detach is removed when no other
    /// qshm user holds it. Returns whether the file was removed.
    pub(crate) fn close(&mut self) -> std::result::Result<bool, Errno> {
        if self.closed {
            return Ok(false);
        }
        self.closed = true;
        self.unmap();
        if let Backing::File {
            path,
            remove_on_last_detach: true,
            opener,
        } = &self.backing
        {
            // A copy in a process forked from the opener shares the descriptor's open file
            // description, and so the opener's shared flock: turning it exclusive would
            // succeed while the opener still uses the file. Such a copy asks with a
            // descriptor of its own (closing the shared one first, which ends the count if
            // the opener has gone).
            if *opener != std::process::id() {
                let ino = rustix::fs::fstat(&self.fd)?.st_ino;
                match super::reopen_same_file(path, false, ino)? {
                    Some(fresh) => self.fd = fresh,
                    None => return Ok(false),
                }
            }
            match rustix::fs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => return unlink_if_same(path, &self.fd),
                Err(Errno::WOULDBLOCK) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }
}

impl Drop for MappedInner {
    fn drop(&mut self) {
        // Errors are ignored: the only way to report them would be through panicking.
        let _ = self.close();
    }
}

// SAFETY: `data_ptr()..+data_size` lies inside the mapping, which stays mapped while the
// value lives (only `close`/`seal_write`, which need `&mut self` or ownership, unmap it).
// New files and memfds are zero-filled by the kernel (ftruncate), so the bytes are
// initialised. `writable()` is true only when the data area is mapped PROT_WRITE.
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

    #[inline]
    fn check_locked(&self) -> Result<()> {
        if !self.check_size {
            return Ok(());
        }
        self.check_size_locked()
    }
}

impl MappedInner {
    /// The size check of `check_locked`: one `fstat`.
    fn check_size_locked(&self) -> Result<()> {
        let needed = (self.header_size + self.data_size) as u64;
        let st = rustix::fs::fstat(&self.fd).map_err(|e| errno_err(e, Operation::Lock, ""))?;
        if (st.st_size as u64) < needed {
            return Err(
                Error::new(ErrorKind::InvalidSize, Operation::Lock, "").with_detail(format!(
                "the file was truncated to {} bytes by someone else; the segment needs {needed}: \
                 refusing to lend memory that is no longer backed",
                st.st_size
            )),
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Passing descriptors

/// The payload sent with the descriptor: magic and data size.
const WIRE_LEN: usize = 16;

/// Sends `fd` over `stream` with `SCM_RIGHTS`, with a 16-byte message (magic, data size).
pub(crate) fn send_fd(
    fd: BorrowedFd<'_>,
    data_size: usize,
    stream: &UnixStream,
    label: &str,
) -> Result<()> {
    let op = Operation::Send;
    let mut msg = [0u8; WIRE_LEN];
    msg[..8].copy_from_slice(&MAGIC);
    msg[8..].copy_from_slice(&(data_size as u64).to_le_bytes());
    let fds = [fd];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(
            Error::new(ErrorKind::Unknown, op, label).with_detail("control buffer too small")
        );
    }
    let mut sent = loop {
        match rustix::net::sendmsg(
            stream,
            &[IoSlice::new(&msg)],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Err(Errno::INTR) => {}
            other => break other.map_err(|e| errno_err(e, op, label))?,
        }
    };
    while sent < WIRE_LEN {
        match rustix::io::write(stream, &msg[sent..]) {
            Ok(n) => sent += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(errno_err(e, op, label)),
        }
    }
    Ok(())
}

/// Receives one descriptor sent by `send_fd`; returns it with the announced data size.
pub(crate) fn recv_fd(stream: &UnixStream) -> Result<(OwnedFd, u64)> {
    let op = Operation::Receive;
    let label = "unix socket";
    let mut msg = [0u8; WIRE_LEN];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = loop {
        match rustix::net::recvmsg(
            stream,
            &mut [IoSliceMut::new(&mut msg)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(Errno::INTR) => {}
            other => break other.map_err(|e| errno_err(e, op, label))?,
        }
    };
    let mut fds: Vec<OwnedFd> = Vec::new();
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = m {
            fds.extend(rights);
        }
    }
    if got.flags.contains(ReturnFlags::CTRUNC) {
        return Err(
            Error::new(ErrorKind::OutOfResources, op, label).with_detail(
                "control message truncated (too many descriptors sent, or out of descriptors)",
            ),
        );
    }
    if got.bytes == 0 {
        return Err(Error::new(ErrorKind::NotFound, op, label)
            .with_detail("the peer closed the connection"));
    }
    let mut have = got.bytes;
    while have < WIRE_LEN {
        match rustix::io::read(stream, &mut msg[have..]) {
            Ok(0) => {
                return Err(Error::new(ErrorKind::NotFound, op, label)
                    .with_detail("the peer closed the connection mid-message"))
            }
            Ok(n) => have += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(errno_err(e, op, label)),
        }
    }
    if msg[..8] != MAGIC {
        return Err(Error::new(ErrorKind::KeyError, op, label)
            .with_detail("the message is not a qshm segment hand-over"));
    }
    if fds.len() != 1 {
        return Err(
            Error::new(ErrorKind::KeyError, op, label).with_detail(format!(
                "expected one descriptor with the message, got {}",
                fds.len()
            )),
        );
    }
    let size = u64::from_le_bytes(msg[8..].try_into().expect("8 bytes"));
    Ok((fds.pop().expect("one fd"), size))
}

/// Arranges for `fd` to be inherited by the child `cmd` spawns, and names it there in the
/// environment variable `var` as `<fd>:<data size>`.
pub(crate) fn pass_to_child(
    fd: BorrowedFd<'_>,
    data_size: usize,
    cmd: &mut Command,
    var: &str,
    label: &str,
) -> Result<()> {
    let op = Operation::Send;
    // A close-on-exec duplicate owned by the command: it stays open until the command is
    // dropped, and no other child spawned meanwhile by another thread inherits it.
    let dup = rustix::io::fcntl_dupfd_cloexec(fd, 3).map_err(|e| errno_err(e, op, label))?;
    cmd.env(var, format!("{}:{data_size}", dup.as_raw_fd()));
    let hook = move || -> std::io::Result<()> {
        rustix::io::fcntl_setfd(&dup, rustix::io::FdFlags::empty()).map_err(std::io::Error::from)
    };
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // operations are allowed: it makes one fcntl system call on a descriptor the hook owns
    // (inherited from the parent, so open in the child) and neither allocates nor takes locks.
    unsafe {
        cmd.pre_exec(hook);
    }
    Ok(())
}

/// Descriptors already adopted by `fd_from_env` in this process.
static CLAIMED: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Adopts the descriptor a parent named in `var` (`<fd>:<data size>`); returns it with the
/// announced data size.
pub(crate) fn fd_from_env(var: &str) -> Result<(OwnedFd, u64)> {
    let op = Operation::Receive;
    let label = format!("${var}");
    let value = std::env::var(var).map_err(|_| {
        Error::new(ErrorKind::NotFound, op, &label)
            .with_detail(format!("the environment variable {var} is not set"))
    })?;
    let parsed = value
        .split_once(':')
        .and_then(|(fd, size)| Some((fd.parse::<RawFd>().ok()?, size.parse::<u64>().ok()?)));
    let Some((raw, size)) = parsed.filter(|&(fd, _)| fd >= 0) else {
        return Err(Error::new(ErrorKind::KeyError, op, &label)
            .with_detail(format!("malformed value {value:?} (expected <fd>:<size>)")));
    };
    let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
    if claimed.contains(&raw) {
        return Err(
            Error::new(ErrorKind::AlreadyAttached, op, &label).with_detail(format!(
                "descriptor {raw} was already adopted by this process"
            )),
        );
    }
    // SAFETY: F_GETFD on any integer is harmless: it reads the descriptor's flags or fails
    // with EBADF.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } == -1 {
        return Err(Error::new(ErrorKind::NotFound, op, &label)
            .with_detail(format!("descriptor {raw} is not open (not inherited?)")));
    }
    claimed.push(raw);
    // SAFETY: the descriptor is open (checked above); the environment variable, set by the
    // parent for this process alone (`pass_to_child`), names it as handed to us, and CLAIMED
    // makes this the only adoption of it through qshm, so this OwnedFd is its only owner.
    // What remains assumed (documented on `from_env`): no other code of this process uses
    // that descriptor number.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // Do not leak it into our own children.
    let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC);
    Ok((fd, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MappedInner>();
    }

    fn header_bytes(version: u32, header_size: u32, data_size: u64) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&version.to_ne_bytes());
        b[12..16].copy_from_slice(&header_size.to_ne_bytes());
        b[16..24].copy_from_slice(&data_size.to_ne_bytes());
        b[28..32].copy_from_slice(&BYTE_ORDER.to_ne_bytes());
        b
    }

    #[test]
    fn header_validation() {
        let ok = header_bytes(1, 4096, 100);
        assert_eq!(validate_header(&ok, 4196).unwrap().1, 100);
        assert_eq!(
            validate_header(&ok, 4195).unwrap_err().0,
            ErrorKind::InvalidSize
        );
        assert_eq!(
            validate_header(&ok[..10], 10).unwrap_err().0,
            ErrorKind::InvalidSize
        );
        assert_eq!(
            validate_header(&header_bytes(2, 4096, 1), 8192)
                .unwrap_err()
                .0,
            ErrorKind::Unsupported
        );
        assert_eq!(
            validate_header(&header_bytes(1, 13, 1), 8192)
                .unwrap_err()
                .0,
            ErrorKind::KeyError
        );
        assert_eq!(
            validate_header(&header_bytes(1, 4096, u64::MAX), 8192)
                .unwrap_err()
                .0,
            ErrorKind::InvalidSize
        );
        assert_eq!(
            validate_header(&header_bytes(1, 4096, 0), 8192)
                .unwrap_err()
                .0,
            ErrorKind::InvalidSize
        );
        let mut bad = ok.clone();
        bad[0] = b'X';
        assert_eq!(
            validate_header(&bad, 8192).unwrap_err().0,
            ErrorKind::KeyError
        );
        assert!(is_ram_fs(TMPFS_MAGIC));
        assert!(!is_ram_fs(0xef53));
    }
}
