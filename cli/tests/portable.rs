//! End-to-end tests of the `qshm` binary on every platform with a backend: Linux natively,
//! Windows under Wine (`cargo test --target x86_64-pc-windows-gnu` with `target/wine/env.sh`,
//! README). `key`, `create` with `read`, `write` and `info` across processes, `lock`, `demo`,
//! and what `list`, `clean` and `remove` say where they cannot work. The Linux-only suite,
//! with real Qt peers and `qshm::inspect`, is `cli.rs`.
//!
//! Every test uses keys of its own and runs under a watchdog. The processes it starts get
//! pipes or the null device as standard handles, never files (Wine needs that).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qshm::{AccessMode, KeyType, NativeKey, SharedMemory};

mod common;
use common::Watchdog;

const BIN: &str = env!("CARGO_BIN_EXE_qshm");
const TIMEOUT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------------
// Helpers

/// Letters only, unique to this test process and call.
fn tag() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut v = (u64::from(std::process::id()) << 32) ^ u64::from(nanos) ^ ((n as u64) << 56);
    let mut s = String::from("qport");
    for _ in 0..12 {
        s.push(char::from(b'a' + (v % 26) as u8));
        v /= 26;
    }
    s.push(char::from(b'a' + (n % 26) as u8));
    s
}

/// The native key `qshm` derives for the Qt key `key` without `--type`: the platform's.
fn native(key: &str) -> NativeKey {
    NativeKey::legacy(key, KeyType::legacy_default_for_os())
}

/// Removes what a failed test may have left of a key (on Unix; Windows leaves nothing once
/// the processes holding it are gone, and refuses to remove anything).
struct Cleanup(NativeKey);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = SharedMemory::force_remove(&self.0);
    }
}

/// Ends the whole test binary when a test runs longer than 180 s (Wine is slow to start).
fn watchdog(name: &'static str) -> Watchdog {
    Watchdog::with_limit(name, Duration::from_secs(180))
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
        self
    }

    /// Asserts the exit status and that stderr is one line starting with `prefix`.
    #[track_caller]
    fn fails(self, status: i32, prefix: &str) -> Run {
        assert_eq!(self.status, status, "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(
            self.stderr.starts_with(prefix),
            "stderr should start with {prefix:?}: {:?}",
            self.stderr
        );
        assert_eq!(self.stderr.trim_end().lines().count(), 1, "{}", self.stderr);
        self
    }

    /// As `fails`, with `--json`: the error is one JSON object on stderr whose `message` is
    /// the text line (quotes escaped) and whose `exit_status` is the status.
    #[track_caller]
    fn fails_json(self, status: i32, prefix: &str) -> Run {
        assert_eq!(self.status, status, "{self:?}");
        let line = self.stderr.trim_end();
        assert_eq!(line.lines().count(), 1, "{}", self.stderr);
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert!(
            line.contains(&format!("\"exit_status\":{status}")),
            "{line}"
        );
        let message = format!("\"message\":\"{}", prefix.replace('"', "\\\""));
        assert!(
            line.contains(&message),
            "stderr should hold {message:?}: {line}"
        );
        self
    }

    /// The one JSON object of stdout.
    #[track_caller]
    fn json(&self) -> String {
        let lines: Vec<&str> = self
            .stdout
            .split(|b| *b == b'\n')
            .filter_map(|l| std::str::from_utf8(l).ok())
            .filter(|l| l.starts_with('{'))
            .collect();
        assert_eq!(lines.len(), 1, "{}", self.out());
        lines[0].to_owned()
    }
}

fn qshm_with(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run qshm");
    if let Some(data) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // A command that refuses before reading all of it closes the pipe: fine.
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
    qshm_with(args, None)
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

/// A `qshm` running in the background (`create`, `lock`), whose stdout lines are read as
/// they come. Killed when dropped.
struct Bg {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bg {
    fn spawn(args: &[&str]) -> Bg {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn qshm");
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
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|e| panic!("qshm {} printed nothing: {e}", self.child.id()))
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
                start.elapsed() < TIMEOUT,
                "qshm {} did not exit",
                self.child.id()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Ends a holder as a user would: SIGTERM on Unix, after which it detaches and exits
    /// with 0; on Windows the process is terminated (`TerminateProcess`) and its handles
    /// close, which is all a section needs. Returns whether it exited as expected.
    fn stop(&mut self) -> bool {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            self.wait() == 0
        }
        #[cfg(windows)]
        {
            let _ = self.child.kill();
            self.child.wait().is_ok()
        }
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

// ------------------------------------------------------------------------------------------
// Tests

#[test]
fn key_prints_the_platforms_names() {
    let _w = watchdog("key_prints_the_platforms_names");
    let key = "my key/ä!";
    let k = native(key);
    let out = qshm(&["key", key]).ok().out();
    let lines: Vec<&str> = out.lines().collect();
    let text = k.to_string();
    assert_eq!(
        lines,
        [
            format!("segment {}", k.native_key()),
            format!("lock    {}", k.lock_key().native_key()),
            format!("text    {text}"),
        ]
    );
    let json = qshm(&["key", key, "--json"]).ok().json();
    let expected_type = if cfg!(windows) { "windows" } else { "systemv" };
    assert_eq!(field(&json, "type").as_deref(), Some(expected_type));
    assert_eq!(field(&json, "qt_key").as_deref(), Some(key));
    assert_eq!(field(&json, "key_text"), Some(text));
    // A type this platform has no names for is a usage error that says which it has.
    let (absent, here) = if cfg!(windows) {
        ("posix", "here: windows")
    } else {
        ("windows", "here: systemv, posix")
    };
    let run = qshm(&["key", "--type", absent, key]).fails(2, "qshm: key: Qt gives `--type");
    assert!(run.stderr.contains(here), "{}", run.stderr);
}

#[test]
fn create_write_read_and_info_across_processes() {
    let _w = watchdog("create_write_read_and_info_across_processes");
    let key = tag();
    let k = native(&key);
    let _c = Cleanup(k.clone());
    let mut creator = Bg::spawn(&["create", &key, "1000", "--input", "-", "--json"]);
    // `--input -` reads standard input, here the null device: nothing to fill in.
    let ready = creator.line();
    assert_eq!(field(&ready, "status").as_deref(), Some("ready"), "{ready}");
    assert_eq!(field(&ready, "native_key"), Some(k.to_string()));
    assert_eq!(num(&ready, "bytes_written"), 0);

    let data: Vec<u8> = (0..=255u8).rev().collect();
    qshm_with(&["write", &key, "--offset", "100"], Some(&data)).ok();
    let back = qshm(&["read", &key, "--offset", "100", "--length", "256"]).ok();
    assert_eq!(back.stdout, data);
    let hex = qshm(&["read", &key, "--offset", "354", "--length", "3", "--json"])
        .ok()
        .json();
    assert_eq!(field(&hex, "data_hex").as_deref(), Some("010000"));
    let info = qshm(&["info", &key, "--json"]).ok().json();
    let backend = if cfg!(windows) { "windows" } else { "systemv" };
    assert_eq!(field(&info, "backend").as_deref(), Some(backend));
    assert_eq!(field(&info, "native_key"), Some(k.to_string()));
    assert_eq!(field(&info, "qt_key").as_deref(), Some(key.as_str()));
    assert_eq!(field(&info, "lock_key"), Some(k.lock_key().to_string()));
    // Windows may report the size rounded up to whole pages.
    let size = num(&info, "size");
    assert!((1000..=65536).contains(&size), "{info}");
    let text = qshm(&["info", &key]).ok().out();
    assert!(text.contains(&format!("{size} bytes")), "{text}");
    assert!(text.contains(&k.to_string()), "{text}");
    // What does not fit is refused, and nothing is written.
    let last = (size - 1).to_string();
    qshm_with(&["write", &key, "--offset", &last], Some(b"xy")).fails(
        1,
        &format!("qshm: write {key}: standard input holds more than the 1 bytes that fit"),
    );
    let end = qshm(&["read", &key, "--offset", &last]).ok();
    assert_eq!(end.stdout, [0]);

    assert!(creator.stop(), "the creator ends cleanly");
    // Gone with its only holder.
    qshm(&["info", &key]).fails(1, &format!("qshm: info {key}: "));
    qshm(&["read", &key]).fails(1, &format!("qshm: read {key}: "));
}

#[test]
fn lock_holds_for_a_time_and_passes_a_command_status_through() {
    let _w = watchdog("lock_holds_for_a_time_and_passes_a_command_status_through");
    let key = tag();
    let k = native(&key);
    let _c = Cleanup(k.clone());
    let mut creator = hold(&key, "64", &[]);
    // Attached before the lock is taken (a System V attach takes the lock).
    let mut shm = SharedMemory::with_native_key(k.clone());
    shm.attach(AccessMode::ReadWrite).unwrap();

    let start = Instant::now();
    let run = qshm(&["lock", &key, "--for", "0.2"]).ok();
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(
        run.out().starts_with(&format!("locked {key} (pid ")),
        "{}",
        run.out()
    );

    // Held while it runs, free and intact (not taken over from a dead holder) afterwards.
    let mut holder = Bg::spawn(&["lock", &key, "--for", "1.5", "--json"]);
    let locked = holder.line();
    assert_eq!(
        field(&locked, "status").as_deref(),
        Some("locked"),
        "{locked}"
    );
    assert!(shm.try_lock().is_err(), "held by `qshm lock`");
    assert_eq!(holder.wait(), 0);
    let guard = shm.lock_timeout(TIMEOUT).unwrap();
    assert!(!guard.owner_died(), "given back, not abandoned");
    drop(guard);

    // A command runs under the lock and its status is qshm's.
    let run = qshm(&["lock", &key, "--", BIN, "key", "x"]).ok();
    assert!(run.out().starts_with("locked "), "{}", run.out());
    assert_eq!(
        qshm(&["lock", &key, "--", BIN, "info", "no-such-qshm-key"]).status,
        1
    );
    assert_eq!(qshm(&["lock", &key, "--", BIN, "frobnicate"]).status, 2);
    qshm(&["lock", &key, "--", "no-such-program-qshm-test"])
        .fails(127, &format!("qshm: lock {key}: cannot run"));
    assert!(!shm.try_lock().unwrap().owner_died(), "free again");

    shm.detach().unwrap();
    assert!(creator.stop());
}

#[test]
fn demo_verifies_its_result() {
    let _w = watchdog("demo_verifies_its_result");
    let json = qshm(&["demo", "--json", "--workers", "3", "--increments", "400"])
        .ok()
        .json();
    assert_eq!(num(&json, "counter"), 1200);
    assert_eq!(field(&json, "verified").as_deref(), Some("true"));
    assert_eq!(field(&json, "message_ok").as_deref(), Some("true"));
    assert_eq!(field(&json, "segment_removed").as_deref(), Some("true"));
    let out = qshm(&["demo", "--workers", "2", "--increments", "200"])
        .ok()
        .out();
    assert!(out.contains("verified: OK"), "{out}");
}

/// `list` and `remove` cannot work on Windows: a clear line and status 3, also with
/// `--json`; `clean` has nothing to do there, ever, and says so. On Unix they work.
#[test]
fn list_clean_and_remove_say_what_the_platform_allows() {
    let _w = watchdog("list_clean_and_remove_say_what_the_platform_allows");
    let key = tag();
    let _c = Cleanup(native(&key));
    let mut creator = hold(&key, "64", &[]);
    if cfg!(windows) {
        for json in [false, true] {
            let mut args = vec!["list"];
            args.extend(json.then_some("--json"));
            let fails = |run: Run, prefix: &str| match json {
                true => run.fails_json(3, prefix),
                false => run.fails(3, prefix),
            };
            let run = fails(
                qshm(&args),
                "qshm: list: Windows offers programs no supported way",
            );
            assert!(run.stdout.is_empty(), "{}", run.out());
            let mut args = vec!["remove", key.as_str()];
            args.extend(json.then_some("--json"));
            fails(
                qshm(&args),
                &format!("qshm: remove {key}: Windows destroys a segment and its lock"),
            );
        }
        let out = qshm(&["clean"]).ok().out();
        assert!(
            out.starts_with("nothing to clean: Windows destroys"),
            "{out}"
        );
        assert!(qshm(&["clean", "--json", "--dry-run"])
            .ok()
            .stdout
            .is_empty());
        qshm(&["remove", "--id", "5"]).fails(3, "qshm: remove --id 5: Windows destroys");
    } else {
        let list = qshm(&["list", "--json", "--match", &key]).ok().json();
        assert_eq!(num(&list, "size"), 64);
        let out = qshm(&["clean", "--dry-run", "--match", &key]).ok().out();
        assert_eq!(out.trim_end(), "nothing to clean", "in use: not a leftover");
        qshm(&["remove", &key]).fails(1, &format!("qshm: remove {key}: attached by 1"));
    }
    // Still there, whatever was asked.
    qshm(&["info", &key]).ok();
    assert!(creator.stop());
}

#[test]
fn every_verb_has_help_with_an_example() {
    let _w = watchdog("every_verb_has_help_with_an_example");
    for verb in [
        "key", "create", "read", "write", "lock", "info", "list", "remove", "clean", "demo",
    ] {
        let out = qshm(&[verb, "--help"]).ok().out();
        assert!(out.contains("Example"), "{verb}: {out}");
        assert!(out.contains("Usage: qshm"), "{verb}: {out}");
    }
    for verb in ["list", "remove", "clean", "info", "create", "lock"] {
        let out = qshm(&[verb, "--help"]).ok().out();
        assert!(
            out.contains("Windows"),
            "{verb} says what it does on Windows: {out}"
        );
    }
}
