//! The portable-Unix fallbacks' bookkeeping: which fallback path ran, and how often.
//!
//! With `--cfg qshm_portable` (set through `RUSTFLAGS` by `ci/test.sh`; no feature users
//! see), the Linux build leaves out the Linux-only calls that macOS and FreeBSD lack and takes
//! the paths those builds take instead. Each such path counts itself here, so a test can
//! check that the mode really ran it ([`crate::portable::fallback_counts`]); the Linux-only
//! calls themselves are not compiled in this mode, so it cannot use them silently.
//!
//! | fallback | instead of |
//! |---|---|
//! | `wait_word_poll` | the shared futex of `wait_word` (notification, queues, cells) |
//! | `mapped_lock_poll` | the futex the `mapped` lock sleeps on |
//! | `sysv_timed_poll` | `semtimedop` (System V timed waits: `semop(IPC_NOWAIT)` polled) |
//! | `posix_timed_poll` | `sem_timedwait`/`sem_clockwait` (POSIX timed waits: `sem_trywait` polled) |
//! | `named_create` | `O_TMPFILE` (a POSIX segment is `shm_open(O_CREAT\|O_EXCL)`ed then sized once; a semaphore file is written under a temporary name and linked into place, as the C library's `sem_open` does) |
//! | `mapped_record_locks` | the open-file-description locks, `flock` and `/proc` of `qshm::mapped` on Linux: classic record locks on the segment file, one descriptor per file and process (`sys/unix/record_lock.rs`), for its users and its lock's liveness |
//! | `posix_portable` | Linux's POSIX backend (`/dev/shm` files, `flock`, leases, `/proc`, open-file-description locks): the portable POSIX backend (`sys/unix/posix_portable`), whose companion files and record locks macOS, iOS and FreeBSD have |

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A fallback path of the portable mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // each is taken on some targets or in portable mode only
pub(crate) enum Fallback {
    WaitWord,
    MappedLock,
    SysvTimed,
    PosixTimed,
    NamedCreate,
    PosixPortable,
    MappedRecordLocks,
}

/// Every fallback, in the order of [`NAMES`].
#[allow(dead_code)] // read in portable mode only
const ALL: [Fallback; 7] = [
    Fallback::WaitWord,
    Fallback::MappedLock,
    Fallback::SysvTimed,
    Fallback::PosixTimed,
    Fallback::NamedCreate,
    Fallback::PosixPortable,
    Fallback::MappedRecordLocks,
];

/// Their names, as [`crate::portable::fallback_counts`] reports them.
#[allow(dead_code)] // read in portable mode only
const NAMES: [&str; 7] = [
    "wait_word_poll",
    "mapped_lock_poll",
    "sysv_timed_poll",
    "posix_timed_poll",
    "named_create",
    "posix_portable",
    "mapped_record_locks",
];

static COUNTS: [AtomicU64; 7] = [
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
    AtomicU64::new(0),
];

/// Counts one use of `fallback` (a relaxed increment: cheap beside the sleep it precedes).
#[inline]
#[allow(dead_code)] // each caller exists on some targets only
pub(crate) fn hit(fallback: Fallback) {
    let first = COUNTS[fallback as usize].fetch_add(1, Ordering::Relaxed) == 0;
    #[cfg(qshm_portable)]
    if first {
        record(fallback);
    }
    #[cfg(not(qshm_portable))]
    let _ = first;
}

/// In portable mode, with `QSHM_PORTABLE_RECORD` naming a directory (`ci/portable.sh`): the
/// first use of a fallback in a process leaves an empty file `<name>.<pid>` there, so that a
/// whole test run's processes can be counted afterwards.
#[cfg(qshm_portable)]
fn record(fallback: Fallback) {
    if let Some(dir) = std::env::var_os("QSHM_PORTABLE_RECORD") {
        let file = format!("{}.{}", NAMES[fallback as usize], std::process::id());
        let _ = std::fs::write(std::path::Path::new(&dir).join(file), b"");
    }
}

/// Each fallback's name and how often this process took it.
#[allow(dead_code)] // read in portable mode only
pub(crate) fn counts() -> Vec<(&'static str, u64)> {
    ALL.iter()
        .map(|&f| {
            (
                NAMES[f as usize],
                COUNTS[f as usize].load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// The pause between two polls of a timed wait: first [`Backoff::YIELDING`] of yielding the
/// processor (a holder about to release on another core is seen at once: a sleep, however
/// short, lasts the timer slack, 50 µs on Linux, or more), then sleeps from 20 µs, doubling,
/// up to 2 ms, never past the deadline.
#[derive(Debug)]
#[allow(dead_code)] // used where a timed wait polls
pub(crate) struct Backoff {
    pause: Duration,
    /// Until when the next polls yield instead of sleeping; set by the first.
    yield_until: Option<Instant>,
}

#[allow(dead_code)] // used where a timed wait polls
impl Backoff {
    /// How long a wait yields before its first sleep.
    const YIELDING: Duration = Duration::from_micros(50);
    const FIRST: Duration = Duration::from_micros(20);
    const MOST: Duration = Duration::from_millis(2);

    pub(crate) fn new() -> Backoff {
        Backoff {
            pause: Self::FIRST,
            yield_until: None,
        }
    }

    /// Yields or sleeps the next pause, cut at `deadline`; false when the deadline has passed
    /// (no pause then).
    pub(crate) fn sleep_until(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return false;
        }
        if now < *self.yield_until.get_or_insert(now + Self::YIELDING) {
            std::thread::yield_now();
            return true;
        }
        std::thread::sleep(self.pause.min(left));
        self.pause = (self.pause * 2).min(Self::MOST);
        true
    }
}

/// A Linux-only mechanism, counted where it is used so that the portable mode can show
/// which of its paths stay clear of them (`tests/portable.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(dead_code)] // each is used on Linux only
pub(crate) enum LinuxOnly {
    /// Reading `/proc` (task status, maps, `/proc/self/fd`, mount info).
    Proc,
    /// A file lease (`F_SETLEASE`).
    Lease,
    /// An open-file-description lock (`F_OFD_SETLK`, `F_OFD_GETLK`).
    OfdLock,
}

const LINUX_ONLY_NAMES: [&str; 3] = ["proc", "lease", "ofd_lock"];

static LINUX_ONLY: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Counts one use of a Linux-only mechanism (a relaxed increment, beside a system call).
#[inline]
#[allow(dead_code)] // called on Linux only
pub(crate) fn linux_only(what: LinuxOnly) {
    LINUX_ONLY[what as usize].fetch_add(1, Ordering::Relaxed);
}

/// Each Linux-only mechanism and how often this process used it.
#[allow(dead_code)] // read in portable mode only
pub(crate) fn linux_only_uses() -> Vec<(&'static str, u64)> {
    LINUX_ONLY_NAMES
        .iter()
        .zip(&LINUX_ONLY)
        .map(|(&name, n)| (name, n.load(Ordering::Relaxed)))
        .collect()
}
