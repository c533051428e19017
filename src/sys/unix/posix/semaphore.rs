//! The lock: the C library's named semaphore, with qshm's owner record beside it.

use super::*;

/// How long a waiter sleeps on the semaphore before it checks whether the holder died.
const SLICE: Duration = Duration::from_millis(50);

/// The largest value of a POSIX semaphore (`SEM_VALUE_MAX`).
const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// The size of the C library's `sem_t`.
const SEM_T_LEN: usize = std::mem::size_of::<libc::sem_t>();

/// How much of a semaphore file qshm maps and keeps: the `sem_t`, and at least the owner
/// record (bytes 16..24) and the state word (24..32) (see the module docs).
pub(crate) const SEM_FILE_LEN: usize = if SEM_T_LEN > 32 { SEM_T_LEN } else { 32 };

// The C libraries whose `sem_t` layout the record and `sem_head` rely on.
#[cfg(qshm_libc = "glibc64")]
const _: () = assert!(SEM_T_LEN == 32);
#[cfg(qshm_libc = "glibc32")]
const _: () = assert!(SEM_T_LEN == 16);
#[cfg(qshm_libc = "musl")]
const _: () = assert!(SEM_T_LEN == 4 * std::mem::size_of::<std::ffi::c_long>());

/// The value and the waiter count in the first 16 bytes of a `sem_t`, as the C library
/// keeps them (native byte order).
pub(crate) fn sem_head(head: [u8; 16]) -> (u32, u32) {
    #[cfg(any(qshm_libc = "glibc32", qshm_libc = "musl"))]
    let u32_at =
        |at: usize| u32::from_ne_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    #[cfg(qshm_libc = "glibc64")]
    {
        // struct new_sem { uint64_t data; int private; int pad; }: the value in the low
        // 32 bits of `data`, the waiter count in the high 32 (glibc's SEM_NWAITERS_SHIFT).
        let data = u64::from_ne_bytes(head[..8].try_into().unwrap_or_default());
        (data as u32, (data >> 32) as u32)
    }
    #[cfg(qshm_libc = "glibc32")]
    {
        // struct new_sem { unsigned value; int private; int pad; unsigned nwaiters; }: the
        // value shifted left by one (SEM_VALUE_SHIFT), bit 0 set while there are waiters.
        (u32_at(0) >> 1, u32_at(12))
    }
    #[cfg(qshm_libc = "musl")]
    {
        // int __val[]: [0] the value (its top bit flags waiters in musl 1.2; -1 in older
        // ones means 0 with waiters), [1] the waiter count, [2] the sharing flag.
        let value = match u32_at(0) {
            u32::MAX => 0,
            v => v & 0x7fff_ffff,
        };
        (value, u32_at(4))
    }
}

/// A glibc named semaphore (`sem_open`).
pub(crate) struct PosixSemaphore {
    /// This handle's own mapping of the semaphore file (see [`map_sem_file`]).
    sem: NonNull<libc::sem_t>,
    /// The semaphore file, the one mapped at `sem`.
    pub(super) file: OwnedFd,
    key: NativeKey,
    /// The key's text, formatted once for the errors of this handle.
    text: std::sync::Arc<str>,
    path: String,
    /// The inode of the semaphore file when opened, to notice a semaphore replaced under
    /// the same name.
    ino: u64,
    /// The process that opened `file` (a forked copy shares its open file description).
    opener: u32,
    /// [`forks_started`](crate::sys::fork::forks_started) before `file` was opened (read
    /// before the mapping is made, which a child forked before holds no copy of).
    forks_before: u32,
    /// The owner record this handle writes when it holds the lock: its liveness slot's
    /// token (see `owner.rs`), taken at the first tracked acquire.
    token: std::sync::OnceLock<u64>,
}

// SAFETY: `sem` points into this handle's own shared mapping of the semaphore file, not tied
// to the thread that made it; glibc's sem_wait/sem_post on a process-shared sem_t are
// thread-safe, and the record words are accessed only atomically. munmap and close in Drop
// may run on any thread.
unsafe impl Send for PosixSemaphore {}
// SAFETY: every operation through `&PosixSemaphore` is a thread-safe glibc call or an
// atomic access.
unsafe impl Sync for PosixSemaphore {}

impl fmt::Debug for PosixSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PosixSemaphore")
            .field("path", &self.path)
            .finish()
    }
}

/// A semaphore file mapped by this process: the descriptor, the `sem_t`, the inode.
pub(super) type SemFile = (OwnedFd, NonNull<libc::sem_t>, u64);

/// Creates the semaphore file `path` with value `initial` unless it exists, and maps it;
/// `Ok(None)` when the name exists.
///
/// glibc's `sem_open(O_CREAT)` writes a named temporary file `sem.XXXXXX` and links it into
/// place, so a process killed in between leaves that file behind for good. Here the file is
/// written unnamed (`O_TMPFILE`) and linked into place in one step: a crash leaves nothing.
/// It starts with a `sem_t` that the C library's own `sem_init(pshared = 1)` initialised, so
/// the layout is the library's by construction, and its `sem_open` opens it as any other;
/// it is [`SEM_FILE_LEN`] bytes long. The
/// descriptor that wrote it is the one kept: no second open.
pub(super) fn create_sem_file(
    path: &str,
    initial: u32,
    mode: u32,
) -> std::result::Result<Option<SemFile>, i32> {
    let mode = Mode::from_raw_mode(mode & 0o777);
    // The temporary name, if any, goes when `temporary` does, on every path out.
    let Unnamed(tmp, temporary) = open_unnamed(mode)?;
    // SAFETY: an all-zero sem_t is valid storage for sem_init to initialise.
    let mut sem: libc::sem_t = unsafe { std::mem::zeroed() };
    // SAFETY: `sem` is valid, writable storage for a sem_t; pshared = 1 makes it usable
    // from shared memory, which is what the file becomes.
    super::super::cvt(unsafe { libc::sem_init(&mut sem, 1, initial) })?;
    // The sem_t, then zeros up to SEM_FILE_LEN (an empty owner record and state word).
    let mut bytes = [0u8; SEM_FILE_LEN];
    // SAFETY: `sem` is an initialised sem_t: reading its SEM_T_LEN bytes is reading plain
    // memory, and `bytes` has room for them (SEM_FILE_LEN >= SEM_T_LEN).
    unsafe {
        std::ptr::copy_nonoverlapping(
            std::ptr::from_ref(&sem).cast::<u8>(),
            bytes.as_mut_ptr(),
            SEM_T_LEN,
        )
    };
    let mut written = 0;
    while written < bytes.len() {
        match rustix::io::write(&tmp, &bytes[written..]) {
            Ok(n) => written += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.raw_os_error()),
        }
    }
    let st = rustix::fs::fstat(&tmp).map_err(|e| e.raw_os_error())?;
    exact_mode(&tmp, &st, mode).map_err(|e| e.raw_os_error())?;
    let ino = st.st_ino;
    let linked = match &temporary.0 {
        Some(name) => rustix::fs::link(name.as_str(), path),
        None => link_unnamed(&tmp, path),
    };
    if temporary.0.is_some() {
        // Its name goes next (`temporary`'s drop); the descriptor stays, as the semaphore's.
        let _ = rustix::fs::flock(&tmp, rustix::fs::FlockOperation::Unlock);
    }
    match linked {
        Ok(()) => {}
        Err(rustix::io::Errno::EXIST) => return Ok(None),
        Err(e) => return Err(e.raw_os_error()),
    }
    let addr = map_file(&tmp, SEM_FILE_LEN, ProtFlags::READ | ProtFlags::WRITE)
        .map_err(|e| e.raw_os_error())?;
    Ok(Some((tmp, addr.cast(), ino)))
}

/// An unnamed file in `/dev/shm` (`O_TMPFILE`), to be linked under its name once written.
#[cfg(not(qshm_portable))]
fn open_unnamed(mode: Mode) -> std::result::Result<Unnamed, i32> {
    let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
    let fd = rustix::fs::open(SHM_DIR, flags, mode).map_err(|e| e.raw_os_error())?;
    Ok(Unnamed(fd, TempName(None)))
}

/// Where there is no `O_TMPFILE` (macOS, FreeBSD): what the C library's own `sem_open`
/// does, a file under a random temporary name (`sem.tmp-<random>`), linked under the real
/// name once written, its temporary name removed when this value goes. Its creator holds an
/// exclusive `flock` on it until then (released when it dies): temporary files whose lock
/// is free are a dead creator's, and each creation removes those first (glibc's `sem_open`
/// leaves them for good).
#[cfg(qshm_portable)]
fn open_unnamed(mode: Mode) -> std::result::Result<Unnamed, i32> {
    use rustix::fs::FlockOperation;
    crate::sys::portable::hit(crate::sys::portable::Fallback::NamedCreate);
    remove_dead_temporaries();
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    loop {
        let name = format!(
            "{SHM_DIR}{TEMP_PREFIX}{:016x}",
            crate::sys::random::random_u64()
        );
        match rustix::fs::open(name.as_str(), flags, mode) {
            Ok(fd) => {
                // Nobody else has this new file open yet: the lock cannot be refused.
                rustix::fs::flock(&fd, FlockOperation::LockExclusive)
                    .map_err(|e| e.raw_os_error())?;
                return Ok(Unnamed(fd, TempName(Some(name))));
            }
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(e.raw_os_error()),
        }
    }
}

/// The temporary names of semaphore files being written (portable mode).
#[cfg(qshm_portable)]
const TEMP_PREFIX: &str = "sem.tmp-";

/// Removes the temporary semaphore files whose creator died before naming them: those whose
/// `flock` this process can take.
#[cfg(qshm_portable)]
fn remove_dead_temporaries() {
    use rustix::fs::FlockOperation;
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with(TEMP_PREFIX)) else {
            continue;
        };
        let path = format!("{SHM_DIR}{name}");
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let Ok(fd) = rustix::fs::open(path.as_str(), flags, Mode::empty()) else {
            continue;
        };
        if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
            let _ = rustix::fs::unlink(path.as_str());
        }
    }
}

/// A file being written before it gets its name, and its temporary name, if it has one.
struct Unnamed(OwnedFd, TempName);

/// A temporary name, removed on drop: the file lives on under its real name or not at all.
struct TempName(Option<String>);

impl Drop for TempName {
    fn drop(&mut self) {
        if let Some(name) = &self.0 {
            let _ = rustix::fs::unlink(name.as_str());
        }
    }
}

/// Why a semaphore file could not be mapped.
pub(super) enum SemFileError {
    Os(i32),
    /// Shorter than a `sem_t`: not a semaphore (or truncated by someone): touching it would
    /// raise SIGBUS.
    TooShort(u64),
}

/// What glibc's `sem_open(name, 0)` does (`open(O_RDWR|O_NOFOLLOW)`, `mmap` of one `sem_t`),
/// with the descriptor kept, the file's inode taken from it, and a short file refused.
///
/// The descriptor stays open so that [`sole_open_file`] can ask the kernel about the
/// semaphore, and its inode is that of the semaphore actually mapped (not of whatever the
/// name refers to a moment later). glibc's `sem_wait`/`sem_post` work on any process-shared
/// `sem_t`, so Qt (through glibc's own `sem_open`) and qshm still share one semaphore.
pub(super) fn map_sem_file(path: &str) -> std::result::Result<SemFile, SemFileError> {
    let os = |e: rustix::io::Errno| SemFileError::Os(e.raw_os_error());
    let file = open_existing(path, AccessMode::ReadWrite).map_err(os)?;
    let st = rustix::fs::fstat(&file).map_err(os)?;
    let size = st.st_size as u64;
    if size < SEM_T_LEN as u64 {
        return Err(SemFileError::TooShort(size));
    }
    if size < SEM_FILE_LEN as u64 {
        // A semaphore the C library made, with no room for the record after its sem_t
        // (32-bit glibc): lengthen the file. Idempotent, and never shortens: two processes
        // doing it at once both make it SEM_FILE_LEN long, zero-filled past the sem_t.
        rustix::fs::ftruncate(&file, SEM_FILE_LEN as u64).map_err(os)?;
    }
    let addr = map_file(&file, SEM_FILE_LEN, ProtFlags::READ | ProtFlags::WRITE).map_err(os)?;
    Ok((file, addr.cast(), st.st_ino))
}

impl PosixSemaphore {
    /// Brings the value to `value` (Qt's Create mode resets; Qt unlinks and recreates,
    /// which cuts off every process that has it open, docs/qt-ipc.md §5).
    fn reset(&self, value: u32, ctx: Ctx<'_>) -> Result<()> {
        // SAFETY: `self.sem` is a live semaphore (map_sem_file).
        while unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {}
        for _ in 0..value {
            // SAFETY: as above.
            super::super::cvt(unsafe { libc::sem_post(self.sem.as_ptr()) })
                .map_err(|e| sem_error(ctx, e))?;
        }
        Ok(())
    }

    /// The owner record after the C library's part of the `sem_t` (see the module docs).
    #[inline]
    fn record(&self) -> &AtomicU64 {
        self.tail_word(16)
    }

    /// The state word after it: bit 0 set while the data is suspect (a holder died and
    /// nobody has called `mark_consistent` since).
    #[inline]
    fn state(&self) -> &AtomicU64 {
        self.tail_word(24)
    }

    #[inline]
    fn tail_word(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset == 16 || offset == 24);
        // SAFETY: map_sem_file and create_sem_file map SEM_FILE_LEN (>= 32) bytes of a file
        // at least that long, at a page boundary, so bytes 16..32 are mapped, 8-byte
        // aligned, and live as long as `self` (until Drop unmaps them). The C library never
        // touches them (checked per library at compile time: see SEM_T_LEN); every access to
        // them is atomic, in every process.
        unsafe {
            &*self
                .sem
                .as_ptr()
                .cast::<u8>()
                .add(offset)
                .cast::<AtomicU64>()
        }
    }

    /// Whether a holder died and nobody has declared the data consistent since.
    #[inline]
    fn suspect(&self) -> bool {
        self.state().load(Ordering::Acquire) & 1 != 0
    }

    fn value(&self) -> i32 {
        let mut v: c_int = 0;
        // SAFETY: `self.sem` is live; `v` is a valid out-pointer.
        unsafe { libc::sem_getvalue(self.sem.as_ptr(), &mut v) };
        v
    }

    /// Waits until `deadline` at the latest: on the monotonic clock where the C library
    /// can (`sem_clockwait`, glibc 2.30+), so that a step of the wall clock neither stretches
    /// nor cuts the wait; elsewhere `sem_timedwait` on the wall clock, whose waits the
    /// callers keep short and re-check against the monotonic deadline.
    #[cfg(not(qshm_portable))]
    fn wait_until(&self, deadline: Instant) -> std::result::Result<(), i32> {
        let rc = match sem_clockwait() {
            Some(clockwait) => {
                let abs = super::super::absolute_timespec(libc::CLOCK_MONOTONIC, deadline);
                // SAFETY: `self.sem` is live; `abs` is a valid absolute time on the clock
                // named; `clockwait` is glibc's sem_clockwait (see `sem_clockwait`).
                unsafe { clockwait(self.sem.as_ptr(), libc::CLOCK_MONOTONIC, &abs) }
            }
            None => {
                let abs = super::super::absolute_timespec(libc::CLOCK_REALTIME, deadline);
                // SAFETY: `self.sem` is live; `abs` is a valid absolute CLOCK_REALTIME time.
                unsafe { libc::sem_timedwait(self.sem.as_ptr(), &abs) }
            }
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(errno())
        }
    }

    /// Waits until `deadline` at the latest where there is no `sem_timedwait` (macOS):
    /// `sem_trywait` polled with a backoff (`portable::Backoff`); `ETIMEDOUT` when the deadline
    /// passes, as `sem_timedwait` says it.
    #[cfg(qshm_portable)]
    fn wait_until(&self, deadline: Instant) -> std::result::Result<(), i32> {
        use crate::sys::portable::{hit, Backoff, Fallback};
        hit(Fallback::PosixTimed);
        let mut backoff = Backoff::new();
        loop {
            // SAFETY: `self.sem` is a live semaphore (map_sem_file).
            if unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {
                return Ok(());
            }
            match errno() {
                libc::EAGAIN if backoff.sleep_until(deadline) => {}
                libc::EAGAIN => return Err(libc::ETIMEDOUT),
                e => return Err(e),
            }
        }
    }

    /// The record this handle writes when it holds the lock: a token naming its liveness
    /// slot, taken the first time (`owner.rs`); without a slot (the kernel refused one),
    /// the pid alone, which no waiter takes for dead.
    #[inline]
    pub(super) fn token(&self) -> u64 {
        *self.token.get_or_init(|| {
            let found = self.record().load(Ordering::Relaxed);
            take_slot(&self.file, found).map_or(u64::from(my_pid()) << 32, token)
        })
    }

    /// Takes the dead holder's unit when the record names a holder the kernel says is gone
    /// (its slot is unlocked) while the semaphore is still taken. Exactly one waiter wins
    /// the compare-and-swap.
    fn take_over_from_dead_holder(&self, me: u64) -> bool {
        let record = self.record();
        let old = record.load(Ordering::Acquire);
        if old == 0 || old == me || is_alive(&self.file, old) || self.value() > 0 {
            return false;
        }
        let taken = record
            .compare_exchange(old, me, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if taken {
            self.state().fetch_or(1, Ordering::AcqRel);
        }
        taken
    }

    /// One `sem_wait` / `sem_trywait` / `sem_timedwait`, retried on `EINTR`.
    fn wait_once(&self, wait: Wait, deadline: Option<Instant>) -> std::result::Result<(), i32> {
        loop {
            let rc = match (wait, deadline) {
                (Wait::Poll, _) => {
                    // SAFETY: `self.sem` is a live semaphore (map_sem_file).
                    if unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {
                        Ok(())
                    } else {
                        Err(errno())
                    }
                }
                (_, Some(deadline)) => self.wait_until(deadline),
                (_, None) => {
                    // SAFETY: `self.sem` is a live semaphore (map_sem_file).
                    if unsafe { libc::sem_wait(self.sem.as_ptr()) } == 0 {
                        Ok(())
                    } else {
                        Err(errno())
                    }
                }
            };
            match rc {
                Err(libc::EINTR) => continue,
                other => return other,
            }
        }
    }

    /// A plain counting acquire (no owner record).
    fn acquire_plain(&self, wait: Wait, op: Operation) -> Result<()> {
        let deadline = super::super::deadline(wait);
        self.wait_once(wait, deadline)
            .map_err(|e| wait_error(Ctx::shared(op, &self.key, &self.text), e))
    }

    /// The segment lock: `sem_wait` in slices, recording the holder, recovering from a dead
    /// one. Returns whether the previous holder died.
    ///
    /// The uncontended path, inlined: one `sem_trywait` (an atomic, no system call while the
    /// value is positive) and a store of the owner record.
    #[inline]
    fn acquire_tracked(&self, wait: Wait, op: Operation) -> Result<bool> {
        // The token first: taking a slot (once) between the semaphore and the record would
        // widen the window in which a holder killed cannot be recognised.
        let me = self.token();
        // SAFETY: `self.sem` is a live semaphore (map_sem_file).
        if unsafe { libc::sem_trywait(self.sem.as_ptr()) } == 0 {
            self.record().store(me, Ordering::Release);
            // Still suspect if a holder died before, even if whoever took over then (perhaps
            // inside create/attach) did not repair the data.
            return Ok(self.suspect());
        }
        self.acquire_tracked_slow(wait, op, me)
    }

    #[cold]
    fn acquire_tracked_slow(&self, wait: Wait, op: Operation, me: u64) -> Result<bool> {
        let ctx = Ctx::shared(op, &self.key, &self.text);
        let deadline = match wait {
            Wait::Poll => Some(Instant::now()),
            _ => super::super::deadline(wait),
        };
        // The uncontended path: one sem_trywait, no system call when the value is positive.
        let mut result = self.wait_once(Wait::Poll, None);
        loop {
            match result {
                Ok(()) => {
                    self.record().store(me, Ordering::Release);
                    // Still suspect if a holder died before, even if whoever took over then
                    // (perhaps inside create/attach) did not repair the data.
                    return Ok(self.suspect());
                }
                Err(libc::EAGAIN | libc::ETIMEDOUT) => {}
                Err(e) => return Err(wait_error(ctx, e)),
            }
            if self.take_over_from_dead_holder(me) {
                return Ok(true);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(wait_error(
                    ctx,
                    if wait == Wait::Poll {
                        libc::EAGAIN
                    } else {
                        libc::ETIMEDOUT
                    },
                ));
            }
            let slice_end = deadline.map_or(now + SLICE, |d| d.min(now + SLICE));
            result = self.wait_once(Wait::Forever, Some(slice_end));
        }
    }

    /// The waiter count the C library keeps in the `sem_t` ([`sem_head`]).
    fn nwaiters(&self) -> usize {
        let word = |at: usize| {
            // SAFETY: bytes 0..16 of a live, mapped, page-aligned sem_t: two aligned 8-byte
            // words, which the C library itself changes only atomically.
            let word = unsafe { &*self.sem.as_ptr().cast::<u8>().add(at).cast::<AtomicU64>() };
            word.load(Ordering::Relaxed).to_ne_bytes()
        };
        let mut head = [0u8; 16];
        head[..8].copy_from_slice(&word(0));
        head[8..].copy_from_slice(&word(8));
        sem_head(head).1 as usize
    }
}

/// `int sem_clockwait(sem_t *, clockid_t, const struct timespec *)`.
#[cfg(not(qshm_portable))]
pub(super) type SemClockwait =
    unsafe extern "C" fn(*mut libc::sem_t, libc::clockid_t, *const libc::timespec) -> c_int;

/// glibc's `sem_clockwait` (2.30 and later), looked up once at run time: linking it would
/// make the program refuse to start on an older glibc, and musl has none.
#[cfg(not(qshm_portable))]
pub(super) fn sem_clockwait() -> Option<SemClockwait> {
    static FN: std::sync::OnceLock<Option<SemClockwait>> = std::sync::OnceLock::new();
    *FN.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name has no other
        // precondition; it returns null when the symbol does not exist.
        let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"sem_clockwait".as_ptr()) };
        // SAFETY: a non-null `sem_clockwait` of the C library has exactly this signature
        // (sem_clockwait(3)).
        (!sym.is_null())
            .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, SemClockwait>(sym) })
    })
}

/// The error of a failed wait.
pub(super) fn wait_error(ctx: Ctx<'_>, e: i32) -> Error {
    match e {
        libc::ETIMEDOUT => ctx.err(e).with_kind(ErrorKind::Timeout),
        _ => sem_error(ctx, e),
    }
}

/// Qt's error table for semaphores (docs/qt-ipc.md §4.3), with name errors as key errors.
pub(super) fn sem_error(ctx: Ctx<'_>, e: i32) -> Error {
    let err = ctx.err(e);
    match e {
        libc::EINVAL => err
            .with_kind(ErrorKind::KeyError)
            .with_detail("invalid POSIX semaphore name"),
        libc::EAGAIN => err.with_kind(ErrorKind::WouldBlock),
        _ => err,
    }
}

impl PosixSemaphore {
    /// `n` posts, all or nothing: refused up front when the value would pass
    /// `SEM_VALUE_MAX` (`n` posts one by one would take seconds for a large `n`, and stop
    /// part-way). Should other processes' posts still push it over meanwhile, those made are
    /// taken back, as Qt does.
    #[cold]
    fn release_slow(&self, n: u32, op: Operation) -> Result<()> {
        let ctx = Ctx::shared(op, &self.key, &self.text);
        let mut value: c_int = 0;
        // SAFETY: `self.sem` is a live semaphore (map_sem_file); `value` is writable.
        super::super::cvt(unsafe { libc::sem_getvalue(self.sem.as_ptr(), &mut value) })
            .map_err(|e| ctx.err(e))?;
        if u64::from(n) + u64::from(value.max(0).unsigned_abs()) > u64::from(SEM_VALUE_MAX) {
            return Err(ctx.kind(
                ErrorKind::OutOfResources,
                format!(
                    "releasing {n} would take the value ({value}) past {SEM_VALUE_MAX} \
                     (SEM_VALUE_MAX): nothing released"
                ),
            ));
        }
        for done in 0..n {
            // SAFETY: `self.sem` is a live semaphore (map_sem_file).
            if let Err(e) = super::super::cvt(unsafe { libc::sem_post(self.sem.as_ptr()) }) {
                // Roll back the posts already made, as Qt does.
                for _ in 0..done {
                    // SAFETY: as above.
                    unsafe { libc::sem_trywait(self.sem.as_ptr()) };
                }
                let err = ctx.err(e);
                return Err(if e == libc::EOVERFLOW {
                    err.with_kind(ErrorKind::OutOfResources)
                } else {
                    err
                });
            }
        }
        Ok(())
    }
}

impl Drop for PosixSemaphore {
    fn drop(&mut self) {
        // SAFETY: `self.sem` is this handle's own mapping of one sem_t (map_sem_file),
        // unmapped exactly once, here; nothing borrows it past `self`. Nobody can be waiting
        // on it through this handle: waits borrow `self`. (The descriptor closes after.)
        let _ = unsafe { rustix::mm::munmap(self.sem.as_ptr().cast(), SEM_FILE_LEN) };
    }
}

impl crate::backend::sealed::Sealed for PosixSemaphore {}

impl RawSemaphore for PosixSemaphore {
    /// `sem_open(name, O_CREAT|O_EXCL, mode, initial)`, or `sem_open(name, 0)` when it
    /// exists (Qt's Open mode).
    #[doc(alias = "sem_open")]
    fn open(
        key: &NativeKey,
        initial: u32,
        how: SemOpen,
        mode: u32,
    ) -> Result<(PosixSemaphore, bool)> {
        let ctx = Ctx::new(Operation::SemaphoreOpen, key);
        let file = file_name(ctx, key.native_key(), "sem.")?;
        if initial > SEM_VALUE_MAX {
            return Err(ctx.kind(
                ErrorKind::OutOfResources,
                "initial value above SEM_VALUE_MAX",
            ));
        }
        let path = format!("{SHM_DIR}sem.{file}");
        let forks_before = crate::sys::fork::forks_started();
        let made = |(file, sem, ino): SemFile| PosixSemaphore {
            sem,
            file,
            key: key.clone(),
            text: key.to_string().into(),
            path: path.clone(),
            ino,
            opener: my_pid(),
            forks_before,
            token: std::sync::OnceLock::new(),
        };
        // Usually the semaphore exists: open it straight away, and create it only when the
        // first attempt finds nothing; a creator expecting to create it tries that first.
        let mut create = how == SemOpen::CreateOrOpen;
        for _ in 0..100 {
            if create {
                match create_sem_file(&path, initial, mode) {
                    Ok(Some(file)) => return Ok((made(file), true)),
                    Ok(None) => {}
                    Err(e) => return Err(sem_error(ctx, e)),
                }
            }
            let e = match map_sem_file(&path) {
                Ok(file) => {
                    let sem = made(file);
                    if how == SemOpen::CreateOrReset {
                        sem.reset(initial, ctx)?;
                    }
                    return Ok((sem, false));
                }
                Err(SemFileError::TooShort(len)) => {
                    return Err(ctx.kind(ErrorKind::Unknown, "").with_detail(format!(
                        "{path} is not a semaphore ({len} bytes, a sem_t has {SEM_T_LEN})"
                    )))
                }
                Err(SemFileError::Os(e)) => e,
            };
            if e != libc::ENOENT || how == SemOpen::Existing {
                return Err(sem_error(ctx, e));
            }
            // Not there (yet, or removed meanwhile): create it.
            create = true;
        }
        Err(ctx.kind(
            ErrorKind::Unknown,
            "the semaphore kept vanishing while being opened",
        ))
    }

    #[inline]
    fn acquire(&self, wait: Wait, undo: Undo, op: Operation) -> Result<bool> {
        match undo {
            Undo::Yes => self.acquire_tracked(wait, op),
            Undo::No => self.acquire_plain(wait, op).map(|()| false),
        }
    }

    #[inline]
    fn release(&self, n: u32, undo: Undo, op: Operation) -> Result<()> {
        if undo == Undo::Yes {
            // Clear the record if it is ours. Only this process writes its own identity and
            // only a holder writes a record, so a load and a store suffice: between them
            // nobody else can hold the lock (short of a process posting it without holding
            // it, which the in-process lock refuses to lend memory through anyway).
            let record = self.record();
            if Some(record.load(Ordering::Relaxed)) == self.token.get().copied() {
                record.store(0, Ordering::Release);
            }
            // SAFETY: `self.sem` is a live semaphore (map_sem_file).
            if n == 1 && unsafe { libc::sem_post(self.sem.as_ptr()) } == 0 {
                return Ok(());
            }
        }
        self.release_slow(n, op)
    }

    /// Whether the name still refers to the semaphore this handle has open (it may have
    /// been removed by the last detach, or replaced by a Qt creator, meanwhile).
    fn still_named(&self) -> bool {
        file_inode(&self.path) == Some(self.ino)
    }

    fn waiters(&self) -> usize {
        self.nwaiters()
    }

    /// Another process has the semaphore open: glibc (and qshm) map the semaphore file into
    /// every process that opens it, waiters included. (glibc's waiter count is no guide: a waiter
    /// killed in `sem_wait` never takes itself off it.) A semaphore removed while open is
    /// not noticed by its holder, unlike System V's `EIDRM`, so this is checked before
    /// removing; threads of this process notice it in `still_named`.
    fn in_use_elsewhere(&self) -> bool {
        used_by_another_process(&self.file, self.opener, self.forks_before)
    }

    fn mark_consistent(&self) {
        self.state().fetch_and(!1, Ordering::AcqRel);
    }

    fn owner(&self) -> Option<(u32, u32)> {
        let st = rustix::fs::fstat(&self.file).ok()?;
        Some((st.st_uid, st.st_mode & 0o777))
    }

    fn remove_while_held(&self) -> Result<()> {
        super::super::remove_then_release(self)
    }

    /// `sem_unlink`, which is `unlink` of the semaphore file.
    fn remove(&self) -> Result<()> {
        match rustix::fs::unlink(&self.path) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(crate::sys::os_error(
                e.raw_os_error(),
                Operation::Remove,
                self.key.to_string(),
            )),
        }
    }
}
