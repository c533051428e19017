//! One look at the machine: `/proc/sysvipc`, the key files, `/dev/shm`.

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
                    dev_shm.insert(entry.file_name(), meta);
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

/// The data lines of a `/proc/sysvipc` table, split into fields.
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
