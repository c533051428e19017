//! A Rust program and an unmodified Qt program (PyQt6, `examples/qt_interop.py`) sharing
//! segments both ways, through the same keys and the same lock.
//!
//! ```text
//! python -m pip install PyQt6                            # once
//! QSHM_PYTHON=python3 cargo run --example qt_interop     # $QSHM_PYTHON: a Python with PyQt6
//! ```
//!
//! 1. Rust creates a segment under the Qt key `K` (`SharedMemory::with_key`, named exactly as
//!    `QSharedMemory("K")` names it) and writes a message under the lock; the Qt program
//!    attaches with `QSharedMemory("K").attach()`, locks, reads it and writes an answer.
//! 2. The Qt program creates a segment with `QSharedMemory::create` and writes a message; Rust
//!    attaches to it, reads it and writes back under Qt's lock; the Qt program reads that and
//!    detaches last, which destroys the segment (as Qt always does on Unix).
//!
//! A message is a little-endian u32 length and that many bytes of UTF-8.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use qshm::{AccessMode, SharedMemory};

fn put(bytes: &mut [u8], text: &str) {
    bytes[..4].copy_from_slice(&(text.len() as u32).to_le_bytes());
    bytes[4..4 + text.len()].copy_from_slice(text.as_bytes());
}

fn get(bytes: &[u8]) -> String {
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    String::from_utf8_lossy(&bytes[4..4 + len.min(bytes.len() - 4)]).into_owned()
}

fn python() -> Command {
    let python = std::env::var("QSHM_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut cmd = Command::new(python);
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/qt_interop.py"
    ));
    cmd
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pid = std::process::id();

    // 1. Rust creates, Qt attaches.
    let key = format!("qshm-example-qt-{pid}");
    let mut shm = SharedMemory::with_key(&key);
    shm.create(4096, AccessMode::ReadWrite)?;
    put(shm.lock()?.as_mut_slice()?, "hello from Rust");
    let out = python().args(["answer", &key]).output()?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("the Qt program failed ({}): {stderr}", out.status).into());
    }
    let answer = get(shm.lock()?.as_slice());
    println!("Rust read: {answer}");
    if !answer.starts_with("hello from Qt ") {
        return Err("no answer from Qt".into());
    }
    shm.detach()?; // the last detach: the segment goes

    // 2. Qt creates, Rust attaches.
    let key = format!("qshm-example-qt-made-{pid}");
    let mut qt = python()
        .args(["create", &key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut qt_out = BufReader::new(qt.stdout.take().expect("piped"));
    let mut line = String::new();
    qt_out.read_line(&mut line)?;
    if line.trim() != "ready" {
        let _ = qt.kill();
        let _ = qt.wait();
        return Err(format!("the Qt program did not create its segment (said {line:?})").into());
    }
    let mut theirs = SharedMemory::with_key(&key);
    theirs.attach(AccessMode::ReadWrite)?;
    {
        let mut guard = theirs.lock()?; // Qt's lock: a Qt lock() now waits
        println!("Rust read: {}", get(guard.as_slice()));
        put(guard.as_mut_slice()?, "written by Rust");
    }
    theirs.detach()?; // not the last: Qt is still attached
    writeln!(qt.stdin.take().expect("piped"))?; // Qt reads back, detaches last
    line.clear();
    qt_out.read_line(&mut line)?;
    print!("{line}");
    let status = qt.wait()?;
    if !status.success() || !line.contains("written by Rust") {
        return Err(format!("the Qt program did not read Rust's bytes ({status})").into());
    }
    Ok(())
}
