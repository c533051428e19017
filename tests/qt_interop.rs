//! Interop with real Qt programs: Qt 6.11 (PyQt6) and Qt 5.15 (PyQt5) peers share segments,
//! locks and semaphores with this process, byte for byte (docs/qt-ipc.md §9).
#![cfg(unix)] // Qt for Linux through PyQt; Qt for Windows: tests/windows.rs

mod util;

use std::time::{Duration, Instant};

use qshm::{
    AccessMode, ErrorKind, KeyType, NativeKey, SemaphoreMode, SharedMemory, SystemSemaphore,
};
use util::qt::{hex, QtPeer, QtVersion};
use util::{Cleanup, Watchdog};

fn watchdog(name: &'static str) -> Watchdog {
    Watchdog::new(name, Duration::from_secs(180))
}

fn qt_key(name: &str) -> (String, Cleanup) {
    let key = util::unique_key(name);
    let cleanup = Cleanup::new().qt_key(&key);
    (key, cleanup)
}

fn message(v: QtVersion) -> Vec<u8> {
    format!("hello from {v}: \u{e4}\u{f6}\u{fc} \0 binary \u{7f}").into_bytes()
}

/// (a) Qt creates and writes, Rust attaches and reads the same bytes.
#[test]
fn qt_creates_rust_reads() {
    let _w = watchdog("qt_creates_rust_reads");
    for v in QtVersion::ALL {
        let (key, _c) = qt_key("qtcreates");
        let mut qt = QtPeer::spawn(v);
        qt.cmd(&format!("key {}", hex(key.as_bytes())))
            .expect_ok("key");
        qt.cmd("create 1000 rw").expect_ok("create");
        let data = message(v);
        qt.cmd(&format!("write 0 {}", hex(&data)))
            .expect_ok("write");

        let mut shm = SharedMemory::with_key(&key);
        assert_eq!(
            shm.create(1000, AccessMode::ReadWrite).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        shm.attach(AccessMode::ReadOnly).unwrap();
        assert_eq!(
            shm.size(),
            1000,
            "{v}: size is shm_segsz, exactly what Qt asked"
        );
        assert_eq!(
            &shm.lock().unwrap().as_slice()[..data.len()],
            &data[..],
            "{v}"
        );
        let info = qt.cmd("info").expect_ok("info");
        assert_eq!(
            info.field_str(0),
            shm.native_key().native_key(),
            "{v}: native key"
        );
        if v == QtVersion::Qt6 {
            assert_eq!(
                info.field_str(1),
                shm.native_key().to_string(),
                "{v}: key text"
            );
        }
        assert_eq!(info.field_str(2), key);
    }
}

/// (b) Rust creates and writes; Qt attaches read-only and read-write, reads, writes back;
/// Rust sees Qt's bytes.
#[test]
fn rust_creates_qt_reads_and_writes() {
    let _w = watchdog("rust_creates_qt_reads_and_writes");
    for v in QtVersion::ALL {
        let (key, _c) = qt_key("rustcreates");
        let mut shm = SharedMemory::with_key(&key);
        shm.create(4096, AccessMode::ReadWrite).unwrap();
        let data = message(v);
        shm.lock().unwrap().as_mut_slice().unwrap()[..data.len()].copy_from_slice(&data);

        let mut qt = QtPeer::spawn(v);
        qt.cmd(&format!("key {}", hex(key.as_bytes())))
            .expect_ok("key");
        qt.cmd("create 4096 rw")
            .expect_err("create on an existing key");
        qt.cmd("attach ro").expect_ok("attach ro");
        assert_eq!(qt.cmd("size").expect_ok("size").field_u64(0), 4096);
        qt.cmd("lock").expect_ok("lock");
        let read = qt.cmd(&format!("read 0 {}", data.len())).expect_ok("read");
        qt.cmd("unlock").expect_ok("unlock");
        assert_eq!(
            read.field_bytes(0),
            data,
            "{v}: Qt read-only sees Rust's bytes"
        );
        qt.cmd("detach").expect_ok("detach");

        qt.cmd("attach rw").expect_ok("attach rw");
        let reply = format!("written back by {v}").into_bytes();
        qt.cmd("lock").expect_ok("lock");
        qt.cmd(&format!("write 100 {}", hex(&reply)))
            .expect_ok("write");
        qt.cmd("unlock").expect_ok("unlock");
        assert_eq!(
            &shm.lock().unwrap().as_slice()[100..100 + reply.len()],
            &reply[..],
            "{v}"
        );
        qt.cmd("detach").expect_ok("detach");
        assert!(
            util::exists(shm.native_key().native_key()),
            "Qt's detach removed a segment Rust holds"
        );
        shm.detach().unwrap();
        assert!(!util::exists(shm.native_key().native_key()));
    }
}

/// A Rust read-only attachment cannot write; Qt's read-only attachment of a Rust segment
/// faults when it writes (the mapping itself is read-only).
#[test]
fn read_only_is_enforced_by_the_os_for_qt_too() {
    let _w = watchdog("read_only_is_enforced_by_the_os_for_qt_too");
    let (key, _c) = qt_key("readonly");
    let mut shm = SharedMemory::with_key(&key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut qt = QtPeer::spawn(QtVersion::Qt6);
    qt.cmd(&format!("key {}", hex(key.as_bytes())))
        .expect_ok("key");
    qt.cmd("attach ro").expect_ok("attach ro");
    qt.send("write 0 41");
    let status = qt.wait();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(11),
        "Qt wrote through a read-only mapping: {status:?}"
    );
    assert_eq!(shm.lock().unwrap().as_slice()[0], 0);
}

/// (c) Lock exclusion both ways, shown with timestamps.
#[test]
fn lock_exclusion_both_ways() {
    let _w = watchdog("lock_exclusion_both_ways");
    for v in QtVersion::ALL {
        let (key, _c) = qt_key("lockexcl");
        let mut shm = SharedMemory::with_key(&key);
        shm.create(64, AccessMode::ReadWrite).unwrap();
        let mut qt = QtPeer::spawn(v);
        qt.cmd(&format!("key {}", hex(key.as_bytes())))
            .expect_ok("key");
        qt.cmd("attach rw").expect_ok("attach");

        // Qt holds the lock for 300 ms; Rust's lock() waits until Qt unlocks.
        qt.send("lockhold 300");
        let locked = qt.recv().expect_ok("lockhold: locked");
        let asked = Instant::now();
        let guard = shm.lock().unwrap();
        let got = Instant::now();
        let unlocked = qt.recv().expect_ok("lockhold: unlocked");
        drop(guard);
        let slack = qt.clock_error();
        assert!(asked + slack >= locked.t, "{v}: asked before Qt locked?");
        let unlocking = qt.instant(unlocked.field_u64(0));
        assert!(
            got + slack >= unlocking,
            "{v}: Rust got the lock {:?} before Qt began to unlock",
            unlocking.saturating_duration_since(got)
        );
        assert!(
            got - asked >= Duration::from_millis(200),
            "{v}: Rust did not wait: {:?}",
            got - asked
        );

        // Rust holds the lock for 300 ms; Qt's lock() waits until Rust unlocks.
        let guard = shm.lock().unwrap();
        let held_since = Instant::now();
        qt.send("lock");
        std::thread::sleep(Duration::from_millis(300));
        let released = Instant::now();
        drop(guard);
        let qt_locked = qt.recv().expect_ok("lock");
        assert!(
            qt_locked.t + slack >= released,
            "{v}: Qt got the lock {:?} before Rust unlocked",
            released.saturating_duration_since(qt_locked.t)
        );
        assert!(qt_locked.t > held_since);
        // And now Rust must wait for Qt.
        assert_eq!(
            shm.try_lock().unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "{v}"
        );
        qt.cmd("unlock").expect_ok("unlock");
        drop(shm.lock_timeout(Duration::from_secs(5)).unwrap());
    }
}

/// Qt 5, Qt 6 and Rust increment one counter under the shared lock: the total is exact.
#[test]
fn mixed_increments_are_exact() {
    let _w = watchdog("mixed_increments_are_exact");
    let (key, _c) = qt_key("mixedincr");
    let mut shm = SharedMemory::with_key(&key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut peers: Vec<QtPeer> = QtVersion::ALL.iter().map(|&v| QtPeer::spawn(v)).collect();
    for qt in &mut peers {
        qt.cmd(&format!("key {}", hex(key.as_bytes())))
            .expect_ok("key");
        qt.cmd("attach rw").expect_ok("attach");
        qt.send("incr 0 2000");
    }
    for _ in 0..2000 {
        let mut g = shm.lock().unwrap();
        let bytes = g.as_mut_slice().unwrap();
        let v = util::read_u64(bytes);
        util::write_u64(bytes, v + 1);
    }
    for qt in &mut peers {
        qt.set_timeout(Duration::from_secs(120));
        qt.recv().expect_ok("incr");
    }
    assert_eq!(util::read_u64(shm.lock().unwrap().as_slice()), 6000);
}

/// (d) The last detach, on either side, removes the segment and its key file.
#[test]
fn last_detach_on_either_side_removes() {
    let _w = watchdog("last_detach_on_either_side_removes");
    for v in QtVersion::ALL {
        // Rust creates, Rust detaches first, Qt detaches last.
        let (key, _c) = qt_key("lastdetach-qt");
        let native = NativeKey::legacy(&key, KeyType::SystemV);
        let mut shm = SharedMemory::with_key(&key);
        shm.create(128, AccessMode::ReadWrite).unwrap();
        let mut qt = QtPeer::spawn(v);
        qt.cmd(&format!("key {}", hex(key.as_bytes())))
            .expect_ok("key");
        qt.cmd("attach rw").expect_ok("attach");
        shm.detach().unwrap();
        assert!(
            util::exists(native.native_key()),
            "{v}: removed while Qt is attached"
        );
        qt.cmd("detach").expect_ok("detach");
        assert!(
            !util::exists(native.native_key()),
            "{v}: Qt's last detach left the key file"
        );
        assert_eq!(
            shm.attach(AccessMode::ReadWrite).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        qt.close();
        // Qt removes only semaphores it created, and qshm's creator must not remove one
        // while Qt still uses it: the lock semaphore outlives a Qt last detach. The clean-up
        // path removes it (and the next create or attach would simply reuse it).
        assert!(!SharedMemory::remove_orphan(&native).unwrap());
        assert!(
            !util::exists(native.lock_key().native_key()),
            "{v}: lock key file left"
        );

        // Qt creates, Qt detaches first, Rust detaches last.
        let (key, _c2) = qt_key("lastdetach-rust");
        let native = NativeKey::legacy(&key, KeyType::SystemV);
        let mut qt = QtPeer::spawn(v);
        qt.cmd(&format!("key {}", hex(key.as_bytes())))
            .expect_ok("key");
        qt.cmd("create 128 rw").expect_ok("create");
        let mut shm = SharedMemory::with_key(&key);
        shm.attach(AccessMode::ReadWrite).unwrap();
        qt.cmd("detach").expect_ok("detach");
        assert!(
            util::exists(native.native_key()),
            "{v}: Qt removed while Rust is attached"
        );
        shm.detach().unwrap();
        assert!(
            !util::exists(native.native_key()),
            "{v}: Rust's last detach left the key file"
        );
        qt.cmd("attach rw")
            .expect_err("attach after the last detach");
        qt.close();
        assert!(
            !util::exists(native.lock_key().native_key()),
            "{v}: lock key file left"
        );
    }
}

/// (e) kill -9 of a Qt process that holds the lock does not deadlock Rust.
#[test]
fn qt_killed_holding_the_lock_does_not_deadlock() {
    let _w = watchdog("qt_killed_holding_the_lock_does_not_deadlock");
    for v in QtVersion::ALL {
        let (key, _c) = qt_key("qtkilled");
        let mut qt = QtPeer::spawn(v);
        qt.cmd(&format!("key {}", hex(key.as_bytes())))
            .expect_ok("key");
        qt.cmd("create 256 rw").expect_ok("create");
        let mut shm = SharedMemory::with_key(&key);
        shm.attach(AccessMode::ReadWrite).unwrap();
        qt.cmd("lock").expect_ok("lock");
        assert_eq!(shm.try_lock().unwrap_err().kind(), ErrorKind::WouldBlock);
        qt.send("crash");
        qt.wait();
        let start = Instant::now();
        drop(
            shm.lock_timeout(Duration::from_secs(1))
                .expect("the dead holder's lock came back"),
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        // The crashed creator is gone: Rust's detach is the last and removes everything.
        shm.detach().unwrap();
        let native = NativeKey::legacy(&key, KeyType::SystemV);
        assert!(!util::exists(native.native_key()));
        assert!(
            !util::exists(native.lock_key().native_key()),
            "{v}: orphaned lock left"
        );
    }
}

/// (f) Native keys identical to Qt's, for keys of every kind.
#[test]
fn native_keys_identical_to_qt() {
    let _w = watchdog("native_keys_identical_to_qt");
    let keys = [
        "hello".to_owned(),
        "my key/ä!".to_owned(),
        "A-b_C 9".to_owned(),
        "日本".to_owned(),
        "Noël".to_owned(),
        "/abs/path".to_owned(),
        "0123456789".to_owned(),
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".to_owned(),
        "tab\there\nnewline".to_owned(),
        String::new(),
        "x".repeat(300),
        "é".repeat(100),
    ];
    for v in QtVersion::ALL {
        let mut qt = QtPeer::spawn(v);
        for key in &keys {
            let r = qt
                .cmd(&format!("keys {}", hex(key.as_bytes())))
                .expect_ok("keys");
            let ours = NativeKey::legacy(key, KeyType::SystemV);
            assert_eq!(r.field_str(0), ours.native_key(), "{v}: shm key of {key:?}");
            if v == QtVersion::Qt6 {
                let sem = SystemSemaphore::legacy_native_key(key, KeyType::SystemV);
                assert_eq!(r.field_str(1), sem.native_key(), "{v}: sem key of {key:?}");
                assert_eq!(ours.lock_key().native_key(), sem.native_key());
                let posix = NativeKey::legacy(key, KeyType::PosixRealtime);
                assert_eq!(
                    r.field_str(2),
                    posix.native_key(),
                    "{v}: posix key of {key:?}"
                );
                let safe_posix = NativeKey::platform_safe(key, KeyType::PosixRealtime);
                assert_eq!(
                    r.field_str(4),
                    safe_posix.native_key(),
                    "{v}: platformSafeKey posix of {key:?}"
                );
                assert_eq!(
                    r.field_str(5),
                    ours.to_string(),
                    "{v}: text form of {key:?}"
                );
            }
        }
        // A 300-letter key names a file too long for the file system: KeyError on both sides.
        let long = "x".repeat(300);
        let _c = Cleanup::new().qt_key(&long);
        qt.cmd(&format!("key {}", hex(long.as_bytes())))
            .expect_ok("key");
        let qt_err = qt
            .cmd("create 64 rw")
            .expect_err("create with a 300-letter key");
        assert_eq!(qt_err.code, 3, "{v}: {}", qt_err.message);
        let mut shm = SharedMemory::with_key(&long);
        let err = shm.create(64, AccessMode::ReadWrite).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyError, "{err}");
        // The empty key: KeyError on both sides.
        qt.cmd("key -").expect_ok("key");
        assert_eq!(qt.cmd("create 64 rw").expect_err("empty key").code, 3);
        let mut shm = SharedMemory::with_key("");
        assert_eq!(
            shm.create(64, AccessMode::ReadWrite).unwrap_err().kind(),
            ErrorKind::KeyError
        );
    }
}

/// Qt 6 native keys (`systemv:/path`, no Qt key): the segment and its lock share one key
/// file, and Qt and Rust still exclude each other.
#[test]
fn qt6_native_system_v_key() {
    let _w = watchdog("qt6_native_system_v_key");
    let path = format!("/tmp/{}", util::unique_key("qt6native"));
    let key = NativeKey::new(path.clone(), KeyType::SystemV);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(100, AccessMode::ReadWrite).unwrap();
    shm.lock().unwrap().as_mut_slice().unwrap()[..3].copy_from_slice(b"abc");
    let mut qt = QtPeer::spawn(QtVersion::Qt6);
    qt.cmd(&format!("nkey {}", hex(key.to_string().as_bytes())))
        .expect_ok("nkey");
    qt.cmd("attach rw").expect_ok("attach");
    assert_eq!(qt.cmd("read 0 3").expect_ok("read").field_bytes(0), b"abc");
    qt.cmd("lock").expect_ok("lock");
    assert_eq!(shm.try_lock().unwrap_err().kind(), ErrorKind::WouldBlock);
    qt.cmd("unlock").expect_ok("unlock");
    drop(shm.try_lock().unwrap());
    qt.cmd("detach").expect_ok("detach");
    shm.detach().unwrap();
    qt.close();
    assert!(!util::exists(&path), "shared key file left");
}

/// QSystemSemaphore interop: Qt and Rust release and acquire the same semaphore.
#[test]
fn system_semaphore_both_ways() {
    let _w = watchdog("system_semaphore_both_ways");
    for v in QtVersion::ALL {
        let key = util::unique_key("seminterop");
        let native = SystemSemaphore::legacy_native_key(&key, KeyType::SystemV);
        let _c = Cleanup::new().semaphore(&native);
        let mut qt = QtPeer::spawn(v);
        qt.cmd(&format!("sem {} 0 create", hex(key.as_bytes())))
            .expect_ok("sem");
        let sem = SystemSemaphore::new(&key, 0, SemaphoreMode::Open).unwrap();
        assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
        // Rust releases, Qt acquires.
        qt.send("acquire");
        std::thread::sleep(Duration::from_millis(100));
        sem.release(1).unwrap();
        qt.recv().expect_ok("acquire");
        // Qt releases, Rust acquires.
        qt.cmd("release 2").expect_ok("release");
        sem.acquire_timeout(Duration::from_secs(5)).unwrap();
        sem.acquire_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(sem.try_acquire().unwrap_err().kind(), ErrorKind::WouldBlock);
        qt.close();
    }
}
