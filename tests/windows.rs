//! The Windows backend across real processes (run under Wine by the test command): a holder
//! terminated 50 times in a row, exclusion between processes, the error kinds, exact sizes,
//! and segments that go with their last handle.
#![cfg(windows)]

mod util;

use std::time::{Duration, Instant};

use qshm::{AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory, SystemSemaphore};
use util::{ChildProc, Watchdog};

const T: Duration = Duration::from_secs(60);

fn key(name: &str) -> NativeKey {
    NativeKey::legacy(&util::unique_key(name), KeyType::Windows)
}

/// A qshm holder terminated (`TerminateProcess`) while it holds the lock, 50 times: each
/// time the next locker gets the lock within 1 s and is told the owner died. (Qt's lock
/// stays taken for ever behind a dead holder.)
#[test]
fn terminated_holder_50_times() {
    let _w = Watchdog::new("terminated_holder_50_times", Duration::from_secs(900));
    let key = key("terminated");
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let text = key.to_string();
    let mut slowest = Duration::ZERO;
    for round in 0..50u64 {
        let mut child = ChildProc::spawn("hold_lock", &[&text]);
        assert_eq!(child.expect_line(T), "locked", "round {round}");
        assert_eq!(
            shm.try_lock().unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "round {round}"
        );
        child.kill9(); // TerminateProcess
        let start = Instant::now();
        let mut guard = shm
            .lock_timeout(Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("round {round}: no lock within 1 s: {e}"));
        slowest = slowest.max(start.elapsed());
        assert!(guard.owner_died(), "round {round}");
        let bytes = guard.as_mut_slice().unwrap();
        assert_eq!(util::read_u64(bytes), round + 1, "round {round}");
        guard.mark_consistent();
        drop(guard);
        assert!(!shm.lock().unwrap().owner_died(), "round {round}");
    }
    eprintln!("Windows: slowest recovery {slowest:?} over 50 terminations");
}

/// A holder that dies before this process ever locked is reported too: create and attach
/// take no lock on Windows, but open it, so that its owner mutex outlives the holder.
#[test]
fn holder_dying_before_our_first_lock_is_reported() {
    let _w = Watchdog::new(
        "holder_dying_before_our_first_lock",
        Duration::from_secs(120),
    );
    let key = key("diedfirst");
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut attached = SharedMemory::with_native_key(key.clone());
    attached.attach(AccessMode::ReadOnly).unwrap();
    let mut child = ChildProc::spawn("hold_lock", &[&key.to_string()]);
    assert_eq!(child.expect_line(T), "locked");
    child.kill9(); // TerminateProcess
    let guard = shm.lock_timeout(Duration::from_secs(1)).unwrap();
    assert!(guard.owner_died());
    assert_eq!(util::read_u64(guard.as_slice()), 1);
    drop(guard);
    drop(attached.lock_timeout(Duration::from_secs(1)).unwrap());
}

/// Processes exclude each other: 3 children and this process, 500 locked increments each,
/// end exact.
#[test]
fn processes_exclude_each_other() {
    let _w = Watchdog::new("processes_exclude_each_other", Duration::from_secs(600));
    let key = key("exclude");
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let text = key.to_string();
    let mut children: Vec<_> = (0..3)
        .map(|_| ChildProc::spawn("increment", &[&text, "500"]))
        .collect();
    for _ in 0..500 {
        let mut guard = shm.lock().unwrap();
        let bytes = guard.as_mut_slice().unwrap();
        let v = util::read_u64(bytes);
        util::write_u64(bytes, v + 1);
    }
    for c in &mut children {
        assert!(c.wait(Duration::from_secs(500)).success());
    }
    assert_eq!(util::read_u64(shm.lock().unwrap().as_slice()), 2000);
}

/// The error kinds of the list, and the sizes.
#[test]
fn errors_and_sizes() {
    let _w = Watchdog::new("errors_and_sizes", T);
    let mut empty = SharedMemory::with_native_key(NativeKey::new("", KeyType::Windows));
    assert_eq!(
        empty.create(64, AccessMode::ReadWrite).unwrap_err().kind(),
        ErrorKind::KeyError
    );
    let k = key("errors");
    let mut shm = SharedMemory::with_native_key(k.clone());
    assert_eq!(
        shm.attach(AccessMode::ReadOnly).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        shm.create(0, AccessMode::ReadWrite).unwrap_err().kind(),
        ErrorKind::InvalidSize
    );
    let huge = shm
        .create(1 << 60, AccessMode::ReadWrite)
        .unwrap_err()
        .kind();
    assert!(
        matches!(huge, ErrorKind::OutOfResources | ErrorKind::InvalidSize),
        "{huge:?}"
    );
    // The size asked for, not the page-rounded one Qt reports.
    shm.create(100, AccessMode::ReadWrite).unwrap();
    assert_eq!(shm.size(), 100);
    let mut second = SharedMemory::with_native_key(k.clone());
    assert_eq!(
        second
            .create(100, AccessMode::ReadWrite)
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    // A failed create keeps nothing of the other's alive (Qt's does): see below.
    let mut reader = SharedMemory::with_native_key(k.clone());
    reader.attach(AccessMode::ReadOnly).unwrap();
    eprintln!("size seen by an attacher: {}", reader.size());
    assert!(reader.size() >= 100);
    let mut guard = reader.lock().unwrap();
    assert_eq!(
        guard.as_mut_slice().unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    drop(guard);
    reader.detach().unwrap();
    shm.detach().unwrap();
    // Gone with its last handle (the failed second create holds none).
    let mut again = SharedMemory::with_native_key(k);
    assert_eq!(
        again.attach(AccessMode::ReadOnly).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// A segment whose every user was terminated is gone: nothing to clean up on Windows.
#[test]
fn nothing_left_after_terminated_users() {
    let _w = Watchdog::new("nothing_left_after_terminated_users", T);
    let key = key("leftover");
    let text = key.to_string();
    let mut creator = ChildProc::spawn("create_and_hold", &[&text]);
    assert_eq!(creator.expect_line(T), "ready");
    assert_eq!(util::objects_left(&key), vec![key.native_key().to_owned()]);
    creator.kill9();
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
    assert!(!SharedMemory::remove_orphan(&key).unwrap());
    assert_eq!(
        SharedMemory::force_remove(&key).unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}

/// Qt's `QSystemSemaphore` semantics: counting, try and timeout.
#[test]
fn system_semaphore_counts() {
    let _w = Watchdog::new("system_semaphore_counts", T);
    let k = NativeKey::legacy(&util::unique_key("sem"), KeyType::Windows).lock_key();
    let sem = SystemSemaphore::with_native_key(k.clone(), 2, qshm::SemaphoreMode::Create).unwrap();
    sem.acquire().unwrap();
    sem.try_acquire().unwrap();
    assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
    let start = Instant::now();
    assert_eq!(
        sem.acquire_timeout(Duration::from_millis(100))
            .unwrap_err()
            .kind(),
        ErrorKind::Timeout
    );
    assert!(start.elapsed() >= Duration::from_millis(100));
    sem.release(2).unwrap();
    assert_eq!(
        sem.release(u32::MAX).unwrap_err().kind(),
        ErrorKind::OutOfResources
    );
    sem.acquire().unwrap();
    sem.acquire().unwrap();
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    let key: NativeKey = args[1].parse().unwrap();
    let mut shm = SharedMemory::with_native_key(key);
    match args[0].as_str() {
        "hold_lock" => {
            shm.attach(AccessMode::ReadWrite).unwrap();
            let mut guard = shm.lock().unwrap();
            let bytes = guard.as_mut_slice().unwrap();
            let v = util::read_u64(bytes);
            util::write_u64(bytes, v + 1);
            util::say("locked");
            std::thread::sleep(Duration::from_secs(600));
        }
        "increment" => {
            shm.attach(AccessMode::ReadWrite).unwrap();
            for _ in 0..args[2].parse::<u32>().unwrap() {
                let mut guard = shm.lock().unwrap();
                let bytes = guard.as_mut_slice().unwrap();
                let v = util::read_u64(bytes);
                util::write_u64(bytes, v + 1);
            }
        }
        "create_and_hold" => {
            shm.create(4096, AccessMode::ReadWrite).unwrap();
            util::say("ready");
            std::thread::sleep(Duration::from_secs(600));
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
