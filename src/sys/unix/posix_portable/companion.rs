//! The companion file of a POSIX object: what the system gives no room for in the object
//! itself, in a small regular file beside it, where classic POSIX record locks (`fcntl`
//! `F_SETLK`, which macOS and FreeBSD have on regular files) let the kernel tell a live
//! process from a dead one.
//!
//! `<temporary directory>/qshm-psx-<kind>-<32 hex digits of SHA-1(name)>`, 64 bytes:
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | magic `qshmpsx1` |
//! | 8..16 | the lock's owner record (semaphore companions): 0, or a holder's token |
//! | 16..24 | state word: bit 0 set while a holder died and nobody declared the data consistent |
//! | 24..32 | segment companions: 1 when qshm created the segment (its last detach removes it) |
//!
//! and, past the end (allowed, and changing nothing in it), the record locks of
//! `sys/unix/record_lock.rs`: the **users'** byte [`USERS`] (every process that uses the
//! object holds a read lock on it; a write lock is the last user's test), the **waiters'**
//! byte [`WAITING`] (semaphore companions: a process holds a read lock on it while one of its
//! threads waits for the semaphore; [`Companion::waited_for_elsewhere`] asks whether another
//! process does), and the **slots** that name a lock holder's process in the owner record.
//! A process opens each companion once ([`LockedFile::open`]'s registry), since closing any
//! descriptor of it would drop its locks; a forked child is counted by a fork handler.
//!
//! # References
//!
//! * <https://pubs.opengroup.org/onlineposix/functions/fcntl.html> (record locking)
//! * <https://man.freebsd.org/cgi/man.cgi?fcntl(2)>,
//!   <https://developer.apple.com/library/archive/documentation/System/Conceptual/ManPages_iPhoneOS/man2/fcntl.2.html>

use std::fs::File;
use std::io;
use std::ops::Deref;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustix::mm::{MapFlags, ProtFlags};

pub(super) use super::super::record_lock::LastUser;
use super::super::record_lock::{LockedFile, Waiting, Words};

/// The companion's length: the three words and room to grow.
const LEN: usize = 64;
/// `qshmpsx1`, in native byte order.
const MAGIC: u64 = u64::from_ne_bytes(*b"qshmpsx1");
/// The users' byte.
const USERS: i64 = 64;
/// The waiters' byte (semaphore companions).
const WAITING: i64 = 65;

/// Which object a companion serves (part of its name: on Apple platforms a segment and its
/// lock have the same name, in two namespaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Segment,
    Semaphore,
}

/// Opens the file at `path`, creating it with exactly `mode` (the umask aside) when it is
/// absent and `mode` is given. An existing file is opened without `O_CREAT`: Linux refuses
/// `O_CREAT` on another user's file in a sticky directory such as `/tmp`
/// (`fs.protected_regular`), even where its mode allows the access.
fn open_or_create(path: &Path, mode: Option<u32>) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    for _ in 0..100 {
        match options.open(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let Some(mode) = mode else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        match options
            .clone()
            .create_new(true)
            .mode(mode & 0o777)
            .open(path)
        {
            Ok(file) => {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "the companion file kept appearing and vanishing",
    ))
}

/// One process's open companion (its file shared by all its handles of the object), and
/// the words mapped from it.
pub(super) struct Companion {
    file: Arc<LockedFile>,
    /// The file's mapping of [`LEN`] bytes, which `file` owns.
    words: NonNull<AtomicU64>,
}

// SAFETY: the words are a shared mapping accessed atomically only, kept alive by `file`,
// which is Send and Sync.
unsafe impl Send for Companion {}
// SAFETY: as above: every access to the mapped words is atomic.
unsafe impl Sync for Companion {}

impl Deref for Companion {
    type Target = LockedFile;

    fn deref(&self) -> &LockedFile {
        &self.file
    }
}

/// The path of the companion of `name`.
pub(super) fn path_of(kind: Kind, name: &str) -> PathBuf {
    let kind = match kind {
        Kind::Segment => "shm",
        Kind::Semaphore => "sem",
    };
    let hash = crate::key::sha1_hex(name);
    std::env::temp_dir().join(format!("qshm-psx-{kind}-{}", &hash[..32]))
}

impl Companion {
    /// The companion at `path`, opened (and created, with `mode`) if this process has no
    /// open one that the path still names.
    /// With `mode` `None`, an absent companion is `NotFound` and none is created.
    pub(super) fn open(path: &Path, mode: Option<u32>) -> io::Result<Arc<Companion>> {
        for _ in 0..100 {
            let file = LockedFile::open(path, |path| open_or_create(path, mode))?;
            // Checked, sized and mapped by the first handle of this process that opens it.
            match file.words(|file| map_words(file, path)) {
                Ok(words) => {
                    let words = words.ptr();
                    return Ok(Arc::new(Companion { file, words }));
                }
                // Removed by its last user between our open and our look: open the new one.
                Err(e) if e.kind() == io::ErrorKind::NotFound => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(
            "the companion file kept appearing and vanishing",
        ))
    }

    /// Gives the file the permission bits of `mode` if this process owns it and they
    /// differ (a companion made by an attacher takes its object's).
    pub(super) fn give_mode(&self, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = self.file().metadata() else {
            return;
        };
        if meta.uid() == crate::sys::euid() && meta.mode() & 0o777 != mode & 0o777 {
            let _ = self
                .file()
                .set_permissions(std::fs::Permissions::from_mode(mode & 0o777));
        }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < LEN / 8);
        // SAFETY: `words` maps LEN bytes, page-aligned, for as long as `self.file` lives;
        // every access to them, in every process, is atomic.
        unsafe { &*self.words.as_ptr().add(i) }
    }

    /// The lock's owner record.
    pub(super) fn record(&self) -> &AtomicU64 {
        self.word(1)
    }

    /// The state word (bit 0: a holder died, data suspect).
    pub(super) fn state(&self) -> &AtomicU64 {
        self.word(2)
    }

    /// Set when qshm created the segment (see the module docs of `posix_portable`).
    pub(super) fn made_by_qshm(&self) -> &AtomicU64 {
        self.word(3)
    }

    /// Counts one more user in this process (the users' byte); false when the companion
    /// was removed meanwhile: open it again.
    pub(super) fn join(&self) -> io::Result<bool> {
        self.file.join(USERS)
    }

    /// Counts one user of this process out; `Some` when that was the last user anywhere.
    pub(super) fn leave(&self) -> Option<LastUser<'_>> {
        self.file.leave()
    }

    /// The last user's test without joining or leaving.
    pub(super) fn no_users(&self) -> Option<LastUser<'_>> {
        self.file.no_users(USERS)
    }

    /// Counts a waiting thread of this process in until the guard drops.
    pub(super) fn waiting(&self) -> Waiting<'_> {
        self.file.waiting(WAITING)
    }

    /// Whether a thread of another process waits for the semaphore.
    pub(super) fn waited_for_elsewhere(&self) -> bool {
        self.file.locked_elsewhere(WAITING)
    }

    /// This process's token for the owner record (see [`LockedFile::token`]); a slot taken
    /// now avoids the one the record names.
    #[inline]
    pub(super) fn token(&self) -> u64 {
        let generation = crate::sys::fork::generation();
        if self.file.token_generation() == generation {
            return self.file.token();
        }
        self.file.take_token(self.record().load(Ordering::Relaxed))
    }

    /// Whether the holder a record names is alive (see [`LockedFile::is_alive`]).
    pub(super) fn is_alive(&self, record: u64) -> bool {
        record == self.token() || self.file.is_alive(record)
    }
}

/// Checks the companion just opened and maps its words; `NotFound` when the file was
/// unlinked meanwhile (by a last user).
///
/// Refuses what no qshm process makes, before changing anything in it: a file with other
/// links (a hard link to someone's file planted at the name in a shared temporary
/// directory, which FreeBSD allows by default), or of another size than none (being made)
/// or [`LEN`]. A refused file is dropped by the caller, closed unless it is one this process
/// has open (`LockedFile::open`): no record lock is lost.
fn map_words(file: &File, path: &Path) -> io::Result<Words> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    let refuse = |why: String| {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("refusing {}: {why}", path.display()),
        )
    };
    match meta.nlink() {
        0 => return Err(io::ErrorKind::NotFound.into()),
        1 => {}
        n => {
            return Err(refuse(format!(
                "it has {n} links, and a companion file has one (a hard link planted \
                 in a shared directory?)"
            )))
        }
    }
    match meta.len() {
        // Made by a creator that has not sized it yet (several openers may size it).
        0 => file.set_len(LEN as u64)?,
        len if len == LEN as u64 => {}
        len => {
            return Err(refuse(format!(
                "{len} bytes, and a companion file has {LEN}"
            )))
        }
    }
    // SAFETY: a null hint makes a new mapping; the file is open read-write and at least LEN
    // bytes long (no other process shrinks a companion: they only grow it).
    let addr = unsafe {
        rustix::mm::mmap(
            std::ptr::null_mut(),
            LEN,
            ProtFlags::READ | ProtFlags::WRITE,
            MapFlags::SHARED,
            file,
            0,
        )
    }?;
    let ptr = NonNull::new(addr.cast::<AtomicU64>()).ok_or(io::ErrorKind::OutOfMemory)?;
    // SAFETY: the mapping just made, of LEN bytes, page-aligned, which the Words alone
    // unmaps; every process accesses a companion's words atomically.
    let words = unsafe { Words::new(ptr, LEN) };
    let magic = words.get(0).expect("LEN holds the magic word");
    match magic.compare_exchange(0, MAGIC, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) | Err(MAGIC) => Ok(words),
        Err(_) => Err(refuse("not a qshm companion file".to_string())),
    }
}
