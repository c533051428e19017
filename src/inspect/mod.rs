//! Inspection and repair: what Qt and qshm segments exist on this machine, who uses them,
//! what their locks look like, and what a crash left behind.
//!
//! `ipcs` and `ipcrm` know nothing of Qt's key files, and nothing else lists what a crashed
//! Qt program left. This module does, for Qt programs and qshm programs alike (they name
//! everything the same way), without attaching to anything:
//!
//! * [`info`]: one segment, by key.
//! * [`list`]: every Qt or qshm segment on the machine.
//! * [`remove`]: a segment with its key file and lock semaphore.
//! * [`leftovers`] and [`remove_leftover`]: orphaned segments, stale lock semaphores and
//!   stale key files, what `qshm clean` removes.
//!
//! ```
//! use qshm::{inspect, AccessMode, SharedMemory};
//! # let key = format!("qshm-doc-inspect-{}", std::process::id());
//! let mut shm = SharedMemory::with_key(&key);
//! shm.create(1000, AccessMode::ReadWrite)?;
//!
//! let info = inspect::info(shm.native_key())?;
//! assert_eq!(info.size, 1000);
//! assert_eq!(info.attach_count, 1);
//! assert_eq!(info.creator_pid, Some(std::process::id()));
//! assert!(!info.orphaned);
//! assert!(inspect::list()?.iter().any(|s| s.id == info.id));
//! # Ok::<(), qshm::Error>(())
//! ```
//!
//! # Platform-specific behavior
//!
//! ### Linux, System V
//!
//! Segments and semaphores are read from `/proc/sysvipc/shm` and `/proc/sysvipc/sem` and
//! matched to key files by their `ftok` key: `qipc_sharedmemory_*` and `qipc_systemsem_*`
//! files in `$TMPDIR` (as Qt 6.9+ and Qt 5.15–6.8 derive it) and `/tmp`, and every file in
//! the runtime directory (`$XDG_RUNTIME_DIR` or `/tmp/runtime-<user>`, where Qt 6 keeps the
//! key files of non-legacy System V keys). A segment whose key file is gone is still
//! listed, with [`SegmentInfo::native_key`] `None`, when its key has Qt's ftok project id
//! `'Q'`. A segment's lock is the semaphore with the same key (non-legacy keys,
//! docs/qt-ipc.md §2) or,
//! for a `qipc_sharedmemory_<x>` key file, the one of `qipc_systemsem_<x>` beside it.
//!
//! The lock state comes from `semctl(GETVAL)` and `semctl(GETPID)` (the last process that
//! operated on it) and whether that process is alive. The System V lock is taken with
//! `SEM_UNDO`, so the kernel gives back the lock of a process that dies: a held lock whose
//! holder is dead is seen only with semaphores someone took without undo.
//!
//! ### Linux, POSIX realtime
//!
//! Segments are the files of `/dev/shm`: `qipc_sharedmemory_*` (Qt keys) and every `<name>`
//! with a `sem.<name>` beside it (non-legacy keys: a segment and its lock share the name;
//! once Qt's owner has removed the semaphore such a segment cannot be told from another
//! program's file, so it is not listed, but [`info`] and [`remove`] find it by key). Size,
//! owner and mode come from the file; the attach count is the number of processes that map
//! the file or hold it open (`/proc/<pid>/maps`, `/proc/<pid>/fd`), which counts Qt
//! processes too. A POSIX segment has no creator pid. A Qt key cannot be recovered from a
//! hashed name, so [`SegmentInfo::qt_key`] is `None` in [`list`].
//!
//! The lock state of a glibc POSIX semaphore is read from its file (its value; held with no
//! process mapping it means its holder died, docs/qt-ipc.md §8.2).
//!
//! ### macOS and FreeBSD (System V), and Linux in the portable mode
//!
//! There is no `/proc/sysvipc` to list (their `ipcs` asks `sysctl`s of their own, which
//! differ between the two and are not read): the System V objects are those the key files
//! name, each key file's `ftok` keys (every project id) looked up with `shmget` and
//! `semget` and read with `IPC_STAT`. A segment whose key file is gone is therefore not
//! found, and not cleaned. A process is alive when `kill(pid, 0)` finds it (a zombie
//! counts). On macOS the change time is not read ([`SegmentInfo::changed`] is `None`). The
//! portable mode runs this code on Linux with real Qt (`tests/portable.rs`); nothing of it
//! ran on a Mac or on FreeBSD.
//!
//! POSIX segments cannot be inspected there (macOS and iOS keep no directory of them;
//! FreeBSD's `kern.ipc.posix_shm_list` is not read): [`info`] and [`lock_state`] report
//! [`ErrorKind::Unsupported`] for POSIX keys, and [`list`] and [`leftovers`] find none.
//!
//! Other platforms (iOS, which has no System V, and Windows) report
//! [`ErrorKind::Unsupported`].
//!
//! # Names that are not UTF-8
//!
//! A file name is bytes; a [`NativeKey`] is text. Qt 5 in a non-UTF-8 locale, or any other
//! program, can make segments, semaphores and key files whose names are not UTF-8: they are
//! listed and cleaned like the others, with `native_key` (and `lock_key`) `None`, and their
//! exact names in [`SegmentInfo::path`], [`SegmentInfo::lock_path`],
//! [`SegmentInfo::key_file`], [`SemaphoreInfo::path`], [`SemaphoreInfo::key_file`] and
//! [`Leftover::KeyFile`]. [`escape_name`] gives such a name as text, reversibly.
//!
//! # Races
//!
//! What is read is a snapshot: a segment can appear or go at any moment. Removal re-checks
//! under the segment's lock (System V) or just before unlinking (POSIX), and leaves alone
//! anything younger than [`MIN_AGE`] that it cannot check under a lock, so that an object a
//! process is creating right now is never taken for a leftover.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::backend::{RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{temp_dir, KeyType, NativeKey, TempDirStyle};
use crate::sys::inspect as os;
use crate::sys::procfs::{mapped_files, FileId};
use crate::sys::Semaphore;

mod posix;
mod remove;
mod snapshot;
mod sysv;

use {posix::*, remove::*, snapshot::*, sysv::*};

/// Objects that cannot be checked under a lock (key files, POSIX files) are never removed as
/// leftovers while younger than this: a process may be creating them right now.
pub const MIN_AGE: Duration = Duration::from_secs(2);

/// How long removal waits for a segment's lock before it concludes the segment is in use.
const LOCK_WAIT: Duration = Duration::from_secs(2);

const SHM_PREFIX: &str = "qipc_sharedmemory_";
const SEM_PREFIX: &str = "qipc_systemsem_";
const DEV_SHM: &str = "/dev/shm";
const QT_PROJECT_ID: i32 = 0x51;

/// The operating-system API a segment lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// System V shared memory (`shmget`), Qt's default on Linux.
    SystemV,
    /// POSIX realtime shared memory (`shm_open`, files in `/dev/shm`).
    Posix,
}

impl Backend {
    /// The name used in `qshm`'s output: `systemv` or `posix` (Qt's key text prefixes).
    pub fn name(self) -> &'static str {
        match self {
            Backend::SystemV => "systemv",
            Backend::Posix => "posix",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The state of a segment's lock semaphore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// Held, by the process `pid` where the system tells (System V: the last process that
    /// operated on the semaphore, which is the holder).
    Held {
        /// The holder, when known.
        pid: Option<u32>,
    },
    /// Held by a process that no longer exists: the lock will not be given back by itself
    /// (a POSIX lock of a crashed process, docs/qt-ipc.md §8.2).
    HolderDead {
        /// The dead holder, when known.
        pid: Option<u32>,
    },
    /// The lock semaphore does not exist (the next `lock()`, `attach()` or `create()`
    /// creates it).
    Absent,
    /// The state cannot be read (no permission, or an unknown semaphore layout).
    Unknown,
}

impl LockState {
    /// `free`, `held`, `holder_dead`, `absent` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            LockState::Free => "free",
            LockState::Held { .. } => "held",
            LockState::HolderDead { .. } => "holder_dead",
            LockState::Absent => "absent",
            LockState::Unknown => "unknown",
        }
    }

    /// The holder's pid, when the state has one.
    pub fn pid(self) -> Option<u32> {
        match self {
            LockState::Held { pid } | LockState::HolderDead { pid } => pid,
            _ => None,
        }
    }
}

impl fmt::Display for LockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.pid()) {
            (name, Some(pid)) => write!(f, "{name} (pid {pid})"),
            (name, None) => f.write_str(name),
        }
    }
}

/// What is known about one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The API it lives in.
    pub backend: Backend,
    /// Its native key; `None` for a System V segment whose key file is gone, and for a
    /// segment whose name is not UTF-8 (see [`key_file`](SegmentInfo::key_file) and
    /// [`path`](SegmentInfo::path) for its name).
    pub native_key: Option<NativeKey>,
    /// The Qt key it was made from, when known (from [`info`] with a key made from a Qt key;
    /// never from [`list`]: names are hashed).
    pub qt_key: Option<String>,
    /// The native key of its lock semaphore, when known (`None` when its name is not
    /// UTF-8: see [`lock_path`](SegmentInfo::lock_path)).
    pub lock_key: Option<NativeKey>,
    /// The System V segment id (`shmid`).
    pub id: Option<i32>,
    /// The System V key (`key_t`, from `ftok`).
    pub sysv_key: Option<i32>,
    /// The file behind a POSIX segment (`/dev/shm/<name>`), its name exactly as the file
    /// system has it.
    pub path: Option<PathBuf>,
    /// The file of a POSIX segment's lock semaphore (`/dev/shm/sem.<name>`), whether or not
    /// it exists; `None` for System V.
    pub lock_path: Option<PathBuf>,
    /// The key file a System V segment's key comes from (`ftok`), when there is one; `None`
    /// for POSIX.
    pub key_file: Option<PathBuf>,
    /// Its size in bytes.
    pub size: u64,
    /// How many processes have it attached (POSIX: map it or hold it open).
    pub attach_count: u64,
    /// The process that created it (System V).
    pub creator_pid: Option<u32>,
    /// Whether that process is still running.
    pub creator_alive: Option<bool>,
    /// The last process that attached or detached (System V).
    pub last_pid: Option<u32>,
    /// The owner's user id.
    pub uid: u32,
    /// The owner's group id.
    pub gid: u32,
    /// The permission bits (`0o600` for Qt's).
    pub mode: u32,
    /// The state of its lock.
    pub lock_state: LockState,
    /// Nobody is attached and nobody will come back to it: System V, attach count 0 and the
    /// creator gone; POSIX, no process maps it or holds it open. (A System V segment with
    /// attach count 0 whose creator is alive may be being created right now.)
    pub orphaned: bool,
    /// When it was created or last changed (System V `shm_ctime`, POSIX the file's mtime).
    pub changed: Option<SystemTime>,
}

/// A semaphore that is a lock without a segment, or a leftover of one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SemaphoreInfo {
    /// The API it lives in.
    pub backend: Backend,
    /// Its native key; `None` for a System V semaphore whose key file is gone, and for a
    /// semaphore whose name is not UTF-8 (see [`key_file`](SemaphoreInfo::key_file) and
    /// [`path`](SemaphoreInfo::path)).
    pub native_key: Option<NativeKey>,
    /// The System V semaphore set id (`semid`).
    pub id: Option<i32>,
    /// The System V key (`key_t`).
    pub sysv_key: Option<i32>,
    /// The file behind a POSIX semaphore (`/dev/shm/sem.<name>`), its name exactly as the
    /// file system has it.
    pub path: Option<PathBuf>,
    /// The key file a System V semaphore's key comes from (`ftok`), when there is one;
    /// `None` for POSIX.
    pub key_file: Option<PathBuf>,
    /// Its value, when readable.
    pub value: Option<u32>,
    /// The last process that operated on it (System V).
    pub last_pid: Option<u32>,
    /// The owner's user id.
    pub uid: u32,
    /// The permission bits.
    pub mode: u32,
}

/// Something a crash (or Qt's POSIX backend, which never unlinks) left behind: what
/// `qshm clean` removes. Found by [`leftovers`], removed by [`remove_leftover`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Leftover {
    /// An orphaned segment ([`SegmentInfo::orphaned`]), removed with its key file and lock.
    Segment(SegmentInfo),
    /// A lock semaphore with no segment, that nobody waits for and whose last user is gone.
    Semaphore(SemaphoreInfo),
    /// A `qipc_*` key file with neither a segment nor a semaphore behind it.
    KeyFile(PathBuf),
    /// A change notifier's companion (`qshm::notify`) whose segment is gone and that nobody
    /// maps: left when a Qt process detached last.
    Notifier(PathBuf),
}

impl Leftover {
    /// `segment`, `semaphore` or `key_file`.
    pub fn kind(&self) -> &'static str {
        match self {
            Leftover::Segment(_) => "segment",
            Leftover::Semaphore(_) => "semaphore",
            Leftover::KeyFile(_) => "key_file",
            Leftover::Notifier(_) => "notifier",
        }
    }

    /// The names it goes by (native key texts, files), to filter on. A file whose name is
    /// not UTF-8 is given twice: lossily (`U+FFFD` for what is not UTF-8) and as
    /// [`escape_name`] writes it.
    pub fn names(&self) -> Vec<String> {
        match self {
            Leftover::Segment(s) => s.names(),
            Leftover::Semaphore(s) => {
                let mut v: Vec<String> = s.native_key.iter().map(ToString::to_string).collect();
                push_file_names(&mut v, s.path.iter().chain(&s.key_file));
                v
            }
            Leftover::KeyFile(p) | Leftover::Notifier(p) => {
                let mut v = Vec::new();
                push_file_names(&mut v, [p]);
                v
            }
        }
    }
}

impl SegmentInfo {
    /// The names it goes by: its native key text, its lock's and its files, to filter on.
    /// A file whose name is not UTF-8 is given twice: lossily and as [`escape_name`] writes
    /// it.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.native_key.iter().map(ToString::to_string).collect();
        v.extend(self.lock_key.iter().map(ToString::to_string));
        push_file_names(&mut v, self.path.iter().chain(&self.key_file));
        v
    }
}

/// Appends each path's text: lossy, and also escaped ([`escape_name`]) when not UTF-8.
fn push_file_names<'a>(out: &mut Vec<String>, paths: impl IntoIterator<Item = &'a PathBuf>) {
    for p in paths {
        let lossy = p.to_string_lossy().into_owned();
        if p.to_str().is_none() {
            out.push(escape_name(p.as_os_str()));
        }
        out.push(lossy);
    }
}

/// A file name as text, exactly: itself where it is UTF-8, except that a backslash is
/// written `\\`, and every byte that is not part of a UTF-8 character written `\xHH`
/// (two lower-case hexadecimal digits). The escaping is reversible, so the text names the
/// file unambiguously (`qshm`'s output uses it for names that are not UTF-8).
///
/// ```
/// use std::ffi::OsStr;
/// use std::os::unix::ffi::OsStrExt;
/// let name = OsStr::from_bytes(b"/dev/shm/caf\xe9\\x");
/// assert_eq!(qshm::inspect::escape_name(name), r"/dev/shm/caf\xe9\\x");
/// assert_eq!(qshm::inspect::escape_name(OsStr::new("/dev/shm/café")), "/dev/shm/café");
/// ```
pub fn escape_name(name: &OsStr) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(name.len());
    for chunk in name.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Information about the segment named by `key`, without attaching to it.
///
/// # Errors
///
/// * [`ErrorKind::NotFound`]: no segment has this key (the message says whether its key
///   file exists).
/// * [`ErrorKind::KeyError`]: the key is empty or not a valid name.
/// * [`ErrorKind::Unsupported`]: a key type this platform has no inspection for.
/// * [`ErrorKind::PermissionDenied`], [`ErrorKind::Unknown`]: `/proc` could not be read.
pub fn info(key: &NativeKey) -> Result<SegmentInfo> {
    let err = |kind: ErrorKind| Error::new(kind, Operation::Inspect, key.to_string());
    if key.is_empty() {
        return Err(err(ErrorKind::KeyError).with_detail("key is empty"));
    }
    let snap = Snapshot::take()?;
    if let Some(proj) = key.key_type().ftok_project_id() {
        let path = Path::new(key.native_key());
        let sysv_key = match os::ftok(path, proj) {
            Ok(k) => k,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                return Err(err(ErrorKind::NotFound)
                    .with_detail(format!("does not exist (no key file {})", path.display())))
            }
            Err(e) => return Err(io_error(&e, Operation::Inspect, key)),
        };
        let Some(shm) = snap.shm_with_key(sysv_key) else {
            return Err(err(ErrorKind::NotFound).with_detail(format!(
                "does not exist (no segment with key {sysv_key:#010x}; its key file exists)"
            )));
        };
        let names = match key.legacy_key() {
            Some(_) => SysvNames {
                native: Some(key.clone()),
                lock: Some(key.lock_key()),
                key_file: Some(path.to_path_buf()),
                lock_file: Some(PathBuf::from(key.lock_key().native_key())),
            },
            None => {
                let mut names = snap.sysv_names_of(path, shm.key);
                names.lock = names
                    .lock_file
                    .as_deref()
                    .and_then(Path::to_str)
                    .map(|lock| NativeKey::new(lock, key.key_type()));
                names.native = Some(key.clone());
                names
            }
        };
        let mut info = snap.sysv_info(&shm, names);
        info.qt_key = key.legacy_key().map(str::to_owned);
        return Ok(info);
    }
    if key.key_type() == KeyType::PosixRealtime && cfg!(not(qshm_posix_portable)) {
        let path = posix_path(key.native_key(), "")
            .ok_or_else(|| err(ErrorKind::KeyError).with_detail("not a valid POSIX name"))?;
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(err(ErrorKind::NotFound)
                    .with_detail(format!("does not exist (no file {})", path.display())))
            }
            Err(e) => return Err(io_error(&e, Operation::Inspect, key)),
        };
        let lock_key = match key.legacy_key() {
            Some(_) => key.lock_key(),
            None => posix_lock_key(key.native_key()),
        };
        let lock_path = posix_path(lock_key.native_key(), "sem.");
        let names = PosixNames {
            native: Some(key.clone()),
            lock: Some(lock_key),
            lock_path,
        };
        let mut info = snap.posix_info(&path, &meta, names);
        info.qt_key = key.legacy_key().map(str::to_owned);
        return Ok(info);
    }
    Err(err(ErrorKind::Unsupported).with_detail(no_inspection_detail(key.key_type())))
}

/// The state of segment `key`'s lock, whether or not the segment exists: what a `create`
/// or `attach` waiting on it waits for (a holder that died between taking the lock and
/// saying who it is, say). [`LockState::Absent`] when the key has no lock now.
///
/// # Errors
///
/// [`ErrorKind::KeyError`] for an empty key; [`ErrorKind::Unsupported`] for a key type with
/// no inspection here; otherwise as [`list`].
pub fn lock_state(key: &NativeKey) -> Result<LockState> {
    let err = |kind: ErrorKind| Error::new(kind, Operation::Inspect, key.to_string());
    if key.is_empty() {
        return Err(err(ErrorKind::KeyError).with_detail("key is empty"));
    }
    let snap = Snapshot::take()?;
    if let Some(proj) = key.key_type().ftok_project_id() {
        let lock = key.lock_key();
        let Ok(k) = os::ftok(Path::new(lock.native_key()), proj) else {
            return Ok(LockState::Absent); // no key file: no lock
        };
        return Ok(match snap.sem_with_key(k) {
            Some(sem) => sysv_lock_state(sem.id),
            None => LockState::Absent,
        });
    }
    if key.key_type() == KeyType::PosixRealtime && cfg!(not(qshm_posix_portable)) {
        let lock_key = match key.legacy_key() {
            Some(_) => key.lock_key(),
            None => posix_lock_key(key.native_key()),
        };
        return Ok(match posix_path(lock_key.native_key(), "sem.") {
            Some(sem) if sem.exists() => snap.posix_lock_state(&sem),
            _ => LockState::Absent,
        });
    }
    Err(err(ErrorKind::Unsupported).with_detail(no_inspection_detail(key.key_type())))
}

/// Every Qt or qshm segment on the machine: System V segments with Qt key files (or Qt's
/// ftok project id when the key file is gone) and POSIX `qipc_sharedmemory_*` files and
/// segment/semaphore pairs. See the [module docs](self) for how they are found.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] where there is no System V (iOS); on Linux, errors reading
/// `/proc/sysvipc`.
pub fn list() -> Result<Vec<SegmentInfo>> {
    let snap = Snapshot::take()?;
    let mut out = Vec::new();
    for shm in &snap.shms {
        if let Some(names) = snap.sysv_names(shm) {
            out.push(snap.sysv_info(shm, names));
        }
    }
    for (name, meta) in &snap.posix_segments() {
        let path = Path::new(DEV_SHM).join(name);
        out.push(snap.posix_info(&path, meta, posix_names(name)));
    }
    Ok(out)
}

/// System V semaphores with Qt's names (a Qt key file, or keyless with Qt's project id)
/// that lock no segment now, that nobody waits on and whose last user is gone; each with
/// whether it is provably a segment's lock: its key file is a segment's, or a
/// `qipc_systemsem_` file whose `qipc_sharedmemory_` sibling is still there. A standalone
/// `QSystemSemaphore` has the very same name as the lock of a segment of the same key, and
/// another program's `ftok(path, 'Q')` semaphore looks like a keyless one: their counts may
/// be someone's tokens, so only the provable ones are leftovers.
fn unused_sysv_semaphores(snap: &Snapshot, lock_keys: &HashSet<i32>) -> Vec<(SemaphoreInfo, bool)> {
    let mut out = Vec::new();
    for sem in &snap.sems {
        if lock_keys.contains(&sem.key) || snap.shms.iter().any(|s| s.key == sem.key) {
            continue;
        }
        let file = snap.file_for(sem.key);
        if file.is_none() && i32::from(project_of(sem.key)) != QT_PROJECT_ID {
            continue;
        }
        let a_segments_lock = file.is_some_and(|f| match f.kind {
            // Qt 6.6.0 locked a segment through the segment's own key file.
            FileKind::Segment => true,
            FileKind::Semaphore => segment_sibling(&f.path).is_some_and(|p| p.exists()),
            // A native key's file: a segment and its lock share it, but so may a
            // standalone semaphore of the same native key.
            FileKind::Runtime => false,
        });
        let Ok(state) = os::sem_state(sem.id) else {
            continue;
        };
        if state.waiters != 0 || process_alive(state.last_pid) {
            continue;
        }
        let info = SemaphoreInfo {
            backend: Backend::SystemV,
            native_key: file.and_then(|f| native_of(&f.path, sem.key)),
            id: Some(sem.id),
            sysv_key: Some(sem.key),
            path: None,
            key_file: file.map(|f| f.path.clone()),
            value: Some(state.value),
            last_pid: Some(state.last_pid).filter(|&p| p != 0),
            uid: sem.uid,
            mode: sem.mode,
        };
        out.push((info, a_segments_lock));
    }
    out
}

/// System V semaphores with Qt's names that nobody uses but that are not provably a
/// segment's lock: standalone `QSystemSemaphore`s whose users are gone (their count may be
/// tokens a consumer will come for) and other programs' semaphores of Qt's project id.
/// [`leftovers`] leaves them out; remove one with [`remove_leftover`] only when you know
/// whose it is (`qshm clean --semaphores --match NAME`).
///
/// # Errors
///
/// As [`list`].
pub fn unused_semaphores() -> Result<Vec<Leftover>> {
    let snap = Snapshot::take()?;
    let lock_keys = sysv_lock_keys(&snap);
    Ok(unused_sysv_semaphores(&snap, &lock_keys)
        .into_iter()
        .filter_map(|(info, a_segments_lock)| (!a_segments_lock).then_some(info))
        .map(Leftover::Semaphore)
        .collect())
}

/// The System V keys of the locks of the segments that exist.
fn sysv_lock_keys(snap: &Snapshot) -> HashSet<i32> {
    let mut keys = HashSet::new();
    for shm in &snap.shms {
        if let Some(lock_file) = snap.sysv_names(shm).and_then(|n| n.lock_file) {
            if let Ok(k) = os::ftok(&lock_file, project_of(shm.key)) {
                keys.insert(k);
            }
        }
    }
    keys
}

/// The `qipc_sharedmemory_` key file beside a `qipc_systemsem_` one (the same key's
/// segment).
fn segment_sibling(path: &Path) -> Option<std::path::PathBuf> {
    let rest = strip_name_prefix(path.file_name()?, SEM_PREFIX)?;
    Some(path.with_file_name(join_name(SHM_PREFIX, rest)))
}

/// `name` without `prefix`, byte-wise (a file name need not be UTF-8).
fn strip_name_prefix<'a>(name: &'a OsStr, prefix: &str) -> Option<&'a OsStr> {
    name.as_bytes()
        .strip_prefix(prefix.as_bytes())
        .map(OsStr::from_bytes)
}

/// `prefix` followed by `rest`.
fn join_name(prefix: &str, rest: &OsStr) -> OsString {
    let mut name = OsString::from(prefix);
    name.push(rest);
    name
}

/// Everything `qshm clean` would remove: orphaned segments, lock semaphores that provably
/// belonged to a segment and that nobody uses, and `qipc_*` key files with nothing behind
/// them.
///
/// # Errors
///
/// As [`list`].
pub fn leftovers() -> Result<Vec<Leftover>> {
    let snap = Snapshot::take()?;
    let now = SystemTime::now();
    let old = |t: Option<SystemTime>| {
        t.and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age >= MIN_AGE)
    };
    let mut out = Vec::new();
    let lock_keys = sysv_lock_keys(&snap);
    for shm in &snap.shms {
        let Some(names) = snap.sysv_names(shm) else {
            continue;
        };
        let info = snap.sysv_info(shm, names);
        if info.orphaned {
            out.push(Leftover::Segment(info));
        }
    }
    // System V semaphores that lock no segment any more and nobody uses, provably a
    // segment's lock (see `unused_sysv_semaphores`).
    out.extend(
        unused_sysv_semaphores(&snap, &lock_keys)
            .into_iter()
            .filter_map(|(info, a_segments_lock)| a_segments_lock.then_some(info))
            .map(Leftover::Semaphore),
    );
    // Key files with nothing behind them (only Qt-named ones: a runtime directory holds
    // other programs' files too).
    for f in &snap.files {
        if f.kind == FileKind::Runtime || !old(f.modified) {
            continue;
        }
        let used = snap.shms.iter().any(|s| s.key & 0xff_ffff == f.key24)
            || snap.sems.iter().any(|s| s.key & 0xff_ffff == f.key24);
        if !used {
            out.push(Leftover::KeyFile(f.path.clone()));
        }
    }
    // POSIX: segments nobody maps or holds open, and Qt-named semaphores without a segment
    // that nobody maps.
    for (name, meta) in &snap.posix_segments() {
        let path = Path::new(DEV_SHM).join(name);
        let info = snap.posix_info(&path, meta, posix_names(name));
        if info.orphaned && old(info.changed) {
            out.push(Leftover::Segment(info));
        }
    }
    for (name, meta) in &snap.dev_shm {
        let Some(sem_name) = strip_name_prefix(name, "sem.") else {
            continue;
        };
        let Some(rest) = strip_name_prefix(sem_name, SEM_PREFIX) else {
            continue;
        };
        let path = Path::new(DEV_SHM).join(name);
        if snap.dev_shm.contains_key(&join_name(SHM_PREFIX, rest))
            || !snap.surely_unused(meta)
            || !old(meta.modified().ok())
        {
            continue;
        }
        out.push(Leftover::Semaphore(SemaphoreInfo {
            backend: Backend::Posix,
            native_key: sem_name
                .to_str()
                .map(|n| NativeKey::new(format!("/{n}"), KeyType::PosixRealtime)),
            id: None,
            sysv_key: None,
            value: os::posix_sem_state(&path).map(|s| s.value),
            path: Some(path),
            key_file: None,
            last_pid: None,
            uid: meta.uid(),
            mode: meta.mode() & 0o777,
        }));
    }
    #[cfg(qshm_linux)]
    for (name, meta) in &snap.dev_shm {
        if strip_name_prefix(name, crate::sys::notify::COMPANION_PREFIX).is_none() {
            continue;
        }
        let path = Path::new(DEV_SHM).join(name);
        if companion_orphaned(&path) && snap.surely_unused(meta) && old(meta.modified().ok()) {
            out.push(Leftover::Notifier(path));
        }
    }
    Ok(out)
}

/// Whether the file at `path` is a notifier's companion whose segment is gone.
#[cfg(qshm_linux)]
fn companion_orphaned(path: &Path) -> bool {
    use crate::backend::RawSegment;
    let Some(key) = crate::sys::notify::companion_key(path) else {
        return false; // not one of ours
    };
    key.parse::<NativeKey>()
        .is_ok_and(|key| !crate::sys::Segment::exists(&key))
}

/// Removes a segment with its key file, lock semaphore and change notifier's companion.
/// Returns whether it removed the
/// segment (`false`: it was gone already, or it is attached and `force` is false).
///
/// System V: under the segment's lock (waited for up to 2 s; with `force`, not waited for),
/// the attach count is checked again and the segment removed by id (`IPC_RMID`), so a
/// segment whose key file is gone can be removed too; its key file goes if it still names
/// it, and its lock semaphore if nobody waits for it. Processes still attached keep their
/// mapping until they detach. POSIX: the file and its lock semaphore's file are unlinked
/// (`force` or nobody maps them).
///
/// # Errors
///
/// [`ErrorKind::PermissionDenied`] when the segment belongs to someone else;
/// [`ErrorKind::LockError`] (not with `force`) when its lock stays held.
pub fn remove(info: &SegmentInfo, force: bool) -> Result<bool> {
    let removed = match info.backend {
        Backend::SystemV => remove_sysv(info, force),
        Backend::Posix => remove_posix(info, force),
    };
    // The change notifier's companion goes with its segment.
    #[cfg(qshm_linux)]
    if let (Ok(true), Some(key)) = (&removed, &info.native_key) {
        let _ = crate::sys::notify::remove_companion(&crate::key::companion_name(key));
    }
    removed
}

/// Removes a [`Leftover`] after checking again that it still is one. Returns whether it
/// removed something.
///
/// # Errors
///
/// [`ErrorKind::PermissionDenied`] when it belongs to someone else, and the errors of the
/// system calls.
pub fn remove_leftover(leftover: &Leftover) -> Result<bool> {
    match leftover {
        Leftover::Segment(info) => remove(info, false),
        Leftover::Semaphore(sem) => remove_stale_semaphore(sem),
        Leftover::KeyFile(path) => {
            let snap = Snapshot::take()?;
            let meta = match fs::metadata(path) {
                Ok(m) => m,
                Err(_) => return Ok(false),
            };
            let key24 = key24(&meta);
            let used = snap.shms.iter().any(|s| s.key & 0xff_ffff == key24)
                || snap.sems.iter().any(|s| s.key & 0xff_ffff == key24);
            if used {
                return Ok(false);
            }
            remove_file(path, Operation::Remove)
        }
        #[cfg(qshm_linux)]
        Leftover::Notifier(path) => {
            let Ok(meta) = fs::metadata(path) else {
                return Ok(false);
            };
            if !companion_orphaned(path) || !Snapshot::take()?.surely_unused(&meta) {
                return Ok(false);
            }
            remove_file(path, Operation::Remove)
        }
        #[cfg(not(qshm_linux))]
        Leftover::Notifier(_) => Ok(false),
    }
}

/// Whether process `pid` exists and is not a zombie (a zombie has given back its
/// attachments and, through `SEM_UNDO`, its locks). Where there is no `/proc` (macOS,
/// FreeBSD, the portable mode), whether `kill(pid, 0)` finds it: a zombie counts as alive.
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    #[cfg(all(qshm_linux, not(qshm_portable)))]
    return match crate::sys::procfs::task_stat(pid) {
        Ok(stat) => !stat.is_dead(),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    };
    #[cfg(not(all(qshm_linux, not(qshm_portable))))]
    match i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        Some(pid) => rustix::process::test_kill_process(pid) != Err(rustix::io::Errno::SRCH),
        None => false,
    }
}

/// Why a key of type `key_type` cannot be inspected here.
fn no_inspection_detail(key_type: KeyType) -> &'static str {
    if key_type == KeyType::PosixRealtime && cfg!(qshm_posix_portable) {
        "POSIX segments cannot be inspected here: the system keeps no directory of them \
         (macOS, iOS; FreeBSD's is not read)"
    } else {
        "no inspection for this key type here"
    }
}

fn io_error(e: &io::Error, op: Operation, key: &NativeKey) -> Error {
    match e.raw_os_error() {
        Some(errno) => crate::sys::os_error(errno, op, key.to_string()),
        None => Error::new(ErrorKind::Unknown, op, key.to_string()).with_detail(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
