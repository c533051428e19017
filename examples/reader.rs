//! Terminal 2 of a two-process pair: attaches read-only to the segment `writer` made (or a Qt
//! program's `QSharedMemory` with the same key), and prints the message under the lock.
//!
//! ```text
//! cargo run --example reader -- my-key
//! ```

use qshm::{AccessMode, SharedMemory};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "qshm-example".to_owned());
    let mut shm = SharedMemory::with_key(&key);
    shm.attach(AccessMode::ReadOnly)?;
    let guard = shm.lock()?;
    let bytes = guard.as_slice();
    let len = (u32::from_le_bytes(bytes[..4].try_into()?) as usize).min(bytes.len() - 4);
    println!("{}", String::from_utf8_lossy(&bytes[4..4 + len]));
    Ok(())
}
