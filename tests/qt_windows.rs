//! Interop with real Qt for Windows, Qt 6.11 (PyQt6) and Qt 5.15 (PyQt5), each in its own
//! Wine process (`tests/qt/peer.py` on the embeddable CPython that `ci/wine.sh` sets up):
//! segments both ways, lock exclusion both ways with timestamps, mixed locked increments,
//! and keys byte for byte.
#![cfg(windows)]

mod util;

use std::time::{Duration, Instant};

use qshm::{AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory};
use util::qt::{hex, QtPeer, QtVersion};
use util::{ChildProc, Watchdog};

fn watchdog(name: &'static str) -> Watchdog {
    Watchdog::new(name, Duration::from_secs(300))
}

fn message(v: QtVersion) -> Vec<u8> {
    format!("hello from {v}: \u{e4}\u{f6}\u{fc} \0 binary \u{7f}").into_bytes()
}

fn peer_with_key(v: QtVersion, key: &str) -> QtPeer {
    let mut qt = QtPeer::spawn(v);
    qt.cmd(&format!("key {}", hex(key.as_bytes())))
        .expect_ok("key");
    qt
}

/// Qt creates and writes; qshm attaches read-only and read-write, reads, writes back; Qt
/// sees it. The names and the text form are Qt's.
#[test]
fn qt_creates_qshm_reads_and_writes() {
    let _w = watchdog("qt_creates_qshm_reads_and_writes");
    for v in QtVersion::ALL {
        let key = util::unique_key("qtcreates");
        let mut qt = peer_with_key(v, &key);
        qt.cmd("create 1000 rw").expect_ok("create");
        let data = message(v);
        qt.cmd(&format!("write 0 {}", hex(&data)))
            .expect_ok("write");

        let mut shm = SharedMemory::with_key(&key);
        assert_eq!(shm.native_key().key_type(), KeyType::Windows);
        assert_eq!(
            shm.create(1000, AccessMode::ReadWrite).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        shm.attach(AccessMode::ReadOnly).unwrap();
        assert!(shm.size() >= 1000, "{v}: {}", shm.size());
        assert_eq!(
            &shm.lock().unwrap().as_slice()[..data.len()],
            &data[..],
            "{v}"
        );
        shm.detach().unwrap();

        shm.attach(AccessMode::ReadWrite).unwrap();
        let reply = format!("written back to {v}").into_bytes();
        shm.lock().unwrap().as_mut_slice().unwrap()[100..100 + reply.len()].copy_from_slice(&reply);
        qt.cmd("lock").expect_ok("lock");
        let seen = qt
            .cmd(&format!("read 100 {}", reply.len()))
            .expect_ok("read");
        qt.cmd("unlock").expect_ok("unlock");
        assert_eq!(seen.field_bytes(0), reply, "{v}");

        let info = qt.cmd("info").expect_ok("info");
        assert_eq!(info.field_str(0), shm.native_key().native_key(), "{v}");
        if v == QtVersion::Qt6 {
            assert_eq!(info.field_str(1), shm.native_key().to_string(), "{v}");
        }
        shm.detach().unwrap();
    }
}

/// qshm creates and writes; Qt cannot create over it, attaches read-only and read-write,
/// reads, writes back; qshm sees it.
#[test]
fn qshm_creates_qt_reads_and_writes() {
    let _w = watchdog("qshm_creates_qt_reads_and_writes");
    for v in QtVersion::ALL {
        let key = util::unique_key("qshmcreates");
        let mut shm = SharedMemory::with_key(&key);
        shm.create(4096, AccessMode::ReadWrite).unwrap();
        let data = message(v);
        shm.lock().unwrap().as_mut_slice().unwrap()[..data.len()].copy_from_slice(&data);

        let mut qt = peer_with_key(v, &key);
        qt.cmd("create 4096 rw")
            .expect_err("create on an existing key");
        qt.cmd("attach ro").expect_ok("attach ro");
        assert_eq!(qt.cmd("size").expect_ok("size").field_u64(0), 4096);
        qt.cmd("lock").expect_ok("lock");
        let read = qt.cmd(&format!("read 0 {}", data.len())).expect_ok("read");
        qt.cmd("unlock").expect_ok("unlock");
        assert_eq!(read.field_bytes(0), data, "{v}");
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
        shm.detach().unwrap();
    }
}

/// Lock exclusion both ways, shown with timestamps.
#[test]
fn lock_exclusion_both_ways() {
    let _w = watchdog("lock_exclusion_both_ways");
    for v in QtVersion::ALL {
        let key = util::unique_key("lockexcl");
        let mut shm = SharedMemory::with_key(&key);
        shm.create(64, AccessMode::ReadWrite).unwrap();
        let mut qt = peer_with_key(v, &key);
        qt.cmd("attach rw").expect_ok("attach");

        // Qt holds the lock for 300 ms; qshm's lock() waits until Qt unlocks.
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
            "{v}: qshm got the lock {:?} before Qt began to unlock",
            unlocking.saturating_duration_since(got)
        );
        assert!(
            got - asked >= Duration::from_millis(200),
            "{v}: {:?}",
            got - asked
        );

        // qshm holds the lock for 300 ms; Qt's lock() waits until qshm unlocks.
        let guard = shm.lock().unwrap();
        let held_since = Instant::now();
        qt.send("lock");
        std::thread::sleep(Duration::from_millis(300));
        let released = Instant::now();
        drop(guard);
        let qt_locked = qt.recv().expect_ok("lock");
        assert!(
            qt_locked.t + slack >= released,
            "{v}: Qt got the lock {:?} before qshm unlocked",
            released.saturating_duration_since(qt_locked.t)
        );
        assert!(qt_locked.t + slack > held_since);
        assert_eq!(
            shm.try_lock().unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "{v}"
        );
        qt.cmd("unlock").expect_ok("unlock");
        drop(shm.lock_timeout(Duration::from_secs(5)).unwrap());
    }
}

/// Four processes, two Qt (one of each major) and two qshm, 2 000 locked increments each:
/// the total is exact.
#[test]
fn mixed_increments_are_exact() {
    let _w = Watchdog::new("mixed_increments_are_exact", Duration::from_secs(900));
    const N: u64 = 2000;
    let key = util::unique_key("mixed");
    let mut shm = SharedMemory::with_key(&key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let text = shm.native_key().to_string();
    let mut peers: Vec<QtPeer> = QtVersion::ALL
        .into_iter()
        .map(|v| {
            let mut qt = peer_with_key(v, &key);
            qt.cmd("attach rw").expect_ok("attach");
            qt.set_timeout(Duration::from_secs(600));
            qt
        })
        .collect();
    let mut children: Vec<ChildProc> = (0..2)
        .map(|_| ChildProc::spawn("increment", &[&text, &N.to_string()]))
        .collect();
    for qt in &mut peers {
        qt.send(&format!("incr 0 {N}"));
    }
    for qt in &mut peers {
        qt.recv().expect_ok("incr");
    }
    for c in &mut children {
        assert!(c.wait(Duration::from_secs(600)).success());
    }
    assert_eq!(util::read_u64(shm.lock().unwrap().as_slice()), 4 * N);
}

/// Keys as Qt derives them on Windows: legacy names, lock names and text forms, and the
/// platform-safe `shm_` names, for non-ASCII, punctuation, empty and 400-letter keys.
#[test]
fn keys_are_qts() {
    let _w = watchdog("keys_are_qts");
    let long = "k".repeat(400);
    let keys = [
        "hello",
        "Grüße, Jürgen! ÄÖÜ ß €",
        "日本語のキー",
        "a/b\\c:d*e?f\"g<h>i|j %20 \t tab",
        "",
        long.as_str(),
    ];
    for v in QtVersion::ALL {
        let mut qt = QtPeer::spawn(v);
        for k in keys {
            let r = qt.cmd(&format!("keys {}", hex(k.as_bytes())));
            let r = r.expect_ok("keys");
            let ours = NativeKey::legacy(k, KeyType::Windows);
            assert_eq!(r.field_str(0), ours.native_key(), "{v} {k:?}: segment");
            if v == QtVersion::Qt6 {
                assert_eq!(
                    r.field_str(1),
                    ours.lock_key().native_key(),
                    "{v} {k:?}: lock"
                );
                if !k.is_empty() {
                    assert_eq!(r.field_str(5), ours.to_string(), "{v} {k:?}: text");
                }
                let safe = NativeKey::platform_safe(k, KeyType::Windows);
                assert_eq!(
                    r.field_str(6),
                    safe.native_key(),
                    "{v} {k:?}: platform-safe"
                );
                if !k.is_empty() {
                    assert_eq!(r.field_str(7), safe.to_string(), "{v} {k:?}: safe text");
                }
            }
        }
    }
}

/// A Qt holder that dies holding the lock leaves it taken, as in Qt (Windows gives a
/// semaphore's unit back to nobody): qshm's lock_timeout says Timeout instead of hanging.
#[test]
fn qt_holder_that_died_is_a_timeout_not_a_hang() {
    let _w = watchdog("qt_holder_that_died_is_a_timeout_not_a_hang");
    let key = util::unique_key("qtdied");
    let mut shm = SharedMemory::with_key(&key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut qt = peer_with_key(QtVersion::Qt6, &key);
    qt.cmd("attach rw").expect_ok("attach");
    qt.cmd("lock").expect_ok("lock");
    qt.kill();
    let err = shm.lock_timeout(Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "increment" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            for _ in 0..args[2].parse::<u64>().unwrap() {
                let mut guard = shm.lock().unwrap();
                let bytes = guard.as_mut_slice().unwrap();
                let v = util::read_u64(bytes);
                util::write_u64(bytes, v + 1);
            }
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
