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
//! Other platforms report [`ErrorKind::Unsupported`].
//!
//! # Races
//!
//! What is read is a snapshot: a segment can appear or go at any moment. Removal re-checks
//! under the segment's lock (System V) or just before unlinking (POSIX), and leaves alone
//! anything younger than [`MIN_AGE`] that it cannot check under a lock, so that an object a
//! process is creating right now is never taken for a leftover.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::backend::{RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::key::{temp_dir, KeyType, NativeKey, TempDirStyle};
use crate::sys::inspect as os;
use crate::sys::procfs::{mapped_files, FileId};
use crate::sys::Semaphore;

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
    /// Its native key; `None` for a System V segment whose key file is gone.
    pub native_key: Option<NativeKey>,
    /// The Qt key it was made from, when known (from [`info`] with a key made from a Qt key;
    /// never from [`list`]: names are hashed).
    pub qt_key: Option<String>,
    /// The native key of its lock semaphore, when known.
    pub lock_key: Option<NativeKey>,
    /// The System V segment id (`shmid`).
    pub id: Option<i32>,
    /// The System V key (`key_t`, from `ftok`).
    pub sysv_key: Option<i32>,
    /// The file behind a POSIX segment (`/dev/shm/<name>`).
    pub path: Option<PathBuf>,
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
    /// Its native key; `None` for a System V semaphore whose key file is gone.
    pub native_key: Option<NativeKey>,
    /// The System V semaphore set id (`semid`).
    pub id: Option<i32>,
    /// The System V key (`key_t`).
    pub sysv_key: Option<i32>,
    /// The file behind a POSIX semaphore (`/dev/shm/sem.<name>`).
    pub path: Option<PathBuf>,
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
}

impl Leftover {
    /// `segment`, `semaphore` or `key_file`.
    pub fn kind(&self) -> &'static str {
        match self {
            Leftover::Segment(_) => "segment",
            Leftover::Semaphore(_) => "semaphore",
            Leftover::KeyFile(_) => "key_file",
        }
    }

    /// The names it goes by (native key texts, paths), to filter on.
    pub fn names(&self) -> Vec<String> {
        match self {
            Leftover::Segment(s) => s.names(),
            Leftover::Semaphore(s) => {
                let mut v: Vec<String> = s.native_key.iter().map(ToString::to_string).collect();
                v.extend(s.path.iter().map(|p| p.display().to_string()));
                v
            }
            Leftover::KeyFile(p) => vec![p.display().to_string()],
        }
    }
}

impl SegmentInfo {
    /// The names it goes by: its native key text, its lock's and its file, to filter on.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.native_key.iter().map(ToString::to_string).collect();
        v.extend(self.lock_key.iter().map(ToString::to_string));
        v.extend(self.path.iter().map(|p| p.display().to_string()));
        v
    }
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
    let err = |kind: ErrorKind| Error::new(kind, Operation::Attach, key.to_string());
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
            Err(e) => return Err(io_error(&e, Operation::Attach, key)),
        };
        let Some(shm) = snap.shms.iter().find(|s| s.key == sysv_key) else {
            return Err(err(ErrorKind::NotFound).with_detail(format!(
                "does not exist (no segment with key {sysv_key:#010x}; its key file exists)"
            )));
        };
        let lock_key = match key.legacy_key() {
            Some(_) => key.lock_key(),
            None => snap.sysv_lock_key(path, shm.key, key.key_type()),
        };
        let mut info = snap.sysv_info(shm, Some(key.clone()), Some(lock_key));
        info.qt_key = key.legacy_key().map(str::to_owned);
        return Ok(info);
    }
    if key.key_type() == KeyType::PosixRealtime {
        let path = posix_path(key.native_key(), "")
            .ok_or_else(|| err(ErrorKind::KeyError).with_detail("not a valid POSIX name"))?;
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(err(ErrorKind::NotFound)
                    .with_detail(format!("does not exist (no file {})", path.display())))
            }
            Err(e) => return Err(io_error(&e, Operation::Attach, key)),
        };
        let lock_key = match key.legacy_key() {
            Some(_) => key.lock_key(),
            None => posix_lock_key(key.native_key()),
        };
        let mut info = snap.posix_info(&path, &meta, key.clone(), lock_key);
        info.qt_key = key.legacy_key().map(str::to_owned);
        return Ok(info);
    }
    Err(err(ErrorKind::Unsupported).with_detail("no inspection for this key type here"))
}

/// Every Qt or qshm segment on the machine: System V segments with Qt key files (or Qt's
/// ftok project id when the key file is gone) and POSIX `qipc_sharedmemory_*` files and
/// segment/semaphore pairs. See the [module docs](self) for how they are found.
///
/// # Errors
///
/// [`ErrorKind::Unsupported`] where there is no `/proc/sysvipc`; otherwise errors reading
/// it.
pub fn list() -> Result<Vec<SegmentInfo>> {
    let snap = Snapshot::take()?;
    let mut out = Vec::new();
    for shm in &snap.shms {
        if let Some((native, lock)) = snap.sysv_names(shm) {
            out.push(snap.sysv_info(shm, native, lock));
        }
    }
    for (name, meta) in &snap.posix_segments() {
        let native = NativeKey::new(format!("/{name}"), KeyType::PosixRealtime);
        let lock = posix_lock_key(native.native_key());
        out.push(snap.posix_info(&Path::new(DEV_SHM).join(name), meta, native, lock));
    }
    Ok(out)
}

/// Everything `qshm clean` would remove: orphaned segments, lock semaphores without a
/// segment that nobody uses, and `qipc_*` key files with nothing behind them.
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
    let mut lock_keys = HashSet::new();
    for shm in &snap.shms {
        let Some((native, lock)) = snap.sysv_names(shm) else {
            continue;
        };
        if let Some(lock) = &lock {
            if let Ok(k) = os::ftok(Path::new(lock.native_key()), project_of(shm.key)) {
                lock_keys.insert(k);
            }
        }
        let info = snap.sysv_info(shm, native, lock);
        if info.orphaned {
            out.push(Leftover::Segment(info));
        }
    }
    // System V semaphores that lock no segment: matched to a Qt key file, or keyless with
    // Qt's project id; nobody waits and their last user is gone.
    for sem in &snap.sems {
        if lock_keys.contains(&sem.key) || snap.shms.iter().any(|s| s.key == sem.key) {
            continue;
        }
        let file = snap.file_for(sem.key);
        if file.is_none() && i32::from(project_of(sem.key)) != QT_PROJECT_ID {
            continue;
        }
        let Ok(state) = os::sem_state(sem.id) else {
            continue;
        };
        if state.waiters != 0 || process_alive(state.last_pid) {
            continue;
        }
        out.push(Leftover::Semaphore(SemaphoreInfo {
            backend: Backend::SystemV,
            native_key: file.map(|f| native_of(&f.path, sem.key)),
            id: Some(sem.id),
            sysv_key: Some(sem.key),
            path: None,
            value: Some(state.value),
            last_pid: Some(state.last_pid).filter(|&p| p != 0),
            uid: sem.uid,
            mode: sem.mode,
        }));
    }
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
        let native = NativeKey::new(format!("/{name}"), KeyType::PosixRealtime);
        let lock = posix_lock_key(native.native_key());
        let info = snap.posix_info(&Path::new(DEV_SHM).join(name), meta, native, lock);
        if info.orphaned && old(info.changed) {
            out.push(Leftover::Segment(info));
        }
    }
    for (name, meta) in &snap.dev_shm {
        let Some(sem_name) = name.strip_prefix("sem.") else {
            continue;
        };
        let Some(rest) = sem_name.strip_prefix(SEM_PREFIX) else {
            continue;
        };
        let path = Path::new(DEV_SHM).join(name);
        if snap.dev_shm.contains_key(&format!("{SHM_PREFIX}{rest}"))
            || !snap.surely_unused(meta)
            || !old(meta.modified().ok())
        {
            continue;
        }
        out.push(Leftover::Semaphore(SemaphoreInfo {
            backend: Backend::Posix,
            native_key: Some(NativeKey::new(
                format!("/{sem_name}"),
                KeyType::PosixRealtime,
            )),
            id: None,
            sysv_key: None,
            value: os::posix_sem_state(&path).map(|s| s.value),
            path: Some(path),
            last_pid: None,
            uid: meta.uid(),
            mode: meta.mode() & 0o777,
        }));
    }
    Ok(out)
}

/// Removes a segment with its key file and lock semaphore. Returns whether it removed the
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
    match info.backend {
        Backend::SystemV => remove_sysv(info, force),
        Backend::Posix => remove_posix(info, force),
    }
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
    }
}

// ---------------------------------------------------------------------------------------
// Removal

fn remove_sysv(info: &SegmentInfo, force: bool) -> Result<bool> {
    let (Some(id), Some(sysv_key)) = (info.id, info.sysv_key) else {
        return Ok(false);
    };
    let label = info
        .native_key
        .as_ref()
        .map_or_else(|| format!("shmid {id}"), ToString::to_string);
    let sem = match &info.lock_key {
        Some(lock) => {
            let (sem, _) = Semaphore::open(lock, 1, SemOpen::OpenOrCreate, 0o600)
                .map_err(|e| e.with_op(Operation::Remove).with_key(label.clone()))?;
            let wait = if force {
                Wait::Poll
            } else {
                Wait::For(LOCK_WAIT)
            };
            let locked = sem.acquire(wait, Undo::Yes, Operation::Remove).is_ok();
            if !locked && !force {
                let _ = drop_lock_if_unused(&sem, false, info);
                return Err(Error::new(ErrorKind::LockError, Operation::Remove, label)
                    .with_detail("its lock is held (in use); not removed"));
            }
            Some((sem, locked))
        }
        None => None,
    };
    let result = remove_sysv_locked(info, id, sysv_key, force, &label);
    if let Some((sem, locked)) = sem {
        let _ = drop_lock_if_unused(&sem, locked, info);
    }
    result
}

/// Removes the lock when the segment is gone and nobody waits, else releases it (when
/// `release`).
fn drop_lock_if_unused(sem: &Semaphore, release: bool, info: &SegmentInfo) -> Result<()> {
    let segment_gone = info
        .id
        .map_or(true, |id| os::shm_key_and_nattch(id).is_err());
    if segment_gone && sem.waiters() == 0 {
        sem.remove()
    } else if release {
        sem.release(1, Undo::Yes, Operation::Remove)
    } else {
        Ok(())
    }
}

fn remove_sysv_locked(
    info: &SegmentInfo,
    id: i32,
    sysv_key: i32,
    force: bool,
    label: &str,
) -> Result<bool> {
    let err = |e: &io::Error| {
        Error::from_errno(
            e.raw_os_error().unwrap_or(libc::EIO),
            Operation::Remove,
            label,
        )
    };
    match os::shm_key_and_nattch(id) {
        Ok((key, nattch)) => {
            if key != sysv_key && key != 0 {
                return Ok(false); // the id was reused for another segment
            }
            if nattch != 0 && !force {
                return Ok(false);
            }
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
            remove_key_file_if_stale(info);
            return Ok(false);
        }
        Err(e) => return Err(err(&e)),
    }
    match os::shm_remove_id(id) {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => return Ok(false),
        Err(e) => return Err(err(&e)),
    }
    remove_key_file_if_stale(info);
    Ok(true)
}

/// Unlinks a System V segment's key file if it still names that segment's key (a key file
/// replaced meanwhile is left alone).
fn remove_key_file_if_stale(info: &SegmentInfo) {
    let (Some(native), Some(sysv_key)) = (&info.native_key, info.sysv_key) else {
        return;
    };
    let path = Path::new(native.native_key());
    if os::ftok(path, project_of(sysv_key)).ok() == Some(sysv_key) {
        let _ = fs::remove_file(path);
    }
}

fn remove_posix(info: &SegmentInfo, force: bool) -> Result<bool> {
    let Some(path) = &info.path else {
        return Ok(false);
    };
    let label = info
        .native_key
        .as_ref()
        .map_or_else(|| path.display().to_string(), ToString::to_string);
    // qshm's attach count: its exclusive `flock`, held until the file is unlinked, makes an
    // attacher that opened the file meanwhile see it unlinked and give up. No segment lock
    // is taken: a Qt process attaching holds the file open (it has `shm_open`ed it before it
    // maps it), and `process_users` counts open descriptors as well as mappings.
    let users = process_users();
    if !force && users.of_path(path) > 0 {
        return Ok(false);
    }
    let _counted = match fs::File::open(path) {
        Ok(file) => {
            if !os::try_lock_exclusive(&file) && !force {
                return Ok(false); // a qshm process attached since the look at the users
            }
            Some(file)
        }
        Err(_) => None, // the removal below reports why, if it matters
    };
    let removed = match fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(Error::from_errno(
                e.raw_os_error().unwrap_or(libc::EIO),
                Operation::Remove,
                label,
            ))
        }
    };
    if let Some(lock) = info
        .lock_key
        .as_ref()
        .and_then(|k| posix_path(k.native_key(), "sem."))
    {
        if force || users.of_path(&lock) == 0 {
            let _ = fs::remove_file(&lock);
        }
    }
    Ok(removed)
}

fn remove_stale_semaphore(sem: &SemaphoreInfo) -> Result<bool> {
    let label = sem.native_key.as_ref().map_or_else(
        || format!("semid {}", sem.id.unwrap_or(-1)),
        ToString::to_string,
    );
    let err = |e: &io::Error| {
        Error::from_errno(
            e.raw_os_error().unwrap_or(libc::EIO),
            Operation::Remove,
            label.clone(),
        )
    };
    match sem.backend {
        Backend::SystemV => {
            let Some(id) = sem.id else { return Ok(false) };
            match os::sem_state(id) {
                Ok(s) if s.waiters == 0 && !process_alive(s.last_pid) => {}
                Ok(_) => return Ok(false),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
                    return Ok(false)
                }
                Err(e) => return Err(err(&e)),
            }
            match os::sem_remove_id(id) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
                    return Ok(false)
                }
                Err(e) => return Err(err(&e)),
            }
            if let (Some(native), Some(key)) = (&sem.native_key, sem.sysv_key) {
                let path = Path::new(native.native_key());
                if os::ftok(path, project_of(key)).ok() == Some(key) {
                    let _ = fs::remove_file(path);
                }
            }
            Ok(true)
        }
        Backend::Posix => {
            let Some(path) = &sem.path else {
                return Ok(false);
            };
            if process_users().of_path(path) > 0 {
                return Ok(false);
            }
            remove_file(path, Operation::Remove)
        }
    }
}

fn remove_file(path: &Path, op: Operation) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::from_errno(
            e.raw_os_error().unwrap_or(libc::EIO),
            op,
            path.display().to_string(),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// The snapshot

/// One line of `/proc/sysvipc/shm`.
#[derive(Clone, Debug)]
struct ShmEntry {
    key: i32,
    id: i32,
    mode: u32,
    size: u64,
    cpid: u32,
    lpid: u32,
    nattch: u64,
    uid: u32,
    gid: u32,
    ctime: u64,
}

/// One line of `/proc/sysvipc/sem`.
#[derive(Clone, Debug)]
struct SemEntry {
    key: i32,
    id: i32,
    mode: u32,
    uid: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    /// `qipc_sharedmemory_*` in a temporary directory.
    Segment,
    /// `qipc_systemsem_*` in a temporary directory.
    Semaphore,
    /// Any file in the runtime directory (non-legacy System V keys).
    Runtime,
}

/// A possible key file.
#[derive(Clone, Debug)]
struct KeyFile {
    path: PathBuf,
    /// `(st_dev & 0xff) << 16 | (st_ino & 0xffff)`: `ftok`'s key without the project id.
    key24: i32,
    kind: FileKind,
    modified: Option<SystemTime>,
}

struct Snapshot {
    shms: Vec<ShmEntry>,
    sems: Vec<SemEntry>,
    files: Vec<KeyFile>,
    dev_shm: HashMap<String, fs::Metadata>,
    users: std::cell::OnceCell<Users>,
}

impl Snapshot {
    fn take() -> Result<Snapshot> {
        let shms = read_proc("/proc/sysvipc/shm")?
            .iter()
            .filter_map(|f| parse_shm(f))
            .collect();
        let sems: Vec<SemEntry> = read_proc("/proc/sysvipc/sem")?
            .iter()
            .filter_map(|f| parse_sem(f))
            .collect();
        let files = key_files();
        let mut dev_shm = HashMap::new();
        if let Ok(dir) = fs::read_dir(DEV_SHM) {
            for entry in dir.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_file() {
                    if let Some(name) = entry.file_name().to_str() {
                        dev_shm.insert(name.to_owned(), meta);
                    }
                }
            }
        }
        Ok(Snapshot {
            shms,
            sems,
            files,
            dev_shm,
            users: std::cell::OnceCell::new(),
        })
    }

    /// The key file whose ftok key (any project id) is `key`.
    fn file_for(&self, key: i32) -> Option<&KeyFile> {
        let k24 = key & 0xff_ffff;
        let mut matches = self.files.iter().filter(|f| f.key24 == k24);
        let first = matches.next()?;
        Some(
            std::iter::once(first)
                .chain(matches)
                .find(|f| f.kind == FileKind::Segment)
                .unwrap_or(first),
        )
    }

    /// The native key and lock key of a System V segment, `None` when it is not a Qt or
    /// qshm segment.
    fn sysv_names(&self, shm: &ShmEntry) -> Option<(Option<NativeKey>, Option<NativeKey>)> {
        if shm.key == 0 {
            return None; // IPC_PRIVATE, or removed and waiting for its last detach
        }
        match self.file_for(shm.key) {
            Some(f) if f.kind != FileKind::Semaphore => {
                let native = native_of(&f.path, shm.key);
                let lock = self.sysv_lock_key(&f.path, shm.key, native.key_type());
                Some((Some(native), Some(lock)))
            }
            Some(_) => None,
            None if (shm.key >> 24) & 0xff == QT_PROJECT_ID => Some((None, None)),
            None => None,
        }
    }

    /// The lock of the segment with key file `path`: the semaphore with the same key if one
    /// exists (non-legacy keys), else the `qipc_systemsem_` sibling of a `qipc_sharedmemory_`
    /// file, else the same file.
    fn sysv_lock_key(&self, path: &Path, shm_key: i32, key_type: KeyType) -> NativeKey {
        let same = NativeKey::new(path.to_string_lossy(), key_type);
        if self.sems.iter().any(|s| s.key == shm_key) {
            return same;
        }
        match sibling_lock(path) {
            Some(sibling) => NativeKey::new(sibling.to_string_lossy(), key_type),
            None => same,
        }
    }

    fn sysv_info(
        &self,
        shm: &ShmEntry,
        native: Option<NativeKey>,
        lock: Option<NativeKey>,
    ) -> SegmentInfo {
        let lock_state = match &lock {
            Some(lock) => match os::ftok(Path::new(lock.native_key()), project_of(shm.key)) {
                Ok(k) => match self.sems.iter().find(|s| s.key == k) {
                    Some(sem) => sysv_lock_state(sem.id),
                    None => LockState::Absent,
                },
                Err(_) => LockState::Absent,
            },
            None => LockState::Unknown,
        };
        let creator_alive = process_alive(shm.cpid);
        SegmentInfo {
            backend: Backend::SystemV,
            native_key: native,
            qt_key: None,
            lock_key: lock,
            id: Some(shm.id),
            sysv_key: Some(shm.key),
            path: None,
            size: shm.size,
            attach_count: shm.nattch,
            creator_pid: Some(shm.cpid),
            creator_alive: Some(creator_alive),
            last_pid: Some(shm.lpid).filter(|&p| p != 0),
            uid: shm.uid,
            gid: shm.gid,
            mode: shm.mode,
            lock_state,
            orphaned: shm.nattch == 0 && !creator_alive,
            changed: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(shm.ctime)),
        }
    }

    /// The Qt-named POSIX segments: `qipc_sharedmemory_*` files, and files with a
    /// `sem.<name>` beside them.
    fn posix_segments(&self) -> Vec<(String, fs::Metadata)> {
        let mut v: Vec<(String, fs::Metadata)> = self
            .dev_shm
            .iter()
            .filter(|(name, _)| {
                !name.starts_with("sem.")
                    && (name.starts_with(SHM_PREFIX)
                        || self.dev_shm.contains_key(&format!("sem.{name}")))
            })
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn users(&self) -> &Users {
        self.users.get_or_init(process_users)
    }

    fn users_of(&self, meta: &fs::Metadata) -> usize {
        self.users().of(meta)
    }

    /// Whether no process uses `path`, for certain: nobody maps or holds it open among the
    /// processes this one can see, and those it cannot see (other users', when not root)
    /// could not open it either (it is this user's, with no group or other permission).
    fn surely_unused(&self, meta: &fs::Metadata) -> bool {
        let users = self.users();
        users.of(meta) == 0
            && (users.complete || (meta.uid() == my_uid() && meta.mode() & 0o077 == 0))
    }

    fn posix_info(
        &self,
        path: &Path,
        meta: &fs::Metadata,
        native: NativeKey,
        lock: NativeKey,
    ) -> SegmentInfo {
        let attach_count = self.users_of(meta) as u64;
        let orphaned = self.surely_unused(meta);
        let lock_state = match posix_path(lock.native_key(), "sem.") {
            Some(sem) if sem.exists() => self.posix_lock_state(&sem),
            _ => LockState::Absent,
        };
        SegmentInfo {
            backend: Backend::Posix,
            native_key: Some(native),
            qt_key: None,
            lock_key: Some(lock),
            id: None,
            sysv_key: None,
            path: Some(path.to_path_buf()),
            size: meta.len(),
            attach_count,
            creator_pid: None,
            creator_alive: None,
            last_pid: None,
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o777,
            lock_state,
            orphaned,
            changed: meta.modified().ok(),
        }
    }

    /// The lock state of a POSIX lock semaphore, from its file: glibc's value, and the
    /// owner record qshm's POSIX backend keeps beside it (holder pid and start time). A held
    /// semaphore with a record names its holder, alive or dead; one without (a Qt holder)
    /// has a dead holder when no process maps it any more.
    /// The record's layout and its liveness test are the backend's own
    /// (`sys/unix/posix.rs`, `owner_record_is_alive`).
    fn posix_lock_state(&self, sem: &Path) -> LockState {
        let Some(state) = os::posix_sem_state(sem) else {
            return LockState::Unknown;
        };
        if state.value > 0 {
            return LockState::Free;
        }
        let pid = (state.owner >> 32) as u32;
        if pid != 0 {
            return if os::owner_record_is_alive(state.owner) {
                LockState::Held { pid: Some(pid) }
            } else {
                LockState::HolderDead { pid: Some(pid) }
            };
        }
        if fs::metadata(sem).is_ok_and(|meta| self.users_of(&meta) == 0) {
            LockState::HolderDead { pid: None }
        } else {
            LockState::Held { pid: None }
        }
    }
}

fn sysv_lock_state(semid: i32) -> LockState {
    match os::sem_state(semid) {
        Ok(s) if s.value > 0 => LockState::Free,
        Ok(s) => {
            let pid = Some(s.last_pid).filter(|&p| p != 0);
            if s.last_pid != 0 && !process_alive(s.last_pid) {
                LockState::HolderDead { pid }
            } else {
                LockState::Held { pid }
            }
        }
        Err(_) => LockState::Unknown,
    }
}

/// The ftok project id of a System V key.
fn project_of(key: i32) -> u8 {
    ((key >> 24) & 0xff) as u8
}

/// The native key of the key file `path` for a System V key (its project id gives the
/// type).
fn native_of(path: &Path, key: i32) -> NativeKey {
    let key_type = KeyType::from_raw(u16::from(project_of(key)))
        .filter(|t| t.is_system_v())
        .unwrap_or(KeyType::SystemV);
    NativeKey::new(path.to_string_lossy(), key_type)
}

/// `…/qipc_systemsem_<x>` for `…/qipc_sharedmemory_<x>`.
fn sibling_lock(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix(SHM_PREFIX)?;
    Some(path.with_file_name(format!("{SEM_PREFIX}{rest}")))
}

/// The lock of a POSIX segment without a Qt key: `/qipc_systemsem_<x>` for a
/// `/qipc_sharedmemory_<x>`, else the same name (non-legacy keys).
fn posix_lock_key(native: &str) -> NativeKey {
    let name = match native
        .strip_prefix('/')
        .and_then(|n| n.strip_prefix(SHM_PREFIX))
    {
        Some(rest) => format!("/{SEM_PREFIX}{rest}"),
        None => native.to_owned(),
    };
    NativeKey::new(name, KeyType::PosixRealtime)
}

/// `/dev/shm/<prefix><name>` for the POSIX name `/<name>` (glibc's mapping), `None` for a
/// name glibc refuses.
fn posix_path(native: &str, prefix: &str) -> Option<PathBuf> {
    let name = native.strip_prefix('/').unwrap_or(native);
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    Some(Path::new(DEV_SHM).join(format!("{prefix}{name}")))
}

fn key24(meta: &fs::Metadata) -> i32 {
    (((meta.dev() & 0xff) << 16) | (meta.ino() & 0xffff)) as i32
}

/// The directories Qt keeps key files in: `$TMPDIR` (Qt 6.9+ and Qt 5.15–6.8 rules), `/tmp`
/// and the runtime directory.
fn key_files() -> Vec<KeyFile> {
    let mut dirs: Vec<(String, bool)> = vec![
        (temp_dir(TempDirStyle::Current), false),
        (temp_dir(TempDirStyle::Canonical), false),
        ("/tmp".to_owned(), false),
        (crate::sys::runtime_dir(), true),
    ];
    let mut seen = HashSet::new();
    dirs.retain(|(d, _)| !d.is_empty() && seen.insert(d.clone()));
    let mut out = Vec::new();
    let mut seen_files = HashSet::new();
    for (dir, runtime) in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let kind = if name.starts_with(SHM_PREFIX) {
                FileKind::Segment
            } else if name.starts_with(SEM_PREFIX) {
                FileKind::Semaphore
            } else if runtime {
                FileKind::Runtime
            } else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() || !seen_files.insert((meta.dev(), meta.ino())) {
                continue;
            }
            out.push(KeyFile {
                path: entry.path(),
                key24: key24(&meta),
                kind,
                modified: meta.modified().ok(),
            });
        }
    }
    out
}

/// The data lines of a `/proc/sysvipc` table, split into fields.
fn read_proc(path: &str) -> Result<Vec<Vec<String>>> {
    let text = fs::read_to_string(path).map_err(|e| {
        let err = Error::new(
            if e.kind() == io::ErrorKind::NotFound {
                ErrorKind::Unsupported
            } else {
                ErrorKind::from_errno(e.raw_os_error().unwrap_or(libc::EIO))
            },
            Operation::Attach,
            path,
        );
        match e.raw_os_error() {
            Some(errno) => err
                .with_errno(errno)
                .with_detail(format!("cannot read {path}")),
            None => err.with_detail(format!("cannot read {path}")),
        }
    })?;
    Ok(text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect())
}

fn parse_shm(f: &[String]) -> Option<ShmEntry> {
    // key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime ...
    Some(ShmEntry {
        key: f.first()?.parse().ok()?,
        id: f.get(1)?.parse().ok()?,
        mode: u32::from_str_radix(f.get(2)?, 8).ok()? & 0o777,
        size: f.get(3)?.parse().ok()?,
        cpid: f.get(4)?.parse().ok()?,
        lpid: f.get(5)?.parse().ok()?,
        nattch: f.get(6)?.parse().ok()?,
        uid: f.get(7)?.parse().ok()?,
        gid: f.get(8)?.parse().ok()?,
        ctime: f.get(13).and_then(|t| t.parse().ok()).unwrap_or(0),
    })
}

fn parse_sem(f: &[String]) -> Option<SemEntry> {
    // key semid perms nsems uid gid cuid cgid otime ctime
    Some(SemEntry {
        key: f.first()?.parse().ok()?,
        id: f.get(1)?.parse().ok()?,
        mode: u32::from_str_radix(f.get(2)?, 8).ok()? & 0o777,
        uid: f.get(4)?.parse().ok()?,
    })
}

/// Whether process `pid` exists and is not a zombie (a zombie has given back its
/// attachments and, through `SEM_UNDO`, its locks).
pub fn process_alive(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    match crate::sys::procfs::process_stat(pid) {
        Ok(stat) => !stat.is_dead(),
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

/// Which processes map or hold open each file under `/dev/shm`, by device and inode (a
/// file made unnamed and linked into place later shows under another path in the maps and
/// descriptors of its creator).
#[derive(Debug, Default)]
struct Users {
    by_file: HashMap<FileId, HashSet<u32>>,
    /// Every process's maps and descriptors could be read.
    complete: bool,
}

impl Users {
    fn of(&self, meta: &fs::Metadata) -> usize {
        self.by_file.get(&FileId::of(meta)).map_or(0, HashSet::len)
    }

    /// As `of`, for the file `path` names now (none: no users).
    fn of_path(&self, path: &Path) -> usize {
        fs::metadata(path).map_or(0, |meta| self.of(&meta))
    }
}

fn my_uid() -> u32 {
    fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// Reads `/proc/<pid>/maps` and `/proc/<pid>/fd` of every process.
fn process_users() -> Users {
    let mut users = Users {
        by_file: HashMap::new(),
        complete: true,
    };
    // Only files of /dev/shm's file system matter.
    let Ok(shm_dev) = fs::metadata(DEV_SHM).map(|m| FileId::of(&m)) else {
        return users;
    };
    let Ok(procs) = fs::read_dir("/proc") else {
        users.complete = false;
        return users;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let denied = |e: &io::Error| e.kind() == io::ErrorKind::PermissionDenied;
        match fs::read_to_string(entry.path().join("maps")) {
            Ok(maps) => {
                for (_, file) in mapped_files(&maps).filter(|(_, f)| f.same_device(shm_dev)) {
                    users.by_file.entry(file).or_default().insert(pid);
                }
            }
            Err(e) if denied(&e) => users.complete = false,
            Err(_) => {} // gone meanwhile
        }
        match fs::read_dir(entry.path().join("fd")) {
            Ok(fds) => {
                for fd in fds.flatten() {
                    // The link names the file as its descriptor was opened (`/dev/shm/#<inode>
                    // (deleted)` for one made unnamed): a cheap filter before the `stat`.
                    if !fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(DEV_SHM)) {
                        continue;
                    }
                    if let Ok(meta) = fs::metadata(fd.path()) {
                        let file = FileId::of(&meta);
                        users.by_file.entry(file).or_default().insert(pid);
                    }
                }
            }
            Err(e) if denied(&e) => users.complete = false,
            Err(_) => {}
        }
    }
    users
}

fn io_error(e: &io::Error, op: Operation, key: &NativeKey) -> Error {
    match e.raw_os_error() {
        Some(errno) => Error::from_errno(errno, op, key.to_string()),
        None => Error::new(ErrorKind::Unknown, op, key.to_string()).with_detail(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_lines() {
        let line: Vec<String> = "1359168030 12 600 1000 4242 4243 1 0 0 0 0 0 0 1700000000 0 0"
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let e = parse_shm(&line).unwrap();
        assert_eq!((e.key, e.id, e.mode, e.size), (1359168030, 12, 0o600, 1000));
        assert_eq!(
            (e.cpid, e.lpid, e.nattch, e.ctime),
            (4242, 4243, 1, 1700000000)
        );
        let line: Vec<String> = "-5 7 1600 1 0 0 0 0 0 0"
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let s = parse_sem(&line).unwrap();
        assert_eq!((s.key, s.id, s.mode), (-5, 7, 0o600));
    }

    #[test]
    fn lock_names() {
        assert_eq!(
            sibling_lock(Path::new("/tmp/qipc_sharedmemory_abc123")),
            Some(PathBuf::from("/tmp/qipc_systemsem_abc123"))
        );
        assert_eq!(sibling_lock(Path::new("/run/user/0/my-key")), None);
        assert_eq!(
            posix_lock_key("/qipc_sharedmemory_x1").native_key(),
            "/qipc_systemsem_x1"
        );
        assert_eq!(posix_lock_key("/hello").native_key(), "/hello");
        assert_eq!(
            posix_path("/hello", "sem."),
            Some(PathBuf::from("/dev/shm/sem.hello"))
        );
        assert_eq!(posix_path("/a/b", ""), None);
        assert_eq!(posix_path("/", ""), None);
    }

    #[test]
    fn liveness() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(0));
        assert!(!process_alive(u32::MAX));
    }

    #[test]
    fn a_posix_creator_counts_as_a_user() {
        use crate::{AccessMode, KeyType, SharedMemory};
        // qshm makes a POSIX segment unnamed and names it once it is ready: its creator's
        // maps and descriptors show another path for it, and must still count.
        let name = format!("/qshm-unit-inspect-posix-{}", std::process::id());
        let key = NativeKey::new(name, KeyType::PosixRealtime);
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create(777, AccessMode::ReadWrite).unwrap();
        let info = info(&key).unwrap();
        assert_eq!((info.size, info.attach_count), (777, 1));
        assert!(!info.orphaned);
        assert!(!remove(&info, false).unwrap(), "removed a live segment");
        shm.detach().unwrap();
        assert_eq!(super::info(&key).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn info_list_and_remove_a_live_segment() {
        use crate::{AccessMode, SharedMemory};
        let name = format!("qshm-unit-inspect-{}", std::process::id());
        let mut shm = SharedMemory::with_key(&name);
        shm.create(777, AccessMode::ReadWrite).unwrap();
        let key = shm.native_key().clone();
        let info = info(&key).unwrap();
        assert_eq!(info.backend, Backend::SystemV);
        assert_eq!(info.qt_key.as_deref(), Some(name.as_str()));
        assert_eq!(info.lock_key, Some(key.lock_key()));
        assert_eq!((info.size, info.attach_count), (777, 1));
        assert_eq!(info.creator_pid, Some(std::process::id()));
        assert_eq!(info.lock_state, LockState::Free);
        assert!(!info.orphaned);
        {
            let _guard = shm.lock().unwrap();
            assert_eq!(
                super::info(&key).unwrap().lock_state,
                LockState::Held {
                    pid: Some(std::process::id())
                }
            );
        }
        let listed = list().unwrap();
        let mine = listed.iter().find(|s| s.id == info.id).unwrap();
        assert_eq!(
            mine.native_key.as_ref().map(NativeKey::native_key),
            Some(key.native_key())
        );
        assert!(leftovers()
            .unwrap()
            .iter()
            .all(|l| !matches!(l, Leftover::Segment(s) if s.id == info.id)));
        // Attached: only a forced removal removes it.
        assert!(!remove(&info, false).unwrap());
        assert!(remove(&info, true).unwrap());
        assert_eq!(super::info(&key).unwrap_err().kind(), ErrorKind::NotFound);
        let _ = shm.detach();
        let _ = crate::SharedMemory::force_remove(&key);
    }

    #[test]
    fn lock_state_text() {
        assert_eq!(LockState::Held { pid: Some(7) }.to_string(), "held (pid 7)");
        assert_eq!(
            LockState::HolderDead { pid: None }.to_string(),
            "holder_dead"
        );
        assert_eq!(LockState::Free.pid(), None);
    }
}
