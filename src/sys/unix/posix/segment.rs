//! The POSIX segment: a file under `/dev/shm`, counted by `flock`, named once whole.

use super::*;

/// A mapped POSIX shared memory segment.
pub(crate) struct PosixSegment {
    fd: OwnedFd,
    /// The file's inode, to tell it from another file given its name later.
    ino: u64,
    addr: NonNull<u8>,
    len: usize,
    writable: bool,
    pub(super) path: String,
    mapped: bool,
    /// The process that opened `fd`. A process forked from it shares `fd`'s open file
    /// description, and with it the attach count: see [`PosixSegment::own_descriptor`].
    opener: u32,
    /// [`forks_started`](crate::sys::fork::forks_started) before `fd` was mapped (a child
    /// forked earlier may hold a stray copy of `fd`, but no mapping and no segment).
    forks_before: u32,
}

// SAFETY: the struct owns a descriptor and a mapping, neither tied to the thread that made
// them; munmap and close may run on any thread. It never reads or writes the mapped bytes
// itself: access goes through `Locked`, which requires the cross-process lock. Checked at
// compile time in `tests::send_sync`.
unsafe impl Send for PosixSegment {}
// SAFETY: `&PosixSegment` exposes only the address, the length and the descriptor's number;
// see the `Send` justification for the bytes.
unsafe impl Sync for PosixSegment {}

impl fmt::Debug for PosixSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PosixSegment")
            .field("path", &self.path)
            .field("addr", &self.addr)
            .field("len", &self.len)
            .finish()
    }
}

impl PosixSegment {
    /// `create` where `O_TMPFILE` is refused: glibc's `shm_open(O_CREAT|O_EXCL)`, sized
    /// and mapped under its name (an attacher that finds it still empty waits for the
    /// lock, which the creator holds), unlinked again on failure.
    #[cold]
    fn create_named(
        ctx: Ctx<'_>,
        path: String,
        len: u64,
        access: AccessMode,
        mode: Mode,
    ) -> Result<PosixSegment> {
        let flags =
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut retried = false;
        let fd = loop {
            match rustix::fs::open(&path, flags, mode) {
                Ok(fd) => break fd,
                Err(rustix::io::Errno::EXIST) if !retried && is_half_created(&path) => {
                    retried = true;
                    let _ = rustix::fs::unlink(&path);
                }
                Err(e) => return Err(ctx.errno(e)),
            }
        };
        PosixSegment::prepare(ctx, fd, &path, len, access, mode).inspect_err(|_| {
            let _ = rustix::fs::unlink(&path);
        })
    }

    /// The steps of `create` between opening the new file and naming it: exact mode, size,
    /// room, then counted and mapped as by `attach`.
    fn prepare(
        ctx: Ctx<'_>,
        fd: OwnedFd,
        path: &str,
        len: u64,
        access: AccessMode,
        mode: Mode,
    ) -> Result<PosixSegment> {
        rustix::fs::ftruncate(&fd, len).map_err(|e| {
            let err = ctx.errno(e);
            if matches!(e, rustix::io::Errno::INVAL | rustix::io::Errno::FBIG) {
                err.with_kind(ErrorKind::InvalidSize)
            } else {
                err
            }
        })?;
        if let Err(avail) = super::super::check_room(&fd, len) {
            return Err(ctx.kind(ErrorKind::OutOfResources, "").with_detail(format!(
                "not enough room in /dev/shm for the segment ({avail} bytes free)"
            )));
        }
        rustix::fs::flock(&fd, FlockOperation::LockShared).map_err(|e| ctx.errno(e))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| ctx.errno(e))?;
        exact_mode(&fd, &st, mode).map_err(|e| ctx.errno(e))?;
        PosixSegment::map(ctx, fd, &st, path.to_owned(), access)
    }

    fn map(
        ctx: Ctx<'_>,
        fd: OwnedFd,
        st: &rustix::fs::Stat,
        path: String,
        access: AccessMode,
    ) -> Result<PosixSegment> {
        let Ok(len) = usize::try_from(st.st_size) else {
            return Err(ctx.kind(
                ErrorKind::InvalidSize,
                "the segment is larger than the address space",
            ));
        };
        let (prot, writable) = match access {
            AccessMode::ReadOnly => (ProtFlags::READ, false),
            AccessMode::ReadWrite => (ProtFlags::READ | ProtFlags::WRITE, true),
        };
        let forks_before = crate::sys::fork::forks_started();
        let addr = map_file(&fd, len, prot).map_err(|e| {
            let err = ctx.errno(e);
            if e == rustix::io::Errno::NOMEM {
                err.with_kind(ErrorKind::OutOfResources)
            } else {
                err
            }
        })?;
        Ok(PosixSegment {
            fd,
            ino: st.st_ino,
            addr,
            len,
            writable,
            path,
            mapped: true,
            opener: my_pid(),
            forks_before,
        })
    }

    fn unmap(&mut self) {
        if self.mapped {
            self.mapped = false;
            // SAFETY: `addr`/`len` are this object's own mapping, made by mmap and not
            // unmapped before (`mapped` was true); no borrow of the bytes outlives the
            // object, since borrows come from `Locked`, which borrows it.
            let _ = unsafe { rustix::mm::munmap(self.addr.as_ptr().cast(), self.len) };
        }
    }

    /// Makes sure the descriptor is this process's own before its attach count is touched.
    ///
    /// A process forked from the one that opened it (and that did not exec) shares its open
    /// file description, and so its `flock`: turning it exclusive would drop the other
    /// process's count, or leave it holding an exclusive lock that blocks every attacher,
    /// and the file lease would see no other description and look only at this process's
    /// children. So the forked copy, already unmapped, closes the shared descriptor and
    /// opens the file anew, counted from then on like any other attachment. `Err` when the
    /// name no longer refers to this segment (removed, or replaced since).
    fn own_descriptor(&mut self) -> std::result::Result<(), Detached> {
        let me = my_pid();
        if self.opener == me {
            return Ok(());
        }
        let forks_before = crate::sys::fork::forks_started();
        match super::super::reopen_same_file(self.path.as_ref(), self.writable, self.ino) {
            Ok(Some(fresh)) => {
                self.fd = fresh; // closes the shared one
                self.opener = me;
                self.forks_before = forks_before;
                Ok(())
            }
            Ok(None) => Err(Detached::AlreadyRemoved),
            Err(_) => Err(Detached::Kept),
        }
    }

    /// Maps and counts again a segment [`detach_unlocked`] handed back, so that the object
    /// stays attached when the detach cannot finish. The address may differ.
    ///
    /// [`detach_unlocked`]: PosixSegment::detach_unlocked
    fn remap_file(&mut self) -> rustix::io::Result<()> {
        if self.mapped {
            return Ok(());
        }
        flock_shared(&self.fd)?;
        let prot = if self.writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        self.addr = map_file(&self.fd, self.len, prot)?;
        self.mapped = true;
        Ok(())
    }
}

impl crate::backend::sealed::Sealed for PosixSegment {}

// SAFETY: `addr..addr+len` is this value's own shared mapping of the segment file, unmapped
// only by `detach`/`detach_unlocked` (which consume the value or hand it back for `remap`,
// never to a borrower) or Drop; a new segment's file is zero-filled by the kernel;
// `writable` is true only for mappings made with PROT_WRITE.
unsafe impl RawSegment for PosixSegment {
    /// Creates the segment whole before giving it its name: an unnamed file in `/dev/shm`
    /// (`O_TMPFILE`) is sized, checked for room (no page is touched: the cost does not
    /// depend on the size; `populate` allocates the pages when asked), counted and mapped,
    /// and only then linked under the name (which fails, `AlreadyExists`, when the name is
    /// taken). Nobody can attach to a half-made qshm segment, and a failed or interrupted
    /// create leaves nothing behind. Where unnamed files are not available, glibc's
    /// `shm_open(O_CREAT|O_EXCL)` is what it does instead.
    #[doc(alias = "shm_open")]
    fn create(key: &NativeKey, size: usize, access: AccessMode, mode: u32) -> Result<PosixSegment> {
        let ctx = Ctx::new(Operation::Create, key);
        let name = file_name(ctx, key.native_key(), "")?;
        let path = shm_path(name);
        let mode = Mode::from_raw_mode(mode & 0o777);
        let Ok(len) = u64::try_from(size) else {
            return Err(ctx.kind(ErrorKind::InvalidSize, "size too large"));
        };
        if cfg!(qshm_portable) {
            // No `O_TMPFILE` on macOS or FreeBSD: `shm_open(O_CREAT|O_EXCL)`, then the one
            // `ftruncate` macOS allows.
            crate::sys::portable::hit(crate::sys::portable::Fallback::NamedCreate);
            return PosixSegment::create_named(ctx, path, len, access, mode);
        }
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        let fd = match rustix::fs::open(SHM_DIR, flags, mode) {
            Ok(fd) => fd,
            Err(
                rustix::io::Errno::OPNOTSUPP
                | rustix::io::Errno::ISDIR
                | rustix::io::Errno::INVAL
                | rustix::io::Errno::NOENT,
            ) => return PosixSegment::create_named(ctx, path, len, access, mode),
            Err(e) => return Err(ctx.errno(e)),
        };
        // A name already taken is what a caller most needs to hear about, before any
        // complaint about the size (Qt's order: shm_open fails first).
        let taken = |err: Error| {
            if std::fs::symlink_metadata(&path).is_ok() && !is_half_created(&path) {
                ctx.errno(rustix::io::Errno::EXIST)
            } else {
                err
            }
        };
        let seg = PosixSegment::prepare(ctx, fd, &path, len, access, mode).map_err(taken)?;
        let mut retried = false;
        loop {
            match link_unnamed(&seg.fd, &path) {
                Ok(()) => return Ok(seg),
                Err(rustix::io::Errno::EXIST) if !retried && is_half_created(&path) => {
                    // Size 0 under the lock: a creator (Qt's, which names the file before
                    // sizing it) died between shm_open and ftruncate. Nobody can be using
                    // it; replace it.
                    retried = true;
                    let _ = rustix::fs::unlink(&path);
                }
                // No /proc to name the descriptor by.
                Err(rustix::io::Errno::NOENT)
                    if !std::path::Path::new("/proc/self/fd").exists() =>
                {
                    drop(seg);
                    return PosixSegment::create_named(ctx, path, len, access, mode);
                }
                Err(e) => return Err(ctx.errno(e)),
            }
        }
    }

    /// Attaches with the segment's lock held (when [`attach_unlocked`] could not): open,
    /// `flock(LOCK_SH)`, `fstat` for the size, `mmap`.
    ///
    /// [`attach_unlocked`]: PosixSegment::attach_unlocked
    fn attach(key: &NativeKey, access: AccessMode) -> Result<PosixSegment> {
        let ctx = Ctx::new(Operation::Attach, key);
        let path = shm_path(file_name(ctx, key.native_key(), "")?);
        let Some((fd, st)) = open_counted(ctx, &path, access)? else {
            return Err(ctx.kind(ErrorKind::NotFound, "removed while being attached"));
        };
        if st.st_size == 0 {
            // With the lock held, a creator cannot be half-way: Qt's died between shm_open
            // and ftruncate.
            return Err(ctx.kind(
                ErrorKind::NotFound,
                "does not exist (its creator died creating it)",
            ));
        }
        PosixSegment::map(ctx, fd, &st, path, access)
    }

    /// Attaches without the segment's lock, which the attach count makes safe: a last
    /// detach removes the segment while holding the count's exclusive `flock`, so an
    /// attacher that opened the file just before gets its shared `flock` only afterwards,
    /// sees the file unlinked (`st_nlink == 0`) and looks again. `Ok(None)` when the file
    /// is still empty (a Qt creator names it before sizing it, under the lock): the caller
    /// then attaches under the lock.
    fn attach_unlocked(key: &NativeKey, access: AccessMode) -> Result<Option<PosixSegment>> {
        let ctx = Ctx::new(Operation::Attach, key);
        let path = shm_path(file_name(ctx, key.native_key(), "")?);
        for _ in 0..100 {
            let Some((fd, st)) = open_counted(ctx, &path, access)? else {
                continue; // removed while we waited for the count: look again
            };
            if st.st_size == 0 {
                return Ok(None);
            }
            return PosixSegment::map(ctx, fd, &st, path, access).map(Some);
        }
        Err(ctx.kind(
            ErrorKind::NotFound,
            "the segment kept being removed while being attached",
        ))
    }

    fn ptr(&self) -> *mut u8 {
        self.addr.as_ptr()
    }

    fn len(&self) -> usize {
        self.len
    }

    fn writable(&self) -> bool {
        self.writable
    }

    /// Unmaps and, when this is certainly not the last attachment, finishes the detach
    /// without the segment's lock: `None`. `Some` (unmapped, no longer counted) when it may
    /// be the last one: the caller takes the lock and calls [`detach`], or [`remap`] when it
    /// cannot have the lock.
    ///
    /// Turning a shared `flock` exclusive first drops it (flock(2)), so of several
    /// attachments leaving at once the last to try succeeds: the others fail because it
    /// still held its count, and it does not fail because of theirs. The exclusive lock is
    /// dropped again before the caller waits for the segment's lock, so that no one holds
    /// the count while waiting (an attach under the lock takes the count).
    ///
    /// [`detach`]: PosixSegment::detach
    /// [`remap`]: PosixSegment::remap
    fn detach_unlocked(mut self, remove_if_last: bool) -> Option<PosixSegment> {
        self.unmap();
        if !remove_if_last || self.own_descriptor().is_err() {
            return None;
        }
        match rustix::fs::flock(&self.fd, FlockOperation::NonBlockingLockExclusive) {
            // Someone else is attached, or is leaving and will do the last detach's checks.
            Err(rustix::io::Errno::WOULDBLOCK) => None,
            Ok(()) => {
                let _ = rustix::fs::flock(&self.fd, FlockOperation::Unlock);
                Some(self)
            }
            Err(_) => Some(self),
        }
    }

    /// Unmaps; when this was the last attachment anywhere (qshm's shared `flock`s and every
    /// process's mappings), removes the segment.
    /// The key file argument is System V's: a POSIX segment has none.
    fn detach(mut self, remove_if_last: bool, _remove_key_file: bool) -> Result<Detached> {
        self.unmap();
        if !remove_if_last {
            return Ok(Detached::Kept);
        }
        if let Err(gone) = self.own_descriptor() {
            return Ok(gone);
        }
        if !is_last_user(&self.fd, self.forks_before) {
            return Ok(Detached::Kept);
        }
        // Removed by `force_remove` while mapped, and perhaps made anew since: the name is
        // not this segment's any more, and the other one is not ours to remove.
        if file_inode(&self.path) != Some(self.ino) {
            return Ok(Detached::AlreadyRemoved);
        }
        match rustix::fs::unlink(&self.path) {
            Ok(()) => Ok(Detached::Removed),
            Err(rustix::io::Errno::NOENT) => Ok(Detached::AlreadyRemoved),
            Err(e) => Err(crate::sys::os_error(
                e.raw_os_error(),
                Operation::Detach,
                self.path.clone(),
            )),
        }
    }

    /// Removes the segment behind `key` (only when nobody uses it, if `only_if_unused`).
    /// Returns whether one was removed. The caller holds the segment's lock.
    fn remove(key: &NativeKey, only_if_unused: bool) -> Result<bool> {
        let ctx = Ctx::new(Operation::Remove, key);
        let name = file_name(ctx, key.native_key(), "")?;
        let path = shm_path(name);
        // Held until after the unlink: the attach count taken exclusively, so that an
        // attacher (which takes no lock) that opened the file meanwhile sees it unlinked.
        let _counted = if only_if_unused {
            let forks_before = crate::sys::fork::forks_started();
            let fd = match open_existing(&path, AccessMode::ReadOnly) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::NOENT) => return Ok(false),
                Err(e) => return Err(ctx.errno(e)),
            };
            if !is_last_user(&fd, forks_before) {
                return Ok(false);
            }
            Some(fd)
        } else {
            None
        };
        match rustix::fs::unlink(&path) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::NOENT) => Ok(false),
            Err(e) => Err(ctx.errno(e)),
        }
    }

    /// The file's owner and mode (`lstat`: a link or anything but a regular file is none).
    fn owner_of(key: &NativeKey) -> Option<(u32, u32)> {
        let ctx = Ctx::new(Operation::Attach, key);
        let name = file_name(ctx, key.native_key(), "").ok()?;
        let st = rustix::fs::lstat(shm_path(name)).ok()?;
        (st.st_mode & libc::S_IFMT == libc::S_IFREG).then_some((st.st_uid, st.st_mode & 0o777))
    }

    /// Whether a segment exists behind `key`.
    fn exists(key: &NativeKey) -> bool {
        let ctx = Ctx::new(Operation::Remove, key);
        file_name(ctx, key.native_key(), "")
            .is_ok_and(|name| std::path::Path::new(&shm_path(name)).exists())
    }

    /// The file's size now: another process may have shrunk it (`ftruncate`) under our
    /// mapping.
    fn size_now(&self) -> std::io::Result<Option<u64>> {
        Ok(Some(rustix::fs::fstat(&self.fd)?.st_size as u64))
    }

    /// `pread` of the file, not a copy from the mapping: a file another process shrank
    /// gives a short read (`InvalidSize`) instead of SIGBUS.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match rustix::io::pread(&self.fd, &mut buf[done..], (offset + done) as u64) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::InvalidSize,
                        Operation::Lock,
                        self.path.clone(),
                    )
                    .with_detail(format!(
                        "the segment was shrunk by another process: {} of {} bytes at \
                             offset {offset} are gone",
                        buf.len() - done,
                        buf.len()
                    )))
                }
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    return Err(crate::sys::os_error(
                        e.raw_os_error(),
                        Operation::Lock,
                        self.path.clone(),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The same `pread`: the kernel copies, so no lock is needed for it to be sound (only
    /// for the bytes to be consistent).
    fn read_at_unlocked(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.read_at(offset, buf)
    }

    fn remap(&mut self) -> Result<()> {
        self.remap_file().map_err(|e| {
            crate::sys::os_error(e.raw_os_error(), Operation::Detach, self.path.clone())
        })
    }
}

impl Drop for PosixSegment {
    fn drop(&mut self) {
        self.unmap();
    }
}

/// `flock(LOCK_SH)`, waiting (a last detach holds the lock exclusively for a moment).
pub(super) fn flock_shared(fd: &OwnedFd) -> rustix::io::Result<()> {
    loop {
        match rustix::fs::flock(fd, FlockOperation::LockShared) {
            Err(rustix::io::Errno::INTR) => {}
            other => return other,
        }
    }
}

/// Opens the segment file, counts the attachment (`flock(LOCK_SH)`) and reads its size and
/// inode; `Ok(None)` when the file was unlinked before the count was had (a last detach
/// removes it holding the count exclusively).
pub(super) fn open_counted(
    ctx: Ctx<'_>,
    path: &str,
    access: AccessMode,
) -> Result<Option<(OwnedFd, rustix::fs::Stat)>> {
    let fd = open_existing(path, access).map_err(|e| match e {
        rustix::io::Errno::NODEV => ctx.errno(e).with_kind(ErrorKind::KeyError).with_detail(
            "the name is taken by something that is not a shared memory segment (not a \
             regular file)",
        ),
        _ => ctx.errno(e),
    })?;
    flock_shared(&fd).map_err(|e| ctx.errno(e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| ctx.errno(e))?;
    Ok((st.st_nlink > 0).then_some((fd, st)))
}

/// A segment of size 0: what a creator that died between `shm_open` and `ftruncate` leaves.
pub(super) fn is_half_created(path: &str) -> bool {
    open_existing(path, AccessMode::ReadOnly)
        .and_then(|fd| rustix::fs::fstat(&fd))
        .is_ok_and(|st| st.st_size == 0)
}
