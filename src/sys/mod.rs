//! Operating-system backends. The only place with `unsafe` code and `cfg(target_os)`.
//!
//! `imp` is the platform module; it provides the dispatch enums `Segment` and `Semaphore`
//! (one variant per backend available on the platform), the naming rules and the helpers the
//! portable code needs. Each backend implements the contract in [`crate::backend`].
//! `locked` turns a mapping into slices for the holder of its lock, the one place shared
//! memory becomes Rust references.
#![allow(unsafe_code)]

#[cfg(target_os = "linux")]
#[path = "unix/mod.rs"]
mod imp;

#[cfg(not(target_os = "linux"))]
#[path = "unsupported.rs"]
mod imp;

mod locked;

pub(crate) use imp::*;
#[allow(unused_imports)] // implemented by the backends that land next
pub(crate) use locked::SegmentLock;
pub(crate) use locked::{InProcessLock, Locked, Mapping};
