//! `qshm::mapped` on Windows across real processes (run under Wine by the test command): file
//! segments shared by path and by handle inheritance, the in-segment lock between processes,
//! a holder terminated 50 times in a row, removal at the last detach and by the system for
//! temporary segments, and the errors.
#![cfg(windows)]

mod util;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qshm::mapped::{Backing, FileOptions, LayoutStamp, MappedSegment, ReceiveOptions};
use qshm::{AccessMode, ErrorKind};
use util::{ChildProc, PathCleanup};

const T: Duration = Duration::from_secs(60);

/// A fresh directory for one test, removed at the end whatever happens.
fn test_dir(name: &str) -> (PathBuf, PathCleanup) {
    let dir = std::env::temp_dir().join(util::unique_key(name));
    std::fs::create_dir_all(&dir).unwrap();
    let cleanup = PathCleanup::new().path(&dir);
    (dir, cleanup)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn file_segment_data_both_ways_and_read_only() {
    let _w = util::file_watchdog("file_segment_data_both_ways", Duration::from_secs(120));
    let (dir, _c) = test_dir("mw-both");
    let seg = FileOptions::new()
        .directory(&dir)
        .create("seg", 1000)
        .unwrap();
    let path = seg.path().unwrap().to_path_buf();
    assert_eq!(seg.backing(), Backing::File);
    assert_eq!(seg.size(), 1000);
    assert!(seg.removes_on_last_detach());
    // Staged under another name, renamed: only the segment is there.
    assert_eq!(entries(&dir), ["seg"]);
    seg.lock().unwrap().as_mut_slice().unwrap()[..6].copy_from_slice(b"parent");
    let mut child = ChildProc::spawn("open-swap", &[s(&path)]);
    assert_eq!(child.expect_line(T), "got parent size 1000");
    assert!(child.wait(T).success());
    assert_eq!(&seg.lock().unwrap().as_slice()[..5], b"child");

    let reader = FileOptions::new()
        .access(AccessMode::ReadOnly)
        .open(&path)
        .unwrap();
    assert_eq!(reader.access_mode(), AccessMode::ReadOnly);
    let mut guard = reader.lock().unwrap();
    assert_eq!(&guard.as_slice()[..5], b"child");
    assert!(guard.as_mut_slice().is_err());
    drop(guard);
    // The read-only user takes the same lock.
    // (Both objects of this process are one owner: this thread holding the lock through
    // one and asking through the other is told so, not made to wait on itself.)
    let held = seg.lock().unwrap();
    assert_eq!(reader.try_lock().unwrap_err().kind(), ErrorKind::LockError);
    drop(held);
    drop(reader);
    assert!(seg.detach().unwrap(), "the last user removes the file");
    assert!(!path.exists());
}

/// 3 child processes and this one, 500 locked increments each, end exact.
#[test]
fn processes_exclude_each_other() {
    let _w = util::file_watchdog("processes_exclude_each_other", Duration::from_secs(600));
    let (dir, _c) = test_dir("mw-excl");
    let seg = FileOptions::new()
        .directory(&dir)
        .create("seg", 64)
        .unwrap();
    let path = seg.path().unwrap().to_path_buf();
    let mut children: Vec<_> = (0..3)
        .map(|_| ChildProc::spawn("increment", &[s(&path), "500"]))
        .collect();
    for _ in 0..500 {
        let mut guard = seg.lock().unwrap();
        let bytes = guard.as_mut_slice().unwrap();
        let v = util::read_u64(bytes);
        util::write_u64(bytes, v + 1);
    }
    for c in &mut children {
        assert!(c.wait(Duration::from_secs(500)).success());
    }
    assert_eq!(util::read_u64(seg.lock().unwrap().as_slice()), 2000);
    assert!(!seg.lock().unwrap().owner_died());
}

/// A holder terminated (`TerminateProcess`) while it holds the lock, 50 times: each time
/// the next locker gets the lock within 1 s and is told the owner died.
#[test]
fn terminated_holder_50_times() {
    let _w = util::file_watchdog(
        "mapped terminated_holder_50_times",
        Duration::from_secs(900),
    );
    let (dir, _c) = test_dir("mw-term");
    let seg = FileOptions::new()
        .directory(&dir)
        .create("seg", 64)
        .unwrap();
    let path = seg.path().unwrap().to_path_buf();
    let mut slowest = Duration::ZERO;
    for round in 0..50u64 {
        let mut child = ChildProc::spawn("hold", &[s(&path)]);
        assert_eq!(child.expect_line(T), "locked", "round {round}");
        assert_eq!(
            seg.try_lock().unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "round {round}"
        );
        child.kill9(); // TerminateProcess
        let start = Instant::now();
        let mut guard = seg
            .lock_timeout(Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("round {round}: no lock within 1 s: {e}"));
        slowest = slowest.max(start.elapsed());
        assert!(guard.owner_died(), "round {round}");
        assert_eq!(util::read_u64(guard.as_slice()), round + 1, "round {round}");
        guard.mark_consistent();
        drop(guard);
        assert!(!seg.lock().unwrap().owner_died(), "round {round}");
        assert_eq!(seg.lock_generation(), round + 1);
    }
    eprintln!("Windows mapped: slowest recovery {slowest:?} over 50 terminations");
}

/// A temporary segment handed to a child by handle inheritance; Windows deletes it with its
/// last handle, also when its last user is terminated.
#[test]
fn temporary_segment_inherited_and_deleted_by_the_system() {
    let _w = util::file_watchdog("temporary_segment_inherited", Duration::from_secs(120));
    let (dir, _c) = test_dir("mw-temp");
    let seg = FileOptions::new()
        .directory(&dir)
        .create_temporary(1000)
        .unwrap();
    let path = seg.path().unwrap().to_path_buf();
    seg.lock().unwrap().as_mut_slice().unwrap()[..6].copy_from_slice(b"parent");
    let mut child = ChildProc::spawn_with("inherited", &[], |cmd| {
        seg.spawn_child(cmd).map_err(std::io::Error::other)
    });
    assert_eq!(child.expect_line(T), "got parent size 1000");
    assert!(child.wait(T).success());
    assert_eq!(&seg.lock().unwrap().as_slice()[..5], b"child");
    drop(seg);
    assert!(!path.exists(), "deleted with its last handle");

    // The creator detaches first; the child, detaching last, removes it.
    let seg = if std::env::var_os("QSHM_DEBUG_NAMED").is_some() {
        FileOptions::new()
            .directory(&dir)
            .create("named", 64)
            .unwrap()
    } else {
        FileOptions::new()
            .directory(&dir)
            .create_temporary(64)
            .unwrap()
    };
    let path = seg.path().unwrap().to_path_buf();
    let mut child = ChildProc::spawn_with("inherited-then-detach", &[], |cmd| {
        seg.spawn_child(cmd).map_err(std::io::Error::other)
    });
    assert_eq!(child.expect_line(T), "holding");
    assert!(!seg.detach().unwrap());
    child.send("go");
    let said = child.expect_line(T);
    assert!(child.wait(T).success());
    assert!(said.starts_with("detached"), "{said}");
    assert!(!path.exists(), "removed with the last user ({said})");

    // Every user gone, the last one terminated: Windows deletes it (the handle that made it
    // asked for that).
    let seg = FileOptions::new()
        .directory(&dir)
        .create_temporary(64)
        .unwrap();
    let path = seg.path().unwrap().to_path_buf();
    let mut child = ChildProc::spawn_with("inherited-hold", &[], |cmd| {
        seg.spawn_child(cmd).map_err(std::io::Error::other)
    });
    assert_eq!(child.expect_line(T), "holding");
    drop(seg);
    assert!(path.exists(), "the child still has it");
    child.kill9_and_await_exit();
    let deadline = Instant::now() + Duration::from_secs(10);
    while path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!path.exists(), "deleted after its last user was terminated");
    assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
}

/// The last of several users removes a flagged file; a file without the flag stays until
/// `remove_file`, which refuses while someone has it open.
#[test]
fn removal_at_the_last_detach() {
    let _w = util::file_watchdog("removal_at_the_last_detach", Duration::from_secs(120));
    let (dir, _c) = test_dir("mw-last");
    let seg = FileOptions::new()
        .directory(&dir)
        .create("seg", 64)
        .unwrap();
    let path = seg.path().unwrap().to_path_buf();
    let mut child = ChildProc::spawn("open-then-detach", &[s(&path)]);
    assert_eq!(child.expect_line(T), "open");
    assert!(!seg.detach().unwrap(), "the child still has it");
    assert!(path.exists());
    child.send("go");
    assert_eq!(child.expect_line(T), "detached true");
    assert!(child.wait(T).success());
    assert!(!path.exists());

    let kept = FileOptions::new()
        .directory(&dir)
        .remove_on_last_detach(false)
        .create("kept", 64)
        .unwrap();
    assert!(
        !MappedSegment::remove_file(dir.join("kept")).unwrap(),
        "in use"
    );
    assert!(!kept.detach().unwrap());
    assert!(dir.join("kept").exists());
    assert!(MappedSegment::remove_file(dir.join("kept")).unwrap());
    assert!(!dir.join("kept").exists());
    assert!(!MappedSegment::remove_file(dir.join("kept")).unwrap());
}

#[test]
fn errors() {
    let _w = util::file_watchdog("mapped errors", Duration::from_secs(120));
    let (dir, _c) = test_dir("mw-err");
    let opts = {
        let mut o = FileOptions::new();
        o.directory(&dir);
        o
    };
    let kind = |r: qshm::Result<MappedSegment>| r.unwrap_err().kind();
    let seg = opts.create("seg", 64).unwrap();
    assert_eq!(kind(opts.create("seg", 64)), ErrorKind::AlreadyExists);
    assert_eq!(kind(opts.open("missing")), ErrorKind::NotFound);
    assert_eq!(kind(opts.create("zero", 0)), ErrorKind::InvalidSize);
    assert!(matches!(
        kind(opts.create("huge", 1 << 60)),
        ErrorKind::OutOfResources | ErrorKind::InvalidSize
    ));
    std::fs::write(dir.join("garbage"), vec![7u8; 8192]).unwrap();
    assert_eq!(kind(opts.open("garbage")), ErrorKind::KeyError);
    std::fs::write(dir.join("short"), b"QSHM").unwrap();
    assert_eq!(kind(opts.open("short")), ErrorKind::InvalidSize);
    // A header that claims more than the file has.
    let mut cut = std::fs::read(seg.path().unwrap()).unwrap();
    cut.truncate(4096 + 10);
    std::fs::write(dir.join("cut"), &cut).unwrap();
    assert_eq!(kind(opts.open("cut")), ErrorKind::InvalidSize);
    // A layout stamp recorded at create is checked at open.
    let v2 = LayoutStamp::from_parts(2, 16, 8, "Pair");
    let stamped = opts.clone().layout(v2).create("stamped", 64).unwrap();
    assert_eq!(stamped.layout_stamp(), Some(v2));
    let v1 = LayoutStamp::from_parts(1, 16, 8, "Pair");
    assert_eq!(
        kind(opts.clone().layout(v1).open("stamped")),
        ErrorKind::Layout
    );
    assert_eq!(kind(opts.clone().layout(v1).open("seg")), ErrorKind::Layout);
    assert_eq!(
        opts.clone()
            .layout(v2)
            .open("stamped")
            .unwrap()
            .layout_stamp(),
        Some(v2)
    );
    drop(stamped);
    // Nothing staged is left by the failed creates.
    assert_eq!(entries(&dir), ["cut", "garbage", "seg", "short"]);
    // A peer cannot truncate a mapped file: Windows refuses (ERROR_USER_MAPPED_FILE), which
    // is why the lock checks no size there.
    let peer = std::fs::OpenOptions::new()
        .write(true)
        .open(seg.path().unwrap())
        .unwrap();
    assert_eq!(peer.set_len(100).unwrap_err().raw_os_error(), Some(1224));
    drop(peer);
    assert_eq!(seg.lock().unwrap().as_slice().len(), 64);
    drop(seg);
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "open-swap" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let mut guard = seg.lock().unwrap();
            let got = String::from_utf8_lossy(&guard.as_slice()[..6]).into_owned();
            guard.as_mut_slice().unwrap()[..5].copy_from_slice(b"child");
            drop(guard);
            util::say(&format!("got {got} size {}", seg.size()));
        }
        "increment" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            for _ in 0..args[2].parse::<u32>().unwrap() {
                let mut guard = seg.lock().unwrap();
                let bytes = guard.as_mut_slice().unwrap();
                let v = util::read_u64(bytes);
                util::write_u64(bytes, v + 1);
            }
        }
        "hold" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let mut guard = seg.lock().unwrap();
            guard.mark_consistent();
            let bytes = guard.as_mut_slice().unwrap();
            let v = util::read_u64(bytes);
            util::write_u64(bytes, v + 1);
            util::say("locked");
            std::thread::sleep(Duration::from_secs(600));
        }
        "inherited" => {
            let seg = MappedSegment::from_env(&ReceiveOptions::new()).unwrap();
            let mut guard = seg.lock().unwrap();
            let got = String::from_utf8_lossy(&guard.as_slice()[..6]).into_owned();
            guard.as_mut_slice().unwrap()[..5].copy_from_slice(b"child");
            drop(guard);
            assert_eq!(
                MappedSegment::from_env(&ReceiveOptions::new())
                    .unwrap_err()
                    .kind(),
                ErrorKind::AlreadyAttached
            );
            util::say(&format!("got {got} size {}", seg.size()));
        }
        "inherited-hold" => {
            let _seg = MappedSegment::from_env(&ReceiveOptions::new()).unwrap();
            util::say("holding");
            std::thread::sleep(Duration::from_secs(600));
        }
        "inherited-then-detach" => {
            let seg = MappedSegment::from_env(&ReceiveOptions::new()).unwrap();
            util::say("holding");
            let _ = util::read_stdin_line();
            let removed = seg.detach().unwrap();
            util::say(&format!("detached {removed}"));
        }
        "open-then-detach" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            util::say("open");
            let _ = util::read_stdin_line();
            let removed = seg.detach().unwrap();
            util::say(&format!("detached {removed}"));
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
