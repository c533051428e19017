//! Futures (feature `async`): a thousand tasks wait for a change of one segment, under
//! tokio, with no thread per waiter; then tasks take the segment's lock with `lock_async`
//! while another process holds it.
//!
//! ```text
//! cargo run --example async_wait --features async
//! ```
//!
//! The futures need no particular runtime: `Notifier::changed` is woken by one helper
//! thread per notifier (which sleeps on the kernel's futex for all of them), `lock_async`
//! retries on a process-wide timer thread. Dropping any of them cancels it cleanly.

#[cfg(all(qshm_linux, feature = "async"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("holder") => demo::holder(),
        _ => demo::main(),
    }
}

#[cfg(not(all(qshm_linux, feature = "async")))]
fn main() {
    eprintln!("async_wait: run on Linux with --features async");
}

#[cfg(all(qshm_linux, feature = "async"))]
mod demo {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use qshm::mapped::{MappedSegment, MemfdOptions, ReceiveOptions};

    pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
        let seg = MemfdOptions::new().create("async-example", 64)?;
        let changes = seg.notifier()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()?;
        rt.block_on(async {
            let seen = changes.current();
            let tasks: Vec<_> = (0..1000)
                .map(|_| tokio::spawn(changes.changed(seen)))
                .collect();
            while changes.pending_futures() < 1000 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            println!("1000 tasks wait for a change");
            let start = Instant::now();
            changes.notify()?;
            for t in tasks {
                t.await??;
            }
            println!("all 1000 woke {:?} after one notify", start.elapsed());

            // The lock, held for 200 ms by another process.
            let mut cmd = Command::new(std::env::current_exe()?);
            cmd.arg("holder").stdout(Stdio::piped());
            let mut holder = seg.spawn_child(&mut cmd)?;
            let mut line = String::new();
            BufReader::new(holder.stdout.take().expect("piped")).read_line(&mut line)?;
            let start = Instant::now();
            let guard = seg.lock_async().await?;
            println!(
                "lock_async: got the lock {:?} later, when the other process let go",
                start.elapsed()
            );
            drop(guard);
            holder.wait()?;
            Ok(())
        })
    }

    pub(crate) fn holder() -> Result<(), Box<dyn std::error::Error>> {
        let seg = MappedSegment::from_env(&ReceiveOptions::new())?;
        let _guard = seg.lock()?;
        println!("locked");
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    }
}
