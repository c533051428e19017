//! `attach_timeout`, `read_at_timeout`, `attach_unlocked` and `read_at_unlocked`: bounded
//! waits for a held lock, and a rescue made without the lock, on each Unix backend. The lock is held by another
//! thread through another object, as another process would hold it.
#![cfg(unix)]

mod util;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use qshm::{AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory};
use util::{Cleanup, Watchdog};

/// Runs `f` while a thread holds the lock of `key` (through its own attachment).
fn while_held(key: &NativeKey, f: impl FnOnce()) {
    let (held_tx, held_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let k = key.clone();
    let holder = std::thread::spawn(move || {
        let mut shm = SharedMemory::with_native_key(k);
        shm.attach(AccessMode::ReadWrite).unwrap();
        let guard = shm.lock().unwrap();
        held_tx.send(()).unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(60));
        drop(guard);
        shm.detach().unwrap();
    });
    held_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    f();
    done_tx.send(()).unwrap();
    holder.join().unwrap();
}

fn check(key_type: KeyType, name: &'static str) {
    let _w = Watchdog::new(name, Duration::from_secs(120));
    let key = NativeKey::legacy(&util::unique_key(name), key_type);
    let _c = Cleanup::new().segment(&key);
    let mut owner = SharedMemory::with_native_key(key.clone());
    owner.create(64, AccessMode::ReadWrite).unwrap();
    owner.lock().unwrap().as_mut_slice().unwrap()[..5].copy_from_slice(b"hello");

    while_held(&key, || {
        // The owner is attached: its read waits for the lock, boundedly.
        let mut buf = [0u8; 5];
        let start = Instant::now();
        let err = owner
            .read_at_timeout(0, &mut buf, Duration::from_millis(200))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(start.elapsed() >= Duration::from_millis(200));
        let err = owner
            .read_at_timeout(0, &mut buf, Duration::ZERO)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        // Without the lock: the bytes, copied.
        owner.read_at_unlocked(0, &mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        let err = owner.read_at_unlocked(60, &mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");

        // A rescue: attached and read without the lock, detached at once.
        let mut rescue = SharedMemory::with_native_key(key.clone());
        let start = Instant::now();
        rescue.attach_unlocked().unwrap();
        let mut b = [0u8; 5];
        rescue.read_at_unlocked(0, &mut b).unwrap();
        assert_eq!(&b, b"hello");
        rescue.detach().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );

        // A new attachment: System V's attach takes the lock (bounded here); POSIX's does
        // not need it.
        let mut other = SharedMemory::with_native_key(key.clone());
        other.set_detach_timeout(Duration::from_millis(50));
        let start = Instant::now();
        let attached = other.attach_timeout(AccessMode::ReadOnly, Duration::from_millis(200));
        if key_type == KeyType::SystemV {
            let err = attached.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
            assert!(start.elapsed() >= Duration::from_millis(200));
            assert!(!other.is_attached());
            let err = other
                .attach_timeout(AccessMode::ReadOnly, Duration::ZERO)
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        } else {
            attached.unwrap();
            let mut b = [0u8; 5];
            other.read_at_unlocked(0, &mut b).unwrap();
            assert_eq!(&b, b"hello");
            // Not the last user: its detach needs no lock.
            other.detach().unwrap();
        }
    });
    // Free again: everything succeeds at once.
    let mut other = SharedMemory::with_native_key(key.clone());
    other
        .attach_timeout(AccessMode::ReadOnly, Duration::from_secs(5))
        .unwrap();
    let mut buf = [0u8; 5];
    other
        .read_at_timeout(0, &mut buf, Duration::from_secs(5))
        .unwrap();
    assert_eq!(&buf, b"hello");
    other.detach().unwrap();
    owner.detach().unwrap();
}

#[test]
fn bounded_waits_and_unlocked_reads_system_v() {
    check(
        KeyType::SystemV,
        "bounded_waits_and_unlocked_reads_system_v",
    );
}

#[test]
fn bounded_waits_and_unlocked_reads_posix() {
    if !KeyType::PosixRealtime.is_supported() {
        return;
    }
    check(
        KeyType::PosixRealtime,
        "bounded_waits_and_unlocked_reads_posix",
    );
}
