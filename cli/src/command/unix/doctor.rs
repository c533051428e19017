//! `qshm doctor`: what this machine and this container allow, and why an attach or create
//! would fail here. Every finding says what was seen, what it means for Qt's and qshm's
//! segments, and the fix.
//!
//! Read-only: it reads /proc, statvfs(/dev/shm) and the environment, and creates nothing.
//! What it reads is this process's view: /proc/sysvipc and the System V limits are those of
//! its IPC namespace, /dev/shm is the one its mount namespace has.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use qshm::{KeyType, NativeKey, TempDirStyle};

use super::printable;
use crate::command::{Ctx, Outcome};
use crate::json::Obj;
use crate::Failure;

/// The kernel's inode numbers of the initial (host) namespaces (include/linux/proc_ns.h:
/// PROC_IPC_INIT_INO, PROC_PID_INIT_INO): a process in another one is in a container or an
/// `unshare`.
const INIT_IPC_NS: u64 = 0xEFFF_FFFF;
const INIT_PID_NS: u64 = 0xEFFF_FFFC;

/// Below this much free space /dev/shm is full: a segment of a few pages cannot be made.
const SHM_FULL: u64 = 64 * 1024;

/// Docker's default /dev/shm size.
const DOCKER_DEFAULT_SHM: u64 = 64 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Ok,
    Note,
    Warning,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// A value seen, for `--json`.
#[derive(Debug)]
enum Fact {
    Num(u64),
    Str(String),
    Bool(bool),
    Null,
}

/// One finding.
#[derive(Debug)]
struct Finding {
    check: &'static str,
    level: Level,
    /// What was seen, one line.
    summary: String,
    /// What it means for Qt's and qshm's segments.
    why: String,
    /// How to fix it, when something is wrong or limiting.
    fix: Option<String>,
    facts: Vec<(&'static str, Fact)>,
}

impl Finding {
    fn new(check: &'static str, level: Level, summary: impl Into<String>) -> Finding {
        Finding {
            check,
            level,
            summary: summary.into(),
            why: String::new(),
            fix: None,
            facts: Vec::new(),
        }
    }
    fn why(mut self, why: impl Into<String>) -> Finding {
        self.why = why.into();
        self
    }
    fn fix(mut self, fix: impl Into<String>) -> Finding {
        self.fix = Some(fix.into());
        self
    }
    fn fact(mut self, key: &'static str, value: Fact) -> Finding {
        self.facts.push((key, value));
        self
    }

    fn json(&self) -> Obj {
        let mut o = Obj::new("doctor")
            .str("check", self.check)
            .str("level", self.level.name())
            .str("summary", &self.summary)
            .str("why", &self.why)
            .opt_str("fix", self.fix.as_deref());
        for (k, v) in &self.facts {
            o = match v {
                Fact::Num(n) => o.num(k, *n),
                Fact::Str(s) => o.str(k, s),
                Fact::Bool(b) => o.bool(k, *b),
                Fact::Null => o.null(k),
            };
        }
        o
    }

    fn text(&self) -> String {
        let mut s = format!(
            "[{:<7}] {}: {}",
            self.level.name(),
            self.check,
            printable(&self.summary)
        );
        if !self.why.is_empty() && self.level != Level::Ok {
            s.push_str(&format!("\n          why: {}", printable(&self.why)));
        }
        if let Some(fix) = &self.fix {
            s.push_str(&format!("\n          fix: {}", printable(fix)));
        }
        s
    }
}

pub(crate) fn run(ctx: &Ctx<'_>) -> Outcome {
    let mut findings = vec![dev_shm()];
    findings.extend(sysv());
    findings.extend(namespaces());
    findings.push(protected_regular());
    findings.extend(directories());
    findings.extend(confinement());
    for f in &findings {
        ctx.emit(|| f.text(), || f.json());
    }
    let errors = findings.iter().filter(|f| f.level == Level::Error).count();
    if !ctx.json() {
        let warnings = findings
            .iter()
            .filter(|f| f.level == Level::Warning)
            .count();
        println!(
            "{errors} error(s), {warnings} warning(s){}",
            if errors > 0 {
                ": an attach or create can fail here (see the fixes above)"
            } else {
                ""
            }
        );
    }
    if errors > 0 {
        return Err(Failure::silent(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn read_trim(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// The mount options of the file system mounted last (on top) at `point`, from
/// /proc/self/mountinfo: (type, per-mount options, super-block options).
fn mount_of(point: &str) -> Option<(String, String, String)> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .rev()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            (l.get(4) == Some(&point)).then(|| {
                (
                    r.first().copied().unwrap_or("").to_owned(),
                    l.get(5).copied().unwrap_or("").to_owned(),
                    r.get(2).copied().unwrap_or("").to_owned(),
                )
            })
        })
        .next()
}

const SHM_FIX: &str = "docker run --shm-size=256m (Docker's default is 64 MiB); Kubernetes: an \
                       emptyDir volume with medium: Memory mounted at /dev/shm; on a host: \
                       mount -o remount,size=50% /dev/shm; or remove what is left over there \
                       (qshm clean, qshm list)";

fn dev_shm() -> Finding {
    let check = "dev_shm";
    let why_posix = "POSIX segments (Qt's `posix:` keys, qshm's POSIX backend, qshm::mapped \
                     files) are files in /dev/shm";
    let st = match rustix::fs::statvfs("/dev/shm") {
        Ok(st) => st,
        Err(e) => {
            return Finding::new(
                check,
                Level::Error,
                format!("/dev/shm cannot be used ({e})"),
            )
            .why(format!("{why_posix}: shm_open fails without it"))
            .fix("mount -t tmpfs -o size=256m tmpfs /dev/shm (or docker run --shm-size=256m)")
        }
    };
    let block = st.f_frsize.max(1);
    let size = st.f_blocks.saturating_mul(block);
    let free = st.f_bavail.saturating_mul(block);
    let (fstype, options, super_options) = mount_of("/dev/shm").unwrap_or_default();
    let all_options = match (options.is_empty(), super_options.is_empty()) {
        (true, true) => "?".to_owned(),
        (false, true) => options.clone(),
        (true, false) => super_options.clone(),
        (false, false) => format!("{options} ({super_options})"),
    };
    let read_only = options.split(',').any(|o| o == "ro");
    let summary = format!(
        "{} {}, {} free ({}%), mounted {}",
        if fstype.is_empty() { "?" } else { &fstype },
        mib(size),
        mib(free),
        (free * 100).checked_div(size).unwrap_or(0),
        if all_options == "," {
            "?"
        } else {
            &all_options
        }
    );
    let f = |level| {
        Finding::new(check, level, summary.clone())
            .fact("size_bytes", Fact::Num(size))
            .fact("free_bytes", Fact::Num(free))
            .fact("fs_type", Fact::Str(fstype.clone()))
            .fact("mount_options", Fact::Str(all_options.clone()))
    };
    let writable = fs::metadata("/dev/shm")
        .map(|m| m.mode() & 0o002 != 0 || m.uid() == rustix::process::geteuid().as_raw())
        .unwrap_or(false);
    if read_only {
        return f(Level::Error)
            .why(format!(
                "{why_posix}: a read-only mount refuses every create"
            ))
            .fix("mount -o remount,rw /dev/shm (in a container: do not mount it read-only)");
    }
    if free < SHM_FULL {
        return f(Level::Error)
            .why(format!(
                "{why_posix}: /dev/shm is full, so creating one fails (ENOSPC) or, worse, a \
                 process that touches a page of a segment made sparse dies of SIGBUS \
                 (Qt's QSharedMemory::create does not reserve its pages)"
            ))
            .fix(SHM_FIX);
    }
    if !writable {
        return f(Level::Warning)
            .why(format!("{why_posix}: this user cannot create files there"))
            .fix("chmod 1777 /dev/shm");
    }
    if size <= DOCKER_DEFAULT_SHM {
        return f(Level::Warning)
            .why(format!(
                "{why_posix}: {} in all (Docker's default is 64 MiB) limits every POSIX \
                 segment together",
                mib(size)
            ))
            .fix(SHM_FIX);
    }
    if free < size / 10 {
        return f(Level::Warning)
            .why(format!("{why_posix}: less than a tenth is free"))
            .fix(SHM_FIX);
    }
    if options.split(',').any(|o| o == "noexec") {
        return f(Level::Note).why(format!(
            "{why_posix}; noexec only forbids mapping them executable, which nobody does"
        ));
    }
    f(Level::Ok)
}

/// The rows of a /proc/sysvipc table (the header skipped), split in fields.
fn sysvipc(table: &str) -> Option<Vec<Vec<String>>> {
    let text = fs::read_to_string(format!("/proc/sysvipc/{table}")).ok()?;
    Some(
        text.lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .filter(|f: &Vec<String>| !f.is_empty())
            .collect(),
    )
}

fn sysctl_fix(name: &str, value: &str) -> String {
    format!(
        "sysctl -w kernel.{name}={value} (per IPC namespace: in a container, docker run \
         --sysctl kernel.{name}={value}, or --ipc=host to use the host's); or remove what \
         crashes left: qshm clean, ipcs / ipcrm"
    )
}

fn sysv() -> Vec<Finding> {
    let num = |p: &str| read_trim(p).and_then(|s| s.parse::<u64>().ok());
    let mut out = Vec::new();
    let page = rustix::param::page_size() as u64;
    let segments = sysvipc("shm");
    let sems = sysvipc("sem");
    let why_shm = "System V segments are Qt's default on Linux (QSharedMemory with a Qt key)";

    // shmmni: how many segments.
    match (num("/proc/sys/kernel/shmmni"), &segments) {
        (Some(max), Some(rows)) => {
            let used = rows.len() as u64;
            let base = |level| {
                Finding::new(
                    "shmmni",
                    level,
                    format!("{used} of {max} System V segment ids in use"),
                )
                .fact("limit", Fact::Num(max))
                .fact("used", Fact::Num(used))
            };
            out.push(if used >= max {
                base(Level::Error)
                    .why(format!(
                        "{why_shm}: every id is taken, so creating one fails (shmget: ENOSPC; \
                         Qt: QSharedMemory::OutOfResources)"
                    ))
                    .fix(sysctl_fix("shmmni", &(max * 2).max(4096).to_string()))
            } else if used * 10 >= max * 9 {
                base(Level::Warning)
                    .why(format!("{why_shm}: nearly every id is taken"))
                    .fix(sysctl_fix("shmmni", &(max * 2).max(4096).to_string()))
            } else {
                base(Level::Ok)
            });
        }
        _ => out.push(
            Finding::new("shmmni", Level::Note, "System V limits cannot be read")
                .why("/proc/sys/kernel/shmmni or /proc/sysvipc/shm is not readable here"),
        ),
    }
    // shmall: pages of all segments together.
    if let (Some(max), Some(rows)) = (num("/proc/sys/kernel/shmall"), &segments) {
        let pages: u64 = rows
            .iter()
            .filter_map(|r| r.get(3)?.parse::<u64>().ok())
            .map(|size| size.div_ceil(page))
            .sum();
        let base = |level| {
            Finding::new(
                "shmall",
                level,
                format!(
                    "{pages} of {} pages of System V memory in use",
                    if max > 1 << 50 {
                        "unlimited".to_owned()
                    } else {
                        max.to_string()
                    }
                ),
            )
            .fact("limit", Fact::Num(max))
            .fact("used", Fact::Num(pages))
        };
        out.push(if pages >= max {
            base(Level::Error)
                .why(format!(
                    "{why_shm}: the total is reached, so creating one fails (ENOSPC)"
                ))
                .fix(sysctl_fix("shmall", &(max * 2).to_string()))
        } else {
            base(Level::Ok)
        });
    }
    // shmmax: one segment's size.
    if let Some(max) = num("/proc/sys/kernel/shmmax") {
        let base = |level| {
            Finding::new(
                "shmmax",
                level,
                format!(
                    "a System V segment may have at most {}",
                    if max > 1 << 50 {
                        "any size".to_owned()
                    } else {
                        format!("{max} bytes ({})", mib(max))
                    }
                ),
            )
            .fact("limit", Fact::Num(max))
        };
        out.push(if max < 32 << 20 {
            base(Level::Warning)
                .why(format!(
                    "{why_shm}: a larger one fails to be created (shmget: EINVAL)"
                ))
                .fix(sysctl_fix("shmmax", "68719476736"))
        } else {
            base(Level::Ok)
        });
    }
    // kernel.sem: SEMMSL SEMMNS SEMOPM SEMMNI.
    let sem: Vec<u64> = read_trim("/proc/sys/kernel/sem")
        .map(|s| {
            s.split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if let (Some(&semmsl), Some(&semmni), Some(rows)) = (sem.first(), sem.get(3), &sems) {
        let used = rows.len() as u64;
        let why = "the lock of a System V segment is a System V semaphore set of one \
                   semaphore (Qt's QSystemSemaphore, and qshm's System V lock)";
        let base = |level| {
            Finding::new(
                "semmni",
                level,
                format!("{used} of {semmni} System V semaphore sets in use"),
            )
            .fact("limit", Fact::Num(semmni))
            .fact("used", Fact::Num(used))
        };
        let value = format!(
            "'{} {} {} {}'",
            semmsl,
            sem.get(1).unwrap_or(&32000),
            sem.get(2).unwrap_or(&500),
            (semmni * 2).max(32000)
        );
        out.push(if used >= semmni {
            base(Level::Error)
                .why(format!(
                    "{why}: every id is taken, so a lock cannot be made (semget: ENOSPC; \
                     Qt: LockError)"
                ))
                .fix(sysctl_fix("sem", &value))
        } else if used * 10 >= semmni * 9 {
            base(Level::Warning)
                .why(format!("{why}: nearly every id is taken"))
                .fix(sysctl_fix("sem", &value))
        } else {
            base(Level::Ok)
        });
        let base = |level| {
            Finding::new(
                "semmsl",
                level,
                format!("a semaphore set may have {semmsl} semaphores"),
            )
            .fact("limit", Fact::Num(semmsl))
        };
        out.push(if semmsl < 1 {
            base(Level::Error)
                .why("Qt's and qshm's locks need sets of 1 semaphore")
                .fix(sysctl_fix("sem", &value))
        } else {
            base(Level::Ok)
        });
    }
    out
}

/// The inode of a namespace link (`/proc/PID/ns/NAME`), or `None` when it cannot be read
/// (another user's process without CAP_SYS_PTRACE).
fn ns_inode(pid: &str, name: &str) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/{name}"))
        .ok()
        .map(|m| m.ino())
}

fn namespaces() -> Vec<Finding> {
    let mut out = Vec::new();
    // IPC.
    let ours = ns_inode("self", "ipc");
    let pid1 = ns_inode("1", "ipc");
    let private = ours.is_some_and(|i| i != INIT_IPC_NS);
    let other_than_pid1 = match (ours, pid1) {
        (Some(a), Some(b)) => Some(a != b),
        _ => None,
    };
    let summary = match (private, other_than_pid1) {
        (true, Some(true)) => "a private IPC namespace, not the host's nor PID 1's".to_owned(),
        (true, Some(false)) => {
            "a private IPC namespace (a container's: PID 1 shares it), not the host's".to_owned()
        }
        (true, None) => "a private IPC namespace, not the host's".to_owned(),
        (false, Some(true)) => "the host's IPC namespace, but PID 1 is in another".to_owned(),
        (false, _) => "the host's IPC namespace".to_owned(),
    };
    let mut f = Finding::new(
        "ipc_namespace",
        if private { Level::Note } else { Level::Ok },
        summary,
    )
    .fact("ipc_ns", ours.map_or(Fact::Null, Fact::Num))
    .fact("host", Fact::Bool(!private))
    .fact(
        "same_as_pid1",
        other_than_pid1.map_or(Fact::Null, |o| Fact::Bool(!o)),
    );
    if private || other_than_pid1 == Some(true) {
        f = f
            .why(
                "System V segments and semaphores (Qt's default on Linux) live in an IPC \
                 namespace: a Qt program on the host or in another container, given the same \
                 key, does not see this one's segments and creates its own; and the System V \
                 limits here are this namespace's",
            )
            .fix(
                "share one IPC namespace: docker run --ipc=host, or --ipc=container:NAME \
                 (Kubernetes: hostIPC, or containers of one pod); or use POSIX keys over a \
                 shared /dev/shm mount (-v /dev/shm:/dev/shm)",
            );
    }
    out.push(f);
    // PID.
    let ours = ns_inode("self", "pid");
    let pid1 = ns_inode("1", "pid");
    let private = ours.is_some_and(|i| i != INIT_PID_NS);
    let mut f = Finding::new(
        "pid_namespace",
        if private { Level::Note } else { Level::Ok },
        if private {
            "a private PID namespace, not the host's"
        } else {
            "the host's PID namespace"
        },
    )
    .fact("pid_ns", ours.map_or(Fact::Null, Fact::Num))
    .fact("host", Fact::Bool(!private))
    .fact(
        "same_as_pid1",
        match (ours, pid1) {
            (Some(a), Some(b)) => Fact::Bool(a == b),
            _ => Fact::Null,
        },
    );
    if private {
        f = f
            .why(
                "pids seen here are not those of other namespaces: `qshm info` shows a Qt \
             process elsewhere as a pid that may mean another process here, so creator_alive \
             and orphan marks are judged within this namespace only. Locks still work across \
             it: System V gives a dead holder's lock back (SEM_UNDO) in any namespace, and \
             qshm's own locks use liveness byte locks; but a Qt POSIX lock whose holder died \
             is never given back, wherever it ran",
            )
            .fix(
                "run the peers in one PID namespace (docker run --pid=host or \
             --pid=container:NAME) to judge each other's liveness",
            );
    }
    out.push(f);
    out
}

fn protected_regular() -> Finding {
    match read_trim("/proc/sys/fs/protected_regular").and_then(|s| s.parse::<u64>().ok()) {
        Some(0) => Finding::new("protected_regular", Level::Ok, "fs.protected_regular = 0")
            .fact("value", Fact::Num(0)),
        Some(v) => Finding::new(
            "protected_regular",
            Level::Note,
            format!("fs.protected_regular = {v}"),
        )
        .fact("value", Fact::Num(v))
        .why(
            "in a sticky, world-writable directory (/tmp), opening with O_CREAT a file that \
             another user owns fails with EACCES, even for root: a Qt program whose key file \
             in /tmp was made by another user fails to create its segment. Users who share \
             segments should share a TMPDIR that is not sticky and world-writable",
        )
        .fix(
            "TMPDIR=/some/shared/dir (group-writable, not sticky) for every program of the \
             key; or sysctl -w fs.protected_regular=0",
        ),
        None => Finding::new(
            "protected_regular",
            Level::Ok,
            "fs.protected_regular does not exist here",
        )
        .fact("value", Fact::Null),
    }
}

fn directories() -> Vec<Finding> {
    let mut out = Vec::new();
    let euid = rustix::process::geteuid().as_raw();
    // TMPDIR, as Qt 6.9+ and Qt 5.15–6.8 resolve it: the key files' directory.
    let dir_of = |style| {
        let key = NativeKey::legacy_with_style("x", KeyType::SystemV, style);
        Path::new(key.native_key())
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let current = dir_of(TempDirStyle::Current);
    let canonical = dir_of(TempDirStyle::Canonical);
    let set = std::env::var_os("TMPDIR").map(|v| v.to_string_lossy().into_owned());
    let described = format!(
        "Qt's key files go to {current}{}{}",
        if canonical != current && !canonical.is_empty() {
            format!(" (Qt 5.15-6.8: {canonical})")
        } else {
            String::new()
        },
        match &set {
            Some(v) => format!(", from TMPDIR={v}"),
            None => " (TMPDIR unset)".to_owned(),
        }
    );
    let f = |level, summary: String| {
        Finding::new("tmpdir", level, summary)
            .fact("tmpdir", set.clone().map_or(Fact::Null, Fact::Str))
            .fact("qt_dir", Fact::Str(current.clone()))
            .fact("qt_dir_5_15", Fact::Str(canonical.clone()))
    };
    let why = "Qt's System V keys are files there (ftok of the file): every program that \
               shares a key must resolve the same directory, and creating a segment creates \
               its key file";
    out.push(match fs::metadata(&current) {
        Err(e) => f(
            Level::Error,
            format!("{described}, which cannot be used ({e})"),
        )
        .why(why)
        .fix(format!("mkdir -p {current}, or unset TMPDIR (then /tmp)")),
        Ok(m) if !m.is_dir() => f(
            Level::Error,
            format!("{described}, which is not a directory"),
        )
        .why(why)
        .fix("point TMPDIR at a directory, or unset it"),
        Ok(m) => {
            let writable =
                rustix::fs::access(current.as_str(), rustix::fs::Access::WRITE_OK).is_ok();
            let summary = format!(
                "{described}: owner uid {}, mode {:04o}",
                m.uid(),
                m.mode() & 0o7777
            );
            if writable {
                f(Level::Ok, summary).why(why)
            } else {
                f(
                    Level::Error,
                    format!("{summary}, not writable by this user"),
                )
                .why(why)
                .fix(format!(
                    "chmod 1777 {current}, or set TMPDIR to a writable directory"
                ))
            }
        }
    });
    // XDG_RUNTIME_DIR: Qt's runtime location, and where qshm::mapped puts temporary files.
    let why = "Qt (QStandardPaths::RuntimeLocation) requires it owned by the user with mode \
               0700, else it warns and falls back; qshm's mapped temporary segments go there \
               (or to /dev/shm)";
    out.push(match std::env::var_os("XDG_RUNTIME_DIR") {
        None => Finding::new("xdg_runtime_dir", Level::Note, "XDG_RUNTIME_DIR is unset")
            .why(why)
            .fact("path", Fact::Null),
        Some(v) => {
            let p = v.to_string_lossy().into_owned();
            let base = |level, s: String| {
                Finding::new("xdg_runtime_dir", level, s).fact("path", Fact::Str(p.clone()))
            };
            match fs::metadata(&v) {
                Err(e) => base(
                    Level::Warning,
                    format!("XDG_RUNTIME_DIR={p} cannot be used ({e})"),
                )
                .why(why)
                .fix(format!("mkdir -m 0700 {p}, or unset XDG_RUNTIME_DIR")),
                Ok(m) => {
                    let s = format!(
                        "XDG_RUNTIME_DIR={p}: owner uid {}, mode {:04o}",
                        m.uid(),
                        m.mode() & 0o7777
                    );
                    if m.uid() != euid || m.mode() & 0o077 != 0 {
                        base(
                            Level::Warning,
                            format!("{s}; Qt wants uid {euid}, mode 0700"),
                        )
                        .why(why)
                        .fix(format!("chown {euid} {p} && chmod 0700 {p}"))
                    } else {
                        base(Level::Ok, s)
                    }
                }
            }
        }
    });
    out
}

fn confinement() -> Vec<Finding> {
    let mut out = Vec::new();
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    if let Some(snap) = var("SNAP_INSTANCE_NAME").or_else(|| var("SNAP_NAME")) {
        out.push(
            Finding::new("snap", Level::Warning, format!("inside the snap `{snap}`"))
                .fact("instance", Fact::Str(snap.clone()))
                .why(format!(
                    "snapd's AppArmor policy allows only POSIX shared memory names \
                     `snap.{snap}.*` (/dev/shm/snap.{snap}.*): Qt's POSIX names \
                     (`/qipc_sharedmemory_…`) and other names are denied (EACCES); System V \
                     segments need the `shared-memory` interface or a private IPC namespace"
                ))
                .fix(format!(
                    "use native keys named posix:/snap.{snap}.NAME (qshm --native, \
                     QNativeIpcKey in Qt 6.6+); to share with another snap, connect the \
                     `shared-memory` interface"
                )),
        );
    }
    if let Some(id) = var("FLATPAK_ID").or_else(|| {
        Path::new("/.flatpak-info")
            .exists()
            .then(|| "(unknown id)".to_owned())
    }) {
        out.push(
            Finding::new(
                "flatpak",
                Level::Warning,
                format!("inside the flatpak `{id}`"),
            )
            .fact("app_id", Fact::Str(id))
            .why(
                "a flatpak has its own IPC namespace unless it has --share=ipc, so \
                     System V segments are not shared with the host; and its /dev/shm is \
                     its own unless it has --device=shm (or --device=all)",
            )
            .fix(
                "finish-args: --share=ipc (System V, Qt's default) and --device=shm \
                     (POSIX); or flatpak override --share=ipc --device=shm APP",
            ),
        );
    }
    if out.is_empty() {
        out.push(
            Finding::new("confinement", Level::Ok, "not in a snap or flatpak")
                .fact("snap", Fact::Bool(false))
                .fact("flatpak", Fact::Bool(false)),
        );
    }
    out
}
