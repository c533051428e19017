//! Change notification across real processes on every segment kind: mapped files (the
//! counter in the header), System V and POSIX segments (the counter in a companion Qt
//! ignores), in the same and in another PID namespace: 1 000 notify/wait rounds with no lost
//! wake-up, timeouts honoured, a PyQt6 writer that does not notify leaves a waiter waiting,
//! the companion removed with the segment. On Windows (under Wine in `ci/windows.sh`):
//! the mapped and the Qt-compatible ping-pong, timeouts and cancellation.
#![cfg(any(qshm_linux, qshm_windows))]

mod util;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use qshm::mapped::{FileOptions, MappedSegment};
use qshm::notify::Notifier;
use qshm::{AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory};
use util::{ChildProc, Cleanup, PathCleanup};

#[cfg(qshm_linux)]
use qshm::mapped::MemfdOptions;
#[cfg(qshm_linux)]
use qshm::notify::companion_path;
#[cfg(all(qshm_linux, target_arch = "x86_64"))]
use util::qt::{hex, QtPeer, QtVersion};

const T: Duration = Duration::from_secs(60);
const ROUNDS: u64 = 1000;
/// A wait this long in a ping-pong means a lost wake-up (the peer answers in microseconds).
const LOST: Duration = Duration::from_secs(5);

/// A segment of either kind, with the two words the ping-pong uses: the request (offset
/// 0) and the answer (offset 8), read and written under the segment's lock.
enum Seg {
    Mapped(MappedSegment),
    Shm(SharedMemory),
}

impl Seg {
    fn open(spec: &str) -> Seg {
        match spec.strip_prefix("file:") {
            Some(path) => Seg::Mapped(MappedSegment::open_file(path).unwrap()),
            None => {
                let mut shm = SharedMemory::with_native_key(spec.parse().unwrap());
                shm.attach(AccessMode::ReadWrite).unwrap();
                Seg::Shm(shm)
            }
        }
    }

    fn notifier(&self) -> Notifier {
        match self {
            Seg::Mapped(m) => m.notifier().unwrap(),
            Seg::Shm(s) => s.notifier().unwrap(),
        }
    }

    fn get(&self, offset: usize) -> u64 {
        let read = |b: &[u8]| util::read_u64(&b[offset..offset + 8]);
        match self {
            Seg::Mapped(m) => read(m.lock().unwrap().as_slice()),
            Seg::Shm(s) => read(s.lock().unwrap().as_slice()),
        }
    }

    fn set(&self, offset: usize, v: u64) {
        match self {
            Seg::Mapped(m) => util::write_u64(
                &mut m.lock().unwrap().as_mut_slice().unwrap()[offset..offset + 8],
                v,
            ),
            Seg::Shm(s) => util::write_u64(
                &mut s.lock().unwrap().as_mut_slice().unwrap()[offset..offset + 8],
                v,
            ),
        }
    }
}

/// Waits (never longer than [`LOST`] per wait) until the word at `offset` is `want`.
fn await_word(seg: &Seg, n: &Notifier, offset: usize, want: u64) {
    loop {
        let seen = n.current();
        if seg.get(offset) == want {
            return;
        }
        if let Err(e) = n.wait(seen, Some(LOST)) {
            panic!("waiting for {want} at {offset}: {e} (a lost wake-up)");
        }
    }
}

/// The parent's side of the ping-pong: request i, wait for answer i, `ROUNDS` times.
fn ping(seg: &Seg, n: &Notifier) -> Duration {
    let start = Instant::now();
    for i in 1..=ROUNDS {
        seg.set(0, i);
        n.notify().unwrap();
        await_word(seg, n, 8, i);
    }
    start.elapsed()
}

fn ping_pong(spec: &str, prefix: &[&str]) {
    let seg = Seg::open(spec);
    let n = seg.notifier();
    let mut child = ChildProc::spawn_under(prefix, "pong", &[spec]);
    assert_eq!(child.expect_line(T), "ready");
    let took = ping(&seg, &n);
    assert_eq!(child.expect_line(T), format!("answered {ROUNDS}"));
    assert!(child.wait(T).success());
    eprintln!("{spec}: {ROUNDS} rounds in {took:?}");
}

fn mapped_file(name: &str) -> (PathBuf, MappedSegment, PathCleanup) {
    let path = FileOptions::new().resolve(util::unique_key(name));
    let cleanup = PathCleanup::new().path(&path);
    let seg = FileOptions::new().create(&path, 64).unwrap();
    (path, seg, cleanup)
}

fn shm_segment(name: &str, t: KeyType) -> (NativeKey, SharedMemory, Cleanup) {
    let key = NativeKey::legacy(&util::unique_key(name), t);
    let cleanup = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(64, AccessMode::ReadWrite).unwrap();
    (key, shm, cleanup)
}

/// Removes a companion a failed test may have left.
#[cfg(qshm_linux)]
struct CompanionCleanup(PathBuf);

#[cfg(qshm_linux)]
impl Drop for CompanionCleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn mapped_thousand_rounds_across_processes() {
    let _w = util::Watchdog::new("mapped_thousand_rounds_across_processes", T * 2);
    let (path, _seg, _c) = mapped_file("notify-mapped");
    ping_pong(&format!("file:{}", path.display()), &[]);
}

#[test]
#[cfg(qshm_linux)]
fn mapped_thousand_rounds_across_pid_namespaces() {
    let _w = util::Watchdog::new("mapped_thousand_rounds_across_pid_namespaces", T * 2);
    let (path, _seg, _c) = mapped_file("notify-mapped-ns");
    ping_pong(
        &format!("file:{}", path.display()),
        util::OTHER_PID_NAMESPACE,
    );
}

#[test]
#[cfg(qshm_linux)]
fn system_v_and_posix_thousand_rounds_across_processes() {
    let _w = util::Watchdog::new("system_v_and_posix_thousand_rounds", T * 3);
    for t in [KeyType::SystemV, KeyType::PosixRealtime] {
        let (key, shm, _c) = shm_segment("notify-shm", t);
        let _cc = CompanionCleanup(companion_path(&key));
        ping_pong(&key.to_string(), &[]);
        let _quiet = util::no_spawns(); // the drop below must be the last detach
        drop(shm);
        assert!(
            !companion_path(&key).exists(),
            "{t:?}: the companion goes with the segment"
        );
    }
}

#[test]
#[cfg(qshm_linux)]
fn posix_thousand_rounds_across_pid_namespaces() {
    let _w = util::Watchdog::new("posix_thousand_rounds_across_pid_namespaces", T * 2);
    let (key, _shm, _c) = shm_segment("notify-posix-ns", KeyType::PosixRealtime);
    let _cc = CompanionCleanup(companion_path(&key));
    ping_pong(&key.to_string(), util::OTHER_PID_NAMESPACE);
}

/// A wait with a timeout returns `Timeout` no sooner than the timeout and well before a
/// second after it; a notify from another process ends it early.
#[test]
#[cfg(qshm_linux)]
fn timeouts_are_honoured_on_every_kind() {
    let _w = util::Watchdog::new("timeouts_are_honoured_on_every_kind", T * 2);
    let (path, mapped, _c) = mapped_file("notify-timeout");
    let memfd = MemfdOptions::new().create("notify-timeout", 64).unwrap();
    let (k1, sysv, _c1) = shm_segment("notify-timeout", KeyType::SystemV);
    let (k2, posix, _c2) = shm_segment("notify-timeout", KeyType::PosixRealtime);
    let _cc = (
        CompanionCleanup(companion_path(&k1)),
        CompanionCleanup(companion_path(&k2)),
    );
    let kinds = [
        ("mapped", mapped.notifier().unwrap()),
        ("memfd", memfd.notifier().unwrap()),
        ("systemv", sysv.notifier().unwrap()),
        ("posix", posix.notifier().unwrap()),
    ];
    for (name, n) in &kinds {
        for ms in [0u64, 1, 250] {
            let timeout = Duration::from_millis(ms);
            let seen = n.current();
            let start = Instant::now();
            let err = n.wait(seen, Some(timeout)).unwrap_err();
            let took = start.elapsed();
            assert_eq!(err.kind(), ErrorKind::Timeout, "{name}: {err}");
            assert!(took >= timeout, "{name}: {took:?} < {timeout:?}");
            assert!(
                took < timeout + Duration::from_secs(1),
                "{name}: {took:?} for {timeout:?}"
            );
        }
    }
    // Woken early by another process.
    let spec = format!("file:{}", path.display());
    for (spec, n) in [(spec.as_str(), &kinds[0].1), (&k1.to_string(), &kinds[2].1)] {
        let seen = n.current();
        let mut child = ChildProc::spawn("notify-after", &[spec, "200"]);
        let start = Instant::now();
        let now = n.wait(seen, Some(Duration::from_secs(20))).unwrap();
        assert_ne!(now, seen);
        assert!(start.elapsed() < Duration::from_secs(10), "{spec}");
        assert!(child.wait(T).success());
    }
}

/// A PyQt6 program that writes the data without notifying does not break a waiting qshm
/// reader: it times out, reads the new data, and a later notify still wakes it.
///
/// x86_64 only, as the other Qt interop tests: the PyQt peers are x86_64 builds, and a
/// 32-bit process cannot share Qt's POSIX lock with them (glibc's `sem_t` differs).
#[test]
#[cfg(all(qshm_linux, target_arch = "x86_64"))]
fn a_qt_writer_that_does_not_notify_leaves_a_waiter_timing_out() {
    let _w = util::Watchdog::new("a_qt_writer_that_does_not_notify", T * 2);
    for t in [KeyType::SystemV, KeyType::PosixRealtime] {
        let name = util::unique_key("notify-qt");
        let key = NativeKey::legacy(&name, t);
        let _c = Cleanup::new().segment(&key);
        let _cc = CompanionCleanup(companion_path(&key));
        let mut qt = QtPeer::spawn(QtVersion::Qt6);
        qt.cmd(&format!("nkey {}", hex(key.to_string().as_bytes())))
            .expect_ok("nkey");
        qt.cmd("create 64 rw").expect_ok("create");
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.attach(AccessMode::ReadWrite).unwrap();
        let n = shm.notifier().unwrap();
        let seen = n.current();
        qt.cmd("lock").expect_ok("lock");
        qt.cmd(&format!("write 0 {}", hex(b"from qt")))
            .expect_ok("write");
        qt.cmd("unlock").expect_ok("unlock");
        let err = n.wait(seen, Some(Duration::from_millis(300))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{t:?}");
        assert_eq!(&shm.lock().unwrap().as_slice()[..7], b"from qt");
        // The companion is untouched by Qt, and still works.
        let mut child = ChildProc::spawn("notify-after", &[&key.to_string(), "50"]);
        n.wait(seen, Some(Duration::from_secs(20))).unwrap();
        assert!(child.wait(T).success());
        let _quiet = util::no_spawns(); // the removals below must find no forked copy
        shm.detach().unwrap();
        qt.cmd("detach").expect_ok("detach");
        // Qt detached last: the companion stays. Qt's POSIX backend leaves the segment
        // too: removing it as `qshm clean` does takes the companion with it.
        let path = companion_path(&key);
        assert!(path.exists(), "{t:?}");
        drop(n);
        if t == KeyType::PosixRealtime {
            let info = qshm::inspect::info(&key).unwrap();
            assert!(qshm::inspect::remove(&info, false).unwrap());
            assert!(!path.exists(), "{t:?}: the companion goes with the segment");
            continue;
        }
        // System V: the segment is gone; `qshm clean` finds the companion and removes it
        // (once it is older than inspect's MIN_AGE, which the test backdates it past).
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let leftover = qshm::inspect::leftovers()
            .unwrap()
            .into_iter()
            .find(|l| matches!(l, qshm::inspect::Leftover::Notifier(p) if *p == path))
            .unwrap_or_else(|| panic!("{t:?}: the orphaned companion is a leftover"));
        assert_eq!(leftover.kind(), "notifier");
        assert!(qshm::inspect::remove_leftover(&leftover).unwrap());
        assert!(!path.exists(), "{t:?}");
    }
}

/// The companion is made on request only, by an attached object, and goes with the
/// segment: by the last qshm detach and by `force_remove`.
#[test]
#[cfg(qshm_linux)]
fn the_companion_goes_with_the_segment() {
    let _w = util::Watchdog::new("the_companion_goes_with_the_segment", T);
    for t in [KeyType::SystemV, KeyType::PosixRealtime] {
        let key = NativeKey::legacy(&util::unique_key("notify-companion"), t);
        let _c = Cleanup::new().segment(&key);
        let path = companion_path(&key);
        let _cc = CompanionCleanup(path.clone());
        let mut a = SharedMemory::with_native_key(key.clone());
        assert_eq!(
            a.notifier().unwrap_err().kind(),
            ErrorKind::NotAttached,
            "{t:?}"
        );
        a.create(64, AccessMode::ReadWrite).unwrap();
        assert!(!path.exists(), "{t:?}: no notifier asked, no companion");
        let mut b = SharedMemory::with_native_key(key.clone());
        b.attach(AccessMode::ReadOnly).unwrap();
        // The last detach below must be the last: no sibling test's fork may hold a copy of
        // the attachment meanwhile (under qemu-user it did, on armv7 in CI; `no_spawns`).
        let _quiet = util::no_spawns();
        let n = b.notifier().unwrap();
        assert!(path.exists(), "{t:?}");
        a.detach().unwrap();
        assert!(path.exists(), "{t:?}: b is still attached");
        b.detach().unwrap();
        assert!(!path.exists(), "{t:?}: the last detach removes it");
        // A notifier kept past the segment still works (its own mapping), harmlessly.
        n.notify().unwrap();

        a.create(64, AccessMode::ReadWrite).unwrap();
        let _n = a.notifier().unwrap();
        assert!(path.exists());
        SharedMemory::force_remove(&key).unwrap();
        assert!(!path.exists(), "{t:?}: force_remove removes it");
        drop(a);
    }
}

/// Something else at the companion's name is refused, not used.
#[test]
#[cfg(qshm_linux)]
fn a_foreign_file_at_the_companions_name_is_refused() {
    let _w = util::Watchdog::new("a_foreign_file_at_the_companions_name", T);
    let (key, shm, _c) = shm_segment("notify-foreign", KeyType::PosixRealtime);
    let path = companion_path(&key);
    let _cc = CompanionCleanup(path.clone());
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    let err = shm.notifier().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyError, "{err}");
    std::fs::write(&path, b"short").unwrap();
    assert_eq!(shm.notifier().unwrap_err().kind(), ErrorKind::KeyError);
}

/// A write-sealed memfd cannot change: notify is refused; a wait just times out.
#[test]
#[cfg(qshm_linux)]
fn a_sealed_segment_cannot_notify() {
    let _w = util::Watchdog::new("a_sealed_segment_cannot_notify", T);
    let seg = MemfdOptions::new()
        .create("notify-sealed", 64)
        .unwrap()
        .seal_write()
        .unwrap();
    let n = seg.notifier().unwrap();
    assert_eq!(n.notify().unwrap_err().kind(), ErrorKind::PermissionDenied);
    let seen = n.current();
    assert_eq!(
        n.wait(seen, Some(Duration::from_millis(20)))
            .unwrap_err()
            .kind(),
        ErrorKind::Timeout
    );
}

/// A C program using `qshm.h` plays the other side: 1 000 rounds of the ping-pong on a
/// mapped segment's header, and a notify through a Qt-compatible segment's companion.
#[test]
#[cfg(qshm_linux)]
fn a_c_program_notifies_and_waits() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let _w = util::Watchdog::new("a_c_program_notifies_and_waits", T * 2);
    let Some((exe, _dir)) = util::compile_c("notify") else {
        return;
    };
    let run = |args: &[&str]| {
        let mut child =
            util::spawning(|| Command::new(&exe).args(args).stdout(Stdio::piped()).spawn())
                .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "{args:?}");
        (child, out)
    };
    let (path, seg, _c) = mapped_file("notify-c");
    let seg = Seg::Mapped(seg);
    let n = seg.notifier();
    let (mut child, mut out) = run(&["pong", path.to_str().unwrap(), &ROUNDS.to_string()]);
    let took = ping(&seg, &n);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("answered {ROUNDS}"));
    assert!(child.wait().unwrap().success());
    eprintln!("C peer: {ROUNDS} rounds in {took:?}");

    let (key, shm, _c2) = shm_segment("notify-c", KeyType::PosixRealtime);
    let _cc = CompanionCleanup(companion_path(&key));
    let n = shm.notifier().unwrap();
    let seen = n.current();
    let (mut child, _out) = run(&["companion", companion_path(&key).to_str().unwrap()]);
    n.wait(seen, Some(Duration::from_secs(20))).unwrap();
    assert!(child.wait().unwrap().success());
}

/// A blocking wait cancelled from another thread returns `Cancelled`, promptly.
#[test]
fn a_blocking_wait_is_cancelled_from_another_thread() {
    let _w = util::Watchdog::new("a_blocking_wait_is_cancelled", T);
    let (_path, seg, _c) = mapped_file("notify-cancel");
    let n = seg.notifier().unwrap();
    let cancel = qshm::notify::CancelToken::new();
    let (n2, c2) = (n.clone(), cancel.clone());
    let seen = n.current();
    let waiter = std::thread::spawn(move || {
        let start = Instant::now();
        (n2.wait_cancellable(seen, None, &c2), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    let cancelled_at = Instant::now();
    cancel.cancel();
    let (result, _) = waiter.join().unwrap();
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
    assert!(cancelled_at.elapsed() < Duration::from_millis(500));
    // Cancelled for good: a later wait with the token returns at once.
    assert_eq!(
        n.wait_cancellable(seen, None, &cancel).unwrap_err().kind(),
        ErrorKind::Cancelled
    );
}

/// Windows: the Qt-compatible segment's companion section, in a ping-pong with another
/// process, and timeouts on both kinds.
#[test]
#[cfg(qshm_windows)]
fn windows_segments_thousand_rounds_and_timeouts() {
    let _w = util::Watchdog::new("windows_segments_thousand_rounds", T * 2);
    let (key, shm, _c) = shm_segment("notify-win", KeyType::Windows);
    ping_pong(&key.to_string(), &[]);
    let (_path, mapped, _c2) = mapped_file("notify-win-timeout");
    for n in [shm.notifier().unwrap(), mapped.notifier().unwrap()] {
        let seen = n.current();
        let start = Instant::now();
        let err = n.wait(seen, Some(Duration::from_millis(250))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(start.elapsed() >= Duration::from_millis(250));
        assert!(start.elapsed() < Duration::from_millis(1250));
    }
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    match args[0].as_str() {
        "pong" => {
            let seg = Seg::open(&args[1]);
            let n = seg.notifier();
            util::say("ready");
            for i in 1..=ROUNDS {
                await_word(&seg, &n, 0, i);
                seg.set(8, i);
                n.notify().unwrap();
            }
            util::say(&format!("answered {ROUNDS}"));
        }
        "notify-after" => {
            let seg = Seg::open(&args[1]);
            let n = seg.notifier();
            std::thread::sleep(Duration::from_millis(args[2].parse().unwrap()));
            n.notify().unwrap();
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
