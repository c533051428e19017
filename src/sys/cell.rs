//! A latest-value cell (a seqlock) in a mapped segment's data area: one writer, any number
//! of readers, which never block the writer and never see a torn value. The protocol of
//! `struct qshm_cell` in `include/qshm.h`, which implements the same in C.
//!
//! # Layout (version 1, native byte order)
//!
//! ```text
//! offset  size  field         written by
//!   0      8    magic         creator: "QSHM\0CEL", last (release) after the rest
//!   8      4    version       creator: 1
//!  12      4    value_offset  creator: 128
//!  16      4    capacity      creator: the largest value, a multiple of 8, 8 ..= 2^30
//!  64      4    seq           writer: odd while it writes; even: the value's version
//!                             (0: never written) (futex word)
//!  68      4    waiters       readers: how many sleep in `wait_next`
//!  72      4    len           writer: the value's length
//!  80      8    writer        writer: its identity, 0 none yet, ~0 closed (sys/peer.rs)
//! 128  capacity  the value
//! ```
//!
//! # Why the copies are atomic
//!
//! A reader copies the value while the writer may be writing it; it finds out afterwards
//! (the sequence changed) and tries again. In the Rust (and C11) memory model a plain read
//! of memory another thread writes at the same time is a data race, undefined behaviour
//! even if the value is thrown away; so both sides copy the value as relaxed atomic 64-bit
//! loads and stores (plain `mov`s on x86-64 and AArch64), ordered by fences: the writer
//! stores `seq` odd, a release fence, the value, then `seq` even with release; the reader
//! loads `seq` with acquire, the value, an acquire fence, and `seq` again, and keeps the
//! copy only if both loads saw the same even number (Boehm, "Can seqlocks get along with
//! programming language memory models?", 2012).

use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::peer::{self, PeerState};
use super::wait_word::{self, Woke};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::mapped::MappedSegment;

/// The first 8 bytes of a cell's control block.
pub(crate) const MAGIC: [u8; 8] = *b"QSHM\0CEL";
/// The layout version this build reads and writes.
pub(crate) const VERSION: u32 = 1;
/// Where the value starts in the data area.
pub(crate) const VALUE_OFFSET: usize = 128;
/// The largest capacity.
pub(crate) const MAX_CAPACITY: usize = 1 << 30;
/// The longest sleep between two checks of the writer's liveness.
const SLICE: Duration = Duration::from_millis(100);
/// How long a reader retries a value that stays half-written before it asks whether the
/// writer died writing it.
const STUCK: Duration = Duration::from_millis(10);

/// The control block (`struct qshm_cell` in `qshm.h`); every field is accessed atomically.
#[repr(C)]
struct Control {
    magic: AtomicU64,
    version: AtomicU32,
    value_offset: AtomicU32,
    capacity: AtomicU32,
    reserved0: [AtomicU32; 11],
    seq: AtomicU32,
    waiters: AtomicU32,
    len: AtomicU32,
    reserved1: AtomicU32,
    writer: AtomicU64,
    reserved2: [AtomicU64; 5],
}

const _: () = {
    assert!(std::mem::offset_of!(Control, version) == 8);
    assert!(std::mem::offset_of!(Control, value_offset) == 12);
    assert!(std::mem::offset_of!(Control, capacity) == 16);
    assert!(std::mem::offset_of!(Control, seq) == 64);
    assert!(std::mem::offset_of!(Control, waiters) == 68);
    assert!(std::mem::offset_of!(Control, len) == 72);
    assert!(std::mem::offset_of!(Control, writer) == 80);
    assert!(std::mem::size_of::<Control>() == VALUE_OFFSET);
};

/// The capacity a cell for values up to `max_value` bytes gets (rounded up to 8).
pub(crate) fn capacity_for(max_value: usize) -> Option<usize> {
    let cap = max_value.checked_add(7)? & !7;
    (8..=MAX_CAPACITY).contains(&cap).then_some(cap)
}

/// Writes a new cell's control block into `seg`'s data area (see `queue::format` for what
/// the caller guarantees). Panics unless `capacity` is a valid [`capacity_for`] that fits.
pub(crate) fn format(seg: &MappedSegment, capacity: usize) {
    assert!(
        capacity % 8 == 0
            && (8..=MAX_CAPACITY).contains(&capacity)
            && VALUE_OFFSET + capacity <= seg.size()
            && seg.inner().is_writable()
    );
    // SAFETY: the control block lies at the start of the data area, mapped writable
    // (asserted) for at least VALUE_OFFSET bytes while `seg` is borrowed, 64-aligned, and
    // holds only atomics, which every process accesses atomically.
    let ctl = unsafe { &*seg.as_mut_ptr().cast::<Control>() };
    ctl.version.store(VERSION, Ordering::Relaxed);
    ctl.value_offset
        .store(VALUE_OFFSET as u32, Ordering::Relaxed);
    ctl.capacity.store(capacity as u32, Ordering::Relaxed);
    ctl.seq.store(0, Ordering::Relaxed);
    ctl.waiters.store(0, Ordering::Relaxed);
    ctl.len.store(0, Ordering::Relaxed);
    ctl.writer.store(0, Ordering::Relaxed);
    ctl.magic
        .store(u64::from_ne_bytes(MAGIC), Ordering::Release);
}

/// A cell in a segment that this value owns: pointers into its mapping, valid while it
/// lives.
pub(crate) struct Cell {
    ctl: NonNull<Control>,
    value: NonNull<AtomicU64>,
    /// In bytes, a multiple of 8.
    capacity: usize,
    /// This process's identity, when it is the writer.
    me: u64,
    seg: MappedSegment,
}

// SAFETY: the pointers address the mapping of `seg`, which the value owns and which stays
// mapped while it lives; every access through them is atomic. Nothing is tied to a thread.
unsafe impl Send for Cell {}
// SAFETY: as for `Send`: `&Cell` methods only make atomic accesses to the mapping.
unsafe impl Sync for Cell {}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cell")
            .field("segment", &self.seg.label())
            .field("capacity", &self.capacity)
            .field("writer", &(self.me != 0))
            .finish()
    }
}

impl Cell {
    /// Opens the cell in `seg` (validating its control block); as its writer when `writer`.
    pub(crate) fn open(seg: MappedSegment, writer: bool) -> Result<Cell> {
        let op = Operation::CellOpen;
        let label = seg.label();
        let Some(owners) = seg.inner().owners().filter(|_| seg.inner().is_writable()) else {
            return Err(Error::new(ErrorKind::PermissionDenied, op, label)
                .with_detail("a cell needs a read-write attachment of a writable segment"));
        };
        let len = seg.size();
        if len < VALUE_OFFSET + 8 {
            return Err(
                Error::new(ErrorKind::InvalidSize, op, label).with_detail(format!(
                    "the data area ({len} bytes) is too small for a cell"
                )),
            );
        }
        // SAFETY: the control block lies at the start of the data area, mapped (checked:
        // `len` bytes) and 64-aligned while `seg` lives; only atomics.
        let ctl = unsafe { &*seg.as_mut_ptr().cast::<Control>() };
        if ctl.magic.load(Ordering::Acquire).to_ne_bytes() != MAGIC {
            return Err(Error::new(ErrorKind::Layout, op, label)
                .with_detail("not a cell (no \"QSHM\\0CEL\" at the start of the data area)"));
        }
        let version = ctl.version.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(
                Error::new(ErrorKind::Unsupported, op, label).with_detail(format!(
                    "cell layout version {version} (this build reads version {VERSION})"
                )),
            );
        }
        let offset = ctl.value_offset.load(Ordering::Relaxed) as usize;
        let capacity = ctl.capacity.load(Ordering::Relaxed) as usize;
        if offset != VALUE_OFFSET
            || capacity % 8 != 0
            || !(8..=MAX_CAPACITY).contains(&capacity)
            || offset + capacity > len
        {
            return Err(
                Error::new(ErrorKind::Layout, op, label).with_detail(format!(
                "corrupt cell: a value of {capacity} bytes at {offset}, in a data area of {len}"
            )),
            );
        }
        let me = if writer {
            let me = owners.me().map_err(|e| e.with_op(op))?;
            peer::attach(&ctl.writer, me, owners, "writer", op, label)?;
            me
        } else {
            0
        };
        Ok(Cell {
            ctl: NonNull::from(ctl),
            // SAFETY: VALUE_OFFSET + capacity <= len: inside the mapping; 8-aligned.
            value: unsafe { NonNull::new_unchecked(seg.as_mut_ptr().add(VALUE_OFFSET).cast()) },
            capacity,
            me,
            seg,
        })
    }

    fn ctl(&self) -> &Control {
        // SAFETY: mapped while `self` lives (it owns the segment), aligned, only atomics.
        unsafe { self.ctl.as_ref() }
    }

    fn words(&self) -> &[AtomicU64] {
        // SAFETY: `capacity` bytes (a multiple of 8) of the mapping at an 8-aligned
        // address, mapped while `self` lives; accessed only atomically, by every process.
        unsafe { std::slice::from_raw_parts(self.value.as_ptr(), self.capacity / 8) }
    }

    pub(crate) fn segment(&self) -> &MappedSegment {
        &self.seg
    }

    /// Closes the writer's end if this is the writer (as dropping does) and gives the
    /// segment back.
    pub(crate) fn into_segment(self) -> MappedSegment {
        self.close_writer();
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so `seg` is moved out exactly once;
        // the other fields own nothing (pointers and numbers) and need no drop.
        unsafe { std::ptr::read(&this.seg) }
    }

    fn close_writer(&self) {
        if self.me != 0 {
            let ctl = self.ctl();
            peer::close(&ctl.writer, self.me);
            let _ = wait_word::wake(&ctl.seq, u32::MAX);
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The current sequence number (odd while the writer writes).
    pub(crate) fn seq(&self) -> u32 {
        self.ctl().seq.load(Ordering::Acquire)
    }

    /// Writes `value` (the caller is the writer; `value.len() <= capacity`, checked).
    /// Returns the new sequence number.
    pub(crate) fn write(&self, value: &[u8]) -> Result<u32> {
        let op = Operation::CellWrite;
        if value.len() > self.capacity {
            return Err(
                Error::new(ErrorKind::InvalidSize, op, self.seg.label()).with_detail(format!(
                    "a value of {} bytes is larger than the cell's capacity ({} bytes)",
                    value.len(),
                    self.capacity
                )),
            );
        }
        let ctl = self.ctl();
        if ctl.writer.load(Ordering::Relaxed) != self.me {
            return Err(Error::new(ErrorKind::Disconnected, op, self.seg.label())
                .with_detail("this writer's end was taken over by another process"));
        }
        let s = ctl.seq.load(Ordering::Relaxed);
        // Odd: a writer died writing; this one starts from the next odd number.
        let writing = if s % 2 == 1 {
            s.wrapping_add(2)
        } else {
            s.wrapping_add(1)
        };
        ctl.seq.store(writing, Ordering::Relaxed);
        fence(Ordering::Release);
        let words = self.words();
        let mut chunks = value.chunks_exact(8);
        let mut i = 0;
        for chunk in &mut chunks {
            let w = u64::from_ne_bytes(chunk.try_into().expect("8 bytes"));
            words[i].store(w, Ordering::Relaxed);
            i += 1;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            words[i].store(u64::from_ne_bytes(last), Ordering::Relaxed);
        }
        ctl.len.store(value.len() as u32, Ordering::Relaxed);
        let done = writing.wrapping_add(1);
        ctl.seq.store(done, Ordering::Release);
        fence(Ordering::SeqCst);
        if ctl.waiters.load(Ordering::Relaxed) != 0 {
            wait_word::wake(&ctl.seq, u32::MAX)?;
        }
        Ok(done)
    }

    /// Copies the value into `buf` (the whole value: `buf.len() >= capacity`, or the value
    /// must fit). Returns (length, sequence number); never a torn value.
    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8]) -> Result<(usize, u32)> {
        match self.read_once(buf) {
            Some((len, seq)) => Ok((len, seq)),
            None => self.read_slow(buf),
        }
    }

    /// One attempt: `Some` when a whole value that fits was copied, `None` when it was being
    /// written (or does not fit: the slow path tells which error).
    #[inline(always)]
    fn read_once(&self, buf: &mut [u8]) -> Option<(usize, u32)> {
        let ctl = self.ctl();
        let words = self.words();
        let s1 = ctl.seq.load(Ordering::Acquire);
        if s1 % 2 != 0 {
            return None;
        }
        let len = ctl.len.load(Ordering::Relaxed) as usize;
        if len > self.capacity || len > buf.len() {
            return None;
        }
        let n = len / 8;
        for (word, chunk) in words.iter().zip(buf[..n * 8].chunks_exact_mut(8)) {
            // A fixed-size store, not a call to `memcpy` per word.
            let chunk: &mut [u8; 8] = chunk.try_into().expect("8 bytes");
            *chunk = word.load(Ordering::Relaxed).to_ne_bytes();
        }
        if len % 8 != 0 {
            let last = words[n].load(Ordering::Relaxed).to_ne_bytes();
            buf[n * 8..len].copy_from_slice(&last[..len % 8]);
        }
        fence(Ordering::Acquire);
        (ctl.seq.load(Ordering::Relaxed) == s1).then_some((len, s1))
    }

    /// Retries while the value is being written; when it stays so, asks whether the writer
    /// died. Reports a value that does not fit.
    #[cold]
    #[inline(never)]
    fn read_slow(&self, buf: &mut [u8]) -> Result<(usize, u32)> {
        let op = Operation::CellRead;
        let ctl = self.ctl();
        let mut tries = 0u32;
        let mut stuck_since: Option<Instant> = None;
        loop {
            if let Some(done) = self.read_once(buf) {
                return Ok(done);
            }
            let s1 = ctl.seq.load(Ordering::Acquire);
            let len = ctl.len.load(Ordering::Relaxed) as usize;
            fence(Ordering::Acquire);
            if s1 % 2 == 0 && ctl.seq.load(Ordering::Relaxed) == s1 {
                if len > self.capacity || len > buf.len() {
                    let kind = if len > self.capacity {
                        ErrorKind::Layout
                    } else {
                        ErrorKind::InvalidSize
                    };
                    return Err(Error::new(kind, op, self.seg.label()).with_detail(format!(
                        "the value has {len} bytes; the buffer {}, the cell's capacity {}",
                        buf.len(),
                        self.capacity
                    )));
                }
                continue; // it changed between the two attempts: try again
            }
            // Being written: retry, and if it stays so, ask whether the writer died.
            tries += 1;
            if tries < 100 {
                std::hint::spin_loop();
                continue;
            }
            std::thread::yield_now();
            let since = *stuck_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= STUCK {
                if self.writer_gone(true) && ctl.seq.load(Ordering::Relaxed) == s1 {
                    return Err(Error::new(ErrorKind::Disconnected, op, self.seg.label())
                        .with_detail("the writer died while writing the value"));
                }
                stuck_since = Some(Instant::now());
            }
        }
    }

    fn writer_gone(&self, check_liveness: bool) -> bool {
        let owners = self.seg.inner().owners().expect("checked at open");
        peer::state(&self.ctl().writer, owners, check_liveness) == PeerState::Gone
    }

    /// Waits until the sequence number is even and not `seen`, at most `timeout`
    /// (`None`: forever). Returns the new sequence number.
    pub(crate) fn wait_next(&self, seen: u32, timeout: Option<Duration>) -> Result<u32> {
        let op = Operation::CellRead;
        let label = self.seg.label();
        let ctl = self.ctl();
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut spins = 0;
        // The writer's liveness is asked after each SLICE of waiting, by the clock: a sleep
        // that polls (Windows, macOS, FreeBSD) returns early every few milliseconds and never
        // says it timed out, so counting timed-out sleeps never asked it there.
        let mut last_check = Instant::now();
        loop {
            let cur = ctl.seq.load(Ordering::Acquire);
            if cur != seen && cur % 2 == 0 {
                return Ok(cur);
            }
            if cur % 2 == 1 && spins < 1000 {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            let check = last_check.elapsed() >= SLICE;
            if check {
                last_check = Instant::now();
            }
            if self.writer_gone(check) {
                return Err(Error::new(ErrorKind::Disconnected, op, label)
                    .with_detail("the writer closed its end or died"));
            }
            let mut slice = SLICE;
            if timeout.is_some() {
                if let Some(deadline) = deadline {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::new(ErrorKind::Timeout, op, label));
                    }
                    slice = slice.min(left);
                }
            }
            ctl.waiters.fetch_add(1, Ordering::SeqCst);
            let woke = if ctl.seq.load(Ordering::SeqCst) == cur {
                wait_word::wait(&ctl.seq, cur, Some(slice))
            } else {
                Ok(Woke::Early)
            };
            ctl.waiters.fetch_sub(1, Ordering::SeqCst);
            woke.map_err(|e| e.with_op(op).with_key(label.to_owned()))?;
        }
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        self.close_writer();
    }
}
