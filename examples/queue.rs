//! A message queue between two processes: this program starts itself again as the
//! consumer, sends it 10 000 messages of varying length (up to 4 KiB) through a 16 KiB
//! ring, and closes its end; the consumer receives them all, checks them, and is told
//! `Disconnected` once the queue is drained.
//!
//! ```text
//! cargo run --example queue
//! ```
//!
//! The queue lives in a temporary segment file, handed to the child by inheritance
//! (`spawn_child` / `from_env`); the file goes when the last of the two detaches.

#[cfg(any(qshm_linux, qshm_windows))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("consumer") => demo::consumer(),
        _ => demo::producer(),
    }
}

#[cfg(not(any(qshm_linux, qshm_windows)))]
fn main() {
    eprintln!("queue: qshm::mapped is for Linux and Windows; nothing to show on this platform");
}

#[cfg(any(qshm_linux, qshm_windows))]
mod demo {
    use std::process::Command;
    use std::time::Instant;

    use qshm::mapped::queue::{QueueOptions, Receiver, Sender};
    use qshm::mapped::{MappedSegment, ReceiveOptions};
    use qshm::ErrorKind;

    const MESSAGES: usize = 10_000;

    /// Message `i`: its number, then `i % 4089` bytes of `i as u8`.
    fn message(i: usize) -> Vec<u8> {
        let mut m = (i as u64).to_le_bytes().to_vec();
        m.resize(8 + i % 4089, i as u8);
        m
    }

    pub(crate) fn producer() -> Result<(), Box<dyn std::error::Error>> {
        let mut options = QueueOptions::new(4096);
        options.capacity(16 * 1024);
        let seg = MappedSegment::create_temporary(options.segment_size())?;
        let mut tx = Sender::create(seg, &options)?; // makes the queue, attaches as producer
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("consumer");
        let mut child = tx.segment().spawn_child(&mut cmd)?;
        let t = Instant::now();
        for i in 0..MESSAGES {
            tx.send(&message(i))?; // waits while the ring is full
        }
        // Closes the producer's end (the consumer drains, then is told) and keeps the
        // segment until the consumer is done: the last to detach removes the file.
        let seg = tx.close();
        let status = child.wait()?;
        seg.detach()?;
        println!(
            "producer {}: sent {MESSAGES} messages in {:?}; the consumer {status}",
            std::process::id(),
            t.elapsed()
        );
        if !status.success() {
            return Err("the consumer failed".into());
        }
        Ok(())
    }

    pub(crate) fn consumer() -> Result<(), Box<dyn std::error::Error>> {
        // A file segment arrives as a plain descriptor: accepted by opting in.
        let seg = MappedSegment::from_env(ReceiveOptions::new().allow_unsealed(true))?;
        let mut rx = Receiver::open(seg)?;
        let mut buf = vec![0u8; rx.max_message()];
        let mut received = 0;
        loop {
            match rx.recv_into(&mut buf) {
                Ok(n) => {
                    if buf[..n] != message(received)[..] {
                        return Err(format!("message {received} is wrong").into());
                    }
                    received += 1;
                }
                Err(e) if e.kind() == ErrorKind::Disconnected => break,
                Err(e) => return Err(e.into()),
            }
        }
        println!(
            "consumer {}: received {received} messages, every byte checked; then: the producer closed",
            std::process::id()
        );
        if received != MESSAGES {
            return Err("messages were lost".into());
        }
        Ok(())
    }
}
