//! A producer and a consumer process passing numbers through a ring buffer in a shared
//! segment, paced by two counting semaphores (Qt's `QSystemSemaphore`, System V on Linux as
//! in Qt): `free` counts empty slots, `filled` counts slots waiting to be read.
//!
//! ```text
//! cargo run --example semaphore_pipeline          # the producer; it starts the consumer
//! ```
//!
//! The producer creates the segment and both semaphores, then starts this program again as
//! the consumer (`consume <key>`). Each side waits on one semaphore and posts the other, so
//! neither ever reads a slot the other has not finished with. The consumer prints the sum
//! of what it read; the producer checks it. Nothing is left behind: the producer created the
//! semaphores (Qt's `Create` mode) and removes them when it drops them, and the segment goes
//! with its last detach.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use qshm::{AccessMode, SemaphoreMode, SharedMemory, SystemSemaphore};

const SLOTS: usize = 8;
const ITEMS: u64 = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("consume") => consume(&args[2]),
        _ => produce(),
    }
}

/// The segment: `SLOTS` little-endian u64s.
fn produce() -> Result<(), Box<dyn std::error::Error>> {
    let key = format!("qshm-example-pipeline-{}", std::process::id());
    let mut shm = SharedMemory::with_key(&key);
    shm.create(SLOTS * 8, AccessMode::ReadWrite)?;
    let free = SystemSemaphore::new(&format!("{key}-free"), SLOTS as u32, SemaphoreMode::Create)?;
    let filled = SystemSemaphore::new(&format!("{key}-filled"), 0, SemaphoreMode::Create)?;

    let mut consumer = Command::new(std::env::current_exe()?)
        .args(["consume", &key])
        .stdout(Stdio::piped())
        .spawn()?;
    for i in 0..ITEMS {
        free.acquire()?; // an empty slot
        let slot = i as usize % SLOTS;
        shm.lock()?.as_mut_slice()?[slot * 8..slot * 8 + 8].copy_from_slice(&i.to_le_bytes());
        filled.release(1)?; // one more to read
    }
    let mut line = String::new();
    BufReader::new(consumer.stdout.take().expect("piped")).read_line(&mut line)?;
    let status = consumer.wait()?;
    let expected = ITEMS * (ITEMS - 1) / 2;
    println!(
        "producer: sent {ITEMS} numbers through {SLOTS} slots; consumer says: {}",
        line.trim()
    );
    if !status.success() || line.trim() != format!("sum {expected}") {
        return Err(
            format!("expected `sum {expected}` from a successful consumer ({status})").into(),
        );
    }
    shm.detach()?; // the last detach: the segment and its lock go
    Ok(())
}

fn consume(key: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut shm = SharedMemory::with_key(key);
    shm.attach(AccessMode::ReadWrite)?;
    let free = SystemSemaphore::new(&format!("{key}-free"), SLOTS as u32, SemaphoreMode::Open)?;
    let filled = SystemSemaphore::new(&format!("{key}-filled"), 0, SemaphoreMode::Open)?;
    let mut sum = 0;
    for i in 0..ITEMS {
        filled.acquire()?; // a slot to read
        let slot = i as usize % SLOTS;
        let bytes = shm.lock()?.as_slice()[slot * 8..slot * 8 + 8].try_into()?;
        sum += u64::from_le_bytes(bytes);
        free.release(1)?; // the slot is empty again
    }
    println!("sum {sum}");
    shm.detach()?;
    Ok(())
}
