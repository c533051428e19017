//! End-to-end tests of the `qshm` binary: every verb, across processes, against qshm
//! segments and real Qt 6.11 / 5.15 ones (tests/qt/peer.py through tests/util/qt.rs).
//!
//! Every test uses keys no other test shares, cleans up whatever happens (`Cleanup`), and
//! runs under a watchdog. `clean` is always scoped with `--match` to the test's own keys, so
//! that it never touches what other tests in the suite left on purpose.
//!
//! Linux only (real Qt peers for Linux, `qshm::inspect`, /dev/shm, setpriv); `portable.rs`
//! runs what every platform shares, Windows under Wine included.
#![cfg(target_os = "linux")]

#[path = "../../tests/util/qt.rs"]
mod qt;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qshm::inspect;
use qshm::{KeyType, NativeKey, SharedMemory};
use qt::{hex, QtPeer, QtVersion};

const BIN: &str = env!("CARGO_BIN_EXE_qshm");
const LINE_TIMEOUT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------------------------------
// Helpers

/// Letters only, unique to this test process and call: Qt keeps the ASCII letters of a key
/// in its native name, so `--match <tag>` finds exactly this test's objects.
fn tag() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut v = (u64::from(std::process::id()) << 32) ^ u64::from(nanos) ^ ((n as u64) << 56);
    let mut s = String::from("qcli");
    for _ in 0..12 {
        s.push(char::from(b'a' + (v % 26) as u8));
        v /= 26;
    }
    s.push(char::from(b'a' + (n % 26) as u8));
    s
}

fn sysv(key: &str) -> NativeKey {
    NativeKey::legacy(key, KeyType::SystemV)
}

static REGISTERED: Mutex<Vec<NativeKey>> = Mutex::new(Vec::new());
static REGISTERED_PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static REGISTERED_PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Removes every object of its keys (segment, key file, lock, POSIX files) and its paths when
/// dropped, whether the test passed or not.
struct Cleanup {
    keys: Vec<NativeKey>,
    paths: Vec<PathBuf>,
}

impl Cleanup {
    fn new() -> Cleanup {
        Cleanup {
            keys: Vec::new(),
            paths: Vec::new(),
        }
    }

    fn key(mut self, key: &NativeKey) -> Cleanup {
        REGISTERED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key.clone());
        self.keys.push(key.clone());
        self
    }

    fn qt(self, key: &str) -> Cleanup {
        self.key(&sysv(key))
    }

    fn path(mut self, path: impl Into<PathBuf>) -> Cleanup {
        let path = path.into();
        REGISTERED_PATHS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path.clone());
        self.paths.push(path);
        self
    }
}

fn remove_everything(key: &NativeKey) {
    if let Ok(info) = inspect::info(key) {
        let _ = inspect::remove(&info, true);
    }
    // Removes the segment if still there, and the lock semaphore with its key file.
    let _ = SharedMemory::force_remove(key);
    if key.key_type() == KeyType::PosixRealtime {
        let name = key.native_key().trim_start_matches('/');
        let lock = key.lock_key();
        let lock_name = lock.native_key().trim_start_matches('/');
        let _ = std::fs::remove_file(format!("/dev/shm/{name}"));
        let _ = std::fs::remove_file(format!("/dev/shm/sem.{lock_name}"));
    } else {
        let _ = std::fs::remove_file(key.native_key());
        let _ = std::fs::remove_file(key.lock_key().native_key());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for key in &self.keys {
            remove_everything(key);
        }
        for path in &self.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Aborts the test binary, after cleaning up, when a test runs longer than its limit.
struct Watchdog(mpsc::Sender<()>);

impl Watchdog {
    fn new(name: &'static str) -> Watchdog {
        let limit = Duration::from_secs(120);
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("WATCHDOG: `{name}` still running after {limit:?}; aborting");
                for pid in REGISTERED_PIDS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
                for key in REGISTERED.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                    remove_everything(key);
                }
                for p in REGISTERED_PATHS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                {
                    let _ = std::fs::remove_file(p);
                }
                std::process::exit(99);
            }
        });
        Watchdog(tx)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// A finished `qshm` run.
#[derive(Debug)]
struct Run {
    status: i32,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(self.status, 0, "qshm failed: {self:?} / {}", self.out());
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }

    /// Asserts the exit status and that stderr is one clear line starting with `prefix`.
    #[track_caller]
    fn fails(self, status: i32, prefix: &str) -> Run {
        assert_eq!(self.status, status, "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(
            self.stderr.starts_with(prefix),
            "stderr should start with {prefix:?}: {:?}",
            self.stderr
        );
        self
    }

    /// The JSON lines of stdout.
    fn json(&self) -> Vec<String> {
        self.out()
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(str::to_owned)
            .collect()
    }
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    c
}

fn finish(mut c: Command, stdin: Option<&[u8]>) -> Run {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = c.spawn().expect("run qshm");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // A command that refuses before reading its input closes the pipe: fine.
        if let Err(e) = pipe.write_all(data) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
    }
    let out = child.wait_with_output().expect("wait for qshm");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn qshm(args: &[&str]) -> Run {
    finish(command(args), None)
}

fn qshm_stdin(args: &[&str], stdin: &[u8]) -> Run {
    finish(command(args), Some(stdin))
}

/// A copy of the binary that user `nobody` can run wherever the build directory is.
fn nobody_bin() -> &'static str {
    static BIN_COPY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN_COPY.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("qshmtest-cli-bin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("qshm");
        std::fs::copy(BIN, &copy).expect("copy qshm");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy.to_string_lossy().into_owned()
    })
}

/// Removes the copy made by `nobody_bin` when dropped.
struct BinCopy;

impl Drop for BinCopy {
    fn drop(&mut self) {
        let dir = std::env::temp_dir().join(format!("qshmtest-cli-bin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `qshm ARGS` as user `nobody` (setpriv, else runuser).
fn qshm_as_nobody(args: &[&str]) -> Run {
    let bin = nobody_bin();
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let mut c = match setpriv {
        Some(sp) => {
            let mut c = Command::new(sp);
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", bin]);
            c
        }
        None => {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--", bin]);
            c
        }
    };
    c.args(args);
    finish(c, None)
}

/// A JSON field's value: the string without quotes, or the literal (`null`, a number).
fn field(json: &str, name: &str) -> Option<String> {
    let pat = format!("\"{name}\":");
    let start = json.find(&pat)? + pat.len();
    let rest = &json[start..];
    if let Some(s) = rest.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => out.push(chars.next()?),
                c => out.push(c),
            }
        }
        None
    } else {
        let end = rest.find([',', '}']).unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    }
}

#[track_caller]
fn num(json: &str, name: &str) -> u64 {
    field(json, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {name} in {json}"))
}

/// A `qshm` running in the background (create, lock), whose stdout lines are read as they
/// come. Killed when dropped.
struct Bg {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bg {
    fn spawn(args: &[&str]) -> Bg {
        Bg::spawn_with(command(args))
    }

    fn spawn_with(mut c: Command) -> Bg {
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn qshm");
        REGISTERED_PIDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child.id());
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Bg { child, lines }
    }

    #[track_caller]
    fn line(&self) -> String {
        self.lines
            .recv_timeout(LINE_TIMEOUT)
            .unwrap_or_else(|e| panic!("qshm {} printed nothing: {e}", self.child.id()))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status();
    }

    /// Waits for the exit status.
    #[track_caller]
    fn wait(&mut self) -> i32 {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s.code().unwrap_or(-1);
            }
            assert!(
                start.elapsed() < LINE_TIMEOUT,
                "qshm {} did not exit",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGKILL and reap: what a crash leaves.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `qshm create KEY SIZE --json …` in the background, once it said it is ready.
#[track_caller]
fn hold(key: &str, size: &str, extra: &[&str]) -> Bg {
    let mut args = vec!["create", key, size, "--json"];
    args.extend_from_slice(extra);
    let bg = Bg::spawn(&args);
    let line = bg.line();
    assert_eq!(field(&line, "status").as_deref(), Some("ready"), "{line}");
    bg
}

fn info_json(key: &str) -> String {
    let run = qshm(&["info", key, "--json"]).ok();
    run.json().pop().expect("one JSON object")
}

fn exists(p: &str) -> bool {
    Path::new(p).exists()
}

// ------------------------------------------------------------------------------------------
// Tests

#[test]
fn key_prints_what_qt_derives() {
    let _w = Watchdog::new("key_prints_what_qt_derives");
    let key = "my key/ä!";
    let out = qshm(&["key", key]).ok().out();
    // One labelled line each; the value starts after the label's padding.
    let lines: Vec<&str> = out.lines().map(|l| l[8..].trim_start()).collect();
    let labels: Vec<&str> = out.lines().map(|l| l[..8].trim_end()).collect();
    assert_eq!(labels, ["segment", "lock", "text"], "{out}");
    let native = sysv(key);
    assert_eq!(
        lines,
        [
            native.native_key(),
            native.lock_key().native_key(),
            native.to_string().as_str()
        ]
    );
    // `systemv` names the type, `sysv` stays an alias.
    for t in ["systemv", "sysv"] {
        let out = qshm(&["key", "--type", t, key]).ok().out();
        assert!(out.contains(native.native_key()), "{out}");
    }
    // The same names as a real Qt 6.11.
    let mut peer = QtPeer::spawn(QtVersion::Qt6);
    let keys = peer
        .cmd(&format!("keys {}", hex(key.as_bytes())))
        .expect_ok("keys");
    assert_eq!(keys.field_str(0), lines[0], "Qt's native key");
    assert_eq!(keys.field_str(1), lines[1], "Qt's lock key");
    assert_eq!(keys.field_str(5), lines[2], "Qt's key text");
    let posix = qshm(&["key", "--type", "posix", key, "--json"])
        .ok()
        .json()
        .pop()
        .unwrap();
    assert_eq!(
        field(&posix, "native_key").unwrap(),
        keys.field_str(2),
        "Qt's POSIX legacy key"
    );
    let native = qshm(&["key", "--native", "posix:/x%3Fy", "--json"])
        .ok()
        .json()
        .pop()
        .unwrap();
    assert_eq!(field(&native, "native_key").as_deref(), Some("/x?y"));
    assert_eq!(field(&native, "qt_key").as_deref(), Some("null"));
}

#[test]
fn create_read_write_info_list_remove() {
    let _w = Watchdog::new("create_read_write_info_list_remove");
    let key = tag();
    let native = sysv(&key);
    let input = std::env::temp_dir().join(format!("{key}.in"));
    let _c = Cleanup::new().qt(&key).path(&input);
    // Binary data, every byte value.
    let data: Vec<u8> = (0..=255u8).rev().collect();
    std::fs::write(&input, &data).unwrap();
    let mut creator = hold(
        &key,
        "1000",
        &["--input", input.to_str().unwrap(), "--mode", "640"],
    );

    assert_eq!(qshm(&["read", &key, "--length", "256"]).ok().stdout, data);
    let out = std::env::temp_dir().join(format!("{key}.out"));
    let _c2 = Cleanup::new().path(&out);
    qshm(&[
        "read",
        &key,
        "--offset",
        "10",
        "--length",
        "5",
        "--output",
        out.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(&out).unwrap(), &data[10..15]);
    let read = qshm(&["read", &key, "--offset", "254", "--length", "4", "--json"]).ok();
    assert_eq!(
        field(&read.json()[0], "data_hex").as_deref(),
        Some("01000000")
    );

    qshm_stdin(&["write", &key, "--offset", "500"], b"\0written\xff").ok();
    let back = qshm(&["read", &key, "--offset", "500", "--length", "9"]).ok();
    assert_eq!(back.stdout, b"\0written\xff");

    let info = info_json(&key);
    assert_eq!(field(&info, "backend").as_deref(), Some("systemv"));
    assert_eq!(field(&info, "qt_key").as_deref(), Some(key.as_str()));
    assert_eq!(field(&info, "native_key"), Some(native.to_string()));
    assert_eq!(
        field(&info, "lock_key"),
        Some(native.lock_key().to_string())
    );
    assert_eq!(num(&info, "size"), 1000);
    assert_eq!(num(&info, "attach_count"), 1);
    assert_eq!(num(&info, "creator_pid"), u64::from(creator.pid()));
    assert_eq!(field(&info, "creator_alive").as_deref(), Some("true"));
    assert_eq!(field(&info, "mode").as_deref(), Some("0640"));
    assert_eq!(field(&info, "lock_state").as_deref(), Some("free"));
    assert_eq!(field(&info, "orphaned").as_deref(), Some("false"));
    let text = qshm(&["info", &key]).ok().out();
    assert!(
        text.contains("1000 bytes") && text.contains("free"),
        "{text}"
    );

    let list = qshm(&["list", "--json", "--match", &key]).ok().json();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(num(&list[0], "size"), 1000);
    assert_eq!(field(&list[0], "qt_key").as_deref(), Some("null"));
    let table = qshm(&["list", "--match", &key]).ok().out();
    assert!(
        table.starts_with("BACKEND") && table.contains(&key),
        "{table}"
    );

    // remove refuses while attached; --force removes.
    qshm(&["remove", &key]).fails(1, &format!("qshm: remove {key}: attached by 1"));
    assert!(exists(native.native_key()));
    let removed = qshm(&["remove", &key, "--force", "--json"]).ok().json();
    assert_eq!(field(&removed[0], "removed").as_deref(), Some("true"));
    assert!(!exists(native.native_key()), "key file removed");
    qshm(&["info", &key]).fails(1, &format!("qshm: info {key}: does not exist"));
    // The holder still has its mapping (and uses the lock to detach); SIGTERM ends it
    // cleanly. The lock it leaves, with nobody using it, is what `clean` removes.
    creator.signal("-TERM");
    assert_eq!(creator.wait(), 0);
    qshm(&["clean", "--match", &key]).ok();
    assert!(
        !exists(native.lock_key().native_key()),
        "lock key file removed"
    );
}

#[test]
fn create_holds_until_signal_and_the_last_detach_removes() {
    let _w = Watchdog::new("create_holds_until_signal_and_the_last_detach_removes");
    for sig in ["-INT", "-TERM"] {
        let key = tag();
        let native = sysv(&key);
        let _c = Cleanup::new().qt(&key);
        let mut creator = hold(&key, "64", &[]);
        assert!(exists(native.native_key()));
        creator.signal(sig);
        assert_eq!(creator.wait(), 0, "{sig}");
        assert!(!exists(native.native_key()), "{sig}: segment removed");
        assert!(
            !exists(native.lock_key().native_key()),
            "{sig}: lock removed"
        );
    }
    // --for ends by itself; another holder keeps the segment alive.
    let key = tag();
    let _c = Cleanup::new().qt(&key);
    let mut creator = hold(&key, "64", &["--for", "0.3"]);
    let mut qt = QtPeer::spawn(QtVersion::Qt6);
    qt.cmd(&format!("key {}", hex(key.as_bytes())))
        .expect_ok("key");
    qt.cmd("attach rw").expect_ok("attach");
    assert_eq!(creator.wait(), 0);
    assert_eq!(
        num(&info_json(&key), "attach_count"),
        1,
        "Qt still holds it"
    );
    qt.cmd("detach").expect_ok("detach");
    assert!(
        !exists(sysv(&key).native_key()),
        "Qt's last detach removed it"
    );
}

#[test]
fn lock_holds_and_passes_a_command_status_through() {
    let _w = Watchdog::new("lock_holds_and_passes_a_command_status_through");
    let key = tag();
    let _c = Cleanup::new().qt(&key);
    let _creator = hold(&key, "64", &[]);
    // The command runs while the lock is held: `info` run inside sees it held by qshm lock.
    let run = qshm(&["lock", &key, "--", BIN, "info", &key, "--json"]).ok();
    let lines = run.json();
    assert_eq!(lines.len(), 1, "{}", run.out());
    let out = run.out();
    let inner = out.lines().last().unwrap();
    assert_eq!(
        field(inner, "lock_state").as_deref(),
        Some("held"),
        "{inner}"
    );
    assert_eq!(num(inner, "attach_count"), 2);
    assert!(run.out().starts_with("locked "), "{}", run.out());
    assert_eq!(qshm(&["lock", &key, "--", "sh", "-c", "exit 7"]).status, 7);
    assert_eq!(
        qshm(&["lock", &key, "--", "sh", "-c", "kill -TERM $$"]).status,
        128 + 15
    );
    qshm(&["lock", &key, "--", "/nonexistent/cmd"])
        .fails(127, &format!("qshm: lock {key}: cannot run"));
    // Free again afterwards; --for and a signal end a hold.
    assert_eq!(
        field(&info_json(&key), "lock_state").as_deref(),
        Some("free")
    );
    let mut holder = Bg::spawn(&["lock", &key, "--json"]);
    let locked = holder.line();
    assert_eq!(num(&locked, "pid"), u64::from(holder.pid()));
    let info = info_json(&key);
    assert_eq!(field(&info, "lock_state").as_deref(), Some("held"));
    assert_eq!(num(&info, "lock_pid"), u64::from(holder.pid()));
    holder.signal("-INT");
    assert_eq!(holder.wait(), 0);
    assert_eq!(
        field(&info_json(&key), "lock_state").as_deref(),
        Some("free")
    );
    qshm(&["lock", &key, "--for", "0.1"]).ok();
}

#[test]
fn qt_segments_list_info_read_and_lock() {
    let _w = Watchdog::new("qt_segments_list_info_read_and_lock");
    for v in QtVersion::ALL {
        let key = format!("{}-{v}", tag());
        let native = sysv(&key);
        let _c = Cleanup::new().qt(&key);
        let mut qt = QtPeer::spawn(v);
        qt.cmd(&format!("key {}", hex(key.as_bytes())))
            .expect_ok("key");
        qt.cmd("create 1000 rw").expect_ok("create");
        let data = format!("written by {v}: \u{e4}\0\u{7f}").into_bytes();
        qt.cmd(&format!("write 0 {}", hex(&data)))
            .expect_ok("write");
        let qt_pid = qt.cmd("pid").expect_ok("pid").field_u64(0);

        let native_text = NativeKey::new(native.native_key(), KeyType::SystemV).to_string();
        let list = qshm(&["list", "--json", "--match", native.native_key()])
            .ok()
            .json();
        assert_eq!(list.len(), 1, "{v}: {list:?}");
        assert_eq!(field(&list[0], "native_key"), Some(native_text), "{v}");
        assert_eq!(num(&list[0], "size"), 1000, "{v}");
        assert_eq!(num(&list[0], "attach_count"), 1, "{v}");
        assert_eq!(num(&list[0], "creator_pid"), qt_pid, "{v}");
        let info = info_json(&key);
        assert_eq!(field(&info, "qt_key").as_deref(), Some(key.as_str()));
        assert_eq!(num(&info, "size"), 1000);
        assert_eq!(field(&info, "lock_state").as_deref(), Some("free"));

        // read returns Qt's bytes.
        let len = data.len().to_string();
        assert_eq!(
            qshm(&["read", &key, "--length", &len]).ok().stdout,
            data,
            "{v}"
        );

        // Qt holds the lock: info says so; then qshm lock makes Qt's lock() wait.
        qt.cmd("lock").expect_ok("lock");
        let info = info_json(&key);
        assert_eq!(field(&info, "lock_state").as_deref(), Some("held"), "{v}");
        assert_eq!(num(&info, "lock_pid"), qt_pid, "{v}");
        qt.cmd("unlock").expect_ok("unlock");

        let mut holder = Bg::spawn(&["lock", &key, "--for", "1.5"]);
        assert!(holder.line().starts_with("locked"));
        let asked = Instant::now();
        qt.send("lock");
        let got = qt.recv().expect_ok("lock after qshm");
        assert!(
            got.t.saturating_duration_since(asked) >= Duration::from_millis(900),
            "{v}: Qt's lock() did not wait for qshm's: {:?}",
            got.t.saturating_duration_since(asked)
        );
        // (qshm's detach takes the lock, as Qt's does: Qt unlocks first.)
        qt.cmd("unlock").expect_ok("unlock");
        assert_eq!(holder.wait(), 0);

        // qshm writes, Qt reads.
        qshm_stdin(&["write", &key, "--offset", "100"], b"from qshm").ok();
        let back = qt.cmd("read 100 9").expect_ok("read");
        assert_eq!(back.field_bytes(0), b"from qshm");
    }
}

#[test]
fn clean_removes_what_kill9_left_and_nothing_in_use() {
    let _w = Watchdog::new("clean_removes_what_kill9_left_and_nothing_in_use");
    let t = tag();
    let (dead_qshm, live_qshm, dead_qt, live_qt, dead_sem) = (
        format!("{t}deadqshm"),
        format!("{t}liveqshm"),
        format!("{t}deadqt"),
        format!("{t}liveqt"),
        format!("{t}deadsem"),
    );
    let stale_file = format!("/tmp/qipc_sharedmemory_{t}stale");
    let young_file = format!("/tmp/qipc_systemsem_{t}young");
    let _c = Cleanup::new()
        .qt(&dead_qshm)
        .qt(&live_qshm)
        .qt(&dead_qt)
        .qt(&live_qt)
        .key(&NativeKey::legacy(&dead_sem, KeyType::SystemV))
        .path(&stale_file)
        .path(&young_file);
    let dead_sem_key = qshm::SystemSemaphore::legacy_native_key(&dead_sem, KeyType::SystemV);
    let _c2 = Cleanup::new().key(&dead_sem_key);

    // A qshm creator killed while another qshm process held the lock.
    let mut creator = hold(&dead_qshm, "128", &[]);
    let mut locker = Bg::spawn(&["lock", &dead_qshm]);
    assert!(locker.line().starts_with("locked"));
    locker.kill9();
    creator.kill9();
    // A Qt creator killed holding the lock, and a Qt semaphore killed with it.
    let mut qt = QtPeer::spawn(QtVersion::Qt6);
    qt.cmd(&format!("key {}", hex(dead_qt.as_bytes())))
        .expect_ok("key");
    qt.cmd("create 256 rw").expect_ok("create");
    qt.cmd("lock").expect_ok("lock");
    qt.cmd(&format!("sem {} 1 open", hex(dead_sem.as_bytes())))
        .expect_ok("sem");
    qt.kill();
    // Things in use: a live qshm holder, and a Qt segment whose creator died but that
    // another Qt process still has attached.
    let mut live = hold(&live_qshm, "64", &[]);
    let mut qt_creator = QtPeer::spawn(QtVersion::Qt6);
    qt_creator
        .cmd(&format!("key {}", hex(live_qt.as_bytes())))
        .expect_ok("key");
    qt_creator.cmd("create 64 rw").expect_ok("create");
    let mut qt_user = QtPeer::spawn(QtVersion::Qt5);
    qt_user
        .cmd(&format!("key {}", hex(live_qt.as_bytes())))
        .expect_ok("key");
    qt_user.cmd("attach rw").expect_ok("attach");
    qt_creator.kill();
    // Stale key files: one old enough to be sure, one that might be being created now.
    std::fs::write(&stale_file, b"").unwrap();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale_file)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    // "Young": as if a process were creating it right now (a future time keeps it young
    // however slowly this test runs).
    std::fs::write(&young_file, b"").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&young_file)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(3600))
        .unwrap();

    let info = info_json(&dead_qshm);
    assert_eq!(field(&info, "orphaned").as_deref(), Some("true"), "{info}");
    assert_eq!(field(&info, "creator_alive").as_deref(), Some("false"));
    assert_eq!(num(&info, "attach_count"), 0);
    assert_eq!(
        field(&info, "lock_state").as_deref(),
        Some("free"),
        "SEM_UNDO gave it back"
    );
    let info = info_json(&live_qt);
    assert_eq!(field(&info, "orphaned").as_deref(), Some("false"), "{info}");
    assert_eq!(field(&info, "creator_alive").as_deref(), Some("false"));

    let dry = qshm(&["clean", "--dry-run", "--json", "--match", &t])
        .ok()
        .json();
    let names: Vec<String> = dry.iter().filter_map(|l| field(l, "name")).collect();
    let has = |s: &str| names.iter().any(|n| n.contains(s));
    assert!(has(&sysv(&dead_qshm).native_key()[5..]), "{names:?}");
    assert!(has(&sysv(&dead_qt).native_key()[5..]), "{names:?}");
    // A standalone semaphore (its count may be someone's tokens) only when named.
    assert!(
        !has(&dead_sem_key.native_key()[5..]),
        "Qt's standalone semaphore: {names:?}"
    );
    let named = qshm(&[
        "clean",
        "--dry-run",
        "--json",
        "--semaphores",
        "--match",
        &dead_sem_key.native_key()[5..],
    ])
    .ok()
    .json();
    assert_eq!(named.len(), 1, "{named:?}");
    assert!(has(&stale_file), "{names:?}");
    assert!(
        !has(&young_file),
        "a young key file is left alone: {names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains(&live_qshm) || n.contains("liveqt")),
        "{names:?}"
    );
    assert!(dry
        .iter()
        .all(|l| field(l, "removed").as_deref() == Some("false")));
    assert!(
        exists(sysv(&dead_qshm).native_key()),
        "dry run removed something"
    );

    let cleaned = qshm(&["clean", "--match", &t]).ok();
    assert!(cleaned.out().contains("removed"), "{}", cleaned.out());
    for k in [&dead_qshm, &dead_qt] {
        let n = sysv(k);
        assert!(!exists(n.native_key()), "{k}: key file left");
        assert!(
            !exists(n.lock_key().native_key()),
            "{k}: lock key file left"
        );
        qshm(&["info", k]).fails(1, &format!("qshm: info {k}: does not exist"));
    }
    assert!(
        exists(dead_sem_key.native_key()),
        "Qt's standalone semaphore was cleaned without being named"
    );
    qshm(&[
        "clean",
        "--semaphores",
        "--match",
        &dead_sem_key.native_key()[5..],
    ])
    .ok();
    assert!(
        !exists(dead_sem_key.native_key()),
        "Qt's semaphore key file left"
    );
    assert!(!exists(&stale_file));
    assert!(exists(&young_file));
    // Nothing in use was touched.
    assert_eq!(num(&info_json(&live_qshm), "attach_count"), 1);
    assert_eq!(num(&info_json(&live_qt), "attach_count"), 1);
    qshm(&["read", &live_qt, "--length", "4"]).ok();
    let again = qshm(&["clean", "--match", &t]).ok();
    assert!(again.out().contains("nothing to clean"), "{}", again.out());
    live.signal("-TERM");
    assert_eq!(live.wait(), 0);
    qt_user.cmd("detach").expect_ok("detach");
}

#[test]
fn segment_whose_key_file_is_gone_is_listed_and_removed_by_id() {
    let _w = Watchdog::new("segment_whose_key_file_is_gone_is_listed_and_removed_by_id");
    let key = tag();
    let native = sysv(&key);
    // The key file is moved away rather than deleted: a deleted one's inode may be given
    // to a key file another test creates meanwhile, whose ftok key would then name this
    // orphan (and that test's clean-up would remove it).
    let moved = Path::new(native.native_key()).with_file_name(format!("moved-keyfile-{key}"));
    let _c = Cleanup::new().qt(&key).path(&moved);
    let mut creator = hold(&key, "4096", &[]);
    let shmid = num(&info_json(&key), "shmid");
    creator.kill9();
    std::fs::rename(native.native_key(), &moved).unwrap();
    let list = qshm(&["list", "--json"]).ok().json();
    let entry = list
        .iter()
        .find(|l| field(l, "shmid") == Some(shmid.to_string()))
        .unwrap_or_else(|| panic!("shmid {shmid} not listed"));
    assert_eq!(field(entry, "native_key").as_deref(), Some("null"));
    assert_eq!(field(entry, "orphaned").as_deref(), Some("true"));
    assert_eq!(num(entry, "size"), 4096);
    let id = shmid.to_string();
    qshm(&["remove", "--id", &id]).ok();
    let list = qshm(&["list", "--json"]).ok().json();
    assert!(!list
        .iter()
        .any(|l| field(l, "shmid") == Some(shmid.to_string())));
    qshm(&["remove", "--id", &id]).fails(1, &format!("qshm: remove --id {id}: no Qt"));
}

#[test]
fn posix_qt_segments_info_list_and_clean() {
    let _w = Watchdog::new("posix_qt_segments_info_list_and_clean");
    let name = tag();
    let text = format!("posix:/{name}");
    let native = NativeKey::new(format!("/{name}"), KeyType::PosixRealtime);
    let _c = Cleanup::new().key(&native);
    let mut qt = QtPeer::spawn(QtVersion::Qt6);
    qt.cmd(&format!("nkey {}", hex(text.as_bytes())))
        .expect_ok("nkey");
    qt.cmd("create 640 rw").expect_ok("create");
    qt.cmd(&format!("write 0 {}", hex(b"posix from Qt")))
        .expect_ok("write");

    let list = qshm(&["list", "--json", "--match", &name]).ok().json();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(field(&list[0], "backend").as_deref(), Some("posix"));
    assert_eq!(field(&list[0], "native_key"), Some(text.clone()));
    assert_eq!(num(&list[0], "size"), 640);
    assert_eq!(num(&list[0], "attach_count"), 1);
    let info = qshm(&["info", "--native", &text, "--json"]).ok().json();
    assert_eq!(field(&info[0], "path"), Some(format!("/dev/shm/{name}")));
    assert_eq!(field(&info[0], "lock_state").as_deref(), Some("free"));
    if KeyType::PosixRealtime.is_supported() {
        let read = qshm(&["read", "--native", &text, "--length", "13"]).ok();
        assert_eq!(read.stdout, b"posix from Qt");
    }
    // Qt dies holding its POSIX lock: nothing gives it back (spec §8.2); info tells.
    qt.cmd("lock").expect_ok("lock");
    qt.kill();
    let info = qshm(&["info", "--native", &text, "--json"]).ok().json();
    assert_eq!(
        field(&info[0], "lock_state").as_deref(),
        Some("holder_dead"),
        "{info:?}"
    );
    assert_eq!(field(&info[0], "orphaned").as_deref(), Some("true"));
    // Too young to be sure nobody is creating it; once old enough, clean removes both files.
    let dry = qshm(&["clean", "--dry-run", "--json", "--match", &name])
        .ok()
        .json();
    assert!(dry.is_empty(), "{dry:?}");
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for f in [format!("/dev/shm/{name}"), format!("/dev/shm/sem.{name}")] {
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    qshm(&["clean", "--match", &name]).ok();
    assert!(!exists(&format!("/dev/shm/{name}")));
    assert!(!exists(&format!("/dev/shm/sem.{name}")));
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic() {
    let _w = Watchdog::new("bad_input_is_a_clear_error_never_a_panic");
    let missing = tag();
    let _c0 = Cleanup::new().qt(&missing);
    for verb in ["info", "read", "write", "lock", "remove"] {
        let run = if verb == "write" {
            qshm_stdin(&[verb, &missing], b"x")
        } else {
            qshm(&[verb, &missing])
        };
        run.fails(1, &format!("qshm: {verb} {missing}: "));
    }
    qshm(&["info", "--native", "bogus:/x"]).fails(2, "qshm: info: `bogus:/x` is not a native key");
    qshm(&["read", "--native", "posix:/x?junk=1"]).fails(2, "qshm: read: ");
    qshm(&["info", "--native", "--type", "posix", "posix:/x"]).fails(2, "qshm: info: --type");
    qshm(&["create", "x", "0"]).fails(2, "error: invalid value '0'");
    qshm(&["create", "x", "-5"]).fails(2, "error:");
    qshm(&["create", "x", "10", "--mode", "999"]).fails(2, "error:");
    qshm(&["frobnicate"]).fails(2, "error:");
    qshm(&["info"]).fails(2, "error:");
    qshm(&["lock", "x", "--for", "1", "--", "true"]).fails(2, "error:");
    qshm(&["info", ""]).fails(2, "qshm: info: the key is empty");

    let key = tag();
    let _c = Cleanup::new().qt(&key);
    let mut creator = hold(&key, "64", &[]);
    qshm(&["read", &key, "--offset", "65"])
        .fails(1, &format!("qshm: read {key}: offset 65 is past the end"));
    qshm(&["read", &key, "--offset", "60", "--length", "5"])
        .fails(1, &format!("qshm: read {key}: 5 bytes at offset 60"));
    qshm_stdin(&["write", &key, "--offset", "100"], b"x")
        .fails(1, &format!("qshm: write {key}: offset 100 is past the end"));
    qshm_stdin(&["write", &key], &[7u8; 65]).fails(
        1,
        &format!("qshm: write {key}: standard input holds more than the 64 bytes that fit"),
    );
    // Endless input is refused once more than fits has come, not read until memory runs out.
    qshm(&["write", &key, "--input", "/dev/zero"]).fails(
        1,
        &format!("qshm: write {key}: /dev/zero holds more than the 64 bytes that fit"),
    );
    let mut endless = command(&["write", &key, "--offset", "4"]);
    endless.stdin(std::fs::File::open("/dev/zero").unwrap());
    let out = endless.output().expect("run qshm");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("more than the 60 bytes that fit"),
        "{out:?}"
    );
    qshm_stdin(&["write", &key, "--offset", "60"], b"12345").fails(1, "qshm: write");
    assert_eq!(
        qshm(&["read", &key]).ok().stdout,
        vec![0u8; 64],
        "a refused write wrote nothing"
    );
    qshm_stdin(&["create", &key, "10", "--input", "-"], &[1u8; 11]).fails(
        1,
        &format!("qshm: create {key}: standard input holds more than the 10 bytes that fit"),
    );
    qshm(&["create", &key, "10"]).fails(1, &format!("qshm: create {key}: already exists"));
    qshm(&["read", &key, "--output", "/nonexistent/dir/file"])
        .fails(1, &format!("qshm: read {key}: cannot write"));

    // Another user: no permission on root's 0600 segment and lock.
    let _bin = BinCopy; // removes the copy of the binary, whatever happens
    for args in [
        vec!["read", key.as_str()],
        vec!["lock", key.as_str(), "--for", "0"],
        vec!["remove", key.as_str(), "--force"],
    ] {
        let run = qshm_as_nobody(&args);
        let run = run.fails(1, &format!("qshm: {} {key}: ", args[0]));
        assert!(
            run.stderr.contains("permission denied"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    }
    let run = qshm_as_nobody(&["info", &key, "--json"]).ok();
    assert_eq!(
        field(&run.json()[0], "lock_state").as_deref(),
        Some("unknown")
    );
    assert_eq!(num(&info_json(&key), "attach_count"), 1, "still there");
    creator.signal("-TERM");
    assert_eq!(creator.wait(), 0);
}

#[test]
fn every_verb_has_help_with_an_example() {
    let _w = Watchdog::new("every_verb_has_help_with_an_example");
    for verb in [
        "key",
        "create",
        "read",
        "write",
        "lock",
        "info",
        "list",
        "remove",
        "clean",
        "demo",
        "doctor",
        "completions",
        "man",
    ] {
        let out = qshm(&[verb, "--help"]).ok().out();
        assert!(out.contains("Example"), "{verb}: {out}");
        assert!(out.contains("Usage: qshm"), "{verb}: {out}");
    }
    let top = qshm(&["--help"]).ok().out();
    assert!(!top.contains("demo-worker"), "the worker verb is hidden");
}

#[test]
fn demo_verifies_its_result() {
    let _w = Watchdog::new("demo_verifies_its_result");
    let run = qshm(&["demo"]).ok();
    let out = run.out();
    assert!(out.contains("verified: OK"), "{out}");
    let json = qshm(&["demo", "--json", "--workers", "3", "--increments", "2000"])
        .ok()
        .json();
    assert_eq!(json.len(), 1, "{json:?}");
    assert_eq!(num(&json[0], "counter"), 6000);
    assert_eq!(field(&json[0], "verified").as_deref(), Some("true"));
    assert_eq!(field(&json[0], "segment_removed").as_deref(), Some("true"));
}

#[test]
fn qshm_posix_segments_and_their_lock_owner() {
    let _w = Watchdog::new("qshm_posix_segments_and_their_lock_owner");
    if !KeyType::PosixRealtime.is_supported() {
        return;
    }
    let key = tag();
    let native = NativeKey::legacy(&key, KeyType::PosixRealtime);
    let _c = Cleanup::new().key(&native);
    let mut creator = hold(&key, "300", &["--type", "posix"]);
    let info = qshm(&["info", "--type", "posix", &key, "--json"])
        .ok()
        .json();
    assert_eq!(field(&info[0], "backend").as_deref(), Some("posix"));
    assert_eq!(field(&info[0], "qt_key").as_deref(), Some(key.as_str()));
    assert_eq!(num(&info[0], "size"), 300);
    assert_eq!(num(&info[0], "attach_count"), 1);
    assert_eq!(field(&info[0], "lock_state").as_deref(), Some("free"));
    let list = qshm(&["list", "--json", "--match", &key]).ok().json();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(
        field(&list[0], "native_key"),
        Some(format!("posix:{}", native.native_key()))
    );

    // A qshm holder's pid is in the lock's owner record; killed, it shows as dead, and the
    // next locker takes the lock over.
    let mut holder = Bg::spawn(&["lock", "--type", "posix", &key]);
    assert!(holder.line().starts_with("locked"));
    let info = qshm(&["info", "--type", "posix", &key, "--json"])
        .ok()
        .json();
    assert_eq!(
        field(&info[0], "lock_state").as_deref(),
        Some("held"),
        "{info:?}"
    );
    assert_eq!(num(&info[0], "lock_pid"), u64::from(holder.pid()));
    let pid = holder.pid();
    holder.kill9();
    let info = qshm(&["info", "--type", "posix", &key, "--json"])
        .ok()
        .json();
    assert_eq!(
        field(&info[0], "lock_state").as_deref(),
        Some("holder_dead"),
        "{info:?}"
    );
    assert_eq!(num(&info[0], "lock_pid"), u64::from(pid));
    qshm(&["lock", "--type", "posix", &key, "--for", "0"]).ok();
    let info = qshm(&["info", "--type", "posix", &key, "--json"])
        .ok()
        .json();
    assert_eq!(
        field(&info[0], "lock_state").as_deref(),
        Some("free"),
        "{info:?}"
    );

    creator.signal("-TERM");
    assert_eq!(creator.wait(), 0);
    let name = native.native_key().trim_start_matches('/').to_owned();
    assert!(
        !exists(&format!("/dev/shm/{name}")),
        "the last detach removed it"
    );
    qshm(&["info", "--type", "posix", &key]).fails(1, &format!("qshm: info {key}: does not exist"));
}

/// A FIFO at a POSIX segment's name (anyone may make one in `/dev/shm`): `write` and
/// `create` each fail with one clear line, and neither leaves the key's lock semaphore
/// behind (a failed create used to).
#[test]
fn a_fifo_at_the_segment_name_fails_clearly_and_leaves_no_lock() {
    let _w = Watchdog::new("a_fifo_at_the_segment_name_fails_clearly_and_leaves_no_lock");
    if !KeyType::PosixRealtime.is_supported() {
        return;
    }
    let key = tag();
    let native = NativeKey::legacy(&key, KeyType::PosixRealtime);
    let segment = format!("/dev/shm{}", native.native_key());
    let lock = format!("/dev/shm/sem.{}", &native.lock_key().native_key()[1..]);
    let _c = Cleanup::new().key(&native).path(&segment).path(&lock);
    let made = Command::new("mkfifo")
        .arg(&segment)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let is_fifo = || {
        use std::os::unix::fs::FileTypeExt;
        std::fs::symlink_metadata(&segment).is_ok_and(|m| m.file_type().is_fifo())
    };

    let run = qshm_stdin(&["write", "--type", "posix", &key], b"hi").fails(
        1,
        &format!(
            "qshm: write {key}: the name is taken by something that is not a shared memory \
             segment"
        ),
    );
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(!exists(&lock), "write left the lock semaphore");
    let run = qshm(&["create", "--type", "posix", &key, "64"])
        .fails(1, &format!("qshm: create {key}: already exists"));
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(!exists(&lock), "the failed create left the lock semaphore");
    assert!(is_fifo(), "the FIFO was touched");
}

/// Names that are not UTF-8 (Qt 5 in a Latin-1 locale makes them from a native key, and any
/// program may): a POSIX segment `posix:/<bytes>` with its lock `sem.<bytes>`, and a stale
/// `qipc_sharedmemory_<bytes>` key file, all left behind. `list` shows the segment, its JSON
/// stays valid (the path lossy, `path_escaped` exact), and `clean` removes all three. They
/// used to be skipped.
#[test]
fn names_that_are_not_utf8_are_listed_and_cleaned() {
    use std::os::unix::ffi::OsStrExt;
    let _w = Watchdog::new("names_that_are_not_utf8_are_listed_and_cleaned");
    let name = tag();
    let raw = |prefix: &str| {
        let mut bytes = prefix.as_bytes().to_vec();
        bytes.extend_from_slice(name.as_bytes());
        bytes.extend_from_slice(b"-\xe9t\xe9");
        PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))
    };
    let segment = raw("/dev/shm/");
    let lock = raw("/dev/shm/sem.");
    let key_file = raw("/tmp/qipc_sharedmemory_");
    let _c = Cleanup::new().path(&segment).path(&lock).path(&key_file);
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    // A segment of 640 bytes, and a free glibc semaphore (value 1) as its lock.
    let mut sem_bytes = [0u8; 32];
    sem_bytes[..4].copy_from_slice(&1u32.to_ne_bytes());
    for (path, bytes) in [
        (&segment, &[7u8; 640][..]),
        (&lock, &sem_bytes[..]),
        (&key_file, &[][..]),
    ] {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        // Mode 0600, as Qt makes them: nobody this test cannot see can have them open.
        let mut f = std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
        f.set_modified(hour_ago).unwrap();
    }
    let escaped = format!("/dev/shm/{name}-\\xe9t\\xe9");
    let lossy = format!("/dev/shm/{name}-\u{fffd}t\u{fffd}");

    // The library: listed, with the exact file names and no native key (a key is text).
    let all = inspect::list().unwrap();
    let info = all
        .iter()
        .find(|s| s.path.as_deref() == Some(segment.as_path()))
        .unwrap_or_else(|| panic!("not listed: {all:?}"));
    assert_eq!(info.native_key, None);
    assert_eq!(info.lock_path.as_deref(), Some(lock.as_path()));
    assert_eq!(info.size, 640);
    assert_eq!(info.lock_state, inspect::LockState::Free);
    assert!(info.orphaned, "{info:?}");

    let run = qshm(&["list", "--match", &name]).ok();
    assert!(run.out().contains(&escaped), "{}", run.out());
    let run = qshm(&["list", "--json", "--match", &name]).ok();
    assert!(String::from_utf8(run.stdout.clone()).is_ok(), "not UTF-8");
    let list = run.json();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(field(&list[0], "native_key").as_deref(), Some("null"));
    assert_eq!(field(&list[0], "path"), Some(lossy.clone()));
    assert_eq!(field(&list[0], "path_escaped"), Some(escaped.clone()));
    assert_eq!(field(&list[0], "lock_state").as_deref(), Some("free"));

    let dry = qshm(&["clean", "--dry-run", "--json", "--match", &name])
        .ok()
        .json();
    assert_eq!(dry.len(), 2, "{dry:?}");
    assert_eq!(field(&dry[0], "kind").as_deref(), Some("segment"));
    assert_eq!(field(&dry[0], "name_escaped"), Some(escaped));
    assert_eq!(field(&dry[1], "kind").as_deref(), Some("key_file"));
    assert_eq!(
        field(&dry[1], "name_escaped"),
        Some(format!("/tmp/qipc_sharedmemory_{name}-\\xe9t\\xe9"))
    );
    qshm(&["clean", "--match", &name]).ok();
    for path in [&segment, &lock, &key_file] {
        assert!(!path.exists(), "{} left", path.display());
    }
}

/// `qshm wait` sleeps until `qshm notify` (or any notifier) announces a change, and gives up
/// with exit status 1 after `--timeout`; the companion goes with the segment.
#[test]
fn wait_is_woken_by_notify_and_times_out() {
    let _w = Watchdog::new("wait_is_woken_by_notify_and_times_out");
    let key = tag();
    let _c = Cleanup::new().qt(&key);
    let mut creator = hold(&key, "64", &[]);
    let start = Instant::now();
    qshm(&["wait", &key, "--timeout", "0.3"])
        .fails(1, &format!("qshm: wait {key}: no change within 0.3 s"));
    assert!(start.elapsed() >= Duration::from_millis(300));
    let mut waiter = Bg::spawn(&["wait", &key, "--json"]);
    // A notify that lands before the waiter has read the counter is one it counts as seen:
    // notify until it has woken (once, normally).
    let mut last = 0;
    for _ in 0..100 {
        let notified = qshm(&["notify", &key, "--json"]).ok();
        last = num(&notified.json().pop().expect("one object"), "change");
        std::thread::sleep(Duration::from_millis(100));
        if let Ok(Some(_)) = waiter.child.try_wait() {
            break;
        }
    }
    let line = waiter.line();
    assert_eq!(field(&line, "verb").as_deref(), Some("wait"), "{line}");
    assert!((1..=last).contains(&num(&line, "change")), "{line}");
    assert_eq!(waiter.wait(), 0);
    creator.signal("-TERM");
    assert_eq!(creator.wait(), 0);
    let companion = qshm::notify::companion_path(&sysv(&key));
    assert!(!companion.exists(), "the companion went with the segment");
}
