//! The ends of a queue or a cell: which process holds one, recorded in a 64-bit word of the
//! control block, and whether that process is still alive.
//!
//! An end is named by the same identity the in-segment lock writes into its lock word
//! ([`Owners::me`]): on Linux `TOKEN | slot << 32 | tid` for a qshm process (its liveness
//! slot, an open-file-description lock the kernel drops when the process dies, in any PID
//! namespace), or `tag << 32 | pid` for a C program using `qshm.h` (its pid and start
//! time); on Windows `TOKEN | slot << 32 | n` (a byte-range lock). A peer is dead when
//! [`Owners::owner_is_dead`] says so: the same evidence the lock uses, never a guess (unknown
//! is alive). Only the TOKEN part names the process, so a thread that attached and exited
//! leaves its process the owner.
//!
//! The word is 0 while nobody has attached, [`CLOSED`] once the end was dropped (for
//! good: a closed end stays closed), and an identity otherwise.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::word_lock::Owners;

/// The word of an end that was closed (dropped). No identity is all ones (bit 30 of an
/// identity is always 0).
pub(crate) const CLOSED: u64 = u64::MAX;

/// What an end's word says about the process holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PeerState {
    /// Nobody has attached yet.
    NotYet,
    /// Attached, and alive as far as anyone can tell (or not checked).
    Alive,
    /// Closed its end, or died.
    Gone,
}

/// Takes the end `word` for this process (`me`): free, or held by a dead process (taken
/// over). Errors: held by a live process (`AlreadyAttached`), closed (`Disconnected`).
pub(crate) fn attach(
    word: &AtomicU64,
    me: u64,
    owners: &dyn Owners,
    what: &str,
    op: Operation,
    label: &str,
) -> Result<()> {
    let mut cur = word.load(Ordering::Acquire);
    loop {
        if cur == CLOSED {
            return Err(
                Error::new(ErrorKind::Disconnected, op, label).with_detail(format!(
                    "the {what} end was closed (a closed end stays closed)"
                )),
            );
        }
        if cur != 0 && !owners.owner_is_dead(cur) {
            return Err(
                Error::new(ErrorKind::AlreadyAttached, op, label).with_detail(format!(
                    "the {what} end is held by a live process already (exactly one is allowed)"
                )),
            );
        }
        match word.compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Ok(()),
            Err(now) => cur = now,
        }
    }
}

/// Gives the end `word` up for good, if it is still `me`'s.
pub(crate) fn close(word: &AtomicU64, me: u64) {
    let _ = word.compare_exchange(me, CLOSED, Ordering::AcqRel, Ordering::Relaxed);
}

/// The state of the end `word`; liveness is asked of the system only when `check_liveness`.
pub(crate) fn state(word: &AtomicU64, owners: &dyn Owners, check_liveness: bool) -> PeerState {
    match word.load(Ordering::Acquire) {
        0 => PeerState::NotYet,
        CLOSED => PeerState::Gone,
        id if check_liveness && owners.owner_is_dead(id) => PeerState::Gone,
        _ => PeerState::Alive,
    }
}
