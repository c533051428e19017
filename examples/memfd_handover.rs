//! Hands a memfd segment to a child process (Linux): no name, nothing in `/dev/shm`,
//! nothing to clean up: the memory goes when the last process holding it exits.
//!
//! ```text
//! cargo run --example memfd_handover
//! ```
//!
//! The parent creates a memfd (sealed against shrinking and growing, so no peer can make
//! the other crash with `SIGBUS`), writes a request under the lock inside it, and starts
//! this program again as the child. `pass_to_child` keeps a duplicate of the descriptor open
//! across `exec` in that child only and names it in `QSHM_MEMFD`; the child maps it with
//! `MappedSegment::from_env`, which checks the seals, the header and the size first, then
//! answers under the same lock.

// `qshm_linux`: Linux with glibc or musl, the targets with `qshm::mapped` (set by qshm's
// build.rs; in a program of your own, `target_os = "linux"`).
#[cfg(qshm_linux)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("child") => linux::child(),
        _ => linux::parent(),
    }
}

#[cfg(not(qshm_linux))]
fn main() {
    eprintln!("memfd_handover: memfd segments are Linux-only; nothing to show on this platform");
}

#[cfg(qshm_linux)]
mod linux {
    use std::process::Command;

    use qshm::mapped::{MappedSegment, ReceiveOptions};

    /// Writes `text` at the start of `bytes`, after its length (a little-endian u32).
    fn put(bytes: &mut [u8], text: &str) {
        bytes[..4].copy_from_slice(&(text.len() as u32).to_le_bytes());
        bytes[4..4 + text.len()].copy_from_slice(text.as_bytes());
    }

    fn get(bytes: &[u8]) -> String {
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        String::from_utf8_lossy(&bytes[4..4 + len.min(bytes.len() - 4)]).into_owned()
    }

    pub(crate) fn parent() -> Result<(), Box<dyn std::error::Error>> {
        let seg = MappedSegment::memfd("qshm-example-handover", 4096)?;
        assert!(seg.is_shrink_sealed());
        put(seg.lock()?.as_mut_slice()?, "ping");

        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("child");
        seg.pass_to_child(&mut cmd)?;
        let status = cmd.status()?;
        if !status.success() {
            return Err(format!("the child failed: {status}").into());
        }
        let answer = get(seg.lock()?.as_slice());
        println!(
            "parent {}: the child answered {answer:?}",
            std::process::id()
        );
        if !answer.starts_with("pong from ") {
            return Err("unexpected answer".into());
        }
        seg.detach()?;
        Ok(())
    }

    pub(crate) fn child() -> Result<(), Box<dyn std::error::Error>> {
        let seg = MappedSegment::from_env(&ReceiveOptions::new())?;
        let mut guard = seg.lock()?;
        let request = get(guard.as_slice());
        println!(
            "child {}: got {request:?} in a {}-byte memfd",
            std::process::id(),
            seg.size()
        );
        put(
            guard.as_mut_slice()?,
            &format!("pong from {}", std::process::id()),
        );
        Ok(())
    }
}
