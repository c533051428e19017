//! [`LockGuard`]: the holder of a segment's lock, which lends its bytes.

use std::fmt;

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::sys::Locked;

/// Holds a segment's cross-process lock and lends the segment's bytes; dropping it unlocks.
///
/// The slices it lends are the only safe way to reach the memory: they exist only while the
/// lock is held, so no cooperating thread or process changes the bytes under them.
///
/// # What remains assumed
///
/// The lock excludes only those who take it. Every process that writes the segment must
/// take the lock first (Qt programs do when they call `lock()`); one that writes without it,
/// or releases the lock without holding it, breaks the exclusion, as with Qt. qshm detects
/// the second case within one process and refuses to lend the memory twice.
///
/// The guard is neither `Send` nor `Sync`: it is released by the thread that took it.
///
/// # Examples
///
/// ```
/// use qshm::{AccessMode, SharedMemory};
/// # let key = format!("qshm-doc-guard-{}", std::process::id());
/// let mut shm = SharedMemory::with_key(&key);
/// shm.create(64, AccessMode::ReadWrite)?;
/// let mut guard = shm.lock()?;
/// guard.as_mut_slice()?.fill(7);
/// assert!(guard.as_slice().iter().all(|&b| b == 7));
/// guard.unlock()?;
/// # Ok::<(), qshm::Error>(())
/// ```
#[must_use = "if unused the lock will immediately unlock"]
#[clippy::has_significant_drop]
pub struct LockGuard<'a> {
    locked: Locked<'a>,
    label: &'a dyn fmt::Display,
}

impl<'a> LockGuard<'a> {
    #[inline]
    pub(crate) fn new(locked: Locked<'a>, label: &'a dyn fmt::Display) -> LockGuard<'a> {
        LockGuard { locked, label }
    }

    /// The segment's bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        self.locked.bytes()
    }

    /// The segment's bytes, to write.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PermissionDenied`] when the segment is attached
    /// [`ReadOnly`](crate::AccessMode::ReadOnly).
    #[inline]
    pub fn as_mut_slice(&mut self) -> Result<&mut [u8]> {
        let label = self.label;
        match self.locked.bytes_mut() {
            Some(bytes) => Ok(bytes),
            None => Err(read_only(label)),
        }
    }

    /// The size of the segment in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// True for a segment of no bytes (never the case for an attached segment).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a holder of the lock died holding it, so that the data may be half-written.
    ///
    /// It stays true for every later holder (whoever took the lock over first, perhaps
    /// inside `attach`) until one calls [`mark_consistent`](LockGuard::mark_consistent).
    /// Locks that cannot tell (the System V segment lock, which the kernel gives back
    /// silently) report `false`.
    #[inline]
    pub fn owner_died(&self) -> bool {
        self.locked.owner_died()
    }

    /// After [`owner_died`](LockGuard::owner_died): declares the data repaired, so that the
    /// next holder is not told again.
    pub fn mark_consistent(&mut self) {
        self.locked.mark_consistent();
    }

    /// The segment's name, for errors.
    #[cfg(feature = "bytemuck")]
    pub(crate) fn label_text(&self) -> String {
        self.label.to_string()
    }

    /// Unlocks, reporting failure (dropping the guard unlocks and ignores it).
    #[inline]
    pub fn unlock(self) -> Result<()> {
        let label = self.label;
        self.locked.release().map_err(|e| unlock_failed(e, label))
    }
}

#[cold]
fn read_only(label: &dyn fmt::Display) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        Operation::Write,
        label.to_string(),
    )
    .with_detail("the segment is attached read-only")
}

#[cold]
fn unlock_failed(e: Error, label: &dyn fmt::Display) -> Error {
    e.with_op(Operation::Unlock).with_key(label.to_string())
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("key", &format_args!("{}", self.label))
            .field("len", &self.len())
            .field("owner_died", &self.owner_died())
            .finish_non_exhaustive()
    }
}
