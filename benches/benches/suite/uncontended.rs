//! Group `uncontended`: one thread takes and releases a lock nobody else wants, ns per pair.
//!
//! Baselines: the floor (a bare compare-and-swap lock), the raw calls Qt's locks are made
//! of (`semop` with `SEM_UNDO`, glibc's `sem_wait`/`sem_post`), glibc's robust
//! process-shared mutex and the `raw_sync` mutex of the `shared_memory` crate. Qt's own
//! `lock()`+`unlock()` comes from `benches/qt` (`qt/lock_unlock`).

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use criterion::{Criterion, Throughput};
use qshm::mapped::{FileOptions, MappedSegment};
use qshm::{AccessMode, KeyType, NativeKey, SharedMemory};
use raw_sync::locks::{LockInit, Mutex};
use shared_memory::ShmemConf;

use crate::common::unique;

extern "C" {
    fn qshm_bench_protocol(header: *mut u8, n: u64);
}

pub fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended");
    g.sample_size(50);

    // The floor, spin-lock style: CAS(0 → 1, Acquire) to take, a release store to give back.
    // It cannot wake a sleeper, so no real lock is this cheap.
    g.bench_function("floor_cas_store", |b| {
        let word = AtomicU32::new(0);
        b.iter(|| {
            let w = black_box(&word);
            while w
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {}
            w.store(0, Ordering::Release);
        })
    });

    // The floor of a lock that can sleep ("a bare futex CAS lock"): CAS(0 → 1) to take;
    // swap(0) to give back, and FUTEX_WAKE only if the swap saw a waiter (never here).
    g.bench_function("floor_futex_lock", |b| {
        let word = AtomicU32::new(0);
        b.iter(|| {
            let w = black_box(&word);
            while w
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {}
            if w.swap(0, Ordering::Release) == 2 {
                rustix::thread::futex::wake(w, rustix::thread::futex::Flags::empty(), 1).ok();
            }
        })
    });

    // What Qt's System V lock is made of: two `semop` calls with SEM_UNDO.
    g.bench_function("raw_semop_undo", |b| {
        // SAFETY: semget/semctl take plain integers; the set is private and removed below.
        let id = unsafe { libc::semget(libc::IPC_PRIVATE, 1, 0o600 | libc::IPC_CREAT) };
        assert!(id >= 0, "semget");
        // SAFETY: SETVAL takes an int as its fourth argument.
        unsafe { libc::semctl(id, 0, libc::SETVAL, 1) };
        let mut down = libc::sembuf {
            sem_num: 0,
            sem_op: -1,
            sem_flg: libc::SEM_UNDO as _,
        };
        let mut up = libc::sembuf {
            sem_num: 0,
            sem_op: 1,
            sem_flg: libc::SEM_UNDO as _,
        };
        b.iter(|| {
            // SAFETY: `id` is a live semaphore set of one; the sembufs are valid.
            unsafe {
                libc::semop(id, &mut down, 1);
                libc::semop(id, &mut up, 1);
            }
        });
        // SAFETY: IPC_RMID takes no fourth argument.
        unsafe { libc::semctl(id, 0, libc::IPC_RMID) };
    });

    // What Qt's POSIX lock is made of: glibc's sem_wait + sem_post on a named semaphore.
    g.bench_function("raw_sem_wait_post", |b| {
        let name = std::ffi::CString::new(format!("/{}", unique("sem"))).unwrap();
        let sem = crate::common::sem_create(&name);
        // SAFETY: unlinking the name leaves the open semaphore usable.
        unsafe { libc::sem_unlink(name.as_ptr()) };
        b.iter(|| {
            // SAFETY: `sem` is open until the sem_close below.
            unsafe {
                libc::sem_wait(black_box(sem));
                libc::sem_post(sem);
            }
        });
        // SAFETY: opened above, closed once.
        unsafe { libc::sem_close(sem) };
    });

    // glibc's robust process-shared mutex, in a shared memfd page.
    g.bench_function("pthread_robust", |b| {
        let seg = MappedSegment::memfd("bench-pthread", 4096).unwrap();
        let m = seg.as_mut_ptr().cast::<libc::pthread_mutex_t>();
        // SAFETY: the data area is page-aligned, 4096 bytes, used by nothing else.
        unsafe { crate::common::init_robust_pshared_mutex(m) };
        b.iter(|| {
            // SAFETY: `m` is an initialised mutex in memory that outlives the loop.
            unsafe {
                libc::pthread_mutex_lock(black_box(m));
                libc::pthread_mutex_unlock(m);
            }
        });
        // SAFETY: unlocked and no longer used.
        unsafe { libc::pthread_mutex_destroy(m) };
    });

    // The Rust peer: the `shared_memory` crate's segment with a `raw_sync` mutex in it.
    g.bench_function("raw_sync", |b| {
        let shmem = ShmemConf::new()
            .size(4096)
            .os_id(unique("rawsync"))
            .create()
            .expect("shared_memory create");
        let base = shmem.as_ptr();
        // SAFETY: the mutex goes at the start of the 4096-byte segment and the data it
        // guards right after it; both stay mapped while `shmem` lives.
        let (mutex, _) = unsafe { Mutex::new(base, base.add(128)) }.expect("raw_sync mutex");
        b.iter(|| drop(black_box(mutex.lock().expect("lock"))));
        drop(mutex);
    });

    // qshm's Qt-compatible locks, through the guard (`lock()` + drop).
    g.bench_function("qshm_sysv", |b| {
        let mut shm = SharedMemory::with_key(&unique("sysv"));
        shm.create(64, AccessMode::ReadWrite).unwrap();
        b.iter(|| drop(black_box(shm.lock().unwrap())));
        shm.detach().unwrap();
    });
    g.bench_function("qshm_posix", |b| {
        let key = NativeKey::platform_safe(&unique("posix"), KeyType::PosixRealtime);
        let mut shm = SharedMemory::with_native_key(key);
        shm.create(64, AccessMode::ReadWrite).unwrap();
        b.iter(|| drop(black_box(shm.lock().unwrap())));
        shm.detach().unwrap();
    });
    g.bench_function("qshm_posix_checked", |b| {
        let key = NativeKey::platform_safe(&unique("posixchk"), KeyType::PosixRealtime);
        let mut shm = SharedMemory::with_native_key(key);
        shm.create(64, AccessMode::ReadWrite).unwrap();
        shm.set_check_size_on_lock(true);
        b.iter(|| drop(black_box(shm.lock().unwrap())));
        shm.detach().unwrap();
    });

    // qshm's in-segment robust lock, through the guard.
    g.bench_function("qshm_mapped_memfd", |b| {
        let seg = MappedSegment::memfd("bench", 64).unwrap();
        b.iter(|| drop(black_box(seg.lock().unwrap())));
    });
    g.bench_function("qshm_mapped_file", |b| {
        let seg = MappedSegment::create_temporary(64).unwrap();
        b.iter(|| drop(black_box(seg.lock().unwrap())));
    });
    g.bench_function("qshm_mapped_file_unchecked", |b| {
        let seg = FileOptions::new()
            .check_size_on_lock(false)
            .create_temporary(64)
            .unwrap();
        b.iter(|| drop(black_box(seg.lock().unwrap())));
    });

    // The same protocol in C (include/qshm.h, what a C or Qt program would use), looped
    // 1000 times per iteration so that the call from Rust is amortised.
    g.throughput(Throughput::Elements(1000));
    g.bench_function("qshm_protocol_c_x1000", |b| {
        let seg = MappedSegment::memfd("bench-c", 64).unwrap();
        // SAFETY: the header starts `data_offset` bytes before the data area, in the
        // mapping `seg` keeps alive for the whole benchmark.
        let header = unsafe { seg.as_mut_ptr().sub(seg.data_offset()) };
        // SAFETY: `header` is a valid, mapped qshm header; the lock is free.
        b.iter(|| unsafe { qshm_bench_protocol(header, 1000) });
    });
    g.finish();
}
