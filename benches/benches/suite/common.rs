//! What every group shares: unique names, child processes, a watchdog.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The environment variable that makes this executable a benchmark's second process.
pub const CHILD_ENV: &str = "QSHM_BENCH_CHILD";

/// A name no other run or benchmark uses: `qshm-bench-<pid>-<what>-<n>`.
pub fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "qshm-bench-{}-{what}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// glibc's `sem_open(name, O_CREAT|O_EXCL, 0600, 1)`: a new named semaphore, as Qt's POSIX
/// lock makes it. Panics if it cannot.
pub fn sem_create(name: &std::ffi::CStr) -> *mut libc::sem_t {
    // SAFETY: a valid name; O_CREAT|O_EXCL with mode and initial value as varargs.
    let sem = unsafe {
        libc::sem_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL,
            0o600 as libc::c_uint,
            1 as libc::c_uint,
        )
    };
    assert_ne!(sem, libc::SEM_FAILED, "sem_open");
    sem
}

/// The role this process was started for, if it is a child.
pub fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Makes a child die with its parent (so that a killed benchmark leaves no busy process),
/// and arms its watchdog.
pub fn become_child() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes only this process.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    // The parent may have died before the line above: then we were re-parented.
    if std::os::unix::process::parent_id() == 1 {
        std::process::exit(1);
    }
    watchdog(Duration::from_secs(600));
}

/// Kills this process after `limit`, so that a deadlocked benchmark fails instead of hanging.
pub fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("benchmark watchdog: no progress in {limit:?}, aborting");
        std::process::abort();
    });
}

/// A second process: this executable with `QSHM_BENCH_CHILD=role`. Killed and reaped on
/// drop, so a failing benchmark leaves no process behind.
pub struct ChildProc(pub Child);

impl ChildProc {
    pub fn spawn(role: &str, configure: impl FnOnce(&mut Command)) -> ChildProc {
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.env(CHILD_ENV, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        configure(&mut cmd);
        ChildProc(cmd.spawn().expect("spawn a benchmark child"))
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Initialises a process-shared, robust `pthread_mutex_t` (glibc's robust mutex, a baseline
/// of several groups) at `m`.
///
/// # Safety
///
/// `m` must be valid for writes of a `pthread_mutex_t`, aligned, and not in use.
pub unsafe fn init_robust_pshared_mutex(m: *mut libc::pthread_mutex_t) {
    // SAFETY: the attribute object is initialised before use and destroyed after; `m` is
    // valid and unused (the caller's contract).
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        assert_eq!(libc::pthread_mutexattr_init(&mut attr), 0);
        assert_eq!(
            libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED),
            0
        );
        assert_eq!(
            libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST),
            0
        );
        assert_eq!(libc::pthread_mutex_init(m, &attr), 0);
        libc::pthread_mutexattr_destroy(&mut attr);
    }
}
