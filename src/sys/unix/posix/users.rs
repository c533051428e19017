//! Last-user detection: whether any other process still has a file open or mapped (the
//! kernel's lease first, then `/proc`).

use super::*;

/// Whether nobody but the caller uses the segment open as `fd`: no other qshm attachment
/// holds its shared `flock`, and no other process maps the file. `forks_before`: the
/// [`forks_started`](crate::sys::fork::forks_started) read before `fd` was opened.
pub(super) fn is_last_user(fd: &OwnedFd, forks_before: u32) -> bool {
    if rustix::fs::flock(fd, FlockOperation::NonBlockingLockExclusive).is_err() {
        return false;
    }
    !used_by_another_process(fd, my_pid(), forks_before)
}

/// Whether process `pid` is an ancestor of this one. A forked copy's opener is, while it
/// lives: when it exits its children are given to another parent at once, and a process
/// that reuses its pid later is no ancestor.
fn is_ancestor(pid: u32) -> bool {
    let mut p = my_pid();
    for _ in 0..64 {
        match parent_of(p) {
            Some(parent) if parent == pid => return true,
            Some(parent) if parent > 1 => p = parent,
            _ => return false,
        }
    }
    false
}

/// Whether a child of this process can share `fd`'s open file description, or a mapping
/// made from it: only one forked since `fd` was opened (`forks_before`, as read then), and
/// only while a child exists. A child started before holds no copy of it (a descendant
/// scan for nothing cost ~270 µs per detach in a Python program with `multiprocessing`'s
/// resource tracker running).
fn children_may_share(forks_before: u32) -> bool {
    crate::sys::fork::forks_started() != forks_before && super::super::has_children()
}

/// Whether a process other than this one maps (or has open) the file open as `fd`.
///
/// First the kernel is asked whether any open file description other than `fd`'s own refers
/// to the file ([`sole_open_file`]); a mapping keeps the one it was made from, so every
/// process that opened or mapped the file itself shows up there. When none does, the only
/// possible other users are processes that share `fd`'s own description: children forked
/// by this process (and theirs) since `fd` was opened, which are looked at one by one.
/// Otherwise, or when the kernel cannot tell, every process's maps are read; also when `fd`
/// was inherited through a fork (`forked`): its opener and the opener's other children
/// share it too: when the kernel says no other description is open, the opener and its
/// descendants are looked at (while the opener is an ancestor of this process: once it has
/// exited, its orphaned children are no longer found among its descendants), else every
/// process.
/// `forks_before`: the [`forks_started`](crate::sys::fork::forks_started) read before `fd`
/// was opened (see [`children_may_share`]).
pub(super) fn used_by_another_process(fd: &OwnedFd, opener: u32, forks_before: u32) -> bool {
    let forked = opener != my_pid();
    let sole = sole_open_file(fd);
    let scope = match sole {
        Some(true) if forked && is_ancestor(opener) => Scope::Family(opener),
        Some(true) if forked => Scope::Everyone,
        // No child forked since the open, the usual case: nobody else.
        Some(true) if !children_may_share(forks_before) => return false,
        Some(true) => Scope::Descendants,
        Some(false) | None => Scope::Everyone,
    };
    let Ok(st) = rustix::fs::fstat(fd) else {
        return true; // cannot tell: in use
    };
    let file = FileId::new(st.st_dev, st.st_ino);
    let mut seen = mapped_by_another_process(file, scope);
    if matches!(scope, Scope::Family(opener) if !is_ancestor(opener)) {
        // The opener died during the look: its children may have left its family unseen.
        seen = mapped_by_another_process(file, Scope::Everyone);
    }
    match seen {
        Some(true) => true,
        Some(false) if sole != Some(false) => false,
        // Nobody we can see maps it, but either some maps could not be read (another
        // user's, or one this system keeps from root), or the kernel said another
        // description of the file is open while no process in our /proc maps it: one this
        // /proc does not show (another PID namespace with its own /proc) or a moment's
        // opener (a qshm attacher before its count, a detacher closing). Only the kernel
        // can tell: once it says no other description is open, only our children could use
        // the file (as above).
        _ if scope == Scope::Everyone && !forked && becomes_sole_open_file(fd) => {
            children_may_share(forks_before)
                && mapped_by_another_process(file, Scope::Descendants).unwrap_or(true)
        }
        _ => true,
    }
}

/// Whether [`sole_open_file`] says yes within 50 ms (asked again with growing pauses).
fn becomes_sole_open_file(fd: &OwnedFd) -> bool {
    let deadline = Instant::now() + Duration::from_millis(50);
    let mut pause = Duration::from_micros(100);
    loop {
        match sole_open_file(fd) {
            Some(true) => return true,
            None => return false, // the kernel will not say: unknown
            Some(false) if Instant::now() >= deadline => return false,
            Some(false) => {}
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// `F_SETSIG` (`<fcntl.h>`; the same number on every Linux architecture, missing from the
/// `libc` crate for glibc targets).
pub(super) const F_SETSIG: c_int = 10;

/// Whether `fd`'s open file description is the only one of its file anywhere: `Some(true)`
/// when the kernel grants a write lease on it, which it does only when no other description
/// of the file is open (fcntl(2), "Leases"), `Some(false)` when it refuses for that reason,
/// `None` when it cannot say (not the file's owner, leases disabled).
///
/// The lease is released at once. A process that opens the file in that instant waits for
/// the release, and the kernel signals the lease holder; the signal is set to `SIGURG`,
/// whose default action is to ignore it (`SIGIO`, the default, would kill this process).
pub(super) fn sole_open_file(fd: &OwnedFd) -> Option<bool> {
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Lease);
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    // SAFETY: fcntl(F_SETSIG) takes an int and changes only which signal this open file
    // description raises; `raw` is a live descriptor borrowed from `fd`.
    super::super::cvt(unsafe { libc::fcntl(raw, F_SETSIG, libc::SIGURG) }).ok()?;
    // SAFETY: fcntl(F_SETLEASE) takes an int; `raw` is live.
    if unsafe { libc::fcntl(raw, libc::F_SETLEASE, libc::F_WRLCK) } == 0 {
        // SAFETY: as above; releases the lease just taken.
        unsafe { libc::fcntl(raw, libc::F_SETLEASE, libc::F_UNLCK) };
        return Some(true);
    }
    match errno() {
        libc::EAGAIN | libc::EBUSY => Some(false),
        _ => None,
    }
}

/// Which processes [`mapped_by_another_process`] reads the maps of.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Every process but this one.
    Everyone,
    /// This process's descendants: when no other process has the file open, only they can
    /// still map it, through a mapping inherited from this process.
    Descendants,
    /// For a description this process inherited through a fork from `opener`: the opener
    /// and its descendants, which alone can share it when no other description is open.
    Family(u32),
}

/// Whether a process other than this one maps `file` (read from `/proc/<pid>/maps`): `None`
/// when none whose maps could be read does but some could not be read (another user's
/// processes; here and there root is kept from some, as a sandbox's init). What cannot be
/// told at all counts as a user: `/proc` unreadable (out of descriptors), or other users'
/// processes hidden (`hidepid`).
///
/// A child this process is spawning maps everything this process maps until it calls
/// `exec` (`posix_spawn`/`vfork` even shares the address space). So children of ours that
/// map the file are looked at again, for up to about a second on a busy machine: one that
/// still does all along is a real user (a forked worker that inherited the mapping); ones
/// that exec or exit meanwhile (a program spawning processes all the time shows a new one
/// at every look) were not. Their addresses are not compared with ours: under an emulator
/// (qemu-user) another process's maps show host addresses, which differ from the ones the
/// emulated process sees, and a `vfork` there is a real fork.
///
/// Other processes that map the file are looked at again too, but only [`OTHER_LOOKS`]
/// times (under 2 ms): one that has just released the lock and is about to unmap it is not
/// a user (taking it for one left a lock semaphore behind that nobody would remove), while
/// one that waits for the lock, holds it open (Qt does) or is about to take it stays mapped
/// all along and counts.
pub(super) fn mapped_by_another_process(file: FileId, scope: Scope) -> Option<bool> {
    use std::collections::HashSet;
    let me = my_pid();
    let mut pause = Duration::from_micros(250);
    let mut persistent: Option<(HashSet<u32>, HashSet<u32>)> = None;
    for look in 1..=12 {
        let (mut copies, mut others) = (HashSet::new(), HashSet::new());
        let mut unreadable = false;
        let pids = match scope {
            Scope::Descendants => descendants(me).map_or_else(|| other_processes(me), Some),
            Scope::Family(opener) => descendants(opener).map_or_else(
                || other_processes(me),
                |mut family| {
                    family.push(opener);
                    family.retain(|&pid| pid != me);
                    Some(family)
                },
            ),
            Scope::Everyone => other_processes(me),
        };
        // Who maps the file cannot be told (no /proc, or out of descriptors): in use.
        let Some(pids) = pids else {
            return Some(true);
        };
        if scope == Scope::Everyone && processes_hidden() {
            return Some(true); // other users' processes are invisible (hidepid)
        }
        for pid in pids {
            match mapping_addresses(pid, file) {
                // Unreadable maps: it may map the file. Unknown is never "nobody".
                None => {
                    unreadable = true;
                    continue;
                }
                Some(addresses) if addresses.is_empty() => continue,
                Some(_) => {}
            }
            match parent_of(pid) {
                // Gone since its maps were read: not a user.
                None => {}
                Some(parent) if parent == me => {
                    copies.insert(pid);
                }
                Some(_) => {
                    others.insert(pid);
                }
            }
        }
        if let Some((seen_copies, seen_others)) = &persistent {
            copies.retain(|pid| seen_copies.contains(pid));
            others.retain(|pid| seen_others.contains(pid));
        }
        if !others.is_empty() && look >= OTHER_LOOKS {
            return Some(true);
        }
        if copies.is_empty() && others.is_empty() {
            return if unreadable { None } else { Some(false) };
        }
        persistent = Some((copies, others));
        std::thread::sleep(pause);
        pause *= 2;
    }
    Some(true)
}

/// How many times [`mapped_by_another_process`] looks at a process that is not a child of
/// ours before it counts it as a user (pauses of 0.25, 0.5 and 1 ms between the looks).
const OTHER_LOOKS: u32 = 4;

/// Every descendant of process `root`, from `/proc/<pid>/task/<tid>/children`; `None` when
/// the kernel does not provide those files (built without `CONFIG_PROC_CHILDREN`).
pub(super) fn descendants(root: u32) -> Option<Vec<u32>> {
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
    let me = root;
    if root == my_pid() && !super::super::has_children() {
        return Some(Vec::new());
    }
    let mut found = Vec::new();
    let mut queue = vec![me];
    while let Some(pid) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue; // gone meanwhile
        };
        let mut any_list = false;
        for task in tasks.filter_map(|t| t.ok()) {
            let Ok(list) = std::fs::read_to_string(task.path().join("children")) else {
                continue; // the thread exited, or the kernel has no such file
            };
            any_list = true;
            for child in list.split_ascii_whitespace().filter_map(|c| c.parse().ok()) {
                if child != me && !found.contains(&child) {
                    found.push(child);
                    queue.push(child);
                }
            }
        }
        if pid == me && !any_list {
            return None; // this process has a live thread: the kernel has no such files
        }
    }
    Some(found)
}

/// Every process but `me`; `None` when `/proc` cannot be listed (not mounted, or this
/// process is out of descriptors).
pub(super) fn other_processes(me: u32) -> Option<Vec<u32>> {
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
    let dir = std::fs::read_dir("/proc").ok()?;
    Some(
        dir.filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
            .filter(|&pid| pid != me)
            .collect(),
    )
}

/// Whether `/proc` hides other users' processes from this one (`hidepid=1|2`,
/// `invisible`, `noaccess`, as systemd's `ProtectProc=` mounts it), which root is not
/// subject to. Read once from `/proc/self/mountinfo`.
fn processes_hidden() -> bool {
    static HIDDEN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HIDDEN.get_or_init(|| {
        if crate::sys::euid() == 0 {
            return false;
        }
        let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
            return true; // cannot tell: assume the worst
        };
        info.lines()
            .filter(|line| {
                line.split(" - ")
                    .nth(1)
                    .is_some_and(|t| t.starts_with("proc "))
            })
            .any(|line| {
                line.rsplit(' ').next().is_some_and(|opts| {
                    opts.split(',').any(|o| {
                        matches!(
                            o,
                            "hidepid=1" | "hidepid=2" | "hidepid=noaccess" | "hidepid=invisible"
                        )
                    })
                })
            })
    })
}

/// Where process `pid` maps `file`: the start of each mapping; empty when it is gone;
/// `None` when it may not be read (another user's process). Read as bytes: a mapped file's
/// name need not be UTF-8, and the fields that matter are.
pub(super) fn mapping_addresses(pid: u32, file: FileId) -> Option<Vec<usize>> {
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
    let maps = match std::fs::read(format!("/proc/{pid}/maps")) {
        Ok(maps) => maps,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => return None,
        Err(_) => return Some(Vec::new()), // gone meanwhile
    };
    let maps = String::from_utf8_lossy(&maps);
    Some(
        mapped_files(&maps)
            .filter(|&(_, f)| f == file)
            .map(|(start, _)| start)
            .collect(),
    )
}

/// The parent of process `pid`.
pub(super) fn parent_of(pid: u32) -> Option<u32> {
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
    task_stat(pid).ok().map(|stat| stat.ppid)
}
