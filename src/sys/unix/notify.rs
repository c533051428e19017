//! The two words of change notification, mapped: in a mapped segment's header (offsets 88
//! and 92, `struct qshm_header`), or in the *companion* of a Qt-compatible segment, a small
//! file in `/dev/shm` that Qt never looks at (`struct qshm_notify` in `qshm.h`).
//!
//! Each [`ChangeWords`] is a mapping of its own, so a notifier lives independently of the
//! segment object it came from (futures and other threads may keep it).
//!
//! The companions of `SharedMemory::notifier` are Linux's (`/dev/shm`); on macOS, iOS and
//! FreeBSD only the words of mapped segments are used.
#![cfg_attr(not(qshm_linux), allow(dead_code))]

use std::ffi::c_void;
use std::os::fd::{AsFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{MapFlags, ProtFlags};

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::segment_header::{Header, MIN_HEADER_SIZE};
use crate::sys::wait_word::{self, Woke};
use std::time::Duration;

/// The first 8 bytes of a companion.
const COMPANION_MAGIC: [u8; 8] = *b"QSHM\0NTF";
/// Offsets of the words in a companion (`struct qshm_notify`).
const COMPANION_CHANGES: usize = 16;
const COMPANION_WAITERS: usize = 20;
/// Where a companion records the text form of its segment's key (length at 24, bytes from
/// 64), so that `qshm clean` can tell whether the segment still exists.
const COMPANION_KEY_LEN: usize = 24;
const COMPANION_KEY: usize = 64;
/// A companion's size: one small page.
const COMPANION_LEN: usize = 4096;

/// Where companions live.
const COMPANION_DIR: &str = "/dev/shm/";

/// The change counter and sleeper count, in a mapping this value owns.
pub(crate) struct ChangeWords {
    addr: NonNull<u8>,
    len: usize,
    changes: usize,
    waiters: usize,
    writable: bool,
}

// SAFETY: the value owns a process-wide mapping (not tied to a thread); it hands out only
// `&AtomicU32`s into it, which any thread may use.
unsafe impl Send for ChangeWords {}
// SAFETY: as for `Send`; `&ChangeWords` gives only atomics.
unsafe impl Sync for ChangeWords {}

impl std::fmt::Debug for ChangeWords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeWords")
            .field("addr", &self.addr)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl ChangeWords {
    /// The words in the header of the mapped segment open as `fd`, whose header is
    /// `header_size` bytes (validated when the segment was opened). `writable`: whether the
    /// file may be mapped for writing (not write-sealed).
    pub(crate) fn of_mapped(
        fd: BorrowedFd<'_>,
        header_size: usize,
        writable: bool,
        label: &str,
    ) -> Result<ChangeWords> {
        debug_assert!(header_size >= MIN_HEADER_SIZE);
        map(
            fd,
            header_size,
            std::mem::offset_of!(Header, changes),
            std::mem::offset_of!(Header, change_waiters),
            writable,
        )
        .map_err(|e| notify_error(e, label, "mmap of the header failed"))
    }

    /// Opens the companion `name` (a file name in `/dev/shm`) of the segment whose key's
    /// text form is `key`, creating it with `mode` when `create` is set and it does not
    /// exist.
    pub(crate) fn companion(
        name: &str,
        key: &str,
        mode: u32,
        create: bool,
        label: &str,
    ) -> Result<ChangeWords> {
        let path = format!("{COMPANION_DIR}{name}");
        let base = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let flags = if create { base | OFlags::CREATE } else { base };
        let fd = rustix::fs::open(&path, flags, Mode::from_raw_mode((mode & 0o777) as _))
            .map_err(|e| notify_error(e, label, "cannot open the notifier's companion file"))?;
        let st = rustix::fs::fstat(&fd)
            .map_err(|e| notify_error(e, label, "cannot stat the notifier's companion file"))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(garbage(label, "is not a regular file"));
        }
        if (st.st_size as u64) < COMPANION_LEN as u64 {
            if st.st_size != 0 {
                return Err(garbage(label, "is too short"));
            }
            // New (or made by a creator that has not sized it yet): growing an empty file to
            // the same size twice is harmless, and the magic below is the same bytes.
            rustix::fs::ftruncate(&fd, COMPANION_LEN as u64)
                .map_err(|e| notify_error(e, label, "cannot size the notifier's companion file"))?;
            if st.st_mode as u32 & 0o777 != mode & 0o777 {
                let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode((mode & 0o777) as _));
            }
        }
        let mut magic = [0u8; 8];
        let _ = rustix::io::pread(&fd, &mut magic, 0);
        if magic == [0; 8] {
            // The key first, the magic last: whoever sees the magic sees the key. Another
            // process doing the same writes the same bytes.
            let key = &key.as_bytes()[..key.len().min(COMPANION_LEN - COMPANION_KEY)];
            let _ = rustix::io::pwrite(&fd, key, COMPANION_KEY as u64);
            let _ = rustix::io::pwrite(
                &fd,
                &(key.len() as u32).to_ne_bytes(),
                COMPANION_KEY_LEN as u64,
            );
            let n = rustix::io::pwrite(&fd, &COMPANION_MAGIC, 0)
                .map_err(|e| notify_error(e, label, "cannot write the notifier's companion"))?;
            if n != COMPANION_MAGIC.len() {
                return Err(garbage(label, "could not be written"));
            }
        } else if magic != COMPANION_MAGIC {
            return Err(garbage(label, "has a bad magic"));
        }
        map(
            fd.as_fd(),
            COMPANION_LEN,
            COMPANION_CHANGES,
            COMPANION_WAITERS,
            true,
        )
        .map_err(|e| notify_error(e, label, "mmap of the notifier's companion failed"))
    }

    /// The change counter (the futex word).
    #[inline]
    pub(crate) fn changes(&self) -> &AtomicU32 {
        // SAFETY: `changes` is a 4-aligned offset inside the mapping (checked at
        // construction), which lives as long as `self`; every process accesses it atomically.
        unsafe { &*self.addr.as_ptr().add(self.changes).cast::<AtomicU32>() }
    }

    /// The number of sleepers (0 while nobody sleeps: `notify` then makes no system call).
    #[inline]
    pub(crate) fn waiters(&self) -> &AtomicU32 {
        // SAFETY: as for `changes`.
        unsafe { &*self.addr.as_ptr().add(self.waiters).cast::<AtomicU32>() }
    }

    /// Whether the words may be written (a write-sealed segment's may not).
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// Sleeps while the counter is `seen`, at most `left` (`None`: until woken); may return
    /// early. The caller counts itself in `waiters` around it.
    pub(crate) fn sleep(&self, seen: u32, left: Option<Duration>) -> Result<Woke> {
        wait_word::wait(self.changes(), seen, left)
    }

    /// Wakes every sleeper (in any process), after a change.
    pub(crate) fn wake_all(&self) -> Result<()> {
        if wait_word::KERNEL_WAKES {
            wait_word::wake(self.changes(), u32::MAX)
        } else {
            Ok(())
        }
    }
}

impl Drop for ChangeWords {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `map` with this address and length, and every
        // reference into it borrows `self`, so none outlives this.
        let _ = unsafe { rustix::mm::munmap(self.addr.as_ptr().cast::<c_void>(), self.len) };
    }
}

/// Removes the companion `name`; `Ok(false)` when there was none.
pub(crate) fn remove_companion(name: &str) -> std::io::Result<bool> {
    match rustix::fs::unlink(format!("{COMPANION_DIR}{name}")) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The key text a companion file records, if it is one.
pub(crate) fn companion_key(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut page = Vec::with_capacity(COMPANION_LEN);
    std::fs::File::open(path)
        .ok()?
        .take(COMPANION_LEN as u64)
        .read_to_end(&mut page)
        .ok()?;
    if page.len() < COMPANION_LEN || page[..8] != COMPANION_MAGIC {
        return None;
    }
    let len = u32::from_ne_bytes(
        page[COMPANION_KEY_LEN..COMPANION_KEY_LEN + 4]
            .try_into()
            .ok()?,
    );
    let key = page.get(COMPANION_KEY..COMPANION_KEY.checked_add(len as usize)?)?;
    String::from_utf8(key.to_vec()).ok()
}

/// The prefix of every companion's file name.
pub(crate) const COMPANION_PREFIX: &str = "qshm-notify-";

/// Where the companion `name` lives.
pub(crate) fn companion_path(name: &str) -> std::path::PathBuf {
    format!("{COMPANION_DIR}{name}").into()
}

fn map(
    fd: BorrowedFd<'_>,
    len: usize,
    changes: usize,
    waiters: usize,
    writable: bool,
) -> std::result::Result<ChangeWords, Errno> {
    assert!(changes % 4 == 0 && waiters % 4 == 0 && changes + 4 <= len && waiters + 4 <= len);
    let prot = if writable {
        ProtFlags::READ | ProtFlags::WRITE
    } else {
        ProtFlags::READ
    };
    // SAFETY: a new shared mapping of `len` bytes of a file at least that long (a validated
    // header, or a companion sized above), at an address the kernel chooses; nothing else
    // refers to it yet.
    let addr =
        unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0)? };
    Ok(ChangeWords {
        addr: NonNull::new(addr.cast::<u8>()).expect("mmap never returns null on success"),
        len,
        changes,
        waiters,
        writable,
    })
}

#[cold]
fn notify_error(e: Errno, label: &str, detail: &'static str) -> Error {
    crate::sys::os_error(e.raw_os_error(), Operation::Notify, label.to_owned()).with_detail(detail)
}

#[cold]
fn garbage(label: &str, what: &str) -> Error {
    Error::new(ErrorKind::KeyError, Operation::Notify, label.to_owned()).with_detail(format!(
        "the notifier's companion file {what}: not made by qshm"
    ))
}
