//! Exclusion under load: threads sharing one object through an `Arc`, threads with their
//! own objects, and separate processes, all incrementing one counter under `lock()`.

mod util;

use std::sync::Arc;
use std::time::Duration;

use qshm::{AccessMode, SharedMemory};
use util::{ChildProc, Cleanup, Watchdog};

fn increment(shm: &SharedMemory, n: u64) {
    for _ in 0..n {
        let mut guard = shm.lock().unwrap();
        let bytes = guard.as_mut_slice().unwrap();
        let v = util::read_u64(bytes);
        util::write_u64(bytes, v + 1);
    }
}

#[test]
fn eight_threads_share_one_object() {
    let _w = Watchdog::new("eight_threads_share_one_object", Duration::from_secs(120));
    let key = util::unique_key("threads-arc");
    let _c = Cleanup::new().qt_key(&key);
    let mut shm = SharedMemory::with_key(&key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let shm = Arc::new(shm);
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let shm = Arc::clone(&shm);
            std::thread::spawn(move || increment(&shm, 10_000))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(util::read_u64(shm.lock().unwrap().as_slice()), 80_000);
}

#[test]
fn eight_threads_with_own_objects() {
    let _w = Watchdog::new("eight_threads_with_own_objects", Duration::from_secs(120));
    let key = util::unique_key("threads-own");
    let _c = Cleanup::new().qt_key(&key);
    let mut shm = SharedMemory::with_key(&key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let key = key.clone();
            std::thread::spawn(move || {
                let mut mine = SharedMemory::with_key(&key);
                mine.attach(AccessMode::ReadWrite).unwrap();
                increment(&mine, 10_000);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(util::read_u64(shm.lock().unwrap().as_slice()), 80_000);
}

#[test]
fn four_processes() {
    let _w = Watchdog::new("four_processes", Duration::from_secs(300));
    let key = util::unique_key("processes");
    let _c = Cleanup::new().qt_key(&key);
    let mut shm = SharedMemory::with_key(&key);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut children: Vec<_> = (0..4)
        .map(|_| ChildProc::spawn("increment", &[&key, "10000"]))
        .collect();
    for c in &mut children {
        assert!(c.wait(Duration::from_secs(240)).success());
    }
    assert_eq!(util::read_u64(shm.lock().unwrap().as_slice()), 40_000);
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "increment" => {
            let mut shm = SharedMemory::with_key(&args[1]);
            shm.attach(AccessMode::ReadWrite).unwrap();
            increment(&shm, args[2].parse().unwrap());
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
