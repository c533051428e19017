//! A lock holder killed half-way through an update, and the repair (POSIX keys on Linux).
//!
//! ```text
//! cargo run --example owner_died
//! ```
//!
//! The segment holds two counters that are always equal outside the lock. A child process
//! locks it, bumps the first counter, says so, and is killed with `SIGKILL` before it bumps
//! the second. The parent's next `lock()` takes the lock over from the dead holder and its
//! guard reports `owner_died()`: the data may be half-written. The parent repairs it
//! (here: the second counter catches up), calls `mark_consistent()`, and the next holder is
//! not told again.
//!
//! This needs a lock that can tell: POSIX and `mapped` segments (and Windows). System V
//! gives a dead holder's lock back silently (`SEM_UNDO`), so there `owner_died()` is always
//! false.

// `qshm_linux`: Linux with glibc or musl (set by qshm's build.rs; in a program of your own,
// `target_os = "linux"`).
#[cfg(qshm_linux)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("child") => linux::child(&std::env::args().nth(2).unwrap_or_default()),
        _ => linux::parent(),
    }
}

#[cfg(not(qshm_linux))]
fn main() {
    eprintln!("owner_died: this walk-through uses POSIX keys (Linux); nothing to show here");
}

#[cfg(qshm_linux)]
mod linux {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use qshm::{AccessMode, KeyType, LockGuard, NativeKey, SharedMemory};

    fn key(name: &str) -> NativeKey {
        // Qt's POSIX naming (`/qipc_sharedmemory_…`), as `QSharedMemory` with a
        // `QNativeIpcKey` of type PosixRealtime.
        NativeKey::legacy(name, KeyType::PosixRealtime)
    }

    fn counters(guard: &LockGuard<'_>) -> (u64, u64) {
        let b = guard.as_slice();
        let first = u64::from_le_bytes(b[..8].try_into().unwrap());
        let second = u64::from_le_bytes(b[8..16].try_into().unwrap());
        (first, second)
    }

    pub(crate) fn parent() -> Result<(), Box<dyn std::error::Error>> {
        let name = format!("qshm-example-owner-died-{}", std::process::id());
        let mut shm = SharedMemory::with_native_key(key(&name));
        shm.create(4096, AccessMode::ReadWrite)?;

        let mut child = Command::new(std::env::current_exe()?)
            .args(["child", &name])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        if line.trim() != "half-way" {
            let _ = child.kill();
            return Err(format!("the child said {line:?}").into());
        }
        child.kill()?; // SIGKILL: no destructor runs, the lock stays taken
        child.wait()?;
        println!("parent: killed the holder (pid {}) half-way", child.id());

        let started = Instant::now();
        let mut guard = shm.lock_timeout(Duration::from_secs(5))?;
        let (first, second) = counters(&guard);
        println!(
            "parent: took the lock over after {:?}; owner_died() = {}, counters {first} and {second}",
            started.elapsed(),
            guard.owner_died()
        );
        if !guard.owner_died() || (first, second) != (1, 0) {
            return Err("expected owner_died() and a half-done update".into());
        }
        // The repair: finish (or undo) what the dead holder started.
        guard.as_mut_slice()?[8..16].copy_from_slice(&first.to_le_bytes());
        guard.mark_consistent();
        drop(guard);

        let guard = shm.lock()?;
        println!(
            "parent: repaired; next lock: owner_died() = {}, counters {:?}",
            guard.owner_died(),
            counters(&guard)
        );
        if guard.owner_died() || counters(&guard) != (1, 1) {
            return Err("the repair did not stick".into());
        }
        drop(guard);
        shm.detach()?; // the last detach: the segment and its lock go
        Ok(())
    }

    pub(crate) fn child(name: &str) -> Result<(), Box<dyn std::error::Error>> {
        let mut shm = SharedMemory::with_native_key(key(name));
        shm.attach(AccessMode::ReadWrite)?;
        let mut guard = shm.lock()?;
        guard.as_mut_slice()?[..8].copy_from_slice(&1u64.to_le_bytes());
        println!("half-way");
        // Wait to be killed (the parent does so at once; give up after a while).
        std::thread::sleep(Duration::from_secs(30));
        Err("not killed".into())
    }
}
