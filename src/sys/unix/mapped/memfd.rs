//! Segments in memfds: anonymous, sealable, passed to other processes.

use super::*;

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`, sized, sealed (when `seal`)
/// against shrinking and growing before it is mapped, and initialised.
#[cfg(qshm_memfd)]
pub(crate) fn create_memfd(
    name: &str,
    data_size: usize,
    seal: bool,
    layout: Option<(u32, u64)>,
) -> Result<MappedInner> {
    let op = Operation::Create;
    let label = format!("memfd:{name}");
    let header_size = new_header_size();
    let total = checked_total(data_size, header_size, op, &label)?;
    if name.contains('\0') || name.len() > 249 {
        return Err(Error::new(ErrorKind::KeyError, op, label.as_str())
            .with_detail("a memfd name must have no NUL and at most 249 bytes"));
    }
    #[cfg(qshm_memfd)]
    let fd = rustix::fs::memfd_create(
        name,
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .map_err(|e| Ctx::label(op, &label).errno(e))?;

    rustix::fs::ftruncate(&fd, total as u64).map_err(|e| size_err(e, op, &label))?;
    check_room(&fd, total, op, &label)?;
    write_header(&fd, header_size, data_size, 0, layout, &label, op)?;
    let seals = if seal {
        SealFlags::SHRINK | SealFlags::GROW
    } else {
        SealFlags::empty()
    };
    if seal {
        super::seals::add(&fd, seals).map_err(|e| {
            Ctx::label(op, &label)
                .errno(e)
                .with_detail(format!("cannot seal the memfd ({e})"))
        })?;
    }
    let req = MapRequest {
        header_size,
        data_size,
        data_writable: true,
        immutable: false,
        check_size: false,
        private: true,
        creator_ns: namespaces(),
    };
    #[cfg(qshm_posix_portable)]
    let fd = LockedFile::adopt(fd, None).map_err(|e| Ctx::label(op, &label).io(&e))?;
    map_fd(fd, Backing::Memfd, req, op, &label)
}

/// There is no memfd on this system (macOS, iOS).
#[cfg(not(qshm_memfd))]
pub(crate) fn create_memfd(
    name: &str,
    _data_size: usize,
    _seal: bool,
    _layout: Option<(u32, u64)>,
) -> Result<MappedInner> {
    Err(Error::new(
        ErrorKind::Unsupported,
        Operation::Create,
        format!("memfd:{name}"),
    )
    .with_detail(
        "this system has no memfd (memfd_create): use a file segment \
                 (MappedSegment::create_temporary, FileOptions)",
    ))
}

/// Maps a descriptor received from elsewhere, after checking its seals and size. `path`:
/// where the sender says the file is named (`pass_to_child`), for a file flagged
/// remove-on-last-detach.
///
/// On Linux, the received descriptor shares its open file description with the sender; the
/// segment keeps a new description of the same file instead (through `/proc/self/fd`), so
/// that the sender's description, which carries the sender's liveness slot, dies with the
/// sender (`robust_lock.rs`, "Liveness"). Without `/proc` it keeps the received one. Where
/// record locks judge liveness (they belong to the process, whatever the description), the
/// received descriptor joins the process's one open file of it (`record_lock.rs`).
pub(crate) fn from_fd(
    fd: OwnedFd,
    path: Option<&Path>,
    params: &OpenParams,
    label: &str,
) -> Result<MappedInner> {
    let op = Operation::Attach;
    #[cfg(not(qshm_posix_portable))]
    let (fd, private) = {
        let _ = path; // found through /proc (`take_part_in_removal`)
        let writable =
            rustix::fs::fcntl_getfl(&fd).is_ok_and(|f| f & OFlags::ACCMODE == OFlags::RDWR);
        match super::super::liveness::reopen(&fd, writable) {
            Some(own) => (own, true),
            None => (fd, false),
        }
    };
    #[cfg(qshm_posix_portable)]
    let (fd, private) = (
        LockedFile::adopt(fd, path).map_err(|e| Ctx::label(op, label).io(&e))?,
        true,
    );
    let st = rustix::fs::fstat(&fd).map_err(|e| Ctx::label(op, label).errno(e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::new(ErrorKind::KeyError, op, label)
            .with_detail("the descriptor is not a regular file or memfd"));
    }
    let seals = match super::seals::get(&fd) {
        Ok(s) => Some(s),
        Err(Errno::INVAL) => None,
        Err(e) => return Err(Ctx::label(op, label).errno(e)),
    };
    let shrink_sealed = seals.is_some_and(|s| s.contains(SealFlags::SHRINK));
    if !shrink_sealed && !params.allow_unsealed {
        return Err(Error::new(ErrorKind::PermissionDenied, op, label).with_detail(
            "the segment is not sealed against shrinking (F_SEAL_SHRINK): a peer could truncate it \
             and crash this process; refused (opt in with allow_unsealed(true))",
        ));
    }
    if seals.is_none() {
        let fs = rustix::fs::fstatfs(&fd).map_err(|e| Ctx::label(op, label).errno(e))?;
        check_ram_backed(&fs, params.allow_disk_backed, Path::new(label), op)?;
    }
    // With F_SEAL_SHRINK the size checked here cannot decrease afterwards.
    let facts = read_header(&fd, st.st_size as u64, op, label)?;
    check_layout(facts.layout, params.layout, op, label)?;
    let (header_size, data_size, creator_ns) =
        (facts.header_size, facts.data_size, facts.namespaces);
    let immutable = seals.is_some_and(|s| s.contains(SealFlags::WRITE));
    let req = MapRequest {
        header_size,
        data_size,
        data_writable: params.access == AccessMode::ReadWrite && !immutable,
        immutable,
        check_size: !shrink_sealed,
        private,
        creator_ns,
    };
    let backing = match seals {
        Some(s) if is_memfd(&fd, s) => Backing::Memfd,
        _ => Backing::Fd {
            remove_at: take_part_in_removal(&fd, private, facts.flags),
        },
    };
    #[cfg(not(qshm_posix_portable))]
    return map_fd(fd, backing, req, op, label);
    #[cfg(qshm_posix_portable)]
    map_received(fd, backing, req, op, label)
}

/// Maps a received file; one that this process is to take part in removing counts it among
/// the file's users.
#[cfg(qshm_posix_portable)]
fn map_received(
    fd: SegFd,
    mut backing: Backing,
    req: MapRequest,
    op: Operation,
    label: &str,
) -> Result<MappedInner> {
    let Some(path) = backing.removes_at().map(Path::to_owned) else {
        return map_fd(fd, backing, req, op, label);
    };
    if fd.join(USERS).map_err(|e| Ctx::label(op, label).io(&e))? {
        return super::file::map_joined(fd, &path, false, backing, req, op, label);
    }
    // Removed meanwhile: nothing to take part in.
    if let Backing::Fd { remove_at } = &mut backing {
        *remove_at = None;
    }
    map_fd(fd, backing, req, op, label)
}

/// For a received file flagged remove-on-last-detach: the path its sender named, which
/// [`LockedFile::adopt`] checked names it (the process then takes part as a user of the file).
#[cfg(qshm_posix_portable)]
fn take_part_in_removal(fd: &SegFd, _private: bool, flags: u32) -> Option<PathBuf> {
    if flags & FLAG_REMOVE_ON_LAST_DETACH == 0 {
        return None;
    }
    fd.path()
}

#[cfg(not(qshm_posix_portable))]
/// For a received file flagged remove-on-last-detach (a temporary segment handed to a child,
/// a file sent over a socket): its path, once this process holds a shared `flock` on its
/// own description of the file, as an opener does. The last user to detach, sender or
/// receiver, then removes the file; without this a sender that detached first, while the
/// receiver still had it, left the file behind for good.
///
/// `None`, and no part in the removal, when the description is the sender's (no `/proc` to
/// reopen through: its `flock` is the sender's already), when `/proc` does not name the file
/// (unlinked already, or renamed since), or while a last user is removing it.
fn take_part_in_removal(fd: &OwnedFd, private: bool, flags: u32) -> Option<PathBuf> {
    if !private || flags & FLAG_REMOVE_ON_LAST_DETACH == 0 {
        return None;
    }
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
    let path = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    if !path.is_absolute() {
        return None;
    }
    rustix::fs::flock(fd, FlockOperation::NonBlockingLockShared).ok()?;
    // Under the shared lock nobody removes the file; is it still the one at that path?
    let (ours, named) = (rustix::fs::fstat(fd).ok()?, rustix::fs::stat(&path).ok()?);
    (ours.st_nlink > 0 && ours.st_dev == named.st_dev && ours.st_ino == named.st_ino)
        .then_some(path)
}

/// Whether `fd` is a memfd. Files on tmpfs answer `F_GET_SEALS` too (with `F_SEAL_SEAL`
/// alone: they cannot be sealed), so the seals alone do not tell; a memfd's `/proc` link
/// starts with `/memfd:`. Without `/proc`: any seal besides `F_SEAL_SEAL` means a memfd.
fn is_memfd(fd: &SegFd, seals: SealFlags) -> bool {
    #[cfg(qshm_posix_portable)]
    {
        let _ = fd;
        seals != SealFlags::SEAL
    }
    #[cfg(not(qshm_posix_portable))]
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
    #[cfg(not(qshm_posix_portable))]
    match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        Ok(link) => link.as_os_str().as_bytes().starts_with(b"/memfd:"),
        Err(_) => seals != SealFlags::SEAL,
    }
}
