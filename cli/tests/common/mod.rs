//! What the newer CLI test files share: unique names, runs of `qshm` under a deadline,
//! background runs killed on drop, a watchdog, and clean-up guards.
//!
//! Every child is waited for with a deadline (killed past it); every test holds a
//! [`Watchdog`]; every object a test makes is removed by a guard's `Drop`, pass or fail.

#![allow(dead_code, unreachable_pub)] // each test file uses a part

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_qshm");

/// How long one `qshm` run may take before it is killed and the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Letters only, unique to this process and call (pid + counter): Qt keeps the ASCII
/// letters of a key in its native name, so `--match <tag>` finds exactly this test's objects.
pub fn tag() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u64;
    let mut v = (u64::from(std::process::id()) << 8) | n;
    let mut s = String::from("qcliz");
    for _ in 0..10 {
        s.push(char::from(b'a' + (v % 26) as u8));
        v /= 26;
    }
    s
}

/// A finished `qshm` run.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.status, 0, "qshm failed: {self:?} / {}", self.out());
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn fails(self, status: i32, contains: &str) -> Run {
        assert_eq!(self.status, status, "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(
            self.stderr.contains(contains),
            "stderr should contain {contains:?}: {:?}",
            self.stderr
        );
        self
    }
}

pub fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args);
    c
}

/// Runs `c` to its end, killing it past [`RUN_LIMIT`] (then the test fails).
#[track_caller]
pub fn finish(mut c: Command) -> Run {
    let start = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run qshm");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if start.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{c:?} still running after {RUN_LIMIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    Run {
        status: status.code().unwrap_or(-1),
        stdout: o.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&e.join().unwrap_or_default()).into_owned(),
        took,
    }
}

#[track_caller]
pub fn qshm(args: &[&str]) -> Run {
    finish(command(args))
}

/// A process in the background whose stdout lines are read as they come; killed and reaped
/// when dropped.
pub struct Bg {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Bg {
    pub fn spawn(mut c: Command) -> Bg {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
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
    pub fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{} printed nothing: {e}", self.child.id()))
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Aborts the test binary when a test runs longer than its limit (a hang is a failure, not
/// a stuck suite). Dropping it disarms it.
pub struct Watchdog(mpsc::Sender<()>);

impl Watchdog {
    pub fn new(name: &'static str) -> Watchdog {
        Watchdog::with_limit(name, Duration::from_secs(120))
    }

    /// A watchdog with its own limit.
    pub fn with_limit(name: &'static str, limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!("WATCHDOG: `{name}` still running after {limit:?}; aborting");
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

/// Removes its files and directories, and every object of its keys, when dropped.
#[derive(Default)]
pub struct Cleanup {
    pub files: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
    pub keys: Vec<qshm::NativeKey>,
}

impl Cleanup {
    pub fn new() -> Cleanup {
        Cleanup::default()
    }
    pub fn key(mut self, key: qshm::NativeKey) -> Cleanup {
        self.keys.push(key);
        self
    }
    pub fn file(mut self, path: impl Into<PathBuf>) -> Cleanup {
        self.files.push(path.into());
        self
    }
    pub fn dir(mut self, path: impl Into<PathBuf>) -> Cleanup {
        self.dirs.push(path.into());
        self
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for key in &self.keys {
            #[cfg(unix)]
            if let Ok(info) = qshm::inspect::info(key) {
                let _ = qshm::inspect::remove(&info, true);
            }
            let _ = qshm::SharedMemory::force_remove(key);
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
