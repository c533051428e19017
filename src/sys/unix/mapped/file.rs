//! Segments in named files on a RAM-backed file system.

use super::*;

/// `statfs(2)` `f_type` values of RAM-backed file systems. Source: `<linux/magic.h>`.
pub(super) const TMPFS_MAGIC: i64 = 0x0102_1994;

pub(super) const RAMFS_MAGIC: i64 = 0x8584_58f6;

pub(super) const HUGETLBFS_MAGIC: i64 = 0x9584_58f6_u32 as i64;

/// Whether a `statfs` file-system type keeps its pages in RAM only.
pub(crate) fn is_ram_fs(f_type: i64) -> bool {
    matches!(f_type, TMPFS_MAGIC | RAMFS_MAGIC | HUGETLBFS_MAGIC)
}

pub(super) fn fs_name(f_type: i64) -> String {
    match f_type {
        0xef53 => "ext2/ext3/ext4".into(),
        0x9123_683e => "btrfs".into(),
        0x5846_5342 => "xfs".into(),
        0x6969 => "nfs".into(),
        0x794c_7630 => "overlayfs".into(),
        0x0102_1994 => "tmpfs".into(),
        other => format!("file system type {other:#x}"),
    }
}

/// [`private_runtime_dir`](crate::key::private_runtime_dir), else `/dev/shm`.
pub(crate) fn default_dir() -> PathBuf {
    crate::key::private_runtime_dir().unwrap_or_else(|| PathBuf::from("/dev/shm"))
}

/// Refuses a file system whose pages are written back to disk, unless allowed.
pub(super) fn check_ram_backed(
    f_type: i64,
    allow_disk: bool,
    what: &Path,
    op: Operation,
) -> Result<()> {
    if allow_disk || is_ram_fs(f_type) {
        return Ok(());
    }
    Err(
        Error::new(ErrorKind::KeyError, op, what.display().to_string()).with_detail(format!(
            "{} is on a disk-backed file system ({}): its pages would be written back to \
             storage; use a tmpfs directory (/dev/shm, $XDG_RUNTIME_DIR) or opt in with \
             allow_disk_backed(true)",
            what.display(),
            fs_name(f_type)
        )),
    )
}

/// Creates a new segment file at `path` (exclusively), sized and initialised before it
/// becomes visible under its name.
pub(crate) fn create_file(
    path: &Path,
    data_size: usize,
    mode: u32,
    remove_on_last_detach: bool,
    _temporary: bool, // removed at the last detach like any other flagged file
    params: &OpenParams,
) -> Result<MappedInner> {
    let op = Operation::Create;
    let label = format!("file:{}", path.display());
    let header_size = new_header_size();
    let total = checked_total(data_size, header_size, op, &label)?;
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(Error::new(ErrorKind::KeyError, op, label.as_str())
            .with_detail("path contains a NUL byte"));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.file_name().is_none() {
        return Err(
            Error::new(ErrorKind::KeyError, op, label.as_str()).with_detail("path names no file")
        );
    }
    let st = rustix::fs::statfs(&dir).map_err(|e| {
        Ctx::label(op, &label)
            .errno(e)
            .with_detail(format!("cannot use directory {} ({e})", dir.display()))
    })?;
    check_ram_backed(st.f_type as i64, params.allow_disk_backed, &dir, op)
        .map_err(|e| e.with_key(label.clone()))?;

    // Prefer an anonymous O_TMPFILE, linked in when ready: nothing half-made is ever visible
    // and nothing is left behind by a crash. Fall back to a hidden temporary name.
    let (fd, tmp_name) = match rustix::fs::openat(
        CWD,
        &dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    ) {
        Ok(fd) => (fd, None),
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOENT) => {
            let tmp = dir.join(format!(
                ".qshm-creating-{}-{:x}",
                std::process::id(),
                crate::sys::random::random_u64()
            ));
            let fd = rustix::fs::open(
                &tmp,
                OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| Ctx::label(op, &label).errno(e))?;
            (fd, Some(tmp))
        }
        Err(e) => return Err(Ctx::label(op, &label).errno(e)),
    };
    let cleanup_tmp = |tmp: &Option<PathBuf>| {
        if let Some(t) = tmp {
            let _ = rustix::fs::unlink(t);
        }
    };
    let prepared = (|| {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o777))
            .map_err(|e| Ctx::label(op, &label).errno(e))?;
        rustix::fs::ftruncate(&fd, total as u64).map_err(|e| size_err(e, op, &label))?;
        check_room(&fd, total, op, &label)?;
        let flags = if remove_on_last_detach {
            FLAG_REMOVE_ON_LAST_DETACH
        } else {
            0
        };
        write_header(
            &fd,
            header_size,
            data_size,
            flags,
            params.layout,
            &label,
            op,
        )?;
        // Users hold a shared flock while attached; the last one can take it exclusively.
        rustix::fs::flock(&fd, FlockOperation::LockShared)
            .map_err(|e| Ctx::label(op, &label).errno(e))?;
        Ok(())
    })();
    if let Err(e) = prepared {
        cleanup_tmp(&tmp_name);
        return Err(e);
    }
    let linked = match &tmp_name {
        None => {
            crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
            let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            match rustix::fs::linkat(CWD, proc_path.as_str(), CWD, path, AtFlags::SYMLINK_FOLLOW) {
                Err(Errno::NOENT) if !Path::new("/proc/self/fd").exists() => {
                    rustix::fs::linkat(&fd, "", CWD, path, AtFlags::EMPTY_PATH)
                }
                other => other,
            }
        }
        Some(tmp) => {
            let r = rustix::fs::link(tmp, path);
            cleanup_tmp(&tmp_name);
            r
        }
    };
    if let Err(e) = linked {
        return Err(Ctx::label(op, &label).errno(e));
    }
    let fd = if remove_on_last_detach {
        described_at(fd, path)
    } else {
        fd
    };
    let req = MapRequest::file(header_size, data_size, params, namespaces());
    let backing = Backing::File {
        path: path.to_path_buf(),
        remove_on_last_detach,
        opener: std::process::id(),
    };
    map_fd(fd, backing, req, op, &label).inspect_err(|_| {
        let _ = rustix::fs::unlink(path);
    })
}

/// A description of the new file opened at `path`, holding the shared `flock` (the old one
/// is dropped, and its lock with it, only once the new one holds it), else `fd`. The
/// descriptor made with `O_TMPFILE` (or at a hidden temporary name) keeps naming the file
/// by that anonymous name, in `/proc` too; one opened at `path` names it there, so that a
/// process it is handed to can take part in removing it (`memfd::take_part_in_removal`).
fn described_at(fd: OwnedFd, path: &Path) -> OwnedFd {
    let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    let Ok(named) = rustix::fs::open(path, flags, Mode::empty()) else {
        return fd; // e.g. a mode without the owner's write permission
    };
    let same = match (rustix::fs::fstat(&fd), rustix::fs::fstat(&named)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    };
    if same && rustix::fs::flock(&named, FlockOperation::NonBlockingLockShared).is_ok() {
        named
    } else {
        fd
    }
}

/// Opens an existing segment file.
pub(crate) fn open_file(path: &Path, params: &OpenParams) -> Result<MappedInner> {
    let op = Operation::Attach;
    let label = format!("file:{}", path.display());
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(Error::new(ErrorKind::KeyError, op, label.as_str())
            .with_detail("path contains a NUL byte"));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // No link followed (one planted in a shared directory would steer us onto a file of
        // another's choosing), and no wait on a FIFO planted there.
        let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| {
            let err = Ctx::label(op, &label).errno(e);
            if e == Errno::ACCESS && params.access == AccessMode::ReadOnly {
                err.with_detail("permission denied: even a read-only user needs write permission on the file to take the lock inside it")
            } else if e == Errno::ISDIR {
                err.with_kind(ErrorKind::KeyError).with_detail("not a regular file (a directory)")
            } else if e == Errno::LOOP {
                err.with_kind(ErrorKind::KeyError)
                    .with_detail("a symbolic link, which is not followed: open the file it names")
            } else {
                err
            }
        })?;
        if !is_regular(&fd) {
            return Err(Error::new(ErrorKind::KeyError, op, label.as_str())
                .with_detail("not a regular file"));
        }
        // Hold a shared flock while attached (see `close`). A last user removing the file
        // holds it exclusively for a moment.
        loop {
            match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockShared) {
                Ok(()) => break,
                Err(Errno::WOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(Errno::WOULDBLOCK) => {
                    return Err(Error::new(ErrorKind::Timeout, op, label.as_str())
                        .with_detail("the file stayed locked exclusively (flock) for 5 s"))
                }
                Err(e) => return Err(Ctx::label(op, &label).errno(e)),
            }
        }
        let st = rustix::fs::fstat(&fd).map_err(|e| Ctx::label(op, &label).errno(e))?;
        if st.st_nlink == 0 {
            // Removed by its last user between our open and our flock: look again.
            if Instant::now() < deadline {
                continue;
            }
            return Err(Error::new(ErrorKind::NotFound, op, label.as_str())
                .with_detail("the file was removed"));
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(Error::new(ErrorKind::KeyError, op, label.as_str())
                .with_detail("not a regular file"));
        }
        let fs = rustix::fs::fstatfs(&fd).map_err(|e| Ctx::label(op, &label).errno(e))?;
        check_ram_backed(fs.f_type as i64, params.allow_disk_backed, path, op)
            .map_err(|e| e.with_key(label.clone()))?;
        let facts = read_header(&fd, st.st_size as u64, op, &label)?;
        check_layout(facts.layout, params.layout, op, &label)?;
        let req = MapRequest::file(facts.header_size, facts.data_size, params, facts.namespaces);
        let backing = Backing::File {
            path: path.to_path_buf(),
            remove_on_last_detach: facts.flags & FLAG_REMOVE_ON_LAST_DETACH != 0,
            opener: std::process::id(),
        };
        return map_fd(fd, backing, req, op, &label);
    }
}

/// Removes the segment file at `path` if no qshm user has it attached (nobody holds its
/// shared flock). Returns whether it was removed.
pub(crate) fn remove_file(path: &Path) -> Result<bool> {
    let op = Operation::Remove;
    let label = format!("file:{}", path.display());
    let fd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(Ctx::label(op, &label).errno(e)),
    };
    let ctx = Ctx::label(op, &label);
    if !is_regular(&fd) {
        return Err(Error::new(ErrorKind::KeyError, op, label.as_str())
            .with_detail("not a segment file (not a regular file): left alone"));
    }
    // Any description of the file this process has may have been copied into a child.
    if !super::super::flock_exclusive_settled(&fd, true).map_err(|e| ctx.errno(e))? {
        return Ok(false);
    }
    unlink_if_same(path, &fd).map_err(|e| ctx.errno(e))
}

/// Whether `fd` is a regular file (an error reads as "no").
fn is_regular(fd: &OwnedFd) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// Unlinks `path` if it still names the file open as `fd`.
pub(super) fn unlink_if_same(path: &Path, fd: &OwnedFd) -> std::result::Result<bool, Errno> {
    let mine = rustix::fs::fstat(fd)?;
    match rustix::fs::lstat(path) {
        Ok(st) if st.st_dev == mine.st_dev && st.st_ino == mine.st_ino => {
            rustix::fs::unlink(path)?;
            Ok(true)
        }
        Ok(_) | Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e),
    }
}
