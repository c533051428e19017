//! Drives a real Qt program, `tests/qt/peer.py` (PyQt6 or PyQt5), from
//! integration tests: one child process per [`QtPeer`], one command line in,
//! one answer line out. The protocol is documented at the top of peer.py.
//!
//! The Python interpreter comes from [`python()`]: `QSHM_PYTHON`, else the
//! `.venv` that `ci/setup-venv.sh` makes at the repository root.
//! The peer's stderr (Qt warnings, Python tracebacks) is collected and shown
//! in panic messages; set `QSHM_PEER_STDERR=1` to also echo it live.
//! Dropping a [`QtPeer`] closes its stdin so Qt's destructors run (nothing
//! left behind), and SIGKILLs it only if it has not exited 3 s later.
//!
//! Times: every answer carries the peer's `CLOCK_MONOTONIC` in nanoseconds
//! ([`Reply::t_ns`]) taken when the operation completed. On Linux
//! `std::time::Instant` reads the same clock, so [`Reply::t`] is that moment
//! as an `Instant`, comparable with `Instant::now()` taken in the test. The
//! conversion is exact when `Instant`'s `Debug` output shows the raw
//! `tv_sec`/`tv_nsec` (it does on Linux with current Rust, and spawn checks
//! it against the peer's clock); otherwise it falls back to a calibration by
//! ping whose error bound is [`QtPeer::clock_error`] (half the fastest of
//! five `sleep 0` round trips: 70–100 µs measured on a 2-core machine, and
//! over 200 pings no peer time fell outside its window by more than that).
//! Comparing peer times with peer times ([`Reply::t_ns`], [`QtPeer::now_ns`])
//! is always exact.
//!
//! Std only, no `unsafe`.

#![allow(dead_code, unreachable_pub)]

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long [`QtPeer::recv`] waits for an answer by default.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// How long dropping a peer waits for it to exit after closing its stdin
/// (so Qt's destructors run) before killing it.
const DROP_GRACE: Duration = Duration::from_secs(3);

/// At most this much of the peer's stderr is kept for panic messages.
const STDERR_KEEP: usize = 16 * 1024;

const NO_PYTHON: &str = "Qt interop tests need PyQt: run ci/setup-venv.sh (or the README's \
                         test command), or set QSHM_PYTHON";

/// Which PyQt the peer imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QtVersion {
    /// PyQt5 (Qt 5.15).
    Qt5,
    /// PyQt6 (Qt 6.x).
    Qt6,
}

impl QtVersion {
    /// Both versions, for tests that run against each.
    pub const ALL: [QtVersion; 2] = [QtVersion::Qt5, QtVersion::Qt6];

    /// peer.py's command-line argument: "5" or "6".
    pub fn arg(self) -> &'static str {
        match self {
            QtVersion::Qt5 => "5",
            QtVersion::Qt6 => "6",
        }
    }
}

impl fmt::Display for QtVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QtVersion::Qt5 => "Qt5",
            QtVersion::Qt6 => "Qt6",
        })
    }
}

/// Maps the peer's monotonic nanoseconds to `Instant`s.
#[derive(Debug, Clone, Copy)]
struct Clock {
    anchor: Instant,
    anchor_ns: u64,
    error: Duration,
}

impl Clock {
    fn instant(&self, ns: u64) -> Instant {
        if ns >= self.anchor_ns {
            self.anchor + Duration::from_nanos(ns - self.anchor_ns)
        } else {
            let back = Duration::from_nanos(self.anchor_ns - ns);
            self.anchor.checked_sub(back).unwrap_or(self.anchor)
        }
    }
}

/// The `CLOCK_MONOTONIC` nanoseconds of an `Instant`, read from its `Debug`
/// output (`Instant { tv_sec: S, tv_nsec: N }` on Linux). `None` if the
/// format is not recognised.
pub fn instant_ns(i: Instant) -> Option<u64> {
    let s = format!("{i:?}");
    let num = |name: &str| -> Option<u64> {
        let start = s.find(name)? + name.len();
        let digits: String = s[start..]
            .chars()
            .skip_while(|c| *c == ' ')
            .take_while(|c| c.is_ascii_digit())
            .collect();
        digits.parse().ok()
    };
    let sec = num("tv_sec:")?;
    let nsec = num("tv_nsec:")?;
    if nsec >= 1_000_000_000 {
        return None;
    }
    sec.checked_mul(1_000_000_000)?.checked_add(nsec)
}

/// One answer line of the peer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// `ok` (true) or `err` (false).
    pub ok: bool,
    /// When the operation completed, as an `Instant` (see the module docs
    /// for the error bound).
    pub t: Instant,
    /// When the operation completed, the peer's `CLOCK_MONOTONIC` in ns.
    pub t_ns: u64,
    /// The fields after `ok <t>` / `err <t>`, raw (hex stays hex). For `err`
    /// these are `[code, hex message]`.
    pub fields: Vec<String>,
    /// Qt's error code for `err` (-1 for a Python exception), 0 for `ok`.
    pub code: i32,
    /// The decoded error text for `err`, empty for `ok`.
    pub message: String,
    /// The whole line as received.
    pub line: String,
}

impl Reply {
    fn parse(line: &str, clock: &Clock) -> Result<Reply, String> {
        let mut words = line.split_ascii_whitespace();
        let ok = match words.next() {
            Some("ok") => true,
            Some("err") => false,
            _ => return Err(format!("answer is neither ok nor err: {line:?}")),
        };
        let t_ns: u64 = words
            .next()
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("answer has no time: {line:?}"))?;
        let fields: Vec<String> = words.map(str::to_owned).collect();
        let (code, message) = if ok {
            (0, String::new())
        } else {
            let code = fields
                .first()
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("err answer has no code: {line:?}"))?;
            let message = fields
                .get(1)
                .map(|m| String::from_utf8_lossy(&unhex(m)).into_owned())
                .unwrap_or_default();
            (code, message)
        };
        Ok(Reply {
            ok,
            t: clock.instant(t_ns),
            t_ns,
            fields,
            code,
            message,
            line: line.to_owned(),
        })
    }

    /// Panics (naming `what`, Qt's code and error text) unless the answer is `ok`.
    #[track_caller]
    pub fn expect_ok(self, what: &str) -> Reply {
        if !self.ok {
            panic!(
                "{what}: the Qt peer answered err, code {}: {:?} (line {:?})",
                self.code, self.message, self.line
            );
        }
        self
    }

    /// Panics unless the answer is `err`; returns it for checking `code`/`message`.
    #[track_caller]
    pub fn expect_err(self, what: &str) -> Reply {
        if self.ok {
            panic!(
                "{what}: expected an error from the Qt peer, got {:?}",
                self.line
            );
        }
        self
    }

    #[track_caller]
    fn field(&self, i: usize) -> &str {
        match self.fields.get(i) {
            Some(f) => f,
            None => panic!("the Qt peer's answer has no field {i}: {:?}", self.line),
        }
    }

    /// Field `i` (after `ok <t>`), hex-decoded as UTF-8 (`-` is "").
    #[track_caller]
    pub fn field_str(&self, i: usize) -> String {
        match String::from_utf8(self.field_bytes(i)) {
            Ok(s) => s,
            Err(e) => panic!("field {i} of {:?} is not UTF-8: {e}", self.line),
        }
    }

    /// Field `i` (after `ok <t>`), hex-decoded (`-` is empty).
    #[track_caller]
    pub fn field_bytes(&self, i: usize) -> Vec<u8> {
        unhex(self.field(i))
    }

    /// Field `i` (after `ok <t>`) as a decimal number.
    #[track_caller]
    pub fn field_u64(&self, i: usize) -> u64 {
        let f = self.field(i);
        match f.parse() {
            Ok(n) => n,
            Err(e) => panic!("field {i} of {:?} is not a number: {e}", self.line),
        }
    }
}

/// Lowercase hex of `bytes`, `-` for empty: the peer's encoding of strings
/// and bytes. For text use `hex(s.as_bytes())`.
pub fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_owned();
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Inverse of [`hex`] (`-` is empty). Panics on malformed input.
#[track_caller]
pub fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    assert!(s.len() % 2 == 0, "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .unwrap_or_else(|| panic!("bad hex {s:?}"))
        })
        .collect()
}

/// The package directory and its parent (the workspace root, for the cli
/// package's tests).
fn roots() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![dir.to_path_buf()];
    if let Some(parent) = dir.parent() {
        v.push(parent.to_path_buf());
    }
    v
}

/// The Python with PyQt5 and PyQt6: `$QSHM_PYTHON` if set, else `.venv/bin/python`
/// in the package directory or its parent. Panics with how to get one.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("QSHM_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    roots()
        .into_iter()
        .map(|r| r.join(".venv/bin/python"))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{NO_PYTHON}"))
}

/// The Python that runs `version`'s peer. On Windows (under Wine) each PyQt has its own
/// embeddable CPython: `$QSHM_WIN_PYTHON_QT6` / `$QSHM_WIN_PYTHON_QT5`, which
/// `target/wine/env.sh` (written by `ci/wine.sh`) sets; elsewhere [`python()`].
pub fn python_for(version: QtVersion) -> PathBuf {
    if cfg!(windows) {
        let var = match version {
            QtVersion::Qt5 => "QSHM_WIN_PYTHON_QT5",
            QtVersion::Qt6 => "QSHM_WIN_PYTHON_QT6",
        };
        if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        panic!("Qt for Windows tests need {var}: run ci/wine.sh and source target/wine/env.sh");
    }
    python()
}

/// tests/qt/peer.py in the package directory or its parent.
pub fn peer_script() -> PathBuf {
    let candidates: Vec<PathBuf> = roots()
        .into_iter()
        .map(|r| r.join("tests/qt/peer.py"))
        .collect();
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => p.clone(),
        None => panic!("Qt peer script not found; looked at {candidates:?}"),
    }
}

/// A running `peer.py`: a real Qt program with one QSharedMemory and one
/// QSystemSemaphore, driven line by line.
///
/// Dropping it closes its stdin so it exits normally (Qt's destructors run,
/// which detach and may remove segments and semaphores); if it has not exited
/// within a few seconds (e.g. blocked in `acquire`) it is SIGKILLed. Use
/// [`QtPeer::kill`] or the `crash` command for an abrupt death.
#[derive(Debug)]
pub struct QtPeer {
    version: QtVersion,
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    clock: Clock,
    qt_version: String,
    timeout: Duration,
    last: String,
    status: Option<ExitStatus>,
}

impl QtPeer {
    /// Starts `peer.py` with PyQt5 or PyQt6, checks that Qt loads and
    /// calibrates the clock. Panics with the peer's stderr if it cannot start.
    pub fn spawn(version: QtVersion) -> QtPeer {
        let py = python_for(version);
        let script = peer_script();
        let mut child = Command::new(&py)
            .arg(&script)
            .arg(version.arg())
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} {}: {e}. {NO_PYTHON}",
                    py.display(),
                    script.display()
                )
            });
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");

        let (tx, lines) = mpsc::channel();
        thread::Builder::new()
            .name(format!("qt-peer-{pid}-stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    match line {
                        Ok(l) => {
                            if tx.send(l).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            })
            .expect("spawn stdout reader");

        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let echo = std::env::var_os("QSHM_PEER_STDERR").is_some();
        thread::Builder::new()
            .name(format!("qt-peer-{pid}-stderr"))
            .spawn(move || {
                for line in BufReader::new(stderr_pipe).lines() {
                    let Ok(l) = line else { break };
                    if echo {
                        eprintln!("[{version} peer {pid}] {l}");
                    }
                    let mut buf = sink.lock().unwrap_or_else(|e| e.into_inner());
                    buf.push_str(&l);
                    buf.push('\n');
                    if buf.len() > 2 * STDERR_KEEP {
                        let mut cut = buf.len() - STDERR_KEEP;
                        while !buf.is_char_boundary(cut) {
                            cut += 1;
                        }
                        buf.drain(..cut);
                    }
                }
            })
            .expect("spawn stderr reader");

        let mut peer = QtPeer {
            version,
            child,
            pid,
            stdin,
            lines,
            stderr,
            clock: Clock {
                anchor: Instant::now(),
                anchor_ns: 0,
                error: Duration::MAX,
            },
            qt_version: String::new(),
            timeout: TIMEOUT,
            last: String::new(),
            status: None,
        };
        // The first answer shows whether Python and PyQt work at all.
        peer.send("version");
        let v = match peer.next_line() {
            Ok(line) => Reply::parse(&line, &peer.clock)
                .unwrap_or_else(|e| panic!("{version} peer: {e}"))
                .expect_ok("version"),
            Err(why) => panic!(
                "the {version} peer ({} {}) did not start: {why}\n{NO_PYTHON}",
                py.display(),
                script.display()
            ),
        };
        peer.qt_version = v.fields.first().cloned().unwrap_or_default();
        let want = match version {
            QtVersion::Qt5 => "5.",
            QtVersion::Qt6 => "6.",
        };
        assert!(
            peer.qt_version.starts_with(want),
            "{version} peer reports Qt {:?}",
            peer.qt_version
        );
        peer.calibrate();
        peer
    }

    /// Sets up `clock`: exact via `instant_ns` when it agrees with the
    /// peer's clock, else from the fastest of a few pings.
    fn calibrate(&mut self) {
        let mut best: Option<(Duration, Instant, Instant, u64)> = None;
        for _ in 0..5 {
            let before = Instant::now();
            let ns = self.cmd("sleep 0").expect_ok("clock ping").t_ns;
            let after = Instant::now();
            let rtt = after - before;
            let better = match best {
                Some((fastest, ..)) => rtt < fastest,
                None => true,
            };
            if better {
                best = Some((rtt, before, after, ns));
            }
        }
        let (rtt, before, after, ns) = best.expect("at least one ping");
        if let (Some(b), Some(a)) = (instant_ns(before), instant_ns(after)) {
            if b <= ns && ns <= a {
                self.clock = Clock {
                    anchor: before,
                    anchor_ns: b,
                    error: Duration::ZERO,
                };
                return;
            }
        }
        self.clock = Clock {
            anchor: before + rtt / 2,
            anchor_ns: ns,
            error: rtt / 2,
        };
    }

    /// Sends one command line and returns its one answer (see [`QtPeer::recv`]).
    #[track_caller]
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(line);
        self.recv()
    }

    /// Sends one command line without waiting for the answer (for
    /// `lockhold`, or a blocking `lock`/`acquire` to answer later).
    #[track_caller]
    pub fn send(&mut self, line: &str) {
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "a peer command is one line: {line:?}"
        );
        self.last = line.to_owned();
        let written = match self.stdin.as_mut() {
            Some(stdin) => stdin
                .write_all(format!("{line}\n").as_bytes())
                .and_then(|()| stdin.flush()),
            None => Err(std::io::Error::other("stdin already closed")),
        };
        if let Err(e) = written {
            let why = self.death();
            panic!(
                "cannot send {line:?} to the {} peer (pid {}): {e}; {why}",
                self.version, self.pid
            );
        }
    }

    /// The next answer line. Panics if the peer died or said nothing within
    /// the timeout (20 s unless [`QtPeer::set_timeout`]).
    #[track_caller]
    pub fn recv(&mut self) -> Reply {
        let line = match self.next_line() {
            Ok(line) => line,
            Err(why) => panic!("{why}"),
        };
        match Reply::parse(&line, &self.clock) {
            Ok(r) => r,
            Err(e) => panic!(
                "{} peer (pid {}), after {:?}: {e}; stderr:\n{}",
                self.version,
                self.pid,
                self.last,
                self.stderr()
            ),
        }
    }

    /// The next stdout line, or why there is none.
    fn next_line(&mut self) -> Result<String, String> {
        match self.lines.recv_timeout(self.timeout) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => Err(format!(
                "{} peer (pid {}) gave no answer within {:?} after {:?}; stderr:\n{}",
                self.version,
                self.pid,
                self.timeout,
                self.last,
                self.stderr()
            )),
            Err(RecvTimeoutError::Disconnected) => {
                let why = self.death();
                Err(format!(
                    "{} peer (pid {}) gave no answer to {:?}: {why}",
                    self.version, self.pid, self.last
                ))
            }
        }
    }

    /// Why the peer is gone: its exit status (waited for briefly) and stderr.
    fn death(&mut self) -> String {
        let status = match self.status {
            Some(s) => Some(s),
            None => self.wait_for(Duration::from_secs(5)),
        };
        let status = match status {
            Some(s) => format!("it exited with {s}"),
            None => "its stdout is closed but it has not exited".to_owned(),
        };
        format!("{status}; stderr:\n{}", self.stderr())
    }

    /// Waits up to `limit` for the child to exit; records the status.
    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.status.is_some() {
            return self.status;
        }
        let end = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(s)) => {
                    self.status = Some(s);
                    return Some(s);
                }
                Ok(None) if Instant::now() < end => thread::sleep(Duration::from_millis(5)),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Waits (up to the timeout) for the peer to exit, e.g. after `exit`,
    /// `crash` or [`QtPeer::close`]; returns its status.
    #[track_caller]
    pub fn wait(&mut self) -> ExitStatus {
        match self.wait_for(self.timeout) {
            Some(s) => s,
            None => panic!(
                "{} peer (pid {}) did not exit within {:?}; stderr:\n{}",
                self.version,
                self.pid,
                self.timeout,
                self.stderr()
            ),
        }
    }

    /// Closes the peer's stdin: it destroys its objects (Qt's destructors
    /// run) and exits. Waits for that and returns the exit status.
    #[track_caller]
    pub fn close(&mut self) -> ExitStatus {
        self.stdin = None;
        self.wait()
    }

    /// SIGKILLs the peer (no Qt destructors run) and reaps it. No-op if it
    /// has already exited.
    pub fn kill(&mut self) {
        if self.wait_for(Duration::ZERO).is_some() {
            return;
        }
        let _ = self.child.kill();
        if let Ok(s) = self.child.wait() {
            self.status = Some(s);
        }
        self.stdin = None;
    }

    /// The peer's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The PyQt major version this peer runs.
    pub fn version(&self) -> QtVersion {
        self.version
    }

    /// The Qt runtime version the peer reported, e.g. "6.11.2".
    pub fn qt_version(&self) -> &str {
        &self.qt_version
    }

    /// The peer's `CLOCK_MONOTONIC` now (a `sleep 0` round trip), in ns.
    #[track_caller]
    pub fn now_ns(&mut self) -> u64 {
        self.cmd("sleep 0").expect_ok("sleep 0").t_ns
    }

    /// The peer time `ns` as an `Instant`.
    pub fn instant(&self, ns: u64) -> Instant {
        self.clock.instant(ns)
    }

    /// Bound on the error of [`Reply::t`]: zero when exact, else half the
    /// calibration round trip.
    pub fn clock_error(&self) -> Duration {
        self.clock.error
    }

    /// Changes how long [`QtPeer::recv`] and [`QtPeer::wait`] wait.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// What the peer wrote to stderr so far (the last 16–32 KiB): Qt's
    /// warnings and Python tracebacks.
    pub fn stderr(&self) -> String {
        // Give the reader thread a moment to collect the last lines.
        thread::sleep(Duration::from_millis(20));
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for QtPeer {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        // EOF lets the peer run Qt's destructors (detach, remove what it
        // created) so an ended or failed test leaves nothing behind.
        self.stdin = None;
        if self.wait_for(DROP_GRACE).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
