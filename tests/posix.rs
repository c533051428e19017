//! The POSIX realtime backend: Qt 6.11 interop on `PosixRealtime` keys, the crash-robust
//! lock, ownership without leaks, a full `/dev/shm`, names.
#![cfg(unix)] // the POSIX backend (Unix)

mod util;

use std::time::{Duration, Instant};

use qshm::{AccessMode, ErrorKind, KeyType, LastDetach, NativeKey, SharedMemory};
use util::qt::{hex, QtPeer, QtVersion};
use util::{ChildProc, Cleanup, Watchdog};

fn watchdog(name: &'static str) -> Watchdog {
    Watchdog::new(name, Duration::from_secs(240))
}

/// A legacy and a non-legacy POSIX key for a fresh name.
fn keys(name: &str) -> [(NativeKey, Cleanup); 2] {
    let legacy = NativeKey::legacy(&util::unique_key(name), KeyType::PosixRealtime);
    let native = NativeKey::platform_safe(&util::unique_key(name), KeyType::PosixRealtime);
    let c1 = Cleanup::new().segment(&legacy);
    let c2 = Cleanup::new().segment(&native);
    [(legacy, c1), (native, c2)]
}

fn shm_file(key: &NativeKey) -> String {
    format!("/dev/shm{}", key.native_key())
}

fn sem_file(key: &NativeKey) -> String {
    format!("/dev/shm/sem.{}", &key.lock_key().native_key()[1..])
}

fn peer_for(key: &NativeKey) -> QtPeer {
    let mut qt = QtPeer::spawn(QtVersion::Qt6);
    qt.cmd(&format!("nkey {}", hex(key.to_string().as_bytes())))
        .expect_ok("nkey");
    let info = qt.cmd("info").expect_ok("info");
    assert_eq!(
        info.field_str(1),
        key.to_string(),
        "Qt parsed the key text differently"
    );
    qt
}

#[test]
#[cfg_attr(
    not(all(target_arch = "x86_64", qshm_libc = "glibc64")),
    ignore = "Qt interop runs on x86_64 glibc only: the PyQt peers are x86_64 builds"
)]
fn qt_creates_rust_attaches_both_modes() {
    let _w = watchdog("qt_creates_rust_attaches_both_modes");
    for (key, _c) in keys("posix-qtcreates") {
        let mut qt = peer_for(&key);
        qt.cmd("create 3000 rw").expect_ok("create");
        qt.cmd(&format!("write 0 {}", hex(b"from Qt")))
            .expect_ok("write");
        let mut ro = SharedMemory::with_native_key(key.clone());
        ro.attach(AccessMode::ReadOnly).unwrap();
        assert_eq!(ro.size(), 3000, "size from fstat: exactly Qt's ftruncate");
        assert_eq!(&ro.lock().unwrap().as_slice()[..7], b"from Qt");
        assert_eq!(
            ro.lock().unwrap().as_mut_slice().unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
        let mut rw = SharedMemory::with_native_key(key.clone());
        rw.attach(AccessMode::ReadWrite).unwrap();
        rw.lock().unwrap().as_mut_slice().unwrap()[100..107].copy_from_slice(b"from Rs");
        assert_eq!(
            qt.cmd("read 100 7").expect_ok("read").field_bytes(0),
            b"from Rs"
        );
        ro.detach().unwrap();
        rw.detach().unwrap();
        // Qt still maps it: qshm's last detach must not remove it.
        assert!(
            util::exists(&shm_file(&key)),
            "removed while Qt has it attached"
        );
        qt.cmd("detach").expect_ok("detach");
        qt.close();
        // Qt leaves POSIX segments behind (docs/qt-ipc.md §8.1); the clean-up path removes them.
        assert!(SharedMemory::remove_orphan(&key).unwrap());
        assert!(!util::exists(&shm_file(&key)));
        assert!(!util::exists(&sem_file(&key)));
    }
}

#[test]
#[cfg_attr(
    not(all(target_arch = "x86_64", qshm_libc = "glibc64")),
    ignore = "Qt interop runs on x86_64 glibc only: the PyQt peers are x86_64 builds"
)]
fn rust_creates_qt_attaches_both_modes() {
    let _w = watchdog("rust_creates_qt_attaches_both_modes");
    for (key, _c) in keys("posix-rustcreates") {
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create(5000, AccessMode::ReadWrite).unwrap();
        shm.lock().unwrap().as_mut_slice().unwrap()[..8].copy_from_slice(b"from Rs!");
        let mut qt = peer_for(&key);
        qt.cmd("create 5000 rw")
            .expect_err("create on an existing POSIX key");
        qt.cmd("attach ro").expect_ok("attach ro");
        assert_eq!(qt.cmd("size").expect_ok("size").field_u64(0), 5000);
        assert_eq!(
            qt.cmd("read 0 8").expect_ok("read").field_bytes(0),
            b"from Rs!"
        );
        qt.cmd("detach").expect_ok("detach");
        qt.cmd("attach rw").expect_ok("attach rw");
        qt.cmd(&format!("write 200 {}", hex(b"from Qt")))
            .expect_ok("write");
        assert_eq!(&shm.lock().unwrap().as_slice()[200..207], b"from Qt");
        qt.cmd("detach").expect_ok("detach");
        // Qt detached (and unmapped): qshm's detach is the last and removes the segment.
        // The lock stays while Qt has it open: Qt's failed create replaced it
        // (docs/qt-ipc.md §5) and
        // Qt's object still maps the new one; Qt unlinks the one it created on destruction.
        shm.detach().unwrap();
        assert!(!util::exists(&shm_file(&key)), "segment left");
        // The portable backend cannot see Qt's open semaphore (no /proc): the lock goes with
        // the segment when no qshm process waits for it. Qt's object keeps the one it has.
        assert_eq!(
            util::exists(&sem_file(&key)),
            !cfg!(qshm_portable),
            "removed the lock a Qt object still has open"
        );
        qt.close();
        assert!(!util::exists(&sem_file(&key)), "lock left");
    }
}

#[test]
#[cfg_attr(
    not(all(target_arch = "x86_64", qshm_libc = "glibc64")),
    ignore = "Qt interop runs on x86_64 glibc only: the PyQt peers are x86_64 builds"
)]
fn lock_exclusion_both_ways_with_qt() {
    let _w = watchdog("lock_exclusion_both_ways_with_qt");
    for (key, _c) in keys("posix-lockexcl") {
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create(64, AccessMode::ReadWrite).unwrap();
        let mut qt = peer_for(&key);
        qt.cmd("attach rw").expect_ok("attach");
        let slack = qt.clock_error();

        qt.send("lockhold 300");
        let locked = qt.recv().expect_ok("lockhold");
        let asked = Instant::now();
        assert_eq!(shm.try_lock().unwrap_err().kind(), ErrorKind::WouldBlock);
        let guard = shm.lock().unwrap();
        let got = Instant::now();
        assert!(!guard.owner_died());
        drop(guard);
        let unlocked = qt.recv().expect_ok("lockhold: unlocked");
        let unlocking = qt.instant(unlocked.field_u64(0));
        assert!(asked + slack >= locked.t);
        assert!(
            got + slack >= unlocking,
            "Rust got the lock {:?} before Qt began to unlock",
            unlocking.saturating_duration_since(got)
        );

        let guard = shm.lock().unwrap();
        qt.send("lock");
        std::thread::sleep(Duration::from_millis(300));
        let released = Instant::now();
        drop(guard);
        let qt_locked = qt.recv().expect_ok("lock");
        assert!(
            qt_locked.t + slack >= released,
            "Qt got the lock before Rust unlocked"
        );
        qt.cmd("unlock").expect_ok("unlock");
        qt.cmd("detach").expect_ok("detach");
        qt.close();
    }
}

/// kill -9 of a qshm process holding the POSIX lock, 50 times in a row: each time this
/// process gets the lock within 1 s and is told the holder died.
#[test]
fn killed_holder_50_times_posix() {
    let _w = watchdog("killed_holder_50_times_posix");
    killed_holder(KeyType::PosixRealtime, 50, true);
}

/// The same for System V: the kernel gives the lock back at once (SEM_UNDO); System V
/// cannot tell that the holder died.
#[test]
fn killed_holder_50_times_system_v() {
    let _w = watchdog("killed_holder_50_times_system_v");
    killed_holder(KeyType::SystemV, 50, false);
}

fn killed_holder(t: KeyType, rounds: usize, tells: bool) {
    let key = NativeKey::legacy(&util::unique_key("killedholder"), t);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let text = key.to_string();
    let mut slowest = Duration::ZERO;
    for round in 0..rounds {
        let mut child = ChildProc::spawn("hold_lock", &[&text]);
        assert_eq!(child.expect_line(Duration::from_secs(30)), "locked");
        assert_eq!(
            shm.try_lock().unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "round {round}"
        );
        child.kill9();
        let start = Instant::now();
        let mut guard = shm
            .lock_timeout(Duration::from_secs(1))
            .unwrap_or_else(|e| {
                panic!("round {round}: no lock within 1 s after the holder died: {e}")
            });
        slowest = slowest.max(start.elapsed());
        assert_eq!(guard.owner_died(), tells, "round {round}");
        // The dead holder was half-way through: its increment landed, and we repair.
        let bytes = guard.as_mut_slice().unwrap();
        assert_eq!(util::read_u64(bytes), round as u64 + 1, "round {round}");
        guard.mark_consistent();
        assert!(!guard.owner_died());
        drop(guard);
        // Told once, not twice.
        assert!(!shm.lock().unwrap().owner_died());
    }
    eprintln!("{t:?}: slowest recovery {slowest:?} over {rounds} kills");
}

/// After kill -9 of every attacher, the clean-up path removes the segment and its lock.
#[test]
fn cleanup_after_every_attacher_was_killed() {
    let _w = watchdog("cleanup_after_every_attacher_was_killed");
    for (key, _c) in keys("posix-allkilled") {
        let text = key.to_string();
        let mut creator = ChildProc::spawn("create_and_hold", &[&text]);
        assert_eq!(creator.expect_line(Duration::from_secs(30)), "ready");
        let mut others: Vec<_> = (0..2)
            .map(|_| ChildProc::spawn("attach_and_hold", &[&text]))
            .collect();
        for o in &others {
            assert_eq!(o.expect_line(Duration::from_secs(30)), "ready");
        }
        // In use: not an orphan.
        assert!(!SharedMemory::remove_orphan(&key).unwrap());
        assert!(util::exists(&shm_file(&key)));
        creator.kill9();
        for o in &mut others {
            o.kill9();
        }
        assert!(util::exists(&shm_file(&key)), "a crash removed it?");
        assert!(SharedMemory::remove_orphan(&key).unwrap());
        assert!(!util::exists(&shm_file(&key)), "segment left");
        assert!(!util::exists(&sem_file(&key)), "lock left");
    }
}

/// A segment larger than a small tmpfs fails at create() with OutOfResources, in a private
/// mount namespace with a 1 MiB tmpfs over /dev/shm.
#[test]
#[cfg_attr(
    qshm_portable,
    ignore = "Linux's backend: /dev/shm's room is checked through the file"
)]
fn full_dev_shm_is_out_of_resources() {
    let _w = watchdog("full_dev_shm_is_out_of_resources");
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs /dev/shm && exec {} child_entry --exact --nocapture --test-threads=1 -q",
        exe.display()
    );
    let out = util::spawning(|| {
        std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env(util::CHILD_ENV, "create_too_big")
            .output()
    })
    .expect(
        "unshare (util-linux) must be installed; the test needs root for a private mount namespace",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}\nstdout {stdout}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("@@ out of resources ok"), "{stdout}");
}

/// A holder run through `prefix` (a namespace wrapper) must be waited for while it lives and
/// taken over, told the owner died, once it is killed.
fn holder_elsewhere_is_waited_for_then_taken_over(name: &str, prefix: &[&str]) {
    let key = NativeKey::platform_safe(&util::unique_key(name), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut holder = ChildProc::spawn_under(prefix, "hold_lock", &[&key.to_string()]);
    assert_eq!(holder.expect_line(Duration::from_secs(30)), "locked");
    let err = shm.lock_timeout(Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    holder.kill9();
    let guard = shm
        .lock_timeout(Duration::from_secs(5))
        .expect("no lock after the holder was killed");
    assert!(guard.owner_died());
    assert_eq!(util::read_u64(guard.as_slice()), 1);
    drop(guard);
    shm.detach().unwrap();
}

/// Holder and waiter in different PID namespaces sharing /dev/shm (containers): the pid in
/// the owner record means nothing to the waiter, and it used to take a live holder's lock at
/// once. The kernel's word (the holder's liveness slot) holds in any namespace.
#[test]
fn holder_in_another_pid_namespace() {
    let _w = watchdog("holder_in_another_pid_namespace");
    holder_elsewhere_is_waited_for_then_taken_over("pidns-holder", util::OTHER_PID_NAMESPACE);
}

/// Holder and waiter in different time namespaces (`unshare --time`): process start times
/// read from /proc are shifted by the reader's offset, and a live holder used to look like
/// a reused pid. The liveness slot knows no clock.
#[test]
fn holder_in_another_time_namespace() {
    let _w = watchdog("holder_in_another_time_namespace");
    holder_elsewhere_is_waited_for_then_taken_over("timens-holder", util::OTHER_TIME_NAMESPACE);
}

/// The other way round: the holder here, the waiter in a new PID namespace, where the
/// holder's pid is not even visible.
#[test]
fn waiter_in_another_pid_namespace() {
    let _w = watchdog("waiter_in_another_pid_namespace");
    let key = NativeKey::platform_safe(&util::unique_key("pidns-waiter"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let guard = shm.lock().unwrap();
    let mut waiter = ChildProc::spawn_under(
        util::OTHER_PID_NAMESPACE,
        "lock_for",
        &[&key.to_string(), "300"],
    );
    assert_eq!(waiter.expect_line(Duration::from_secs(30)), "Timeout");
    // (Its detach takes the lock, as Qt's does: it ends once we let go.)
    drop(guard);
    assert!(waiter.wait(Duration::from_secs(30)).success());
    let mut waiter = ChildProc::spawn_under(
        util::OTHER_PID_NAMESPACE,
        "lock_for",
        &[&key.to_string(), "5000"],
    );
    assert_eq!(
        waiter.expect_line(Duration::from_secs(30)),
        "locked, owner died false"
    );
    assert!(waiter.wait(Duration::from_secs(30)).success());
    shm.detach().unwrap();
}

/// The waiter cannot read the holder's `/proc` (`hidepid=2`, the waiter another user): a
/// pid-based liveness check finds no `/proc/<pid>` and takes the live holder's lock at once.
/// The kernel's word (the holder's liveness slot) needs no `/proc`: the waiter times out
/// while the holder lives, and takes the lock over, told the owner died, within 1 s of its
/// death.
#[test]
fn waiter_that_cannot_see_the_holder_in_proc() {
    let _w = watchdog("waiter_that_cannot_see_the_holder_in_proc");
    let key = NativeKey::platform_safe(&util::unique_key("hidepid"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    // `nobody` may attach and lock: the segment and its lock semaphore are made 0666.
    shm.set_permissions(0o666);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut holder = ChildProc::spawn("hold_lock", &[&key.to_string()]);
    assert_eq!(holder.expect_line(Duration::from_secs(30)), "locked");
    let holder_pid = holder.pid().to_string();
    let mut waiter = ChildProc::spawn_under(
        util::BEHIND_HIDEPID_AS_NOBODY,
        "wait_then_take_over",
        &[&key.to_string(), &holder_pid],
    );
    assert_eq!(
        waiter.expect_line(Duration::from_secs(30)),
        "holder hidden true, root false"
    );
    assert_eq!(waiter.expect_line(Duration::from_secs(30)), "Timeout");
    holder.kill9();
    waiter.send("go");
    assert_eq!(
        waiter.expect_line(Duration::from_secs(30)),
        "locked within 1 s, owner died true"
    );
    assert!(waiter.wait(Duration::from_secs(30)).success());
    shm.detach().unwrap();
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
}

/// The state letter of process `pid` in `/proc/<pid>/stat` (`Z`: a zombie).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The holder's main thread has exited while another of its threads holds the lock: the
/// process lives on, its leader a zombie (`Z` in `/proc/<pid>/stat`), which a pid-based
/// liveness check takes for a dead process. The lock is waited for while the holder lives,
/// and taken over, told the owner died, within 1 s of its death. Native targets only:
/// qemu-user runs a guest's threads as its own and does not end the leader alone (it never
/// becomes a zombie there), so the scenario cannot be made under emulation.
#[test]
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "x86")),
    ignore = "qemu-user cannot make a zombie leader with live threads"
)]
fn holder_whose_main_thread_exited() {
    let _w = watchdog("holder_whose_main_thread_exited");
    let key = NativeKey::platform_safe(&util::unique_key("zombieleader"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    let mut holder = ChildProc::spawn("hold_lock_leader_exits", &[&key.to_string()]);
    assert_eq!(
        holder.expect_line(Duration::from_secs(30)),
        "locked, leader exited"
    );
    assert_eq!(
        proc_state(holder.pid()),
        Some('Z'),
        "the leader is a zombie"
    );
    assert!(holder.expect_no_exit(), "the process lives on");
    let err = shm.lock_timeout(Duration::from_millis(300)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    holder.kill9();
    let guard = shm
        .lock_timeout(Duration::from_secs(1))
        .expect("no lock within 1 s after the holder was killed");
    assert!(guard.owner_died());
    assert_eq!(util::read_u64(guard.as_slice()), 1);
    drop(guard);
    shm.detach().unwrap();
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
}

/// Another process shrinks a POSIX segment under our mapping (`ftruncate`): touching the
/// pages that are gone is SIGBUS (`qshm read` died of it). `read_at` reads the file instead
/// of the mapping and says what is gone; with `check_size_on_lock`, `lock` refuses to lend
/// the bytes. The segment's own size does not change, and a check finds nothing to say while
/// it is whole.
#[test]
fn a_shrunk_segment_is_an_error_not_sigbus() {
    let _w = watchdog("a_shrunk_segment_is_an_error_not_sigbus");
    let key = NativeKey::platform_safe(&util::unique_key("shrunk"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(8192, AccessMode::ReadWrite).unwrap();
    shm.set_check_size_on_lock(true);
    assert!(shm.check_size_on_lock());
    shm.lock().unwrap().as_mut_slice().unwrap().fill(7);
    let mut buf = vec![0; 8192];
    shm.read_at(0, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 7));
    let err = shm.read_at(8000, &mut buf[..200]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    shm.check_size().unwrap();

    // The peer: another open file description of the same file.
    std::fs::OpenOptions::new()
        .write(true)
        .open(shm_file(&key))
        .and_then(|f| f.set_len(100))
        .unwrap();
    let err = shm.read_at(0, &mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    assert!(err.to_string().contains("shrunk"), "{err}");
    let mut head = [0u8; 100];
    shm.read_at(0, &mut head).unwrap();
    assert!(head.iter().all(|&b| b == 7));
    let err = shm.lock().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    // Refused without keeping the lock.
    shm.set_check_size_on_lock(false);
    let guard = shm.try_lock().unwrap();
    // The check on demand, with the lock held (what the Python binding makes before its
    // first touch of the bytes).
    let err = shm.check_size().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize, "{err}");
    assert!(
        err.to_string().contains("shrank the segment to 100 bytes"),
        "{err}"
    );
    drop(guard);
    shm.detach().unwrap();
    let err = shm.check_size().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAttached, "{err}");
}

/// The last qshm detach reads every process's maps to find non-qshm users (Qt maps the file
/// and closes it). When it cannot (here: out of descriptors, so /proc cannot be listed; or
/// another user's maps, or a hidepid /proc), it used to take that for "nobody" and remove
/// the segment under a Qt process; unknown now means in use: the segment stays.
#[test]
#[cfg_attr(qshm_portable, ignore = "Linux's backend: reads /proc")]
fn a_detach_that_cannot_see_who_maps_keeps_the_segment() {
    let _w = watchdog("a_detach_that_cannot_see_who_maps_keeps_the_segment");
    let key = NativeKey::platform_safe(&util::unique_key("failclosed"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let mut creator = SharedMemory::with_native_key(key.clone());
    creator.create(4096, AccessMode::ReadWrite).unwrap();
    let mut mapper = ChildProc::spawn("map_and_hold", &[&key.to_string()]);
    assert_eq!(mapper.expect_line(Duration::from_secs(30)), "mapped");
    let mut detacher = ChildProc::spawn("detach_out_of_descriptors", &[&key.to_string()]);
    // (Our own detach is not the last one: the detacher holds its attach count.)
    std::thread::sleep(Duration::from_millis(100));
    creator.detach().unwrap();
    assert_eq!(
        detacher.expect_line(Duration::from_secs(30)),
        "detached Ok(()), file there true"
    );
    assert!(detacher.wait(Duration::from_secs(30)).success());
    mapper.kill9();
    assert!(SharedMemory::remove_orphan(&key).unwrap());
}

/// The last qshm detach in another PID namespace (a container with its own /proc sharing
/// /dev/shm) cannot see a process outside that maps the segment as Qt does: its maps are
/// not in that /proc. The kernel still knows another description of the file is open; the
/// detach used to take the scan's "nobody" over it and remove the segment under the mapper.
#[test]
#[cfg_attr(
    qshm_portable,
    ignore = "Linux's backend: a process that maps the segment without qshm is invisible without /proc (posix_portable docs)"
)]
fn a_detach_in_another_pid_namespace_keeps_a_segment_mapped_outside() {
    let _w = watchdog("a_detach_in_another_pid_namespace_keeps_a_segment_mapped_outside");
    let key = NativeKey::platform_safe(&util::unique_key("pidns-detach"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let mut creator = SharedMemory::with_native_key(key.clone());
    creator.create(4096, AccessMode::ReadWrite).unwrap();
    let mut mapper = ChildProc::spawn("map_and_hold", &[&key.to_string()]);
    assert_eq!(mapper.expect_line(Duration::from_secs(30)), "mapped");
    let mut detacher = ChildProc::spawn_under(
        util::OTHER_PID_NAMESPACE,
        "attach_wait_detach",
        &[&key.to_string()],
    );
    assert_eq!(detacher.expect_line(Duration::from_secs(30)), "attached");
    creator.detach().unwrap(); // not the last: the detacher is attached
    assert!(util::exists(&shm_file(&key)));
    detacher.send("detach");
    assert_eq!(
        detacher.expect_line(Duration::from_secs(30)),
        "detached Ok(()), file there true"
    );
    assert!(detacher.wait(Duration::from_secs(30)).success());
    mapper.kill9();
    assert!(SharedMemory::remove_orphan(&key).unwrap());
}

/// `inspect::lock_state` reads a key's lock whether or not its segment exists, so that a
/// `create` waiting behind a lock taken with no owner record (a Qt holder, or a qshm holder
/// killed in the recorded window) can be diagnosed.
#[test]
#[cfg_attr(
    qshm_portable,
    ignore = "inspect reads glibc's semaphore file; the portable backend's record is in its companion"
)]
fn lock_state_with_and_without_a_segment() {
    use qshm::inspect::{lock_state, LockState};
    use qshm::{SemaphoreMode, SystemSemaphore};
    let _w = watchdog("lock_state_with_and_without_a_segment");
    let key = NativeKey::legacy(&util::unique_key("lockstate"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    assert_eq!(lock_state(&key).unwrap(), LockState::Absent);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    assert_eq!(lock_state(&key).unwrap(), LockState::Free);
    let guard = shm.lock().unwrap();
    assert_eq!(
        lock_state(&key).unwrap(),
        LockState::Held {
            pid: Some(std::process::id())
        }
    );
    drop(guard);
    shm.detach().unwrap();
    assert_eq!(lock_state(&key).unwrap(), LockState::Absent);
    // Taken with no record, no segment: what a creator waits behind.
    let sem = SystemSemaphore::with_native_key(key.lock_key(), 1, SemaphoreMode::Create).unwrap();
    sem.acquire().unwrap();
    assert_eq!(lock_state(&key).unwrap(), LockState::Held { pid: None });
    sem.release(1).unwrap();
    assert_eq!(lock_state(&key).unwrap(), LockState::Free);
}

#[test]
fn names_are_checked_before_any_syscall() {
    for (native, why) in [
        ("/a/b", "`/`"),
        ("/", "empty"),
        ("noslash", "start with"),
        ("/..", "not a valid"),
    ] {
        let mut shm = SharedMemory::with_native_key(NativeKey::new(native, KeyType::PosixRealtime));
        let err = shm.create(64, AccessMode::ReadWrite).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyError, "{native:?}: {err}");
        assert!(err.to_string().contains(why), "{native:?}: {err}");
    }
    let long = NativeKey::new(format!("/{}", "x".repeat(252)), KeyType::PosixRealtime);
    let mut shm = SharedMemory::with_native_key(long);
    let err = shm.create(64, AccessMode::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyError, "{err}");
    assert!(err.to_string().contains("Linux allows"), "{err}");
}

#[test]
fn both_backends_in_one_process() {
    let _w = watchdog("both_backends_in_one_process");
    let name = util::unique_key("bothbackends");
    let sysv = NativeKey::legacy(&name, KeyType::SystemV);
    let posix = NativeKey::legacy(&name, KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&sysv).segment(&posix);
    let mut a = SharedMemory::with_native_key(sysv);
    let mut b = SharedMemory::with_native_key(posix);
    a.create(16, AccessMode::ReadWrite).unwrap();
    b.create(32, AccessMode::ReadWrite).unwrap();
    let ga = a.lock().unwrap();
    let gb = b.lock().unwrap();
    assert_eq!((ga.len(), gb.len()), (16, 32));
}

/// A creator that died between shm_open and ftruncate leaves a segment of size 0: attach
/// says NotFound and create replaces it (both under the lock, so nobody else is creating).
#[test]
fn half_created_segment() {
    let _w = watchdog("half_created_segment");
    let [(key, _c), _] = keys("posix-halfcreated");
    std::fs::File::create(shm_file(&key)).unwrap();
    let mut shm = SharedMemory::with_native_key(key.clone());
    assert_eq!(
        shm.attach(AccessMode::ReadWrite).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    shm.create(100, AccessMode::ReadWrite).unwrap();
    assert_eq!(shm.size(), 100);
}

/// A name already taken is reported first, as Qt does (its `shm_open` fails before any
/// size is looked at), even for a size that could never be created; the failed create
/// leaves the existing segment alone and nothing of its own.
#[test]
fn create_on_a_taken_name_is_already_exists_whatever_the_size() {
    let _w = watchdog("create_on_a_taken_name_is_already_exists_whatever_the_size");
    for (key, _c) in keys("posix-taken") {
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create(4096, AccessMode::ReadWrite).unwrap();
        let mut other = SharedMemory::with_native_key(key.clone());
        // 1 PiB; on 32-bit targets the largest size a slice may span.
        for size in [
            64,
            usize::try_from(1u64 << 50).unwrap_or(isize::MAX as usize),
        ] {
            let err = other.create(size, AccessMode::ReadWrite).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{size}: {err}");
        }
        other.attach(AccessMode::ReadOnly).unwrap();
        assert_eq!(other.size(), 4096);
    }
}

#[test]
fn keep_policy_leaves_the_segment() {
    let _w = watchdog("keep_policy_leaves_the_segment");
    for (key, _c) in keys("posix-keep") {
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.set_last_detach(LastDetach::Keep);
        shm.create(64, AccessMode::ReadWrite).unwrap();
        shm.lock().unwrap().as_mut_slice().unwrap()[0] = 42;
        shm.detach().unwrap();
        assert!(util::exists(&shm_file(&key)));
        let mut again = SharedMemory::with_native_key(key.clone());
        again.attach(AccessMode::ReadOnly).unwrap();
        assert_eq!(again.lock().unwrap().as_slice()[0], 42);
        // Remove policy: the last detach removes it (no sibling test forking meanwhile: a
        // forked copy maps the segment until it execs, and rightly counts as a user).
        let _quiet = util::no_spawns();
        again.detach().unwrap();
        assert!(!util::exists(&shm_file(&key)));
    }
}

/// Spins until the wall clock reaches `deadline` (nanoseconds since the epoch), so that
/// processes told the same deadline act within microseconds of each other.
fn spin_until(deadline: u128) {
    while std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_nanos()
        < deadline
    {
        std::hint::spin_loop();
    }
}

/// A deadline `ms` milliseconds from now, as `spin_until` takes it.
fn deadline_in(ms: u64) -> u128 {
    (std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap() + Duration::from_millis(ms)).as_nanos()
}

/// Two processes leave a segment at the same instant, neither holding the lock: the one
/// that is last must see it (a detach that finds another attachment leaves it to that one,
/// which must not in turn leave it to the first). Nothing may be left behind, in any round.
#[test]
fn simultaneous_detaches_remove_the_segment() {
    let _w = watchdog("simultaneous_detaches_remove_the_segment");
    // Dropped after the children (declared before them): if a round fails, the children
    // are killed first, so nothing of theirs outlives the clean-up.
    let mut cleanups = Vec::new();
    let mut children: Vec<ChildProc> = (0..2).map(|_| ChildProc::spawn("detach_at", &[])).collect();
    for round in 0..150 {
        // No other test of this process forks while this one maps the segment (see
        // util::no_spawns): a forked copy would keep it mapped, and so kept.
        let _quiet = util::no_spawns();
        let key =
            NativeKey::platform_safe(&util::unique_key("simuldetach"), KeyType::PosixRealtime);
        cleanups.push(Cleanup::new().segment(&key));
        let mut creator = SharedMemory::with_native_key(key.clone());
        creator.create(4096, AccessMode::ReadWrite).unwrap();
        for c in &mut children {
            c.send(&key.to_string());
            assert_eq!(c.expect_line(Duration::from_secs(30)), "attached");
        }
        creator.detach().unwrap();
        assert!(
            util::exists(&shm_file(&key)),
            "round {round}: removed while attached"
        );
        let at = deadline_in(15);
        for c in &mut children {
            c.send(&at.to_string());
        }
        for c in &children {
            assert_eq!(c.expect_line(Duration::from_secs(30)), "detached");
        }
        assert_eq!(
            util::objects_left(&key),
            Vec::<String>::new(),
            "round {round}: left behind"
        );
    }
}

/// An attach without the lock racing the last detach, or a `remove_orphan`: it either finds
/// nothing, or it is attached to the segment the name refers to (a fresh attach sees what
/// it wrote), never to one being removed.
#[test]
fn attach_racing_the_last_detach() {
    let _w = watchdog("attach_racing_the_last_detach");
    let mut cleanups = Vec::new(); // dropped after the child: see above
    let mut child = ChildProc::spawn("attach_at", &[]);
    for remover in ["last detach", "remove_orphan"] {
        let (mut found, mut missed) = (0, 0);
        for round in 0..150u64 {
            let _quiet = util::no_spawns(); // as in simultaneous_detaches_remove_the_segment
            let key =
                NativeKey::platform_safe(&util::unique_key("attachrace"), KeyType::PosixRealtime);
            cleanups.push(Cleanup::new().segment(&key));
            let mut creator = SharedMemory::with_native_key(key.clone());
            if remover == "remove_orphan" {
                // An orphan: its last user left it behind.
                creator.set_last_detach(LastDetach::Keep);
                creator.create(4096, AccessMode::ReadWrite).unwrap();
                creator.detach().unwrap();
            } else {
                creator.create(4096, AccessMode::ReadWrite).unwrap();
            }
            let at = deadline_in(15);
            // Vary who goes first from round to round: by a few microseconds against a
            // detach, by up to ~150 µs against the slower `remove_orphan`.
            let step = if remover == "remove_orphan" {
                10_000
            } else {
                2_000
            };
            let skew = u128::from(round % 15) * step;
            child.send(&format!("{key} {} {round}", at + skew));
            spin_until(at);
            let removed = if remover == "remove_orphan" {
                SharedMemory::remove_orphan(&key).unwrap()
            } else {
                creator.detach().unwrap();
                true
            };
            match child.expect_line(Duration::from_secs(30)).as_str() {
                "attached" => {
                    found += 1;
                    let mut check = SharedMemory::with_native_key(key.clone());
                    check.attach(AccessMode::ReadOnly).unwrap_or_else(|e| {
                        panic!(
                            "{remover}, round {round}: the child is attached to a removed \
                             segment (removed: {removed}): {e}"
                        )
                    });
                    assert_eq!(util::read_u64(check.lock().unwrap().as_slice()), round + 1);
                    check.detach().unwrap();
                    child.send("detach");
                    assert_eq!(child.expect_line(Duration::from_secs(30)), "detached");
                }
                "notfound" => missed += 1,
                other => panic!("{remover}, round {round}: {other}"),
            }
            assert_eq!(
                util::objects_left(&key),
                Vec::<String>::new(),
                "{remover}, round {round}: left behind"
            );
        }
        println!("attach racing the {remover}: attached {found}, not found {missed}");
    }
}

/// A process forks (no exec) while attached, and the forked copy detaches first, as a
/// worker's destructors would: it shares the parent's open file description (and so its
/// attach count), and must not take itself for the last user and remove the segment, or
/// the lock, the parent still uses. Both ways a POSIX object detaches are covered: with its
/// lock open (it created the segment) and without (it attached and never locked).
#[test]
fn a_forked_copy_detaching_first_leaves_the_segment() {
    let _w = watchdog("a_forked_copy_detaching_first_leaves_the_segment");
    forked_copy_keeps_and_removes("fork_and_detach_copy", "forkcopy");
}

/// The other order: the parent detaches first while a copy it forked (no exec) still maps
/// the segment. The parent's detach must see the copy and keep the segment (and its lock);
/// the copy's own detach, the last, removes both. A fork made after the segment was opened is
/// what sends the detach to read its children's maps; one made before cannot share it.
#[test]
fn a_forked_copy_still_mapped_keeps_the_segment_when_the_parent_detaches() {
    let _w = watchdog("a_forked_copy_still_mapped_keeps_the_segment");
    forked_copy_keeps_and_removes("fork_and_keep_copy", "forkkeep");
}

/// Runs child `role` on a segment it created, then on one it attached to: it says "kept"
/// when the segment outlived the first detach, and nothing is left after both.
fn forked_copy_keeps_and_removes(role: &str, key_prefix: &str) {
    for how in ["created", "attached"] {
        let key = NativeKey::platform_safe(&util::unique_key(key_prefix), KeyType::PosixRealtime);
        let _c = Cleanup::new().segment(&key);
        let mut child = ChildProc::spawn(role, &[&key.to_string(), how]);
        assert_eq!(child.expect_line(Duration::from_secs(60)), "kept", "{how}");
        assert!(child.wait(Duration::from_secs(30)).success(), "{how}");
        assert_eq!(util::objects_left(&key), Vec::<String>::new(), "{how}");
    }
}

/// The segment of `key`, `"created"` by this object (its lock opened by the create), or
/// else an orphan `"attached"` to: the only attachment, its lock never opened.
fn created_or_attached(key: &NativeKey, how: &str) -> SharedMemory {
    let mut shm = SharedMemory::with_native_key(key.clone());
    if how == "created" {
        shm.create(4096, AccessMode::ReadWrite).unwrap();
    } else {
        let mut creator = SharedMemory::with_native_key(key.clone());
        creator.set_last_detach(LastDetach::Keep);
        creator.create(4096, AccessMode::ReadWrite).unwrap();
        creator.detach().unwrap();
        shm.attach(AccessMode::ReadWrite).unwrap();
    }
    shm
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "fork_and_keep_copy" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = created_or_attached(&key, &args[2]);
            // A child started before the fork below, and still running: it cannot share the
            // segment, and must not be taken for a user either.
            let mut bystander = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            let mut go = [0 as libc::c_int; 2];
            // SAFETY: `go` has room for the two descriptors pipe(2) writes.
            assert_eq!(unsafe { libc::pipe(go.as_mut_ptr()) }, 0);
            // SAFETY: as in fork_and_detach_copy: the copy waits on a pipe, detaches and
            // leaves with _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let mut byte = 0u8;
                // SAFETY: reads one byte into `byte` from the pipe's read end.
                unsafe { libc::read(go[0], (&mut byte as *mut u8).cast(), 1) };
                let ok = shm.detach().is_ok();
                // SAFETY: see above.
                unsafe { libc::_exit(if ok { 0 } else { 3 }) };
            }
            shm.detach().unwrap();
            let named = util::exists(&shm_file(&key));
            let lock_named = util::objects_left(&key).len();
            // SAFETY: writes one byte to the pipe's write end: the copy detaches.
            unsafe { libc::write(go[1], b"g".as_ptr().cast(), 1) };
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            let _ = bystander.kill();
            let _ = bystander.wait();
            assert_eq!(status, 0, "the copy's detach failed");
            let left = util::objects_left(&key);
            // The segment and its lock (which a detach that kept the segment opened, when
            // this object had not).
            if named && lock_named == 2 && left.is_empty() {
                util::say("kept");
            } else {
                util::say(&format!(
                    "named after the parent's detach {named} ({lock_named} objects), left after the copy's {left:?}"
                ));
            }
        }
        "fork_and_detach_copy" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = created_or_attached(&key, &args[2]);
            // SAFETY: the copy detaches (allocating, reading /proc) in a child of a process
            // whose other threads are idle test-harness threads holding no lock now, and
            // leaves with _exit, running no other destructor or atexit handler.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let ok = shm.detach().is_ok();
                // SAFETY: see above.
                unsafe { libc::_exit(if ok { 0 } else { 3 }) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child; `status` is a valid out-pointer.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(status, 0, "the copy's detach failed");
            let named = util::exists(&shm_file(&key));
            let mut fresh = SharedMemory::with_native_key(key.clone());
            let attached = fresh.attach(AccessMode::ReadOnly).map_err(|e| e.kind());
            // The same lock: held here, taken there.
            let held = shm.lock().unwrap();
            // (From another thread: in this one, the holder, any object says LockError.)
            let excluded = std::thread::scope(|s| {
                s.spawn(|| fresh.try_lock().map(drop).map_err(|e| e.kind()))
                    .join()
                    .unwrap()
            });
            drop(held);
            if named && attached.is_ok() && excluded == Err(ErrorKind::WouldBlock) {
                util::say("kept");
            } else {
                util::say(&format!(
                    "named {named}, attach {attached:?}, try_lock {excluded:?}"
                ));
            }
            drop(fresh);
            shm.detach().unwrap();
        }
        "detach_at" => {
            while let Some(key) = util::read_stdin_line() {
                let mut shm = SharedMemory::with_native_key(key.parse().unwrap());
                shm.attach(AccessMode::ReadWrite).unwrap();
                util::say("attached");
                let at: u128 = util::read_stdin_line().unwrap().parse().unwrap();
                spin_until(at);
                shm.detach().unwrap();
                util::say("detached");
            }
        }
        "attach_at" => {
            while let Some(line) = util::read_stdin_line() {
                let mut parts = line.split(' ');
                let key: NativeKey = parts.next().unwrap().parse().unwrap();
                let at: u128 = parts.next().unwrap().parse().unwrap();
                let round: u64 = parts.next().unwrap().parse().unwrap();
                let mut shm = SharedMemory::with_native_key(key);
                spin_until(at);
                match shm.attach(AccessMode::ReadWrite) {
                    Ok(()) => {
                        util::write_u64(shm.lock().unwrap().as_mut_slice().unwrap(), round + 1);
                        util::say("attached");
                        assert_eq!(util::read_stdin_line().as_deref(), Some("detach"));
                        shm.detach().unwrap();
                        util::say("detached");
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => util::say("notfound"),
                    Err(e) => panic!("{e}"),
                }
            }
        }
        "hold_lock" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            let mut guard = shm.lock().unwrap();
            let bytes = guard.as_mut_slice().unwrap();
            let v = util::read_u64(bytes);
            util::write_u64(bytes, v + 1);
            util::say("locked");
            std::thread::sleep(Duration::from_secs(600));
        }
        "wait_then_take_over" => {
            // wait_then_take_over KEY HOLDER_PID: says whether the holder's /proc is hidden
            // and whether this is root; how a 300 ms lock_timeout ended; then, once told
            // (the holder killed), how a 1 s one did.
            let key: NativeKey = args[1].parse().unwrap();
            let hidden = !std::path::Path::new(&format!("/proc/{}", args[2])).exists();
            // SAFETY: geteuid takes nothing and cannot fail.
            let root = unsafe { libc::geteuid() } == 0;
            util::say(&format!("holder hidden {hidden}, root {root}"));
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            let said = match shm.lock_timeout(Duration::from_millis(300)) {
                Ok(g) => format!("locked, owner died {}", g.owner_died()),
                Err(e) => format!("{:?}", e.kind()),
            };
            util::say(&said);
            assert_eq!(util::read_stdin_line().as_deref(), Some("go"));
            let said = match shm.lock_timeout(Duration::from_secs(1)) {
                Ok(g) => format!("locked within 1 s, owner died {}", g.owner_died()),
                Err(e) => format!("{:?}", e.kind()),
            };
            util::say(&said);
            shm.detach().unwrap();
        }
        "hold_lock_leader_exits" => {
            // The harness runs this on a thread of its own, not on the process's main thread
            // (its leader). This thread takes the lock; then the leader alone is made to
            // exit, and this thread goes on holding the lock in a process whose leader is a
            // zombie.
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            let mut guard = shm.lock().unwrap();
            let bytes = guard.as_mut_slice().unwrap();
            let v = util::read_u64(bytes);
            util::write_u64(bytes, v + 1);
            let pid = std::process::id();
            #[allow(clippy::unnecessary_cast)] // c_long: i32 on 32-bit targets
            // SAFETY: gettid takes nothing and cannot fail.
            let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i64;
            assert_ne!(tid, i64::from(pid), "the test runs on the main thread");
            extern "C" fn exit_this_thread(_: libc::c_int) {
                // SAFETY: `exit` (not `exit_group`) ends the calling thread alone, and a
                // system call may be made from a signal handler. The thread it ends is the
                // harness's main thread, which waits for this test and holds nothing
                // another thread needs.
                unsafe { libc::syscall(libc::SYS_exit, 0) };
            }
            // SAFETY: installs a handler for SIGUSR1, which nothing else in this process
            // uses, then sends that signal to the main thread alone (tgkill to the thread
            // whose id is the pid).
            unsafe {
                libc::signal(
                    libc::SIGUSR1,
                    exit_this_thread as extern "C" fn(libc::c_int) as libc::sighandler_t,
                );
                libc::syscall(libc::SYS_tgkill, pid, pid, libc::SIGUSR1);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while proc_state(pid) != Some('Z') {
                assert!(Instant::now() < deadline, "the leader did not exit");
                std::thread::sleep(Duration::from_millis(5));
            }
            util::say("locked, leader exited");
            std::thread::sleep(Duration::from_secs(600));
        }
        "map_and_hold" => {
            // Maps the segment file as Qt does (shm_open, mmap, close): no flock, no lock.
            use std::os::fd::AsRawFd;
            let key: NativeKey = args[1].parse().unwrap();
            let file = std::fs::File::open(shm_file(&key)).unwrap();
            // SAFETY: a new shared read-only mapping of the file's first page; never read.
            let addr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    file.as_raw_fd(),
                    0,
                )
            };
            assert_ne!(addr, libc::MAP_FAILED);
            drop(file);
            util::say("mapped");
            std::thread::sleep(Duration::from_secs(600));
        }
        "detach_out_of_descriptors" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key.clone());
            shm.attach(AccessMode::ReadWrite).unwrap();
            drop(shm.lock().unwrap()); // the lock is open: the detach needs no descriptor
            let mut hoard = Vec::new();
            while let Ok(f) = std::fs::File::open("/dev/null") {
                hoard.push(f);
            }
            let detached = shm.detach();
            drop(hoard);
            util::say(&format!(
                "detached {:?}, file there {}",
                detached.map_err(|e| e.kind()),
                util::exists(&shm_file(&key))
            ));
        }
        "attach_wait_detach" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key.clone());
            shm.attach(AccessMode::ReadWrite).unwrap();
            util::say("attached");
            assert_eq!(util::read_stdin_line().as_deref(), Some("detach"));
            let detached = shm.detach();
            util::say(&format!(
                "detached {:?}, file there {}",
                detached.map_err(|e| e.kind()),
                util::exists(&shm_file(&key))
            ));
        }
        "lock_for" => {
            // lock_for KEY MILLIS: says how a lock_timeout of MILLIS ended.
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).unwrap();
            let wait = Duration::from_millis(args[2].parse().unwrap());
            let said = match shm.lock_timeout(wait) {
                Ok(g) => format!("locked, owner died {}", g.owner_died()),
                Err(e) => format!("{:?}", e.kind()),
            };
            util::say(&said);
        }
        "create_and_hold" | "attach_and_hold" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            if args[0] == "create_and_hold" {
                shm.create(4096, AccessMode::ReadWrite).unwrap();
            } else {
                shm.attach(AccessMode::ReadWrite).unwrap();
            }
            util::say("ready");
            std::thread::sleep(Duration::from_secs(600));
        }
        "create_too_big" => {
            let key = NativeKey::platform_safe(&util::unique_key("toobig"), KeyType::PosixRealtime);
            let mut shm = SharedMemory::with_native_key(key.clone());
            let err = shm.create(4 << 20, AccessMode::ReadWrite).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::OutOfResources, "{err}");
            assert!(
                !util::exists(&shm_file(&key)),
                "the failed create left its file"
            );
            // A mapped segment file on the same tmpfs: the same.
            let name = util::unique_key("toobig-file");
            let mut opts = qshm::mapped::FileOptions::new();
            opts.directory("/dev/shm");
            let err = opts.create(&name, 4 << 20).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::OutOfResources, "{err}");
            assert!(
                !util::exists(&format!("/dev/shm/{name}")),
                "the failed create left its file"
            );
            // And a segment that fits still works.
            shm.create(64 << 10, AccessMode::ReadWrite).unwrap();
            shm.lock().unwrap().as_mut_slice().unwrap().fill(1);
            shm.detach().unwrap();
            util::say("out of resources ok");
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}

/// A process that spawns children while it detaches: a child between fork and exec maps
/// everything its parent maps, and must not be taken for a user of the segment (the last
/// detach would then leave the segment or its lock behind).
#[test]
fn spawning_children_does_not_keep_segments_alive() {
    let _w = watchdog("spawning_children_does_not_keep_segments_alive");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut spawned = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = util::spawning(|| std::process::Command::new("true").status());
                spawned += 1;
            }
            spawned
        })
    };
    for round in 0..200 {
        let key = NativeKey::platform_safe(&util::unique_key("spawning"), KeyType::PosixRealtime);
        let _c = Cleanup::new().segment(&key);
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create(4096, AccessMode::ReadWrite).unwrap();
        shm.detach().unwrap();
        assert_eq!(
            util::objects_left(&key),
            Vec::<String>::new(),
            "round {round}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(spawner.join().unwrap() > 0);
}
