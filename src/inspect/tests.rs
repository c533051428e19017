//! Unit tests of inspection.

use super::*;

#[test]
fn parses_proc_lines() {
    let line: Vec<String> = "1359168030 12 600 1000 4242 4243 1 0 0 0 0 0 0 1700000000 0 0"
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let e = parse_shm(&line).unwrap();
    assert_eq!((e.key, e.id, e.mode, e.size), (1359168030, 12, 0o600, 1000));
    assert_eq!(
        (e.cpid, e.lpid, e.nattch, e.ctime),
        (4242, 4243, 1, 1700000000)
    );
    let line: Vec<String> = "-5 7 1600 1 0 0 0 0 0 0"
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let s = parse_sem(&line).unwrap();
    assert_eq!((s.key, s.id, s.mode), (-5, 7, 0o600));
}

#[test]
fn lock_names() {
    assert_eq!(
        sibling_lock(Path::new("/tmp/qipc_sharedmemory_abc123")),
        Some(PathBuf::from("/tmp/qipc_systemsem_abc123"))
    );
    assert_eq!(sibling_lock(Path::new("/run/user/0/my-key")), None);
    assert_eq!(
        posix_lock_key("/qipc_sharedmemory_x1").native_key(),
        "/qipc_systemsem_x1"
    );
    assert_eq!(posix_lock_key("/hello").native_key(), "/hello");
    assert_eq!(
        posix_path("/hello", "sem."),
        Some(PathBuf::from("/dev/shm/sem.hello"))
    );
    assert_eq!(posix_path("/a/b", ""), None);
    assert_eq!(posix_path("/", ""), None);
}

#[test]
fn names_that_are_not_utf8() {
    let bytes = |b: &[u8]| OsStr::from_bytes(b).to_owned();
    let names = posix_names(&bytes(b"qipc_sharedmemory_caf\xe9"));
    assert_eq!(names.native, None);
    assert_eq!(names.lock, None);
    assert_eq!(
        names.lock_path,
        Some(Path::new("/dev/shm").join(bytes(b"sem.qipc_systemsem_caf\xe9")))
    );
    let names = posix_names(&bytes(b"caf\xe9"));
    assert_eq!(
        names.lock_path,
        Some(Path::new("/dev/shm").join(bytes(b"sem.caf\xe9")))
    );
    let names = posix_names(OsStr::new("hello"));
    assert_eq!(names.native.unwrap().native_key(), "/hello");
    assert_eq!(names.lock.unwrap().native_key(), "/hello");
    assert_eq!(
        sibling_lock(&Path::new("/tmp").join(bytes(b"qipc_sharedmemory_\xff"))),
        Some(Path::new("/tmp").join(bytes(b"qipc_systemsem_\xff")))
    );
    assert_eq!(
        native_of(&Path::new("/tmp").join(bytes(b"\xff")), 0x5100_0001),
        None
    );
    assert_eq!(escape_name(&bytes(b"a\\b\xff\xc3")), r"a\\b\xff\xc3");
    assert_eq!(escape_name(OsStr::new("é")), "é");
}

#[test]
fn liveness() {
    assert!(process_alive(std::process::id()));
    assert!(!process_alive(0));
    assert!(!process_alive(u32::MAX));
}

#[test]
fn a_posix_creator_counts_as_a_user() {
    use crate::{AccessMode, KeyType, SharedMemory};
    // qshm makes a POSIX segment unnamed and names it once it is ready: its creator's
    // maps and descriptors show another path for it, and must still count.
    let name = format!("/qshm-unit-inspect-posix-{}", std::process::id());
    let key = NativeKey::new(name, KeyType::PosixRealtime);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(777, AccessMode::ReadWrite).unwrap();
    if cfg!(qshm_posix_portable) {
        // No directory of POSIX objects to read (macOS, iOS; the portable mode does as
        // they do): said, not guessed.
        let err = info(&key).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert_eq!(lock_state(&key).unwrap_err().kind(), ErrorKind::Unsupported);
        shm.detach().unwrap();
        return;
    }
    let info = info(&key).unwrap();
    assert_eq!((info.size, info.attach_count), (777, 1));
    assert!(!info.orphaned);
    assert!(!remove(&info, false).unwrap(), "removed a live segment");
    shm.detach().unwrap();
    assert_eq!(super::info(&key).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn info_list_and_remove_a_live_segment() {
    use crate::{AccessMode, SharedMemory};
    let name = format!("qshm-unit-inspect-{}", std::process::id());
    let mut shm = SharedMemory::with_key(&name);
    shm.create(777, AccessMode::ReadWrite).unwrap();
    let key = shm.native_key().clone();
    let info = info(&key).unwrap();
    assert_eq!(info.backend, Backend::SystemV);
    assert_eq!(info.qt_key.as_deref(), Some(name.as_str()));
    assert_eq!(info.lock_key, Some(key.lock_key()));
    assert_eq!((info.size, info.attach_count), (777, 1));
    assert_eq!(info.creator_pid, Some(std::process::id()));
    assert_eq!(info.lock_state, LockState::Free);
    assert!(!info.orphaned);
    {
        let _guard = shm.lock().unwrap();
        assert_eq!(
            super::info(&key).unwrap().lock_state,
            LockState::Held {
                pid: Some(std::process::id())
            }
        );
    }
    let listed = list().unwrap();
    let mine = listed.iter().find(|s| s.id == info.id).unwrap();
    assert_eq!(
        mine.native_key.as_ref().map(NativeKey::native_key),
        Some(key.native_key())
    );
    assert!(leftovers()
        .unwrap()
        .iter()
        .all(|l| !matches!(l, Leftover::Segment(s) if s.id == info.id)));
    // Attached: only a forced removal removes it.
    assert!(!remove(&info, false).unwrap());
    assert!(remove(&info, true).unwrap());
    assert_eq!(super::info(&key).unwrap_err().kind(), ErrorKind::NotFound);
    let _ = shm.detach();
    let _ = crate::SharedMemory::force_remove(&key);
}

#[test]
fn lock_state_text() {
    assert_eq!(LockState::Held { pid: Some(7) }.to_string(), "held (pid 7)");
    assert_eq!(
        LockState::HolderDead { pid: None }.to_string(),
        "holder_dead"
    );
    assert_eq!(LockState::Free.pid(), None);
}
