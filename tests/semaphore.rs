//! tst_qsystemsemaphore, ported, with real child processes; plus the fixes of
//! docs/qt-ipc.md §8.12.
#![cfg(unix)] // System V and POSIX semaphores; Windows: tests/windows.rs

mod util;

use std::time::{Duration, Instant};

use qshm::{ErrorKind, KeyType, NativeKey, SemaphoreMode, SystemSemaphore};
use util::{ChildProc, Cleanup, Watchdog};

fn setup(name: &'static str) -> (Watchdog, String, Cleanup) {
    let key = util::unique_key(name);
    let native = SystemSemaphore::legacy_native_key(&key, KeyType::SystemV);
    (
        Watchdog::new(name, Duration::from_secs(120)),
        key,
        Cleanup::new().semaphore(&native),
    )
}

#[test]
fn native_key() {
    let (_w, key, _c) = setup("sem-nativekey");
    let native = NativeKey::platform_safe(&key, KeyType::SystemV);
    let _c2 = Cleanup::new().semaphore(&native);
    let sem = SystemSemaphore::with_native_key(native.clone(), 0, SemaphoreMode::Open).unwrap();
    assert_eq!(sem.native_key(), &native);
    assert_eq!(sem.key(), None);
    assert_eq!(sem.error(), None);
    assert_eq!(sem.error_string(), "");
    // Another type of the same name is another semaphore.
    let other = NativeKey::platform_safe(&key, KeyType::from_raw(0x54).unwrap());
    let _c3 = Cleanup::new().semaphore(&other);
    let sem2 = SystemSemaphore::with_native_key(other, 1, SemaphoreMode::Open).unwrap();
    sem2.try_acquire().unwrap();
    assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn legacy_key() {
    let (_w, key, _c) = setup("sem-legacykey");
    let sem = SystemSemaphore::new(&key, 0, SemaphoreMode::Open).unwrap();
    assert_eq!(sem.key(), Some(key.as_str()));
    assert!(sem.native_key().native_key().contains("/qipc_systemsem_"));
    assert_eq!(
        sem.native_key(),
        &SystemSemaphore::legacy_native_key(&key, KeyType::SystemV)
    );
}

#[test]
fn empty_key_is_a_key_error() {
    let err = SystemSemaphore::new("", 0, SemaphoreMode::Open).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyError);
    let err = SystemSemaphore::new("x", 40_000, SemaphoreMode::Create).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfResources);
}

#[test]
fn basic_acquire() {
    let (_w, key, _c) = setup("sem-basicacquire");
    let sem = SystemSemaphore::new(&key, 1, SemaphoreMode::Create).unwrap();
    sem.acquire().unwrap();
    assert_eq!(sem.error(), None);
    sem.release(1).unwrap();
    assert_eq!(sem.error(), None);
}

#[test]
fn complex_acquire() {
    let (_w, key, _c) = setup("sem-complexacquire");
    let sem = SystemSemaphore::new(&key, 2, SemaphoreMode::Create).unwrap();
    sem.acquire().unwrap();
    sem.release(1).unwrap();
    sem.acquire().unwrap();
    sem.release(1).unwrap();
    sem.acquire().unwrap();
    sem.acquire().unwrap();
    assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
    assert_eq!(sem.error(), Some(ErrorKind::WouldBlock));
    sem.release(1).unwrap();
    sem.release(1).unwrap();
    assert_eq!(sem.error(), None);
}

#[test]
fn release() {
    let (_w, key, _c) = setup("sem-release");
    let sem = SystemSemaphore::new(&key, 0, SemaphoreMode::Create).unwrap();
    sem.release(1).unwrap();
    sem.release(1).unwrap();
    sem.acquire().unwrap();
    sem.acquire().unwrap();
    sem.release(1).unwrap();
    sem.release(1).unwrap();
    sem.release(0).unwrap();
    sem.acquire().unwrap();
    sem.acquire().unwrap();
    assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn two_semaphores() {
    let (_w, key, _c) = setup("sem-twosemaphores");
    let sem1 = SystemSemaphore::new(&key, 1, SemaphoreMode::Create).unwrap();
    let sem2 = SystemSemaphore::new(&key, 1, SemaphoreMode::Open).unwrap();
    sem1.acquire().unwrap();
    sem2.release(1).unwrap();
    sem1.acquire().unwrap();
    sem2.release(1).unwrap();
    assert_eq!(sem1.error(), None);
    assert_eq!(sem2.error(), None);
}

#[test]
fn create_resets_open_does_not() {
    let (_w, key, _c) = setup("sem-createresets");
    let a = SystemSemaphore::new(&key, 3, SemaphoreMode::Create).unwrap();
    let _b = SystemSemaphore::new(&key, 0, SemaphoreMode::Open).unwrap();
    for _ in 0..3 {
        a.try_acquire().unwrap();
    }
    assert!(a.try_acquire().is_err());
    let _c2 = SystemSemaphore::new(&key, 1, SemaphoreMode::Create).unwrap();
    a.try_acquire().unwrap();
}

#[test]
fn timeout() {
    let (_w, key, _c) = setup("sem-timeout");
    let sem = SystemSemaphore::new(&key, 0, SemaphoreMode::Create).unwrap();
    let start = Instant::now();
    assert_eq!(
        sem.acquire_timeout(Duration::from_millis(100))
            .unwrap_err()
            .kind(),
        ErrorKind::Timeout
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_secs(1),
        "{waited:?}"
    );
}

#[test]
fn basic_processes() {
    let (_w, key, _c) = setup("sem-basicprocesses");
    let _sem = SystemSemaphore::new(&key, 0, SemaphoreMode::Create).unwrap();
    let mut acquirer = ChildProc::spawn("acquire", &[&key]);
    assert_eq!(acquirer.expect_line(Duration::from_secs(30)), "acquiring");
    std::thread::sleep(Duration::from_millis(500));
    assert!(acquirer.expect_no_exit(), "the acquirer did not block");
    acquirer.kill9();
    let mut releaser = ChildProc::spawn("release", &[&key, "1"]);
    assert!(releaser.wait(Duration::from_secs(30)).success());
}

fn processes(helpers: usize) {
    let (_w, key, _c) = setup("sem-processes");
    let _sem = SystemSemaphore::new(&key, 1, SemaphoreMode::Create).unwrap();
    let mut children: Vec<_> = (0..helpers)
        .map(|_| ChildProc::spawn("acquire_release", &[&key, "5"]))
        .collect();
    for c in &mut children {
        assert!(c.wait(Duration::from_secs(60)).success());
    }
}

#[test]
fn processes_1() {
    processes(1);
}

#[test]
fn processes_3() {
    processes(3);
}

#[test]
fn processes_10() {
    processes(10);
}

/// Qt's `undo` test, on the guard qshm offers for it: a holder that exits gives its unit back.
#[test]
fn undo_with_guard() {
    let (_w, key, _c) = setup("sem-undo");
    let sem = SystemSemaphore::new(&key, 1, SemaphoreMode::Create).unwrap();
    let mut child = ChildProc::spawn("lock_exit", &[&key]);
    assert!(child.wait(Duration::from_secs(30)).success());
    let mut second = ChildProc::spawn("lock_exit", &[&key]);
    assert!(second.wait(Duration::from_secs(30)).success());
    sem.try_acquire().unwrap();
}

/// Qt's `initialValue` test, on the guard.
#[test]
fn initial_value() {
    let (_w, key, _c) = setup("sem-initialvalue");
    let _sem = SystemSemaphore::new(&key, 1, SemaphoreMode::Create).unwrap();
    let mut child = ChildProc::spawn("lock_exit", &[&key]);
    assert!(child.wait(Duration::from_secs(30)).success());
    let mut two = ChildProc::spawn("acquire_n", &[&key, "2"]);
    assert_eq!(two.expect_line(Duration::from_secs(30)), "acquired 1");
    std::thread::sleep(Duration::from_millis(300));
    assert!(two.expect_no_exit(), "acquired 2 units of 1");
    two.kill9();
    let mut releaser = ChildProc::spawn("release", &[&key, "1"]);
    assert!(releaser.wait(Duration::from_secs(30)).success());
}

/// docs/qt-ipc.md §8.12: a release by a process that then exits stays released (Qt undoes it).
#[test]
fn release_by_exiting_process_is_kept() {
    let (_w, key, _c) = setup("sem-releasekept");
    let sem = SystemSemaphore::new(&key, 0, SemaphoreMode::Create).unwrap();
    let mut releaser = ChildProc::spawn("release", &[&key, "3"]);
    assert!(releaser.wait(Duration::from_secs(30)).success());
    for _ in 0..3 {
        sem.acquire_timeout(Duration::from_secs(1)).unwrap();
    }
    assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
}

/// docs/qt-ipc.md §8.12: a release-only producer does not fail after 32 767 releases.
#[test]
fn release_only_producer_passes_32767() {
    let (_w, key, _c) = setup("sem-producer");
    let sem = SystemSemaphore::new(&key, 0, SemaphoreMode::Create).unwrap();
    let mut consumer = ChildProc::spawn("acquire_n", &[&key, "40000", "10000"]);
    for i in 0..40_000 {
        sem.release(1)
            .unwrap_or_else(|e| panic!("release number {i}: {e}"));
        // The value itself may not pass SEMVMX either: let the consumer catch up every
        // 10 000 (a slow one, under an emulator, would otherwise leave 32 767 pending).
        if (i + 1) % 10_000 == 0 {
            let done = format!("acquired {}", i + 1);
            assert_eq!(consumer.expect_line(Duration::from_secs(60)), done);
        }
    }
    assert!(consumer.wait(Duration::from_secs(60)).success());
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    if args[0] == "lock_and_hang" {
        let key: NativeKey = args[1].parse().unwrap();
        let sem = SystemSemaphore::with_native_key(key, 0, SemaphoreMode::Open).unwrap();
        let _guard = sem.lock().unwrap();
        util::say("locked");
        std::thread::sleep(Duration::from_secs(600));
    }
    if args[0] == "creator_in_window" {
        // A qshm creator between `semget(IPC_CREAT|IPC_EXCL)` and `SETVAL`, for good.
        let key: NativeKey = args[1].parse().unwrap();
        let _creating = leave_unset(&key, true);
        util::say("created");
        std::thread::sleep(Duration::from_secs(600));
    }
    if args[0] == "posix_release" {
        let key: NativeKey = args[1].parse().unwrap();
        let sem = SystemSemaphore::with_native_key(key, 0, SemaphoreMode::Open).unwrap();
        sem.release(args[2].parse().unwrap()).unwrap();
        std::process::exit(0);
    }
    let key = &args[1];
    let sem = SystemSemaphore::new(key, 0, SemaphoreMode::Open).expect("open");
    match args[0].as_str() {
        "acquire" => {
            util::say("acquiring");
            sem.acquire().unwrap();
            util::say("acquired");
        }
        "acquire_n" => {
            // acquire_n KEY N [EVERY]: says "acquired 1", or with EVERY "acquired I" every
            // EVERY units.
            let n: u32 = args[2].parse().unwrap();
            let every: Option<u32> = args.get(3).map(|e| e.parse().unwrap());
            for i in 1..=n {
                sem.acquire().unwrap();
                if every.map_or(i == 1, |every| i % every == 0) {
                    util::say(&format!("acquired {i}"));
                }
            }
        }
        "release" => sem.release(args[2].parse().unwrap()).unwrap(),
        "acquire_release" => {
            for _ in 0..args[2].parse::<u32>().unwrap() {
                sem.acquire().unwrap();
                std::thread::sleep(Duration::from_millis(1));
                sem.release(1).unwrap();
            }
        }
        "lock_exit" => {
            let guard = sem.lock().unwrap();
            std::mem::forget(guard);
            std::process::exit(0); // dies holding the unit
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

/// `SystemSemaphore` on POSIX keys: counting, timeouts, other processes.
#[test]
fn posix_semaphore_counts_across_processes() {
    let _w = Watchdog::new("posix_semaphore", Duration::from_secs(120));
    let key = NativeKey::platform_safe(&util::unique_key("possem"), KeyType::PosixRealtime);
    let _c = Cleanup::new().semaphore(&key);
    let sem = SystemSemaphore::with_native_key(key.clone(), 0, SemaphoreMode::Create).unwrap();
    assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
    let start = Instant::now();
    assert_eq!(
        sem.acquire_timeout(Duration::from_millis(100))
            .unwrap_err()
            .kind(),
        ErrorKind::Timeout
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    sem.release(3).unwrap();
    for _ in 0..3 {
        sem.try_acquire().unwrap();
    }
    // A release by a process that then exits stays (POSIX semaphores never undo).
    let mut releaser = ChildProc::spawn("posix_release", &[&key.to_string(), "2"]);
    assert!(releaser.wait(Duration::from_secs(30)).success());
    sem.try_acquire().unwrap();
    sem.try_acquire().unwrap();
}

/// `SystemSemaphore` on a POSIX key shared with Qt 6's `QSystemSemaphore`.
#[test]
#[cfg_attr(
    not(all(target_arch = "x86_64", qshm_libc = "glibc64")),
    ignore = "Qt interop runs on x86_64 glibc only: the PyQt peers are x86_64 builds"
)]
fn posix_semaphore_counts_with_qt() {
    let _w = Watchdog::new("posix_semaphore_with_qt", Duration::from_secs(120));
    let key = NativeKey::platform_safe(&util::unique_key("possemqt"), KeyType::PosixRealtime);
    let _c = Cleanup::new().semaphore(&key);
    let sem = SystemSemaphore::with_native_key(key.clone(), 0, SemaphoreMode::Create).unwrap();
    let mut qt = util::qt::QtPeer::spawn(util::qt::QtVersion::Qt6);
    let text = util::qt::hex(key.to_string().as_bytes());
    qt.cmd(&format!("nsem {text} 0 open")).expect_ok("nsem");
    qt.cmd("release 1").expect_ok("release");
    sem.acquire_timeout(Duration::from_secs(5)).unwrap();
    qt.send("acquire");
    std::thread::sleep(Duration::from_millis(50));
    sem.release(1).unwrap();
    qt.recv().expect_ok("acquire");
    qt.close();
}

/// The crash-safe `lock`/`try_lock`/`lock_timeout` of `SystemSemaphore`, on both backends: a
/// holder killed with SIGKILL gives its unit back (and, on POSIX, the next holder is told).
#[test]
fn lock_is_crash_safe_on_both_backends() {
    let _w = Watchdog::new(
        "lock_is_crash_safe_on_both_backends",
        Duration::from_secs(120),
    );
    for t in [KeyType::SystemV, KeyType::PosixRealtime] {
        let key = SystemSemaphore::legacy_native_key(&util::unique_key("semlock"), t);
        let _c = Cleanup::new().semaphore(&key);
        let sem = SystemSemaphore::with_native_key(key.clone(), 1, SemaphoreMode::Create).unwrap();
        let mut holder = ChildProc::spawn("lock_and_hang", &[&key.to_string()]);
        assert_eq!(holder.expect_line(Duration::from_secs(30)), "locked");
        assert_eq!(
            sem.try_lock().unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "{t:?}"
        );
        let start = Instant::now();
        assert_eq!(
            sem.lock_timeout(Duration::from_millis(100))
                .unwrap_err()
                .kind(),
            ErrorKind::Timeout
        );
        assert!(start.elapsed() >= Duration::from_millis(100));
        holder.kill9();
        let mut guard = sem
            .lock_timeout(Duration::from_secs(1))
            .expect("the dead holder's unit");
        assert_eq!(guard.owner_died(), t == KeyType::PosixRealtime, "{t:?}");
        guard.mark_consistent();
        drop(guard);
        assert!(!sem.try_lock().unwrap().owner_died(), "{t:?}: told twice");
    }
}

/// What a System V creator leaves between `semget(IPC_CREAT|IPC_EXCL)` and `SETVAL`: the
/// key file and a semaphore at 0 that nobody has set or used. With `lock`, while holding
/// the key file's creation lock (`flock`) as a qshm creator does (returned: held until
/// dropped); without, as after the kernel dropped a dead creator's.
fn leave_unset(key: &NativeKey, lock: bool) -> std::fs::File {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::OpenOptionsExt;
    let path = key.native_key();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
        .unwrap();
    if lock {
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive).unwrap();
    }
    let c = std::ffi::CString::new(std::ffi::OsStr::new(path).as_bytes()).unwrap();
    // SAFETY: `c` is a NUL-terminated path; semget takes plain integers.
    let id = unsafe {
        let sysv_key = libc::ftok(c.as_ptr(), i32::from(b'Q'));
        assert_ne!(sysv_key, -1);
        libc::semget(sysv_key, 1, 0o600 | libc::IPC_CREAT | libc::IPC_EXCL)
    };
    assert_ne!(id, -1, "semget: {}", std::io::Error::last_os_error());
    file
}

/// A creator killed between `semget` and `SETVAL` leaves a semaphore at 0 that nobody
/// holds: Qt's `acquire` (and qshm's before) waits on it for ever. The next opener, finding
/// the creation lock free, sets it as the creator would have.
#[test]
fn creator_killed_before_setval_is_finished() {
    let (_w, key, _c) = setup("sem-unset-dead");
    let native = SystemSemaphore::legacy_native_key(&key, KeyType::SystemV);
    drop(leave_unset(&native, false));
    let start = Instant::now();
    let sem = SystemSemaphore::with_native_key(native.clone(), 1, SemaphoreMode::Open).unwrap();
    sem.acquire_timeout(Duration::from_secs(5))
        .expect("the unset semaphore was not set");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    // Set to 1, as the creator would have: one unit, not more.
    assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
    sem.release(1).unwrap();
}

/// The same, for a shared memory segment's lock: `create` and `lock` go through.
#[test]
fn segment_lock_whose_creator_died_before_setval() {
    let key = util::unique_key("sem-unset-segment");
    let _w = Watchdog::new(
        "segment_lock_whose_creator_died_before_setval",
        Duration::from_secs(60),
    );
    let native = NativeKey::legacy(&key, KeyType::SystemV);
    let _c = Cleanup::new().segment(&native);
    let mut shm = qshm::SharedMemory::with_native_key(native.clone());
    drop(leave_unset(&native.lock_key(), false));
    let start = Instant::now();
    shm.create(64, qshm::AccessMode::ReadWrite)
        .expect("create over an unset lock");
    drop(shm.lock_timeout(Duration::from_secs(5)).expect("lock"));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    shm.detach().unwrap();
}

/// A creator still between `semget` and `SETVAL` (holding the creation lock) is waited
/// for, however long: the semaphore is not set under it. Once it is dead, it is.
#[test]
fn live_creator_before_setval_is_waited_for() {
    let (_w, key, _c) = setup("sem-unset-live");
    let native = SystemSemaphore::legacy_native_key(&key, KeyType::SystemV);
    let mut creator = ChildProc::spawn("creator_in_window", &[&native.to_string()]);
    assert_eq!(creator.expect_line(Duration::from_secs(30)), "created");
    let (tx, rx) = std::sync::mpsc::channel();
    let opener = {
        let native = native.clone();
        std::thread::spawn(move || {
            let sem = SystemSemaphore::with_native_key(native, 1, SemaphoreMode::Open)
                .and_then(|sem| sem.try_acquire().map(|()| sem));
            let _ = tx.send(sem.map(|sem| sem.release(1)));
        })
    };
    // Well past the grace that creators without the lock get (250 ms).
    assert!(
        rx.recv_timeout(Duration::from_millis(1000)).is_err(),
        "the semaphore was set under a live creator"
    );
    creator.kill9();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("no opener after the creator died")
        .expect("open or acquire")
        .unwrap();
    opener.join().unwrap();
}

/// Counts the units a semaphore has now, by taking them all (then gives them back).
fn units(sem: &SystemSemaphore) -> u32 {
    let mut n = 0;
    while sem.try_acquire().is_ok() {
        n += 1;
    }
    if n > 0 {
        sem.release(n).unwrap();
    }
    n
}

/// `release(n)` is all or nothing: past the maximum it is refused with nothing released
/// (System V used to release 32 767 of 40 000 and report a failure).
#[test]
fn release_past_the_maximum_releases_nothing_system_v() {
    let (_w, key, _c) = setup("sem-release-max");
    let sem = SystemSemaphore::new(&key, 0, SemaphoreMode::Create).unwrap();
    let err = sem.release(40_000).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfResources, "{err}");
    assert_eq!(units(&sem), 0);
    sem.release(5).unwrap();
    let err = sem.release(32_763).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfResources, "{err}");
    assert_eq!(units(&sem), 5);
    sem.release(32_762).unwrap();
    assert_eq!(units(&sem), 32_767);
}

/// The same on POSIX, where posts are one at a time: a release that cannot fit is refused
/// before any post, so a consumer running meanwhile gets nothing (it used to take millions
/// of units during a 14 s loop of posts that were then reported failed).
#[test]
fn release_past_the_maximum_releases_nothing_posix() {
    let _w = Watchdog::new("release_past_the_maximum_posix", Duration::from_secs(120));
    let key = NativeKey::platform_safe(&util::unique_key("possemmax"), KeyType::PosixRealtime);
    let _c = Cleanup::new().semaphore(&key);
    let sem = SystemSemaphore::with_native_key(key.clone(), 5, SemaphoreMode::Create).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let taken = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let sem =
                SystemSemaphore::with_native_key(key.clone(), 0, SemaphoreMode::Open).unwrap();
            let mut taken = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if sem.try_acquire().is_ok() {
                    taken += 1;
                }
            }
            taken
        });
        let err = sem.release(u32::MAX).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfResources, "{err}");
        let err = sem.release(i32::MAX as u32 + 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfResources, "{err}");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        consumer.join().unwrap()
    });
    assert!(taken <= 5, "the consumer took {taken} units");
    assert_eq!(u64::from(units(&sem)) + taken, 5);
}

/// A standalone System V `QSystemSemaphore` whose producer exited, its tokens waiting for a
/// consumer: `qshm clean` used to take it for a segment's leftover lock (the names are the
/// same) and remove it, tokens and all. It is not a leftover, nor is another program's
/// semaphore of Qt's project id.
#[test]
fn clean_leaves_standalone_semaphores_alone() {
    let (_w, key, _c) = setup("sem-standalone");
    // The producer: makes the semaphore, leaves 5 tokens, exits.
    let mut producer = ChildProc::spawn("release", &[&key, "5"]);
    assert!(producer.wait(Duration::from_secs(30)).success());
    let native = SystemSemaphore::legacy_native_key(&key, KeyType::SystemV);
    let leftovers = qshm::inspect::leftovers().unwrap();
    let named =
        |l: &qshm::inspect::Leftover| l.names().iter().any(|n| n.contains(native.native_key()));
    assert!(
        !leftovers.iter().any(named),
        "a standalone semaphore is listed for removal: {leftovers:?}"
    );
    // The consumer still gets its tokens.
    let sem = SystemSemaphore::with_native_key(native, 0, SemaphoreMode::Open).unwrap();
    for _ in 0..5 {
        sem.try_acquire().unwrap();
    }
}
