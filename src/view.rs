//! Typed views of a locked segment (feature `bytemuck`): `&T`, `&mut T`, `&[T]` and
//! `&mut [T]` at an offset, for plain-old-data `T`, checked for bounds, alignment and write
//! access, lent by the [`LockGuard`] and so only while the lock is held.
//!
//! # Why `bytemuck`
//!
//! Its two traits say exactly what shared memory needs, and it has no dependencies of its
//! own (without its `derive` feature): [`AnyBitPattern`] (every bit
//! pattern is a valid `T`: whatever another process wrote, reading it is sound) for reading,
//! and [`Pod`] (also no padding: writing a `T` puts no uninitialised byte
//! where another process reads) for writing. `zerocopy` offers the same guarantees with a
//! larger API and a proc-macro dependency for its derives; for four methods, `bytemuck` is
//! the smaller answer. Users derive the traits with `bytemuck`'s `derive` feature (or
//! implement them, `unsafe`, for their own types).
//!
//! # What "plain old data" means across processes
//!
//! The bytes are shared with processes that another compiler, another language or another
//! version of this program may have built. A type read or written through a view must have
//! the same layout in all of them:
//!
//! * `#[repr(C)]` (or `#[repr(transparent)]`, or a primitive): Rust's default layout may
//!   reorder fields between compilations;
//! * fixed-size fields only (`u32`, `[u8; 16]`, not `usize`, `bool` or pointers: their size
//!   or their valid values differ between peers, and a pointer means nothing in another
//!   address space);
//! * explicit padding fields, so that `Pod` holds and no byte is left undefined;
//! * native byte order: every peer on one machine shares it; a segment does not travel;
//! * where the type mirrors a C struct, check it: `std::mem::offset_of!` of each field and
//!   `size_of` against the C compiler's `offsetof`/`sizeof` (this crate's tests do so for
//!   `struct qshm_header` of `include/qshm.h`).
//!
//! A mapped segment can record which layout it holds (`qshm::mapped::LayoutStamp`, chosen
//! at create; Linux and Windows) so that a peer built with another one is refused at open
//! instead of reading garbage.
//!
//! # Examples
//!
//! ```
//! use qshm::{AccessMode, SharedMemory};
//!
//! #[repr(C)]
//! #[derive(Clone, Copy, bytemuck::Zeroable, bytemuck::Pod)]
//! struct Stats {
//!     requests: u64,
//!     errors: u32,
//!     _pad: u32,
//! }
//!
//! # let key = format!("qshm-doc-view-{}", std::process::id());
//! let mut shm = SharedMemory::with_key(&key);
//! shm.create(4096, AccessMode::ReadWrite)?;
//! let mut guard = shm.lock()?;
//! guard.view_mut::<Stats>(0)?.requests += 1;
//! assert_eq!(guard.view::<Stats>(0)?.requests, 1);
//! assert_eq!(guard.view::<u64>(3).unwrap_err().kind(), qshm::ErrorKind::Layout); // misaligned
//! # Ok::<(), qshm::Error>(())
//! ```

use std::ops::Range;

use bytemuck::{AnyBitPattern, Pod, PodCastError};

use crate::error::{Error, ErrorKind, Operation, Result};
use crate::lock::LockGuard;

impl LockGuard<'_> {
    /// The `T` at byte `offset` of the segment.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidSize`] when `offset + size_of::<T>()` lies beyond the segment;
    /// [`ErrorKind::Layout`] when `offset` is not aligned for `T`.
    pub fn view<T: AnyBitPattern>(&self, offset: usize) -> Result<&T> {
        let range = self.range_of::<T>(offset, 1)?;
        bytemuck::try_from_bytes(&self.as_slice()[range])
            .map_err(|e| self.cast_error::<T>(e, offset))
    }

    /// The `T` at byte `offset` of the segment, to write.
    ///
    /// # Errors
    ///
    /// As [`view`](LockGuard::view), and [`ErrorKind::PermissionDenied`] when the segment is
    /// attached read-only.
    pub fn view_mut<T: Pod>(&mut self, offset: usize) -> Result<&mut T> {
        let range = self.range_of::<T>(offset, 1)?;
        let label = self.label_text();
        let bytes = &mut self.as_mut_slice()?[range];
        bytemuck::try_from_bytes_mut(bytes).map_err(|e| cast_error::<T>(e, offset, label))
    }

    /// `len` consecutive `T`s from byte `offset` of the segment.
    ///
    /// # Errors
    ///
    /// As [`view`](LockGuard::view) (also when `len * size_of::<T>()` overflows).
    pub fn view_slice<T: AnyBitPattern>(&self, offset: usize, len: usize) -> Result<&[T]> {
        let range = self.range_of::<T>(offset, len)?;
        bytemuck::try_cast_slice(&self.as_slice()[range])
            .map_err(|e| self.cast_error::<T>(e, offset))
    }

    /// `len` consecutive `T`s from byte `offset` of the segment, to write.
    ///
    /// # Errors
    ///
    /// As [`view_mut`](LockGuard::view_mut) and [`view_slice`](LockGuard::view_slice).
    pub fn view_slice_mut<T: Pod>(&mut self, offset: usize, len: usize) -> Result<&mut [T]> {
        let range = self.range_of::<T>(offset, len)?;
        let label = self.label_text();
        let bytes = &mut self.as_mut_slice()?[range];
        bytemuck::try_cast_slice_mut(bytes).map_err(|e| cast_error::<T>(e, offset, label))
    }

    /// The bytes of `len` `T`s from `offset`, if they lie in the segment.
    fn range_of<T>(&self, offset: usize, len: usize) -> Result<Range<usize>> {
        let end = std::mem::size_of::<T>()
            .checked_mul(len)
            .and_then(|size| offset.checked_add(size));
        match end {
            Some(end) if end <= self.len() => Ok(offset..end),
            _ => Err(Error::new(ErrorKind::InvalidSize, Operation::View, self.label_text())
                .with_detail(format!(
                    "{len} x {} ({} bytes each) at offset {offset} lie beyond the segment's {} bytes",
                    std::any::type_name::<T>(),
                    std::mem::size_of::<T>(),
                    self.len()
                ))),
        }
    }

    fn cast_error<T>(&self, e: PodCastError, offset: usize) -> Error {
        cast_error::<T>(e, offset, self.label_text())
    }
}

#[cold]
fn cast_error<T>(e: PodCastError, offset: usize, label: String) -> Error {
    let detail = match e {
        PodCastError::TargetAlignmentGreaterAndInputNotAligned
        | PodCastError::AlignmentMismatch => format!(
            "offset {offset} is not aligned for {} (alignment {})",
            std::any::type_name::<T>(),
            std::mem::align_of::<T>()
        ),
        other => format!(
            "{} at offset {offset}: {other:?}",
            std::any::type_name::<T>()
        ),
    };
    Error::new(ErrorKind::Layout, Operation::View, label).with_detail(detail)
}
