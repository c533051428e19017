//! The portable-Unix mode (`RUSTFLAGS="--cfg qshm_portable"`, `ci/test.sh`): the Linux
//! build without the Linux-only calls that macOS and FreeBSD lack. This checks that each
//! fallback path those builds take really runs here: a timed wait on a System V and on a
//! POSIX semaphore (no `semtimedop`, no `sem_timedwait`: polled), and the `mapped` lock's
//! sleep (no futex: polled), POSIX keys on the portable backend, `mapped` on the record-lock
//! protocol. The Linux-only calls are not compiled in this mode; the counters show the
//! fallbacks were taken, not skipped, and that the System V, POSIX and `mapped` backends
//! used no Linux-only mechanism.
#![cfg(all(qshm_linux, qshm_portable))]

mod util;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use qshm::mapped::{FileOptions, MappedSegment};
use qshm::{
    AccessMode, ErrorKind, KeyType, NativeKey, SemaphoreMode, SharedMemory, SystemSemaphore,
};
use util::qt::{hex, QtPeer, QtVersion};
use util::{ChildProc, Cleanup};

fn counts() -> HashMap<&'static str, u64> {
    qshm::portable::fallback_counts().into_iter().collect()
}

/// A timed acquire of a taken semaphore of `key_type` times out after its timeout, by the
/// polling fallback.
fn timed_wait_polls(key_type: KeyType, fallback: &str) {
    let key = SystemSemaphore::legacy_native_key(&util::unique_key(fallback), key_type);
    let _cleanup = Cleanup::new().semaphore(&key);
    let mut sem = SystemSemaphore::with_native_key(key, 0, SemaphoreMode::Create).unwrap();
    sem.set_remove_on_drop(true);
    let before = counts()[fallback];
    let start = Instant::now();
    let err = sem.acquire_timeout(Duration::from_millis(60)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(start.elapsed() >= Duration::from_millis(60));
    assert!(start.elapsed() < Duration::from_secs(5));
    // Released from another thread while waiting: the poll sees it.
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(30));
            sem.release(1).unwrap();
        });
        sem.acquire_timeout(Duration::from_secs(10)).unwrap();
    });
    assert!(counts()[fallback] > before, "{fallback} not taken");
}

#[test]
fn system_v_timed_wait_polls() {
    timed_wait_polls(KeyType::SystemV, "sysv_timed_poll");
}

#[test]
fn posix_timed_wait_polls() {
    timed_wait_polls(KeyType::PosixRealtime, "posix_timed_poll");
}

/// Without `O_TMPFILE`, a POSIX segment is created under its name and sized once, and a
/// semaphore file written under a temporary name and linked into place, which is then gone.
#[test]
fn posix_creation_without_unnamed_files() {
    let key = NativeKey::legacy(&util::unique_key("portable-create"), KeyType::PosixRealtime);
    let _cleanup = Cleanup::new().segment(&key);
    let before = counts()["named_create"];
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(4096, AccessMode::ReadWrite).unwrap();
    shm.lock().unwrap().as_mut_slice().unwrap()[..5].copy_from_slice(b"hello");
    let mut other = SharedMemory::with_native_key(key);
    other.attach(AccessMode::ReadOnly).unwrap();
    assert_eq!(&other.lock().unwrap().as_slice()[..5], b"hello");
    assert!(counts()["named_create"] > before, "named_create not taken");
    drop(other);
    shm.detach().unwrap();
}

/// The companion file of a POSIX object of the portable backend (src/sys/unix/posix_portable).
fn companion_path(kind: &str, native: &str) -> std::path::PathBuf {
    let hash = sha1_smol::Sha1::from(native.as_bytes())
        .digest()
        .to_string();
    std::env::temp_dir().join(format!("qshm-psx-{kind}-{}", &hash[..32]))
}

/// POSIX keys take the portable backend (what macOS, iOS and FreeBSD run): its companion
/// files appear with the segment and its lock, and the last detach removes them with both.
#[test]
fn posix_keys_take_the_portable_backend() {
    let key = NativeKey::legacy(&util::unique_key("portable-posix"), KeyType::PosixRealtime);
    let _cleanup = Cleanup::new().segment(&key);
    let before = counts()["posix_portable"];
    let shm_companion = companion_path("shm", key.native_key());
    let sem_companion = companion_path("sem", key.lock_key().native_key());
    let _files = util::PathCleanup::new()
        .path(&shm_companion)
        .path(&sem_companion);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(4096, AccessMode::ReadWrite).unwrap();
    drop(shm.lock().unwrap());
    assert!(
        counts()["posix_portable"] > before,
        "posix_portable not taken"
    );
    assert!(shm_companion.exists(), "{}", shm_companion.display());
    assert!(sem_companion.exists(), "{}", sem_companion.display());
    let mut other = SharedMemory::with_native_key(key.clone());
    other.attach(AccessMode::ReadOnly).unwrap();
    shm.detach().unwrap();
    assert!(shm_companion.exists(), "removed while attached");
    other.detach().unwrap();
    assert!(!shm_companion.exists(), "segment companion left");
    assert!(!sem_companion.exists(), "lock companion left");
    assert!(!util::exists(&format!("/dev/shm{}", key.native_key())));
}

/// The System V and POSIX backends of the mode, the code macOS, iOS and FreeBSD build, use
/// nothing Linux-only (`/proc`, leases, open-file-description locks): a child process (so
/// that this binary's `mapped` tests, which do, count elsewhere) creates, attaches, locks,
/// times out, recovers a POSIX lock from a holder killed with `kill -9` and detaches on
/// both, then reports what it used.
#[test]
fn system_v_and_posix_use_nothing_linux_only() {
    let sysv = NativeKey::legacy(&util::unique_key("portable-nolinux"), KeyType::SystemV);
    let posix = NativeKey::legacy(
        &util::unique_key("portable-nolinux"),
        KeyType::PosixRealtime,
    );
    let sems = [&sysv, &posix]
        .map(|k| SystemSemaphore::legacy_native_key(&format!("{k}-sem"), k.key_type()));
    let _cleanup = Cleanup::new()
        .segment(&sysv)
        .segment(&posix)
        .semaphore(&sems[0])
        .semaphore(&sems[1]);
    let args = [&sysv, &posix, &sems[0], &sems[1]].map(ToString::to_string);
    let mut child = ChildProc::spawn("no-linux-only", &args.each_ref().map(String::as_str));
    assert_eq!(
        child.expect_line(Duration::from_secs(60)),
        "used [(\"proc\", 0), (\"lease\", 0), (\"ofd_lock\", 0)]"
    );
    assert!(child.wait(Duration::from_secs(30)).success());
}

/// `qshm::mapped` uses nothing Linux-only either: its users are counted and its lock's owners
/// judged through classic record locks on the segment file (`mapped_record_locks`), not
/// `flock`, open-file-description locks or `/proc`. A child process creates a file segment,
/// has a grandchild hold its lock and kills it (`kill -9`), recovers the lock with
/// `owner_died`, attaches the file twice more (by path, and by a descriptor of it received
/// over a socket: one open file per process), makes a memfd, seals it, and removes the file
/// (refused while attached, done after), then reports what it used.
#[test]
fn mapped_uses_nothing_linux_only() {
    let path = FileOptions::new().resolve(util::unique_key("portable-mapped-nolinux"));
    let _cleanup = util::PathCleanup::new().path(&path);
    let mut child = ChildProc::spawn("mapped-no-linux-only", &[path.to_str().unwrap()]);
    assert_eq!(
        child.expect_line(Duration::from_secs(60)),
        "used [(\"proc\", 0), (\"lease\", 0), (\"ofd_lock\", 0)]"
    );
    assert!(child.wait(Duration::from_secs(30)).success());
    assert!(!path.exists());
}

/// `include/qshm.h` implements Linux's protocol, so a C program refuses a segment of the
/// record-lock protocol (this mode's, macOS's, FreeBSD's): `qshm_check` says
/// `-EPROTONOSUPPORT` (the counter program exits with 2), and the segment is untouched.
#[test]
fn a_c_program_refuses_a_record_lock_segment() {
    let Some((exe, _dir)) = util::compile_c_anyway("counter") else {
        return;
    };
    let path = FileOptions::new().resolve(util::unique_key("portable-c-refuses"));
    let _cleanup = util::PathCleanup::new().path(&path);
    let seg = FileOptions::new().create(&path, 64).unwrap();
    let out = util::spawning(|| {
        std::process::Command::new(&exe)
            .arg(&path)
            .arg("10")
            .output()
    })
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("qshm_check: Protocol not supported"), "{err}");
    assert_eq!(util::read_u64(seg.lock().unwrap().as_slice()), 0);
}

/// A lock holder in this process, a waiter in a child: the child's `lock_timeout` sleeps
/// by polling (no futex) until the holder lets go.
#[test]
fn mapped_lock_sleeps_by_polling() {
    let path = FileOptions::new().resolve(util::unique_key("portable-mapped"));
    let _cleanup = util::PathCleanup::new().path(&path);
    let seg = FileOptions::new().create(&path, 64).unwrap();
    let guard = seg.lock().unwrap();
    let path_text = path.to_str().unwrap();
    let mut child = ChildProc::spawn("wait-for-lock", &[path_text]);
    assert_eq!(child.expect_line(Duration::from_secs(30)), "waiting");
    std::thread::sleep(Duration::from_millis(100));
    drop(guard);
    assert_eq!(child.expect_line(Duration::from_secs(30)), "polled");
    assert!(child.wait(Duration::from_secs(30)).success());
}

/// A process forked from a lock user takes a liveness slot of its own (its token is cached
/// per fork generation, not inherited): the copy in the child locks, dies holding the lock,
/// and the parent takes it over with `owner_died` (had the child written the parent's token,
/// the parent would take the record for its own, alive, and wait for ever).
#[test]
fn a_forked_holder_that_dies_is_recovered() {
    let key = NativeKey::legacy(&util::unique_key("portable-fork"), KeyType::PosixRealtime);
    let _cleanup = Cleanup::new().segment(&key);
    let _files = util::PathCleanup::new()
        .path(companion_path("shm", key.native_key()))
        .path(companion_path("sem", key.lock_key().native_key()));
    let mut child = ChildProc::spawn("fork-holder", &[&key.to_string()]);
    assert_eq!(child.expect_line(Duration::from_secs(60)), "recovered");
    assert!(child.wait(Duration::from_secs(30)).success());
}

/// A file at a companion's name that no qshm process made is refused before anything is
/// written to it: a hard link to someone's file (which FreeBSD lets any user plant in a
/// shared `/tmp`), and a file of the wrong size. Create and attach fail with
/// `PermissionDenied`, the create leaves nothing behind, and the planted files are unchanged.
#[test]
fn planted_companion_files_are_refused_untouched() {
    for plant in ["hard link", "wrong size"] {
        let key = NativeKey::legacy(&util::unique_key("portable-plant"), KeyType::PosixRealtime);
        let _cleanup = Cleanup::new().segment(&key);
        let shm_companion = companion_path("shm", key.native_key());
        let sem_companion = companion_path("sem", key.lock_key().native_key());
        let victim = std::env::temp_dir().join(format!("{}-victim", util::unique_key("plant")));
        let _files = util::PathCleanup::new()
            .path(&shm_companion)
            .path(&sem_companion)
            .path(&victim);
        let content = if plant == "hard link" {
            vec![0u8; 64] // what a companion being made looks like
        } else {
            vec![7u8; 10]
        };
        std::fs::write(&victim, &content).unwrap();
        if plant == "hard link" {
            std::fs::hard_link(&victim, &shm_companion).unwrap();
        } else {
            std::fs::rename(&victim, &shm_companion).unwrap();
        }
        let planted = if plant == "hard link" {
            &victim
        } else {
            &shm_companion
        };
        let mut shm = SharedMemory::with_native_key(key.clone());
        let err = shm.create(4096, AccessMode::ReadWrite).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{plant}: {err}");
        assert!(err.to_string().contains("refusing"), "{plant}: {err}");
        assert_eq!(std::fs::read(planted).unwrap(), content, "{plant}: changed");
        assert!(!sem_companion.exists(), "{plant}: lock companion left");
        assert_eq!(util::objects_left(&key), Vec::<String>::new(), "{plant}");
        // An attach is refused alike (it joins the companion before it opens the segment).
        let mut other = SharedMemory::with_native_key(key.clone());
        let err = other.attach(AccessMode::ReadOnly).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{plant}: {err}");
        assert_eq!(std::fs::read(planted).unwrap(), content, "{plant}: changed");
    }
}

/// Inspection without `/proc` (what macOS and FreeBSD run): a real Qt 6 program creates a
/// System V segment and is killed with `kill -9`, leaving the segment, its lock and their
/// key files. In a child process, the key files lead `list`, `info` and `leftovers` to it,
/// orphaned, and `remove_leftover` removes all four; the child then reports that it used no
/// Linux-only mechanism.
#[test]
fn inspection_finds_and_cleans_what_a_killed_qt_left() {
    let key = util::unique_key("portable-inspect");
    let native = NativeKey::legacy(&key, KeyType::SystemV);
    let _cleanup = Cleanup::new().segment(&native);
    let mut qt = QtPeer::spawn(QtVersion::Qt6);
    qt.cmd(&format!("key {}", hex(key.as_bytes())))
        .expect_ok("key");
    qt.cmd("create 4096 rw").expect_ok("create");
    qt.kill();
    assert_eq!(util::objects_left(&native).len(), 2, "Qt left no key files");
    let mut child = ChildProc::spawn("inspect-leftover", &[&key]);
    assert_eq!(
        child.expect_line(Duration::from_secs(60)),
        "cleaned, used [(\"proc\", 0), (\"lease\", 0), (\"ofd_lock\", 0)]"
    );
    assert!(child.wait(Duration::from_secs(30)).success());
    assert_eq!(util::objects_left(&native), Vec::<String>::new());
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "wait-for-lock" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let before = counts();
            util::say("waiting");
            let start = Instant::now();
            let guard = seg.lock_timeout(Duration::from_secs(20)).unwrap();
            assert!(start.elapsed() >= Duration::from_millis(50));
            drop(guard);
            let after = counts();
            for name in ["mapped_lock_poll", "wait_word_poll"] {
                assert!(after[name] > before[name], "{name} not taken: {after:?}");
            }
            util::say("polled");
        }
        "mapped-no-linux-only" => {
            use qshm::mapped::{MemfdOptions, ReceiveOptions};
            let path = std::path::Path::new(&args[1]);
            let seg = FileOptions::new()
                .remove_on_last_detach(false)
                .create(path, 4096)
                .unwrap();
            seg.lock().unwrap().as_mut_slice().unwrap()[0] = 1;
            let mut holder = ChildProc::spawn("hold-mapped", &[&args[1]]);
            assert_eq!(holder.expect_line(Duration::from_secs(30)), "locked");
            assert_eq!(seg.try_lock().unwrap_err().kind(), ErrorKind::WouldBlock);
            holder.kill9_and_await_exit();
            let mut guard = seg.lock_timeout(Duration::from_secs(5)).unwrap();
            assert!(guard.owner_died());
            assert_eq!(guard.as_slice()[0], 2, "the holder's write");
            guard.mark_consistent();
            drop(guard);
            // The same file again, by path and by a received descriptor: this process's one
            // open file of it serves all three, and closing them keeps the others' locks.
            let by_path = MappedSegment::open_file(path).unwrap();
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            seg.send_over(&a).unwrap();
            let received =
                MappedSegment::recv_from(&b, ReceiveOptions::new().allow_unsealed(true)).unwrap();
            drop(by_path);
            drop(received);
            assert!(
                !MappedSegment::remove_file(path).unwrap(),
                "removed while attached"
            );
            drop(seg.lock().unwrap());
            drop(seg);
            assert!(MappedSegment::remove_file(path).unwrap());
            let memfd = MemfdOptions::new()
                .create("portable-nolinux", 4096)
                .unwrap();
            memfd.lock().unwrap().as_mut_slice().unwrap()[0] = 3;
            let sealed = memfd.seal_write().unwrap();
            assert_eq!(sealed.lock().unwrap().as_slice()[0], 3);
            assert!(counts()["mapped_record_locks"] > 0);
            util::say(&format!("used {:?}", qshm::portable::linux_only_uses()));
        }
        "hold-mapped" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let mut guard = seg.lock().unwrap();
            guard.as_mut_slice().unwrap()[0] = 2;
            util::say("locked");
            std::thread::sleep(Duration::from_secs(600));
            drop(guard);
        }
        "no-linux-only" => {
            for (key, sem_key) in [(&args[1], &args[3]), (&args[2], &args[4])] {
                let key: NativeKey = key.parse().unwrap();
                let mut a = SharedMemory::with_native_key(key.clone());
                a.create(4096, AccessMode::ReadWrite).unwrap();
                a.lock().unwrap().as_mut_slice().unwrap()[0] = 1;
                // A holder in another process: waited for, then killed holding the lock.
                let mut holder = ChildProc::spawn("hold", &[&key.to_string()]);
                assert_eq!(holder.expect_line(Duration::from_secs(30)), "locked");
                assert_eq!(a.try_lock().unwrap_err().kind(), ErrorKind::WouldBlock);
                let err = a.lock_timeout(Duration::from_millis(30)).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Timeout);
                holder.kill9_and_await_exit();
                let mut guard = a.lock_timeout(Duration::from_secs(5)).unwrap();
                if key.key_type() == KeyType::PosixRealtime {
                    assert!(guard.owner_died());
                }
                guard.mark_consistent();
                drop(guard);
                a.detach().unwrap();
                let sem_key: NativeKey = sem_key.parse().unwrap();
                let mut sem =
                    SystemSemaphore::with_native_key(sem_key, 1, SemaphoreMode::Create).unwrap();
                sem.set_remove_on_drop(true);
                sem.acquire().unwrap();
                assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
                sem.release(1).unwrap();
            }
            util::say(&format!("used {:?}", qshm::portable::linux_only_uses()));
        }
        "fork-holder" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.create(4096, AccessMode::ReadWrite).unwrap();
            // This process's token, taken and cached before the fork.
            drop(shm.lock().unwrap());
            // SAFETY: this child process runs one test's role: the harness's other threads
            // are idle and hold no lock. The copy locks (a semaphore, a record lock, a
            // write to the companion's record) and leaves with _exit, holding it, running no
            // destructor or atexit handler.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let held = shm.lock().map(std::mem::forget).is_ok();
                // SAFETY: see above.
                unsafe { libc::_exit(if held { 0 } else { 3 }) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(status, 0, "the forked copy could not lock");
            let mut guard = shm.lock_timeout(Duration::from_secs(10)).unwrap();
            assert!(guard.owner_died(), "taken over without owner_died");
            guard.mark_consistent();
            drop(guard);
            shm.detach().unwrap();
            util::say("recovered");
        }
        "inspect-leftover" => {
            use qshm::inspect::{self, Leftover};
            let key = &args[1];
            let native = NativeKey::legacy(key, KeyType::SystemV);
            // The System V keys, from the key files, to check the objects' removal with.
            let ftok = |path: &str| {
                let c = std::ffi::CString::new(path).unwrap();
                // SAFETY: `c` is a NUL-terminated path; ftok only reads it.
                unsafe { libc::ftok(c.as_ptr(), i32::from(b'Q')) }
            };
            let (shm_key, sem_key) = (
                ftok(native.native_key()),
                ftok(native.lock_key().native_key()),
            );
            let listed = inspect::list().unwrap();
            let seg = listed
                .iter()
                .find(|s| {
                    s.native_key.as_ref().map(NativeKey::native_key) == Some(native.native_key())
                })
                .unwrap_or_else(|| panic!("not listed: {listed:?}"));
            assert_eq!((seg.size, seg.attach_count), (4096, 0));
            assert!(seg.orphaned, "{seg:?}");
            let info = inspect::info(&native).unwrap();
            assert_eq!(info.qt_key.as_deref(), Some(key.as_str()));
            assert_eq!(info.id, seg.id);
            assert_eq!(info.lock_state, inspect::LockState::Free);
            let leftover = inspect::leftovers()
                .unwrap()
                .into_iter()
                .find(|l| matches!(l, Leftover::Segment(s) if s.id == seg.id))
                .expect("not a leftover");
            assert!(inspect::remove_leftover(&leftover).unwrap());
            assert_eq!(
                inspect::info(&native).unwrap_err().kind(),
                ErrorKind::NotFound
            );
            // SAFETY: lookups without IPC_CREAT, which create nothing.
            let (shm, sem) = unsafe { (libc::shmget(shm_key, 0, 0), libc::semget(sem_key, 0, 0)) };
            assert_eq!((shm, sem), (-1, -1), "the segment or its lock is left");
            util::say(&format!(
                "cleaned, used {:?}",
                qshm::portable::linux_only_uses()
            ));
        }
        "hold" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            let guard = shm.lock().unwrap();
            util::say("locked");
            std::thread::sleep(Duration::from_secs(600));
            drop(guard);
        }
        other => panic!("unknown role {other}"),
    }
}

/// Every fallback the mode knows is one this suite checks (a new one must be tested here).
#[test]
fn every_fallback_is_checked() {
    let mut names: Vec<_> = counts().into_keys().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "mapped_lock_poll",
            "mapped_record_locks",
            "named_create",
            "posix_portable",
            "posix_timed_poll",
            "sysv_timed_poll",
            "wait_word_poll"
        ]
    );
}
