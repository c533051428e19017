//! A bounded single-producer, single-consumer message queue in a mapped segment's data area:
//! the protocol (`struct qshm_queue` in `include/qshm.h`, which implements the same in C).
//!
//! # Layout (version 1, native byte order)
//!
//! ```text
//! offset  size  field          written by
//!   0      8    magic          creator: "QSHM\0QUE", last (release) after the rest
//!   8      4    version        creator: 1
//!  12      4    ring_offset    creator: 256
//!  16      4    ring_size      creator: a power of two, 64 ..= 2^30
//!  20      4    max_message    creator: 1 ..= ring_size / 2 - 8
//!  64      4    tail           producer: bytes ever written, mod 2^32 (futex word)
//!  68      4    space_waiters  producer: 1 while it sleeps waiting for space
//!  72      8    producer       producer: its identity, 0 none yet, ~0 closed (sys/peer.rs)
//! 128      4    head           consumer: bytes ever consumed, mod 2^32 (futex word)
//! 132      4    data_waiters   consumer: 1 while it sleeps waiting for data
//! 136      8    consumer       consumer: its identity, 0 none yet, ~0 closed
//! 256   ring_size  the ring
//! ```
//!
//! # Records
//!
//! A message of `n` bytes is a record of `8 + round_up(n, 8)` bytes at `tail % ring_size`:
//! a 4-byte length `n`, 4 reserved bytes (0), the message, padding. A record never wraps:
//! when it does not fit before the end of the ring, the producer writes a *skip marker* (a
//! length of `0xffff_ffff`) in the rest of the ring and the record at offset 0; the consumer
//! skips to the ring's start when it reads one. A record is at most half the ring, so a
//! message always fits in an empty queue wherever the indices stand.
//!
//! # Synchronisation
//!
//! The producer writes a record, then stores `tail` with release; the consumer loads `tail`
//! with acquire, copies the record out, then stores `head` with release, after which the
//! producer may write those bytes again (it loads `head` with acquire). So a record's bytes
//! are never read while written, by this protocol; a peer that breaks it can make the
//! receiver read garbage, never outside the ring (offsets are masked, lengths checked:
//! a corrupt queue is an error, not undefined behaviour of this process).
//!
//! A side that finds the queue empty (full) spins a little, then announces itself in
//! `data_waiters` (`space_waiters`), checks again and sleeps on `tail` (`head`) with a
//! futex; the other side, after publishing, checks the waiter word and wakes only when it is
//! set (a sequentially consistent fence on each side between the store and the load: the
//! fast path makes no system call). Sleeps last at most 100 ms, and a sleeper asks whether
//! its peer is alive ([`super::peer`]) after each 100 ms of waiting by the clock (where the
//! word is polled, sleeps return early and never time out): a peer killed with `SIGKILL` is
//! reported as [`ErrorKind::Disconnected`] within about 200 ms, after the messages it sent
//! are drained.

use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::peer::{self, PeerState};
use super::wait_word::{self, Woke};
use crate::backend::Wait;
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::mapped::MappedSegment;
use crate::sys::word_lock::Owners;

/// The first 8 bytes of a queue's control block.
pub(crate) const MAGIC: [u8; 8] = *b"QSHM\0QUE";
/// The layout version this build reads and writes.
pub(crate) const VERSION: u32 = 1;
/// Where the ring starts in the data area.
pub(crate) const RING_OFFSET: usize = 256;
/// The smallest and largest rings.
pub(crate) const MIN_RING: usize = 64;
pub(crate) const MAX_RING: usize = 1 << 30;
/// A record's header: length and a reserved word.
const RECORD_HEADER: u32 = 8;
/// The length of a skip marker.
const SKIP: u32 = u32::MAX;
/// How often a waiter spins before it sleeps (about 25 µs: longer than a wake-up).
const SPINS: u32 = 1000;
/// The longest sleep between two checks of the peer's liveness.
const SLICE: Duration = Duration::from_millis(100);

/// The control block (`struct qshm_queue` in `qshm.h`). Every field is accessed atomically:
/// the block is shared with other processes.
#[repr(C)]
pub(crate) struct Control {
    magic: AtomicU64,
    version: AtomicU32,
    ring_offset: AtomicU32,
    ring_size: AtomicU32,
    max_message: AtomicU32,
    reserved0: [AtomicU32; 10],
    tail: AtomicU32,
    space_waiters: AtomicU32,
    producer: AtomicU64,
    reserved1: [AtomicU64; 6],
    head: AtomicU32,
    data_waiters: AtomicU32,
    consumer: AtomicU64,
    reserved2: [AtomicU64; 14],
}

const _: () = {
    assert!(std::mem::offset_of!(Control, version) == 8);
    assert!(std::mem::offset_of!(Control, ring_offset) == 12);
    assert!(std::mem::offset_of!(Control, ring_size) == 16);
    assert!(std::mem::offset_of!(Control, max_message) == 20);
    assert!(std::mem::offset_of!(Control, tail) == 64);
    assert!(std::mem::offset_of!(Control, space_waiters) == 68);
    assert!(std::mem::offset_of!(Control, producer) == 72);
    assert!(std::mem::offset_of!(Control, head) == 128);
    assert!(std::mem::offset_of!(Control, data_waiters) == 132);
    assert!(std::mem::offset_of!(Control, consumer) == 136);
    assert!(std::mem::size_of::<Control>() == RING_OFFSET);
};

/// The size of the record of a message of `len` bytes.
#[inline]
fn record_size(len: u32) -> u32 {
    RECORD_HEADER + ((len + 7) & !7)
}

/// The ring size a queue of messages up to `max_message` bytes needs at least.
pub(crate) fn min_ring_for(max_message: usize) -> Option<usize> {
    let rec = u32::try_from(max_message)
        .ok()
        .filter(|&m| m <= (MAX_RING as u32) / 2 - RECORD_HEADER)?;
    Some(
        (2 * record_size(rec) as usize)
            .next_power_of_two()
            .max(MIN_RING),
    )
}

/// Where a received message goes.
#[derive(Debug)]
pub(crate) enum Sink<'a> {
    /// A caller's buffer; a message larger than it stays in the queue.
    Slice(&'a mut [u8]),
    /// A vector, cleared and filled with the message.
    Vec(&'a mut Vec<u8>),
}

/// Which end a [`Ring`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Producer,
    Consumer,
}

/// One end of a queue: pointers into a mapping that its owner keeps alive, and this end's
/// own index and cached view of the other's.
pub(crate) struct Ring {
    ctl: NonNull<Control>,
    ring: NonNull<u8>,
    size: u32,
    max_message: u32,
    role: Role,
    me: u64,
    /// This end's index (only this end writes it).
    pos: u32,
    /// The other end's index, as last loaded.
    seen: u32,
    /// When the peer's liveness was last asked by a non-blocking call.
    last_check: Option<Instant>,
}

// SAFETY: the pointers address a shared mapping that stays mapped while the value lives (the
// contract of `open`), accessed atomically (control block) or as the protocol allows (the
// ring); nothing is tied to the thread that made the value.
unsafe impl Send for Ring {}
// SAFETY: `&Ring` methods only load the control block's atomics.
unsafe impl Sync for Ring {}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("role", &self.role)
            .field("ring_size", &self.size)
            .field("max_message", &self.max_message)
            .finish_non_exhaustive()
    }
}

fn corrupt(op: Operation, label: &str, what: String) -> Error {
    Error::new(ErrorKind::Layout, op, label).with_detail(format!("corrupt queue: {what}"))
}

/// Whether the data area of `seg` starts with 8 zero bytes (nothing formatted there).
/// `false` for a data area shorter than 8 bytes (nothing fits there anyway).
pub(crate) fn is_blank(seg: &MappedSegment) -> bool {
    if seg.size() < 8 {
        return false;
    }
    // SAFETY: the data area is page-aligned (at least 64-aligned: `header_size` is a
    // multiple of 64) and mapped for `seg.size() >= 8` bytes while `seg` is borrowed; the
    // word is only accessed atomically.
    unsafe { (*seg.as_ptr().cast::<AtomicU64>()).load(Ordering::Acquire) == 0 }
}

/// Writes a new, empty queue's control block into `seg`'s data area. The caller holds the
/// segment's lock and saw it [blank](is_blank), so that no process uses the area yet (were
/// one to, it would see a queue being made, never memory out of bounds: all the stores are
/// atomic).
///
/// Panics unless `ring_size` is a power of two in `MIN_RING..=MAX_RING` that fits in the
/// data area after the control block, `max_message` is `1..=ring_size / 2 - 8`, and the
/// segment is mapped writable.
pub(crate) fn format(seg: &MappedSegment, ring_size: usize, max_message: usize) {
    assert!(
        ring_size.is_power_of_two()
            && (MIN_RING..=MAX_RING).contains(&ring_size)
            && RING_OFFSET + ring_size <= seg.size()
            && max_message > 0
            && record_size(max_message as u32) as usize <= ring_size / 2
            && seg.inner().is_writable()
    );
    // SAFETY: the control block lies at the start of the data area, which is mapped
    // writable (asserted) for at least RING_OFFSET bytes while `seg` is borrowed, and
    // 64-aligned; it holds only atomics, and every process accesses it only atomically.
    let ctl = unsafe { &*seg.as_mut_ptr().cast::<Control>() };
    ctl.version.store(VERSION, Ordering::Relaxed);
    ctl.ring_offset.store(RING_OFFSET as u32, Ordering::Relaxed);
    ctl.ring_size.store(ring_size as u32, Ordering::Relaxed);
    ctl.max_message.store(max_message as u32, Ordering::Relaxed);
    ctl.tail.store(0, Ordering::Relaxed);
    ctl.head.store(0, Ordering::Relaxed);
    ctl.space_waiters.store(0, Ordering::Relaxed);
    ctl.data_waiters.store(0, Ordering::Relaxed);
    ctl.producer.store(0, Ordering::Relaxed);
    ctl.consumer.store(0, Ordering::Relaxed);
    ctl.magic
        .store(u64::from_ne_bytes(MAGIC), Ordering::Release);
}

/// One end of a queue with the segment it lives in: the segment keeps the mapping the
/// ring points into alive, and goes only after the end is closed.
pub(crate) struct End {
    pub(crate) ring: Ring,
    seg: MappedSegment,
}

impl End {
    /// Attaches to the queue in `seg` as `role`, after validating its control block.
    pub(crate) fn open(seg: MappedSegment, role: Role) -> Result<End> {
        let op = Operation::QueueOpen;
        let label = seg.label();
        let owners = match seg.inner().owners() {
            Some(o) if seg.inner().is_writable() => o,
            _ => {
                return Err(Error::new(ErrorKind::PermissionDenied, op, label)
                    .with_detail("a queue needs a read-write attachment of a writable segment"))
            }
        };
        // SAFETY: the data area is 64-aligned and mapped writable (checked) for
        // `seg.size()` bytes for as long as `seg` lives, which the returned `End` owns and
        // drops after the ring; the control block is accessed only atomically.
        let ring = unsafe { Ring::open(seg.as_mut_ptr(), seg.size(), role, owners, label)? };
        Ok(End { ring, seg })
    }

    pub(crate) fn segment(&self) -> &MappedSegment {
        &self.seg
    }

    /// Closes the end (as dropping it does) and gives the segment back.
    pub(crate) fn into_segment(self) -> MappedSegment {
        self.ring.close();
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so `seg` is moved out exactly once;
        // the ring, left behind, owns nothing (pointers and numbers) and needs no drop.
        unsafe { std::ptr::read(&this.seg) }
    }

    /// The ring, the liveness evidence and the label, borrowed together.
    pub(crate) fn parts(&mut self) -> (&mut Ring, &dyn Owners, &str) {
        let owners = self.seg.inner().owners().expect("checked at open");
        (&mut self.ring, owners, self.seg.label())
    }
}

impl Drop for End {
    fn drop(&mut self) {
        self.ring.close();
    }
}

impl std::fmt::Debug for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("End")
            .field("segment", &self.seg.label())
            .field("ring", &self.ring)
            .finish()
    }
}

impl Ring {
    /// Validates the control block at `data` (`len` bytes) and attaches as `role`.
    ///
    /// # Safety
    ///
    /// `data` must be 8-aligned, mapped writable for `len` bytes for as long as the returned
    /// value lives, and every process must access the control block only atomically.
    unsafe fn open(
        data: *mut u8,
        len: usize,
        role: Role,
        owners: &dyn Owners,
        label: &str,
    ) -> Result<Ring> {
        let op = Operation::QueueOpen;
        if len < RING_OFFSET + MIN_RING {
            return Err(
                Error::new(ErrorKind::InvalidSize, op, label).with_detail(format!(
                    "the data area ({len} bytes) is too small for a queue ({} bytes at least)",
                    RING_OFFSET + MIN_RING
                )),
            );
        }
        // SAFETY: the control block lies at the start of the area, mapped and aligned (the
        // caller's contract), and holds only atomics.
        let ctl = unsafe { &*data.cast::<Control>() };
        let magic = ctl.magic.load(Ordering::Acquire).to_ne_bytes();
        if magic != MAGIC {
            return Err(Error::new(ErrorKind::Layout, op, label)
                .with_detail("not a queue (no \"QSHM\\0QUE\" at the start of the data area)"));
        }
        let version = ctl.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(
                Error::new(ErrorKind::Unsupported, op, label).with_detail(format!(
                    "queue layout version {version} (this build reads version {VERSION})"
                )),
            );
        }
        let offset = ctl.ring_offset.load(Ordering::Relaxed) as usize;
        let size = ctl.ring_size.load(Ordering::Relaxed) as usize;
        let max = ctl.max_message.load(Ordering::Relaxed);
        if offset != RING_OFFSET
            || !size.is_power_of_two()
            || !(MIN_RING..=MAX_RING).contains(&size)
            || offset + size > len
            || max == 0
            || record_size(max) as usize > size / 2
        {
            return Err(corrupt(
                op,
                label,
                format!(
                    "ring at {offset} of {size} bytes for messages up to {max} bytes, in a \
                     data area of {len}"
                ),
            ));
        }
        let me = owners.me().map_err(|e| e.with_op(op))?;
        let (own, theirs) = match role {
            Role::Producer => (&ctl.producer, &ctl.head),
            Role::Consumer => (&ctl.consumer, &ctl.tail),
        };
        let what = match role {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        };
        peer::attach(own, me, owners, what, op, label)?;
        let pos = match role {
            Role::Producer => ctl.tail.load(Ordering::Acquire),
            Role::Consumer => ctl.head.load(Ordering::Acquire),
        };
        Ok(Ring {
            ctl: NonNull::from(ctl),
            // SAFETY: RING_OFFSET + size <= len: inside the mapping.
            ring: unsafe { NonNull::new_unchecked(data.add(RING_OFFSET)) },
            size: size as u32,
            max_message: max,
            role,
            me,
            pos,
            seen: theirs.load(Ordering::Acquire),
            last_check: None,
        })
    }

    fn ctl(&self) -> &Control {
        // SAFETY: mapped while `self` lives, aligned, only atomics (the contract of `open`).
        unsafe { self.ctl.as_ref() }
    }

    pub(crate) fn max_message(&self) -> usize {
        self.max_message as usize
    }

    pub(crate) fn ring_size(&self) -> usize {
        self.size as usize
    }

    /// The peer's word, the futex word this end sleeps on and its waiter count, and the
    /// word this end publishes with the other side's waiter count.
    fn words(&self) -> (&AtomicU64, &AtomicU32, &AtomicU32) {
        let c = self.ctl();
        match self.role {
            Role::Producer => (&c.consumer, &c.head, &c.space_waiters),
            Role::Consumer => (&c.producer, &c.tail, &c.data_waiters),
        }
    }

    /// Publishes this end's index and wakes the other end if it sleeps.
    #[inline]
    fn publish(&self) -> Result<()> {
        let c = self.ctl();
        let (index, waiters) = match self.role {
            Role::Producer => (&c.tail, &c.data_waiters),
            Role::Consumer => (&c.head, &c.space_waiters),
        };
        index.store(self.pos, Ordering::Release);
        fence(Ordering::SeqCst);
        if waiters.load(Ordering::Relaxed) != 0 {
            wait_word::wake(index, 1)?;
        }
        Ok(())
    }

    /// The ring's bytes at `off..off+len` (in bounds: checked by the callers).
    #[inline]
    fn at(&self, off: u32) -> *mut u8 {
        debug_assert!(off < self.size);
        // SAFETY: `off < size`: inside the ring.
        unsafe { self.ring.as_ptr().add(off as usize) }
    }

    /// Writes `msg` if it fits: `Ok(false)` when the queue is full.
    pub(crate) fn try_push(&mut self, msg: &[u8], label: &str) -> Result<bool> {
        let op = Operation::QueueSend;
        debug_assert_eq!(self.role, Role::Producer);
        let len = match u32::try_from(msg.len()) {
            Ok(n) if n <= self.max_message => n,
            _ => {
                return Err(
                    Error::new(ErrorKind::InvalidSize, op, label).with_detail(format!(
                        "a message of {} bytes is larger than the queue's maximum ({} bytes)",
                        msg.len(),
                        self.max_message
                    )),
                )
            }
        };
        if self.ctl().consumer.load(Ordering::Relaxed) == peer::CLOSED {
            return Err(Error::new(ErrorKind::Disconnected, op, label)
                .with_detail("the consumer closed the queue"));
        }
        let rec = record_size(len);
        let off = self.pos & (self.size - 1);
        let contiguous = self.size - off;
        let need = if rec <= contiguous {
            rec
        } else {
            contiguous + rec
        };
        if self.size - self.pos.wrapping_sub(self.seen) < need {
            self.seen = self.ctl().head.load(Ordering::Acquire);
            let used = self.pos.wrapping_sub(self.seen);
            if used > self.size {
                return Err(corrupt(
                    op,
                    label,
                    format!("{used} bytes used in a ring of {}", self.size),
                ));
            }
            if self.size - used < need {
                return Ok(false);
            }
        }
        let mut at = off;
        if rec > contiguous {
            // SAFETY: `off` is 8-aligned (records are) and `contiguous >= 8`; the bytes are
            // free (between tail and head + size): the consumer does not read them until
            // `tail` is published.
            unsafe { self.at(off).cast::<u32>().write(SKIP) };
            self.pos = self.pos.wrapping_add(contiguous);
            at = 0;
        }
        // SAFETY: `at + rec <= size` (the record fits before the end, checked above), the
        // bytes are free (see above), `at` is 8-aligned, and `msg` is a distinct buffer.
        unsafe {
            let p = self.at(at);
            p.cast::<u32>().write(len);
            p.add(4).cast::<u32>().write(0);
            std::ptr::copy_nonoverlapping(msg.as_ptr(), p.add(8), msg.len());
        }
        self.pos = self.pos.wrapping_add(rec);
        self.publish()?;
        Ok(true)
    }

    /// The next message's length, skipping skip markers; `None` when the queue is empty.
    fn peek(&mut self, op: Operation, label: &str) -> Result<Option<u32>> {
        debug_assert_eq!(self.role, Role::Consumer);
        loop {
            if self.pos == self.seen {
                self.seen = self.ctl().tail.load(Ordering::Acquire);
                if self.pos == self.seen {
                    return Ok(None);
                }
            }
            let used = self.seen.wrapping_sub(self.pos);
            if used > self.size {
                return Err(corrupt(
                    op,
                    label,
                    format!("{used} bytes used in a ring of {}", self.size),
                ));
            }
            let off = self.pos & (self.size - 1);
            // SAFETY: `off` is in the ring and 8-aligned (every record is a multiple of 8,
            // and indices start at 0); the producer published the record (tail acquired).
            let len = unsafe { self.at(off).cast::<u32>().read() };
            let contiguous = self.size - off;
            if len == SKIP {
                if contiguous > used {
                    return Err(corrupt(op, label, "a skip marker past the tail".into()));
                }
                self.pos = self.pos.wrapping_add(contiguous);
                continue;
            }
            if len > self.max_message || record_size(len) > used.min(contiguous) {
                return Err(corrupt(
                    op,
                    label,
                    format!("a record of {len} bytes (maximum {})", self.max_message),
                ));
            }
            return Ok(Some(len));
        }
    }

    /// Takes the next message if there is one, copying it into `sink`; `Ok(Some(len))`
    /// also when it stays in the queue because `sink` is a slice too small for it.
    pub(crate) fn try_pop(&mut self, sink: &mut Sink<'_>, label: &str) -> Result<Option<usize>> {
        let op = Operation::QueueReceive;
        let Some(len) = self.peek(op, label)? else {
            return Ok(None);
        };
        let n = len as usize;
        let dst = match sink {
            Sink::Slice(buf) if buf.len() < n => return Ok(Some(n)),
            Sink::Slice(buf) => buf[..n].as_mut_ptr(),
            Sink::Vec(v) => {
                v.clear();
                v.reserve(n);
                v.as_mut_ptr()
            }
        };
        let off = self.pos & (self.size - 1);
        // SAFETY: the record lies in the ring (checked by `peek`), published by the
        // producer, which does not write it again before `head` passes it; `dst` is valid
        // for `n` bytes (a slice of at least `n`, or a vector's reserved capacity) and not
        // in the ring.
        unsafe { std::ptr::copy_nonoverlapping(self.at(off).add(8), dst, n) };
        if let Sink::Vec(v) = sink {
            // SAFETY: `n` bytes were reserved and initialised just above.
            unsafe { v.set_len(n) };
        }
        self.pos = self.pos.wrapping_add(record_size(len));
        self.publish()?;
        Ok(Some(n))
    }

    /// Whether the peer is gone; asks the system (one system call) only if `check_liveness`.
    fn peer_gone(&self, owners: &dyn Owners, check_liveness: bool) -> bool {
        peer::state(self.words().0, owners, check_liveness) == PeerState::Gone
    }

    /// For a non-blocking call that found no progress: whether the peer is gone, asking the
    /// system at most every [`SLICE`].
    pub(crate) fn peer_gone_now(&mut self, owners: &dyn Owners) -> bool {
        let check = self.last_check.map_or(true, |t| t.elapsed() >= SLICE);
        if check {
            self.last_check = Some(Instant::now());
        }
        self.peer_gone(owners, check)
    }

    /// Waits until `ready` makes progress (`Some`), the peer is gone, or `wait` ends.
    /// `ready` is the non-blocking attempt (`try_push` or `try_pop`).
    pub(crate) fn wait_until<T>(
        &mut self,
        wait: Wait,
        owners: &dyn Owners,
        op: Operation,
        label: &str,
        mut ready: impl FnMut(&mut Ring) -> Result<Option<T>>,
    ) -> Result<T> {
        if let Some(t) = ready(self)? {
            return Ok(t);
        }
        let role = self.role;
        let gone =
            |op| {
                Err(Error::new(ErrorKind::Disconnected, op, label).with_detail(match role {
                Role::Producer => "the consumer closed its end or died",
                Role::Consumer => {
                    "the producer closed its end or died (every message it sent was received)"
                }
            }))
            };
        // `None`: forever (also a timeout too long to represent).
        let deadline = match wait {
            Wait::For(d) => Instant::now().checked_add(d),
            _ => None,
        };
        let mut spins = 0;
        // The peer's liveness is asked after each SLICE of waiting, by the clock: a sleep that
        // polls (Windows, macOS, FreeBSD) returns early every few milliseconds and never says
        // it timed out, so counting timed-out sleeps never asked it there.
        let mut last_check = Instant::now();
        loop {
            let gone_now = if wait == Wait::Poll {
                self.peer_gone_now(owners)
            } else {
                let check = last_check.elapsed() >= SLICE;
                if check {
                    last_check = Instant::now();
                }
                self.peer_gone(owners, check)
            };
            if gone_now {
                // Everything it published before it went is still taken.
                return match ready(self)? {
                    Some(t) => Ok(t),
                    None => gone(op),
                };
            }
            if wait == Wait::Poll {
                return Err(Error::new(ErrorKind::WouldBlock, op, label));
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
                if let Some(t) = ready(self)? {
                    return Ok(t);
                }
                continue;
            }
            let mut timeout = SLICE;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::new(ErrorKind::Timeout, op, label));
                }
                timeout = timeout.min(left);
            }
            let (_, word, waiters) = self.words();
            waiters.fetch_add(1, Ordering::SeqCst);
            // The other end's index as last seen: it moves when there is progress to make.
            let expected = self.seen;
            let woke = if word.load(Ordering::SeqCst) == expected {
                wait_word::wait(word, expected, Some(timeout))
            } else {
                Ok(Woke::Early)
            };
            waiters.fetch_sub(1, Ordering::SeqCst);
            woke.map_err(|e| e.with_op(op).with_key(label.to_owned()))?;
            if let Some(t) = ready(self)? {
                return Ok(t);
            }
        }
    }

    /// Closes this end for good (the peer gets `Disconnected`) and wakes the peer.
    pub(crate) fn close(&self) {
        let c = self.ctl();
        let (own, peer_sleeps_on) = match self.role {
            Role::Producer => (&c.producer, &c.tail),
            Role::Consumer => (&c.consumer, &c.head),
        };
        peer::close(own, self.me);
        let _ = wait_word::wake(peer_sleeps_on, u32::MAX);
    }
}
