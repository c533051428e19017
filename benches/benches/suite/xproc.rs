//! Cross-process benchmarks: two processes sharing one segment.
//!
//! * `handoff`: two processes take turns through a lock; one iteration is one round trip.
//! * `contended`: two processes increment one counter under the lock; one iteration is two
//!   increments (one per process).
//! * `bulk`: one process writes 1 GiB through a 64 MiB segment, another reads it; one
//!   iteration is 1 GiB moved.
//! * `first_read`: a fresh process attaches to a 1 GiB segment somebody wrote and reads it
//!   once; one iteration is attach + read of 1 GiB (and, as `<id>_read`, the read alone).
//!
//! The second process is this executable re-run with `QSHM_BENCH_CHILD=<group>/<id>`
//! ([`child`]). Parent and child talk over the child's stdin/stdout, one line per message
//! (`ready`, `go N`, `done …`); nobody sleeps to synchronise. Everything a benchmark creates
//! (segments, key files, locks, children) is released by RAII guards, in an order that lets
//! the parent's last detach remove the segment, also when a benchmark panics.
//!
//! # The locks compared (`handoff` and `contended`)
//!
//! | id | lock | memory |
//! |---|---|---|
//! | `futex_spin_lock` | the baseline: Drepper's futex mutex ("mutex 3") with a bounded spin, not robust | memfd |
//! | `qshm_mapped` | [`MappedSegment::lock`]: qshm's in-segment robust lock | memfd |
//! | `qshm_posix` | [`SharedMemory::lock`] on a POSIX key (Qt's glibc semaphore + owner record) | `shm_open` |
//! | `qshm_sysv` | [`SharedMemory::lock`] on a Qt key: Qt's System V semaphore (`SEM_UNDO`) | System V |
//! | `pthread_robust` | glibc's `pthread_mutex_t`, process-shared and robust | memfd |
//! | `raw_sync` | the `raw_sync` crate's `Mutex` (a process-shared pthread mutex) | `shared_memory` crate (`shm_open`) |
//!
//! The memfd baselines (`futex_spin_lock`, `pthread_robust`, and the `futex_pingpong` floor)
//! borrow qshm's [`MappedSegment::memfd`] and [`MappedSegment::pass_to_child`] only to get a
//! `MAP_SHARED` memfd mapping into both processes: they use the raw data area
//! ([`MappedSegment::as_mut_ptr`]) and never touch qshm's header or lock.
#![warn(clippy::undocumented_unsafe_blocks)]

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, SamplingMode, Throughput};
use qshm::mapped::{MappedSegment, ReceiveOptions};
use qshm::{AccessMode, KeyType, NativeKey, SharedMemory};
use raw_sync::locks::{LockImpl, LockInit};
use rustix::thread::futex;

use crate::common::{self, ChildProc};

/// The environment variable that gives a child the name of a named segment.
const KEY_ENV: &str = "QSHM_BENCH_KEY";

/// How often a poller (one that yields between polls) checks that its peer is still alive.
const POLLS_PER_LIVENESS_CHECK: u32 = 4096;

/// How many times the futex lock of `futex_spin_lock` spins before it sleeps (a `pause`
/// costs ~25 ns on the benchmark machine: ~2.5 µs).
const SPINS: u32 = 100;

/// How many times a side of `futex_pingpong` spins before it sleeps: ~25 µs here, longer than
/// a wake-up. With 100 spins (2.5 µs) the ping-pong settles into a regime where every
/// hand-off wakes a sleeper: once one side has fallen asleep, the other stops spinning before
/// the wake-up it sent completes, falls asleep in turn, and so on (measured: 8.5 µs per round
/// trip instead of ~0.27 µs). The lock benchmarks poll with yields and never sleep between
/// turns, so their floor must not either.
const PINGPONG_SPINS: u32 = 1000;

/// The ids of `handoff` and `contended` that go through a lock ([`Peer`]), in report order.
const LOCK_IDS: [&str; 6] = [
    "futex_spin_lock",
    "qshm_mapped",
    "qshm_posix",
    "qshm_sysv",
    "pthread_robust",
    "raw_sync",
];

/// Calls `$f::<P>(args…)` with the [`Peer`] type `P` that the benchmark id `$id` names.
macro_rules! with_peer {
    ($id:expr, $f:ident $(, $arg:expr)*) => {
        match $id {
            "futex_spin_lock" => $f::<FutexSpin>($($arg),*),
            "qshm_mapped" => $f::<QshmMapped>($($arg),*),
            "qshm_posix" => $f::<QshmPosix>($($arg),*),
            "qshm_sysv" => $f::<QshmSysv>($($arg),*),
            "pthread_robust" => $f::<PthreadRobust>($($arg),*),
            "raw_sync" => $f::<RawSync>($($arg),*),
            other => panic!("xproc: no lock kind {other:?}"),
        }
    };
}

/// Registers the groups `handoff`, `contended`, `bulk` and `first_read`.
pub fn benches(c: &mut Criterion) {
    handoff(c);
    contended(c);
    bulk(c);
    first_read(c);
}

/// The second process of every benchmark of this module: `role` is `<group>/<id>`.
pub fn child(role: &str) {
    let (group, id) = role
        .split_once('/')
        .unwrap_or_else(|| panic!("xproc: malformed child role {role:?}"));
    match group {
        "handoff" if id == "futex_pingpong" => pingpong_child(),
        "handoff" => with_peer!(id, handoff_child),
        "contended" => with_peer!(id, contended_child),
        "bulk" => with_peer!(id, bulk_child),
        "first_read" => first_read_child(id),
        _ => panic!("xproc: unknown child role {role:?}"),
    }
}

// ---- the shared area and its locks ------------------------------------------------------

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_ne_bytes(word)
}

fn write_u64(bytes: &mut [u8], at: usize, value: u64) {
    bytes[at..at + 8].copy_from_slice(&value.to_ne_bytes());
}

/// A lock and the bytes it protects, shared by the parent and one child.
trait Peer: Sized {
    /// In the parent: creates the shared area, at least `size` zeroed bytes, and its lock.
    fn create(size: usize) -> Self;
    /// Lets the child that `cmd` starts find it ([`Peer::open`]).
    fn pass(&self, cmd: &mut Command);
    /// In the child: opens what the parent passed.
    fn open() -> Self;
    /// Runs `f` on the shared bytes while holding the lock.
    fn with_locked<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R;
}

/// `qshm_mapped`: a sealed memfd with qshm's in-segment lock, inherited by the child.
struct QshmMapped(MappedSegment);

impl Peer for QshmMapped {
    fn create(size: usize) -> Self {
        QshmMapped(MappedSegment::memfd("qshm-bench-mapped", size).expect("create a memfd segment"))
    }

    fn pass(&self, cmd: &mut Command) {
        self.0
            .pass_to_child(cmd)
            .expect("pass the memfd to the child");
    }

    fn open() -> Self {
        QshmMapped(
            MappedSegment::from_env(&ReceiveOptions::new()).expect("adopt the inherited memfd"),
        )
    }

    #[inline]
    fn with_locked<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let mut guard = self.0.lock().expect("lock the memfd segment");
        f(guard.as_mut_slice().expect("the segment is read-write"))
    }
}

/// `qshm_posix` (`POSIX = true`: a POSIX realtime key) and `qshm_sysv` (`POSIX = false`: a Qt
/// key, System V, Qt's protocol): [`SharedMemory`] created by the parent and attached by the
/// child. The parent's detach is the last one, which removes the segment, its key file and
/// its lock.
struct Qshm<const POSIX: bool> {
    shm: SharedMemory,
    name: String,
}

type QshmPosix = Qshm<true>;
type QshmSysv = Qshm<false>;

impl<const POSIX: bool> Qshm<POSIX> {
    fn with_name(name: String) -> Self {
        Qshm {
            shm: named_shared_memory(POSIX, &name),
            name,
        }
    }
}

/// The [`SharedMemory`] of `name`: a POSIX realtime key, or a Qt (System V) key.
fn named_shared_memory(posix: bool, name: &str) -> SharedMemory {
    if posix {
        SharedMemory::with_native_key(NativeKey::platform_safe(name, KeyType::PosixRealtime))
    } else {
        SharedMemory::with_key(name)
    }
}

impl<const POSIX: bool> Peer for Qshm<POSIX> {
    fn create(size: usize) -> Self {
        let mut this = Self::with_name(common::unique(if POSIX { "posix" } else { "sysv" }));
        this.shm
            .create(size, AccessMode::ReadWrite)
            .expect("create the SharedMemory segment");
        this
    }

    fn pass(&self, cmd: &mut Command) {
        cmd.env(KEY_ENV, &self.name);
    }

    fn open() -> Self {
        let mut this = Self::with_name(std::env::var(KEY_ENV).expect("the segment's key"));
        this.shm
            .attach(AccessMode::ReadWrite)
            .expect("attach to the SharedMemory segment");
        this
    }

    #[inline]
    fn with_locked<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let mut guard = self.shm.lock().expect("lock the SharedMemory segment");
        f(guard.as_mut_slice().expect("the segment is read-write"))
    }
}

/// Where the memfd baselines keep their lock: the first 64 bytes of the data area (a cache
/// line of its own); the protected bytes follow.
const LOCK_AREA: usize = 64;

/// The protected bytes of a memfd baseline: its data area past [`LOCK_AREA`]. Reading or
/// writing them is sound only while holding the baseline's lock, and while `seg` lives.
fn area_after_lock(seg: &MappedSegment) -> *mut [u8] {
    // `wrapping_add` keeps this safe; the data area is always larger than LOCK_AREA.
    std::ptr::slice_from_raw_parts_mut(
        seg.as_mut_ptr().wrapping_add(LOCK_AREA),
        seg.size() - LOCK_AREA,
    )
}

/// `futex_spin_lock`, the baseline: a plain (non-robust) futex mutex over an `AtomicU32`,
/// Drepper's "mutex 3" ("Futexes Are Tricky"): 0 free, 1 held, 2 held with possible waiters.
/// It spins [`SPINS`] times before it sleeps; unlock wakes one sleeper only when the word
/// says there may be one. The futex calls are shared (no `FUTEX_PRIVATE_FLAG`): the waiters
/// are in another process.
struct FutexSpin(MappedSegment);

impl FutexSpin {
    fn word(&self) -> &AtomicU32 {
        // SAFETY: the data area is page-aligned, so suitably aligned for an `AtomicU32`, and
        // mapped as long as `self.0` lives; its first 4 bytes are only ever accessed
        // atomically, by both processes.
        unsafe { &*self.0.as_mut_ptr().cast::<AtomicU32>() }
    }

    #[inline]
    fn lock(&self) {
        let word = self.word();
        if word
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if word.load(Ordering::Relaxed) == 0
                && word
                    .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        // Mark the lock contended, and sleep while someone else holds it.
        while word.swap(2, Ordering::Acquire) != 0 {
            // EAGAIN (the word changed) and EINTR both mean: look again.
            let _ = futex::wait(word, futex::Flags::empty(), 2, None);
        }
    }

    #[inline]
    fn unlock(&self) {
        let word = self.word();
        if word.swap(0, Ordering::Release) == 2 {
            let _ = futex::wake(word, futex::Flags::empty(), 1);
        }
    }
}

/// Unlocks a [`FutexSpin`] when dropped (also when the closure under the lock panics).
struct FutexSpinGuard<'a>(&'a FutexSpin);

impl Drop for FutexSpinGuard<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

impl Peer for FutexSpin {
    fn create(size: usize) -> Self {
        // A fresh memfd is zeroed: the lock word starts free.
        FutexSpin(
            MappedSegment::memfd("qshm-bench-futex", LOCK_AREA + size).expect("create a memfd"),
        )
    }

    fn pass(&self, cmd: &mut Command) {
        self.0
            .pass_to_child(cmd)
            .expect("pass the memfd to the child");
    }

    fn open() -> Self {
        FutexSpin(MappedSegment::from_env(&ReceiveOptions::new()).expect("adopt the memfd"))
    }

    #[inline]
    fn with_locked<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        self.lock();
        let _unlock = FutexSpinGuard(self);
        // SAFETY: the area is mapped and writable as long as `self.0` lives; every process
        // touches it only while holding the lock, which is held until `_unlock` drops, after
        // `f` returned; the slice does not escape `f`.
        f(unsafe { &mut *area_after_lock(&self.0) })
    }
}

/// `pthread_robust`: glibc's `pthread_mutex_t` with `PTHREAD_PROCESS_SHARED` and
/// `PTHREAD_MUTEX_ROBUST`, initialised by the parent at the start of a memfd's data area. A
/// holder's death is reported as `EOWNERDEAD` and repaired with `pthread_mutex_consistent`.
struct PthreadRobust {
    seg: MappedSegment,
    /// Whether this process initialised the mutex (and destroys it when dropped).
    creator: bool,
}

impl PthreadRobust {
    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.seg.as_mut_ptr().cast()
    }
}

/// Unlocks a [`PthreadRobust`] when dropped.
struct PthreadGuard<'a>(&'a PthreadRobust);

impl Drop for PthreadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the mutex is initialised and held by this thread (the guard exists only
        // after a successful lock).
        let rc = unsafe { libc::pthread_mutex_unlock(self.0.mutex()) };
        debug_assert_eq!(rc, 0, "pthread_mutex_unlock");
    }
}

impl Peer for PthreadRobust {
    fn create(size: usize) -> Self {
        const _: () = assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= LOCK_AREA);
        let seg =
            MappedSegment::memfd("qshm-bench-pthread", LOCK_AREA + size).expect("create a memfd");
        let this = PthreadRobust { seg, creator: true };
        // SAFETY: the data area is page-aligned and at least LOCK_AREA bytes, enough for a
        // `pthread_mutex_t`; no other process maps it yet.
        unsafe { crate::common::init_robust_pshared_mutex(this.mutex()) };
        this
    }

    fn pass(&self, cmd: &mut Command) {
        self.seg
            .pass_to_child(cmd)
            .expect("pass the memfd to the child");
    }

    fn open() -> Self {
        PthreadRobust {
            seg: MappedSegment::from_env(&ReceiveOptions::new()).expect("adopt the memfd"),
            creator: false,
        }
    }

    #[inline]
    fn with_locked<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        // SAFETY: the creator initialised the mutex before the child was started; it stays
        // mapped as long as `self.seg`.
        match unsafe { libc::pthread_mutex_lock(self.mutex()) } {
            0 => {}
            libc::EOWNERDEAD => {
                // SAFETY: this thread holds the mutex (EOWNERDEAD means it got it).
                let rc = unsafe { libc::pthread_mutex_consistent(self.mutex()) };
                assert_eq!(rc, 0, "pthread_mutex_consistent");
            }
            rc => panic!("pthread_mutex_lock failed: {rc}"),
        }
        let _unlock = PthreadGuard(self);
        // SAFETY: the area is mapped and writable as long as `self.seg` lives; every process
        // touches it only while holding the mutex, which is held until `_unlock` drops,
        // after `f` returned; the slice does not escape `f`.
        f(unsafe { &mut *area_after_lock(&self.seg) })
    }
}

impl Drop for PthreadRobust {
    fn drop(&mut self) {
        if self.creator {
            // SAFETY: the child has exited (sessions reap it before dropping the peer), so
            // nobody holds or waits for the mutex.
            unsafe { libc::pthread_mutex_destroy(self.mutex()) };
        }
    }
}

/// `raw_sync`: the Rust peers, the `shared_memory` crate's `shm_open` segment with a
/// `raw_sync::locks::Mutex` at its start and the protected bytes after [`LOCK_AREA`]. The
/// parent's `Shmem` owns the object and `shm_unlink`s it when dropped.
struct RawSync {
    // Dropped before the mapping it points into.
    mutex: Box<dyn LockImpl>,
    shmem: shared_memory::Shmem,
}

impl RawSync {
    fn data_len(&self) -> usize {
        self.shmem.len() - LOCK_AREA
    }
}

impl Peer for RawSync {
    fn create(size: usize) -> Self {
        let name = format!("/{}", common::unique("rawsync"));
        let shmem = shared_memory::ShmemConf::new()
            .size((LOCK_AREA + size).max(4096))
            .os_id(&name)
            .create()
            .expect("create the shared_memory segment");
        let base = shmem.as_ptr();
        // SAFETY: the mapping is at least 4096 bytes and lives as long as `shmem`, which
        // outlives the mutex (field order); nobody else maps it yet.
        let (mutex, used) = unsafe { raw_sync::locks::Mutex::new(base, base.add(LOCK_AREA)) }
            .expect("create the raw_sync mutex");
        assert!(used <= LOCK_AREA, "the raw_sync mutex takes {used} bytes");
        RawSync { mutex, shmem }
    }

    fn pass(&self, cmd: &mut Command) {
        cmd.env(KEY_ENV, self.shmem.get_os_id());
    }

    fn open() -> Self {
        let name = std::env::var(KEY_ENV).expect("the segment's name");
        let shmem = shared_memory::ShmemConf::new()
            .os_id(&name)
            .open()
            .expect("open the shared_memory segment");
        let base = shmem.as_ptr();
        // SAFETY: the creator initialised the mutex at `base` before starting this process;
        // the mapping lives as long as `shmem`, which outlives the mutex.
        let (mutex, _) =
            unsafe { raw_sync::locks::Mutex::from_existing(base, base.add(LOCK_AREA)) }
                .expect("open the raw_sync mutex");
        RawSync { mutex, shmem }
    }

    #[inline]
    fn with_locked<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let guard = self.mutex.lock().expect("lock the raw_sync mutex");
        let len = self.data_len();
        // SAFETY: the guard's pointer is the data area, `len` bytes inside the mapping; the
        // mutex is held until `guard` drops, after `f` returned, and the slice does not
        // escape `f`.
        f(unsafe { std::slice::from_raw_parts_mut(*guard, len) })
    }
}

// ---- parent and child plumbing ----------------------------------------------------------

/// Panics if `child` has exited (a poller waiting for a dead peer would spin forever).
pub(crate) fn check_alive(child: &mut ChildProc) {
    if let Ok(Some(status)) = child.0.try_wait() {
        panic!("the benchmark child exited unexpectedly ({status})");
    }
}

/// Repeats `attempt` (which typically takes a lock, looks, and releases it), yielding the CPU
/// between attempts, until it returns a value. The parent passes its child, whose liveness
/// is checked every [`POLLS_PER_LIVENESS_CHECK`] failed attempts.
#[inline]
fn poll<T>(mut child: Option<&mut ChildProc>, mut attempt: impl FnMut() -> Option<T>) -> T {
    let mut until_check = POLLS_PER_LIVENESS_CHECK;
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        // Let the other side in: an unfair lock would otherwise be re-taken at once by the
        // poller whose turn it is not.
        std::thread::yield_now();
        until_check -= 1;
        if until_check == 0 {
            until_check = POLLS_PER_LIVENESS_CHECK;
            if let Some(child) = child.as_deref_mut() {
                check_alive(child);
            }
        }
    }
}

/// The parent's end of a benchmark: the shared area, the child and the pipes to it.
///
/// Dropping it stops the child gracefully (the `stop` word, then end-of-file on its stdin),
/// reaps it, and only then releases the shared area, so that the parent's detach is the
/// last one and removes the segment.
struct Session<P: Peer> {
    // Fields drop in this order: the child (killed if still running) before the segment.
    child: ChildProc,
    to_child: Option<ChildStdin>,
    from_child: BufReader<ChildStdout>,
    peer: P,
    /// The word (offset, value) written under the lock to make the child stop polling.
    stop: Option<(usize, u64)>,
}

impl<P: Peer> Session<P> {
    /// Creates the shared area of `size` bytes, starts the child `role`, and waits until it
    /// has opened the area.
    fn start(role: &str, size: usize, stop: Option<(usize, u64)>) -> Self {
        let peer = P::create(size);
        let mut child = ChildProc::spawn(role, |cmd| peer.pass(cmd));
        let to_child = child.0.stdin.take().expect("the child's stdin is piped");
        let from_child = BufReader::new(child.0.stdout.take().expect("stdout is piped"));
        let mut session = Session {
            child,
            to_child: Some(to_child),
            from_child,
            peer,
            stop,
        };
        session.expect_line("ready");
        session
    }
}

impl<P: Peer> Session<P> {
    fn send(&mut self, line: &str) {
        let to_child = self.to_child.as_mut().expect("the child's stdin is open");
        to_child
            .write_all(line.as_bytes())
            .and_then(|()| to_child.flush())
            .expect("write to the benchmark child");
    }

    fn recv(&mut self) -> String {
        recv_line(&mut self.from_child, &mut self.child)
    }

    fn expect_line(&mut self, expected: &str) {
        let line = self.recv();
        assert_eq!(
            line, expected,
            "unexpected message from the benchmark child"
        );
    }
}

impl<P: Peer> Drop for Session<P> {
    fn drop(&mut self) {
        if let Some((at, value)) = self.stop {
            self.peer.with_locked(|bytes| write_u64(bytes, at, value));
        }
        drop(self.to_child.take()); // end of file: a child waiting for "go" exits
        let status = self.child.0.wait().expect("wait for the benchmark child");
        if !status.success() && !std::thread::panicking() {
            panic!("the benchmark child failed ({status})");
        }
    }
}

/// Reads one line from a child, panicking if it exited instead.
pub(crate) fn recv_line(from_child: &mut BufReader<ChildStdout>, child: &mut ChildProc) -> String {
    let mut line = String::new();
    let n = from_child
        .read_line(&mut line)
        .expect("read from the benchmark child");
    if n == 0 {
        panic!(
            "the benchmark child closed its stdout (exit status: {:?})",
            child.0.try_wait()
        );
    }
    line.truncate(line.trim_end().len());
    line
}

/// The child's end of the pipes.
pub(crate) struct ToParent {
    input: std::io::StdinLock<'static>,
    output: std::io::Stdout,
}

impl ToParent {
    pub(crate) fn new() -> Self {
        ToParent {
            input: std::io::stdin().lock(),
            output: std::io::stdout(),
        }
    }

    pub(crate) fn send(&mut self, line: &str) {
        writeln!(self.output, "{line}")
            .and_then(|()| self.output.flush())
            .expect("write to the parent");
    }

    /// The next `go N` command's N, or `None` at end of file (the parent is done).
    fn next_go(&mut self) -> Option<u64> {
        let mut line = String::new();
        if self
            .input
            .read_line(&mut line)
            .expect("read from the parent")
            == 0
        {
            return None;
        }
        let n = line
            .trim_end()
            .strip_prefix("go ")
            .and_then(|n| n.parse().ok());
        Some(n.unwrap_or_else(|| panic!("xproc child: expected `go N`, got {line:?}")))
    }
}

/// A new group with the settings of the latency groups (`handoff`, `contended`).
fn latency_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    group
}

// ---- handoff ----------------------------------------------------------------------------
//
// The shared area holds `turn` (u64 at 0) and `stop` (u64 at 8). The parent moves `turn`
// from even to odd, the child from odd to even; each polls by taking the lock, looking,
// and releasing it (yielding between polls). One iteration is one parent turn, which
// includes waiting for the child's: one round trip, two hand-offs.

const TURN: usize = 0;
const STOP: usize = 8;

/// Takes one turn: waits until `turn % 2 == parity`, then increments `turn`. Returns false
/// when told to stop.
#[inline]
fn take_turn<P: Peer>(peer: &P, parity: u64, child: Option<&mut ChildProc>) -> bool {
    poll(child, || {
        peer.with_locked(|bytes| {
            if read_u64(bytes, STOP) != 0 {
                return Some(false);
            }
            let turn = read_u64(bytes, TURN);
            if turn % 2 == parity {
                write_u64(bytes, TURN, turn + 1);
                Some(true)
            } else {
                None
            }
        })
    })
}

fn handoff(c: &mut Criterion) {
    let mut group = latency_group(c, "handoff");
    for id in LOCK_IDS {
        with_peer!(id, handoff_bench, &mut group, id);
    }
    pingpong_bench(&mut group);
    group.finish();
}

fn handoff_bench<P: Peer>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    // Criterion calls the closure once per sample: start the child at the first call only
    // (and not at all when the benchmark is filtered out).
    let mut session: Option<Session<P>> = None;
    group.bench_function(id, |b| {
        let s = session
            .get_or_insert_with(|| Session::start(&format!("handoff/{id}"), 64, Some((STOP, 1))));
        b.iter(|| take_turn(&s.peer, 0, Some(&mut s.child)));
    });
}

fn handoff_child<P: Peer>() {
    let peer = P::open();
    ToParent::new().send("ready");
    while take_turn(&peer, 1, None) {}
}

// ---- futex_pingpong: the floor of a hand-off --------------------------------------------
//
// No lock: the two processes alternate on a futex word directly. Each waits until the word
// has its parity (spinning PINGPONG_SPINS times, then FUTEX_WAIT), increments it and
// FUTEX_WAKEs one waiter. One iteration is one round trip.

/// The ping-pong's words in a memfd's data area: `turn` at 0, `stop` at 4.
struct PingPong(MappedSegment);

impl PingPong {
    fn words(&self) -> (&AtomicU32, &AtomicU32) {
        let base = self.0.as_mut_ptr().cast::<AtomicU32>();
        // SAFETY: the data area is page-aligned and at least 8 bytes, mapped as long as
        // `self.0` lives; both words are only ever accessed atomically, by both processes.
        unsafe { (&*base, &*base.add(1)) }
    }

    /// Takes one turn (see above). The parent sleeps with a timeout, to check that the child
    /// is still alive; the child sleeps without one.
    #[inline]
    fn take_turn(&self, parity: u32, mut child: Option<&mut ChildProc>) -> bool {
        const TIMEOUT: futex::Timespec = futex::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        let (turn, stop) = self.words();
        loop {
            let mut seen = turn.load(Ordering::Acquire);
            let mut spins = 0;
            while seen % 2 != parity && spins < PINGPONG_SPINS {
                std::hint::spin_loop();
                seen = turn.load(Ordering::Acquire);
                spins += 1;
            }
            // After loading `turn`: a stop request is published before `turn` changes.
            if stop.load(Ordering::Acquire) != 0 {
                return false;
            }
            if seen % 2 == parity {
                turn.fetch_add(1, Ordering::AcqRel);
                let _ = futex::wake(turn, futex::Flags::empty(), 1);
                return true;
            }
            let timeout = child.as_ref().map(|_| &TIMEOUT);
            // EAGAIN (`turn` moved meanwhile), EINTR and ETIMEDOUT all mean: look again.
            if let Err(rustix::io::Errno::TIMEDOUT) =
                futex::wait(turn, futex::Flags::empty(), seen, timeout)
            {
                if let Some(child) = child.as_deref_mut() {
                    check_alive(child);
                }
            }
        }
    }

    /// Tells the other side to stop: `stop`, then a change of `turn` (keeping its parity),
    /// so that a sleeper wakes, or does not fall asleep, and sees `stop`.
    fn stop(&self) {
        let (turn, stop) = self.words();
        stop.store(1, Ordering::Release);
        turn.fetch_add(2, Ordering::AcqRel);
        let _ = futex::wake(turn, futex::Flags::empty(), i32::MAX as u32);
    }
}

/// Stops and reaps the ping-pong child when dropped, before the memfd goes.
struct PingPongSession {
    child: ChildProc,
    pingpong: PingPong,
}

impl Drop for PingPongSession {
    fn drop(&mut self) {
        self.pingpong.stop();
        let status = self.child.0.wait().expect("wait for the benchmark child");
        if !status.success() && !std::thread::panicking() {
            panic!("the ping-pong child failed ({status})");
        }
    }
}

pub(crate) fn pingpong_bench(group: &mut BenchmarkGroup<'_, WallTime>) {
    let mut session: Option<PingPongSession> = None;
    group.bench_function("futex_pingpong", |b| {
        let s = session.get_or_insert_with(|| {
            let pingpong =
                PingPong(MappedSegment::memfd("qshm-bench-pingpong", 64).expect("create a memfd"));
            let mut child = ChildProc::spawn("handoff/futex_pingpong", |cmd| {
                pingpong
                    .0
                    .pass_to_child(cmd)
                    .expect("pass the memfd to the child");
            });
            let mut from_child = BufReader::new(child.0.stdout.take().expect("stdout is piped"));
            assert_eq!(recv_line(&mut from_child, &mut child), "ready");
            PingPongSession { child, pingpong }
        });
        b.iter(|| s.pingpong.take_turn(0, Some(&mut s.child)));
    });
}

fn pingpong_child() {
    let pingpong =
        PingPong(MappedSegment::from_env(&ReceiveOptions::new()).expect("adopt the memfd"));
    ToParent::new().send("ready");
    while pingpong.take_turn(1, None) {}
}

// ---- contended --------------------------------------------------------------------------
//
// The shared area holds a counter (u64 at 0). Per sample of `iters` iterations, the parent
// sends "go iters" to its child and both increment the counter `iters` times under the lock,
// at the same time; the sample's time runs from just before "go" to the child's "done". One
// iteration is thus two increments, one per process. After each sample the counter must
// have grown by exactly 2 * iters.

const COUNTER: usize = 0;

#[inline]
fn increment<P: Peer>(peer: &P) {
    peer.with_locked(|bytes| write_u64(bytes, COUNTER, read_u64(bytes, COUNTER) + 1));
}

fn contended(c: &mut Criterion) {
    let mut group = latency_group(c, "contended");
    for id in LOCK_IDS {
        with_peer!(id, contended_bench, &mut group, id);
    }
    group.finish();
}

fn contended_bench<P: Peer>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let mut state: Option<(Session<P>, u64)> = None;
    group.bench_function(id, |b| {
        let (s, expected) =
            state.get_or_insert_with(|| (Session::start(&format!("contended/{id}"), 64, None), 0));
        b.iter_custom(|iters| {
            let go = format!("go {iters}\n");
            let start = Instant::now();
            s.send(&go);
            for _ in 0..iters {
                increment(&s.peer);
            }
            s.expect_line("done");
            let elapsed = start.elapsed();
            *expected += 2 * iters;
            let counter = s.peer.with_locked(|bytes| read_u64(bytes, COUNTER));
            assert_eq!(
                counter, *expected,
                "contended/{id}: increments were lost or duplicated: the lock does not exclude"
            );
            elapsed
        });
    });
}

fn contended_child<P: Peer>() {
    let peer = P::open();
    let mut parent = ToParent::new();
    parent.send("ready");
    while let Some(n) = parent.next_go() {
        for _ in 0..n {
            increment(&peer);
        }
        parent.send("done");
    }
}

// ---- bulk -------------------------------------------------------------------------------
//
// The segment holds `state` (u64 at 0: EMPTY, FULL or BULK_STOP) and a 64 MiB data area at
// DATA_AT. The writer (parent) copies its private 64 MiB source into the data area under the
// lock when the segment is empty and marks it full; the reader (child) copies it out into
// its private destination when full and marks it empty. Waiting is polling under the lock
// with yields. One iteration is ROUNDS rounds: 1 GiB moved. The reader sums a few sampled
// words of every round it read (`sample_sum`), and the parent checks that sum against the
// one of what it wrote; the writer stamps each round's number into the source's first and
// last words, so that a stale or missed round shows.

const EMPTY: u64 = 0;
const FULL: u64 = 1;
const BULK_STOP: u64 = 2;
const STATE: usize = 0;
const DATA_AT: usize = 4096;
const CHUNK: usize = 64 << 20;
const ROUNDS: u64 = 16;
const GIB: u64 = 1 << 30;
const _: () = assert!(ROUNDS * CHUNK as u64 == GIB);

/// The cheap checksum of one round: 16 words spread over the chunk, plus its last word.
fn sample_sum(chunk: &[u8]) -> u64 {
    (0..16)
        .map(|i| i * (CHUNK / 16))
        .chain([CHUNK - 8])
        .fold(0u64, |sum, at| sum.wrapping_add(read_u64(chunk, at)))
}

/// A 64 MiB buffer filled with a non-repeating pattern (so that a copy is checkable).
fn pattern_buffer() -> Vec<u8> {
    let mut buf = vec![0u8; CHUNK];
    for (i, word) in buf.chunks_exact_mut(8).enumerate() {
        word.copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_ne_bytes());
    }
    buf
}

fn bulk(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulk");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Bytes(GIB));
    for id in ["qshm_sysv", "qshm_posix", "qshm_mapped"] {
        with_peer!(id, bulk_bench, &mut group, id);
    }
    memcpy_floor(&mut group);
    group.finish();
}

fn bulk_bench<P: Peer>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str) {
    let mut state: Option<(Session<P>, Vec<u8>, u64)> = None;
    group.bench_function(id, |b| {
        let (s, src, round) = state.get_or_insert_with(|| {
            let stop = Some((STATE, BULK_STOP));
            let session = Session::start(&format!("bulk/{id}"), DATA_AT + CHUNK, stop);
            (session, pattern_buffer(), 0)
        });
        b.iter_custom(|iters| {
            let go = format!("go {iters}\n");
            let mut expected = 0u64;
            let start = Instant::now();
            s.send(&go);
            for _ in 0..iters * ROUNDS {
                *round += 1;
                write_u64(src, 0, *round);
                write_u64(src, CHUNK - 8, *round);
                expected = expected.wrapping_add(sample_sum(src));
                let (peer, child) = (&s.peer, &mut s.child);
                poll(Some(child), || {
                    peer.with_locked(|bytes| {
                        if read_u64(bytes, STATE) != EMPTY {
                            return None;
                        }
                        bytes[DATA_AT..DATA_AT + CHUNK].copy_from_slice(src);
                        write_u64(bytes, STATE, FULL);
                        Some(())
                    })
                });
            }
            let done = s.recv();
            let elapsed = start.elapsed();
            let checksum = done
                .strip_prefix("done ")
                .and_then(|n| n.parse::<u64>().ok());
            assert_eq!(
                checksum,
                Some(expected),
                "bulk/{id}: the reader did not read what was written (its reply: {done:?})"
            );
            elapsed
        });
    });
}

fn bulk_child<P: Peer>() {
    let peer = P::open();
    let mut dst = vec![0u8; CHUNK];
    let mut parent = ToParent::new();
    parent.send("ready");
    while let Some(n) = parent.next_go() {
        let mut checksum = 0u64;
        for _ in 0..n * ROUNDS {
            let more = poll(None, || {
                peer.with_locked(|bytes| match read_u64(bytes, STATE) {
                    FULL => {
                        dst.copy_from_slice(&bytes[DATA_AT..DATA_AT + CHUNK]);
                        write_u64(bytes, STATE, EMPTY);
                        Some(true)
                    }
                    BULK_STOP => Some(false),
                    _ => None,
                })
            });
            if !more {
                return;
            }
            checksum = checksum.wrapping_add(sample_sum(&dst));
        }
        parent.send(&format!("done {checksum}"));
    }
}

/// `memcpy_floor`: the same two copies per byte as a transfer (source → segment → destination),
/// in one process between private buffers, with no lock and no hand-off. The ratio
/// transfer / floor is what going through shared memory and handing over costs.
fn memcpy_floor(group: &mut BenchmarkGroup<'_, WallTime>) {
    let mut buffers: Option<(Vec<u8>, Vec<u8>, Vec<u8>)> = None;
    group.bench_function("memcpy_floor", |b| {
        let (src, mid, dst) =
            buffers.get_or_insert_with(|| (pattern_buffer(), vec![0u8; CHUNK], vec![0u8; CHUNK]));
        b.iter(|| {
            for _ in 0..ROUNDS {
                mid.copy_from_slice(black_box(&src[..]));
                dst.copy_from_slice(black_box(&mid[..]));
                black_box(&mut dst[..]);
            }
        });
    });
}

// ---- first_read -------------------------------------------------------------------------
//
// The parent creates a 1 GiB segment and writes every byte once (not timed). Each iteration
// starts a fresh child, which attaches read-only, takes the lock, sums all u64 words of the
// segment through the guard's slice, detaches, and reports "{attach_plus_read_ns}
// {read_only_ns} {sum}", measured inside the child: from before `attach` to the end of the
// sum, and from the lock taken to the end of the sum (process start-up, detach and exit are
// not timed). `<id>` records the first figure, `<id>_read` the second. The `_populate`
// variants set `set_populate(true)` before attaching: the pages are mapped at attach
// (MADV_POPULATE_READ) instead of faulted in one by one by the read.

/// The 1 GiB segment of `first_read`, with the sum of its u64 words.
struct BigSegment {
    /// Held for its `Drop`: the parent's detach is the last, which removes the segment.
    #[allow(dead_code)]
    shm: SharedMemory,
    name: String,
    sum: u64,
}

impl BigSegment {
    fn create(posix: bool) -> Self {
        let name = common::unique(if posix { "big-posix" } else { "big-sysv" });
        let mut shm = named_shared_memory(posix, &name);
        shm.create(GIB as usize, AccessMode::ReadWrite)
            .expect("create the 1 GiB segment");
        let mut sum = 0u64;
        {
            let mut guard = shm.lock().expect("lock the 1 GiB segment");
            let bytes = guard.as_mut_slice().expect("the segment is read-write");
            for (i, word) in bytes.chunks_exact_mut(8).enumerate() {
                let value = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                word.copy_from_slice(&value.to_ne_bytes());
                sum = sum.wrapping_add(value);
            }
        }
        BigSegment { shm, name, sum }
    }
}

/// The sum of all native-endian u64 words of `bytes`.
fn sum_words(bytes: &[u8]) -> u64 {
    bytes.chunks_exact(8).fold(0u64, |sum, chunk| {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        sum.wrapping_add(u64::from_ne_bytes(word))
    })
}

fn first_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("first_read");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .throughput(Throughput::Bytes(GIB));
    for posix in [false, true] {
        // One segment serves the four benchmarks of a backend; it is created at the first
        // that runs and removed (last detach) after the fourth.
        let mut big: Option<BigSegment> = None;
        let kind = if posix { "posix" } else { "sysv" };
        for populate in [false, true] {
            for read_only in [false, true] {
                let id = format!(
                    "qshm_{kind}{}{}",
                    if populate { "_populate" } else { "" },
                    if read_only { "_read" } else { "" }
                );
                group.bench_function(&id, |b| {
                    let big = big.get_or_insert_with(|| BigSegment::create(posix));
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| first_read_once(big, kind, populate, read_only))
                            .sum()
                    });
                });
            }
        }
        drop(big); // the last detach: removes the 1 GiB segment before the next one
    }
    group.finish();
}

/// Starts a child that attaches to `big`, reads it and reports; returns the child's figure.
fn first_read_once(big: &BigSegment, kind: &str, populate: bool, read_only: bool) -> Duration {
    let role = format!(
        "first_read/{kind}{}",
        if populate { "+populate" } else { "" }
    );
    let mut child = ChildProc::spawn(&role, |cmd| {
        cmd.env(KEY_ENV, &big.name);
    });
    let mut from_child = BufReader::new(child.0.stdout.take().expect("stdout is piped"));
    let report = recv_line(&mut from_child, &mut child);
    let status = child.0.wait().expect("wait for the first_read child");
    assert!(status.success(), "the first_read child failed ({status})");
    let fields: Vec<u64> = report
        .split(' ')
        .map(|f| f.parse().expect("a number in the child's report"))
        .collect();
    let &[attach_plus_read_ns, read_only_ns, sum] = fields.as_slice() else {
        panic!("first_read: malformed report {report:?}");
    };
    assert_eq!(sum, big.sum, "first_read: the child read other bytes");
    Duration::from_nanos(if read_only {
        read_only_ns
    } else {
        attach_plus_read_ns
    })
}

fn first_read_child(id: &str) {
    let (kind, populate) = match id.split_once('+') {
        Some((kind, "populate")) => (kind, true),
        None => (id, false),
        _ => panic!("xproc: unknown first_read role {id:?}"),
    };
    let name = std::env::var(KEY_ENV).expect("the segment's key");
    let mut shm = named_shared_memory(kind == "posix", &name);
    if populate {
        shm.set_populate(true);
    }
    let start = Instant::now();
    shm.attach(AccessMode::ReadOnly)
        .expect("attach to the 1 GiB segment");
    let guard = shm.lock().expect("lock the 1 GiB segment");
    let locked = Instant::now();
    let sum = sum_words(guard.as_slice());
    let end = Instant::now();
    drop(guard);
    shm.detach().expect("detach from the 1 GiB segment");
    ToParent::new().send(&format!(
        "{} {} {sum}",
        (end - start).as_nanos(),
        (end - locked).as_nanos()
    ));
}
