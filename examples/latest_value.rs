//! A latest-value cell between two processes: this program publishes a position 2 000
//! times (one every 500 µs) while a reader process, started as its child, follows it with
//! `wait_next` and checks that every value it reads is whole; the reader is told
//! `Disconnected` when the writer closes its end.
//!
//! ```text
//! cargo run --example latest_value
//! ```
//!
//! A reader never blocks the writer: it may miss values (it sees the latest), never a torn
//! one.

#[cfg(any(qshm_linux, qshm_windows))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("reader") => demo::reader(),
        _ => demo::writer(),
    }
}

#[cfg(not(any(qshm_linux, qshm_windows)))]
fn main() {
    eprintln!(
        "latest_value: qshm::mapped is for Linux and Windows; nothing to show on this platform"
    );
}

#[cfg(any(qshm_linux, qshm_windows))]
mod demo {
    use std::time::Duration;

    use qshm::mapped::cell::{self, Reader, Writer};
    use qshm::mapped::{MappedSegment, ReceiveOptions};
    use qshm::ErrorKind;

    const VALUES: u64 = 2000;

    /// A position: x, y, z and their sum (so that a reader can check it is whole).
    fn encode(i: u64) -> [u8; 32] {
        let (x, y, z) = (i, i * 2, i * 3);
        let mut v = [0u8; 32];
        for (k, w) in [x, y, z, x + y + z].into_iter().enumerate() {
            v[8 * k..8 * k + 8].copy_from_slice(&w.to_le_bytes());
        }
        v
    }

    fn decode(v: &[u8]) -> Option<u64> {
        let w = |k: usize| u64::from_le_bytes(v[8 * k..8 * k + 8].try_into().unwrap());
        (v.len() == 32 && w(0) + w(1) + w(2) == w(3) && w(1) == 2 * w(0)).then(|| w(0))
    }

    pub(crate) fn writer() -> Result<(), Box<dyn std::error::Error>> {
        let seg = MappedSegment::create_temporary(cell::segment_size(32))?;
        let mut writer = Writer::create(seg, 32)?;
        writer.write(&encode(0))?;
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.arg("reader");
        let mut child = writer.segment().spawn_child(&mut cmd)?;
        for i in 1..=VALUES {
            writer.write(&encode(i))?;
            std::thread::sleep(Duration::from_micros(500));
        }
        // Closes the writer's end (the reader's wait_next is told Disconnected) and keeps
        // the segment until the reader is done: the last to detach removes the file.
        let seg = writer.close();
        let status = child.wait()?;
        seg.detach()?;
        println!(
            "writer {}: wrote {VALUES} positions; the reader {status}",
            std::process::id()
        );
        if !status.success() {
            return Err("the reader failed".into());
        }
        Ok(())
    }

    pub(crate) fn reader() -> Result<(), Box<dyn std::error::Error>> {
        let seg = MappedSegment::from_env(ReceiveOptions::new().allow_unsealed(true))?;
        let reader = Reader::open(seg)?;
        let (mut seen, mut last, mut reads) = (0u32, 0u64, 0u64);
        loop {
            match reader.wait_next(seen, Duration::from_secs(10)) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Disconnected => break,
                Err(e) => return Err(e.into()),
            }
            let (value, seq) = reader.read_vec()?;
            let i = decode(&value).ok_or("a torn value")?;
            if i < last {
                return Err("the positions went back".into());
            }
            (seen, last, reads) = (seq, i, reads + 1);
        }
        println!(
            "reader {}: read {reads} values as they came (the latest each time: some are skipped), none torn; the last position was {last} of {VALUES}",
            std::process::id()
        );
        if last != VALUES {
            return Err("the last position was missed".into());
        }
        Ok(())
    }
}
