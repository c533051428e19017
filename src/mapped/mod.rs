//! Memory-mapped-file and memfd segments with a fast, crash-robust lock inside: the
//! alternative to `QSharedMemory` that Qt's documentation recommends ("Alternative:
//! Memory-Mapped File"), done so that it is safe.
//!
//! A [`MappedSegment`] is shared memory backed by
//!
//! * a **file** on a RAM-backed file system ([`FileOptions`]): named, so that any process —
//!   a C program, or a Qt program with `QFile::map` — can open it; or **temporary**, with a
//!   unique name, removed when its last user detaches (Qt's `QTemporaryFile` idiom);
//! * a **memfd** ([`MemfdOptions`]): anonymous, handed to a child process by inheritance
//!   ([`MappedSegment::pass_to_child`] / [`MappedSegment::from_env`]) or to any process over
//!   a Unix socket ([`MappedSegment::send_over`] / [`MappedSegment::recv_from`]), and sealed
//!   so that no peer can shrink it.
//!
//! The segment begins with a small versioned header that holds a process-shared, robust
//! lock: [`MappedSegment::lock`] gives the same [`LockGuard`] as
//! [`SharedMemory::lock`](crate::SharedMemory::lock), and when a holder dies the next one
//! gets the lock with [`LockGuard::owner_died`] set. The uncontended lock and unlock are one
//! atomic instruction each, with no system call.
//!
//! ```
//! use qshm::mapped::MappedSegment;
//!
//! let seg = MappedSegment::create_temporary(4096)?;    // in $XDG_RUNTIME_DIR or /dev/shm (Linux)
//! {
//!     let mut guard = seg.lock()?;
//!     guard.as_mut_slice()?[..5].copy_from_slice(b"hello");
//! }
//! // Another process opens the same file by path:
//! let other = MappedSegment::open_file(seg.path().unwrap())?;
//! assert_eq!(&other.lock()?.as_slice()[..5], b"hello");
//! drop(seg);
//! drop(other); // the last user detaches: the temporary file is removed
//! # Ok::<(), qshm::Error>(())
//! ```
//!
//! # The layout (version 2)
//!
//! `include/qshm.h` in the source distribution describes it as a C struct, with the lock
//! protocol as `static inline` functions, so that C and C++ programs (Qt's included) map the
//! same file and take the same lock. All fields are in native byte order.
//!
//! | offset | size | field | meaning |
//! |---|---|---|---|
//! | 0 | 8 | `magic` | `"QSHM\0SEG"` |
//! | 8 | 4 | `version` | 2; readers refuse any other |
//! | 12 | 4 | `header_size` | offset of the data area: the page size (≥ 4096) when qshm creates it |
//! | 16 | 8 | `data_size` | size of the data area |
//! | 24 | 4 | `flags` | bit 0: remove the file when its last user detaches; bit 1: the record-lock protocol (below) |
//! | 28 | 4 | `byte_order` | `0x01020304` |
//! | 32 | 8 | `pid_ns` | inode of the creator's PID namespace, 0 if unknown |
//! | 40 | 8 | `time_ns` | inode of the creator's time namespace, 0 if unknown |
//! | 48 | 4 | `layout_version` | [`LayoutStamp`] version, 0 with hash 0: no stamp |
//! | 56 | 8 | `layout_hash` | [`LayoutStamp`] hash |
//! | 64 | 8 | `lock` | lock word: owner thread id (bits 0–29), waiters (bit 31), and either the owner process's liveness slot (bits 32–62, with bit 63 set: a qshm process) or its start-time tag (bits 32–62, bit 63 clear: a C program) |
//! | 72 | 4 | `state` | bit 0: a holder died and nobody marked the data consistent since |
//! | 80 | 8 | `generation` | number of take-overs from dead holders |
//!
//! Users of a file segment hold a shared `flock(2)` on it while attached; the user who
//! detaches and can take it exclusively is the last, and removes the file when `flags` says
//! so.
//!
//! On macOS, iOS and FreeBSD, which have no open-file-description locks and whose `flock`
//! conflicts with record locks, segments follow the *record-lock protocol* (flags bit 1):
//! users hold a classic read lock on byte 56, and a lock owner's liveness slot is a classic
//! write lock, each process having each file open once. Each protocol refuses the other's
//! segments (`Unsupported`); `docs/mapped.md` has the details. There, memfds exist on
//! FreeBSD only, and file segments default to the temporary directory.
//!
//! # Untrusted peers
//!
//! A peer that can write the backing object can truncate it, and a process that then
//! touches a page past the end gets `SIGBUS`. qshm never lets that happen through its API
//! where the kernel can prevent it:
//!
//! * memfds are sealed against shrinking (`F_SEAL_SHRINK | F_SEAL_GROW`) before anyone maps
//!   them; a received memfd without `F_SEAL_SHRINK` is refused unless
//!   [`ReceiveOptions::allow_unsealed`] opts in. A write-sealed memfd
//!   ([`MappedSegment::seal_write`]) is immutable: every receiver gets a read-only copy.
//! * plain files cannot be sealed. Their size is checked before the lock is taken (its word
//!   is in the file's header) and again under it, before the guard lends a slice
//!   ([`FileOptions::check_size_on_lock`], on by default: two `fstat`s per lock). **What
//!   remains**: a peer that truncates the file, without the lock, in the moment between the
//!   first check and the lock's compare-and-swap, or while a guard lends its bytes, can
//!   still crash this process — with untrusted peers, use a sealed memfd.
//!
//! # Platform-specific behavior
//!
//! Linux and Windows; the module does not exist on other targets. Memfds, Unix sockets and
//! seals are Linux's; on Windows a segment is a file (in the temporary directory by
//! default), created with `FILE_ATTRIBUTE_TEMPORARY` and, for a temporary segment,
//! `FILE_FLAG_DELETE_ON_CLOSE`, and handed to children by handle inheritance
//! ([`MappedSegment::spawn_child`]). The layout and the lock word are the same on both;
//! `include/qshm.h` describes Windows' part of the protocol. On Windows:
//!
//! * a qshm holder is recognised as dead by a byte-range lock (`LockFileEx`) that its
//!   process holds on one byte of the file past the data, which Windows releases when the
//!   process ends however it ends (`TerminateProcess` included); waiters sleep on a named
//!   event (`Local\qshm_mapped_…`, per file), at most 16 ms at a time;
//! * every object of one process for one file is one owner: a thread that holds the lock
//!   through one and locks through another gets [`ErrorKind::LockError`], as on Linux;
//! * a mapped file cannot be truncated (`ERROR_USER_MAPPED_FILE`, under Wine too), so no
//!   size check is made at a lock ([`FileOptions::check_size_on_lock`] has no effect) and
//!   the uncontended lock makes no system call;
//! * a temporary segment is deleted by the system with its last handle, even when every
//!   user crashed (`FILE_FLAG_DELETE_ON_CLOSE`; it is created under its final, random name,
//!   which nobody knows before `create_temporary` returns).
//!
//! On Linux:
//!
//! A qshm holder is recognised as dead by the kernel's word, not by its pid: each qshm
//! process holds an open-file-description lock on one byte of the segment file (its
//! *liveness slot*, past the data, changing nothing in it) and names the slot in the lock
//! word; the kernel drops the lock when the process dies. So holder and waiter may sit in
//! different PID or time namespaces (containers sharing `/dev/shm`, or a mapping inherited
//! over `unshare(CLONE_NEWPID)` and `fork`), behind `hidepid`, or under qemu-user. What
//! remains:
//!
//! * a received or inherited descriptor is reopened through `/proc/self/fd` to get a
//!   description of this process's own; without `/proc` a process names itself by thread
//!   id, and locking fails with [`ErrorKind::Unsupported`](crate::ErrorKind) when it is not
//!   in the PID namespace of the segment's creator (its thread id would mean nothing there);
//! * C programs using `qshm.h` name themselves by thread id: they must run in the creator's
//!   PID namespace, and qshm processes elsewhere wait for them rather than judge them;
//! * a holder that dies while a child it forked (without `exec`) still has the segment open
//!   is taken for alive until the child closes it or dies: a wait, never two holders;
//! * a thread that exits holding the lock (a leaked guard) is recovered when its process
//!   dies or closes the segment.
//!
//! # References
//!
//! * Qt, `QSharedMemory`: "Alternative: Memory-Mapped File", "Linux hints on memory-mapped
//!   files".
//! * <https://man7.org/linux/man-pages/man2/memfd_create.2.html>,
//!   <https://man7.org/linux/man-pages/man2/fcntl.2.html> (file seals),
//!   <https://man7.org/linux/man-pages/man2/futex.2.html>,
//!   <https://man7.org/linux/man-pages/man7/unix.7.html> (`SCM_RIGHTS`).

use std::fmt;
#[cfg(qshm_mapped_unix)]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
#[cfg(qshm_mapped_unix)]
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::backend::Wait;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::lock::LockGuard;
use crate::sys::mapped as imp;
use crate::sys::{LockRef, Locked};
use crate::AccessMode;

pub mod cell;
mod options;
pub mod queue;
mod stamp;

#[cfg(qshm_mapped_unix)]
pub use options::MemfdOptions;
pub use options::{FileOptions, ReceiveOptions};
pub use stamp::LayoutStamp;

/// The environment variable [`MappedSegment::spawn_child`] (and, on Linux,
/// [`MappedSegment::pass_to_child`]) sets and [`MappedSegment::from_env`] reads:
/// `<fd>:<data size>`, or `<handle>:<data size>:<path>` on Windows.
pub const MEMFD_ENV: &str = "QSHM_MEMFD";

/// What backs a [`MappedSegment`] (always [`Backing::File`] on Windows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backing {
    /// A named file ([`MappedSegment::path`]).
    File,
    /// A memfd (`memfd_create(2)`), possibly sealed.
    Memfd,
    /// A received descriptor of a plain file (accepted with
    /// [`ReceiveOptions::allow_unsealed`]).
    Fd,
}

/// A file-backed or memfd shared memory segment with a robust lock in its header.
///
/// See the [module documentation](self) for the kinds of segments, the layout and what
/// holds with untrusted peers.
///
/// # Ownership
///
/// A memfd lives as long as any process has it open or mapped. A file with the
/// remove-on-last-detach flag (the default) is removed by the last qshm user to detach;
/// otherwise it stays until removed.
///
/// # Threads
///
/// `MappedSegment` is `Send + Sync`: threads share one through an `Arc` and exclude each
/// other with [`lock`](MappedSegment::lock), as processes do.
///
/// # Examples
///
/// ```
/// use qshm::mapped::{MappedSegment, ReceiveOptions};
/// use std::os::unix::net::UnixStream;
///
/// let seg = MappedSegment::memfd("state", 256)?;
/// seg.lock()?.as_mut_slice()?[0] = 42;
///
/// // Hand it over a Unix socket (here to ourselves):
/// let (a, b) = UnixStream::pair().unwrap();
/// seg.send_over(&a)?;
/// let received = MappedSegment::recv_from(&b, &ReceiveOptions::new())?;
/// assert_eq!(received.lock()?.as_slice()[0], 42);
/// # Ok::<(), qshm::Error>(())
/// ```
pub struct MappedSegment {
    inner: imp::MappedInner,
    label: String,
}

impl MappedSegment {
    fn new(inner: imp::MappedInner, label: String) -> MappedSegment {
        MappedSegment { inner, label }
    }

    /// With `populate`: maps every page now (allocating them at create); on failure the
    /// segment is dropped (closed) and the error returned.
    fn populated(self, populate: bool, op: Operation) -> Result<MappedSegment> {
        if !populate {
            return Ok(self);
        }
        let write = op == Operation::Create && crate::sys::Mapping::writable(&self.inner);
        match crate::sys::populate(&self.inner, write) {
            Ok(()) => Ok(self),
            Err(e) => Err(
                Error::new(ErrorKind::OutOfResources, op, self.label.clone()).with_detail(format!(
                    "cannot populate the {} bytes of the segment ({e})",
                    self.size()
                )),
            ),
        }
    }

    /// Creates the segment file `name` (relative to the
    /// [default directory](FileOptions::default_directory)) with [`FileOptions`]' defaults.
    ///
    /// # Errors
    ///
    /// As [`FileOptions::create`].
    pub fn create_file(name: impl AsRef<Path>, size: usize) -> Result<MappedSegment> {
        FileOptions::new().create(name, size)
    }

    /// Opens the segment file `name` read-write with [`FileOptions`]' defaults.
    ///
    /// # Errors
    ///
    /// As [`FileOptions::open`].
    pub fn open_file(name: impl AsRef<Path>) -> Result<MappedSegment> {
        FileOptions::new().open(name)
    }

    /// A temporary, uniquely named segment file, removed when its last user detaches.
    ///
    /// # Errors
    ///
    /// As [`FileOptions::create_temporary`].
    pub fn create_temporary(size: usize) -> Result<MappedSegment> {
        FileOptions::new().create_temporary(size)
    }

    #[cfg(qshm_mapped_unix)]
    /// A memfd segment, sealed against shrinking and growing.
    ///
    /// # Errors
    ///
    /// As [`MemfdOptions::create`].
    #[doc(alias = "memfd_create")]
    pub fn memfd(name: &str, size: usize) -> Result<MappedSegment> {
        MemfdOptions::new().create(name, size)
    }

    #[cfg(qshm_mapped_unix)]
    /// Maps a descriptor of a segment received from elsewhere (D-Bus, a custom protocol),
    /// after checking its seals, header and size.
    ///
    /// # Errors
    ///
    /// * [`ErrorKind::PermissionDenied`]: not sealed against shrinking, and
    ///   [`ReceiveOptions::allow_unsealed`] was not given.
    /// * [`ErrorKind::KeyError`], [`ErrorKind::Unsupported`], [`ErrorKind::InvalidSize`]:
    ///   not a regular file or memfd, or a bad header (see [`FileOptions::open`]).
    pub fn from_fd(fd: OwnedFd, options: &ReceiveOptions) -> Result<MappedSegment> {
        let label = format!("fd:{}", fd.as_raw_fd());
        let inner = imp::from_fd(fd, None, &options.params(), &label)?;
        MappedSegment::new(inner, label).populated(options.populate, Operation::Attach)
    }

    #[cfg(qshm_mapped_unix)]
    /// Sends the segment's descriptor over a Unix stream socket (`SCM_RIGHTS`), with a
    /// 16-byte message (magic and data size) that [`recv_from`](MappedSegment::recv_from)
    /// expects.
    ///
    /// # Errors
    ///
    /// The socket's errors (e.g. [`ErrorKind::Unknown`] with `EPIPE` when the peer is gone).
    #[doc(alias = "sendmsg")]
    pub fn send_over(&self, stream: &UnixStream) -> Result<()> {
        imp::send_fd(self.inner.fd(), self.size(), stream, &self.label)
    }

    #[cfg(qshm_mapped_unix)]
    /// Receives a segment sent by [`send_over`](MappedSegment::send_over), checks it as
    /// [`from_fd`](MappedSegment::from_fd) does and maps it. Blocks until a message arrives
    /// (unless the socket is non-blocking).
    ///
    /// # Errors
    ///
    /// As [`from_fd`](MappedSegment::from_fd); [`ErrorKind::NotFound`] when the peer closed
    /// the connection; [`ErrorKind::KeyError`] when the message is not a segment hand-over or
    /// its size disagrees with the header.
    #[doc(alias = "recvmsg")]
    pub fn recv_from(stream: &UnixStream, options: &ReceiveOptions) -> Result<MappedSegment> {
        let (fd, size) = imp::recv_fd(stream)?;
        let seg = MappedSegment::from_fd(fd, options).map_err(|e| e.with_op(Operation::Receive))?;
        seg.check_announced(size, Operation::Receive)?;
        Ok(seg)
    }

    fn check_announced(&self, size: u64, op: Operation) -> Result<()> {
        if size != self.size() as u64 {
            return Err(
                Error::new(ErrorKind::KeyError, op, self.label.clone()).with_detail(format!(
                    "the sender announced {size} bytes but the segment's header says {}",
                    self.size()
                )),
            );
        }
        Ok(())
    }

    #[cfg(qshm_mapped_unix)]
    /// Lets the child that `cmd` spawns inherit the segment: a duplicate descriptor is kept
    /// open across `exec` in that child only, and named in the environment variable
    /// [`MEMFD_ENV`] (`QSHM_MEMFD=<fd>:<size>`), which the child reads with
    /// [`from_env`](MappedSegment::from_env). Call `cmd.spawn()` afterwards; the duplicate
    /// is closed in this process when `cmd` is dropped.
    ///
    /// ```no_run
    /// # use qshm::mapped::MappedSegment;
    /// let seg = MappedSegment::memfd("for-child", 4096)?;
    /// let mut cmd = std::process::Command::new("my-worker");
    /// seg.pass_to_child(&mut cmd)?;
    /// let _child = cmd.spawn().expect("spawn");
    /// # Ok::<(), qshm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfResources`] when out of descriptors.
    pub fn pass_to_child(&self, cmd: &mut Command) -> Result<()> {
        self.pass_to_child_as(cmd, MEMFD_ENV)
    }

    #[cfg(qshm_mapped_unix)]
    /// As [`pass_to_child`](MappedSegment::pass_to_child), naming the descriptor in the
    /// environment variable `var` (to pass several segments).
    ///
    /// # Errors
    ///
    /// As [`pass_to_child`](MappedSegment::pass_to_child).
    pub fn pass_to_child_as(&self, cmd: &mut Command, var: &str) -> Result<()> {
        imp::pass_to_child(
            self.inner.seg_fd(),
            self.size(),
            self.inner.removal_path(),
            cmd,
            var,
            &self.label,
        )
    }

    /// Spawns the child `cmd` describes, letting it inherit the segment: a duplicate of the
    /// segment's descriptor (Linux) or file handle (Windows) is named in the environment
    /// variable [`MEMFD_ENV`] (`QSHM_MEMFD=<fd>:<size>`, on Windows
    /// `<handle>:<size>:<path>`), which the child reads
    /// with [`from_env`](MappedSegment::from_env); this process closes its duplicate once
    /// the child is started.
    ///
    /// On Linux the duplicate is kept open across `exec` in that child only
    /// ([`pass_to_child`](MappedSegment::pass_to_child)). On Windows it is an inheritable
    /// handle while the child starts: a child that another thread of this process starts in
    /// that instant inherits it too (Windows passes every inheritable handle, and the
    /// standard library offers no handle list), which keeps the file open in that child
    /// until it exits.
    ///
    /// On Linux the child receives a file segment as a plain descriptor, which
    /// [`from_env`](MappedSegment::from_env) accepts only with
    /// [`ReceiveOptions::allow_unsealed`] (a memfd is sealed). A temporary file segment is
    /// then removed by whichever of this process and the child detaches last.
    ///
    /// ```no_run
    /// # use qshm::mapped::MappedSegment;
    /// let seg = MappedSegment::create_temporary(4096)?;
    /// let mut child = seg.spawn_child(&mut std::process::Command::new("my-worker"))?;
    /// child.wait().expect("the worker ran");
    /// # Ok::<(), qshm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::OutOfResources`] when out of descriptors; the errors of spawning the
    /// child (e.g. [`ErrorKind::NotFound`] for a missing program).
    pub fn spawn_child(&self, cmd: &mut Command) -> Result<Child> {
        self.spawn_child_as(cmd, MEMFD_ENV)
    }

    /// As [`spawn_child`](MappedSegment::spawn_child), naming the segment in the environment
    /// variable `var` (to pass several segments).
    ///
    /// # Errors
    ///
    /// As [`spawn_child`](MappedSegment::spawn_child).
    pub fn spawn_child_as(&self, cmd: &mut Command, var: &str) -> Result<Child> {
        #[cfg(qshm_mapped_unix)]
        {
            self.pass_to_child_as(cmd, var)?;
            cmd.spawn().map_err(|e| {
                crate::sys::os_error(
                    e.raw_os_error().unwrap_or(0),
                    Operation::Send,
                    self.label.clone(),
                )
                .with_detail(format!("cannot spawn {:?}", cmd.get_program()))
            })
        }
        #[cfg(qshm_windows)]
        {
            imp::spawn_child(&self.inner, cmd, var, &self.label)
        }
    }

    /// In a child started through [`spawn_child`](MappedSegment::spawn_child) (or, on
    /// Linux, [`pass_to_child`](MappedSegment::pass_to_child)): adopts the inherited segment
    /// named by [`MEMFD_ENV`], checks it (on Linux as [`from_fd`](MappedSegment::from_fd)
    /// does; its header and size everywhere), and maps it.
    ///
    /// The descriptor or handle is adopted at most once per process and made close-on-exec
    /// (not inheritable), so that it does not leak further. What remains assumed: no other
    /// code of this process uses that descriptor or handle (true for one inherited this
    /// way).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when the variable is unset or the descriptor or handle not
    /// open; [`ErrorKind::KeyError`] when it is malformed or the size disagrees;
    /// [`ErrorKind::AlreadyAttached`] when already adopted; otherwise as
    /// [`FileOptions::open`] (and on Linux as [`from_fd`](MappedSegment::from_fd)).
    pub fn from_env(options: &ReceiveOptions) -> Result<MappedSegment> {
        MappedSegment::from_env_var(MEMFD_ENV, options)
    }

    /// As [`from_env`](MappedSegment::from_env), reading the variable `var`.
    ///
    /// # Errors
    ///
    /// As [`from_env`](MappedSegment::from_env).
    pub fn from_env_var(var: &str, options: &ReceiveOptions) -> Result<MappedSegment> {
        #[cfg(qshm_mapped_unix)]
        let (seg, size) = {
            let (fd, size, path) = imp::fd_from_env(var)?;
            let label = format!("fd:{}", fd.as_raw_fd());
            let seg = imp::from_fd(fd, path.as_deref(), &options.params(), &label)
                .map(|inner| MappedSegment::new(inner, label))
                .and_then(|seg| seg.populated(options.populate, Operation::Attach));
            (seg, size)
        };
        #[cfg(qshm_windows)]
        let (seg, size) = {
            let (file, size, path) = imp::handle_from_env(var)?;
            let label = format!("inherited:%{var}%");
            let seg = imp::from_inherited(file, path, &options.params(), &label)
                .map(|inner| MappedSegment::new(inner, label))
                .and_then(|seg| seg.populated(options.populate, Operation::Attach));
            (seg, size)
        };
        let seg = seg.map_err(|e| e.with_op(Operation::Receive))?;
        seg.check_announced(size, Operation::Receive)?;
        Ok(seg)
    }

    #[cfg(qshm_mapped_unix)]
    /// Seals a memfd segment against all writes (`F_SEAL_WRITE`) and maps it again
    /// read-only: every process that receives it afterwards gets an immutable copy, and the
    /// lock is no longer needed (taking it succeeds at once).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] for a file segment; [`ErrorKind::LockError`] while the lock
    /// is held; [`ErrorKind::Unknown`] with `EBUSY` while another process still maps it
    /// writable. On failure the segment is detached (it was consumed); seal it while you
    /// are its only user.
    pub fn seal_write(self) -> Result<MappedSegment> {
        let MappedSegment { inner, label, .. } = self;
        let inner = inner.seal_write(&label)?;
        Ok(MappedSegment::new(inner, label))
    }

    /// Removes the segment file at `path` if no qshm process has it attached (what a crashed
    /// last user leaves). Returns whether it was removed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] and other errors of `open`/`unlink`.
    pub fn remove_file(path: impl AsRef<Path>) -> Result<bool> {
        imp::remove_file(path.as_ref())
    }

    /// Takes the segment's lock, waiting as long as it takes.
    ///
    /// Uncontended, this is one atomic compare-and-swap and no system call (plus two
    /// `fstat`s, before and under the lock, for a file with
    /// [`FileOptions::check_size_on_lock`]). A waiter sleeps on a futex and checks every
    /// few milliseconds whether the holder is still alive; when it
    /// died, one waiter takes the lock over and the guard reports
    /// [`owner_died`](LockGuard::owner_died) until someone calls
    /// [`mark_consistent`](LockGuard::mark_consistent).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::LockError`] when this thread already holds it (through this or another
    /// object of the same segment); [`ErrorKind::InvalidSize`] when a file was truncated
    /// underneath (the lock is released again).
    ///
    /// # Examples
    ///
    /// ```
    /// # let seg = qshm::mapped::MappedSegment::memfd("doc-lock", 64)?;
    /// let mut guard = seg.lock()?;
    /// if guard.owner_died() {
    ///     // repair the data, then:
    ///     guard.mark_consistent();
    /// }
    /// guard.as_mut_slice()?[0] += 1;
    /// # Ok::<(), qshm::Error>(())
    /// ```
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.lock_with(Wait::Forever)
    }

    /// Takes the lock if it is free (or its holder is dead), without waiting.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WouldBlock`] when it is held; otherwise as [`lock`](MappedSegment::lock).
    #[inline]
    pub fn try_lock(&self) -> Result<LockGuard<'_>> {
        self.lock_with(Wait::Poll)
    }

    /// [`lock`](MappedSegment::lock) as a future, for any executor (feature `async`; see
    /// [`qshm::asynchronous`](crate::asynchronous)): tries the lock, and again after a
    /// backoff of 50 µs to 2 ms while it is held, with no thread of its own. Dropping it
    /// gives up the attempt and leaves nothing behind.
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn lock_async(&self) -> impl std::future::Future<Output = Result<LockGuard<'_>>> + '_ {
        crate::asynchronous::retrying(self.label.clone(), move || self.try_lock())
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`] when it stayed held; otherwise as [`lock`](MappedSegment::lock).
    #[inline]
    pub fn lock_timeout(&self, timeout: Duration) -> Result<LockGuard<'_>> {
        self.lock_with(Wait::For(timeout))
    }

    #[inline]
    fn lock_with(&self, wait: Wait) -> Result<LockGuard<'_>> {
        match Locked::acquire(
            LockRef::Mapped(self.inner.segment_lock()),
            &self.inner,
            wait,
            &self.label,
        ) {
            Ok(locked) => Ok(LockGuard::new(locked, &self.label)),
            Err(err) => Err(self.lock_failed(err)),
        }
    }

    #[cold]
    fn lock_failed(&self, err: Error) -> Error {
        err.with_op(Operation::Lock).with_key(self.label.clone())
    }

    /// The platform's segment (for `sys`).
    pub(crate) fn inner(&self) -> &imp::MappedInner {
        &self.inner
    }

    /// The label errors name the segment by.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// Checks that the backing file still holds the whole segment: the check a lock makes
    /// (before and under it) with [`FileOptions::check_size_on_lock`], on demand, for a
    /// caller about to touch bytes it copied out earlier, say. One `fstat` on Linux, macOS
    /// and FreeBSD; nothing on Windows, which refuses to truncate a mapped file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`] when the file was truncated (touching its missing pages
    /// would be SIGBUS); the `fstat`'s error when the size cannot be read.
    pub fn check_size(&self) -> Result<()> {
        self.inner
            .check_size_now()
            .map_err(|e| e.with_key(self.label.clone()))
    }

    /// The size of the data area in bytes (the header is not included).
    pub fn size(&self) -> usize {
        self.inner.data_size()
    }

    /// The offset of the data area in the file (the header's size).
    pub fn data_offset(&self) -> usize {
        self.inner.header_size()
    }

    /// A pointer to the first byte of the data area.
    ///
    /// Reading through it is a data race unless you hold the lock and every other process
    /// honours it; prefer [`lock`](MappedSegment::lock) and the guard's slices.
    pub fn as_ptr(&self) -> *const u8 {
        self.inner.data_ptr().cast_const()
    }

    /// A mutable pointer to the first byte of the data area. Writing through it on a
    /// read-only mapping faults.
    pub fn as_mut_ptr(&self) -> *mut u8 {
        self.inner.data_ptr()
    }

    /// How the data area is mapped.
    pub fn access_mode(&self) -> AccessMode {
        if self.inner.is_writable() {
            AccessMode::ReadWrite
        } else {
            AccessMode::ReadOnly
        }
    }

    /// What backs the segment.
    pub fn backing(&self) -> Backing {
        match self.inner.backing() {
            imp::Backing::File { .. } => Backing::File,
            #[cfg(qshm_mapped_unix)]
            imp::Backing::Memfd => Backing::Memfd,
            #[cfg(qshm_mapped_unix)]
            imp::Backing::Fd { .. } => Backing::Fd,
        }
    }

    /// The file's path, for a file-backed segment (on Windows, `None` for an inherited
    /// segment whose path the system does not tell).
    pub fn path(&self) -> Option<&Path> {
        #[allow(unreachable_patterns)] // Windows has files only
        match self.inner.backing() {
            imp::Backing::File { path, .. } if !path.as_os_str().is_empty() => Some(path),
            _ => None,
        }
    }

    /// Whether the file is removed when its last user detaches (`false` for memfds). A
    /// received file created with the flag ([`Backing::Fd`]) takes part in its removal too,
    /// where `/proc` names it: whichever of sender and receiver detaches last removes it.
    pub fn removes_on_last_detach(&self) -> bool {
        #[allow(unreachable_patterns)] // Windows has files only
        match self.inner.backing() {
            imp::Backing::File {
                remove_on_last_detach,
                ..
            } => *remove_on_last_detach,
            #[cfg(qshm_mapped_unix)]
            imp::Backing::Fd { remove_at } => remove_at.is_some(),
            _ => false,
        }
    }

    #[cfg(qshm_mapped_unix)]
    /// Whether the backing file system keeps its pages in RAM only (tmpfs, ramfs,
    /// hugetlbfs; memfds are). FreeBSD answers for tmpfs files only (its memfds are not on a
    /// file system `fstatfs` describes); macOS has no RAM-backed file system: false.
    pub fn is_ram_backed(&self) -> bool {
        self.inner.is_ram_backed()
    }

    #[cfg(qshm_mapped_unix)]
    /// Whether the segment is sealed against shrinking (`F_SEAL_SHRINK`): no process can
    /// truncate it underneath this one.
    pub fn is_shrink_sealed(&self) -> bool {
        self.inner.is_shrink_sealed()
    }

    #[cfg(qshm_mapped_unix)]
    /// Whether the segment is sealed against writing (`F_SEAL_WRITE`): immutable.
    pub fn is_write_sealed(&self) -> bool {
        self.inner.is_write_sealed()
    }

    /// The layout stamp recorded at create ([`LayoutStamp`]), if any.
    pub fn layout_stamp(&self) -> Option<LayoutStamp> {
        LayoutStamp::from_header(self.inner.layout())
    }

    /// The segment's change counter ([`Notifier`](crate::notify::Notifier)): notify and
    /// wait for changes, from any process of the segment, C programs included
    /// (`qshm_notify`/`qshm_wait_change` in `qshm.h`). Each call maps the counter anew (one
    /// `mmap`); clone the notifier to share it.
    ///
    /// # Errors
    ///
    /// The errors of `mmap`.
    pub fn notifier(&self) -> Result<crate::notify::Notifier> {
        let words = self.inner.change_words(&self.label)?;
        Ok(crate::notify::Notifier::new(
            words,
            self.label.as_str().into(),
        ))
    }

    /// How many times the lock was taken over from a holder that died (the header's
    /// generation counter).
    pub fn lock_generation(&self) -> u64 {
        self.inner.lock_generation()
    }

    /// Detaches (unmaps and closes), reporting failure; dropping detaches and ignores it.
    /// Returns whether this was the last user of a remove-on-last-detach file, which is now
    /// removed.
    ///
    /// # Errors
    ///
    /// The errors of `flock`/`unlink` (Windows: of opening and deleting) when removing the
    /// file.
    pub fn detach(mut self) -> Result<bool> {
        #[cfg(qshm_mapped_unix)]
        let code = |e: rustix::io::Errno| e.raw_os_error();
        #[cfg(qshm_windows)]
        let code = |e: std::io::Error| e.raw_os_error().unwrap_or(0) as u32;
        self.inner
            .close()
            .map_err(|e| crate::sys::os_error(code(e), Operation::Detach, self.label.clone()))
    }
}

#[cfg(qshm_windows)]
impl std::os::windows::io::AsHandle for MappedSegment {
    /// The segment file's handle, to pass by other means (`DuplicateHandle`).
    fn as_handle(&self) -> std::os::windows::io::BorrowedHandle<'_> {
        self.inner
            .file()
            .expect("open until the segment is dropped")
            .as_handle()
    }
}

#[cfg(qshm_mapped_unix)]
impl AsFd for MappedSegment {
    /// The segment's descriptor, to pass by other means (e.g. `QDBusUnixFileDescriptor`).
    ///
    /// On macOS, iOS and FreeBSD the segment's users and its lock's owners are told apart
    /// by record locks on the file, which the system drops when the process closes *any*
    /// descriptor of it: a duplicate made of this one (as `QDBusUnixFileDescriptor` makes),
    /// or the file opened again by other code (`std::fs`, `QFile`), must stay open for as
    /// long as the process uses the segment, or another process may take the process for
    /// gone (docs/mapped.md, "the record-lock protocol").
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.fd()
    }
}

impl fmt::Debug for MappedSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedSegment")
            .field("segment", &self.label)
            .field("backing", &self.backing())
            .field("size", &self.size())
            .field("access", &self.access_mode())
            .field("ptr", &self.as_ptr())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MappedSegment>();
        send_sync::<FileOptions>();
        send_sync::<ReceiveOptions>();
        #[cfg(qshm_mapped_unix)]
        send_sync::<MemfdOptions>();
    }
}
