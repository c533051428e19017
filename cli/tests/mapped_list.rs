//! qshm's mapped segments (`qshm::mapped`) in `list` and `info --mapped`, with their users
//! and lock state.
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::{qshm, tag, Cleanup, Watchdog};
use qshm::mapped::{FileOptions, MappedSegment};
use serde_json::Value;

#[test]
fn mapped_segments_are_listed_with_their_lock_state() {
    let _w = Watchdog::new("mapped_segments_are_listed_with_their_lock_state");
    let name = tag();
    let path = std::path::PathBuf::from(format!("/dev/shm/{name}"));
    let _c = Cleanup::new().file(&path);
    let seg = FileOptions::new()
        .create(&path, 1000)
        .expect("create a mapped segment");
    // The test process is a user (its shared flock) and, below, the holder of the lock.
    let list = |filter: &str| -> Vec<Value> {
        qshm(&["list", "--json", "--match", filter])
            .ok()
            .out()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let v = list(&name);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["backend"], "mapped");
    assert_eq!(v[0]["path"], path.to_str().unwrap());
    assert_eq!(v[0]["size"], 1000);
    assert_eq!(v[0]["attach_count"], 1);
    assert_eq!(v[0]["lock_state"], "free");
    assert_eq!(v[0]["orphaned"], false);

    let guard = seg.lock().unwrap();
    let info = qshm(&["info", "--mapped", path.to_str().unwrap(), "--json"]).ok();
    let v: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["verb"], "info");
    assert_eq!(v["lock_state"], "held", "{v}");
    assert!(v["lock_tid"].as_u64().unwrap() > 0, "{v}");
    let text = qshm(&["info", "--mapped", path.to_str().unwrap()])
        .ok()
        .out();
    assert!(text.contains("held by tid"), "{text}");
    let table = qshm(&["list", "--match", &name]).ok().out();
    assert!(table.lines().any(|l| l.starts_with("mapped ")), "{table}");
    drop(guard);

    // A second user, then none.
    let other = MappedSegment::open_file(&path).unwrap();
    assert_eq!(list(&name)[0]["attach_count"], 2);
    drop(other);
    drop(seg);
    let deadline = Instant::now() + Duration::from_secs(5);
    while list(&name).first().map(|v| v["attach_count"] != 0) == Some(true) {
        assert!(Instant::now() < deadline, "users stayed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Not a mapped segment: a clear error.
    qshm(&["info", "--mapped", "/dev/null"]).fails(1, "not a qshm mapped segment");
    qshm(&["info", "--mapped", "/nonexistent/x"]).fails(1, "no such file");
}
