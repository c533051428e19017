//! Segments in named files on a RAM-backed file system.

use super::*;

/// `statfs(2)` `f_type` values of RAM-backed file systems. Source: `<linux/magic.h>`.
#[cfg(qshm_linux)]
pub(super) const TMPFS_MAGIC: i64 = 0x0102_1994;

#[cfg(qshm_linux)]
pub(super) const RAMFS_MAGIC: i64 = 0x8584_58f6;

#[cfg(qshm_linux)]
pub(super) const HUGETLBFS_MAGIC: i64 = 0x9584_58f6_u32 as i64;

/// Whether a file system keeps its pages in RAM only (Linux: by its `statfs` type).
#[cfg(qshm_linux)]
pub(crate) fn is_ram_fs(st: &rustix::fs::StatFs) -> bool {
    matches!(
        st.f_type as i64,
        TMPFS_MAGIC | RAMFS_MAGIC | HUGETLBFS_MAGIC
    )
}

/// Whether a file system keeps its pages in RAM only (BSD systems: by its name; macOS has
/// none by default).
#[cfg(not(qshm_linux))]
pub(crate) fn is_ram_fs(st: &rustix::fs::StatFs) -> bool {
    fs_name(st) == "tmpfs"
}

#[cfg(qshm_linux)]
pub(super) fn fs_name(st: &rustix::fs::StatFs) -> String {
    match st.f_type as i64 {
        0xef53 => "ext2/ext3/ext4".into(),
        0x9123_683e => "btrfs".into(),
        0x5846_5342 => "xfs".into(),
        0x6969 => "nfs".into(),
        0x794c_7630 => "overlayfs".into(),
        0x0102_1994 => "tmpfs".into(),
        other => format!("file system type {other:#x}"),
    }
}

#[cfg(not(qshm_linux))]
pub(super) fn fs_name(st: &rustix::fs::StatFs) -> String {
    let name = st.f_fstypename.iter().take_while(|&&c| c != 0);
    name.map(|&c| c as u8 as char).collect()
}

/// [`private_runtime_dir`](crate::key::private_runtime_dir), else `/dev/shm` (Linux) or the
/// temporary directory (macOS, iOS and FreeBSD, which have no RAM-backed directory of
/// their own).
pub(crate) fn default_dir() -> PathBuf {
    let fallback = if cfg!(qshm_linux) {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    crate::key::private_runtime_dir().unwrap_or(fallback)
}

/// Refuses a file system whose pages are written back to disk, unless allowed.
///
/// Only Linux refuses: macOS, iOS and FreeBSD have no RAM-backed directory that every
/// system has (macOS none at all), so a segment there lives in the file system asked for,
/// the temporary directory by default, whose dirty pages the system writes back lazily.
pub(super) fn check_ram_backed(
    st: &rustix::fs::StatFs,
    allow_disk: bool,
    what: &Path,
    op: Operation,
) -> Result<()> {
    if allow_disk || is_ram_fs(st) || cfg!(not(qshm_linux)) {
        return Ok(());
    }
    Err(
        Error::new(ErrorKind::KeyError, op, what.display().to_string()).with_detail(format!(
            "{} is on a disk-backed file system ({}): its pages would be written back to \
             storage; use a tmpfs directory (/dev/shm, $XDG_RUNTIME_DIR) or opt in with \
             allow_disk_backed(true)",
            what.display(),
            fs_name(st)
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
    check_ram_backed(&st, params.allow_disk_backed, &dir, op)
        .map_err(|e| e.with_key(label.clone()))?;

    // Prefer an anonymous O_TMPFILE, linked in when ready: nothing half-made is ever visible
    // and nothing is left behind by a crash. Fall back to a hidden temporary name (the only
    // way where there is no O_TMPFILE).
    #[cfg(not(qshm_posix_portable))]
    let anonymous = rustix::fs::openat(
        CWD,
        &dir,
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    );
    #[cfg(qshm_posix_portable)]
    let anonymous: std::result::Result<OwnedFd, Errno> = {
        crate::sys::portable::hit(crate::sys::portable::Fallback::NamedCreate);
        Err(Errno::OPNOTSUPP)
    };
    let (fd, tmp_name) = match anonymous {
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
        rustix::fs::fchmod(&fd, Mode::from_raw_mode((mode & 0o777) as _))
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
        #[cfg(not(qshm_posix_portable))]
        rustix::fs::flock(&fd, FlockOperation::LockShared)
            .map_err(|e| Ctx::label(op, &label).errno(e))?;
        Ok(())
    })();
    if let Err(e) = prepared {
        cleanup_tmp(&tmp_name);
        return Err(e);
    }
    let req = MapRequest::file(header_size, data_size, params, namespaces());
    let backing = Backing::File {
        path: path.to_path_buf(),
        remove_on_last_detach,
        opener: std::process::id(),
    };
    #[cfg(qshm_posix_portable)]
    return create_counted(fd, tmp_name, path, backing, req, &label);
    #[cfg(not(qshm_posix_portable))]
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
    #[cfg(not(qshm_posix_portable))]
    {
        if let Err(e) = linked {
            return Err(Ctx::label(op, &label).errno(e));
        }
        let fd = if remove_on_last_detach {
            described_at(fd, path)
        } else {
            fd
        };
        map_fd(fd, backing, req, op, &label).inspect_err(|_| {
            let _ = rustix::fs::unlink(path);
        })
    }
}

/// The end of `create_file` where record locks count users: the new file, still under its
/// temporary name, joins this process's open files and counts this process among its users
/// *before* it is linked at `path`, so that no removal, by another process or another
/// thread of this one, finds it unused there; then it is linked, and mapped.
#[cfg(qshm_posix_portable)]
fn create_counted(
    fd: OwnedFd,
    tmp: Option<PathBuf>,
    path: &Path,
    backing: Backing,
    req: MapRequest,
    label: &str,
) -> Result<MappedInner> {
    let op = Operation::Create;
    let Some(tmp) = tmp else {
        return Err(Error::new(ErrorKind::Unknown, op, label)
            .with_detail("no temporary name to create the file under"));
    };
    let counted = LockedFile::adopt(fd, Some(&tmp)).and_then(|file| match file.join(USERS)? {
        true => Ok(file),
        false => Err(std::io::ErrorKind::NotFound.into()),
    });
    let linked = counted.and_then(|file| match rustix::fs::link(&tmp, path) {
        Ok(()) => Ok(file),
        Err(e) => {
            drop(file.leave()); // nobody else knows the temporary name
            Err(e.into())
        }
    });
    let _ = rustix::fs::unlink(&tmp);
    let file = linked.map_err(|e| Ctx::label(op, label).io(&e))?;
    file.linked_at(path);
    // A file this call made goes again if it cannot be mapped (unless someone else has
    // attached it meanwhile: the removal is a last user's).
    map_joined(file, path, true, backing, req, op, label)
}

/// Maps `file`, which this process joined as a user, for `backing`; the segment leaves at
/// its close. When mapping fails, this process leaves at once, and a last user removes the
/// file at `path` when `made` (this call's caller made it) or when it is flagged
/// remove-on-last-detach, as a detach would.
#[cfg(qshm_posix_portable)]
pub(super) fn map_joined(
    file: SegFd,
    path: &Path,
    made: bool,
    backing: Backing,
    req: MapRequest,
    op: Operation,
    label: &str,
) -> Result<MappedInner> {
    let remove = made || backing.removes_at().is_some();
    match map_fd(file.clone(), backing, req, op, label) {
        Ok(mut m) => {
            m.joined = true;
            Ok(m)
        }
        Err(e) => {
            if let Some(last) = file.leave().filter(|_| remove) {
                let _ = last.remove_at(path);
            }
            Err(e)
        }
    }
}

#[cfg(not(qshm_posix_portable))]
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
        let open_err = |e: Errno| {
            let err = Ctx::label(op, &label).errno(e);
            if e == Errno::ACCESS && params.access == AccessMode::ReadOnly {
                err.with_detail("permission denied: even a read-only user needs write permission on the file to take the lock inside it")
            } else if e == Errno::ISDIR {
                err.with_kind(ErrorKind::KeyError)
                    .with_detail("not a regular file (a directory)")
            } else if e == Errno::LOOP {
                err.with_kind(ErrorKind::KeyError)
                    .with_detail("a symbolic link, which is not followed: open the file it names")
            } else {
                err
            }
        };
        #[cfg(not(qshm_posix_portable))]
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(open_err)?;
        #[cfg(qshm_posix_portable)]
        let fd = {
            let mut failed = None;
            let opened = LockedFile::open(path, |path| {
                let fd = rustix::fs::open(path, flags, Mode::empty())
                    .inspect_err(|&e| failed = Some(e))?;
                Ok(fd.into())
            });
            match (opened, failed) {
                (Ok(file), _) => file,
                (Err(_), Some(e)) => return Err(open_err(e)),
                (Err(e), None) => return Err(Ctx::label(op, &label).io(&e)),
            }
        };
        if !is_regular(&fd) {
            return Err(Error::new(ErrorKind::KeyError, op, label.as_str())
                .with_detail("not a regular file"));
        }
        // Hold a shared flock while attached (see `close`). A last user removing the file
        // holds it exclusively for a moment. (Where record locks count users: `joined`.)
        #[cfg(not(qshm_posix_portable))]
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
        check_ram_backed(&fs, params.allow_disk_backed, path, op)
            .map_err(|e| e.with_key(label.clone()))?;
        let facts = read_header(&fd, st.st_size as u64, op, &label)?;
        check_layout(facts.layout, params.layout, op, &label)?;
        let req = MapRequest::file(facts.header_size, facts.data_size, params, facts.namespaces);
        let backing = Backing::File {
            path: path.to_path_buf(),
            remove_on_last_detach: facts.flags & FLAG_REMOVE_ON_LAST_DETACH != 0,
            opener: std::process::id(),
        };
        #[cfg(not(qshm_posix_portable))]
        return map_fd(fd, backing, req, op, &label);
        #[cfg(qshm_posix_portable)]
        match fd.join(USERS) {
            Ok(true) => return map_joined(fd, path, false, backing, req, op, &label),
            // Removed by its last user since we looked: look again.
            Ok(false) if Instant::now() < deadline => continue,
            Ok(false) => {
                return Err(Error::new(ErrorKind::NotFound, op, label.as_str())
                    .with_detail("the file was removed"))
            }
            Err(e) => return Err(Ctx::label(op, &label).io(&e)),
        }
    }
}

/// Removes the segment file at `path` if no qshm user has it attached (nobody holds its
/// shared flock). Returns whether it was removed.
pub(crate) fn remove_file(path: &Path) -> Result<bool> {
    let op = Operation::Remove;
    let label = format!("file:{}", path.display());
    let flags = OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
    #[cfg(not(qshm_posix_portable))]
    let fd = rustix::fs::open(path, OFlags::RDONLY | flags, Mode::empty());
    // The process's one open file of it.
    #[cfg(qshm_posix_portable)]
    // Read-write: the users' write lock that tells the last user needs write access.
    #[cfg(qshm_posix_portable)]
    let fd = LockedFile::open(path, |path| {
        Ok(rustix::fs::open(path, OFlags::RDWR | flags, Mode::empty())?.into())
    })
    .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO));
    let fd = match fd {
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
    #[cfg(not(qshm_posix_portable))]
    return match super::super::flock_exclusive_settled(&fd, true).map_err(|e| ctx.errno(e))? {
        true => unlink_if_same(path, &fd).map_err(|e| ctx.errno(e)),
        false => Ok(false),
    };
    #[cfg(qshm_posix_portable)]
    let removed = match fd.no_users(USERS) {
        Some(last) => last.remove_at(path).map_err(|e| ctx.io(&e)),
        None => Ok(false),
    };
    #[cfg(qshm_posix_portable)]
    removed
}

/// Whether `fd` is a regular file (an error reads as "no").
fn is_regular(fd: impl AsFd) -> bool {
    rustix::fs::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// Unlinks `path` if it still names the file open as `fd`.
#[cfg(not(qshm_posix_portable))]
pub(super) fn unlink_if_same(path: &Path, fd: impl AsFd) -> std::result::Result<bool, Errno> {
    let mine = rustix::fs::fstat(&fd)?;
    match rustix::fs::lstat(path) {
        Ok(st) if st.st_dev == mine.st_dev && st.st_ino == mine.st_ino => {
            rustix::fs::unlink(path)?;
            Ok(true)
        }
        Ok(_) | Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e),
    }
}
