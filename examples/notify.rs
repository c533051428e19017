//! Change notification across processes: a writer publishes readings into a mapped
//! segment and says "I changed it"; a reader in another process sleeps until then, never
//! polls, and never misses an update that lands between its read and its wait.
//!
//! ```text
//! cargo run --example notify
//! ```
//!
//! The reader's loop is the whole pattern: remember the change counter, read the data (under
//! the lock), wait for a counter newer than the one remembered. A change that comes while it
//! reads makes the wait return at once. The same `Notifier` works on System V and POSIX
//! segments (`SharedMemory::notifier`, through a companion Qt ignores) and from C
//! (`qshm_notify`/`qshm_wait_change` in `include/qshm.h`).

#[cfg(any(qshm_linux, qshm_windows))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("reader") => demo::reader(),
        _ => demo::writer(),
    }
}

#[cfg(not(any(qshm_linux, qshm_windows)))]
fn main() {
    eprintln!("notify: mapped segments need Linux or Windows; nothing to show here");
}

#[cfg(any(qshm_linux, qshm_windows))]
mod demo {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use qshm::mapped::{MappedSegment, ReceiveOptions};

    const READINGS: u64 = 5;

    fn reading(seg: &MappedSegment) -> u64 {
        u64::from_le_bytes(
            seg.lock().expect("lock").as_slice()[..8]
                .try_into()
                .unwrap(),
        )
    }

    pub(crate) fn writer() -> Result<(), Box<dyn std::error::Error>> {
        // A temporary segment, handed to the reader at spawn (it goes with its last user).
        let seg = MappedSegment::create_temporary(64)?;
        let changes = seg.notifier()?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("reader").stdout(Stdio::piped());
        let mut reader = seg.spawn_child(&mut cmd)?;
        let mut lines = BufReader::new(reader.stdout.take().expect("piped")).lines();
        // The reader says when it is listening; from then on nothing is missed.
        assert_eq!(lines.next().transpose()?.as_deref(), Some("listening"));
        for value in 1..=READINGS {
            seg.lock()?.as_mut_slice()?[..8].copy_from_slice(&(value * 100).to_le_bytes());
            let now = changes.notify()?;
            println!("writer: published {} (change {now})", value * 100);
            std::thread::sleep(Duration::from_millis(50));
        }
        for line in lines {
            println!("{}", line?);
        }
        let status = reader.wait()?;
        if !status.success() {
            return Err(format!("the reader failed: {status}").into());
        }
        Ok(())
    }

    pub(crate) fn reader() -> Result<(), Box<dyn std::error::Error>> {
        // A file from our own parent, not a sealed memfd: accepted knowingly.
        let seg = MappedSegment::from_env(ReceiveOptions::new().allow_unsealed(true))?;
        let changes = seg.notifier()?;
        let mut seen = changes.current();
        println!("listening");
        let mut last = 0;
        while last < READINGS * 100 {
            // Read first, then wait for anything newer than what was read.
            let value = reading(&seg);
            if value != last {
                println!("reader: got {value}");
                last = value;
                continue;
            }
            seen = changes.wait(seen, Some(Duration::from_secs(10)))?;
        }
        println!("reader: all {READINGS} readings, no polling");
        Ok(())
    }
}
