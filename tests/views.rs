//! Typed views (feature `bytemuck`) and layout stamps across real processes: a `#[repr(C)]`
//! struct written by one process and read and updated by another, on System V, POSIX and
//! mapped segments; bounds, alignment and read-only access refused with typed errors; a
//! mapped segment opened expecting another layout refused.
#![cfg(all(feature = "bytemuck", qshm_linux))]

mod util;

use std::time::Duration;

use bytemuck::{Pod, Zeroable};
use qshm::mapped::{FileOptions, LayoutStamp, MappedSegment};
use qshm::{AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory};
use util::{ChildProc, Cleanup, PathCleanup};

const T: Duration = Duration::from_secs(60);

/// What both processes agree on: `#[repr(C)]`, fixed-size fields, explicit padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
struct Stats {
    requests: u64,
    errors: u32,
    _pad: u32,
    latency_us: [f32; 4],
}

fn stamp(version: u32) -> LayoutStamp {
    LayoutStamp::of::<Stats>("Stats", version)
}

#[test]
fn a_struct_shared_between_processes() {
    let _w = util::file_watchdog(
        "a_struct_shared_between_processes",
        Duration::from_secs(120),
    );
    for t in [KeyType::SystemV, KeyType::PosixRealtime] {
        let key = NativeKey::legacy(&util::unique_key("views"), t);
        let _c = Cleanup::new().segment(&key);
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create(4096, AccessMode::ReadWrite).unwrap();
        {
            let mut g = shm.lock().unwrap();
            *g.view_mut::<Stats>(0).unwrap() = Stats {
                requests: 41,
                errors: 2,
                _pad: 0,
                latency_us: [1.5, 2.5, 3.5, 4.5],
            };
            g.view_slice_mut::<u32>(64, 16)
                .unwrap()
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = i as u32);
        }
        let mut child = ChildProc::spawn("shm-update", &[&key.to_string()]);
        assert_eq!(child.expect_line(T), "sum 120 requests 41", "{t:?}");
        assert!(child.wait(T).success());
        let g = shm.lock().unwrap();
        assert_eq!(g.view::<Stats>(0).unwrap().requests, 42, "{t:?}");
        assert_eq!(g.view::<Stats>(0).unwrap().latency_us[3], 4.5);
        drop(g);
        shm.detach().unwrap();
    }
}

#[test]
fn views_refuse_bad_requests() {
    let key = NativeKey::legacy(&util::unique_key("viewerr"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(100, AccessMode::ReadWrite).unwrap();
    let mut g = shm.lock().unwrap();
    let kind = |e: qshm::Error| e.kind();
    assert_eq!(kind(g.view::<u64>(96).unwrap_err()), ErrorKind::InvalidSize);
    assert_eq!(
        kind(g.view::<u64>(usize::MAX).unwrap_err()),
        ErrorKind::InvalidSize
    );
    assert_eq!(kind(g.view::<u64>(3).unwrap_err()), ErrorKind::Layout);
    assert_eq!(
        kind(g.view_slice::<u32>(0, usize::MAX).unwrap_err()),
        ErrorKind::InvalidSize
    );
    assert_eq!(
        kind(g.view_slice::<u32>(2, 4).unwrap_err()),
        ErrorKind::Layout
    );
    assert_eq!(
        kind(g.view_mut::<Stats>(80).unwrap_err()),
        ErrorKind::InvalidSize
    );
    let err = g.view::<u64>(3).unwrap_err();
    assert!(err.to_string().contains("not aligned"), "{err}");
    assert_eq!(g.view_slice::<u8>(100, 0).unwrap().len(), 0);
    *g.view_mut::<u64>(88).unwrap() = 7;
    assert_eq!(*g.view::<u64>(88).unwrap(), 7);
    drop(g);
    let mut reader = SharedMemory::with_native_key(key);
    reader.attach(AccessMode::ReadOnly).unwrap();
    let mut g = reader.lock().unwrap();
    assert_eq!(*g.view::<u64>(88).unwrap(), 7);
    assert_eq!(
        kind(g.view_mut::<u64>(88).unwrap_err()),
        ErrorKind::PermissionDenied
    );
    assert_eq!(
        kind(g.view_slice_mut::<u8>(0, 1).unwrap_err()),
        ErrorKind::PermissionDenied
    );
    drop(g);
    drop(reader);
    shm.detach().unwrap();
}

/// A mapped segment records its layout; a peer expecting another is refused at open, one
/// expecting the same (or nothing) maps it and reads the struct.
#[test]
fn mapped_layout_stamp_between_processes() {
    let _w = util::file_watchdog("mapped_layout_stamp", Duration::from_secs(120));
    let seg = FileOptions::new()
        .layout(stamp(2))
        .create_temporary(4096)
        .unwrap();
    let path = seg.path().unwrap().to_path_buf();
    let _c = PathCleanup::new().path(&path);
    assert_eq!(seg.layout_stamp(), Some(stamp(2)));
    seg.lock().unwrap().view_mut::<Stats>(0).unwrap().requests = 7;
    let p = path.to_str().unwrap();
    let mut child = ChildProc::spawn("mapped-stamps", &[p]);
    assert_eq!(child.expect_line(T), "v2 7, v1 refused, none 7");
    assert!(child.wait(T).success());
    // A segment made without a stamp is refused by a peer that expects one.
    let plain = MappedSegment::create_temporary(64).unwrap();
    let _c2 = PathCleanup::new().path(plain.path().unwrap());
    assert_eq!(plain.layout_stamp(), None);
    let err = FileOptions::new()
        .layout(stamp(2))
        .open(plain.path().unwrap())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Layout);
    assert!(err.to_string().contains("no layout stamp"), "{err}");
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "shm-update" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            let mut g = shm.lock().unwrap();
            let sum: u32 = g.view_slice::<u32>(64, 16).unwrap().iter().sum();
            let stats = g.view_mut::<Stats>(0).unwrap();
            let before = stats.requests;
            stats.requests += 1;
            drop(g);
            util::say(&format!("sum {sum} requests {before}"));
        }
        "mapped-stamps" => {
            let path = &args[1];
            let v2 = FileOptions::new().layout(stamp(2)).open(path).unwrap();
            let got = v2.lock().unwrap().view::<Stats>(0).unwrap().requests;
            let v1 = FileOptions::new().layout(stamp(1)).open(path).unwrap_err();
            assert_eq!(v1.kind(), ErrorKind::Layout, "{v1}");
            let none = MappedSegment::open_file(path).unwrap();
            assert_eq!(none.layout_stamp(), Some(stamp(2)));
            let again = none.lock().unwrap().view::<Stats>(0).unwrap().requests;
            util::say(&format!("v2 {got}, v1 refused, none {again}"));
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
