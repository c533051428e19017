//! qshm's mapped segments (`qshm::mapped`, `include/qshm.h`): files in /dev/shm and
//! `$XDG_RUNTIME_DIR` that begin with qshm's header, for `list` and `info --mapped`.
//!
//! Read-only and without mapping anything: the header is read with `pread`, the users are
//! the shared `flock`s that `/proc/locks` lists for the file, and the lock's holder is judged
//! as `include/qshm.h` says (a qshm process by its liveness byte lock, which `/proc/locks`
//! shows as an OFD lock; a C program by its thread in `/proc`, only in the creator's PID
//! namespace). Nothing here takes a lock: taking even the `flock` for an instant could make
//! a concurrent last detach believe it is not the last. Files that are Qt's or qshm's POSIX
//! segments are not opened at all (their last detach asks, by a lease, whether anyone else
//! has them open); other files are opened read-only and non-blocking, for the header alone.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use qshm::inspect;

use super::printable;
use crate::json::Obj;

/// The header's layout (include/qshm.h, versions 2 and 3, which differ only by the change
/// counter after these fields): the fields read here.
const MAGIC: &[u8; 8] = b"QSHM\0SEG";
const VERSIONS: std::ops::RangeInclusive<u32> = 2..=3;
const BYTE_ORDER: u32 = 0x0102_0304;
const HEADER_LEN: usize = 88;
const FLAG_REMOVE_ON_LAST_DETACH: u32 = 1;
const STATE_INCONSISTENT: u32 = 1;
const LOCK_TID_MASK: u64 = 0x3fff_ffff;
const LOCK_TOKEN: u64 = 1 << 63;
const LOCK_TAG_MASK: u64 = 0x7fff_ffff;
const SLOT_BASE: u64 = 1 << 20;
const SLOTS: u64 = 1 << 30;

/// One mapped segment file.
#[derive(Debug)]
pub(crate) struct Mapped {
    pub(crate) path: PathBuf,
    meta: fs::Metadata,
    header_size: u32,
    data_size: u64,
    flags: u32,
    pid_ns: u64,
    state: u32,
    generation: u64,
    /// Processes attached: shared `flock`s on the file.
    pub(crate) users: usize,
    pub(crate) lock: LockState,
}

/// The state of the lock inside the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockState {
    Free,
    /// Held by this thread id, alive (or not judgeable from here: another PID namespace).
    Held(u32),
    /// Held by a thread that is gone: the next locker takes it over.
    HolderDead(u32),
}

impl LockState {
    fn name(self) -> &'static str {
        match self {
            LockState::Free => "free",
            LockState::Held(_) => "held",
            LockState::HolderDead(_) => "holder_dead",
        }
    }

    fn tid(self) -> Option<u32> {
        match self {
            LockState::Free => None,
            LockState::Held(t) | LockState::HolderDead(t) => Some(t),
        }
    }

    fn text(self) -> String {
        match self {
            LockState::Free => "free".to_owned(),
            LockState::Held(t) => format!("held by tid {t}"),
            LockState::HolderDead(t) => format!("holder dead (tid {t})"),
        }
    }
}

/// The directories mapped segments live in: /dev/shm and `$XDG_RUNTIME_DIR`.
fn dirs() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/dev/shm")];
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        if d.is_absolute() && !v.contains(&d) {
            v.push(d);
        }
    }
    v
}

/// Every mapped segment in those directories, by path.
pub(crate) fn scan() -> Vec<Mapped> {
    let locks = fs::read("/proc/locks").unwrap_or_default();
    let mut all = Vec::new();
    for dir in dirs() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let names: Vec<std::ffi::OsString> = entries.flatten().map(|e| e.file_name()).collect();
        let has = |n: &[u8]| names.iter().any(|o| o.as_bytes() == n);
        for name in &names {
            // Not Qt's or qshm's POSIX segments and locks (`sem.*`, files with a `sem.`
            // twin, `qipc_*`): `list` shows them already, and opening one, even for an
            // instant, would make a concurrent last detach (whose lease asks whether anyone
            // else has it open) keep it.
            let b = name.as_bytes();
            if b.starts_with(b"sem.") || b.starts_with(b"qipc_") || has(&[b"sem.", b].concat()) {
                continue;
            }
            if let Some(m) = read(&dir.join(name), &locks) {
                all.push(m);
            }
        }
    }
    all.sort_by(|a, b| a.path.cmp(&b.path));
    all
}

/// The mapped segment at `path`, or `None` when it is not one (or cannot be read).
pub(crate) fn read_path(path: &Path) -> Option<Mapped> {
    read(path, &fs::read("/proc/locks").unwrap_or_default())
}

fn read(path: &Path, locks: &[u8]) -> Option<Mapped> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() || meta.len() < HEADER_LEN as u64 {
        return None;
    }
    // Not following a link, and never blocking (whatever replaced the file meanwhile).
    let file = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    let mut h = [0u8; HEADER_LEN];
    file.read_exact_at(&mut h, 0).ok()?;
    let u32_at = |o: usize| u32::from_ne_bytes(h[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_ne_bytes(h[o..o + 8].try_into().unwrap());
    if &h[..8] != MAGIC || !VERSIONS.contains(&u32_at(8)) || u32_at(28) != BYTE_ORDER {
        return None;
    }
    let meta = file.metadata().ok()?;
    let id = FileKey::of(&meta);
    let pid_ns = u64_at(32);
    let word = u64_at(64);
    Some(Mapped {
        path: path.to_path_buf(),
        header_size: u32_at(12),
        data_size: u64_at(16),
        flags: u32_at(24),
        pid_ns,
        state: u32_at(72),
        generation: u64_at(80),
        users: id.flocks(locks),
        lock: lock_state(word, pid_ns, &id, locks),
        meta,
    })
}

/// A file as `/proc/locks` names it: `MAJOR:MINOR:INODE`, in hexadecimal device numbers.
struct FileKey(String);

impl FileKey {
    fn of(meta: &fs::Metadata) -> FileKey {
        let dev = meta.dev();
        // glibc's gnu_dev_major / gnu_dev_minor.
        let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
        let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
        FileKey(format!("{major:02x}:{minor:02x}:{}", meta.ino()))
    }

    /// The `/proc/locks` lines about this file, split in fields.
    fn lines<'a>(&'a self, locks: &'a [u8]) -> impl Iterator<Item = Vec<&'a str>> + 'a {
        std::str::from_utf8(locks)
            .unwrap_or("")
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            // `N: TYPE ADVISORY MODE PID DEV:INODE START END`; a blocked waiter has `->`.
            .filter(move |f| f.len() >= 8 && f[1] != "->" && f[5] == self.0)
    }

    fn flocks(&self, locks: &[u8]) -> usize {
        self.lines(locks).filter(|f| f[1] == "FLOCK").count()
    }

    /// Whether some open file description holds a lock on byte `at` (a qshm process's
    /// liveness slot).
    fn byte_locked(&self, locks: &[u8], at: u64) -> bool {
        // Byte-range locks only (a liveness slot is an OFD lock): a `flock` covers the whole
        // file and says nothing about a byte.
        self.lines(locks).filter(|f| f[1] != "FLOCK").any(|f| {
            let start = f[6].parse::<u64>().ok();
            let end = if f[7] == "EOF" {
                Some(u64::MAX)
            } else {
                f[7].parse::<u64>().ok()
            };
            matches!((start, end), (Some(s), Some(e)) if s <= at && at <= e)
        })
    }
}

/// The lock's state from its word (include/qshm.h, "Whether an owner is dead").
fn lock_state(word: u64, pid_ns: u64, id: &FileKey, locks: &[u8]) -> LockState {
    let tid = (word & LOCK_TID_MASK) as u32;
    if tid == 0 {
        return LockState::Free;
    }
    if word & LOCK_TOKEN != 0 {
        let slot = (word >> 32) & LOCK_TAG_MASK;
        return if id.byte_locked(locks, SLOT_BASE + slot % SLOTS) {
            LockState::Held(tid)
        } else {
            LockState::HolderDead(tid)
        };
    }
    // A C program's thread: judged only in the creator's PID namespace.
    let ours = fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).ok();
    if pid_ns == 0 || ours != Some(pid_ns) {
        return LockState::Held(tid);
    }
    let tag = ((word >> 32) & LOCK_TAG_MASK) as u32;
    match fs::read(format!("/proc/{tid}/task/{tid}/stat")) {
        Ok(stat) => {
            // After the command's closing parenthesis: state, then fields 4…; the start
            // time is field 22.
            let text = String::from_utf8_lossy(&stat);
            let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let state = fields.first().copied().unwrap_or("");
            let start = fields
                .get(19)
                .and_then(|s| s.parse::<u64>().ok())
                .map(|s| (s & LOCK_TAG_MASK) as u32);
            let dead = matches!(state, "Z" | "X" | "x") || (tag != 0 && start != Some(tag));
            if dead {
                LockState::HolderDead(tid)
            } else {
                LockState::Held(tid)
            }
        }
        Err(_) if Path::new(&format!("/proc/{tid}")).exists() => LockState::Held(tid),
        Err(_) => LockState::HolderDead(tid),
    }
}

impl Mapped {
    /// A temporary segment (removed by its last detach) that nobody is attached to: left
    /// by a crash. A named file with no user is not an orphan: it waits for its next user.
    fn orphaned(&self) -> bool {
        self.users == 0 && self.flags & FLAG_REMOVE_ON_LAST_DETACH != 0
    }

    /// Whether the creator's PID namespace is ours: C programs' locks are judged only there.
    fn namespace_text(&self) -> String {
        let ours = fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).ok();
        match (self.pid_ns, ours) {
            (0, _) => "PID namespace unknown".to_owned(),
            (ns, Some(o)) if ns == o => format!("in this PID namespace (pid:[{ns}])"),
            (ns, _) => format!(
                "in another PID namespace (pid:[{ns}]): a C program's lock is taken for \
                 alive from here"
            ),
        }
    }

    fn path_text(&self) -> String {
        printable(&inspect::escape_name(self.path.as_os_str()))
    }

    fn matches(&self, filter: &str) -> bool {
        let name = self.path.as_os_str().as_bytes();
        name.windows(filter.len().max(1))
            .any(|w| w == filter.as_bytes())
    }

    /// The row of `list`'s table (its columns: BACKEND ID SIZE NATTCH CPID LPID UID MODE
    /// LOCK ORPHAN KEY).
    pub(crate) fn row(&self) -> Vec<String> {
        vec![
            "mapped".to_owned(),
            "-".to_owned(),
            self.data_size.to_string(),
            self.users.to_string(),
            "-".to_owned(),
            "-".to_owned(),
            self.meta.uid().to_string(),
            format!("{:04o}", self.meta.mode() & 0o7777),
            self.lock.text(),
            if self.orphaned() { "yes" } else { "no" }.to_owned(),
            self.path_text(),
        ]
    }

    /// `info --mapped`: one field a line.
    pub(crate) fn text(&self) -> String {
        let lines = [
            ("backend", "mapped (qshm header, include/qshm.h)".to_owned()),
            ("file", self.path_text()),
            (
                "size",
                format!(
                    "{} bytes of data after a {}-byte header ({} bytes in all)",
                    self.data_size,
                    self.header_size,
                    self.meta.len()
                ),
            ),
            ("attached", format!("{} process(es)", self.users)),
            (
                "owner",
                format!(
                    "uid {}, gid {}, mode {:04o}",
                    self.meta.uid(),
                    self.meta.gid(),
                    self.meta.mode() & 0o7777
                ),
            ),
            ("lock", self.lock.text()),
            (
                "consistent",
                if self.state & STATE_INCONSISTENT != 0 {
                    "no: a holder died and nobody marked the data consistent since".to_owned()
                } else {
                    "yes".to_owned()
                },
            ),
            ("take-overs", self.generation.to_string()),
            ("creator", self.namespace_text()),
            (
                "last detach",
                if self.flags & FLAG_REMOVE_ON_LAST_DETACH != 0 {
                    "removes the file"
                } else {
                    "keeps the file"
                }
                .to_owned(),
            ),
            (
                "orphaned",
                if self.orphaned() { "yes" } else { "no" }.to_owned(),
            ),
        ];
        lines
            .iter()
            .map(|(k, v)| format!("{k:<12} {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The JSON object (`list` and `info`; docs/cli.md).
    pub(crate) fn json(&self, verb: &str) -> Obj {
        Obj::new(verb)
            .str("backend", "mapped")
            .null("native_key")
            .file("path", Some(&self.path))
            .num("size", self.data_size)
            .num("header_size", self.header_size)
            .num("file_size", self.meta.len())
            .num("attach_count", self.users as u64)
            .num("uid", self.meta.uid())
            .num("gid", self.meta.gid())
            .str("mode", &format!("{:04o}", self.meta.mode() & 0o7777))
            .str("lock_state", self.lock.name())
            .opt_num("lock_tid", self.lock.tid())
            .bool("consistent", self.state & STATE_INCONSISTENT == 0)
            .num("generation", self.generation)
            .num("creator_pid_ns", self.pid_ns)
            .bool(
                "remove_on_last_detach",
                self.flags & FLAG_REMOVE_ON_LAST_DETACH != 0,
            )
            .bool("orphaned", self.orphaned())
    }
}

/// The mapped segments `list` shows: every one, or those whose path contains `filter`.
pub(crate) fn list(filter: Option<&str>) -> Vec<Mapped> {
    let mut all = scan();
    if let Some(f) = filter {
        all.retain(|m| m.matches(f));
    }
    all
}
