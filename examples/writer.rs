//! Terminal 1 of a two-process pair: creates a segment under a Qt key, writes a message
//! under the lock, and keeps the segment until Enter is pressed.
//!
//! ```text
//! cargo run --example writer -- my-key "hello from Rust"
//! cargo run --example reader -- my-key        # terminal 2 (or a Qt program: QSharedMemory("my-key"))
//! ```

use qshm::{AccessMode, SharedMemory};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let key = args.next().unwrap_or_else(|| "qshm-example".to_owned());
    let message = args.next().unwrap_or_else(|| "hello from qshm".to_owned());
    let mut shm = SharedMemory::with_key(&key);
    shm.create(4096, AccessMode::ReadWrite)?;
    {
        let mut guard = shm.lock()?;
        let bytes = guard.as_mut_slice()?;
        let len = message.len().min(bytes.len() - 4);
        bytes[..4].copy_from_slice(&(len as u32).to_le_bytes());
        bytes[4..4 + len].copy_from_slice(&message.as_bytes()[..len]);
    }
    println!(
        "wrote {message:?} to `{}`; press Enter to detach (the segment then goes)",
        shm.native_key()
    );
    std::io::stdin().read_line(&mut String::new())?;
    shm.detach()?;
    Ok(())
}
