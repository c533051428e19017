//! POSIX segments and their locks, from a snapshot, and who uses which file.

use super::*;

impl Snapshot {
    /// The Qt-named POSIX segments: `qipc_sharedmemory_*` files, and files with a
    /// `sem.<name>` beside them (names compared as bytes: they need not be UTF-8).
    pub(super) fn posix_segments(&self) -> Vec<(OsString, fs::Metadata)> {
        let mut v: Vec<(OsString, fs::Metadata)> = self
            .dev_shm
            .iter()
            .filter(|(name, _)| {
                let bytes = name.as_bytes();
                !bytes.starts_with(b"sem.")
                    && (bytes.starts_with(SHM_PREFIX.as_bytes())
                        || self.dev_shm.contains_key(&join_name("sem.", name)))
            })
            .map(|(n, m)| (n.clone(), m.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
    pub(super) fn users(&self) -> &Users {
        self.users.get_or_init(process_users)
    }
    pub(super) fn users_of(&self, meta: &fs::Metadata) -> usize {
        self.users().of(meta)
    }
    /// Whether no process uses `path`, for certain: nobody maps or holds it open among the
    /// processes this one can see, and those it cannot see (other users', when not root)
    /// could not open it either (it is this user's, with no group or other permission).
    pub(super) fn surely_unused(&self, meta: &fs::Metadata) -> bool {
        let users = self.users();
        users.of(meta) == 0
            && (users.complete || (meta.uid() == crate::sys::euid() && meta.mode() & 0o077 == 0))
    }
    pub(super) fn posix_info(
        &self,
        path: &Path,
        meta: &fs::Metadata,
        names: PosixNames,
    ) -> SegmentInfo {
        let attach_count = self.users_of(meta) as u64;
        let orphaned = self.surely_unused(meta);
        let lock_state = match &names.lock_path {
            Some(sem) if sem.exists() => self.posix_lock_state(sem),
            _ => LockState::Absent,
        };
        SegmentInfo {
            backend: Backend::Posix,
            native_key: names.native,
            qt_key: None,
            lock_key: names.lock,
            id: None,
            sysv_key: None,
            path: Some(path.to_path_buf()),
            lock_path: names.lock_path,
            key_file: None,
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
    /// owner record qshm's POSIX backend keeps beside it (a liveness slot the kernel vouches
    /// for, and the holder's pid as a hint). A held semaphore with a record names its
    /// holder, alive or dead; one without (a Qt holder)
    /// has a dead holder when no process maps it any more.
    /// The record's layout and its liveness test are the backend's own
    /// (`sys/unix/posix/owner.rs`).
    pub(super) fn posix_lock_state(&self, sem: &Path) -> LockState {
        let Some(state) = os::posix_sem_state(sem) else {
            return LockState::Unknown;
        };
        if state.value > 0 {
            return LockState::Free;
        }
        let pid = state.owner_pid;
        if pid != 0 {
            return if state.owner_alive {
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

/// What a POSIX segment and its lock are called: native keys where the names are UTF-8, and
/// the lock semaphore's file in any case.
#[derive(Debug)]
pub(super) struct PosixNames {
    pub(super) native: Option<NativeKey>,
    pub(super) lock: Option<NativeKey>,
    pub(super) lock_path: Option<PathBuf>,
}

/// The names of the POSIX segment `/dev/shm/<name>` (no Qt key known): its lock is
/// `sem.qipc_systemsem_<x>` for a `qipc_sharedmemory_<x>`, else `sem.<name>` (see
/// [`posix_lock_key`]).
pub(super) fn posix_names(name: &OsStr) -> PosixNames {
    let lock_name = match strip_name_prefix(name, SHM_PREFIX) {
        Some(rest) => join_name(SEM_PREFIX, rest),
        None => name.to_owned(),
    };
    let native = name
        .to_str()
        .map(|n| NativeKey::new(format!("/{n}"), KeyType::PosixRealtime));
    PosixNames {
        lock: native.as_ref().map(|n| posix_lock_key(n.native_key())),
        native,
        lock_path: Some(Path::new(DEV_SHM).join(join_name("sem.", &lock_name))),
    }
}

/// The lock of a POSIX segment without a Qt key: `/qipc_systemsem_<x>` for a
/// `/qipc_sharedmemory_<x>`, else the same name (non-legacy keys).
pub(super) fn posix_lock_key(native: &str) -> NativeKey {
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
pub(super) fn posix_path(native: &str, prefix: &str) -> Option<PathBuf> {
    let name = native.strip_prefix('/').unwrap_or(native);
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return None;
    }
    Some(Path::new(DEV_SHM).join(format!("{prefix}{name}")))
}

/// Which processes map or hold open each file under `/dev/shm`, by device and inode (a
/// file made unnamed and linked into place later shows under another path in the maps and
/// descriptors of its creator).
#[derive(Debug, Default)]
pub(super) struct Users {
    pub(super) by_file: HashMap<FileId, HashSet<u32>>,
    /// Every process's maps and descriptors could be read.
    pub(super) complete: bool,
}

impl Users {
    pub(super) fn of(&self, meta: &fs::Metadata) -> usize {
        self.by_file.get(&FileId::of(meta)).map_or(0, HashSet::len)
    }

    /// As `of`, for the file `path` names now (none: no users).
    pub(super) fn of_path(&self, path: &Path) -> usize {
        fs::metadata(path).map_or(0, |meta| self.of(&meta))
    }
}

/// Reads `/proc/<pid>/maps` and `/proc/<pid>/fd` of every process.
pub(super) fn process_users() -> Users {
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
        // As bytes: a mapped file's name need not be UTF-8.
        match fs::read(entry.path().join("maps")) {
            Ok(maps) => {
                let maps = String::from_utf8_lossy(&maps);
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
