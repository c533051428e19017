//! Lock benchmarks (see BENCHMARKS.md): uncontended lock+unlock of each kind of lock, and a
//! hand-off ping-pong between two processes.
//!
//! `cargo bench -p qshm-benches`. The second process of a ping-pong is this executable,
//! re-run with `QSHM_BENCH_CHILD` set.
#![allow(unsafe_code, missing_docs)] // FFI to libc and to the C side

use std::hint::black_box;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use divan::Bencher;
use qshm::mapped::{MappedSegment, ReceiveOptions};
use qshm::{AccessMode, SharedMemory};

extern "C" {
    fn qshm_bench_protocol(header: *mut u8, n: u64);
    fn qshm_bench_cas_pair(word: *mut u32, n: u64);
}

const CHILD_ENV: &str = "QSHM_BENCH_CHILD";
const KEY_ENV: &str = "QSHM_BENCH_KEY";

fn main() {
    if let Ok(role) = std::env::var(CHILD_ENV) {
        child(&role);
        return;
    }
    divan::main();
}

// ---- uncontended -----------------------------------------------------------------------

/// The baseline: the cheapest possible lock, a compare-and-swap to take it and a release
/// store to give it back.
#[divan::bench(sample_size = 10_000)]
fn a_baseline_cas_pair(b: Bencher<'_, '_>) {
    let word = AtomicU32::new(0);
    b.bench_local(|| {
        let w = black_box(&word);
        while w
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {}
        w.store(0, Ordering::Release);
    });
}

/// `MappedSegment::lock` + drop on a sealed memfd: the in-segment lock through qshm's guard
/// (which adds the in-process holder check of `LockGuard`).
#[divan::bench(sample_size = 10_000)]
fn b_in_segment_guard_memfd(b: Bencher<'_, '_>) {
    let seg = MappedSegment::memfd("bench", 64).unwrap();
    b.bench_local(|| drop(black_box(seg.lock().unwrap())));
}

/// The same on a file in /dev/shm with the default size check (one fstat per lock).
#[divan::bench(sample_size = 10_000)]
fn c_in_segment_guard_file_checked(b: Bencher<'_, '_>) {
    let seg = MappedSegment::create_temporary(64).unwrap();
    b.bench_local(|| drop(black_box(seg.lock().unwrap())));
}

/// The same on a file with `check_size_on_lock(false)` (trusted peers).
#[divan::bench(sample_size = 10_000)]
fn d_in_segment_guard_file_unchecked(b: Bencher<'_, '_>) {
    let seg = qshm::mapped::FileOptions::new()
        .check_size_on_lock(false)
        .create_temporary(64)
        .unwrap();
    b.bench_local(|| drop(black_box(seg.lock().unwrap())));
}

/// The bare protocol of include/qshm.h (qshm_lock + qshm_unlock), looped in C, per pair.
#[divan::bench(sample_size = 10_000)]
fn e_in_segment_protocol_c(b: Bencher<'_, '_>) {
    let seg = MappedSegment::memfd("bench-c", 64).unwrap();
    // SAFETY: the header starts `data_offset` bytes before the data area, in the mapping
    // `seg` keeps alive for the whole benchmark.
    let header = unsafe { seg.as_mut_ptr().sub(seg.data_offset()) };
    b.counter(divan::counter::ItemsCount::new(1000usize))
        // SAFETY: `header` is a valid, mapped qshm header; the lock is free.
        .bench_local(|| unsafe { qshm_bench_protocol(header, 1000) });
}

/// The baseline looped in C, per pair (the fair comparison for the line above).
#[divan::bench(sample_size = 10_000)]
fn f_baseline_cas_pair_c(b: Bencher<'_, '_>) {
    let word = AtomicU32::new(0);
    b.counter(divan::counter::ItemsCount::new(1000usize))
        // SAFETY: `word` outlives the benchmark and is only accessed atomically.
        .bench_local(|| unsafe { qshm_bench_cas_pair(word.as_ptr(), 1000) });
}

/// glibc's robust, process-shared pthread mutex: lock + unlock.
#[divan::bench(sample_size = 10_000)]
fn g_glibc_robust_pshared_mutex(b: Bencher<'_, '_>) {
    let seg = MappedSegment::memfd("bench-pthread", 4096).unwrap();
    let m = seg.as_mut_ptr().cast::<libc::pthread_mutex_t>();
    // SAFETY: the data area is page-aligned, 4096 bytes, and only used by this benchmark;
    // the attribute and mutex are initialised before use and destroyed after.
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        libc::pthread_mutexattr_init(&mut attr);
        libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
        assert_eq!(libc::pthread_mutex_init(m, &attr), 0);
        libc::pthread_mutexattr_destroy(&mut attr);
    }
    b.bench_local(|| {
        // SAFETY: `m` is an initialised mutex in memory that outlives the benchmark.
        unsafe {
            libc::pthread_mutex_lock(black_box(m));
            libc::pthread_mutex_unlock(m);
        }
    });
    // SAFETY: the mutex is unlocked and no longer used.
    unsafe { libc::pthread_mutex_destroy(m) };
}

/// Qt's lock: the System V semaphore of `SharedMemory` (`SEM_UNDO`), lock + drop.
#[divan::bench(sample_size = 10_000)]
fn h_system_v_semaphore_lock(b: Bencher<'_, '_>) {
    let key = format!("qshm-bench-sysv-{}", std::process::id());
    let mut shm = SharedMemory::with_key(&key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    b.bench_local(|| drop(black_box(shm.lock().unwrap())));
    shm.detach().unwrap();
}

/// Qt's POSIX lock, made crash-robust: the glibc semaphore plus qshm's owner record, lock +
/// drop (`sem_trywait` and `sem_post`, no system call uncontended).
#[divan::bench(sample_size = 10_000)]
fn k_posix_semaphore_lock(b: Bencher<'_, '_>) {
    let key = qshm::NativeKey::platform_safe(
        &format!("qshm-bench-posix-{}", std::process::id()),
        qshm::KeyType::PosixRealtime,
    );
    let mut shm = SharedMemory::with_native_key(key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    b.bench_local(|| drop(black_box(shm.lock().unwrap())));
    shm.detach().unwrap();
}

// ---- hand-off ping-pong between two processes ----------------------------------------
//
// The data area holds `turn` (u64 at 0) and `stop` (u64 at 8). The parent moves `turn` from
// even to odd, the child from odd to even; each polls by taking and releasing the lock. One
// benchmark iteration is one round trip (two hand-offs).

fn read_u64(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

fn write_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

/// Takes a turn: waits (polling under the lock, yielding between polls) until
/// `turn % 2 == parity`, then increments.
/// Returns false when told to stop.
fn take_turn<'a>(lock: &dyn Fn() -> qshm::LockGuard<'a>, parity: u64) -> bool {
    loop {
        let mut g = lock();
        let bytes = g.as_mut_slice().unwrap();
        if read_u64(bytes, 8) != 0 {
            return false;
        }
        let turn = read_u64(bytes, 0);
        if turn % 2 == parity {
            write_u64(bytes, 0, turn + 1);
            return true;
        }
        // Not our turn: let the other side in (an unfair lock would otherwise be re-taken
        // by this poller at once, starving the side whose turn it is).
        drop(g);
        std::thread::yield_now();
    }
}

fn child(role: &str) {
    match role {
        "mapped" => {
            let seg = MappedSegment::from_env(&ReceiveOptions::new()).unwrap();
            while take_turn(&|| seg.lock().unwrap(), 1) {}
        }
        "sysv" => {
            let mut shm = SharedMemory::with_key(&std::env::var(KEY_ENV).unwrap());
            shm.attach(AccessMode::ReadWrite).unwrap();
            while take_turn(&|| shm.lock().unwrap(), 1) {}
        }
        other => panic!("unknown child role {other}"),
    }
}

fn spawn_child(role: &str, configure: impl FnOnce(&mut Command)) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD_ENV, role);
    configure(&mut cmd);
    cmd.spawn().unwrap()
}

fn stop(guard: qshm::LockGuard<'_>, mut child: Child) {
    let mut guard = guard;
    write_u64(guard.as_mut_slice().unwrap(), 8, 1);
    drop(guard);
    let _ = child.wait();
}

/// Round trip through the in-segment lock (memfd inherited by the child).
#[divan::bench(max_time = Duration::from_secs(3))]
fn i_ping_pong_in_segment(b: Bencher<'_, '_>) {
    let seg = MappedSegment::memfd("pingpong", 64).unwrap();
    let child = spawn_child("mapped", |cmd| seg.pass_to_child(cmd).unwrap());
    b.bench_local(|| take_turn(&|| seg.lock().unwrap(), 0));
    stop(seg.lock().unwrap(), child);
}

/// Round trip through the System V semaphore lock (Qt's).
#[divan::bench(max_time = Duration::from_secs(3))]
fn j_ping_pong_system_v(b: Bencher<'_, '_>) {
    let key = format!("qshm-bench-pingpong-{}", std::process::id());
    let mut shm = SharedMemory::with_key(&key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let child = spawn_child("sysv", |cmd| {
        cmd.env(KEY_ENV, &key);
    });
    b.bench_local(|| take_turn(&|| shm.lock().unwrap(), 0));
    stop(shm.lock().unwrap(), child);
    shm.detach().unwrap();
}
