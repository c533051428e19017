//! Targets without a backend: everything compiles, nothing can be created or attached, and
//! every operation reports [`ErrorKind::Unsupported`].

use crate::backend::{RawSegment, RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{Error, ErrorKind, Operation, Result};
use crate::{AccessMode, NativeKey};

/// An error from an `errno` value (inspection's calls on other Unix systems); no backend
/// here maps errno values, so the kind is `Unknown` and the OS error says the rest.
#[cfg(qshm_unix_other)]
pub(crate) fn os_error(errno: i32, op: Operation, key: impl Into<std::sync::Arc<str>>) -> Error {
    Error::new(ErrorKind::Unknown, op, key).with_errno(errno)
}

fn unsupported<T>(op: Operation, key: &NativeKey) -> Result<T> {
    Err(Error::new(ErrorKind::Unsupported, op, key.to_string()))
}

/// Uninhabited: no segment can exist on this target.
#[derive(Debug)]
pub(crate) enum Segment {}

/// Uninhabited: no semaphore can exist on this target.
#[derive(Debug)]
pub(crate) enum Semaphore {}

impl crate::backend::sealed::Sealed for Segment {}
impl crate::backend::sealed::Sealed for Semaphore {}

// SAFETY: `Segment` is uninhabited: no value exists to break the contract.
unsafe impl RawSegment for Segment {
    fn create(key: &NativeKey, _: usize, _: AccessMode, _: u32) -> Result<Segment> {
        unsupported(Operation::Create, key)
    }
    fn attach(key: &NativeKey, _: AccessMode) -> Result<Segment> {
        unsupported(Operation::Attach, key)
    }
    fn ptr(&self) -> *mut u8 {
        match *self {}
    }
    fn len(&self) -> usize {
        match *self {}
    }
    fn writable(&self) -> bool {
        match *self {}
    }
    fn exists(_: &NativeKey) -> bool {
        false
    }
    fn remove(key: &NativeKey, _: bool) -> Result<bool> {
        unsupported(Operation::Remove, key)
    }
    fn detach(self, _: bool, _: bool) -> Result<crate::backend::Detached> {
        match self {}
    }
}

impl RawSemaphore for Semaphore {
    fn open(key: &NativeKey, _: u32, _: SemOpen, _: u32) -> Result<(Semaphore, bool)> {
        unsupported(Operation::SemaphoreOpen, key)
    }
    fn acquire(&self, _: Wait, _: Undo, _: Operation) -> Result<bool> {
        match *self {}
    }
    fn release(&self, _: u32, _: Undo, _: Operation) -> Result<()> {
        match *self {}
    }
    fn waiters(&self) -> usize {
        match *self {}
    }
    fn remove(&self) -> Result<()> {
        match *self {}
    }
}

/// Nothing to populate where no backend exists.
pub(crate) fn populate<M: crate::sys::Mapping>(_: &M, _: bool) -> std::io::Result<()> {
    Ok(())
}
