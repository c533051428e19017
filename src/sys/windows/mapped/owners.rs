//! Windows' half of the in-segment lock (`sys/word_lock.rs`): who a thread is in the lock
//! word, how a waiter sleeps, and how it tells that an owner died.
//!
//! # Liveness: byte-range locks
//!
//! Each process takes, per segment file, a random *slot*: one byte of the file at
//! `SLOT_BASE + slot`, past any data, which it locks exclusively (`LockFileEx`) through a
//! handle of its own and keeps locked while it has the segment open. Its threads name
//! themselves `TOKEN | slot << 32 | n`, where `n` numbers the threads of this process (from
//! 1). Windows releases a process's byte-range locks when the process ends, however it ends
//! (`TerminateProcess` included). A waiter asks whether the owner's slot is still locked by
//! trying to lock it itself without waiting: refused (`ERROR_LOCK_VIOLATION`): alive; taken:
//! dead (it unlocks it again at once). Any other answer is taken for alive. Locks past the
//! end of a file are allowed and change nothing in it.
//!
//! Owners without `TOKEN` (a C program that does not take a slot) are never judged: waited
//! for, as a live owner would be.
//!
//! # Sleeping: a named event
//!
//! Waiters sleep on an auto-reset event named from the file's identity (volume serial number
//! and file index, so every path to the file meets the same event):
//! `Local\qshm_mapped_<serial, 8 hex digits>_<index, 16 hex digits>`; an unlock that sees
//! `WAITERS` sets it. An event set while nobody sleeps stays set, so a wake-up between a
//! waiter's check of the word and its sleep is not lost (the waiter only returns early).
//! Sleeps are bounded (1 to 16 ms, `sys/word_lock.rs`), so processes that cannot share the
//! event (other sessions: `Local\` is per session) still make progress, by polling.
//!
//! # References
//!
//! * <https://learn.microsoft.com/windows/win32/api/fileapi/nf-fileapi-lockfileex> ("If a
//!   process terminates with a portion of a file locked ..., the locks are unlocked by the
//!   operating system")
//! * <https://learn.microsoft.com/windows/win32/api/synchapi/nf-synchapi-createeventw>

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use windows_sys::Win32::Foundation::{ERROR_LOCK_VIOLATION, WAIT_FAILED};
use windows_sys::Win32::Storage::FileSystem::{
    LockFileEx, UnlockFileEx, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY,
};
use windows_sys::Win32::System::Threading::{CreateEventW, SetEvent, WaitForSingleObject};
use windows_sys::Win32::System::IO::OVERLAPPED;

use crate::error::{ErrorKind, Operation, Result};
use crate::sys::imp::{last_error, os_error, wait_ms};
use crate::sys::word_lock::{Owners, TID_MASK, TOKEN};

/// Where slots start in a file (beyond any segment qshm makes smaller than 2^40 bytes; a
/// byte-range lock changes nothing in the file, so an overlap would be harmless anyway).
const SLOT_BASE: u64 = 1 << 40;
/// How many slots there are: picked at random, so that two live processes rarely try the
/// same one (the second then picks another).
const SLOTS: u32 = 1 << 30;

/// A file's identity: volume serial number and file index.
pub(crate) type FileId = (u32, u64);

/// This process's slot in one segment file, shared by every handle of this process to that
/// file; unlocked (by closing its handle) when the last of them closes.
#[derive(Debug)]
struct SlotLease {
    /// A handle of this process to the file, through which the slot stays locked and other
    /// slots are asked about.
    file: File,
    slot: u32,
}

/// The leases of this process, by file.
static LEASES: Mutex<Option<HashMap<FileId, Weak<SlotLease>>>> = Mutex::new(None);

/// An `OVERLAPPED` that names the byte of `slot` (`SLOT_BASE + slot`).
fn at_slot(slot: u32) -> OVERLAPPED {
    let offset = SLOT_BASE + u64::from(slot);
    // SAFETY: OVERLAPPED is a plain C struct, for which all-zero is valid.
    let mut ov: OVERLAPPED = unsafe { std::mem::zeroed() };
    ov.Anonymous.Anonymous.Offset = offset as u32;
    ov.Anonymous.Anonymous.OffsetHigh = (offset >> 32) as u32;
    ov
}

/// `LockFileEx` on one byte at `SLOT_BASE + slot`, exclusive, without waiting: `Ok(())`
/// taken, `Err(code)` refused or failed.
fn try_lock_slot(file: &File, slot: u32) -> std::result::Result<(), u32> {
    let mut ov = at_slot(slot);
    // SAFETY: a live file handle of a synchronous file (the call completes before it
    // returns, so `ov` outlives the operation); one byte.
    let ok = unsafe {
        LockFileEx(
            file.as_raw_handle(),
            LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY,
            0,
            1,
            0,
            &mut ov,
        )
    };
    if ok == 0 {
        Err(last_error())
    } else {
        Ok(())
    }
}

fn unlock_slot(file: &File, slot: u32) {
    let mut ov = at_slot(slot);
    // SAFETY: a live, synchronous file handle; unlocks a byte this call's caller locked
    // through it.
    unsafe { UnlockFileEx(file.as_raw_handle(), 0, 1, 0, &mut ov) };
}

/// Whether a process holds `slot` of the file: `Some(true)` yes, `Some(false)` no (then
/// nobody does: it was taken and given back at once), `None` unknown.
fn slot_held(file: &File, slot: u32) -> Option<bool> {
    match try_lock_slot(file, slot) {
        Ok(()) => {
            unlock_slot(file, slot);
            Some(false)
        }
        Err(ERROR_LOCK_VIOLATION) => Some(true),
        Err(_) => None,
    }
}

impl SlotLease {
    /// This process's lease on the file `id`, taken through a duplicate of `file` when this
    /// process has none.
    fn of(id: FileId, file: &File, label: &str) -> Result<Arc<SlotLease>> {
        let mut leases = LEASES.lock().unwrap_or_else(|e| e.into_inner());
        let leases = leases.get_or_insert_with(HashMap::new);
        if let Some(lease) = leases.get(&id).and_then(Weak::upgrade) {
            return Ok(lease);
        }
        leases.retain(|_, lease| lease.strong_count() > 0);
        let own = file
            .try_clone()
            .map_err(|e| crate::sys::io_error(&e, Operation::Attach, label))?;
        let mut last = 0;
        for slot in random_slots().take(64) {
            match try_lock_slot(&own, slot) {
                Ok(()) => {
                    let lease = Arc::new(SlotLease { file: own, slot });
                    leases.insert(id, Arc::downgrade(&lease));
                    return Ok(lease);
                }
                Err(code) => last = code,
            }
        }
        Err(os_error(last, Operation::Attach, label)
            .with_kind(ErrorKind::LockError)
            .with_detail("cannot lock a liveness slot of the segment file (LockFileEx)"))
    }
}

/// Random slot numbers.
fn random_slots() -> impl Iterator<Item = u32> {
    crate::sys::random::random_below(SLOTS)
}

thread_local! {
    /// This thread's number in this process (0: not yet given).
    static THREAD_NUMBER: Cell<u64> = const { Cell::new(0) };
}

/// This thread's number in this process, from 1, in the lock word's thread bits.
#[inline]
fn thread_number() -> u64 {
    THREAD_NUMBER.with(|cell| {
        let n = cell.get();
        if n != 0 {
            return n;
        }
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let mut n = 0;
        while n == 0 {
            n = u64::from(NEXT.fetch_add(1, Ordering::Relaxed)) & TID_MASK;
        }
        cell.set(n);
        n
    })
}

/// Windows' half of a segment's lock: this process's slot in the file, and the event.
#[derive(Debug)]
pub(crate) struct WinOwners {
    lease: Arc<SlotLease>,
    /// `TOKEN | slot << 32`.
    high: u64,
    /// The named event waiters sleep on; `None` when it could not be made (waiters poll).
    event: Option<OwnedHandle>,
}

impl WinOwners {
    /// This process's slot in the file `id` (open as `file`) and the file's event.
    pub(crate) fn new(id: FileId, file: &File, label: &str) -> Result<WinOwners> {
        let lease = SlotLease::of(id, file, label)?;
        let high = TOKEN | u64::from(lease.slot) << 32;
        Ok(WinOwners {
            lease,
            high,
            event: event(id),
        })
    }
}

/// The auto-reset event of the file `id`, created or opened.
fn event(id: FileId) -> Option<OwnedHandle> {
    let name = format!("Local\\qshm_mapped_{:08x}_{:016x}", id.0, id.1);
    let wide: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: creates or opens a named auto-reset event, not set; the name is NUL-terminated
    // and outlives the call.
    let raw = unsafe { CreateEventW(std::ptr::null(), 0, 0, wide.as_ptr()) };
    // SAFETY: a handle this call just opened and nothing else owns.
    (!raw.is_null()).then(|| unsafe { OwnedHandle::from_raw_handle(raw) })
}

impl Owners for WinOwners {
    #[inline]
    fn me(&self) -> Result<u64> {
        Ok(self.high | thread_number())
    }

    fn owner_is_dead(&self, word: u64) -> bool {
        if word & TOKEN == 0 || word & TID_MASK == 0 {
            return false;
        }
        let slot = ((word >> 32) as u32) & (SLOTS - 1);
        if word & !(TID_MASK | 0x8000_0000) == self.high {
            return false; // a thread of this process
        }
        slot_held(&self.lease.file, slot) == Some(false)
    }

    fn sleep(&self, word: &AtomicU64, expected: u64, timeout: Duration) -> Result<bool> {
        if word.load(Ordering::Relaxed) != expected {
            return Ok(false);
        }
        let Some(event) = &self.event else {
            std::thread::sleep(timeout);
            return Ok(true);
        };
        // SAFETY: waits on a live event handle.
        match unsafe { WaitForSingleObject(event.as_raw_handle(), wait_ms(timeout)) } {
            WAIT_FAILED => Err(os_error(last_error(), Operation::Lock, String::new())
                .with_detail("waiting on the segment's event failed")),
            0 => Ok(false), // WAIT_OBJECT_0
            _ => Ok(true),  // WAIT_TIMEOUT
        }
    }

    fn wake_one(&self, _: &AtomicU64) -> Result<()> {
        if let Some(event) = &self.event {
            // SAFETY: sets a live event handle.
            if unsafe { SetEvent(event.as_raw_handle()) } == 0 {
                return Err(os_error(last_error(), Operation::Unlock, String::new())
                    .with_detail("setting the segment's event failed"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_seen_from_another_handle_and_die_with_it() {
        let path = std::env::temp_dir().join(format!("qshm-slot-{}", std::process::id()));
        std::fs::write(&path, b"x").unwrap();
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap()
        };
        let (a, b) = (open(), open());
        let slot = random_slots().next().unwrap();
        assert_eq!(slot_held(&b, slot), Some(false));
        try_lock_slot(&a, slot).unwrap();
        assert_eq!(slot_held(&b, slot), Some(true));
        drop(a);
        assert_eq!(slot_held(&b, slot), Some(false));
        drop(b);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn thread_numbers_differ() {
        let a = thread_number();
        assert_eq!(a, thread_number());
        let b = std::thread::spawn(thread_number).join().unwrap();
        assert_ne!(a, b);
        assert_ne!(a & TID_MASK, 0);
    }
}
