//! Listing segments and cleaning up after a crash with `qshm::inspect`, the library under the
//! `qshm list` / `info` / `clean` commands (Linux).
//!
//! ```text
//! cargo run --example inspect_clean
//! ```
//!
//! A child process creates a segment under a Qt key (System V, as `QSharedMemory` does on
//! Linux) and is killed with `SIGKILL`, so nobody detaches: the segment stays, attached by
//! nobody, with its key file and its lock semaphore. `inspect::info` and `inspect::list`
//! show it before and after the crash; `inspect::leftovers` finds it orphaned and
//! `inspect::remove_leftover` removes it with its key file and lock. This example only
//! touches its own key: `leftovers()` lists every orphan on the machine, and `qshm clean`
//! is the tool for those.

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
    eprintln!("inspect_clean: this walk-through is for Linux; nothing to show here");
}

#[cfg(qshm_linux)]
mod linux {
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use qshm::inspect::{self, Leftover, SegmentInfo};
    use qshm::{AccessMode, ErrorKind, NativeKey, SharedMemory};

    fn show(when: &str, info: &SegmentInfo) {
        println!(
            "{when}: {} shmid {:?}, {} bytes, attached {}x, creator {:?} alive {:?}, lock {}, orphaned {}",
            info.backend.name(),
            info.id,
            info.size,
            info.attach_count,
            info.creator_pid,
            info.creator_alive,
            info.lock_state.name(),
            info.orphaned
        );
    }

    pub(crate) fn parent() -> Result<(), Box<dyn std::error::Error>> {
        let qt_key = format!("qshm-example-inspect-{}", std::process::id());
        let key = SharedMemory::with_key(&qt_key).native_key().clone();

        let mut child = Command::new(std::env::current_exe()?)
            .args(["child", &qt_key])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            return Err(format!("the child said {line:?}").into());
        }
        show("while the child lives", &inspect::info(&key)?);

        child.kill()?; // SIGKILL: it never detaches
        child.wait()?;
        let result = after_the_crash(&key);
        if result.is_err() {
            let _ = SharedMemory::force_remove(&key); // leave nothing behind, even so
        }
        result
    }

    fn after_the_crash(key: &NativeKey) -> Result<(), Box<dyn std::error::Error>> {
        let info = inspect::info(key)?;
        show("after SIGKILL       ", &info);
        if !info.orphaned {
            return Err("expected an orphan: attached by nobody, its creator gone".into());
        }

        // `list()` is every Qt or qshm segment on the machine (`qshm list`); ours is among them.
        let listed = inspect::list()?;
        // (Its key there has no Qt key: `list` finds names, which are hashed.)
        let ours = listed
            .iter()
            .filter(|s| s.native_key.as_ref().map(|k| k.native_key()) == Some(key.native_key()))
            .count();
        println!(
            "inspect::list(): {} segments on this machine, {ours} of them ours",
            listed.len()
        );
        if ours != 1 {
            return Err("not listed".into());
        }

        // `leftovers()` is what `qshm clean` would remove; keep to our own key (its names
        // are native key texts and files: `…/qipc_sharedmemory_<letters><sha1>`).
        let mine: Vec<Leftover> = inspect::leftovers()?
            .into_iter()
            .filter(|l| l.names().iter().any(|n| n.contains(key.native_key())))
            .collect();
        for leftover in &mine {
            let removed = inspect::remove_leftover(leftover)?;
            println!(
                "removed {} {:?}: {removed}",
                leftover.kind(),
                leftover.names()
            );
        }
        if !mine.iter().any(|l| matches!(l, Leftover::Segment(_))) {
            return Err("the orphan was not among the leftovers".into());
        }

        match inspect::info(key) {
            Err(e) if e.kind() == ErrorKind::NotFound => println!("afterwards: {e}"),
            other => return Err(format!("still there: {other:?}").into()),
        }
        // Key files: the segment's and the lock's are gone too.
        for file in [
            key.native_key().to_owned(),
            key.lock_key().native_key().to_owned(),
        ] {
            if Path::new(&file).exists() {
                return Err(format!("{file} is still there").into());
            }
        }
        Ok(())
    }

    pub(crate) fn child(qt_key: &str) -> Result<(), Box<dyn std::error::Error>> {
        let mut shm = SharedMemory::with_key(qt_key);
        shm.create(64 * 1024, AccessMode::ReadWrite)?;
        shm.lock()?.as_mut_slice()?[..5].copy_from_slice(b"state");
        println!("ready");
        std::thread::sleep(Duration::from_secs(30)); // until killed
        Err("not killed".into())
    }
}
