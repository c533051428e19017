//! How a mapped segment is created, opened or received: the option builders.

use super::*;

/// Options for file-backed segments: where, with which permissions, and what is refused.
///
/// ```
/// use qshm::{AccessMode, mapped::FileOptions};
///
/// let seg = FileOptions::new().permissions(0o640).create_temporary(1024)?;
/// let reader = FileOptions::new().access(AccessMode::ReadOnly).open(seg.path().unwrap())?;
/// assert!(reader.lock()?.as_mut_slice().is_err());
/// # Ok::<(), qshm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct FileOptions {
    dir: Option<PathBuf>,
    mode: u32,
    allow_disk_backed: bool,
    access: AccessMode,
    remove_on_last_detach: bool,
    /// Set by `create_temporary` (Windows: deleted by the system with its last handle).
    temporary: bool,
    check_size_on_lock: bool,
    populate: bool,
    layout: Option<LayoutStamp>,
}

impl Default for FileOptions {
    fn default() -> FileOptions {
        FileOptions::new()
    }
}

impl FileOptions {
    /// The defaults: the [default directory](FileOptions::default_directory), mode `0o600`,
    /// RAM-backed file systems only, read-write, removed at the last detach, size checked at
    /// each lock.
    pub fn new() -> FileOptions {
        FileOptions {
            dir: None,
            mode: 0o600,
            allow_disk_backed: false,
            access: AccessMode::ReadWrite,
            remove_on_last_detach: true,
            temporary: false,
            check_size_on_lock: true,
            populate: false,
            layout: None,
        }
    }

    /// Maps every page of the data area at once (default `false`). At create the pages are
    /// also allocated, so that a full file system fails `create` with
    /// [`ErrorKind::OutOfResources`] instead of killing a later writer with SIGBUS; at open
    /// they are mapped for reading, so that the first pass over a large segment does not
    /// fault page by page. See [`SharedMemory::set_populate`](crate::SharedMemory::set_populate).
    pub fn populate(&mut self, populate: bool) -> &mut FileOptions {
        self.populate = populate;
        self
    }

    /// `$XDG_RUNTIME_DIR` when it is valid (absolute, owned by this user, mode 0700), else
    /// `/dev/shm` (Linux) or the temporary directory (macOS, iOS, FreeBSD: `$TMPDIR`,
    /// [`std::env::temp_dir`]): where relative names are created and opened. On Windows,
    /// the temporary directory (`GetTempPath`, [`std::env::temp_dir`]).
    pub fn default_directory() -> PathBuf {
        imp::default_dir()
    }

    /// The directory relative names are resolved in (absolute names ignore it).
    pub fn directory(&mut self, dir: impl Into<PathBuf>) -> &mut FileOptions {
        self.dir = Some(dir.into());
        self
    }

    /// The permission bits a created file gets, exactly (the umask does not apply; default
    /// `0o600`). Every user needs read *and write* permission, since taking the lock writes
    /// the header. On Windows the mode is ignored: the file gets the directory's inherited
    /// access control list.
    pub fn permissions(&mut self, mode: u32) -> &mut FileOptions {
        self.mode = mode & 0o777;
        self
    }

    /// Allows a file system that writes pages back to storage (ext4, xfs, …). Off by
    /// default: such a segment is slow and its contents reach the disk. No effect on
    /// Windows, which has no RAM-only file system: files are created with
    /// `FILE_ATTRIBUTE_TEMPORARY`, which keeps their pages in memory while it can. No
    /// effect on macOS, iOS and FreeBSD either, which have no RAM-backed directory that
    /// every system has (macOS none at all): a segment lives where it is asked to.
    pub fn allow_disk_backed(&mut self, allow: bool) -> &mut FileOptions {
        self.allow_disk_backed = allow;
        self
    }

    /// How the data area is mapped. [`AccessMode::ReadOnly`] maps it without write
    /// permission (the header stays writable, to take the lock).
    pub fn access(&mut self, access: AccessMode) -> &mut FileOptions {
        self.access = access;
        self
    }

    /// For [`create`](FileOptions::create): whether the file is removed when its last qshm
    /// user detaches (default `true`, as [`SharedMemory`](crate::SharedMemory) segments
    /// are). Recorded in the header, so every user follows the creator's choice. A file
    /// whose every user died stays, like an orphaned segment:
    /// [`MappedSegment::remove_file`] removes it.
    pub fn remove_on_last_detach(&mut self, remove: bool) -> &mut FileOptions {
        self.remove_on_last_detach = remove;
        self
    }

    /// Whether each lock checks that the file was not truncated (default `true`): before
    /// taking the lock, whose word is in the file's header, and again under it before the
    /// guard lends its bytes (two `fstat`s). Turn it off only when every peer is trusted:
    /// the lock then makes no system call. No effect on Windows, which refuses to truncate a
    /// file while any process maps it: no check is needed there.
    pub fn check_size_on_lock(&mut self, check: bool) -> &mut FileOptions {
        self.check_size_on_lock = check;
        self
    }

    /// At create: records `stamp` in the header. At open: refuses a segment with another
    /// stamp, or none, with [`ErrorKind::Layout`]. Default: none recorded, any accepted.
    pub fn layout(&mut self, stamp: LayoutStamp) -> &mut FileOptions {
        self.layout = Some(stamp);
        self
    }

    /// The path `name` resolves to.
    pub fn resolve(&self, name: impl AsRef<Path>) -> PathBuf {
        let name = name.as_ref();
        if name.is_absolute() {
            name.to_path_buf()
        } else {
            self.dir.clone().unwrap_or_else(imp::default_dir).join(name)
        }
    }

    fn params(&self) -> imp::OpenParams {
        imp::OpenParams {
            access: self.access,
            allow_disk_backed: self.allow_disk_backed,
            allow_unsealed: true,
            check_size_on_lock: self.check_size_on_lock,
            layout: self.layout.map(LayoutStamp::raw),
        }
    }

    /// Creates the file `name` with a data area of `size` bytes (zeroed), exclusively.
    ///
    /// The file is sized and its header written before it appears under its name
    /// (`O_TMPFILE` + `linkat`; on Windows under a staged name, renamed without replacing),
    /// so that no other process ever opens a half-made segment.
    ///
    /// # Errors
    ///
    /// * [`ErrorKind::AlreadyExists`]: the file exists.
    /// * [`ErrorKind::InvalidSize`]: `size` is 0 or too large.
    /// * [`ErrorKind::KeyError`]: the directory is on a disk-backed file system (see
    ///   [`allow_disk_backed`](FileOptions::allow_disk_backed)), or the name is not a file
    ///   name.
    /// * [`ErrorKind::NotFound`], [`ErrorKind::PermissionDenied`],
    ///   [`ErrorKind::OutOfResources`].
    #[doc(alias = "open")]
    pub fn create(&self, name: impl AsRef<Path>, size: usize) -> Result<MappedSegment> {
        let path = self.resolve(name);
        let inner = imp::create_file(
            &path,
            size,
            self.mode,
            self.remove_on_last_detach,
            self.temporary,
            &self.params(),
        )?;
        let seg = MappedSegment::new(inner, format!("file:{}", path.display()));
        seg.populated(self.populate, Operation::Create)
            .inspect_err(|_| {
                // Nobody else can have used it yet: it was created a moment ago.
                let _ = imp::remove_file(&path);
            })
    }

    /// Opens the existing segment file `name`, after checking its header.
    ///
    /// # Errors
    ///
    /// * [`ErrorKind::NotFound`]: no such file.
    /// * [`ErrorKind::KeyError`]: not a qshm segment (bad magic, corrupt header), or on a
    ///   disk-backed file system.
    /// * [`ErrorKind::Unsupported`]: another layout version or byte order.
    /// * [`ErrorKind::InvalidSize`]: the file is smaller than its header claims.
    /// * [`ErrorKind::PermissionDenied`]: no read and write permission.
    pub fn open(&self, name: impl AsRef<Path>) -> Result<MappedSegment> {
        let path = self.resolve(name);
        let inner = imp::open_file(&path, &self.params())?;
        MappedSegment::new(inner, format!("file:{}", path.display()))
            .populated(self.populate, Operation::Attach)
    }

    /// Creates a uniquely named file (`qshm-<pid>-<random>`) in the directory, removed when
    /// its last user detaches: Qt's `QTemporaryFile` idiom. Other processes open it by
    /// [`MappedSegment::path`].
    ///
    /// On Windows the file is also created with `FILE_FLAG_DELETE_ON_CLOSE`: the system
    /// deletes it when its last handle closes, even when every user crashed. Windows may
    /// refuse new opens by path of such a file once every handle of the creator's (and of
    /// the children it passed it to) is closed, while others opened by path keep it: open
    /// it while its creator is attached, or pass it to children
    /// ([`MappedSegment::spawn_child`]).
    ///
    /// # Errors
    ///
    /// As [`create`](FileOptions::create).
    pub fn create_temporary(&self, size: usize) -> Result<MappedSegment> {
        let mut opts = self.clone();
        opts.remove_on_last_detach = true;
        opts.temporary = true;
        for _ in 0..16 {
            let name = format!(
                "qshm-{}-{:016x}",
                std::process::id(),
                crate::sys::random::random_u64()
            );
            match opts.create(&name, size) {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                other => return other,
            }
        }
        Err(Error::new(
            ErrorKind::AlreadyExists,
            Operation::Create,
            self.resolve("qshm-*").display().to_string(),
        )
        .with_detail("could not find an unused temporary name"))
    }
}

#[cfg(qshm_mapped_unix)]
/// Options for memfd segments (Linux).
///
/// ```
/// use qshm::mapped::MemfdOptions;
///
/// let seg = MemfdOptions::new().create("frame-buffer", 1 << 20)?;
/// assert!(seg.is_shrink_sealed());
/// # Ok::<(), qshm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MemfdOptions {
    seal: bool,
    populate: bool,
    layout: Option<LayoutStamp>,
}

#[cfg(qshm_mapped_unix)]
impl Default for MemfdOptions {
    fn default() -> MemfdOptions {
        MemfdOptions::new()
    }
}

#[cfg(qshm_mapped_unix)]
impl MemfdOptions {
    /// The defaults: sealed against shrinking and growing.
    pub fn new() -> MemfdOptions {
        MemfdOptions {
            seal: true,
            populate: false,
            layout: None,
        }
    }

    /// Allocates and maps every page of the data area at create (default `false`); see
    /// [`FileOptions::populate`].
    pub fn populate(&mut self, populate: bool) -> &mut MemfdOptions {
        self.populate = populate;
        self
    }

    /// Whether to seal the size (`F_SEAL_SHRINK | F_SEAL_GROW`) before mapping (default
    /// `true`). An unsealed memfd is refused by receivers unless they opt in with
    /// [`ReceiveOptions::allow_unsealed`].
    pub fn seal_size(&mut self, seal: bool) -> &mut MemfdOptions {
        self.seal = seal;
        self
    }

    /// Records `stamp` in the header ([`LayoutStamp`]); receivers can insist on it with
    /// [`ReceiveOptions::layout`].
    pub fn layout(&mut self, stamp: LayoutStamp) -> &mut MemfdOptions {
        self.layout = Some(stamp);
        self
    }

    /// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)` with a data area of `size`
    /// bytes (zeroed). `name` is only a label (shown in `/proc/<pid>/fd`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`] (0 or too large), [`ErrorKind::KeyError`] (a name with a
    /// NUL or longer than 249 bytes), [`ErrorKind::OutOfResources`].
    #[doc(alias = "memfd_create")]
    pub fn create(&self, name: &str, size: usize) -> Result<MappedSegment> {
        let inner = imp::create_memfd(name, size, self.seal, self.layout.map(LayoutStamp::raw))?;
        MappedSegment::new(inner, format!("memfd:{name}"))
            .populated(self.populate, Operation::Create)
    }
}

/// What a receiver of a descriptor accepts ([`MappedSegment::from_fd`],
/// [`recv_from`](MappedSegment::recv_from), [`from_env`](MappedSegment::from_env)).
#[derive(Clone, Debug)]
pub struct ReceiveOptions {
    access: AccessMode,
    allow_unsealed: bool,
    allow_disk_backed: bool,
    pub(super) populate: bool,
    layout: Option<LayoutStamp>,
}

impl Default for ReceiveOptions {
    fn default() -> ReceiveOptions {
        ReceiveOptions::new()
    }
}

impl ReceiveOptions {
    /// The defaults: read-write, only memfds sealed against shrinking.
    pub fn new() -> ReceiveOptions {
        ReceiveOptions {
            access: AccessMode::ReadWrite,
            allow_unsealed: false,
            allow_disk_backed: false,
            populate: false,
            layout: None,
        }
    }

    /// Maps every page of the data area at once, so that the first pass over a large
    /// segment does not fault page by page (default `false`); see
    /// [`FileOptions::populate`].
    pub fn populate(&mut self, populate: bool) -> &mut ReceiveOptions {
        self.populate = populate;
        self
    }

    /// How the data area is mapped (a write-sealed memfd is always read-only).
    pub fn access(&mut self, access: AccessMode) -> &mut ReceiveOptions {
        self.access = access;
        self
    }

    /// Accepts a descriptor the sender could still shrink (an unsealed memfd or a plain
    /// file). Its size is then checked at each lock, which leaves the window described under
    /// [Untrusted peers](super#untrusted-peers).
    pub fn allow_unsealed(&mut self, allow: bool) -> &mut ReceiveOptions {
        self.allow_unsealed = allow;
        self
    }

    /// Refuses a segment with another layout stamp, or none, with [`ErrorKind::Layout`].
    pub fn layout(&mut self, stamp: LayoutStamp) -> &mut ReceiveOptions {
        self.layout = Some(stamp);
        self
    }

    /// Accepts a plain file on a disk-backed file system.
    pub fn allow_disk_backed(&mut self, allow: bool) -> &mut ReceiveOptions {
        self.allow_disk_backed = allow;
        self
    }

    pub(super) fn params(&self) -> imp::OpenParams {
        imp::OpenParams {
            access: self.access,
            allow_disk_backed: self.allow_disk_backed,
            allow_unsealed: self.allow_unsealed,
            check_size_on_lock: true,
            layout: self.layout.map(LayoutStamp::raw),
        }
    }
}
