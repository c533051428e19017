//! A latest-value cell in a [`MappedSegment`]: one [`Writer`] publishes values (of any
//! length up to a capacity chosen at creation), any number of [`Reader`]s, in any process,
//! read the latest one. A seqlock: readers never block the writer, never see a torn value,
//! and can wait for the next value.
//!
//! ```
//! use qshm::mapped::cell::{self, Reader, Writer};
//! use qshm::mapped::MappedSegment;
//! use std::time::Duration;
//!
//! let seg = MappedSegment::create_temporary(cell::segment_size(64))?;
//! let path = seg.path().unwrap().to_owned();
//! let mut writer = Writer::create(seg, 64)?;
//! let first = writer.write(b"position 1")?;
//!
//! // Another process (or thread) opens the same file:
//! let reader = Reader::open(MappedSegment::open_file(&path)?)?;
//! let (value, seq) = reader.read_vec()?;
//! assert_eq!((value.as_slice(), seq), (&b"position 1"[..], first));
//! writer.write(b"position 2")?;
//! let next = reader.wait_next(seq, Duration::from_secs(1))?;
//! assert!(next != seq);
//! # Ok::<(), qshm::Error>(())
//! ```
//!
//! # Guarantees
//!
//! * A read returns a value exactly as one `write` left it, with its sequence number (even;
//!   0 before the first write): readers retry while a write is under way (lock-free for the
//!   writer, which never waits for a reader).
//! * Exactly one writer: a second gets
//!   [`ErrorKind::AlreadyAttached`] while the first lives;
//!   a process may take over from a dead one.
//! * [`Reader::wait_next`] sleeps (futex on Linux) until a newer value is published, and
//!   reports [`ErrorKind::Disconnected`] when the writer
//!   closed its end or died (checked every 100 ms while it waits). A writer killed half-way
//!   through a write leaves the old value torn: readers get `Disconnected` after retrying
//!   for about 10 ms, until a new writer writes.
//! * The sequence number is 32 bits: a reader that stalls for exactly 2^31 writes between
//!   its two loads could take a torn copy for a whole one (a stall of that length is hours
//!   of writes at full speed).
//!
//! # Layout
//!
//! The data area starts with a 128-byte control block, then the value; `include/qshm.h`
//! describes it (`struct qshm_cell`) and implements writer and reader in C. Copies are made
//! with relaxed atomic 64-bit loads and stores between fences, the only way a seqlock is
//! free of data races in Rust's memory model (see `src/sys/cell.rs`).

use std::time::Duration;

use super::MappedSegment;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::cell as imp;
use crate::AccessMode;

/// The data size of a segment that holds a cell of values up to `max_value` bytes (0 when
/// `max_value` is more than 1 GiB).
pub fn segment_size(max_value: usize) -> usize {
    imp::capacity_for(max_value).map_or(0, |c| imp::VALUE_OFFSET + c)
}

/// The writer of a cell ([module docs](self)). Dropping it closes the writer's end: waiting
/// readers get [`ErrorKind::Disconnected`].
#[derive(Debug)]
pub struct Writer {
    cell: imp::Cell,
}

impl Writer {
    /// Writes an empty cell for values up to `max_value` bytes into `seg`, under its lock,
    /// and attaches as its writer.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`]: `max_value` is 0 or above 1 GiB, or the segment is
    /// smaller than [`segment_size`]; [`ErrorKind::AlreadyExists`]: the data area does not
    /// start with 8 zero bytes; [`ErrorKind::PermissionDenied`]: a read-only attachment;
    /// the lock's errors.
    pub fn create(seg: MappedSegment, max_value: usize) -> Result<Writer> {
        let op = Operation::CellOpen;
        let label = seg.label();
        let Some(capacity) = imp::capacity_for(max_value).filter(|_| max_value > 0) else {
            return Err(Error::new(ErrorKind::InvalidSize, op, label)
                .with_detail(format!("a cell of {max_value} bytes (1 byte to 1 GiB)")));
        };
        if seg.size() < imp::VALUE_OFFSET + capacity {
            return Err(
                Error::new(ErrorKind::InvalidSize, op, label).with_detail(format!(
                    "the segment's {} bytes cannot hold the cell's {}",
                    seg.size(),
                    imp::VALUE_OFFSET + capacity
                )),
            );
        }
        if seg.access_mode() != AccessMode::ReadWrite {
            return Err(Error::new(ErrorKind::PermissionDenied, op, label)
                .with_detail("a cell needs a read-write attachment"));
        }
        {
            let _guard = seg.lock().map_err(|e| e.with_op(op))?;
            if !crate::sys::queue::is_blank(&seg) {
                return Err(Error::new(ErrorKind::AlreadyExists, op, label)
                    .with_detail("the data area is in use (its first 8 bytes are not zero)"));
            }
            imp::format(&seg, capacity);
        }
        Writer::open(seg)
    }

    /// Attaches to the cell in `seg` as its writer.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Layout`]: no cell, or a corrupt one; [`ErrorKind::Unsupported`]: another
    /// layout version; [`ErrorKind::AlreadyAttached`]: a live writer is attached;
    /// [`ErrorKind::Disconnected`]: the writer's end was closed;
    /// [`ErrorKind::PermissionDenied`]: a read-only attachment.
    pub fn open(seg: MappedSegment) -> Result<Writer> {
        Ok(Writer {
            cell: imp::Cell::open(seg, true)?,
        })
    }

    /// Publishes `value`; returns its sequence number.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`]: longer than [`capacity`](Writer::capacity);
    /// [`ErrorKind::Disconnected`]: another process took this writer's end over (judging
    /// this one dead).
    #[inline]
    pub fn write(&mut self, value: &[u8]) -> Result<u32> {
        self.cell.write(value)
    }

    /// Publishes a value of `len` bytes that `fill` writes into a buffer (zeroed first);
    /// returns its sequence number. The value is built in this process's memory and then
    /// copied in, as by [`write`](Writer::write): readers may read the cell at any moment,
    /// so no slice of it is lent.
    ///
    /// # Errors
    ///
    /// As [`write`](Writer::write); `fill` is not called when `len` is too long.
    pub fn write_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<u32> {
        if len > self.cell.capacity() {
            return self.cell.write(&vec![0u8; self.cell.capacity() + 1]); // the size error
        }
        let mut buf = vec![0u8; len];
        fill(&mut buf);
        self.cell.write(&buf)
    }

    /// Closes the writer's end, as dropping does (waiting readers get
    /// [`ErrorKind::Disconnected`]), and gives the segment back.
    pub fn close(self) -> MappedSegment {
        self.cell.into_segment()
    }

    /// The largest value, in bytes (the `max_value` given at creation, rounded up to 8).
    pub fn capacity(&self) -> usize {
        self.cell.capacity()
    }

    /// The segment the cell lives in.
    pub fn segment(&self) -> &MappedSegment {
        self.cell.segment()
    }
}

/// A reader of a cell ([module docs](self)): any number, in any process.
#[derive(Debug)]
pub struct Reader {
    cell: imp::Cell,
}

impl Reader {
    /// Opens the cell in `seg` for reading.
    ///
    /// # Errors
    ///
    /// As [`Writer::open`], but any number of readers may open a cell.
    pub fn open(seg: MappedSegment) -> Result<Reader> {
        Ok(Reader {
            cell: imp::Cell::open(seg, false)?,
        })
    }

    /// Copies the latest value into `buf`; returns its length and sequence number.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`]: the value is longer than `buf` (a buffer of
    /// [`capacity`](Reader::capacity) bytes always fits); [`ErrorKind::Disconnected`]: the
    /// writer died while writing it; [`ErrorKind::Layout`]: the cell is corrupt.
    #[inline]
    pub fn read(&self, buf: &mut [u8]) -> Result<(usize, u32)> {
        self.cell.read(buf)
    }

    /// The latest value and its sequence number.
    ///
    /// # Errors
    ///
    /// As [`read`](Reader::read).
    pub fn read_vec(&self) -> Result<(Vec<u8>, u32)> {
        let mut buf = vec![0u8; self.cell.capacity()];
        let (len, seq) = self.cell.read(&mut buf)?;
        buf.truncate(len);
        Ok((buf, seq))
    }

    /// The sequence number of the latest value (odd while one is being written), without
    /// reading it.
    pub fn seq(&self) -> u32 {
        self.cell.seq()
    }

    /// Waits, at most `timeout`, until a value newer than the one of sequence number `seen`
    /// is published; returns its sequence number (then [`read`](Reader::read) it). Returns at
    /// once if there is one already.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`]; [`ErrorKind::Disconnected`]: the writer closed its end or
    /// died, and nothing newer than `seen` is there.
    pub fn wait_next(&self, seen: u32, timeout: Duration) -> Result<u32> {
        self.cell.wait_next(seen, Some(timeout))
    }

    /// [`wait_next_forever`](Reader::wait_next_forever) as a future, for any executor
    /// (feature `async`; see [`qshm::asynchronous`](crate::asynchronous)): looks, and again
    /// after a backoff of 50 µs to 2 ms. Dropping it leaves nothing behind.
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn next_async(&self, seen: u32) -> impl std::future::Future<Output = Result<u32>> + '_ {
        let label = self.segment().label.clone();
        crate::asynchronous::retrying_until(label, move || {
            match self.cell.wait_next(seen, Some(Duration::ZERO)) {
                Err(e) if e.kind() == crate::ErrorKind::Timeout => Ok(None),
                other => other.map(Some),
            }
        })
    }

    /// As [`wait_next`](Reader::wait_next), without a timeout.
    ///
    /// # Errors
    ///
    /// As [`wait_next`](Reader::wait_next), without `Timeout`.
    pub fn wait_next_forever(&self, seen: u32) -> Result<u32> {
        self.cell.wait_next(seen, None)
    }

    /// The largest value, in bytes.
    pub fn capacity(&self) -> usize {
        self.cell.capacity()
    }

    /// The segment the cell lives in.
    pub fn segment(&self) -> &MappedSegment {
        self.cell.segment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Writer>();
        send_sync::<Reader>();
    }

    #[test]
    fn in_one_process() {
        let seg = MappedSegment::create_temporary(segment_size(20)).unwrap();
        let path = seg.path().unwrap().to_owned();
        let dup = || MappedSegment::open_file(&path).unwrap();
        let mut w = Writer::create(dup(), 20).unwrap();
        assert_eq!(w.capacity(), 24);
        assert_eq!(
            Writer::open(dup()).unwrap_err().kind(),
            ErrorKind::AlreadyAttached
        );
        let r = Reader::open(dup()).unwrap();
        assert_eq!(r.read_vec().unwrap(), (vec![], 0));
        let s = w.write(b"hello, world").unwrap();
        assert_eq!(r.read_vec().unwrap(), (b"hello, world".to_vec(), s));
        assert_eq!(
            r.wait_next(s, Duration::from_millis(30))
                .unwrap_err()
                .kind(),
            ErrorKind::Timeout
        );
        let s2 = w.write_with(3, |b| b.copy_from_slice(b"abc")).unwrap();
        assert_eq!(r.wait_next(s, Duration::from_secs(1)).unwrap(), s2);
        let mut small = [0u8; 2];
        assert_eq!(
            r.read(&mut small).unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
        assert_eq!(
            w.write(&[0; 25]).unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
        let _seg = w.close(); // as a drop, keeping the segment
        assert_eq!(
            r.wait_next(s2, Duration::from_secs(5)).unwrap_err().kind(),
            ErrorKind::Disconnected
        );
    }
}
