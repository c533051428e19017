//! `qshm::mapped`: file-backed and memfd segments across real processes — data both ways,
//! inheritance into a child, passing over a Unix socket, temporary segments, hostile peers,
//! kill -9 of the lock holder (100 times), a C program taking the same lock through
//! `include/qshm.h`, disk-backed directories and garbage headers.
#![cfg(qshm_linux)]

mod util;

use std::io::Write;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qshm::mapped::{Backing, FileOptions, MappedSegment, MemfdOptions, ReceiveOptions};
use qshm::{AccessMode, ErrorKind};
use util::{unique_file, ChildProc, PathCleanup};

const T: Duration = Duration::from_secs(30);

fn abstract_listener(name: &str) -> (UnixListener, String) {
    let name = util::unique_key(name);
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    (UnixListener::bind_addr(&addr).unwrap(), name)
}

fn connect_abstract(name: &str) -> UnixStream {
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    UnixStream::connect_addr(&addr).unwrap()
}

fn increment(seg: &MappedSegment, n: u64) {
    for _ in 0..n {
        let mut guard = seg.lock().unwrap();
        if guard.owner_died() {
            guard.mark_consistent();
        }
        let bytes = guard.as_mut_slice().unwrap();
        let v = util::read_u64(bytes);
        util::write_u64(bytes, v + 1);
    }
}

#[test]
fn file_segment_data_both_ways() {
    let _w = util::file_watchdog("file_segment_data_both_ways", Duration::from_secs(60));
    let (path, _c) = unique_file("file-both-ways");
    let seg = MappedSegment::create_file(&path, 4096).unwrap();
    assert_eq!(seg.backing(), Backing::File);
    assert_eq!(seg.size(), 4096);
    assert!(seg.is_ram_backed());
    assert_eq!(seg.path(), Some(path.as_path()));
    seg.lock().unwrap().as_mut_slice().unwrap()[..4].copy_from_slice(b"ping");
    let mut child = ChildProc::spawn("file-pong", &[path.to_str().unwrap()]);
    assert_eq!(child.expect_line(T), "got ping");
    assert!(child.wait(T).success());
    assert_eq!(&seg.lock().unwrap().as_slice()[4..8], b"pong");
    // The file's permissions are exactly 0600 by default.
    let mode = std::fs::metadata(&path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    // Creating it again fails; the last detach removes it. No sibling test forks meanwhile:
    // a forked copy holds this process's descriptors (and so the file's count) until it
    // execs, and every spawn is a real fork under qemu-user (see `util::no_spawns`).
    assert_eq!(
        MappedSegment::create_file(&path, 64).unwrap_err().kind(),
        ErrorKind::AlreadyExists
    );
    let _quiet = util::no_spawns();
    assert!(seg.detach().unwrap());
    assert!(!path.exists());
}

#[test]
fn persistent_file_stays_until_removed() {
    let _w = util::file_watchdog("persistent_file_stays", Duration::from_secs(60));
    let (path, _c) = unique_file("file-persistent");
    let seg = FileOptions::new()
        .remove_on_last_detach(false)
        .permissions(0o640)
        .create(&path, 64)
        .unwrap();
    assert!(!seg.removes_on_last_detach());
    drop(seg);
    assert!(path.exists());
    let mode = std::fs::metadata(&path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o640
    );
    let again = MappedSegment::open_file(&path).unwrap();
    assert!(
        !MappedSegment::remove_file(&path).unwrap(),
        "still attached"
    );
    drop(again);
    assert!(MappedSegment::remove_file(&path).unwrap());
    assert!(!path.exists());
}

#[test]
fn read_only_file_attachment_locks_but_cannot_write() {
    let _w = util::file_watchdog("read_only_file_attachment", Duration::from_secs(60));
    let (path, _c) = unique_file("file-ro");
    let seg = MappedSegment::create_file(&path, 100).unwrap();
    seg.lock().unwrap().as_mut_slice().unwrap()[0] = 9;
    let ro = FileOptions::new()
        .access(AccessMode::ReadOnly)
        .open(&path)
        .unwrap();
    assert_eq!(ro.access_mode(), AccessMode::ReadOnly);
    let mut guard = ro.lock().unwrap();
    assert_eq!(guard.as_slice()[0], 9);
    assert_eq!(
        guard.as_mut_slice().unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
}

/// A read-only attachment is read-only through `as_mut_ptr` too, even when the header size
/// is not a multiple of the page size (a C program may make such a file: `qshm.h` allows
/// any multiple of 64), so that the data area starts inside the lock's writable page.
#[test]
fn read_only_data_is_read_only_whatever_the_header_size() {
    use std::os::unix::process::ExitStatusExt;
    let _w = util::file_watchdog("read_only_whatever_header", Duration::from_secs(60));
    let (path, _c) = unique_file("file-ro-odd-header");
    for header_size in [128u32, 4096] {
        let mut bytes = header(2, header_size, 100);
        bytes.resize(header_size as usize + 100, 7);
        write_file(&path, &bytes);
        let mut child = ChildProc::spawn("write-read-only", &[path.to_str().unwrap()]);
        let status = child.wait(Duration::from_secs(30));
        assert_eq!(
            status.signal(),
            Some(libc::SIGSEGV),
            "header {header_size}: a write through a read-only attachment did not fault ({status:?})"
        );
        let after = std::fs::read(&path).unwrap();
        assert_eq!(
            after[header_size as usize], 7,
            "header {header_size}: the data changed"
        );
        let ro = FileOptions::new()
            .access(AccessMode::ReadOnly)
            .open(&path)
            .unwrap();
        assert_eq!(ro.lock().unwrap().as_slice()[0], 7);
    }
}

#[test]
fn temporary_segment_is_removed_after_the_last_detach() {
    let _w = util::file_watchdog("temporary_segment", Duration::from_secs(60));
    let seg = MappedSegment::create_temporary(128).unwrap();
    let path = seg.path().unwrap().to_path_buf();
    let _c = PathCleanup::new().path(&path);
    assert!(path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("qshm-"));
    let mut child = ChildProc::spawn("open-then-detach", &[path.to_str().unwrap()]);
    assert_eq!(child.expect_line(T), "open");
    {
        // The child's detach must be the last (as in `file_segment_data_both_ways`).
        let _quiet = util::no_spawns();
        drop(seg);
        assert!(path.exists(), "the child still has it attached");
        child.send("detach");
        assert_eq!(child.expect_line(T), "detached true");
    }
    assert!(child.wait(T).success());
    assert!(!path.exists());

    // A user that dies attached does not keep the file alive: the flock dies with it.
    let seg = MappedSegment::create_temporary(128).unwrap();
    let path = seg.path().unwrap().to_path_buf();
    let _c2 = PathCleanup::new().path(&path);
    let mut child = ChildProc::spawn("open-then-detach", &[path.to_str().unwrap()]);
    assert_eq!(child.expect_line(T), "open");
    child.kill9();
    let _quiet = util::no_spawns(); // as in `file_segment_data_both_ways`
    assert!(seg.detach().unwrap());
    assert!(!path.exists());
}

#[test]
fn memfd_inherited_by_a_child() {
    let _w = util::file_watchdog("memfd_inherited_by_a_child", Duration::from_secs(60));
    let seg = MappedSegment::memfd("inherit", 1000).unwrap();
    assert_eq!(seg.backing(), Backing::Memfd);
    assert!(seg.is_shrink_sealed());
    seg.lock().unwrap().as_mut_slice().unwrap()[..6].copy_from_slice(b"parent");
    let mut child = ChildProc::spawn_configured("memfd-from-env", &[], |cmd| {
        seg.pass_to_child(cmd).unwrap();
    });
    assert_eq!(child.expect_line(T), "got parent size 1000");
    assert!(child.wait(T).success());
    assert_eq!(&seg.lock().unwrap().as_slice()[..5], b"child");
}

/// `spawn_child`, the portable hand-over: a temporary file segment inherited by a child.
#[test]
fn file_segment_spawned_child_inherits() {
    let _w = util::file_watchdog(
        "file_segment_spawned_child_inherits",
        Duration::from_secs(60),
    );
    let seg = MappedSegment::create_temporary(1000).unwrap();
    let _c = PathCleanup::new().path(seg.path().unwrap());
    seg.lock().unwrap().as_mut_slice().unwrap()[..6].copy_from_slice(b"parent");
    let mut child = ChildProc::spawn_with("file-from-env", &[], |cmd| {
        seg.spawn_child(cmd).map_err(std::io::Error::other)
    });
    assert_eq!(child.expect_line(T), "got parent size 1000");
    assert!(child.wait(T).success());
    assert_eq!(&seg.lock().unwrap().as_slice()[..5], b"child");
}

/// A temporary file segment handed to a child is removed by whichever of the two detaches
/// last: the child takes part in the removal (it once did not, and a parent that detached
/// first left the file behind for good).
#[test]
fn temporary_file_handed_to_a_child_is_removed_by_the_last_to_detach() {
    let _w = util::file_watchdog("temporary_file_handed_to_a_child", Duration::from_secs(60));
    for parent_first in [true, false] {
        let seg = MappedSegment::create_temporary(100).unwrap();
        let path = seg.path().unwrap().to_path_buf();
        let _c = PathCleanup::new().path(&path);
        let mut child = ChildProc::spawn_with("file-from-env-hold", &[], |cmd| {
            seg.spawn_child(cmd).map_err(std::io::Error::other)
        });
        assert_eq!(child.expect_line(T), "attached removes true");
        // Whichever detaches last must find itself the last user: no sibling test's fork
        // may hold a copy of the parent's descriptor meanwhile (it did under qemu-user,
        // armv7, in CI: the child's detach then kept the file; see `util::no_spawns`).
        let _quiet = util::no_spawns();
        if parent_first {
            assert!(!seg.detach().unwrap(), "removed while the child had it");
            assert!(path.exists());
            child.send("detach");
            assert_eq!(child.expect_line(T), "detached true");
        } else {
            child.send("detach");
            assert_eq!(child.expect_line(T), "detached false");
            assert!(path.exists(), "removed while the parent had it");
            assert!(child.wait(T).success());
            assert!(
                seg.detach().unwrap(),
                "the parent's last detach kept the file"
            );
        }
        assert!(child.wait(T).success());
        assert!(!path.exists(), "parent first: {parent_first}");
    }
}

#[test]
fn memfd_passed_over_a_unix_socket() {
    let _w = util::file_watchdog("memfd_passed_over_a_unix_socket", Duration::from_secs(60));
    let (listener, name) = abstract_listener("sock");
    let mut child = ChildProc::spawn("socket-recv", &[&name]);
    let (stream, _) = listener.accept().unwrap();
    let seg = MappedSegment::memfd("over-socket", 64).unwrap();
    seg.lock().unwrap().as_mut_slice().unwrap()[..5].copy_from_slice(b"hello");
    seg.send_over(&stream).unwrap();
    assert_eq!(child.expect_line(T), "got hello");
    assert!(child.wait(T).success());
    assert_eq!(&seg.lock().unwrap().as_slice()[5..10], b"world");
}

#[test]
fn hostile_peer_cannot_shrink_a_sealed_memfd() {
    let _w = util::file_watchdog("hostile_peer_cannot_shrink", Duration::from_secs(60));
    let seg = MappedSegment::memfd("hostile", 8192).unwrap();
    seg.lock().unwrap().as_mut_slice().unwrap()[8191] = 0x5a;
    let mut child = ChildProc::spawn_configured("hostile-truncate", &[], |cmd| {
        seg.pass_to_child(cmd).unwrap();
    });
    assert_eq!(child.expect_line(T), "shrink EPERM");
    assert_eq!(child.expect_line(T), "grow EPERM");
    assert!(child.wait(T).success());
    // The reader keeps working, to the last byte.
    let guard = seg.lock().unwrap();
    assert_eq!(guard.as_slice()[8191], 0x5a);
    assert_eq!(guard.len(), 8192);
}

#[test]
fn unsealed_memfd_is_refused_unless_opted_in() {
    let _w = util::file_watchdog("unsealed_memfd_is_refused", Duration::from_secs(60));
    let (listener, name) = abstract_listener("unsealed");
    let mut child = ChildProc::spawn("send-unsealed", &[&name]);
    let (stream, _) = listener.accept().unwrap();
    let err = MappedSegment::recv_from(&stream, &ReceiveOptions::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("F_SEAL_SHRINK"), "{err}");
    let seg = MappedSegment::recv_from(&stream, ReceiveOptions::new().allow_unsealed(true))
        .expect("accepted with the opt-in");
    assert!(!seg.is_shrink_sealed());
    assert_eq!(&seg.lock().unwrap().as_slice()[..8], b"unsealed");
    // The peer now truncates the data away (keeping the header page): the next lock
    // refuses to lend the memory instead of crashing.
    child.send("truncate");
    assert_eq!(child.expect_line(T), "truncated");
    let err = seg.lock().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    child.close_stdin();
    assert!(child.wait(T).success());
}

#[test]
fn truncated_file_is_refused_before_and_under_the_lock() {
    let _w = util::file_watchdog("truncated_file_is_refused", Duration::from_secs(60));
    let (path, _c) = unique_file("file-truncated");
    let seg = MappedSegment::create_file(&path, 10_000).unwrap();
    seg.lock().unwrap().as_mut_slice().unwrap()[9_999] = 1;
    let header = seg.data_offset() as u64;
    // A careless peer truncates the file to its header. (Its descriptor is kept open: in the
    // portable mode closing one would drop this process's record locks on the file.)
    let peer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    peer.set_len(header).unwrap();
    let err = seg.lock().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    // Opening it now is refused too (smaller than the header claims).
    let err = MappedSegment::open_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    // Below the header, where the lock word lives: taking the lock would touch a page past
    // the file's end (SIGBUS), so the size is checked before it is taken, too.
    for len in [0, 100] {
        peer.set_len(len).unwrap();
        let err = seg.lock().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
        assert!(
            err.to_string()
                .contains(&format!("truncated to {len} bytes")),
            "{err}"
        );
        let err = seg.try_lock().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    }
    // Restored, it works again.
    peer.set_len(header + 10_000).unwrap();
    assert!(seg.lock().is_ok());
    drop(seg);
    drop(peer);
}

/// The size is checked before the lock is taken; a locker that had to wait checks again
/// under it (the file may have been truncated meanwhile, as here by the holder).
#[test]
fn a_file_truncated_while_a_locker_waits_is_refused() {
    let _w = util::file_watchdog("truncated_while_waiting", Duration::from_secs(60));
    let (path, _c) = unique_file("file-truncated-waiting");
    let seg = MappedSegment::create_file(&path, 10_000).unwrap();
    let header = seg.data_offset() as u64;
    let peer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let held = seg.lock().unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| seg.lock().map(drop));
        // Until the waiter sleeps (it has made the check before the lock): the lock word, at
        // offset 64 of the file (include/qshm.h), has WAITERS (bit 31) set.
        let file = std::fs::File::open(&path).unwrap();
        let t0 = std::time::Instant::now();
        loop {
            let mut word = [0u8; 8];
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut word, 64).unwrap();
            if u64::from_ne_bytes(word) & 0x8000_0000 != 0 {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the waiter never slept"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        peer.set_len(header).unwrap();
        drop(held);
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    });
    peer.set_len(header + 10_000).unwrap();
    assert!(seg.lock().is_ok());
    drop(seg);
    drop(peer);
}

#[test]
fn write_sealed_memfd_hands_out_read_only_copies() {
    let _w = util::file_watchdog("write_sealed_memfd", Duration::from_secs(60));
    let seg = MappedSegment::memfd("snapshot", 32).unwrap();
    seg.lock().unwrap().as_mut_slice().unwrap()[..4].copy_from_slice(b"snap");
    let seg = seg.seal_write().unwrap();
    assert!(seg.is_write_sealed());
    assert_eq!(seg.access_mode(), AccessMode::ReadOnly);
    let (a, b) = UnixStream::pair().unwrap();
    seg.send_over(&a).unwrap();
    let copy = MappedSegment::recv_from(&b, &ReceiveOptions::new()).unwrap();
    assert_eq!(copy.access_mode(), AccessMode::ReadOnly);
    let mut guard = copy.lock().unwrap();
    assert_eq!(&guard.as_slice()[..4], b"snap");
    assert_eq!(
        guard.as_mut_slice().unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    // Nobody can write it any more, not even through the descriptor.
    let err = rustix::io::pwrite(copy.as_fd(), b"x", 4096).unwrap_err();
    assert_eq!(err, rustix::io::Errno::PERM);
}

#[test]
fn threads_exclude_each_other() {
    let _w = util::file_watchdog("threads_exclude_each_other", Duration::from_secs(120));
    let seg = Arc::new(MappedSegment::memfd("threads", 64).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let seg = Arc::clone(&seg);
            std::thread::spawn(move || increment(&seg, 5_000))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(util::read_u64(seg.lock().unwrap().as_slice()), 20_000);
}

#[test]
fn second_lock_by_the_same_thread_is_an_error() {
    let _w = util::file_watchdog("second_lock_same_thread", Duration::from_secs(60));
    let (path, _c) = unique_file("file-relock");
    let a = MappedSegment::create_file(&path, 64).unwrap();
    let b = MappedSegment::open_file(&path).unwrap();
    let guard = a.lock().unwrap();
    assert_eq!(a.lock().unwrap_err().kind(), ErrorKind::LockError);
    let err = b.lock().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockError, "{err}");
    assert_eq!(b.try_lock().unwrap_err().kind(), ErrorKind::LockError);
    // Another thread waits, times out, then gets it once released.
    std::thread::scope(|s| {
        let err = s
            .spawn(|| {
                b.lock_timeout(Duration::from_millis(50))
                    .unwrap_err()
                    .kind()
            })
            .join()
            .unwrap();
        assert_eq!(err, ErrorKind::Timeout);
        assert_eq!(
            s.spawn(|| b.try_lock().unwrap_err().kind()).join().unwrap(),
            ErrorKind::WouldBlock
        );
    });
    drop(guard);
    assert!(b.try_lock().is_ok());
}

/// kill -9 of the holder, 100 times: each time the next locker gets the lock within
/// 100 ms, told that the owner died. Half the time the next locker is already asleep in
/// `lock()` when the holder dies; half the time it comes afterwards.
#[test]
fn kill_9_of_the_holder_100_times() {
    let _w = util::file_watchdog("kill_9_of_the_holder_100_times", Duration::from_secs(300));
    let (path, _c) = unique_file("file-kill9");
    let seg = Arc::new(MappedSegment::create_file(&path, 64).unwrap());
    let mut worst = Duration::ZERO;
    for i in 0..100u64 {
        let mut child = ChildProc::spawn("hold-lock", &[path.to_str().unwrap()]);
        assert_eq!(child.expect_line(T), "locked");
        let (waited, killed_at) = if i % 2 == 0 {
            let seg2 = Arc::clone(&seg);
            let waiter = std::thread::spawn(move || {
                let mut guard = seg2.lock().unwrap();
                let at = Instant::now();
                let died = guard.owner_died();
                let marker = util::read_u64(guard.as_slice());
                guard.mark_consistent();
                (at, died, marker)
            });
            std::thread::sleep(Duration::from_millis(20));
            let killed_at = Instant::now();
            child.kill9();
            let (at, died, marker) = waiter.join().unwrap();
            assert!(died, "iteration {i}: owner death not reported");
            assert_eq!(marker, i + 1, "iteration {i}");
            (at.saturating_duration_since(killed_at), killed_at)
        } else {
            child.kill9();
            let killed_at = Instant::now();
            let mut guard = seg
                .lock_timeout(Duration::from_millis(100))
                .unwrap_or_else(|e| panic!("iteration {i}: {e}"));
            let waited = killed_at.elapsed();
            assert!(
                guard.owner_died(),
                "iteration {i}: owner death not reported"
            );
            assert_eq!(util::read_u64(guard.as_slice()), i + 1, "iteration {i}");
            guard.mark_consistent();
            (waited, killed_at)
        };
        let _ = killed_at;
        worst = worst.max(waited);
        assert!(
            waited < Duration::from_millis(100),
            "iteration {i}: took {waited:?}"
        );
        assert_eq!(seg.lock_generation(), i + 1);
        // Marked consistent: the next holder is not told again.
        assert!(!seg.lock().unwrap().owner_died());
    }
    eprintln!("kill -9 x100: slowest take-over {worst:?}");
}

/// include/qshm.h is valid C++ too (a Qt program includes it next to `QFile::map`).
#[test]
fn header_compiles_as_cxx() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut status = Command::new(std::env::var("CXX").unwrap_or_else(|_| "c++".into()));
    status
        .args([
            "-std=c++11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-fsyntax-only",
            "-x",
            "c++",
        ])
        .arg(root.join("include/qshm.h"));
    let status = util::spawning(|| status.status());
    match status {
        Ok(s) => assert!(s.success(), "include/qshm.h does not compile as C++: {s}"),
        Err(e) => eprintln!("SKIPPED: no C++ compiler ({e})"),
    }
}

/// A holder killed but not yet reaped (a zombie: its pid still exists) is dead too.
#[test]
fn zombie_holder_is_taken_over() {
    let _w = util::file_watchdog("zombie_holder_is_taken_over", Duration::from_secs(60));
    let (path, _c) = unique_file("file-zombie");
    let seg = MappedSegment::create_file(&path, 64).unwrap();
    let mut child = ChildProc::spawn("hold-lock", &[path.to_str().unwrap()]);
    assert_eq!(child.expect_line(T), "locked");
    let status = util::spawning(|| {
        Command::new("kill")
            .args(["-9", &child.pid().to_string()])
            .status()
    })
    .unwrap();
    assert!(status.success());
    // Not reaped until `child` is dropped: the holder is a zombie meanwhile.
    let guard = seg.lock_timeout(Duration::from_secs(5)).unwrap();
    assert!(guard.owner_died());
    drop(guard);
    child.kill9();
}

/// A C program maps the same file through include/qshm.h and increments a counter under
/// the same lock as Rust processes and threads: the total is exact.
#[test]
fn c_program_shares_the_lock() {
    let _w = util::file_watchdog("c_program_shares_the_lock", Duration::from_secs(300));
    let Some((exe, _dir)) = util::compile_c("counter") else {
        return;
    };
    let (path, _c) = unique_file("file-c");
    let seg = Arc::new(MappedSegment::create_file(&path, 64).unwrap());
    const N: u64 = 20_000;
    let mut c_children: Vec<_> = (0..2)
        .map(|_| {
            util::spawning(|| {
                Command::new(&exe)
                    .arg(&path)
                    .arg(N.to_string())
                    .stdout(Stdio::null())
                    .spawn()
            })
            .unwrap()
        })
        .collect();
    let mut rust_children: Vec<_> = (0..2)
        .map(|_| ChildProc::spawn("increment", &[path.to_str().unwrap(), &N.to_string()]))
        .collect();
    let seg2 = Arc::clone(&seg);
    let here = std::thread::spawn(move || increment(&seg2, N));
    here.join().unwrap();
    for c in &mut c_children {
        let status = c.wait().unwrap();
        assert!(status.success(), "C counter: {status}");
    }
    for c in &mut rust_children {
        assert!(c.wait(Duration::from_secs(240)).success());
    }
    assert_eq!(util::read_u64(seg.lock().unwrap().as_slice()), 5 * N);
}

/// A C process killed while holding the lock is detected by Rust, like a Rust one.
#[test]
fn c_holder_killed_is_taken_over() {
    let _w = util::file_watchdog("c_holder_killed_is_taken_over", Duration::from_secs(120));
    let Some((exe, _dir)) = util::compile_c("counter") else {
        return;
    };
    let (path, _c) = unique_file("file-c-kill");
    let seg = MappedSegment::create_file(&path, 64).unwrap();
    // Hold the lock so the C program blocks in qshm_lock... then let it run forever.
    let mut c = util::spawning(|| {
        Command::new(&exe)
            .arg(&path)
            .arg("1000000000")
            .stdout(Stdio::piped())
            .spawn()
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    c.kill().unwrap();
    c.wait().unwrap();
    // Whether it died holding the lock or not, the lock is usable at once.
    let guard = seg.lock_timeout(Duration::from_secs(5)).unwrap();
    eprintln!(
        "C holder killed: owner_died={} generation={}",
        guard.owner_died(),
        seg.lock_generation()
    );
}

fn disk_backed_dir() -> Option<PathBuf> {
    for base in ["/tmp", "/var/tmp"] {
        if let Ok(st) = rustix::fs::statfs(base) {
            #[allow(clippy::unnecessary_cast)] // f_type's type varies by architecture
            let f_type = st.f_type as i64;
            if !matches!(f_type, 0x0102_1994 | 0x8584_58f6 | 0x9584_58f6) {
                return Some(PathBuf::from(base));
            }
        }
    }
    None
}

#[test]
fn disk_backed_directory_needs_opt_in() {
    let _w = util::file_watchdog("disk_backed_directory", Duration::from_secs(60));
    let Some(base) = disk_backed_dir() else {
        eprintln!("SKIPPED: /tmp and /var/tmp are both RAM-backed here");
        return;
    };
    let dir = base.join(util::unique_key("disk"));
    let _c = PathCleanup::new().path(&dir);
    std::fs::create_dir(&dir).unwrap();
    let err = FileOptions::new()
        .directory(&dir)
        .create("seg", 64)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyError, "{err}");
    assert!(err.to_string().contains("disk-backed"), "{err}");
    assert!(!dir.join("seg").exists());
    let seg = FileOptions::new()
        .directory(&dir)
        .allow_disk_backed(true)
        .remove_on_last_detach(false)
        .create("seg", 64)
        .unwrap();
    assert!(!seg.is_ram_backed());
    let err = FileOptions::new().directory(&dir).open("seg").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyError, "{err}");
    assert!(FileOptions::new()
        .directory(&dir)
        .allow_disk_backed(true)
        .open("seg")
        .is_ok());
}

fn write_file(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(bytes).unwrap();
}

fn header(version: u32, header_size: u32, data_size: u64) -> Vec<u8> {
    let mut b = vec![0u8; header_size.max(88) as usize];
    b[..8].copy_from_slice(b"QSHM\0SEG");
    b[8..12].copy_from_slice(&version.to_ne_bytes());
    b[12..16].copy_from_slice(&header_size.to_ne_bytes());
    b[16..24].copy_from_slice(&data_size.to_ne_bytes());
    b[28..32].copy_from_slice(&0x0102_0304u32.to_ne_bytes());
    if cfg!(qshm_portable) {
        // The protocol flag of the portable mode's builds (classic record locks), which a
        // segment must carry to be opened there.
        b[24..28].copy_from_slice(&2u32.to_ne_bytes());
    }
    b
}

#[test]
fn garbage_headers_are_refused_cleanly() {
    let _w = util::file_watchdog("garbage_headers", Duration::from_secs(60));
    let (path, _c) = unique_file("file-garbage");
    let mut noise = vec![0u8; 8192];
    let mut x = 0x1234_5678_9abc_def0u64;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut valid_plus = header(2, 4096, 100);
    valid_plus.resize(4096 + 100, 0);
    // A segment of the other users' protocol (record locks where this build uses flock and
    // open-file-description locks, or the reverse: flag 2): neither would see the other's
    // users, so it is refused.
    let mut other_protocol = valid_plus.clone();
    other_protocol[24] ^= 2;
    let cases: Vec<(&str, Vec<u8>, ErrorKind)> = vec![
        ("empty", vec![], ErrorKind::InvalidSize),
        (
            "ten bytes",
            b"QSHM\0SEG\x01\x00".to_vec(),
            ErrorKind::InvalidSize,
        ),
        ("noise", noise, ErrorKind::KeyError),
        ("version 4", header(4, 4096, 1), ErrorKind::Unsupported),
        ("version 1", header(1, 4096, 1), ErrorKind::Unsupported),
        (
            "smaller than claimed",
            header(2, 4096, 1 << 20),
            ErrorKind::InvalidSize,
        ),
        ("odd header size", header(2, 100, 1), ErrorKind::KeyError),
        (
            "huge data size",
            header(2, 4096, u64::MAX - 10),
            ErrorKind::InvalidSize,
        ),
        ("zero data", header(2, 4096, 0), ErrorKind::InvalidSize),
        ("the other protocol", other_protocol, ErrorKind::Unsupported),
    ];
    for (what, bytes, kind) in cases {
        write_file(&path, &bytes);
        let err = MappedSegment::open_file(&path).unwrap_err();
        assert_eq!(err.kind(), kind, "{what}: {err}");
        // The same checks apply to a descriptor received from a peer.
        let fd = std::fs::File::open(&path).unwrap();
        let err = MappedSegment::from_fd(fd.into(), ReceiveOptions::new().allow_unsealed(true))
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{what} (fd): {err}");
    }
    // And a hand-made valid one opens.
    write_file(&path, &valid_plus);
    let seg = MappedSegment::open_file(&path).unwrap();
    assert_eq!(seg.size(), 100);
    // Not a regular file.
    let err = MappedSegment::open_file("/dev/shm").unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Unknown, "{err}");
}

#[test]
fn bad_arguments_are_typed_errors() {
    let _w = util::file_watchdog("bad_arguments", Duration::from_secs(60));
    assert_eq!(
        MappedSegment::memfd("x", 0).unwrap_err().kind(),
        ErrorKind::InvalidSize
    );
    assert_eq!(
        MappedSegment::memfd("x", usize::MAX).unwrap_err().kind(),
        ErrorKind::InvalidSize
    );
    assert_eq!(
        MappedSegment::memfd("a\0b", 1).unwrap_err().kind(),
        ErrorKind::KeyError
    );
    assert_eq!(
        MappedSegment::create_temporary(0).unwrap_err().kind(),
        ErrorKind::InvalidSize
    );
    let missing = FileOptions::new().resolve(util::unique_key("missing"));
    assert_eq!(
        MappedSegment::open_file(&missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let err =
        MappedSegment::from_env_var("QSHM_TEST_SURELY_UNSET_VARIABLE", &ReceiveOptions::new())
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // A sealed memfd cannot be write-sealed while a guard... (the lock is free here) and a
    // file cannot be sealed at all.
    let seg = MappedSegment::create_temporary(8).unwrap();
    let _c = PathCleanup::new().path(seg.path().unwrap());
    assert_eq!(seg.seal_write().unwrap_err().kind(), ErrorKind::Unsupported);
    // An unsealed memfd from MemfdOptions is usable locally.
    let unsealed = MemfdOptions::new().seal_size(false).create("u", 8).unwrap();
    assert!(!unsealed.is_shrink_sealed());
}

/// An environment variable that names a standard stream is refused before the descriptor
/// is adopted: stdin, stdout and stderr stay open.
#[test]
fn a_standard_stream_named_by_the_environment_is_refused() {
    let _w = util::Watchdog::new("a_standard_stream_named_by_the_environment", T);
    for fd in ["0", "1", "2"] {
        let mut child = ChildProc::spawn_configured("adopt-from-env", &[], |c| {
            c.env("QSHM_TEST_ADOPT", format!("{fd}:64"));
        });
        assert_eq!(
            child.expect_line(T),
            "KeyError, stdout still open",
            "fd {fd}"
        );
        assert!(child.wait(T).success());
    }
}

/// A process forks (no exec) holding a segment file that goes with its last user; the
/// forked copy is dropped first, as a worker's destructors would. It shares the parent's
/// open file description, and so its attach count (`flock`), and must not take itself for
/// the last user: the file stays for the parent, and goes with the parent.
#[test]
fn a_forked_copy_dropped_first_leaves_the_file() {
    let _w = util::Watchdog::new("a_forked_copy_dropped_first_leaves_the_file", T * 2);
    let (path, _c) = unique_file("forkcopy");
    let mut child = ChildProc::spawn("fork-and-drop-copy", &[path.to_str().unwrap()]);
    assert_eq!(child.expect_line(T), "kept");
    assert!(child.wait(T).success());
    assert!(
        !path.exists(),
        "the parent's detach, the last, did not remove the file"
    );
}

/// A holder run through `prefix` (a namespace wrapper): waited for while it lives, taken
/// over within 1 s with `owner_died()` once it is killed. Before liveness slots, a segment
/// made in another PID namespace was refused, and across time namespaces a live holder's
/// start time did not match its tag: taken over at once.
fn file_holder_elsewhere(name: &str, prefix: &[&str]) {
    let (path, _c) = unique_file(name);
    let seg = FileOptions::new().create(&path, 64).unwrap();
    let mut holder = ChildProc::spawn_under(prefix, "hold-lock", &[path.to_str().unwrap()]);
    assert_eq!(holder.expect_line(T), "locked");
    let err = seg.lock_timeout(Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    holder.kill9();
    let guard = seg
        .lock_timeout(Duration::from_secs(1))
        .expect("no lock within 1 s of the holder's death");
    assert!(guard.owner_died());
    assert_eq!(util::read_u64(guard.as_slice()), 1);
}

#[test]
fn holder_in_another_pid_namespace() {
    let _w = util::Watchdog::new("mapped holder_in_another_pid_namespace", T * 2);
    file_holder_elsewhere("file-pidns-holder", util::OTHER_PID_NAMESPACE);
}

#[test]
fn holder_in_another_time_namespace() {
    let _w = util::Watchdog::new("mapped holder_in_another_time_namespace", T * 2);
    file_holder_elsewhere("file-timens-holder", util::OTHER_TIME_NAMESPACE);
}

/// The other way round: the holder here, the waiter in a new PID namespace, where the
/// holder's thread id names nothing (or another process).
#[test]
fn waiter_in_another_pid_namespace() {
    let _w = util::Watchdog::new("mapped waiter_in_another_pid_namespace", T * 2);
    let (path, _c) = unique_file("file-pidns-waiter");
    let seg = FileOptions::new().create(&path, 64).unwrap();
    let path_arg = path.to_str().unwrap();
    let guard = seg.lock().unwrap();
    let mut waiter =
        ChildProc::spawn_under(util::OTHER_PID_NAMESPACE, "lock-for", &[path_arg, "300"]);
    assert_eq!(waiter.expect_line(T), "Timeout");
    assert!(waiter.wait(T).success());
    drop(guard);
    let mut waiter =
        ChildProc::spawn_under(util::OTHER_PID_NAMESPACE, "lock-for", &[path_arg, "5000"]);
    assert_eq!(waiter.expect_line(T), "locked, owner died false");
    assert!(waiter.wait(T).success());
    // And a holder killed there is taken over here.
    file_holder_elsewhere("file-pidns-holder2", util::OTHER_PID_NAMESPACE);
}

/// The waiter cannot read the holder's /proc (`hidepid=2`, the waiter another user): it
/// waits while the holder lives and takes over within 1 s of its death, from the kernel's
/// word alone.
#[test]
fn waiter_behind_hidepid() {
    let _w = util::Watchdog::new("mapped waiter_behind_hidepid", T * 2);
    let (path, _c) = unique_file("file-hidepid");
    let seg = FileOptions::new()
        .permissions(0o666)
        .create(&path, 64)
        .unwrap();
    let path_arg = path.to_str().unwrap();
    let mut holder = ChildProc::spawn("hold-lock", &[path_arg]);
    assert_eq!(holder.expect_line(T), "locked");
    let mut waiter = ChildProc::spawn_under(
        util::BEHIND_HIDEPID_AS_NOBODY,
        "wait-then-take-over",
        &[path_arg, &holder.pid().to_string()],
    );
    assert_eq!(waiter.expect_line(T), "holder hidden true, Timeout");
    holder.kill9();
    waiter.send("go");
    assert_eq!(waiter.expect_line(T), "locked within 1 s, owner died true");
    assert!(waiter.wait(T).success());
    drop(seg);
}

/// A mapping inherited over `unshare(CLONE_NEWPID)` + `fork()`: the child is pid 1 of a new
/// namespace and its thread id means something else here. It used to be taken over within
/// a millisecond while it held the lock.
#[test]
fn mapping_inherited_into_a_new_pid_namespace() {
    let _w = util::Watchdog::new("mapping_inherited_into_a_new_pid_namespace", T * 2);
    let (path, _c) = unique_file("file-pidns-fork");
    let seg = FileOptions::new().create(&path, 64).unwrap();
    let mut middle = ChildProc::spawn("pidns-fork-hold", &[path.to_str().unwrap()]);
    assert_eq!(middle.expect_line(T), "locked as pid 1");
    let err = seg.lock_timeout(Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // Its parent killed, the holder gets SIGKILL (PR_SET_PDEATHSIG).
    middle.kill9();
    let guard = seg
        .lock_timeout(Duration::from_secs(1))
        .expect("no lock within 1 s of the holder's death");
    assert!(guard.owner_died());
    assert_eq!(util::read_u64(guard.as_slice()), 1);
}

/// A memfd received by a child: the child's description of it is its own, so a child
/// killed holding the lock is recognised (the sender's description, shared over exec,
/// would have kept its slot alive).
#[test]
fn memfd_receiver_killed_holding_is_taken_over() {
    let _w = util::Watchdog::new("memfd_receiver_killed_holding_is_taken_over", T * 2);
    let seg = MemfdOptions::new().create("held", 64).unwrap();
    let mut child = ChildProc::spawn_configured("memfd-hold", &[], |cmd| {
        seg.pass_to_child(cmd).unwrap();
    });
    assert_eq!(child.expect_line(T), "locked");
    let err = seg.lock_timeout(Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    child.kill9();
    let guard = seg
        .lock_timeout(Duration::from_secs(1))
        .expect("no lock within 1 s of the holder's death");
    assert!(guard.owner_died());
}

/// The other order: the opener detaches first while a child it forked (no exec) still has
/// its copy attached. The shared description's flock turned exclusive at once, and the
/// file was removed under the child.
#[test]
fn a_forked_copy_still_attached_keeps_the_file() {
    let _w = util::Watchdog::new("a_forked_copy_still_attached_keeps_the_file", T * 2);
    let (path, _c) = unique_file("forkcopy-last");
    let mut child = ChildProc::spawn("fork-parent-detaches-first", &[path.to_str().unwrap()]);
    assert_eq!(
        child.expect_line(T),
        "parent removed false, copy saw the file true, copy removed true"
    );
    assert!(child.wait(T).success());
    assert!(
        !path.exists(),
        "the copy's detach, the last, did not remove the file"
    );
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "write-read-only" => {
            let seg = FileOptions::new()
                .access(AccessMode::ReadOnly)
                .open(&args[1])
                .unwrap();
            // SAFETY: none: this write must fault (the data area is mapped read-only), and
            // the test checks that this process dies of SIGSEGV before it gets further.
            unsafe { seg.as_mut_ptr().write_volatile(1) };
            std::process::exit(0);
        }
        "adopt-from-env" => {
            let err =
                MappedSegment::from_env_var("QSHM_TEST_ADOPT", &ReceiveOptions::new()).unwrap_err();
            util::say(&format!("{:?}, stdout still open", err.kind()));
        }
        "fork-and-drop-copy" => {
            let path = PathBuf::from(&args[1]);
            let seg = FileOptions::new().create(&path, 64).unwrap();
            assert!(seg.removes_on_last_detach());
            // SAFETY: the copy is dropped (unmapping, flock, maybe unlink) in a child of a
            // process whose other threads are idle test-harness threads, and leaves with
            // _exit, running no other destructor or atexit handler.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                drop(seg);
                // SAFETY: see above.
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            let other = MappedSegment::open_file(&path).map(drop);
            util::say(if path.exists() && other.is_ok() && status == 0 {
                "kept"
            } else {
                "removed under its user"
            });
            assert!(
                seg.detach().unwrap(),
                "the last detach did not remove the file"
            );
        }
        "file-pong" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let mut guard = seg.lock().unwrap();
            let got = String::from_utf8_lossy(&guard.as_slice()[..4]).into_owned();
            guard.as_mut_slice().unwrap()[4..8].copy_from_slice(b"pong");
            drop(guard);
            util::say(&format!("got {got}"));
        }
        "open-then-detach" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            util::say("open");
            let _ = util::read_stdin_line();
            let removed = seg.detach().unwrap();
            util::say(&format!("detached {removed}"));
        }
        "memfd-from-env" => {
            let seg = MappedSegment::from_env(&ReceiveOptions::new()).unwrap();
            let mut guard = seg.lock().unwrap();
            let got = String::from_utf8_lossy(&guard.as_slice()[..6]).into_owned();
            guard.as_mut_slice().unwrap()[..5].copy_from_slice(b"child");
            drop(guard);
            // Adopted once only.
            assert_eq!(
                MappedSegment::from_env(&ReceiveOptions::new())
                    .unwrap_err()
                    .kind(),
                ErrorKind::AlreadyAttached
            );
            util::say(&format!("got {got} size {}", seg.size()));
        }
        "file-from-env" => {
            // A plain file is not sealed: the child opts in, as for any received file.
            let seg = MappedSegment::from_env(ReceiveOptions::new().allow_unsealed(true)).unwrap();
            assert_eq!(seg.backing(), Backing::Fd, "a tmpfs file is not a memfd");
            let mut guard = seg.lock().unwrap();
            let got = String::from_utf8_lossy(&guard.as_slice()[..6]).into_owned();
            guard.as_mut_slice().unwrap()[..5].copy_from_slice(b"child");
            drop(guard);
            util::say(&format!("got {got} size {}", seg.size()));
        }
        "file-from-env-hold" => {
            let seg = MappedSegment::from_env(ReceiveOptions::new().allow_unsealed(true)).unwrap();
            assert_eq!(seg.backing(), Backing::Fd);
            util::say(&format!(
                "attached removes {}",
                seg.removes_on_last_detach()
            ));
            let _ = util::read_stdin_line();
            util::say(&format!("detached {}", seg.detach().unwrap()));
        }
        "socket-recv" => {
            let stream = connect_abstract(&args[1]);
            let seg = MappedSegment::recv_from(&stream, &ReceiveOptions::new()).unwrap();
            let mut guard = seg.lock().unwrap();
            let got = String::from_utf8_lossy(&guard.as_slice()[..5]).into_owned();
            guard.as_mut_slice().unwrap()[5..10].copy_from_slice(b"world");
            drop(guard);
            util::say(&format!("got {got}"));
        }
        "hostile-truncate" => {
            let seg = MappedSegment::from_env(&ReceiveOptions::new()).unwrap();
            let name = |r: rustix::io::Result<()>| match r {
                Ok(()) => "succeeded".to_string(),
                Err(rustix::io::Errno::PERM) => "EPERM".to_string(),
                Err(e) => format!("{e}"),
            };
            util::say(&format!(
                "shrink {}",
                name(rustix::fs::ftruncate(seg.as_fd(), 0))
            ));
            util::say(&format!(
                "grow {}",
                name(rustix::fs::ftruncate(seg.as_fd(), 1 << 30))
            ));
        }
        "send-unsealed" => {
            let stream = connect_abstract(&args[1]);
            let seg = MemfdOptions::new()
                .seal_size(false)
                .create("unsealed", 8192)
                .unwrap();
            seg.lock().unwrap().as_mut_slice().unwrap()[..8].copy_from_slice(b"unsealed");
            seg.send_over(&stream).unwrap();
            seg.send_over(&stream).unwrap();
            if util::read_stdin_line().as_deref() == Some("truncate") {
                rustix::fs::ftruncate(seg.as_fd(), seg.data_offset() as u64).unwrap();
                util::say("truncated");
            }
            let _ = util::read_stdin_line();
        }
        "lock-for" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let ms = args[2].parse().unwrap();
            match seg.lock_timeout(Duration::from_millis(ms)) {
                Ok(g) => util::say(&format!("locked, owner died {}", g.owner_died())),
                Err(e) => util::say(&format!("{:?}", e.kind())),
            };
        }
        "pidns-fork-hold" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            // SAFETY: unshare(CLONE_NEWPID) changes the PID namespace of later children only.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWPID) }, 0, "unshare");
            // SAFETY: the child runs qshm and std code in a process whose other threads are
            // idle test-harness threads (glibc's malloc is fork-safe), and never returns
            // from this arm.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: asks the kernel for SIGKILL when the parent dies; no pointers.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                let mut guard = seg.lock().unwrap();
                let bytes = guard.as_mut_slice().unwrap();
                let v = util::read_u64(bytes);
                util::write_u64(bytes, v + 1);
                util::say(&format!("locked as pid {}", std::process::id()));
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
        }
        "memfd-hold" => {
            let seg = MappedSegment::from_env(&ReceiveOptions::new()).unwrap();
            let _guard = seg.lock().unwrap();
            util::say("locked");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        "fork-parent-detaches-first" => {
            let path = PathBuf::from(&args[1]);
            let seg = FileOptions::new().create(&path, 64).unwrap();
            let mut fds = [0; 2];
            // SAFETY: `fds` is a valid out-array of two descriptors.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            // SAFETY: the child runs qshm and std code in a process whose other threads are
            // idle test-harness threads (glibc's malloc is fork-safe), and leaves with _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let mut byte = 0u8;
                // SAFETY: reads one byte into a valid buffer from our pipe.
                unsafe { libc::read(fds[0], (&mut byte as *mut u8).cast(), 1) };
                let there = path.exists();
                let removed = seg.detach().unwrap();
                // SAFETY: leaves the forked child without running the parent's destructors.
                unsafe { libc::_exit(i32::from(there) * 2 + i32::from(removed)) };
            }
            let removed = seg.detach().unwrap();
            // SAFETY: writes one byte from a valid buffer to our pipe.
            unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) };
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            let code = libc::WEXITSTATUS(status);
            util::say(&format!(
                "parent removed {removed}, copy saw the file {}, copy removed {}",
                code & 2 != 0,
                code & 1 != 0
            ));
        }
        "wait-then-take-over" => {
            // As another user behind hidepid: the holder (args[2]) is invisible here.
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let hidden = !Path::new(&format!("/proc/{}", args[2])).exists();
            let first = match seg.lock_timeout(Duration::from_millis(300)) {
                Ok(_) => "locked".to_string(),
                Err(e) => format!("{:?}", e.kind()),
            };
            util::say(&format!("holder hidden {hidden}, {first}"));
            assert_eq!(util::read_stdin_line().as_deref(), Some("go"));
            let said = match seg.lock_timeout(Duration::from_secs(1)) {
                Ok(g) => format!("locked within 1 s, owner died {}", g.owner_died()),
                Err(e) => format!("{:?}", e.kind()),
            };
            util::say(&said);
        }
        "hold-lock" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            let mut guard = seg.lock().unwrap();
            let bytes = guard.as_mut_slice().unwrap();
            let v = util::read_u64(bytes);
            util::write_u64(bytes, v + 1);
            util::say("locked");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        "increment" => {
            let seg = MappedSegment::open_file(&args[1]).unwrap();
            increment(&seg, args[2].parse().unwrap());
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
