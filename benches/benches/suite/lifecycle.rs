//! Groups `lifecycle` and `large`: what creating, attaching and detaching a segment costs.
//!
//! `lifecycle`: `create(4 KiB)` + `detach()`, and `attach()` + `detach()` of a segment
//! another handle keeps, µs per pair. `large`: one handle creates a segment of 4 KiB, 1 GiB
//! or 8 GiB, a second attaches, both detach: no page may be touched, so the three sizes
//! should cost the same. Baselines: the raw system calls (System V `shmget`/`shmat`, POSIX
//! `shm_open`/`mmap`) and the `shared_memory` crate; Qt's figures come from `benches/qt`.

use std::ffi::CString;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion};
use qshm::mapped::{FileOptions, MappedSegment, ReceiveOptions};
use qshm::{AccessMode, KeyType, LastDetach, NativeKey, SharedMemory};
use shared_memory::ShmemConf;

use crate::common::unique;

const KIB4: usize = 4096;
const GIB: usize = 1 << 30;

pub fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("lifecycle");
    g.sample_size(30).measurement_time(Duration::from_secs(3));

    // Raw System V: what any create must do (shmget, shmat; shmdt, IPC_RMID), and what any
    // attach must do (shmget by key, shmat, IPC_STAT for the size; shmdt).
    g.bench_function("raw_sysv_create_4k", |b| {
        b.iter(|| {
            let id = sysv_create(libc::IPC_PRIVATE, KIB4);
            let addr = sysv_attach(id);
            sysv_detach(addr);
            sysv_remove(id);
        })
    });
    g.bench_function("raw_sysv_attach", |b| {
        let key = sysv_key();
        let id = sysv_create(key, KIB4);
        b.iter(|| {
            // SAFETY: shmget takes plain integers.
            let id = unsafe { libc::shmget(key, 0, 0o600) };
            let addr = sysv_attach(id);
            black_box(sysv_size(id));
            sysv_detach(addr);
        });
        sysv_remove(id);
    });

    // Raw POSIX: shm_open, ftruncate, mmap; munmap, shm_unlink. Attach: shm_open, fstat,
    // mmap; munmap.
    g.bench_function("raw_posix_create_4k", |b| {
        let name = CString::new(format!("/{}", unique("raw"))).unwrap();
        b.iter(|| {
            let (fd, addr) = posix_create(&name, KIB4);
            posix_unmap(addr, KIB4);
            posix_remove(&name, fd);
        })
    });
    // The floor of a POSIX segment with its lock, Qt's POSIX protocol done by glibc alone:
    // sem_open(O_CREAT|O_EXCL), the segment as above, sem_close, sem_unlink.
    g.bench_function("raw_posix_create_4k_sem", |b| {
        let name = CString::new(format!("/{}", unique("raw"))).unwrap();
        let sem_name = CString::new(format!("/{}", unique("rawsem"))).unwrap();
        b.iter(|| {
            let sem = crate::common::sem_create(&sem_name);
            let (fd, addr) = posix_create(&name, KIB4);
            posix_unmap(addr, KIB4);
            posix_remove(&name, fd);
            // SAFETY: `sem` came from sem_open and is closed once; the name is valid.
            unsafe {
                libc::sem_close(sem);
                libc::sem_unlink(sem_name.as_ptr());
            }
        })
    });
    g.bench_function("raw_posix_attach", |b| {
        let name = CString::new(format!("/{}", unique("raw"))).unwrap();
        let (fd, addr) = posix_create(&name, KIB4);
        b.iter(|| {
            let (fd2, addr2, len) = posix_open(&name);
            posix_unmap(addr2, len);
            // SAFETY: `fd2` was opened by posix_open and is closed once.
            unsafe { libc::close(fd2) };
        });
        posix_unmap(addr, KIB4);
        posix_remove(&name, fd);
    });

    // qshm, Qt's protocol: key files, the lock semaphore, the segment.
    g.bench_function("qshm_sysv_create_4k", |b| {
        let mut shm = SharedMemory::with_key(&unique("sysv"));
        b.iter(|| {
            shm.create(KIB4, AccessMode::ReadWrite).unwrap();
            shm.detach().unwrap();
        })
    });
    g.bench_function("qshm_sysv_attach", |b| {
        let name = unique("sysv");
        let mut owner = SharedMemory::with_key(&name);
        owner.create(KIB4, AccessMode::ReadWrite).unwrap();
        let mut shm = SharedMemory::with_key(&name);
        b.iter(|| {
            shm.attach(AccessMode::ReadWrite).unwrap();
            shm.detach().unwrap();
        });
        owner.detach().unwrap();
    });
    g.bench_function("qshm_posix_create_4k", |b| {
        let mut shm = SharedMemory::with_native_key(posix_key("posix"));
        b.iter(|| {
            shm.create(KIB4, AccessMode::ReadWrite).unwrap();
            shm.detach().unwrap();
        })
    });
    g.bench_function("qshm_posix_attach", |b| {
        let key = posix_key("posix");
        let mut owner = SharedMemory::with_native_key(key.clone());
        owner.create(KIB4, AccessMode::ReadWrite).unwrap();
        let mut shm = SharedMemory::with_native_key(key);
        b.iter(|| {
            shm.attach(AccessMode::ReadWrite).unwrap();
            shm.detach().unwrap();
        });
        owner.detach().unwrap();
    });
    // Qt's POSIX policy: the segment outlives its last user, so detach looks for nobody.
    g.bench_function("qshm_posix_create_4k_keep", |b| {
        let key = posix_key("posix");
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.set_last_detach(LastDetach::Keep);
        b.iter(|| {
            shm.create(KIB4, AccessMode::ReadWrite).unwrap();
            shm.detach().unwrap();
            SharedMemory::force_remove(&key).unwrap();
        })
    });

    // qshm's mapped segments.
    g.bench_function("qshm_memfd_create_4k", |b| {
        b.iter(|| drop(MappedSegment::memfd("bench", KIB4).unwrap()))
    });
    g.bench_function("qshm_file_create_4k", |b| {
        b.iter(|| drop(MappedSegment::create_temporary(KIB4).unwrap()))
    });
    g.bench_function("qshm_file_open", |b| {
        let owner = MappedSegment::create_temporary(KIB4).unwrap();
        let path = owner.path().unwrap().to_path_buf();
        b.iter(|| drop(FileOptions::new().open(&path).unwrap()));
    });

    // The Rust peer.
    g.bench_function("shared_memory_create_4k", |b| {
        let name = unique("sm");
        b.iter(|| drop(ShmemConf::new().size(KIB4).os_id(&name).create().unwrap()))
    });
    g.bench_function("shared_memory_open", |b| {
        let name = unique("sm");
        let _owner = ShmemConf::new().size(KIB4).os_id(&name).create().unwrap();
        b.iter(|| drop(ShmemConf::new().os_id(&name).open().unwrap()));
    });
    g.finish();

    let mut g = c.benchmark_group("large");
    g.sample_size(20).measurement_time(Duration::from_secs(2));
    for (label, size) in [("4k", KIB4), ("1g", GIB), ("8g", 8 * GIB)] {
        large(&mut g, label, size);
    }
    g.finish();
}

/// create(size) by one handle, attach by a second, both detach.
fn large(g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, label: &str, size: usize) {
    g.bench_function(format!("raw_sysv_{label}"), |b| {
        let key = sysv_key();
        b.iter(|| {
            let id = sysv_create(key, size);
            let a = sysv_attach(id);
            // SAFETY: shmget takes plain integers.
            let id2 = unsafe { libc::shmget(key, 0, 0o600) };
            let b2 = sysv_attach(id2);
            black_box(sysv_size(id2));
            sysv_detach(b2);
            sysv_detach(a);
            sysv_remove(id);
        })
    });
    g.bench_function(format!("qshm_sysv_{label}"), |b| {
        let name = unique("sysv");
        let (mut a, mut b2) = (SharedMemory::with_key(&name), SharedMemory::with_key(&name));
        b.iter(|| {
            a.create(size, AccessMode::ReadWrite).unwrap();
            b2.attach(AccessMode::ReadWrite).unwrap();
            b2.detach().unwrap();
            a.detach().unwrap();
        })
    });
    g.bench_function(format!("raw_posix_{label}"), |b| {
        let name = CString::new(format!("/{}", unique("raw"))).unwrap();
        b.iter(|| {
            let (fd, addr) = posix_create(&name, size);
            let (fd2, addr2, len2) = posix_open(&name);
            posix_unmap(addr2, len2);
            // SAFETY: opened by posix_open, closed once.
            unsafe { libc::close(fd2) };
            posix_unmap(addr, size);
            posix_remove(&name, fd);
        })
    });
    g.bench_function(format!("qshm_posix_{label}"), |b| {
        let key = posix_key("posix");
        let mut a = SharedMemory::with_native_key(key.clone());
        let mut b2 = SharedMemory::with_native_key(key);
        b.iter(|| {
            a.create(size, AccessMode::ReadWrite).unwrap();
            b2.attach(AccessMode::ReadWrite).unwrap();
            b2.detach().unwrap();
            a.detach().unwrap();
        })
    });
    g.bench_function(format!("qshm_memfd_{label}"), |b| {
        b.iter(|| {
            let a = MappedSegment::memfd("bench", size).unwrap();
            let fd = rustix::io::fcntl_dupfd_cloexec(&a, 0).unwrap();
            let b2 = MappedSegment::from_fd(fd, &ReceiveOptions::new()).unwrap();
            drop(b2);
            drop(a);
        })
    });
}

fn posix_key(what: &str) -> NativeKey {
    NativeKey::platform_safe(&unique(what), KeyType::PosixRealtime)
}

/// A System V key nobody uses: derived from this process and a counter.
fn sysv_key() -> libc::key_t {
    use std::sync::atomic::{AtomicI32, Ordering};
    static N: AtomicI32 = AtomicI32::new(0);
    0x7100_0000 | ((std::process::id() as i32 & 0xfff) << 12) | N.fetch_add(1, Ordering::Relaxed)
}

fn sysv_create(key: libc::key_t, size: usize) -> i32 {
    // SAFETY: shmget takes plain integers.
    let id = unsafe { libc::shmget(key, size, 0o600 | libc::IPC_CREAT | libc::IPC_EXCL) };
    assert!(id >= 0, "shmget: {}", std::io::Error::last_os_error());
    id
}

fn sysv_attach(id: i32) -> *mut libc::c_void {
    // SAFETY: a null address lets the kernel choose; this only adds a mapping.
    let addr = unsafe { libc::shmat(id, std::ptr::null(), 0) };
    assert_ne!(addr as isize, -1, "shmat");
    addr
}

fn sysv_size(id: i32) -> usize {
    // SAFETY: IPC_STAT fills the zeroed shmid_ds it is given.
    unsafe {
        let mut ds: libc::shmid_ds = std::mem::zeroed();
        libc::shmctl(id, libc::IPC_STAT, &mut ds);
        ds.shm_segsz
    }
}

fn sysv_detach(addr: *mut libc::c_void) {
    // SAFETY: `addr` came from shmat and is detached once; nothing borrows it.
    unsafe { libc::shmdt(addr) };
}

fn sysv_remove(id: i32) {
    // SAFETY: IPC_RMID takes no buffer.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
}

fn posix_create(name: &CString, size: usize) -> (i32, *mut libc::c_void) {
    // SAFETY: a valid name and flags; the fd is closed by posix_remove.
    let fd = unsafe {
        libc::shm_open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            0o600,
        )
    };
    assert!(fd >= 0, "shm_open: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a new shm object; mmap only adds a mapping.
    unsafe {
        assert_eq!(libc::ftruncate(fd, size as libc::off_t), 0);
        let addr = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        assert_ne!(addr, libc::MAP_FAILED, "mmap");
        (fd, addr)
    }
}

fn posix_open(name: &CString) -> (i32, *mut libc::c_void, usize) {
    // SAFETY: as in posix_create; the caller closes the fd and unmaps.
    unsafe {
        let fd = libc::shm_open(name.as_ptr(), libc::O_RDWR, 0);
        assert!(fd >= 0, "shm_open");
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st);
        let len = st.st_size as usize;
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        assert_ne!(addr, libc::MAP_FAILED, "mmap");
        (fd, addr, len)
    }
}

fn posix_unmap(addr: *mut libc::c_void, len: usize) {
    // SAFETY: `addr..+len` is a mapping made by posix_create/posix_open, unmapped once.
    unsafe { libc::munmap(addr, len) };
}

fn posix_remove(name: &CString, fd: i32) {
    // SAFETY: `fd` came from shm_open and is closed once; the name is valid.
    unsafe {
        libc::close(fd);
        libc::shm_unlink(name.as_ptr());
    }
}
