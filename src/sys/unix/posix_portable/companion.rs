//! The companion file of a POSIX object: what the system gives no room for in the object
//! itself, in a small regular file beside it, where classic POSIX record locks (`fcntl`
//! `F_SETLK`, which macOS and FreeBSD have on regular files) let the kernel tell a live
//! process from a dead one.
//!
//! `<temporary directory>/qshm-psx-<kind>-<32 hex digits of SHA-1(name)>`, 64 bytes:
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | magic `qshmpsx1` |
//! | 8..16 | the lock's owner record (semaphore companions): 0, or a holder's token |
//! | 16..24 | state word: bit 0 set while a holder died and nobody declared the data consistent |
//! | 24..32 | segment companions: 1 when qshm created the segment (its last detach removes it) |
//!
//! and two kinds of byte-range locks, past the end (allowed, and changing nothing in it):
//!
//! * **users**, byte [`USERS`]: every process that uses the object holds a read lock on it
//!   while it does (one per process, however many handles it has: classic locks belong to
//!   the process). A write lock there is granted only when no other process holds one: the
//!   last user's test, and what [`Companion::used_elsewhere`] asks.
//! * **waiters**, byte [`WAITING`] (semaphore companions): a process holds a read lock on
//!   it while one of its threads waits for the semaphore; [`Companion::waited_for_elsewhere`]
//!   asks whether another process does.
//! * **slots**, bytes [`SLOT_BASE`] + n: a process that takes the lock first takes a random
//!   slot with a write lock and names it in the record it writes while it holds the lock. A
//!   waiter asks the kernel (`F_GETLK`) whether some process still holds that byte; the
//!   kernel drops every lock of a process when it dies, `kill -9` included.
//!
//! Classic locks have one trap: closing *any* descriptor of the file drops all of the
//! process's locks on it. So a process opens each companion once: [`Companion::open`]
//! shares one open companion between all handles of the process (a registry by path and
//! inode), and closes it with the last. They are also not inherited by `fork`: a forked child
//! takes its own slot the first time it locks (the fork generation is checked), and its
//! users' read lock in a fork handler (`count_forked_copies`), so that a copy of an
//! attachment it still maps keeps the object from its parent's last detach.
//!
//! A process writes no slot into anyone else's record and never asks about its own slot (the
//! kernel ignores the asker's own locks): its own record is recognised by its token.
//!
//! # References
//!
//! * <https://pubs.opengroup.org/onlineposix/functions/fcntl.html> (record locking)
//! * <https://man.freebsd.org/cgi/man.cgi?fcntl(2)>,
//!   <https://developer.apple.com/library/archive/documentation/System/Conceptual/ManPages_iPhoneOS/man2/fcntl.2.html>

use std::ffi::c_int;
use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use rustix::mm::{MapFlags, ProtFlags};

/// The companion's length: the three words and room to grow.
const LEN: usize = 64;
/// `qshmpsx1`, in native byte order.
const MAGIC: u64 = u64::from_ne_bytes(*b"qshmpsx1");
/// The users' byte.
const USERS: i64 = 64;
/// The waiters' byte (semaphore companions).
const WAITING: i64 = 65;
/// Where slots start, below 2^31 (a 32-bit `off_t`).
const SLOT_BASE: i64 = 1 << 20;
/// How many slots there are, picked at random: a slot another live process holds only makes
/// a dead holder look alive for as long as that process lives (a wait, never two holders).
const SLOTS: u32 = 1 << 30;
/// The lock types, as `c_int` (the C libraries declare them `short` on BSD systems).
const RDLCK: c_int = libc::F_RDLCK as c_int;
const WRLCK: c_int = libc::F_WRLCK as c_int;
const UNLCK: c_int = libc::F_UNLCK as c_int;
/// Marks a record that names a slot.
const TOKEN_FLAG: u64 = 1 << 31;

/// Which object a companion serves (part of its name: on Apple platforms a segment and its
/// lock have the same name, in two namespaces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Segment,
    Semaphore,
}

/// Opens the file at `path`, creating it with exactly `mode` (the umask aside) when it is
/// absent and `mode` is given. An existing file is opened without `O_CREAT`: Linux refuses
/// `O_CREAT` on another user's file in a sticky directory such as `/tmp`
/// (`fs.protected_regular`), even where its mode allows the access.
fn open_or_create(path: &Path, mode: Option<u32>) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    for _ in 0..100 {
        match options.open(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => return other,
        }
        let Some(mode) = mode else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        match options
            .clone()
            .create_new(true)
            .mode(mode & 0o777)
            .open(path)
        {
            Ok(file) => {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "the companion file kept appearing and vanishing",
    ))
}

/// One process's open companion (shared by all its handles of the object).
pub(super) struct Companion {
    path: PathBuf,
    /// Closed in Drop under [`OPEN`]'s lock (see there).
    file: ManuallyDrop<File>,
    dev: u64,
    ino: u64,
    words: NonNull<AtomicU64>,
    /// This process's part: the users' lock and the slot, each with the pid (the slot: the
    /// fork generation) that took it (a forked child has neither until it takes its own).
    mine: Mutex<Mine>,
    /// [`Companion::token`] without the mutex: the token, valid in the fork generation
    /// `token_generation` names (0: none yet; generations start at 1). Written under `mine`'s
    /// lock, the token first.
    token: AtomicU64,
    token_generation: AtomicU32,
}

#[derive(Default)]
struct Mine {
    users: u32,
    users_pid: u32,
    waiting: u32,
    waiting_pid: u32,
    slot: u32,
    /// The fork generation that took `slot` (a child's pid may be its grandparent's, reused).
    slot_generation: u32,
}

// SAFETY: the mapping is shared memory of atomics only, valid until Drop; the file and the
// mutex are Send and Sync.
unsafe impl Send for Companion {}
// SAFETY: as above: every access to the mapped words is atomic.
unsafe impl Sync for Companion {}

/// The open companions of this process, so that each file is open once (see the module docs).
///
/// Opening and closing a companion happen under this lock, and an entry leaves the list only
/// when its file is closed: an `open` that finds the file it wants still being closed (its
/// last handle gone, its Drop not yet done) waits for that, since closing the old descriptor
/// after a new one took its locks would drop them.
static OPEN: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

struct Entry {
    path: PathBuf,
    dev: u64,
    ino: u64,
    companion: Weak<Companion>,
}

/// The path of the companion of `name`.
pub(super) fn path_of(kind: Kind, name: &str) -> PathBuf {
    let kind = match kind {
        Kind::Segment => "shm",
        Kind::Semaphore => "sem",
    };
    let hash = crate::key::sha1_hex(name);
    std::env::temp_dir().join(format!("qshm-psx-{kind}-{}", &hash[..32]))
}

impl Companion {
    /// The companion at `path`, opened (and created, with `mode`) if this process has no
    /// open one that the path still names.
    /// With `mode` `None`, an absent companion is `NotFound` and none is created.
    pub(super) fn open(path: &Path, mode: Option<u32>) -> io::Result<Arc<Companion>> {
        loop {
            let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
            let mut closing = false;
            if let Ok(named) = std::fs::symlink_metadata(path) {
                let same =
                    |e: &&Entry| e.path == path && e.dev == named.dev() && e.ino == named.ino();
                for entry in open.iter().filter(same) {
                    match entry.companion.upgrade() {
                        Some(c) => return Ok(c),
                        None => closing = true,
                    }
                }
            }
            if closing {
                drop(open);
                std::thread::yield_now();
                continue;
            }
            let Some(c) = Companion::open_new(path, mode)? else {
                // Removed by its last user between our open and our look: open the new one.
                drop(open);
                std::thread::yield_now();
                continue;
            };
            let c = Arc::new(c);
            open.push(Entry {
                path: path.to_owned(),
                dev: c.dev,
                ino: c.ino,
                companion: Arc::downgrade(&c),
            });
            return Ok(c);
        }
    }

    /// `None` when the file opened was unlinked meanwhile (by a last user).
    ///
    /// Refuses what no qshm process makes, before changing anything in it: a file with
    /// other links (a hard link to someone's file planted at the name in a shared temporary
    /// directory, which FreeBSD allows by default), or of another size than none (being
    /// made) or [`LEN`].
    fn open_new(path: &Path, mode: Option<u32>) -> io::Result<Option<Companion>> {
        let file = open_or_create(path, mode)?;
        let meta = file.metadata()?;
        if !meta.file_type().is_file() {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        let refuse = |why: String| {
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("refusing {}: {why}", path.display()),
            )
        };
        match meta.nlink() {
            0 => return Ok(None),
            1 => {}
            n => {
                return Err(refuse(format!(
                    "it has {n} links, and a companion file has one (a hard link planted \
                     in a shared directory?)"
                )))
            }
        }
        match meta.len() {
            // Made by a creator that has not sized it yet (several openers may size it).
            0 => file.set_len(LEN as u64)?,
            len if len == LEN as u64 => {}
            len => {
                return Err(refuse(format!(
                    "{len} bytes, and a companion file has {LEN}"
                )))
            }
        }
        // SAFETY: a null hint makes a new mapping; the file is open read-write and at least
        // LEN bytes long (no other process shrinks a companion: they only grow it).
        let addr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                LEN,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &file,
                0,
            )
        }?;
        let words = NonNull::new(addr.cast::<AtomicU64>()).ok_or(io::ErrorKind::OutOfMemory)?;
        // SAFETY: the first of the LEN mapped, page-aligned bytes, accessed atomically.
        let magic = unsafe { words.as_ref() };
        match magic.compare_exchange(0, MAGIC, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) | Err(MAGIC) => {}
            Err(_) => {
                // SAFETY: the mapping made above, which nothing else refers to.
                let _ = unsafe { rustix::mm::munmap(addr, LEN) };
                return Err(refuse("not a qshm companion file".to_string()));
            }
        }
        Ok(Some(Companion {
            path: path.to_owned(),
            file: ManuallyDrop::new(file),
            dev: meta.dev(),
            ino: meta.ino(),
            words,
            mine: Mutex::new(Mine::default()),
            token: AtomicU64::new(0),
            token_generation: AtomicU32::new(0),
        }))
    }

    /// Gives the file the permission bits of `mode` if this process owns it and they
    /// differ (a companion made by an attacher takes its object's).
    pub(super) fn give_mode(&self, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = self.file.metadata() else {
            return;
        };
        if meta.uid() == crate::sys::euid() && meta.mode() & 0o777 != mode & 0o777 {
            let _ = self
                .file
                .set_permissions(std::fs::Permissions::from_mode(mode & 0o777));
        }
    }

    fn is(&self, meta: &std::fs::Metadata) -> bool {
        meta.dev() == self.dev && meta.ino() == self.ino
    }

    /// Whether the path still names this file (it is removed with its object).
    pub(super) fn still_named(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok_and(|m| self.is(&m))
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < LEN / 8);
        // SAFETY: `words` maps LEN bytes, page-aligned, for as long as `self` lives; every
        // access to them, in every process, is atomic.
        unsafe { &*self.words.as_ptr().add(i) }
    }

    /// The lock's owner record.
    pub(super) fn record(&self) -> &AtomicU64 {
        self.word(1)
    }

    /// The state word (bit 0: a holder died, data suspect).
    pub(super) fn state(&self) -> &AtomicU64 {
        self.word(2)
    }

    /// Set when qshm created the segment (see the module docs of `posix_portable`).
    pub(super) fn made_by_qshm(&self) -> &AtomicU64 {
        self.word(3)
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, Mine> {
        self.mine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more user in this process; the first takes the users' read lock, waiting
    /// while a last user removes the object (it holds the write lock only for that). False
    /// when the companion was removed meanwhile: open it again.
    pub(super) fn join(&self) -> io::Result<bool> {
        static ATFORK: std::sync::Once = std::sync::Once::new();
        ATFORK.call_once(|| {
            // SAFETY: registers fork handlers whose child part makes only async-signal-safe
            // calls (see `count_forked_copies`); the functions live for the whole program.
            unsafe {
                libc::pthread_atfork(
                    Some(fork_prepare),
                    Some(fork_parent),
                    Some(count_forked_copies),
                )
            };
        });
        let pid = super::my_pid();
        let mut mine = self.mine();
        if mine.users == 0 || mine.users_pid != pid {
            self.range(libc::F_SETLKW, RDLCK, USERS)?;
            if !self.still_named() {
                let _ = self.range(libc::F_SETLK, UNLCK, USERS);
                return Ok(false);
            }
            *mine = Mine {
                users: 0,
                users_pid: pid,
                ..*mine
            };
        }
        mine.users += 1;
        Ok(true)
    }

    /// Counts one user of this process out. `Some(guard)` when that was the last user
    /// anywhere: the guard holds the users' write lock (no process can join meanwhile) until
    /// it is dropped, after the object and this file are removed.
    pub(super) fn leave(&self) -> Option<LastUser<'_>> {
        let pid = super::my_pid();
        let mut mine = self.mine();
        if mine.users_pid != pid {
            // A forked child's copy that never joined: only its parent's count exists.
            return None;
        }
        mine.users = mine.users.saturating_sub(1);
        if mine.users > 0 {
            return None;
        }
        // The read lock goes first, then a write lock is tried, which succeeds only if no
        // other process holds one: of several processes leaving at once, the last to try
        // cannot fail because of the others (their read locks are gone), and of two trying
        // at once exactly one succeeds. (Converting the read lock in place instead would
        // let all of them fail.) A process joining in between makes it fail: it is a user.
        let _ = self.range(libc::F_SETLK, UNLCK, USERS);
        let mut pause = std::time::Duration::from_micros(250);
        for attempt in 0..4 {
            if self.range(libc::F_SETLK, WRLCK, USERS).is_ok() {
                mine.users_pid = 0;
                return Some(LastUser {
                    companion: self,
                    _mine: mine,
                });
            }
            // A child this process is forking counts as a user (`count_forked_copies`)
            // until it execs (the companion is close-on-exec) or exits: when the user in
            // the way is a child of ours, it is asked again a few times (0.25, 0.5, 1 ms).
            if attempt == 3 || !self.user_in_the_way_is_our_child() {
                break;
            }
            std::thread::sleep(pause);
            pause *= 2;
        }
        mine.users_pid = 0;
        None
    }

    /// Whether the process whose lock keeps the users' write lock from us is a child of
    /// this one (`F_GETLK` names one such process; `waitid` without waiting says whether it
    /// is ours).
    fn user_in_the_way_is_our_child(&self) -> bool {
        // SAFETY: flock is a plain C struct of integers, for which all-zero is valid.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = WRLCK as _;
        lock.l_whence = libc::SEEK_SET as _;
        lock.l_start = USERS as _;
        lock.l_len = 1;
        // SAFETY: the file is open for as long as `self`; F_GETLK fills the struct.
        if unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_GETLK, &mut lock) } == -1
            || c_int::from(lock.l_type) == UNLCK
            || lock.l_pid <= 0
        {
            return false;
        }
        // SAFETY: siginfo_t is a plain C struct, for which all-zero is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: asks about one process without waiting or reaping (WNOHANG, WNOWAIT);
        // `info` is a valid out-pointer.
        let rc = unsafe { libc::waitid(libc::P_PID, lock.l_pid as libc::id_t, &mut info, flags) };
        rc == 0
    }

    /// The last user's test without joining or leaving: `Some` when no process (this one
    /// included) uses the object.
    pub(super) fn no_users(&self) -> Option<LastUser<'_>> {
        let mine = self.mine();
        if mine.users > 0 && mine.users_pid == super::my_pid() {
            return None;
        }
        self.range(libc::F_SETLK, WRLCK, USERS)
            .ok()
            .map(|_| LastUser {
                companion: self,
                _mine: mine,
            })
    }

    /// Counts a waiting thread of this process in until the guard drops.
    pub(super) fn waiting(&self) -> Waiting<'_> {
        let pid = super::my_pid();
        let mut mine = self.mine();
        if mine.waiting == 0 || mine.waiting_pid != pid {
            // Nobody takes a write lock on this byte: granted at once (an error leaves this
            // waiter unseen, and its semaphore removable under it: it then reopens by name).
            let _ = self.range(libc::F_SETLK, RDLCK, WAITING);
            mine.waiting = 0;
            mine.waiting_pid = pid;
        }
        mine.waiting += 1;
        Waiting { companion: self }
    }

    /// Whether a thread of another process waits for the semaphore.
    pub(super) fn waited_for_elsewhere(&self) -> bool {
        self.range(libc::F_GETLK, WRLCK, WAITING)
            .map_or(true, |kind| kind != UNLCK)
    }

    /// This process's token for the owner record: its slot, taken the first time (the pid as
    /// a hint for people). Without a slot (the kernel refused byte-range locks), the pid
    /// alone, which no waiter takes for dead. Two atomic loads once known (the lock's hot
    /// path asks on every acquire and release).
    #[inline]
    pub(super) fn token(&self) -> u64 {
        let generation = crate::sys::fork::generation();
        if self.token_generation.load(Ordering::Acquire) == generation {
            return self.token.load(Ordering::Relaxed);
        }
        self.take_token()
    }

    #[cold]
    fn take_token(&self) -> u64 {
        // First: it registers the fork handler, which makes the generation below current.
        let pid = super::my_pid();
        let generation = crate::sys::fork::generation();
        let mut mine = self.mine();
        if mine.slot_generation != generation {
            let avoid = self.record().load(Ordering::Relaxed);
            mine.slot = 0;
            for slot in crate::sys::random::random_below(SLOTS).take(64) {
                if avoid & TOKEN_FLAG != 0 && u64::from(slot) == avoid & u64::from(SLOTS - 1) {
                    continue;
                }
                match self.range(libc::F_SETLK, WRLCK, SLOT_BASE + i64::from(slot)) {
                    Ok(_) => {
                        mine.slot = slot | TOKEN_FLAG as u32;
                        break;
                    }
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => {}
                    Err(_) => break,
                }
            }
            mine.slot_generation = generation;
        }
        let token = u64::from(pid) << 32 | u64::from(mine.slot);
        self.token.store(token, Ordering::Relaxed);
        self.token_generation.store(generation, Ordering::Release);
        token
    }

    /// Whether the holder a record names is alive: a record of this process is (its own
    /// token), one that names no slot is taken for alive, and so is any the kernel does not
    /// answer about.
    pub(super) fn is_alive(&self, record: u64) -> bool {
        if record & TOKEN_FLAG == 0 || record == self.token() {
            return true;
        }
        let slot = (record & u64::from(SLOTS - 1)) as u32;
        self.range(libc::F_GETLK, WRLCK, SLOT_BASE + i64::from(slot))
            .map_or(true, |kind| kind != UNLCK)
    }

    /// `fcntl(fd, cmd, {kind, SEEK_SET, start, 1})`: the lock type `F_GETLK` reports, or
    /// `kind` after a set. Retries `EINTR`.
    fn range(&self, cmd: c_int, kind: c_int, start: i64) -> io::Result<c_int> {
        loop {
            // SAFETY: flock is a plain C struct of integers, for which all-zero is valid.
            let mut lock: libc::flock = unsafe { std::mem::zeroed() };
            lock.l_type = kind as _;
            lock.l_whence = libc::SEEK_SET as _;
            lock.l_start = start as _;
            lock.l_len = 1;
            // SAFETY: the file is open for as long as `self`; the command takes a pointer to
            // a struct flock, valid for the call.
            let rc = unsafe { libc::fcntl(self.file.as_raw_fd(), cmd, &mut lock) };
            if rc != -1 {
                return Ok(lock.l_type as c_int);
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINTR) {
                return Err(err);
            }
        }
    }
}

/// One fork at a time makes the handshake below (forks of several threads take turns).
static FORKING: AtomicBool = AtomicBool::new(false);
/// The handshake's pipe (read end, write end), -1 when there is none.
static FORK_PIPE: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];
/// How long a parent waits for its child to have counted itself.
const FORK_WAIT_MS: c_int = 1000;

/// Before a `fork` of a process with open companions: a pipe through which the child says
/// that it has counted itself (`count_forked_copies`), which the parent waits for
/// (`fork_parent`) before it goes on: else its own last detach could run first, and remove
/// what the child still maps.
extern "C" fn fork_prepare() {
    // Another thread's fork is under way: its parent handler ends it. (Should a C library
    // skip the parent handlers after a failed fork, the turn is taken anyway after 2 s.)
    let start = std::time::Instant::now();
    while FORKING
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        if start.elapsed() > std::time::Duration::from_secs(2) {
            FORKING.store(true, Ordering::Relaxed);
            let (read, write) = take_fork_pipe();
            for fd in [read, write].into_iter().filter(|&fd| fd >= 0) {
                // SAFETY: a pipe end of the abandoned handshake, owned here, closed once.
                unsafe { libc::close(fd) };
            }
            break;
        }
        std::thread::yield_now();
    }
    let open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    if open.iter().all(|e| e.companion.strong_count() == 0) {
        return;
    }
    drop(open);
    let mut fds = [-1 as c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return; // no handshake: the child's count may come late
    }
    for fd in fds {
        // SAFETY: a descriptor just made; FD_CLOEXEC keeps it from programs run later.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    FORK_PIPE[0].store(fds[0], Ordering::Relaxed);
    FORK_PIPE[1].store(fds[1], Ordering::Relaxed);
}

/// In the parent after a `fork`: waits (at most [`FORK_WAIT_MS`]) until the child has counted
/// itself, or has gone (its end of the pipe closes).
extern "C" fn fork_parent() {
    let (read, write) = take_fork_pipe();
    if write >= 0 {
        // SAFETY: this process's copy of the pipe's write end, closed once.
        unsafe { libc::close(write) };
    }
    if read >= 0 {
        let mut pfd = libc::pollfd {
            fd: read,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; then the read end, closed once.
        unsafe {
            libc::poll(&mut pfd, 1, FORK_WAIT_MS);
            libc::close(read);
        }
    }
    FORKING.store(false, Ordering::Release);
}

fn take_fork_pipe() -> (c_int, c_int) {
    (
        FORK_PIPE[0].swap(-1, Ordering::Relaxed),
        FORK_PIPE[1].swap(-1, Ordering::Relaxed),
    )
}

/// In the child of a `fork`: a process forked from a user of a companion, which maps what
/// its parent mapped, is counted as a user too (classic record locks are not inherited): for
/// each companion its parent used, it takes the users' read lock, and its copies leave as
/// the parent's would; then it tells its parent, which waits for that (`fork_prepare`). One
/// thread runs here, so only async-signal-safe calls are made (`getpid`, `getppid`, `fcntl`,
/// `write`, `close`) and no lock is waited for: a registry or companion whose lock another
/// thread of the parent held at the fork is skipped (that copy goes uncounted). The
/// companion descriptors are close-on-exec: a child that execs lets go.
extern "C" fn count_forked_copies() {
    count_in_child();
    let (read, write) = take_fork_pipe();
    // SAFETY: the child's copies of the pipe's ends, each closed once; one byte written
    // from a valid buffer.
    unsafe {
        if read >= 0 {
            libc::close(read);
        }
        if write >= 0 {
            libc::write(write, b"c".as_ptr().cast(), 1);
            libc::close(write);
        }
    }
    FORKING.store(false, Ordering::Release);
}

fn count_in_child() {
    let Ok(open) = OPEN.try_lock() else {
        return;
    };
    // SAFETY: getpid and getppid have no preconditions.
    let (parent, me) = unsafe { (libc::getppid() as u32, libc::getpid() as u32) };
    for entry in open.iter() {
        if entry.companion.strong_count() == 0 {
            continue; // being closed
        }
        // SAFETY: a strong reference keeps the companion alive, and nothing else runs in
        // this process now that could drop it.
        let companion = unsafe { &*entry.companion.as_ptr() };
        let Ok(mut mine) = companion.mine.try_lock() else {
            continue;
        };
        if mine.users > 0 && mine.users_pid == parent {
            let counted = companion.range(libc::F_SETLK, RDLCK, USERS).is_ok();
            mine.users_pid = if counted { me } else { 0 };
        }
    }
}

impl Drop for Companion {
    /// Closes the file under [`OPEN`]'s lock and only then lets its entry go.
    fn drop(&mut self) {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: `words` is this value's own mapping of LEN bytes, unmapped once, here;
        // every reference to it borrowed `self`.
        let _ = unsafe { rustix::mm::munmap(self.words.as_ptr().cast(), LEN) };
        // SAFETY: the file is dropped once, here, and not used after.
        unsafe { ManuallyDrop::drop(&mut self.file) };
        let me: *const Companion = self;
        open.retain(|e| e.companion.as_ptr() != me);
    }
}

/// A waiting thread, counted in (see [`Companion::waiting`]).
pub(super) struct Waiting<'a> {
    companion: &'a Companion,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut mine = self.companion.mine();
        if mine.waiting_pid == super::my_pid() {
            mine.waiting = mine.waiting.saturating_sub(1);
            if mine.waiting == 0 {
                let _ = self.companion.range(libc::F_SETLK, UNLCK, WAITING);
            }
        }
    }
}

/// The last user of an object, holding the users' write lock until dropped.
/// It also holds this process's part, so that no other thread of the process joins
/// meanwhile (its read lock would turn this process's write lock back into a read lock).
pub(super) struct LastUser<'a> {
    companion: &'a Companion,
    _mine: std::sync::MutexGuard<'a, Mine>,
}

impl LastUser<'_> {
    /// Removes the companion file (its object is gone, or going).
    pub(super) fn remove_file(&self) {
        if self.companion.still_named() {
            let _ = std::fs::remove_file(&self.companion.path);
        }
    }
}

impl Drop for LastUser<'_> {
    fn drop(&mut self) {
        let _ = self.companion.range(libc::F_SETLK, UNLCK, USERS);
    }
}
