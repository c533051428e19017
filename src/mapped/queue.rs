//! A bounded message queue between two processes, in a [`MappedSegment`]: one producer
//! ([`Sender`]), one consumer ([`Receiver`]), messages of any length up to a maximum chosen
//! at creation, copied in and out of a ring of bytes.
//!
//! ```
//! use qshm::mapped::queue::{QueueOptions, Receiver, Sender};
//! use qshm::mapped::MappedSegment;
//!
//! let options = QueueOptions::new(1024);                    // messages up to 1 KiB
//! let seg = MappedSegment::create_temporary(options.segment_size())?;
//! let path = seg.path().unwrap().to_owned();
//! let mut tx = Sender::create(seg, &options)?;
//! tx.send(b"hello")?;
//!
//! // Another process opens the same file:
//! let mut rx = Receiver::open(MappedSegment::open_file(&path)?)?;
//! assert_eq!(rx.recv()?, b"hello");
//! drop(tx);                                                  // closes the producer's end
//! assert_eq!(rx.recv().unwrap_err().kind(), qshm::ErrorKind::Disconnected);
//! # Ok::<(), qshm::Error>(())
//! ```
//!
//! # Guarantees
//!
//! * Messages arrive whole, in order, each once; [`send`](Sender::send) returns when the
//!   message is in the queue (not when it was received).
//! * Exactly one producer and one consumer: a second one gets
//!   [`ErrorKind::AlreadyAttached`] while the first lives.
//!   A process may take over the end of one that died (a restarted producer continues the
//!   queue); an end that was closed (dropped) stays closed.
//! * The other side gone — closed, or killed however it was (`kill -9` included) — is
//!   reported as [`ErrorKind::Disconnected`]: to a consumer
//!   once it has received every message the producer sent, to a producer when it would wait
//!   for room (or at once, for a closed consumer). A blocked side notices a killed peer
//!   within about 200 ms (it sleeps at most 100 ms between checks), by the same evidence
//!   the segment's lock uses to tell a dead holder (see the [module docs](super)).
//! * Waiting costs no CPU after a short spin (about 25 µs): a blocked side sleeps on a futex
//!   (Linux) or polls with backoff (elsewhere); the other side makes a system call to wake
//!   it only when it sleeps.
//! * A corrupt control block (garbage, another layout) is a typed error
//!   ([`ErrorKind::Layout`]), never a crash; a peer that breaks
//!   the protocol can make this side receive garbage bytes, never read outside the ring.
//!
//! # Layout
//!
//! The data area starts with a 256-byte control block, then the ring; `include/qshm.h`
//! describes both (`struct qshm_queue`) and implements both ends in C (`qshm_queue_send`,
//! `qshm_queue_recv` and their variants). A record is the message's length (4 bytes), 4
//! reserved bytes, the message and padding to a multiple of 8; a record that does not fit
//! before the end of the ring is preceded by a skip marker (length `0xffff_ffff`) and
//! written at the start. See `src/sys/queue.rs` for the protocol in full.
//!
//! # Async
//!
//! Not yet: an async wrapper polls [`Sender::try_send`] / [`Receiver::try_recv`] and, on
//! [`ErrorKind::WouldBlock`], waits for the other end's index
//! to change.

use std::fmt;
use std::time::Duration;

use super::MappedSegment;
use crate::backend::Wait;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::queue::{self as imp, End, Role, Sink};
use crate::AccessMode;

/// How to make a queue: the largest message, and the ring's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    max_message: usize,
    capacity: usize,
}

impl QueueOptions {
    /// A queue of messages up to `max_message` bytes (at least 1, at most 512 MiB minus 8),
    /// with a ring of twice the largest record (the least that always holds one message):
    /// raise it with [`capacity`](QueueOptions::capacity) to let the producer run ahead.
    pub fn new(max_message: usize) -> QueueOptions {
        QueueOptions {
            max_message,
            capacity: 0,
        }
    }

    /// The ring's size in bytes, rounded up to a power of two (and at least what
    /// [`new`](QueueOptions::new) chose): each message takes its length rounded up to 8,
    /// plus 8.
    pub fn capacity(&mut self, bytes: usize) -> &mut QueueOptions {
        self.capacity = bytes;
        self
    }

    /// The ring's size these options give (0 when `max_message` is out of range).
    pub fn ring_size(&self) -> usize {
        match imp::min_ring_for(self.max_message) {
            Some(min) if self.max_message > 0 => self
                .capacity
                .checked_next_power_of_two()
                .unwrap_or(usize::MAX)
                .max(min),
            _ => 0,
        }
    }

    /// The data size of a segment that holds this queue: to give to
    /// [`MappedSegment::create_temporary`] and the other constructors.
    pub fn segment_size(&self) -> usize {
        imp::RING_OFFSET + self.ring_size()
    }

    /// Writes an empty queue into `seg`'s data area, under its lock.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`]: `max_message` out of range, or the segment too small
    /// ([`segment_size`](QueueOptions::segment_size)); [`ErrorKind::AlreadyExists`]: the
    /// data area is not all zeros at its start (a queue, or anything else, is there);
    /// [`ErrorKind::PermissionDenied`]: a read-only attachment; the lock's errors.
    pub fn format(&self, seg: &MappedSegment) -> Result<()> {
        let op = Operation::QueueOpen;
        let label = seg.label.as_str();
        let ring = self.ring_size();
        if ring == 0 || ring > imp::MAX_RING {
            return Err(
                Error::new(ErrorKind::InvalidSize, op, label).with_detail(format!(
                    "messages of up to {} bytes in a ring of {} bytes: the largest message must \
                 be 1 to 2^29 - 8 bytes, the ring at most 2^30 bytes",
                    self.max_message, self.capacity
                )),
            );
        }
        if seg.size() < imp::RING_OFFSET + ring {
            return Err(
                Error::new(ErrorKind::InvalidSize, op, label).with_detail(format!(
                    "the segment's {} bytes cannot hold the queue's {}",
                    seg.size(),
                    imp::RING_OFFSET + ring
                )),
            );
        }
        if seg.access_mode() != AccessMode::ReadWrite {
            return Err(Error::new(ErrorKind::PermissionDenied, op, label)
                .with_detail("a queue needs a read-write attachment"));
        }
        let _guard = seg.lock().map_err(|e| e.with_op(op))?;
        if !imp::is_blank(seg) {
            return Err(Error::new(ErrorKind::AlreadyExists, op, label)
                .with_detail("the data area is in use (its first 8 bytes are not zero)"));
        }
        imp::format(seg, ring, self.max_message);
        Ok(())
    }
}

/// The producer's end of a queue ([`module docs`](self)). Closes the end when dropped: the
/// consumer then receives what is queued, then [`ErrorKind::Disconnected`].
pub struct Sender {
    end: End,
}

impl Sender {
    /// Writes an empty queue into `seg` ([`QueueOptions::format`]) and attaches as its
    /// producer.
    ///
    /// # Errors
    ///
    /// As [`QueueOptions::format`] and [`open`](Sender::open).
    pub fn create(seg: MappedSegment, options: &QueueOptions) -> Result<Sender> {
        options.format(&seg)?;
        Sender::open(seg)
    }

    /// Attaches to the queue in `seg` as its producer.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Layout`]: no queue, or a corrupt one; [`ErrorKind::Unsupported`]: another
    /// layout version; [`ErrorKind::AlreadyAttached`]: a live producer is attached;
    /// [`ErrorKind::Disconnected`]: the producer's end was closed;
    /// [`ErrorKind::PermissionDenied`]: a read-only attachment.
    pub fn open(seg: MappedSegment) -> Result<Sender> {
        Ok(Sender {
            end: End::open(seg, Role::Producer)?,
        })
    }

    /// Sends `msg` if there is room now.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WouldBlock`]: the queue is full; [`ErrorKind::Disconnected`]: the
    /// consumer closed its end, or (checked at most every 100 ms) died;
    /// [`ErrorKind::InvalidSize`]: longer than [`max_message`](Sender::max_message);
    /// [`ErrorKind::Layout`]: the queue is corrupt.
    #[inline]
    pub fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_with(msg, Wait::Poll)
    }

    /// Sends `msg`, waiting for room as long as it takes.
    ///
    /// # Errors
    ///
    /// As [`try_send`](Sender::try_send), without `WouldBlock`.
    #[inline]
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_with(msg, Wait::Forever)
    }

    /// Sends `msg`, waiting for room at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`]: still full after `timeout`; otherwise as
    /// [`send`](Sender::send).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_with(msg, Wait::For(timeout))
    }

    #[inline]
    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        let (ring, owners, label) = self.end.parts();
        if ring.try_push(msg, label)? {
            return Ok(());
        }
        ring.wait_until(wait, owners, Operation::QueueSend, label, |r| {
            Ok(r.try_push(msg, label)?.then_some(()))
        })
    }

    /// [`send`](Sender::send) as a future, for any executor (feature `async`; see
    /// [`qshm::asynchronous`](crate::asynchronous)): tries, and again after a backoff of
    /// 50 µs to 2 ms while the queue is full. Dropping it sends nothing.
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn send_async<'a>(
        &'a mut self,
        msg: &'a [u8],
    ) -> impl std::future::Future<Output = Result<()>> + 'a {
        let label = self.segment().label.clone();
        crate::asynchronous::retrying(label, move || self.try_send(msg))
    }

    /// Closes the producer's end, as dropping does (the consumer receives what is queued,
    /// then [`ErrorKind::Disconnected`]), and gives the segment back: to keep a temporary
    /// segment until the consumer is done with it, say.
    pub fn close(self) -> MappedSegment {
        self.end.into_segment()
    }

    /// The largest message this queue takes.
    pub fn max_message(&self) -> usize {
        self.end.ring.max_message()
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> usize {
        self.end.ring.ring_size()
    }

    /// The segment the queue lives in.
    pub fn segment(&self) -> &MappedSegment {
        self.end.segment()
    }
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("end", &self.end).finish()
    }
}

/// The consumer's end of a queue ([`module docs`](self)). Closes the end when dropped: the
/// producer's next send gets [`ErrorKind::Disconnected`].
pub struct Receiver {
    end: End,
}

impl Receiver {
    /// Writes an empty queue into `seg` ([`QueueOptions::format`]) and attaches as its
    /// consumer.
    ///
    /// # Errors
    ///
    /// As [`QueueOptions::format`] and [`open`](Receiver::open).
    pub fn create(seg: MappedSegment, options: &QueueOptions) -> Result<Receiver> {
        options.format(&seg)?;
        Receiver::open(seg)
    }

    /// Attaches to the queue in `seg` as its consumer.
    ///
    /// # Errors
    ///
    /// As [`Sender::open`], for the consumer's end.
    pub fn open(seg: MappedSegment) -> Result<Receiver> {
        Ok(Receiver {
            end: End::open(seg, Role::Consumer)?,
        })
    }

    fn recv_with(&mut self, sink: &mut Sink<'_>, wait: Wait) -> Result<usize> {
        let (ring, owners, label) = self.end.parts();
        let n = match ring.try_pop(sink, label)? {
            Some(n) => n,
            None => ring.wait_until(wait, owners, Operation::QueueReceive, label, |r| {
                r.try_pop(sink, label)
            })?,
        };
        if let Sink::Slice(buf) = sink {
            if buf.len() < n {
                return Err(
                    Error::new(ErrorKind::InvalidSize, Operation::QueueReceive, label).with_detail(
                        format!(
                            "the next message has {n} bytes, the buffer {}: it stays in the queue",
                            buf.len()
                        ),
                    ),
                );
            }
        }
        Ok(n)
    }

    /// Receives the next message if there is one.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WouldBlock`]: the queue is empty; [`ErrorKind::Disconnected`]: empty,
    /// and the producer closed its end or (checked at most every 100 ms) died;
    /// [`ErrorKind::Layout`]: the queue is corrupt.
    pub fn try_recv(&mut self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.recv_with(&mut Sink::Vec(&mut v), Wait::Poll)?;
        Ok(v)
    }

    /// Receives the next message, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Receiver::try_recv), without `WouldBlock`.
    pub fn recv(&mut self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.recv_with(&mut Sink::Vec(&mut v), Wait::Forever)?;
        Ok(v)
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Timeout`]: still empty after `timeout`; otherwise as
    /// [`recv`](Receiver::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.recv_with(&mut Sink::Vec(&mut v), Wait::For(timeout))?;
        Ok(v)
    }

    /// [`recv`](Receiver::recv) as a future, for any executor (feature `async`; see
    /// [`qshm::asynchronous`](crate::asynchronous)): tries, and again after a backoff of
    /// 50 µs to 2 ms while the queue is empty. Dropping it receives nothing.
    #[cfg(feature = "async")]
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn recv_async(&mut self) -> impl std::future::Future<Output = Result<Vec<u8>>> + '_ {
        let label = self.segment().label.clone();
        crate::asynchronous::retrying(label, move || self.try_recv())
    }

    /// Receives the next message into `buf` if there is one; returns its length.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Receiver::try_recv); [`ErrorKind::InvalidSize`] when the message is
    /// longer than `buf` (it stays in the queue).
    #[inline]
    pub fn try_recv_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.recv_with(&mut Sink::Slice(buf), Wait::Poll)
    }

    /// Receives the next message into `buf`, waiting as long as it takes; returns its length.
    ///
    /// # Errors
    ///
    /// As [`recv`](Receiver::recv) and [`try_recv_into`](Receiver::try_recv_into).
    #[inline]
    pub fn recv_into(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.recv_with(&mut Sink::Slice(buf), Wait::Forever)
    }

    /// Receives the next message into `buf`, waiting at most `timeout`; returns its length.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Receiver::recv_timeout) and
    /// [`try_recv_into`](Receiver::try_recv_into).
    pub fn recv_into_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        self.recv_with(&mut Sink::Slice(buf), Wait::For(timeout))
    }

    /// Closes the consumer's end, as dropping does (the producer's sends get
    /// [`ErrorKind::Disconnected`]), and gives the segment back.
    pub fn close(self) -> MappedSegment {
        self.end.into_segment()
    }

    /// The largest message this queue takes.
    pub fn max_message(&self) -> usize {
        self.end.ring.max_message()
    }

    /// The segment the queue lives in.
    pub fn segment(&self) -> &MappedSegment {
        self.end.segment()
    }
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("end", &self.end).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_sync() {
        fn send<T: Send>() {}
        send::<Sender>();
        send::<Receiver>();
    }

    #[test]
    fn in_one_process() {
        let mut o = QueueOptions::new(100);
        o.capacity(512);
        let seg = MappedSegment::create_temporary(o.segment_size()).unwrap();
        let path = seg.path().unwrap().to_owned();
        let mut tx = Sender::create(seg, &o).unwrap();
        let mut rx = Receiver::open(MappedSegment::open_file(&path).unwrap()).unwrap();
        assert_eq!(rx.try_recv().unwrap_err().kind(), ErrorKind::WouldBlock);
        for round in 0..1000u32 {
            let len = (round as usize * 7) % 101;
            let msg: Vec<u8> = (0..len).map(|i| (i as u32 + round) as u8).collect();
            tx.send(&msg).unwrap();
            if round % 3 == 0 {
                tx.send(&msg).unwrap();
                assert_eq!(rx.recv().unwrap(), msg);
            }
            assert_eq!(rx.recv().unwrap(), msg);
        }
        assert_eq!(
            tx.try_send(&[0; 101]).unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
        while tx.try_send(&[1; 100]).is_ok() {}
        assert_eq!(
            tx.send_timeout(&[1; 100], Duration::from_millis(50))
                .unwrap_err()
                .kind(),
            ErrorKind::Timeout
        );
        let mut small = [0u8; 10];
        assert_eq!(
            rx.try_recv_into(&mut small).unwrap_err().kind(),
            ErrorKind::InvalidSize
        );
        let _seg = tx.close(); // as a drop, keeping the segment
        while rx.try_recv().is_ok() {}
        assert_eq!(rx.recv().unwrap_err().kind(), ErrorKind::Disconnected);
    }
}
