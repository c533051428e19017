//! The segment: `shm_open`, sized once, counted through its companion.

use super::*;

/// A mapped POSIX shared memory segment of the portable backend.
pub(crate) struct PortablePosixSegment {
    fd: OwnedFd,
    addr: NonNull<u8>,
    len: usize,
    writable: bool,
    name: CString,
    companion: Arc<Companion>,
    /// Still mapped (`unmap` ends it).
    live: bool,
    /// Still counted among the companion's users (`detach` ends it; Drop ends what is left).
    counted: bool,
}

// SAFETY: the struct owns a descriptor, a mapping and a shared companion, none tied to the
// thread that made them; munmap and close may run on any thread. It never reads or writes
// the mapped bytes itself: access goes through `Locked`, which requires the lock.
unsafe impl Send for PortablePosixSegment {}
// SAFETY: `&PortablePosixSegment` exposes only the address, the length and the descriptor.
unsafe impl Sync for PortablePosixSegment {}

impl std::fmt::Debug for PortablePosixSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortablePosixSegment")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .field("len", &self.len)
            .finish()
    }
}

impl crate::backend::sealed::Sealed for PortablePosixSegment {}

fn shm_open(name: &CString, flags: rustix::shm::OFlags, mode: u32) -> rustix::io::Result<OwnedFd> {
    rustix::shm::open(
        name.as_c_str(),
        flags,
        Mode::from_raw_mode((mode & 0o777) as _),
    )
}

/// Whether the object `name` exists with size 0 (half created).
fn is_empty(name: &CString) -> bool {
    shm_open(name, rustix::shm::OFlags::RDONLY, 0)
        .and_then(|fd| rustix::fs::fstat(&fd))
        .is_ok_and(|st| st.st_size == 0)
}

fn text(name: &CString) -> &str {
    name.to_str().unwrap_or_default()
}

impl PortablePosixSegment {
    /// Joins the segment's users, then opens and maps it; `None` (counted out again) when it
    /// has no size yet.
    fn open_counted(ctx: Ctx<'_>, access: AccessMode) -> Result<Option<PortablePosixSegment>> {
        use rustix::shm::OFlags;
        let name = object_name(ctx)?;
        let companion = companion(ctx, Kind::Segment, text(&name), Some(0o600), true)?;
        let flags = match access {
            AccessMode::ReadOnly => OFlags::RDONLY,
            AccessMode::ReadWrite => OFlags::RDWR,
        };
        let fail = |companion: &Companion, err: Option<Error>| {
            if let Some(last) = companion.leave() {
                if err
                    .as_ref()
                    .is_some_and(|e| e.kind() == ErrorKind::NotFound)
                {
                    let _ = last.remove_file(); // made by this attach, for nothing
                }
            }
            err.map_or(Ok(None), Err)
        };
        let fd = match shm_open(&name, flags, 0) {
            Ok(fd) => fd,
            Err(e) => return fail(&companion, Some(ctx.errno(e))),
        };
        let st = match rustix::fs::fstat(&fd) {
            Ok(st) => st,
            Err(e) => return fail(&companion, Some(ctx.errno(e))),
        };
        // A companion this attach made has the segment's permissions.
        companion.give_mode(st.st_mode as u32);
        let len = match usize::try_from(st.st_size) {
            Ok(0) => return fail(&companion, None),
            Ok(len) => len,
            Err(_) => {
                return fail(
                    &companion,
                    Some(ctx.kind(ErrorKind::InvalidSize, "larger than the address space")),
                )
            }
        };
        PortablePosixSegment::map(ctx, fd, len, access, name, companion).map(Some)
    }

    /// Maps `fd` (`len` bytes) and makes the segment; on failure nothing is left counted.
    fn map(
        ctx: Ctx<'_>,
        fd: OwnedFd,
        len: usize,
        access: AccessMode,
        name: CString,
        companion: Arc<Companion>,
    ) -> Result<PortablePosixSegment> {
        let (prot, writable) = match access {
            AccessMode::ReadOnly => (ProtFlags::READ, false),
            AccessMode::ReadWrite => (ProtFlags::READ | ProtFlags::WRITE, true),
        };
        // SAFETY: a null address hint makes a new mapping and changes no existing one; `fd`
        // is open for the access `prot` asks; `len` is the object's size, which only a
        // hostile process can shrink (reads check `size_now` first).
        let addr =
            unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, &fd, 0) }
                .and_then(|a| NonNull::new(a.cast::<u8>()).ok_or(rustix::io::Errno::NOMEM));
        let addr = match addr {
            Ok(addr) => addr,
            Err(e) => {
                // Counted out again; the object stays: whoever made it decides.
                let _last = companion.leave();
                let err = ctx.errno(e);
                return Err(if e == rustix::io::Errno::NOMEM {
                    err.with_kind(ErrorKind::OutOfResources)
                } else {
                    err
                });
            }
        };
        Ok(PortablePosixSegment {
            fd,
            addr,
            len,
            writable,
            name,
            companion,
            live: true,
            counted: true,
        })
    }

    /// Whether the last qshm detach removes the segment: qshm created it, and every
    /// process that can attach it sees the same companion. A sandboxed Apple application's
    /// name (`<group>/<name>`, shared by the applications of a group) has its companion in
    /// the application's own temporary directory, which the group's other applications do
    /// not see: such a segment is kept, as Qt keeps every POSIX segment.
    fn removable(&self) -> bool {
        let shared = !cfg!(qshm_apple) || self.name.as_bytes().starts_with(b"/");
        shared && self.companion.made_by_qshm().load(Ordering::Acquire) != 0
    }

    /// Unmaps (once).
    fn unmap(&mut self) {
        if std::mem::take(&mut self.live) {
            // SAFETY: the mapping made in `map`, unmapped once (`live`); slices of it borrow
            // the segment, so none outlives this `&mut` use.
            let _ = unsafe { rustix::mm::munmap(self.addr.as_ptr().cast(), self.len) };
        }
    }
}

impl Drop for PortablePosixSegment {
    /// A segment dropped without `detach` (a failed `create` or `attach` after mapping):
    /// unmapped and counted out, never removed.
    fn drop(&mut self) {
        self.unmap();
        if std::mem::take(&mut self.counted) {
            drop(self.companion.leave());
        }
    }
}

// SAFETY: `addr..addr+len` is a shared mapping of the object made in `map`, writable only
// when `writable`, unmapped only in `detach`, which consumes the value.
unsafe impl RawSegment for PortablePosixSegment {
    /// `shm_open(O_CREAT|O_EXCL)`, `ftruncate` (once: macOS allows no second), `mmap`; under
    /// the segment's lock, so an attacher never finds it unsized.
    fn create(
        key: &NativeKey,
        size: usize,
        access: AccessMode,
        mode: u32,
    ) -> Result<PortablePosixSegment> {
        use rustix::shm::OFlags;
        let ctx = Ctx::new(Operation::Create, key);
        let name = object_name(ctx)?;
        let Ok(len) = u64::try_from(size) else {
            return Err(ctx.kind(ErrorKind::InvalidSize, "larger than a file can be"));
        };
        crate::sys::portable::hit(crate::sys::portable::Fallback::NamedCreate);
        let companion = companion(ctx, Kind::Segment, text(&name), Some(mode), true)?;
        let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL;
        let mut retried = false;
        let fd = loop {
            match shm_open(&name, flags, mode) {
                Ok(fd) => break fd,
                // A creator that died between shm_open and ftruncate (under the lock, which
                // this call holds now) left an empty object: replaced, once.
                Err(rustix::io::Errno::EXIST) if !retried && is_empty(&name) => {
                    retried = true;
                    let _ = rustix::shm::unlink(name.as_c_str());
                }
                Err(e) => {
                    if let Some(last) = companion.leave() {
                        if e != rustix::io::Errno::EXIST {
                            let _ = last.remove_file();
                        }
                    }
                    return Err(ctx.errno(e));
                }
            }
        };
        companion.made_by_qshm().store(1, Ordering::Release);
        // A fresh object is not always given the mode asked for (the umask): as System V
        // objects get it, exactly. Where the system refuses fchmod on it, the umask's mode.
        let _ = rustix::fs::fchmod(&fd, Mode::from_raw_mode((mode & 0o777) as _));
        let undo = |companion: &Companion| {
            let _ = rustix::shm::unlink(name.as_c_str());
            if let Some(last) = companion.leave() {
                let _ = last.remove_file();
            }
        };
        if let Err(e) = rustix::fs::ftruncate(&fd, len) {
            undo(&companion);
            let err = ctx.errno(e);
            return Err(
                if matches!(e, rustix::io::Errno::INVAL | rustix::io::Errno::FBIG) {
                    err.with_kind(ErrorKind::InvalidSize)
                } else {
                    err
                },
            );
        }
        let keep = Arc::clone(&companion);
        PortablePosixSegment::map(ctx, fd, size, access, name.clone(), companion).inspect_err(
            |_| {
                let _ = rustix::shm::unlink(name.as_c_str());
                if let Some(last) = keep.no_users() {
                    let _ = last.remove_file();
                }
            },
        )
    }

    fn attach(key: &NativeKey, access: AccessMode) -> Result<PortablePosixSegment> {
        let ctx = Ctx::new(Operation::Attach, key);
        PortablePosixSegment::open_counted(ctx, access)?.ok_or_else(|| {
            // Half created by a creator that died before sizing it (a live creator sizes
            // it under the lock, which this call holds): as good as absent.
            ctx.kind(
                ErrorKind::NotFound,
                "the segment was never sized (its creator died before ftruncate)",
            )
        })
    }

    /// Counted before it is opened, so no last detach can remove it in between: without
    /// the lock. `None` for an object not sized yet (a Qt creator sizes it under the lock).
    fn attach_unlocked(
        key: &NativeKey,
        access: AccessMode,
    ) -> Result<Option<PortablePosixSegment>> {
        PortablePosixSegment::open_counted(Ctx::new(Operation::Attach, key), access)
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

    fn exists(key: &NativeKey) -> bool {
        let Ok(name) = object_name(Ctx::new(Operation::Attach, key)) else {
            return false;
        };
        shm_open(&name, rustix::shm::OFlags::RDONLY, 0).is_ok()
    }

    /// `shm_unlink`, and the companion, unless (`only_if_unattached`) a qshm process is
    /// attached (Qt's attachments are not counted: see the module docs).
    fn remove(key: &NativeKey, only_if_unattached: bool) -> Result<bool> {
        let ctx = Ctx::new(Operation::Remove, key);
        let name = object_name(ctx)?;
        let companion = match Companion::open(&companion::path_of(Kind::Segment, text(&name)), None)
        {
            Ok(c) => Some(c),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(ctx.io(&e)),
        };
        let last = companion.as_deref().map(Companion::no_users);
        if only_if_unattached && matches!(last, Some(None)) {
            return Ok(false);
        }
        let removed = match rustix::shm::unlink(name.as_c_str()) {
            Ok(()) => true,
            Err(rustix::io::Errno::NOENT) => false,
            Err(e) => return Err(ctx.errno(e)),
        };
        if let Some(Some(last)) = &last {
            let _ = last.remove_file();
        }
        if let Ok(lock) = object_name(Ctx::new(Operation::Remove, &key.lock_key())) {
            super::semaphore::remove_orphaned_companion(&lock);
        }
        Ok(removed)
    }

    fn owner_of(key: &NativeKey) -> Option<(u32, u32)> {
        let name = object_name(Ctx::new(Operation::Attach, key)).ok()?;
        let fd = shm_open(&name, rustix::shm::OFlags::RDONLY, 0).ok()?;
        let st = rustix::fs::fstat(&fd).ok()?;
        Some((st.st_uid, (st.st_mode & 0o777) as u32))
    }

    /// FreeBSD (and Linux) let anyone with write access resize the object under a mapping.
    fn size_now(&self) -> std::io::Result<Option<u64>> {
        let st = rustix::fs::fstat(&self.fd)?;
        Ok(Some(u64::try_from(st.st_size).unwrap_or(0)))
    }

    /// `pread` of the object where the system reads shared memory objects (Linux, FreeBSD):
    /// an object another process shrank gives a short read (`InvalidSize`) instead of
    /// SIGBUS. Where it does not (macOS, where an object cannot be resized either), a copy
    /// from the mapping of what `fstat` says is there.
    fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        let want = buf.len();
        let shrunk = |done: usize| {
            Error::new(ErrorKind::InvalidSize, Operation::Lock, text(&self.name)).with_detail(
                format!(
                    "the segment was shrunk by another process: {} of {} bytes at offset \
                     {offset} are gone",
                    want - done,
                    want
                ),
            )
        };
        let mut done = 0;
        while done < want {
            match rustix::io::pread(&self.fd, &mut buf[done..], (offset + done) as u64) {
                Ok(0) => return Err(shrunk(done)),
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(_) if done == 0 => {
                    let size = self.size_now().ok().flatten().unwrap_or(0);
                    if (offset + want) as u64 > size {
                        return Err(shrunk(0));
                    }
                    crate::sys::copy_out(self, offset, buf);
                    return Ok(());
                }
                Err(e) => {
                    return Err(crate::sys::os_error(
                        e.raw_os_error(),
                        Operation::Lock,
                        text(&self.name),
                    ))
                }
            }
        }
        Ok(())
    }

    fn read_at_unlocked(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.read_at(offset, buf)
    }

    /// Unmaps and counts itself out. Not the last qshm user, or a segment to keep: done
    /// (`None`). Otherwise the caller takes the lock and finishes with `detach`, which asks
    /// again (or `remap`s when it cannot have the lock).
    fn detach_unlocked(mut self, remove_if_last: bool) -> Option<PortablePosixSegment> {
        self.unmap();
        self.counted = false;
        // The last user's write lock is not kept while the caller waits for the segment's
        // lock: an attach under that lock waits for the users' byte.
        let last = self.companion.leave().is_some();
        (last && remove_if_last && self.removable()).then_some(self)
    }

    fn remap(&mut self) -> Result<()> {
        let ctx = Ctx::label(Operation::Detach, text(&self.name));
        if !self.counted {
            if !self.companion.join().map_err(|e| ctx.io(&e))? {
                return Err(ctx.kind(ErrorKind::NotFound, "removed meanwhile"));
            }
            self.counted = true;
        }
        if !self.live {
            let prot = if self.writable {
                ProtFlags::READ | ProtFlags::WRITE
            } else {
                ProtFlags::READ
            };
            // SAFETY: as in `map`: a new mapping of the descriptor this value owns, with the
            // access it was opened for.
            let addr = unsafe {
                rustix::mm::mmap(
                    std::ptr::null_mut(),
                    self.len,
                    prot,
                    MapFlags::SHARED,
                    &self.fd,
                    0,
                )
            }
            .map_err(|e| ctx.errno(e))?;
            self.addr = NonNull::new(addr.cast::<u8>()).ok_or_else(|| ctx.err(libc::ENOMEM))?;
            self.live = true;
        }
        Ok(())
    }

    fn detach(mut self, remove_if_last: bool, _remove_key_file: bool) -> Result<Detached> {
        self.unmap();
        let last = if std::mem::take(&mut self.counted) {
            self.companion.leave()
        } else {
            // Counted out by `detach_unlocked`: asked again, under the lock now.
            self.companion.no_users()
        };
        let Some(last) = last else {
            return Ok(Detached::Kept);
        };
        // Not a segment Qt made: Qt's attachments are invisible here, and Qt's own POSIX
        // backend never removes one (see the module docs).
        if !remove_if_last || !self.removable() {
            return Ok(Detached::Kept);
        }
        let detached = match rustix::shm::unlink(self.name.as_c_str()) {
            Ok(()) => Detached::Removed,
            Err(rustix::io::Errno::NOENT) => Detached::AlreadyRemoved,
            Err(e) => {
                return Err(crate::sys::os_error(
                    e.raw_os_error(),
                    Operation::Detach,
                    text(&self.name),
                ))
            }
        };
        let _ = last.remove_file();
        Ok(detached)
    }
}
