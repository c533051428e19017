//! qshm's mapped segments (`qshm::mapped`) in `list` and `info --mapped`, with their users
//! and lock state.
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
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

/// The child role of this test binary: opens the mapped segment at `$QSHM_CLI_TEST_MAPPED`,
/// takes its lock, says so and waits to be killed.
fn child_holds_the_lock() -> bool {
    let Some(path) = std::env::var_os("QSHM_CLI_TEST_MAPPED") else {
        return false;
    };
    let seg = MappedSegment::open_file(&path).expect("open");
    let guard = seg.lock().expect("lock");
    println!("locked");
    std::thread::sleep(Duration::from_secs(60));
    drop(guard);
    true
}

/// A process killed while holding a mapped segment's lock: `list` and `info` say its holder
/// is dead (its liveness byte lock went with it), and the next locker takes it over.
#[test]
fn a_dead_holder_of_a_mapped_lock_is_shown() {
    if child_holds_the_lock() {
        return;
    }
    let _w = Watchdog::new("a_dead_holder_of_a_mapped_lock_is_shown");
    let name = tag();
    let path = std::path::PathBuf::from(format!("/dev/shm/{name}"));
    let _c = Cleanup::new().file(&path);
    let seg = FileOptions::new().create(&path, 64).expect("create");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_dead_holder_of_a_mapped_lock_is_shown",
            "--exact",
            "--nocapture",
        ])
        .env("QSHM_CLI_TEST_MAPPED", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match lines.next() {
            Some(Ok(l)) if l.trim() == "locked" => break,
            Some(Ok(_)) if Instant::now() < deadline => {}
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the child did not lock: {other:?}");
            }
        }
    }
    let info = |field: &str| -> Value {
        let run = qshm(&["info", "--mapped", path.to_str().unwrap(), "--json"]).ok();
        let v: Value = serde_json::from_slice(&run.stdout).unwrap();
        v[field].clone()
    };
    assert_eq!(info("lock_state"), "held");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(info("lock_state"), "holder_dead");
    let table = qshm(&["list", "--match", &name]).ok().out();
    assert!(table.contains("holder dead (tid "), "{table}");
    // The next locker takes it over, and it is free again.
    let guard = seg.lock().unwrap();
    assert!(guard.owner_died());
    drop(guard);
    assert_eq!(info("lock_state"), "free");
    assert_eq!(info("consistent"), false);
    assert_eq!(info("generation"), 1);
}

/// Mapped segments in `$XDG_RUNTIME_DIR` are listed too.
#[test]
fn mapped_segments_in_xdg_runtime_dir_are_listed() {
    let _w = Watchdog::new("mapped_segments_in_xdg_runtime_dir_are_listed");
    let name = tag();
    // A directory on a tmpfs, as a runtime directory is.
    let dir = std::path::PathBuf::from(format!("/dev/shm/qshmtest-xdg-{name}"));
    let _c = Cleanup::new().dir(&dir);
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join(format!("{name}.seg"));
    let seg = FileOptions::new().create(&path, 100).expect("create");
    let mut c = common::command(&["list", "--json", "--match", &name]);
    c.env("XDG_RUNTIME_DIR", &dir);
    let run = common::finish(c).ok();
    let v: Vec<Value> = run
        .out()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0]["path"], path.to_str().unwrap());
    assert_eq!(v[0]["size"], 100);
    // Without it, not.
    let mut c = common::command(&["list", "--json", "--match", &name]);
    c.env_remove("XDG_RUNTIME_DIR");
    assert!(common::finish(c).ok().out().is_empty());
    drop(seg);
}
