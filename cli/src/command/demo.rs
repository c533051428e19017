//! `qshm demo`: the main job in one command. Worker processes (this binary re-run with the
//! hidden verb `demo-worker`) attach to one segment, increment a counter under its lock and
//! stream a message through it; this process shows progress, checks the result and cleans up.
//!
//! A worker learns that the demo went away (killed, say) from its standard input, a pipe
//! from the demo: it reaches its end when the demo's end closes. That works alike on every
//! platform (Windows has no parent pid to watch).

use std::io::{IsTerminal, Read, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use qshm::{AccessMode, SharedMemory};

use super::{Ctx, Outcome};
use crate::cli::{DemoCmd, DemoWorkerCmd};
use crate::json::Obj;
use crate::{signals, Failure};

const MESSAGE: &str = "Shared memory, named as Qt names it, locked as Qt locks it: \
                       a Qt program with the same key would see every byte of this.";

// Layout: [0..8) counter, [8] chunk-present flag, [9] chunk length, [16..48) chunk.
const COUNTER: usize = 0;
const FLAG: usize = 8;
const LEN: usize = 9;
const CHUNK: usize = 16;
const CHUNK_MAX: usize = 32;
const SIZE: usize = 4096;

/// How long the parent waits for the lock before it concludes something is wrong.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

fn counter(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[COUNTER..COUNTER + 8]);
    u64::from_le_bytes(b)
}

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &DemoCmd) -> Outcome {
    let key = format!("qshm-demo-{}", std::process::id());
    let fail = |cause: &dyn std::fmt::Display| ctx.op(&key, cause);
    let blocked = signals::block().map_err(|e| fail(&format_args!("cannot block signals: {e}")))?;
    let mut shm = SharedMemory::with_key(&key);
    shm.create(SIZE, AccessMode::ReadWrite)
        .map_err(|e| ctx.lib(&key, &e))?;
    let expected = cmd.increments * u64::from(cmd.workers);
    let json = ctx.json();
    let say = |line: String| {
        if !json {
            println!("{line}");
        }
    };
    say(format!(
        "created `{}` ({} bytes)",
        shm.native_key(),
        shm.size()
    ));
    say(format!(
        "{} worker processes increment a counter {} times each under the segment's lock; \
         worker 0 streams a message through it",
        cmd.workers, cmd.increments
    ));
    let exe =
        std::env::current_exe().map_err(|e| fail(&format_args!("cannot find myself: {e}")))?;
    let start = Instant::now();
    let mut workers = Workers(Vec::new());
    for i in 0..cmd.workers {
        let mut worker = Command::new(&exe);
        worker
            .args([
                "demo-worker",
                &key,
                &i.to_string(),
                &cmd.increments.to_string(),
            ])
            // Kept open, never written: its end tells the worker that the demo is gone.
            .stdin(Stdio::piped());
        let child = signals::unblocked_in_child(&mut worker)
            .spawn()
            .map_err(|e| fail(&format_args!("cannot start a worker: {e}")))?;
        workers.0.push(child);
    }
    let tty = !json && std::io::stdout().is_terminal();
    let mut received = Vec::new();
    let mut last_report = Instant::now();
    let mut interrupted = None;
    let count = loop {
        // Whether every worker has exited, looked at before the counter is read: a count
        // read after that is final (read first, it could miss the last increments).
        let all_done = workers
            .0
            .iter_mut()
            .all(|c| matches!(c.try_wait(), Ok(Some(_))));
        let (count, streamed) = {
            let mut guard = shm
                .lock_timeout(LOCK_TIMEOUT)
                .map_err(|e| ctx.lib(&key, &e))?;
            let bytes = guard.as_mut_slice().map_err(|e| ctx.lib(&key, &e))?;
            if bytes[FLAG] == 1 {
                let len = usize::from(bytes[LEN]).min(CHUNK_MAX);
                received.extend_from_slice(&bytes[CHUNK..CHUNK + len]);
                bytes[FLAG] = 0;
            }
            (counter(bytes), received.len() >= MESSAGE.len())
        };
        if !json && (last_report.elapsed() > Duration::from_millis(250) || all_done) {
            let line = format!(
                "  counter {count:>9} / {expected}   message {:>3} / {} bytes   {:>5.2} s",
                received.len(),
                MESSAGE.len(),
                start.elapsed().as_secs_f64()
            );
            if tty {
                print!("\r{line}");
                let _ = std::io::stdout().flush();
            } else {
                println!("{line}");
            }
            last_report = Instant::now();
        }
        if streamed && all_done {
            break count;
        }
        if let Some(sig) = blocked.wait(Some(Duration::from_millis(2))) {
            interrupted = Some(sig);
            break count;
        }
    };
    if tty {
        println!();
    }
    let mut worker_failed = false;
    for c in &mut workers.0 {
        if interrupted.is_some() {
            let _ = c.kill();
        }
        worker_failed |= !c.wait().is_ok_and(|s| s.success());
    }
    drop(workers);
    shm.detach().map_err(|e| ctx.lib(&key, &e))?;
    let gone = SharedMemory::with_key(&key)
        .attach(AccessMode::ReadOnly)
        .is_err();
    let seconds = start.elapsed().as_secs_f64();
    if let Some(sig) = interrupted {
        eprintln!("qshm: demo: interrupted; workers stopped, segment removed: {gone}");
        return Err(Failure::silent(128 + sig as u8));
    }
    let message_ok = received == MESSAGE.as_bytes();
    let ok = count == expected && message_ok && gone && !worker_failed;
    ctx.emit(
        || {
            format!(
                "counter: {count} (expected {expected} = {} workers x {}); message: {:?}\n\
                 segment removed after the last detach: {gone}; took {seconds:.2} s\n\
                 verified: {}",
                cmd.workers,
                cmd.increments,
                String::from_utf8_lossy(&received),
                if ok { "OK" } else { "FAILED" }
            )
        },
        || {
            Obj::new("demo")
                .num("workers", cmd.workers)
                .num("increments", cmd.increments)
                .num("counter", count)
                .num("expected", expected)
                .bool("message_ok", message_ok)
                .bool("segment_removed", gone)
                .bool("workers_ok", !worker_failed)
                .float("seconds", seconds)
                .bool("verified", ok)
        },
    );
    if !ok {
        return Err(ctx.op(&key, "verification failed"));
    }
    Ok(ExitCode::SUCCESS)
}

/// One worker: attach, increment under the lock, stream the message (worker 0).
pub(crate) fn worker(cmd: &DemoWorkerCmd) -> Outcome {
    let key = cmd.key.as_str();
    let fail = |e: &qshm::Error| Failure::lib("demo-worker", key, e);
    watch_demo();
    let mut shm = SharedMemory::with_key(key);
    shm.attach(AccessMode::ReadWrite).map_err(|e| fail(&e))?;
    let message: &[u8] = if cmd.index == 0 {
        MESSAGE.as_bytes()
    } else {
        &[]
    };
    let mut chunks = message.chunks(CHUNK_MAX).peekable();
    let every = (cmd.increments / 64).max(1);
    for i in 0..cmd.increments {
        let mut guard = shm.lock().map_err(|e| fail(&e))?;
        let bytes = guard.as_mut_slice().map_err(|e| fail(&e))?;
        let v = counter(bytes);
        bytes[COUNTER..COUNTER + 8].copy_from_slice(&(v + 1).to_le_bytes());
        if i % every == 0 && bytes[FLAG] == 0 {
            if let Some(chunk) = chunks.next() {
                bytes[CHUNK..CHUNK + chunk.len()].copy_from_slice(chunk);
                bytes[LEN] = chunk.len() as u8;
                bytes[FLAG] = 1;
            }
        }
        drop(guard);
        if i % 1024 == 0 && DEMO_GONE.load(Ordering::Relaxed) {
            return Err(Failure::op("demo-worker", key, "the demo went away"));
        }
    }
    // Send whatever is left of the message.
    while let Some(chunk) = chunks.peek() {
        {
            let mut guard = shm.lock().map_err(|e| fail(&e))?;
            let bytes = guard.as_mut_slice().map_err(|e| fail(&e))?;
            if bytes[FLAG] == 0 {
                bytes[CHUNK..CHUNK + chunk.len()].copy_from_slice(chunk);
                bytes[LEN] = chunk.len() as u8;
                bytes[FLAG] = 1;
                chunks.next();
            }
        }
        std::thread::sleep(Duration::from_micros(200));
        if DEMO_GONE.load(Ordering::Relaxed) {
            return Err(Failure::op("demo-worker", key, "the demo went away"));
        }
    }
    shm.detach().map_err(|e| fail(&e))?;
    Ok(ExitCode::SUCCESS)
}

/// Set in a worker once its standard input, the demo's pipe, has reached its end.
static DEMO_GONE: AtomicBool = AtomicBool::new(false);

/// Reads the worker's standard input to its end in a thread, then sets [`DEMO_GONE`].
fn watch_demo() {
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 64];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        DEMO_GONE.store(true, Ordering::Relaxed);
    });
}
