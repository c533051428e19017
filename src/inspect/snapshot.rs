//! One look at the machine: `/proc/sysvipc` (or the System V objects the key files name),
//! the key files, `/dev/shm`.

use super::*;

/// One line of `/proc/sysvipc/shm`.
#[derive(Clone, Debug)]
pub(super) struct ShmEntry {
    pub(super) key: i32,
    pub(super) id: i32,
    pub(super) mode: u32,
    pub(super) size: u64,
    pub(super) cpid: u32,
    pub(super) lpid: u32,
    pub(super) nattch: u64,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) ctime: u64,
}

/// One line of `/proc/sysvipc/sem`.
#[derive(Clone, Debug)]
pub(super) struct SemEntry {
    pub(super) key: i32,
    pub(super) id: i32,
    pub(super) mode: u32,
    pub(super) uid: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FileKind {
    /// `qipc_sharedmemory_*` in a temporary directory.
    Segment,
    /// `qipc_systemsem_*` in a temporary directory.
    Semaphore,
    /// Any file in the runtime directory (non-legacy System V keys).
    Runtime,
}

/// A possible key file.
#[derive(Clone, Debug)]
pub(super) struct KeyFile {
    pub(super) path: PathBuf,
    /// `(st_dev & 0xff) << 16 | (st_ino & 0xffff)`: `ftok`'s key without the project id.
    pub(super) key24: i32,
    pub(super) kind: FileKind,
    pub(super) modified: Option<SystemTime>,
}

pub(super) struct Snapshot {
    pub(super) shms: Vec<ShmEntry>,
    pub(super) sems: Vec<SemEntry>,
    pub(super) files: Vec<KeyFile>,
    /// The regular files of `/dev/shm`, by name (bytes: a name need not be UTF-8).
    pub(super) dev_shm: HashMap<OsString, fs::Metadata>,
    pub(super) users: std::cell::OnceCell<Users>,
}

impl Snapshot {
    pub(super) fn take() -> Result<Snapshot> {
        let files = key_files();
        let (shms, sems) = sysv_objects(&files)?;
        let mut dev_shm = HashMap::new();
        // Where POSIX keys take the portable backend (macOS, iOS, FreeBSD, the portable
        // mode) there is no directory of POSIX objects to read.
        if cfg!(not(qshm_posix_portable)) {
            if let Ok(dir) = fs::read_dir(DEV_SHM) {
                for entry in dir.flatten() {
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_file() {
                        dev_shm.insert(entry.file_name(), meta);
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

    /// The segment with System V key `key`: in the snapshot, or (where the snapshot lists
    /// only what the key files found, [`sysv_objects`]) looked up by key.
    pub(super) fn shm_with_key(&self, key: i32) -> Option<ShmEntry> {
        if let Some(shm) = self.shms.iter().find(|s| s.key == key) {
            return Some(shm.clone());
        }
        #[cfg(all(qshm_portable, any(qshm_linux, qshm_sysv_only)))]
        return shm_by_key(key);
        #[cfg(not(all(qshm_portable, any(qshm_linux, qshm_sysv_only))))]
        None
    }

    /// The semaphore set with System V key `key`, as [`Snapshot::shm_with_key`].
    pub(super) fn sem_with_key(&self, key: i32) -> Option<SemEntry> {
        if let Some(sem) = self.sems.iter().find(|s| s.key == key) {
            return Some(sem.clone());
        }
        #[cfg(all(qshm_portable, any(qshm_linux, qshm_sysv_only)))]
        return sem_by_key(key);
        #[cfg(not(all(qshm_portable, any(qshm_linux, qshm_sysv_only))))]
        None
    }

    /// The key file whose ftok key (any project id) is `key`.
    pub(super) fn file_for(&self, key: i32) -> Option<&KeyFile> {
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
}

pub(super) fn key24(meta: &fs::Metadata) -> i32 {
    (((meta.dev() & 0xff) << 16) | (meta.ino() & 0xffff)) as i32
}

/// The directories Qt keeps key files in: `$TMPDIR` (Qt 6.9+ and Qt 5.15–6.8 rules), `/tmp`
/// and the runtime directory.
pub(super) fn key_files() -> Vec<KeyFile> {
    let mut dirs: Vec<(String, bool)> = vec![
        (temp_dir(TempDirStyle::Current), false),
        (temp_dir(TempDirStyle::Canonical), false),
        ("/tmp".to_owned(), false),
        (crate::key::runtime_dir(), true),
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
            let name = name.as_bytes();
            let kind = if name.starts_with(SHM_PREFIX.as_bytes()) {
                FileKind::Segment
            } else if name.starts_with(SEM_PREFIX.as_bytes()) {
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

/// Every System V segment and semaphore set: the tables of `/proc/sysvipc` (Linux).
#[cfg(all(qshm_linux, not(qshm_portable)))]
fn sysv_objects(_: &[KeyFile]) -> Result<(Vec<ShmEntry>, Vec<SemEntry>)> {
    let shms = read_proc("/proc/sysvipc/shm")?
        .iter()
        .filter_map(|f| parse_shm(f))
        .collect();
    let sems = read_proc("/proc/sysvipc/sem")?
        .iter()
        .filter_map(|f| parse_sem(f))
        .collect();
    Ok((shms, sems))
}

/// The System V segments and semaphore sets that the key files name, where the system has
/// no table to read (macOS and FreeBSD, whose `ipcs` asks `sysctl`s of their own; the
/// portable mode does as they do): each key file's `ftok` keys, with every project id (Qt's
/// legacy keys use `'Q'`, non-legacy ones any), looked up with `shmget` and `semget`: 510
/// system calls a key file. A segment whose key file is gone is not found this way.
#[cfg(all(qshm_portable, any(qshm_linux, qshm_sysv_only)))]
fn sysv_objects(files: &[KeyFile]) -> Result<(Vec<ShmEntry>, Vec<SemEntry>)> {
    let mut shms: Vec<ShmEntry> = Vec::new();
    let mut sems: Vec<SemEntry> = Vec::new();
    for file in files {
        for proj in 1..=u8::MAX {
            let key = (i32::from(proj) << 24) | file.key24;
            if !shms.iter().any(|s| s.key == key) {
                shms.extend(shm_by_key(key));
            }
            if !sems.iter().any(|s| s.key == key) {
                sems.extend(sem_by_key(key));
            }
        }
    }
    Ok((shms, sems))
}

/// No System V here (iOS, other Unix).
#[cfg(not(any(qshm_linux, qshm_sysv_only)))]
fn sysv_objects(_: &[KeyFile]) -> Result<(Vec<ShmEntry>, Vec<SemEntry>)> {
    Err(
        Error::new(ErrorKind::Unsupported, Operation::Inspect, String::new())
            .with_detail("no System V objects to inspect on this platform"),
    )
}

/// The segment with key `key` (`shmget` and `shmctl(IPC_STAT)`), if there is one.
#[cfg(all(qshm_portable, any(qshm_linux, qshm_sysv_only)))]
fn shm_by_key(key: i32) -> Option<ShmEntry> {
    let id = os::shm_id(key).ok()?;
    let st = os::shm_stat(id).ok()?;
    Some(ShmEntry {
        key,
        id,
        mode: st.mode,
        size: st.size,
        cpid: st.cpid,
        lpid: st.lpid,
        nattch: st.nattch,
        uid: st.uid,
        gid: st.gid,
        ctime: st.ctime,
    })
}

/// The semaphore set with key `key` (`semget` and `semctl(IPC_STAT)`), if there is one.
#[cfg(all(qshm_portable, any(qshm_linux, qshm_sysv_only)))]
fn sem_by_key(key: i32) -> Option<SemEntry> {
    let id = os::sem_id(key).ok()?;
    let (uid, mode) = os::sem_owner_and_mode(id).ok()?;
    Some(SemEntry { key, id, mode, uid })
}

/// The data lines of a `/proc/sysvipc` table, split into fields.
#[cfg_attr(any(qshm_portable, not(qshm_linux)), allow(dead_code))] // `sysv_objects`
pub(super) fn read_proc(path: &str) -> Result<Vec<Vec<String>>> {
    let text = fs::read_to_string(path).map_err(|e| {
        let err = match e.raw_os_error() {
            Some(errno) if e.kind() != io::ErrorKind::NotFound => {
                crate::sys::os_error(errno, Operation::Inspect, path)
            }
            _ => Error::new(ErrorKind::Unsupported, Operation::Inspect, path),
        };
        err.with_detail(format!("cannot read {path}"))
    })?;
    Ok(text
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect())
}
