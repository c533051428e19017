//! System V segments and their locks, from a snapshot.

use super::*;

impl Snapshot {
    /// The names of a System V segment, `None` when it is not a Qt or qshm segment.
    pub(super) fn sysv_names(&self, shm: &ShmEntry) -> Option<SysvNames> {
        if shm.key == 0 {
            return None; // IPC_PRIVATE, or removed and waiting for its last detach
        }
        match self.file_for(shm.key) {
            Some(f) if f.kind != FileKind::Semaphore => Some(self.sysv_names_of(&f.path, shm.key)),
            Some(_) => None,
            None if (shm.key >> 24) & 0xff == QT_PROJECT_ID => Some(SysvNames::default()),
            None => None,
        }
    }
    /// The names of the segment with key file `path` and key `shm_key`. Its lock is the
    /// semaphore with the same key if one exists (non-legacy keys), else the one of the
    /// `qipc_systemsem_` sibling of a `qipc_sharedmemory_` file, else of the same file.
    pub(super) fn sysv_names_of(&self, path: &Path, shm_key: i32) -> SysvNames {
        let lock_file = match sibling_lock(path) {
            Some(sibling) if self.sem_with_key(shm_key).is_none() => sibling,
            _ => path.to_path_buf(),
        };
        let native = native_of(path, shm_key);
        SysvNames {
            lock: native.as_ref().and_then(|n| {
                let lock = lock_file.to_str()?;
                Some(NativeKey::new(lock, n.key_type()))
            }),
            native,
            key_file: Some(path.to_path_buf()),
            lock_file: Some(lock_file),
        }
    }
    pub(super) fn sysv_info(&self, shm: &ShmEntry, names: SysvNames) -> SegmentInfo {
        let lock_state = match &names.lock_file {
            Some(lock) => match os::ftok(lock, project_of(shm.key)) {
                Ok(k) => match self.sem_with_key(k) {
                    Some(sem) => sysv_lock_state(sem.id),
                    None => LockState::Absent,
                },
                Err(_) => LockState::Absent,
            },
            None => LockState::Unknown,
        };
        let SysvNames {
            native,
            lock,
            key_file,
            lock_file: _,
        } = names;
        let creator_alive = process_alive(shm.cpid);
        SegmentInfo {
            backend: Backend::SystemV,
            native_key: native,
            qt_key: None,
            lock_key: lock,
            id: Some(shm.id),
            sysv_key: Some(shm.key),
            path: None,
            lock_path: None,
            key_file,
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
            // 0: not known (macOS, `sys/unix/inspect.rs`).
            changed: (shm.ctime != 0)
                .then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(shm.ctime)),
        }
    }
}

/// What a System V segment and its lock are called: native keys where the key files' names
/// are UTF-8, and the key files in any case (all `None`: the key file is gone).
#[derive(Debug, Default)]
pub(super) struct SysvNames {
    pub(super) native: Option<NativeKey>,
    pub(super) lock: Option<NativeKey>,
    pub(super) key_file: Option<PathBuf>,
    /// The key file of the lock semaphore.
    pub(super) lock_file: Option<PathBuf>,
}

pub(super) fn sysv_lock_state(semid: i32) -> LockState {
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
pub(super) fn project_of(key: i32) -> u8 {
    ((key >> 24) & 0xff) as u8
}

/// The native key of the key file `path` for a System V key (its project id gives the
/// type); `None` when the path is not UTF-8 (a native key is text).
pub(super) fn native_of(path: &Path, key: i32) -> Option<NativeKey> {
    let key_type = KeyType::from_raw(u16::from(project_of(key)))
        .filter(|t| t.is_system_v())
        .unwrap_or(KeyType::SystemV);
    Some(NativeKey::new(path.to_str()?, key_type))
}

/// `…/qipc_systemsem_<x>` for `…/qipc_sharedmemory_<x>`.
pub(super) fn sibling_lock(path: &Path) -> Option<PathBuf> {
    let rest = strip_name_prefix(path.file_name()?, SHM_PREFIX)?;
    Some(path.with_file_name(join_name(SEM_PREFIX, rest)))
}

#[cfg_attr(any(qshm_portable, not(qshm_linux)), allow(dead_code))] // `sysv_objects`
pub(super) fn parse_shm(f: &[String]) -> Option<ShmEntry> {
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

#[cfg_attr(any(qshm_portable, not(qshm_linux)), allow(dead_code))] // `sysv_objects`
pub(super) fn parse_sem(f: &[String]) -> Option<SemEntry> {
    // key semid perms nsems uid gid cuid cgid otime ctime
    Some(SemEntry {
        key: f.first()?.parse().ok()?,
        id: f.get(1)?.parse().ok()?,
        mode: u32::from_str_radix(f.get(2)?, 8).ok()? & 0o777,
        uid: f.get(4)?.parse().ok()?,
    })
}
