//! Windows (run under Wine): Ctrl-C ends `qshm lock`, `create` and `demo` the way SIGINT does
//! on Unix. `lock` gives the lock back before it exits (a holder that died would take a unit
//! of Qt's lock semaphore with it, and Qt processes would wait for it for ever); `create`
//! exits with 0; `demo` stops its workers and exits with 130; no segment is left.
//!
//! Ctrl-C goes to every process of a console, so each case runs in a helper process (this
//! test binary again) with a console of its own: it starts `qshm`, sends Ctrl-C to its
//! console once `qshm` is ready, and exits with `qshm`'s status (or a code of 200 and above
//! that says what went wrong). It prints nothing: its standard handles may belong to its new
//! console.
#![cfg(windows)]
#![allow(unsafe_code)] // the console calls that send Ctrl-C; a SAFETY line each

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use qshm::{AccessMode, SharedMemory};
use windows_sys::core::BOOL;
use windows_sys::Win32::System::Console::{
    AllocConsole, FreeConsole, GenerateConsoleCtrlEvent, SetConsoleCtrlHandler, CTRL_C_EVENT,
};

const BIN: &str = env!("CARGO_BIN_EXE_qshm");
const TEST: &str = "ctrl_c_ends_lock_create_and_demo_cleanly";
/// Tells the test binary to play the helper, with `qshm`'s arguments (separated by spaces).
const ROLE: &str = "QSHM_CLI_CTRL_C_HELPER";

/// Runs `qshm ARGS` in a helper with a console of its own, sends it Ctrl-C once it printed
/// a line, and returns its exit status.
fn qshm_interrupted(args: &str) -> i32 {
    let mut helper = Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(ROLE, args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the helper");
    let start = Instant::now();
    loop {
        if let Some(status) = helper.try_wait().expect("wait for the helper") {
            return status.code().unwrap_or(-1);
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = helper.kill();
            panic!("the helper for `qshm {args}` did not end");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Keeps the helper alive when it sends Ctrl-C to its own console.
extern "system" fn survive(_event: u32) -> BOOL {
    1
}

/// The helper: never returns.
fn helper(args: &str) -> ! {
    let exit = std::process::exit;
    // SAFETY: no arguments; detaches this process from the console it shares with the test
    // (if any), which must not receive the Ctrl-C.
    unsafe { FreeConsole() };
    // SAFETY: no arguments; gives this process a new console, which only it and the qshm it
    // starts share.
    if unsafe { AllocConsole() } == 0 {
        exit(201);
    }
    // SAFETY: `survive` has the handler signature, lives as long as the process and never
    // unwinds.
    if unsafe { SetConsoleCtrlHandler(Some(survive), 1) } == 0 {
        exit(202);
    }
    let Ok(mut child) = Command::new(BIN)
        .args(args.split(' '))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    else {
        exit(203);
    };
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    if rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        exit(204);
    }
    // SAFETY: plain integers; process group 0 is every process of this console: this one
    // (which `survive` keeps alive) and the qshm started above, with its children.
    if unsafe { GenerateConsoleCtrlEvent(CTRL_C_EVENT, 0) } == 0 {
        let _ = child.kill();
        exit(205);
    }
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                exit(206);
            }
        }
    };
    // `demo`'s segment (`qshm-demo-<pid>`) is gone with it.
    if args.starts_with("demo") {
        let mut probe = SharedMemory::with_key(&format!("qshm-demo-{}", child.id()));
        if probe.attach(AccessMode::ReadOnly).is_ok() {
            exit(207);
        }
    }
    match status.code() {
        Some(code) if (0..200).contains(&code) => exit(code),
        _ => exit(208),
    }
}

fn key(name: &str) -> String {
    format!("qshm-ctrlc-{name}-{}", std::process::id())
}

#[test]
fn ctrl_c_ends_lock_create_and_demo_cleanly() {
    if let Ok(args) = std::env::var(ROLE) {
        helper(&args);
    }
    // lock: exits with 0, and the lock is free, given back rather than abandoned.
    let k = key("lock");
    let mut shm = SharedMemory::with_key(&k);
    shm.create(64, AccessMode::ReadWrite).unwrap();
    assert_eq!(qshm_interrupted(&format!("lock {k}")), 0);
    let guard = shm.try_lock().expect("the lock is free");
    assert!(
        !guard.owner_died(),
        "given back, not taken from a dead holder"
    );
    drop(guard);
    shm.detach().unwrap();

    // create: exits with 0; the segment is gone with it.
    let k = key("create");
    assert_eq!(qshm_interrupted(&format!("create {k} 64")), 0);
    assert!(SharedMemory::with_key(&k)
        .attach(AccessMode::ReadOnly)
        .is_err());

    // demo: the workers die of the same Ctrl-C; the demo exits with 130 (128 + SIGINT's 2),
    // its segment gone.
    assert_eq!(qshm_interrupted("demo --increments 1000000"), 130);
}
