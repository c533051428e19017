//! System V segments and their locks, from a snapshot.

use super::*;

impl Snapshot {
    /// The native key and lock key of a System V segment, `None` when it is not a Qt or
    /// qshm segment.
    pub(super) fn sysv_names(
        &self,
        shm: &ShmEntry,
    ) -> Option<(Option<NativeKey>, Option<NativeKey>)> {
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
    pub(super) fn sysv_lock_key(&self, path: &Path, shm_key: i32, key_type: KeyType) -> NativeKey {
        let same = NativeKey::new(path.to_string_lossy(), key_type);
        if self.sems.iter().any(|s| s.key == shm_key) {
            return same;
        }
        match sibling_lock(path) {
            Some(sibling) => NativeKey::new(sibling.to_string_lossy(), key_type),
            None => same,
        }
    }
    pub(super) fn sysv_info(
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
/// type).
pub(super) fn native_of(path: &Path, key: i32) -> NativeKey {
    let key_type = KeyType::from_raw(u16::from(project_of(key)))
        .filter(|t| t.is_system_v())
        .unwrap_or(KeyType::SystemV);
    NativeKey::new(path.to_string_lossy(), key_type)
}

/// `…/qipc_systemsem_<x>` for `…/qipc_sharedmemory_<x>`.
pub(super) fn sibling_lock(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix(SHM_PREFIX)?;
    Some(path.with_file_name(format!("{SEM_PREFIX}{rest}")))
}

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

pub(super) fn parse_sem(f: &[String]) -> Option<SemEntry> {
    // key semid perms nsems uid gid cuid cgid otime ctime
    Some(SemEntry {
        key: f.first()?.parse().ok()?,
        id: f.get(1)?.parse().ok()?,
        mode: u32::from_str_radix(f.get(2)?, 8).ok()? & 0o777,
        uid: f.get(4)?.parse().ok()?,
    })
}
