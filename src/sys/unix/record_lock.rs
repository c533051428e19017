//! Files whose users and lock holders are told apart by classic POSIX record locks (`fcntl`
//! `F_SETLK`/`F_GETLK`), which macOS, iOS and FreeBSD have on regular files: the companion
//! files of the portable POSIX backend (`posix_portable/companion.rs`) and the segment files
//! and memfds of `qshm::mapped` there (`mapped`). On Linux the portable-Unix test mode
//! (`--cfg qshm_portable`) runs them.
//!
//! Two kinds of byte-range locks, on bytes past what anyone reads (allowed, and changing
//! nothing in the file; record locks are advisory):
//!
//! * **users**, byte [`LockedFile::join`]'s `users` argument: every process that uses the
//!   file holds a read lock on it while it does (one per process, however many handles it
//!   has: classic locks belong to the process). A write lock there is granted only when no
//!   other process holds one: the last user's test ([`LockedFile::leave`],
//!   [`LockedFile::no_users`]).
//! * **slots**, bytes [`SLOT_BASE`] + n: a process that takes a lock first takes a random
//!   slot with a write lock and names it in the record it writes while it holds the lock
//!   ([`LockedFile::token`]). A waiter asks the kernel (`F_GETLK`) whether some process still
//!   holds that byte; the kernel drops every lock of a process when it dies, `kill -9`
//!   included, in any PID namespace.
//!
//! Classic locks have one trap: closing *any* descriptor of the file drops all of the
//! process's locks on it. So a process has each file open once: [`LockedFile::open`] and
//! [`LockedFile::adopt`] share one open file between all handles of the process (a registry
//! by device and inode), keep every further descriptor of it that the process receives, and
//! close them all with the last handle. They are also not inherited by `fork`: a forked child
//! takes its own slot the first time it locks (the fork generation is checked), and its
//! users' read lock in a fork handler (`count_forked_copies`), so that a copy of an
//! attachment it still maps keeps the file from its parent's last detach.
//!
//! A process never asks about its own slot (the kernel ignores the asker's own locks): its
//! own record is recognised by its token.
//!
//! # References
//!
//! * <https://pubs.opengroup.org/onlinepubs/9799919799/functions/fcntl.html> (record locking)
//! * <https://man.freebsd.org/cgi/man.cgi?fcntl(2)>,
//!   <https://developer.apple.com/library/archive/documentation/System/Conceptual/ManPages_iPhoneOS/man2/fcntl.2.html>

use std::ffi::c_int;
use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::sys::fork::my_pid;

/// Where slots start, below 2^31 (a 32-bit `off_t`).
const SLOT_BASE: i64 = 1 << 20;
/// How many slots there are, picked at random: a slot another live process holds only makes
/// a dead holder look alive for as long as that process lives (a wait, never two holders).
pub(crate) const SLOTS: u32 = 1 << 30;
/// The lock types, as `c_int` (the C libraries declare them `short` on BSD systems).
pub(crate) const RDLCK: c_int = libc::F_RDLCK as c_int;
pub(crate) const WRLCK: c_int = libc::F_WRLCK as c_int;
pub(crate) const UNLCK: c_int = libc::F_UNLCK as c_int;
/// Set in a token's low half (and so in the high half of a lock word, `word_lock::TOKEN`)
/// when it names a slot.
pub(crate) const TOKEN_FLAG: u64 = 1 << 31;

/// A small shared mapping of a file's first bytes, words accessed atomically (the
/// companions' records), unmapped on drop.
pub(crate) struct Words {
    ptr: NonNull<AtomicU64>,
    len: usize,
}

// SAFETY: a mapping of shared memory that every process accesses atomically only; the
// pointer is not tied to a thread.
unsafe impl Send for Words {}
// SAFETY: as above.
unsafe impl Sync for Words {}

impl Words {
    /// # Safety
    ///
    /// `ptr` must be a mapping of `len` bytes (a multiple of 8, page-aligned start) that
    /// this value alone unmaps, and whose bytes every user accesses atomically.
    pub(crate) unsafe fn new(ptr: NonNull<AtomicU64>, len: usize) -> Words {
        Words { ptr, len }
    }

    /// Word `i`, if the mapping has it.
    pub(crate) fn get(&self, i: usize) -> Option<&AtomicU64> {
        // SAFETY: `ptr` maps `len` bytes, page-aligned, for as long as `self` lives (the
        // contract of `new`); every access to them, in every process, is atomic.
        (i < self.len / 8).then(|| unsafe { &*self.ptr.as_ptr().add(i) })
    }

    /// The first word's address (for keeping it beside an owner of this value).
    pub(crate) fn ptr(&self) -> NonNull<AtomicU64> {
        self.ptr
    }
}

impl Drop for Words {
    fn drop(&mut self) {
        // SAFETY: this value's own mapping (the contract of `new`), unmapped once, here;
        // every reference to it borrowed `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// One process's open file (shared by all its handles of it).
pub(crate) struct LockedFile {
    /// The path it was opened (or is being created) at; `None`: a received descriptor whose
    /// name is unknown (until it is opened by a path).
    path: Mutex<Option<PathBuf>>,
    /// Closed in Drop under [`OPEN`]'s lock (see there).
    file: ManuallyDrop<File>,
    /// Further descriptors of the same file this process received: kept open until the
    /// last handle goes, since closing one would drop the process's locks on the file.
    more: Mutex<Vec<OwnedFd>>,
    /// A mapping of its first words, made by the first handle that wants one (companions).
    words: OnceLock<Words>,
    dev: u64,
    ino: u64,
    /// This process's part: the users' lock and the slot, each with the pid (the slot: the
    /// fork generation) that took it (a forked child has neither until it takes its own).
    mine: Mutex<Mine>,
    /// [`LockedFile::token`] without the mutex: the token, valid in the fork generation
    /// `token_generation` names (0: none yet; generations start at 1). Written under
    /// `mine`'s lock, the token first.
    token: AtomicU64,
    token_generation: AtomicU32,
}

#[derive(Default)]
struct Mine {
    users: u32,
    users_pid: u32,
    /// The users' byte this process holds a read lock on (for the fork handler).
    users_byte: i64,
    waiting: u32,
    waiting_pid: u32,
    slot: u32,
    /// The fork generation that took `slot` (a child's pid may be its grandparent's, reused).
    slot_generation: u32,
}

/// The open files of this process, so that each is open once (see the module docs).
///
/// Opening and closing a file happen under this lock, and an entry leaves the list only
/// when its file is closed: an `open` that finds the file it wants still being closed (its
/// last handle gone, its Drop not yet done) waits for that, since closing the old descriptor
/// after a new one took its locks would drop them.
static OPEN: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

struct Entry {
    dev: u64,
    ino: u64,
    file: Weak<LockedFile>,
}

/// What the registry holds for a (device, inode): the open file, or one being closed.
enum Found {
    Open(Arc<LockedFile>),
    Closing,
    None,
}

fn find(open: &[Entry], dev: u64, ino: u64) -> Found {
    let mut found = Found::None;
    for entry in open.iter().filter(|e| e.dev == dev && e.ino == ino) {
        match entry.file.upgrade() {
            Some(f) => return Found::Open(f),
            None => found = Found::Closing,
        }
    }
    found
}

impl LockedFile {
    /// The file at `path`: this process's open one if the path names a file it has open,
    /// else the one `open_new` opens there. A descriptor `open_new` opens of a file this
    /// process has open after all (the path was replaced meanwhile) is kept with it, never
    /// closed. The caller checks what it got (a refusal drops a new file, which then holds
    /// no lock yet, or leaves the one open as it was).
    pub(crate) fn open(
        path: &Path,
        open_new: impl FnOnce(&Path) -> io::Result<File>,
    ) -> io::Result<Arc<LockedFile>> {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(named) = std::fs::symlink_metadata(path) {
            loop {
                match find(&open, named.dev(), named.ino()) {
                    Found::Open(f) => {
                        f.name(path);
                        return Ok(f);
                    }
                    Found::Closing => {
                        drop(open);
                        std::thread::yield_now();
                        open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
                    }
                    Found::None => break,
                }
            }
        }
        let file = open_new(path)?;
        drop(open);
        let f = LockedFile::adopt(file.into(), None)?;
        f.name(path);
        Ok(f)
    }

    /// Names the file `path` if it has no name yet and `path` names it.
    fn name(&self, path: &Path) {
        let mut name = self.path.lock().unwrap_or_else(|e| e.into_inner());
        if name.is_none() && self.names_me(path) {
            *name = Some(path.to_owned());
        }
    }

    /// Whether `path` names this file.
    fn names_me(&self, path: &Path) -> bool {
        std::fs::symlink_metadata(path).is_ok_and(|m| self.is(&m))
    }

    /// Names the file `to` once it is linked there (a file being created under a temporary
    /// name, counted among its users before it has its own).
    pub(crate) fn linked_at(&self, to: &Path) {
        *self.path.lock().unwrap_or_else(|e| e.into_inner()) = Some(to.to_owned());
    }

    /// Closes `fd`, or, when it is a descriptor of a file this process has open, keeps it
    /// with that file (closing it would drop the process's record locks on the file).
    pub(crate) fn release(fd: OwnedFd) {
        let file = File::from(fd);
        let Ok(meta) = file.metadata() else {
            return; // not a file whose locks anyone holds
        };
        let open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let found = find(&open, meta.dev(), meta.ino());
        match &found {
            Found::Open(f) => f
                .more
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(file.into()),
            // Closed under the registry's lock: no thread can register the file and take
            // locks on it meanwhile. (Found::Closing: its last handle is closing it,
            // dropping its locks anyway.)
            Found::Closing | Found::None => drop(file),
        }
        drop(open);
        // Last: should it be the last reference, its Drop takes the registry's lock.
        drop(found);
    }

    /// The open file `fd` refers to: this process's one if it has the file open already (and
    /// `fd` is then kept with it, never closed before it), else a new one, named `path` if
    /// that path names the same file.
    pub(crate) fn adopt(fd: OwnedFd, path: Option<&Path>) -> io::Result<Arc<LockedFile>> {
        let file = File::from(fd);
        let meta = file.metadata()?;
        loop {
            let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
            match find(&open, meta.dev(), meta.ino()) {
                Found::Open(f) => {
                    f.more
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(file.into());
                    if let Some(path) = path {
                        f.name(path);
                    }
                    return Ok(f);
                }
                Found::Closing => {
                    drop(open);
                    std::thread::yield_now();
                }
                Found::None => {
                    let f = LockedFile::register(&mut open, file, &meta);
                    drop(open);
                    if let Some(path) = path {
                        f.name(path);
                    }
                    return Ok(f);
                }
            }
        }
    }

    fn register(open: &mut Vec<Entry>, file: File, meta: &std::fs::Metadata) -> Arc<LockedFile> {
        let f = Arc::new(LockedFile {
            path: Mutex::new(None),
            file: ManuallyDrop::new(file),
            more: Mutex::new(Vec::new()),
            words: OnceLock::new(),
            dev: meta.dev(),
            ino: meta.ino(),
            mine: Mutex::new(Mine::default()),
            token: AtomicU64::new(0),
            token_generation: AtomicU32::new(0),
        });
        open.push(Entry {
            dev: f.dev,
            ino: f.ino,
            file: Arc::downgrade(&f),
        });
        f
    }

    /// Its mapping of words, made by `map` the first time (another thread's, if it was
    /// first); an error of `map` refuses the file.
    pub(crate) fn words(&self, map: impl FnOnce(&File) -> io::Result<Words>) -> io::Result<&Words> {
        if let Some(w) = self.words.get() {
            return Ok(w);
        }
        let words = map(&self.file)?;
        Ok(self.words.get_or_init(|| words))
    }

    /// The path it was opened at, if known.
    pub(crate) fn path(&self) -> Option<PathBuf> {
        self.path.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The open file.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    fn is(&self, meta: &std::fs::Metadata) -> bool {
        meta.dev() == self.dev && meta.ino() == self.ino
    }

    /// Whether the path still names this file (true when no path is known).
    pub(crate) fn still_named(&self) -> bool {
        match self.path() {
            Some(p) => self.names_me(&p),
            None => true,
        }
    }

    /// Removes the file at `path` if `path` names it. Only a [`LastUser`] (or its holder)
    /// should.
    fn unlink_at(&self, path: &Path) -> io::Result<bool> {
        if self.names_me(path) {
            std::fs::remove_file(path).map(|()| true)
        } else {
            Ok(false)
        }
    }

    fn mine(&self) -> std::sync::MutexGuard<'_, Mine> {
        self.mine.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one more user in this process; the first takes the read lock on byte `users`,
    /// waiting while a last user removes the file (it holds the write lock only for that).
    /// False when the path no longer names the file (removed meanwhile: open it again).
    pub(crate) fn join(&self, users: i64) -> io::Result<bool> {
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
        let pid = my_pid();
        let mut mine = self.mine();
        if mine.users == 0 || mine.users_pid != pid {
            self.range(libc::F_SETLKW, RDLCK, users)?;
            if !self.still_named() {
                let _ = self.range(libc::F_SETLK, UNLCK, users);
                return Ok(false);
            }
            *mine = Mine {
                users: 0,
                users_pid: pid,
                users_byte: users,
                ..*mine
            };
        }
        mine.users += 1;
        Ok(true)
    }

    /// Counts one user of this process out. `Some(guard)` when that was the last user
    /// anywhere: the guard holds the users' write lock (no process can join meanwhile) until
    /// it is dropped, after the file (and what it stands for) is removed.
    pub(crate) fn leave(&self) -> Option<LastUser<'_>> {
        let pid = my_pid();
        let mut mine = self.mine();
        if mine.users_pid != pid {
            // A forked child's copy that never joined: only its parent's count exists.
            return None;
        }
        mine.users = mine.users.saturating_sub(1);
        if mine.users > 0 {
            return None;
        }
        let users = mine.users_byte;
        // The read lock goes first, then a write lock is tried, which succeeds only if no
        // other process holds one: of several processes leaving at once, the last to try
        // cannot fail because of the others (their read locks are gone), and of two trying
        // at once exactly one succeeds. (Converting the read lock in place instead would
        // let all of them fail.) A process joining in between makes it fail: it is a user.
        let _ = self.range(libc::F_SETLK, UNLCK, users);
        let mut pause = std::time::Duration::from_micros(250);
        for attempt in 0..4 {
            if self.range(libc::F_SETLK, WRLCK, users).is_ok() {
                mine.users_pid = 0;
                return Some(LastUser {
                    file: self,
                    users,
                    _mine: mine,
                });
            }
            // A child this process is forking counts as a user (`count_forked_copies`)
            // until it execs (the descriptor is close-on-exec) or exits: when the user in
            // the way is a child of ours, it is asked again a few times (0.25, 0.5, 1 ms).
            if attempt == 3 || !self.held_by_our_child(users) {
                break;
            }
            std::thread::sleep(pause);
            pause *= 2;
        }
        mine.users_pid = 0;
        None
    }

    /// Whether the process whose lock keeps a write lock on byte `at` from us is a child of
    /// this one (`F_GETLK` names one such process; `waitid` without waiting says whether it
    /// is ours).
    fn held_by_our_child(&self, at: i64) -> bool {
        let Ok((kind, pid)) = self.ask(WRLCK, at) else {
            return false;
        };
        if kind == UNLCK || pid <= 0 {
            return false;
        }
        // SAFETY: siginfo_t is a plain C struct, for which all-zero is valid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: asks about one process without waiting or reaping (WNOHANG, WNOWAIT);
        // `info` is a valid out-pointer.
        let rc = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
        rc == 0
    }

    /// The last user's test without joining or leaving: `Some` when no process (this one
    /// included) uses the file through byte `users`.
    pub(crate) fn no_users(&self, users: i64) -> Option<LastUser<'_>> {
        let mine = self.mine();
        if mine.users > 0 && mine.users_pid == my_pid() {
            return None;
        }
        self.range(libc::F_SETLK, WRLCK, users)
            .ok()
            .map(|_| LastUser {
                file: self,
                users,
                _mine: mine,
            })
    }

    /// Counts a waiting thread of this process in, through a read lock on byte `at`, until
    /// the guard drops.
    pub(crate) fn waiting(&self, at: i64) -> Waiting<'_> {
        let pid = my_pid();
        let mut mine = self.mine();
        if mine.waiting == 0 || mine.waiting_pid != pid {
            // Nobody takes a write lock on this byte: granted at once (an error leaves this
            // waiter unseen, and what it waits for removable under it).
            let _ = self.range(libc::F_SETLK, RDLCK, at);
            mine.waiting = 0;
            mine.waiting_pid = pid;
        }
        mine.waiting += 1;
        Waiting { file: self, at }
    }

    /// Whether another process holds a lock on byte `at` (unknown: yes).
    pub(crate) fn locked_elsewhere(&self, at: i64) -> bool {
        self.range(libc::F_GETLK, WRLCK, at)
            .map_or(true, |kind| kind != UNLCK)
    }

    /// This process's token: `pid << 32 | TOKEN_FLAG | slot`, its slot taken the first time
    /// in each fork generation (the pid as a hint for people). Without a slot (the kernel
    /// refused byte-range locks), `pid << 32` alone, which no waiter takes for dead. Two
    /// atomic loads once known (a lock's hot path asks on every acquire and release).
    #[inline]
    pub(crate) fn token(&self) -> u64 {
        let generation = crate::sys::fork::generation();
        if self.token_generation.load(Ordering::Acquire) == generation {
            return self.token.load(Ordering::Relaxed);
        }
        self.take_token(0)
    }

    /// The fork generation [`token`](Self::token) is known in (0: none yet).
    #[inline]
    pub(crate) fn token_generation(&self) -> u32 {
        self.token_generation.load(Ordering::Acquire)
    }

    /// This process's token after trying once more for a slot, if it has none (the kernel
    /// may have refused one for a passing reason): for a caller that cannot do without.
    #[cold]
    pub(crate) fn retry_slot(&self) -> u64 {
        {
            let mut mine = self.mine();
            if mine.slot == 0 {
                mine.slot_generation = 0;
            }
        }
        self.take_token(0)
    }

    /// [`token`](Self::token), taking a slot other than `avoid`'s (a token in a record that
    /// another process may still hold) when it takes one.
    #[cold]
    pub(crate) fn take_token(&self, avoid: u64) -> u64 {
        // First: it registers the fork handler, which makes the generation below current.
        let pid = my_pid();
        let generation = crate::sys::fork::generation();
        let mut mine = self.mine();
        if mine.slot_generation != generation {
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

    /// Whether the holder a token names is alive: this process's own token is, one that
    /// names no slot is taken for alive, and so is any the kernel does not answer about.
    pub(crate) fn is_alive(&self, token: u64) -> bool {
        if token & TOKEN_FLAG == 0 || token == self.token() {
            return true;
        }
        self.slot_held_elsewhere((token & u64::from(SLOTS - 1)) as u32)
    }

    /// Whether the system takes record locks on this file at all (FreeBSD's shared memory
    /// objects, memfds among them, may refuse them).
    pub(crate) fn takes_record_locks(&self) -> bool {
        self.range(libc::F_GETLK, WRLCK, SLOT_BASE).is_ok()
    }

    /// Whether another process holds slot `slot` (unknown: yes).
    pub(crate) fn slot_held_elsewhere(&self, slot: u32) -> bool {
        self.locked_elsewhere(SLOT_BASE + i64::from(slot % SLOTS))
    }

    /// `fcntl(fd, cmd, {kind, SEEK_SET, start, 1})`: the lock type `F_GETLK` reports, or
    /// `kind` after a set. Retries `EINTR`.
    pub(crate) fn range(&self, cmd: c_int, kind: c_int, start: i64) -> io::Result<c_int> {
        range(self.file.as_raw_fd(), cmd, kind, start).map(|(kind, _)| kind)
    }

    /// `F_GETLK` for a lock of `kind` on byte `at`: the type of a conflicting lock of
    /// another process and its pid, or `F_UNLCK`.
    fn ask(&self, kind: c_int, at: i64) -> io::Result<(c_int, libc::pid_t)> {
        range(self.file.as_raw_fd(), libc::F_GETLK, kind, at)
    }
}

impl AsFd for LockedFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl AsRawFd for LockedFile {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

impl std::fmt::Debug for LockedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockedFile")
            .field("path", &self.path())
            .field("fd", &self.file.as_raw_fd())
            .finish()
    }
}

/// `fcntl(fd, cmd, {kind, SEEK_SET, start, 1})`: the lock type and pid `F_GETLK` reports,
/// or `kind` after a set. Retries `EINTR`.
fn range(fd: c_int, cmd: c_int, kind: c_int, start: i64) -> io::Result<(c_int, libc::pid_t)> {
    loop {
        // SAFETY: flock is a plain C struct of integers, for which all-zero is valid.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        lock.l_type = kind as _;
        lock.l_whence = libc::SEEK_SET as _;
        lock.l_start = start as _;
        lock.l_len = 1;
        // SAFETY: the caller's descriptor is open for the call; the command takes a pointer
        // to a struct flock, valid for the call.
        let rc = unsafe { libc::fcntl(fd, cmd, &mut lock) };
        if rc != -1 {
            return Ok((lock.l_type as c_int, lock.l_pid));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// One fork at a time makes the handshake below (forks of several threads take turns).
static FORKING: AtomicBool = AtomicBool::new(false);
/// The handshake's pipe (read end, write end), -1 when there is none.
static FORK_PIPE: [AtomicI32; 2] = [AtomicI32::new(-1), AtomicI32::new(-1)];
/// How long a parent waits for its child to have counted itself.
const FORK_WAIT_MS: c_int = 1000;

/// Before a `fork` of a process with open files: a pipe through which the child says that
/// it has counted itself (`count_forked_copies`), which the parent waits for
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
    if open.iter().all(|e| e.file.strong_count() == 0) {
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

/// In the child of a `fork`: a process forked from a user of a file, which maps what its
/// parent mapped, is counted as a user too (classic record locks are not inherited): for
/// each file its parent used, it takes the users' read lock, and its copies leave as the
/// parent's would; then it tells its parent, which waits for that (`fork_prepare`). One
/// thread runs here, so only async-signal-safe calls are made (`getpid`, `getppid`, `fcntl`,
/// `write`, `close`) and no lock is waited for: a registry or file whose lock another thread
/// of the parent held at the fork is skipped (that copy goes uncounted). The descriptors
/// are close-on-exec: a child that execs lets go.
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
    let Ok(mut open) = OPEN.try_lock() else {
        return;
    };
    // A file another thread of the parent was closing at the fork (its last handle gone):
    // that thread does not exist here, so its entry would be waited for in vain. Dropping
    // the entry's weak reference frees nothing (the closing `Arc` holds one of its own until
    // its drop ends, which it never does here), and `retain` allocates nothing.
    open.retain(|e| e.file.strong_count() > 0);
    // SAFETY: getpid and getppid have no preconditions.
    let (parent, me) = unsafe { (libc::getppid() as u32, libc::getpid() as u32) };
    for entry in open.iter() {
        if entry.file.strong_count() == 0 {
            continue; // being closed
        }
        // SAFETY: a strong reference keeps the file alive, and nothing else runs in this
        // process now that could drop it.
        let file = unsafe { &*entry.file.as_ptr() };
        let Ok(mut mine) = file.mine.try_lock() else {
            continue;
        };
        if mine.users > 0 && mine.users_pid == parent {
            let counted = file.range(libc::F_SETLK, RDLCK, mine.users_byte).is_ok();
            mine.users_pid = if counted { me } else { 0 };
        }
    }
}

impl Drop for LockedFile {
    /// Closes the file under [`OPEN`]'s lock and only then lets its entry go.
    fn drop(&mut self) {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        self.words.take();
        self.more
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        // SAFETY: the file is dropped once, here, and not used after.
        unsafe { ManuallyDrop::drop(&mut self.file) };
        let me: *const LockedFile = self;
        open.retain(|e| e.file.as_ptr() != me);
    }
}

/// A waiting thread, counted in (see [`LockedFile::waiting`]).
pub(crate) struct Waiting<'a> {
    file: &'a LockedFile,
    at: i64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut mine = self.file.mine();
        if mine.waiting_pid == my_pid() {
            mine.waiting = mine.waiting.saturating_sub(1);
            if mine.waiting == 0 {
                let _ = self.file.range(libc::F_SETLK, UNLCK, self.at);
            }
        }
    }
}

/// The last user of a file, holding the users' write lock until dropped.
/// It also holds this process's part, so that no other thread of the process joins
/// meanwhile (its read lock would turn this process's write lock back into a read lock).
pub(crate) struct LastUser<'a> {
    file: &'a LockedFile,
    users: i64,
    _mine: std::sync::MutexGuard<'a, Mine>,
}

impl LastUser<'_> {
    /// Removes the file at its path, if the path still names it; whether it did.
    pub(crate) fn remove_file(&self) -> io::Result<bool> {
        match self.file.path() {
            Some(path) => self.file.unlink_at(&path),
            None => Ok(false),
        }
    }

    /// Removes the file at `path`, if `path` names it; whether it did.
    pub(crate) fn remove_at(&self, path: &Path) -> io::Result<bool> {
        self.file.unlink_at(path)
    }
}

impl Drop for LastUser<'_> {
    fn drop(&mut self) {
        let _ = self.file.range(libc::F_SETLK, UNLCK, self.users);
    }
}
