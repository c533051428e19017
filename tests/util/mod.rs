//! Helpers shared by the integration tests: unique keys, unconditional cleanup, a watchdog
//! that turns a deadlock into a failure, and child processes (this very test binary run
//! again in a child role).
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

pub mod qt;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qshm::{NativeKey, SemaphoreMode, SharedMemory, SystemSemaphore};

/// Wrappers for [`ChildProc::spawn_under`] that put a child where containers put their
/// processes (they need root).
///
/// A new PID namespace with its own /proc (a container sharing /dev/shm or the IPC
/// namespace), the test binary its pid 1; killed with the wrapper (`--kill-child`), so that
/// `kill9` reaches it.
pub const OTHER_PID_NAMESPACE: &[&str] = &[
    "unshare",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
    "--",
];

/// A new time namespace, whose boot-time clock (and so every process start time read from
/// /proc) is 100 000 s ahead.
pub const OTHER_TIME_NAMESPACE: &[&str] = &[
    "unshare",
    "--time",
    "--boottime",
    "100000",
    "--monotonic",
    "100000",
    "--fork",
    "--kill-child",
    "--",
];

/// As user `nobody`, in a private mount namespace whose /proc is mounted `hidepid=2`: other
/// users' processes are invisible there.
pub const BEHIND_HIDEPID_AS_NOBODY: &[&str] = &[
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    "mount -t proc -o hidepid=2 proc /proc && \
     exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- \"$0\" \"$@\"",
];

/// A key no other test, run or machine user shares: the test's own name, the process id,
/// the time and a counter.
pub fn unique_key(name: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "qshmtest-{name}-{}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

static REGISTERED_KEYS: Mutex<Vec<NativeKey>> = Mutex::new(Vec::new());
static REGISTERED_SEMS: Mutex<Vec<NativeKey>> = Mutex::new(Vec::new());
static REGISTERED_PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Removes every IPC object of a key when dropped, whether the test passed or failed.
pub struct Cleanup {
    keys: Vec<NativeKey>,
    sems: Vec<NativeKey>,
}

impl Cleanup {
    pub fn new() -> Cleanup {
        Cleanup {
            keys: Vec::new(),
            sems: Vec::new(),
        }
    }

    /// Cleans a segment key (segment, key file, lock semaphore).
    pub fn segment(mut self, key: &NativeKey) -> Cleanup {
        self.keys.push(key.clone());
        REGISTERED_KEYS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key.clone());
        self
    }

    /// Cleans a Qt segment key on System V (the Linux default).
    pub fn qt_key(self, key: &str) -> Cleanup {
        self.segment(&NativeKey::legacy(key, qshm::KeyType::SystemV))
    }

    /// Cleans a semaphore key.
    pub fn semaphore(mut self, key: &NativeKey) -> Cleanup {
        self.sems.push(key.clone());
        REGISTERED_SEMS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key.clone());
        self
    }
}

fn remove_segment(key: &NativeKey) {
    let _ = SharedMemory::force_remove(key);
}

fn remove_semaphore(key: &NativeKey) {
    if let Ok(mut sem) = SystemSemaphore::with_native_key(key.clone(), 0, SemaphoreMode::Open) {
        sem.set_remove_on_drop(true);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for key in &self.keys {
            remove_segment(key);
        }
        for key in &self.sems {
            remove_semaphore(key);
        }
    }
}

/// Fails the whole test binary (after cleaning up) if not dropped within `limit`: a
/// deadlock becomes a failure, not a hang.
pub struct Watchdog {
    done: mpsc::Sender<()>,
}

impl Watchdog {
    pub fn new(name: &'static str, limit: Duration) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                eprintln!(
                    "WATCHDOG: test `{name}` still running after {limit:?}: deadlock? aborting"
                );
                emergency_cleanup();
                std::process::exit(99);
            }
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.done.send(());
    }
}

fn emergency_cleanup() {
    for pid in REGISTERED_PIDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        // Most have exited long ago: say nothing about those.
        let (program, args) = if cfg!(windows) {
            ("taskkill", ["/F", "/PID"])
        } else {
            ("kill", ["-9", "--"])
        };
        let _ = Command::new(program)
            .args(args)
            .arg(pid.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    for key in REGISTERED_KEYS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        remove_segment(key);
    }
    for key in REGISTERED_SEMS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        remove_semaphore(key);
    }
}

/// The environment variable that tells a re-run test binary which role to play.
pub const CHILD_ENV: &str = "QSHM_TEST_CHILD";

/// A child process: this test binary run again with `CHILD_ENV` set, so that the test
/// named `child_entry` plays `role`. Killed (SIGKILL) when dropped if still running.
pub struct ChildProc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

/// Spawning a process forks this one, and until the child execs it maps every segment this
/// process maps. Natively that costs nothing (`posix_spawn` shares the address space), but
/// under qemu-user every fork is a real one, so a sibling test's spawn can keep a segment
/// mapped for a few milliseconds, and a last detach elsewhere rightly keeps it. Tests that
/// check that nothing is left behind after a cross-process detach hold [`no_spawns`] for
/// the round; every spawn of the tests goes through [`spawning`].
static SPAWNS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// When the last [`spawning`] returned. Under qemu-user a spawn can return before its
/// copy has exec'd: glibc's `posix_spawn` relies on `CLONE_VFORK` to wait for the exec,
/// and qemu-user runs that clone as a plain fork, which the parent does not wait for
/// (`sysv`'s and `mapped`'s "nothing left" tests failed so in CI, on aarch64 too, after
/// [`no_spawns`] was already held).
static LAST_SPAWN: Mutex<Option<Instant>> = Mutex::new(None);

/// How long after a spawn returned its copy may still hold this process's descriptors
/// under qemu-user: a generous bound on the emulated child's way from fork to `execve`.
const SPAWN_SETTLES: Duration = Duration::from_millis(250);

/// Runs `spawn` (a `Command::spawn`, `status` or `output`) while no test holds
/// [`no_spawns`].
pub fn spawning<T>(spawn: impl FnOnce() -> T) -> T {
    let _spawning = SPAWNS.read().unwrap_or_else(|e| e.into_inner());
    let result = spawn();
    *LAST_SPAWN.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    result
}

/// Keeps the other tests of this binary from spawning (forking) until dropped, once the
/// copies of earlier spawns have surely exec'd ([`SPAWN_SETTLES`] after the last).
pub fn no_spawns() -> std::sync::RwLockWriteGuard<'static, ()> {
    let quiet = SPAWNS.write().unwrap_or_else(|e| e.into_inner());
    let last = *LAST_SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(settled) = last.map(|t| t + SPAWN_SETTLES) {
        std::thread::sleep(settled.saturating_duration_since(Instant::now()));
    }
    quiet
}

impl ChildProc {
    pub fn spawn(role: &str, args: &[&str]) -> ChildProc {
        ChildProc::spawn_under(&[], role, args)
    }

    /// As [`ChildProc::spawn`], run through a wrapper command such as
    /// `setpriv --reuid=nobody …` or `unshare --ipc …` (`prefix` is its argv before the
    /// test binary).
    pub fn spawn_under(prefix: &[&str], role: &str, args: &[&str]) -> ChildProc {
        ChildProc::start(prefix, role, args, Command::spawn)
    }

    /// As [`ChildProc::spawn`], letting `configure` adjust the command first (to pass a
    /// descriptor to the child, say).
    pub fn spawn_configured(
        role: &str,
        args: &[&str],
        configure: impl FnOnce(&mut Command),
    ) -> ChildProc {
        ChildProc::start(&[], role, args, |c| {
            configure(c);
            c.spawn()
        })
    }

    /// As [`ChildProc::spawn`], started by `spawn` (which may configure the command first,
    /// e.g. `MappedSegment::spawn_child`).
    pub fn spawn_with(
        role: &str,
        args: &[&str],
        spawn: impl FnOnce(&mut Command) -> std::io::Result<Child>,
    ) -> ChildProc {
        ChildProc::start(&[], role, args, spawn)
    }

    fn start(
        prefix: &[&str],
        role: &str,
        args: &[&str],
        spawn: impl FnOnce(&mut Command) -> std::io::Result<Child>,
    ) -> ChildProc {
        let exe = std::env::current_exe().expect("test binary path");
        let spec = std::iter::once(role)
            .chain(args.iter().copied())
            .collect::<Vec<_>>()
            .join("\u{1f}");
        let mut command = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        command
            .args([
                "child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(CHILD_ENV, spec)
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = spawning(|| spawn(&mut command)).expect("spawn child test process");
        REGISTERED_PIDS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child.id());
        let stdout: ChildStdout = child.stdout.take().expect("child stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(msg) = line.strip_prefix("@@ ") {
                    if tx.send(msg.to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        ChildProc {
            child,
            stdin,
            lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next `@@ ` line the child prints; panics after `timeout`.
    pub fn expect_line(&self, timeout: Duration) -> String {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => line,
            Err(e) => panic!("child {} said nothing within {timeout:?}: {e}", self.pid()),
        }
    }

    /// Writes a line to the child's standard input.
    pub fn send(&mut self, line: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{line}");
            let _ = stdin.flush();
        }
    }

    /// Closes the child's standard input (children waiting for EOF then finish).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the child to exit, at most `timeout`; panics if it does not.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!("child {} did not exit within {timeout:?}", self.pid());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// True while the child is still running.
    pub fn expect_no_exit(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, reap, and wait (at most 10 s) until every process holding the child's
    /// standard output has exited: through a wrapper (`unshare --kill-child`) the process
    /// that matters dies a moment after the one killed.
    pub fn kill9_and_await_exit(&mut self) {
        self.kill9();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "child {}: its output stayed open 10 s after SIGKILL",
                        self.pid()
                    )
                }
            }
        }
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// In a child process: the role and its arguments; `None` in the parent test run.
pub fn child_role() -> Option<Vec<String>> {
    let spec = std::env::var(CHILD_ENV).ok()?;
    // Exit when the parent goes away (we are re-parented), so that a failed run leaves
    // nothing. The parent is the test process, or the wrapper it started us through (one
    // that forks, as `unshare --fork`, is our parent; as pid 1 of a new PID namespace we
    // see it as 0, and `--kill-child` ends us with it).
    watch_parent();
    Some(spec.split('\u{1f}').map(str::to_owned).collect())
}

/// Exits (98) when the parent goes away (we are re-parented), so that a failed run leaves
/// nothing. The parent is the test process, or the wrapper it started us through (one that
/// forks, as `unshare --fork`, is our parent; as pid 1 of a new PID namespace we see it as
/// 0, and `--kill-child` ends us with it).
#[cfg(unix)]
fn watch_parent() {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || loop {
        if std::os::unix::process::parent_id() != parent {
            std::process::exit(98);
        }
        std::thread::sleep(Duration::from_millis(100));
    });
}

/// Exits (98) when the test process that started us ([`PARENT_ENV`]) ends.
#[cfg(windows)]
fn watch_parent() {
    use windows_sys::Win32::System::Threading::{
        OpenProcess, WaitForSingleObject, INFINITE, PROCESS_SYNCHRONIZE,
    };
    let Some(pid) = std::env::var(PARENT_ENV).ok().and_then(|p| p.parse().ok()) else {
        return;
    };
    // SAFETY: opens a handle to a process by id, for waiting only.
    let parent = unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, pid) } as usize;
    if parent == 0 {
        std::process::exit(98); // gone already
    }
    std::thread::spawn(move || {
        // SAFETY: waits on the handle opened above, which is never closed.
        unsafe { WaitForSingleObject(parent as _, INFINITE) };
        std::process::exit(98);
    });
}

/// The environment variable that tells a child the parent's process id (Windows, where a
/// process has no parent to ask about).
pub const PARENT_ENV: &str = "QSHM_TEST_PARENT";

/// Prints a line the parent's `expect_line` reads.
pub fn say(msg: &str) {
    println!("@@ {msg}");
    let _ = std::io::stdout().flush();
}

/// Reads one line from standard input (blocks; `None` at EOF).
pub fn read_stdin_line() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end().to_owned()),
    }
}

/// Whether `path` exists (a key file, say).
pub fn exists(path: &str) -> bool {
    std::path::Path::new(path).exists()
}

/// A u64 stored little-endian at the start of `bytes`.
pub fn read_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// Stores a u64 little-endian at the start of `bytes`.
pub fn write_u64(bytes: &mut [u8], v: u64) {
    bytes[..8].copy_from_slice(&v.to_le_bytes());
}

// ---- Files and directories (tests/mapped.rs) ------------------------------------------

static REGISTERED_PATHS: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

fn remove_path(path: &std::path::Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// Removes a file or directory tree when dropped, whether the test passed or failed (and
/// from a [`file_watchdog`] that fires).
pub struct PathCleanup {
    paths: Vec<std::path::PathBuf>,
}

impl PathCleanup {
    pub fn new() -> PathCleanup {
        PathCleanup { paths: Vec::new() }
    }

    /// Removes `path` (a file, or a directory with everything in it) at the end.
    pub fn path(mut self, path: impl Into<std::path::PathBuf>) -> PathCleanup {
        let path = path.into();
        self.paths.push(path.clone());
        REGISTERED_PATHS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path);
        self
    }
}

impl Drop for PathCleanup {
    fn drop(&mut self) {
        for p in &self.paths {
            remove_path(p);
        }
    }
}

/// A unique segment file name in `qshm::mapped`'s default directory, removed at the end of
/// the test (with its [`PathCleanup`]).
pub fn unique_file(name: &str) -> (std::path::PathBuf, PathCleanup) {
    let path = qshm::mapped::FileOptions::new().resolve(unique_key(name));
    let cleanup = PathCleanup::new().path(&path);
    (path, cleanup)
}

/// Overwrites the start of `seg`'s data area with `bytes`, under its lock (a peer that
/// writes garbage into a control block).
pub fn write_data(seg: &qshm::mapped::MappedSegment, bytes: &[u8]) {
    let mut guard = seg.lock().unwrap();
    guard.as_mut_slice().unwrap()[..bytes.len()].copy_from_slice(bytes);
}

/// Another attachment of the memfd `seg`, through a duplicate of its descriptor.
#[cfg(qshm_linux)]
pub fn another_attachment(
    seg: &qshm::mapped::MappedSegment,
) -> qshm::Result<qshm::mapped::MappedSegment> {
    let fd = rustix::io::dup(std::os::fd::AsFd::as_fd(seg)).unwrap();
    qshm::mapped::MappedSegment::from_fd(fd, &qshm::mapped::ReceiveOptions::new())
}

/// Starts the C program `exe` (from [`compile_c`]) with `args`, its standard output
/// discarded unless `configure` says otherwise.
#[cfg(unix)]
pub fn spawn_c(
    exe: &std::path::Path,
    args: &[&str],
    configure: impl FnOnce(&mut Command),
) -> Child {
    let mut cmd = Command::new(exe);
    cmd.args(args).stdout(Stdio::null());
    configure(&mut cmd);
    spawning(|| cmd.spawn()).unwrap()
}

/// A [`Watchdog`] that also removes the paths registered with [`PathCleanup`] (and kills
/// the children) before failing the test binary.
pub fn file_watchdog(name: &'static str, limit: Duration) -> Watchdog {
    let (done, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("WATCHDOG: test `{name}` still running after {limit:?}: deadlock? aborting");
            emergency_cleanup();
            for p in REGISTERED_PATHS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
            {
                remove_path(p);
            }
            std::process::exit(99);
        }
    });
    Watchdog { done }
}

/// The OS objects of the segment `key` and of its lock that exist now: the System V key
/// files, or the POSIX `/dev/shm` entries. Empty once everything is cleaned up.
pub fn objects_left(key: &NativeKey) -> Vec<String> {
    if key.key_type() == qshm::KeyType::Windows {
        // Windows destroys both with their last handle: the segment is left when one can
        // still attach to it.
        let mut probe = SharedMemory::with_native_key(key.clone());
        return match probe.attach(qshm::AccessMode::ReadOnly) {
            Ok(()) => vec![key.native_key().to_owned()],
            Err(_) => Vec::new(),
        };
    }
    let lock = key.lock_key();
    let paths = if key.key_type().is_system_v() {
        vec![key.native_key().to_owned(), lock.native_key().to_owned()]
    } else {
        vec![
            format!("/dev/shm{}", key.native_key()),
            format!("/dev/shm/sem.{}", lock.native_key().trim_start_matches('/')),
        ]
    };
    paths.into_iter().filter(|p| exists(p)).collect()
}

/// Compiles `tests/c/<name>.c` against `include/qshm.h` (`$CC`, else `cc`, with -Wall
/// -Wextra -Werror) into a new temporary directory, removed with the [`PathCleanup`]
/// returned beside the program's path; `None`, said on stderr, where there is no C compiler.
#[cfg(unix)]
pub fn compile_c(name: &str) -> Option<(std::path::PathBuf, PathCleanup)> {
    if cfg!(qshm_portable) {
        // `include/qshm.h` implements Linux's protocol (flock, open-file-description locks,
        // /proc, futex); segments of the portable mode use classic record locks, and
        // qshm_check refuses them (tests/portable.rs checks that refusal).
        eprintln!("SKIPPED: a C peer speaks Linux's protocol, not the portable mode's");
        return None;
    }
    compile_c_anyway(name)
}

/// [`compile_c`] in any mode.
#[allow(dead_code)] // the portable mode's suite uses it
pub fn compile_c_anyway(name: &str) -> Option<(std::path::PathBuf, PathCleanup)> {
    let dir = std::env::temp_dir().join(unique_key(&format!("c-{name}")));
    let cleanup = PathCleanup::new().path(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.join(name);
    let source = root.join("tests/c").join(format!("{name}.c"));
    let status = spawning(|| {
        Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-I"])
            .arg(root.join("include"))
            .arg(&source)
            .arg("-o")
            .arg(&exe)
            .status()
    });
    match status {
        Ok(s) if s.success() => Some((exe, cleanup)),
        Ok(s) => panic!("compiling {} failed: {s}", source.display()),
        Err(e) => {
            eprintln!("SKIPPED: no C compiler ({e})");
            None
        }
    }
}
