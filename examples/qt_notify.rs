//! A Rust program and a Qt program (PyQt6, `examples/qt_notify.py`) exchanging change
//! notifications through a Qt-compatible segment: neither polls.
//!
//! ```text
//! pip install PyQt6 ./python                            # once: PyQt6 and qshm for Python
//! QSHM_PYTHON=python3 cargo run --example qt_notify     # $QSHM_PYTHON: a Python with both
//! ```
//!
//! Rust creates the segment of `QSharedMemory("K")` and asks for its notifier (a companion
//! that Qt itself ignores, removed with the segment). The Qt program attaches with
//! `QSharedMemory`, reads and writes the data through Qt's own lock, and uses the `qshm`
//! Python package only for the notifier of the same key. Each side writes a message, then
//! notifies; each waits for the other's change instead of polling.
//!
//! A message is a little-endian u32 length and that many bytes of UTF-8.

use std::process::{Command, Stdio};
use std::time::Duration;

use qshm::{AccessMode, SharedMemory};

const ROUNDS: u32 = 3;

fn put(bytes: &mut [u8], text: &str) {
    bytes[..4].copy_from_slice(&(text.len() as u32).to_le_bytes());
    bytes[4..4 + text.len()].copy_from_slice(text.as_bytes());
}

fn get(bytes: &[u8]) -> String {
    let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    String::from_utf8_lossy(&bytes[4..4 + len.min(bytes.len() - 4)]).into_owned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = format!("qshm-example-qt-notify-{}", std::process::id());
    let mut shm = SharedMemory::with_key(&key);
    shm.create(4096, AccessMode::ReadWrite)?;
    let changes = shm.notifier()?;
    let python = std::env::var("QSHM_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let mut qt = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/qt_notify.py"
        ))
        .arg(&key)
        .stdout(Stdio::inherit())
        .spawn()?;
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        for i in 1..=ROUNDS {
            let mut seen = changes.current();
            put(shm.lock()?.as_mut_slice()?, &format!("ping {i}"));
            changes.notify()?;
            println!("Rust: wrote ping {i}, notified");
            loop {
                let text = get(shm.lock()?.as_slice());
                if text == format!("pong {i}") {
                    println!("Rust: woken, read {text:?}");
                    break;
                }
                seen = changes.wait(seen, Some(Duration::from_secs(20)))?;
            }
        }
        put(shm.lock()?.as_mut_slice()?, "bye");
        changes.notify()?;
        Ok(())
    })();
    let status = qt.wait()?;
    result?;
    if !status.success() {
        return Err(format!("the Qt program failed: {status}").into());
    }
    println!("{ROUNDS} rounds, nobody polled");
    Ok(())
}
