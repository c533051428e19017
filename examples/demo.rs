//! The main job in one command: several processes share one segment, increment a counter
//! under the lock and stream a message through it; the parent shows progress, checks the
//! result and cleans up.
//!
//! ```text
//! cargo run --release --example demo
//! ```

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use qshm::{AccessMode, SharedMemory};

const WORKERS: usize = 4;
const INCREMENTS: u64 = 25_000;
const MESSAGE: &str = "Shared memory, named as Qt names it, locked as Qt locks it: \
                       a Qt program with the same key would see every byte of this.";

// Layout: [0..8) counter, [8] chunk-present flag, [9] chunk length, [16..48) chunk.
const COUNTER: usize = 0;
const FLAG: usize = 8;
const LEN: usize = 9;
const CHUNK: usize = 16;
const CHUNK_MAX: usize = 32;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("worker") => worker(&args[2], args[3].parse().unwrap_or(0)),
        _ => parent(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parent() -> Result<(), Box<dyn std::error::Error>> {
    let key = format!("qshm-demo-{}", std::process::id());
    let mut shm = SharedMemory::with_key(&key);
    shm.create(4096, AccessMode::ReadWrite)?;
    println!("created `{}` ({} bytes)", shm.native_key(), shm.size());
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for i in 0..WORKERS {
        children.push(
            Command::new(&exe)
                .args(["worker", &key, &i.to_string()])
                .spawn()?,
        );
    }
    println!("{WORKERS} worker processes increment a counter {INCREMENTS} times each; worker 0 streams a message");
    let start = Instant::now();
    let mut received = Vec::new();
    let mut last_report = Instant::now();
    loop {
        let (count, done_streaming) = {
            let mut guard = shm.lock()?;
            let bytes = guard.as_mut_slice()?;
            if bytes[FLAG] == 1 {
                let len = usize::from(bytes[LEN]);
                received.extend_from_slice(&bytes[CHUNK..CHUNK + len]);
                bytes[FLAG] = 0;
            }
            (
                u64::from_le_bytes(bytes[COUNTER..COUNTER + 8].try_into()?),
                received.len() >= MESSAGE.len(),
            )
        };
        if last_report.elapsed() > Duration::from_millis(200) {
            println!(
                "  counter {count:>7} / {}   message {:>3} / {} bytes",
                INCREMENTS * WORKERS as u64,
                received.len(),
                MESSAGE.len()
            );
            last_report = Instant::now();
        }
        if done_streaming
            && children
                .iter_mut()
                .all(|c| matches!(c.try_wait(), Ok(Some(_))))
        {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    for mut c in children {
        if !c.wait()?.success() {
            return Err("a worker failed".into());
        }
    }
    let count = u64::from_le_bytes(shm.lock()?.as_slice()[COUNTER..COUNTER + 8].try_into()?);
    let expected = INCREMENTS * WORKERS as u64;
    println!(
        "counter: {count} (expected {expected}); message: {:?}",
        String::from_utf8_lossy(&received)
    );
    shm.detach()?;
    let mut check = SharedMemory::with_key(&key);
    let gone = check.attach(AccessMode::ReadOnly).is_err();
    println!(
        "detached: segment removed: {gone}; took {:.2?}",
        start.elapsed()
    );
    if count != expected || received != MESSAGE.as_bytes() || !gone {
        return Err("verification FAILED".into());
    }
    println!("verified: OK");
    Ok(())
}

fn worker(key: &str, index: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut shm = SharedMemory::with_key(key);
    shm.attach(AccessMode::ReadWrite)?;
    // Worker 0 streams the message; the others only count.
    let message: &[u8] = if index == 0 { MESSAGE.as_bytes() } else { &[] };
    let mut chunks = message.chunks(CHUNK_MAX).peekable();
    for i in 0..INCREMENTS {
        let mut guard = shm.lock()?;
        let bytes = guard.as_mut_slice()?;
        let v = u64::from_le_bytes(bytes[COUNTER..COUNTER + 8].try_into()?);
        bytes[COUNTER..COUNTER + 8].copy_from_slice(&(v + 1).to_le_bytes());
        if i % 500 == 0 && bytes[FLAG] == 0 {
            if let Some(chunk) = chunks.next() {
                bytes[CHUNK..CHUNK + chunk.len()].copy_from_slice(chunk);
                bytes[LEN] = chunk.len() as u8;
                bytes[FLAG] = 1;
            }
        }
    }
    // Send whatever is left of the message.
    while let Some(chunk) = chunks.peek() {
        let mut guard = shm.lock()?;
        let bytes = guard.as_mut_slice()?;
        if bytes[FLAG] == 0 {
            bytes[CHUNK..CHUNK + chunk.len()].copy_from_slice(chunk);
            bytes[LEN] = chunk.len() as u8;
            bytes[FLAG] = 1;
            chunks.next();
        }
        drop(guard);
        std::thread::sleep(Duration::from_micros(100));
    }
    Ok(())
}
