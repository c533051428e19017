//! The trait-level conformance suite: what every backend's [`RawSegment`] and
//! [`RawSemaphore`] must do, written once, generic over the two traits.
//!
//! A backend instantiates it with one line in its platform module's tests:
//!
//! ```ignore
//! crate::sys::conformance::suite!(posix, PosixSegment, PosixSemaphore, KeyType::PosixRealtime);
//! ```
//!
//! The suite over [`SharedMemory`](crate::SharedMemory) (`tests/conformance`) checks the
//! public behaviour across processes; this one checks each backend on its own, through the
//! contract alone, so that a new backend fails here first, with the backend's name.

use std::time::{Duration, Instant};

use crate::backend::{Detached, RawSegment, RawSemaphore, SemOpen, Undo, Wait};
use crate::error::{ErrorKind, Operation};
use crate::{AccessMode, KeyType, NativeKey};

/// A key no other test uses, removed (segment, key file and semaphore) when dropped, even
/// when the test fails.
pub(crate) struct TestKey<S: RawSegment, M: RawSemaphore> {
    pub(crate) key: NativeKey,
    _types: std::marker::PhantomData<(S, M)>,
}

impl<S: RawSegment, M: RawSemaphore> TestKey<S, M> {
    pub(crate) fn new(key_type: KeyType, what: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "qshmtest-contract-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        TestKey {
            key: NativeKey::legacy(&name, key_type),
            _types: std::marker::PhantomData,
        }
    }
}

impl<S: RawSegment, M: RawSemaphore> Drop for TestKey<S, M> {
    fn drop(&mut self) {
        let _ = S::remove(&self.key, false);
        if let Ok((sem, _)) = M::open(&self.key, 1, SemOpen::Existing, 0o600) {
            let _ = sem.remove();
        }
    }
}

/// Writes through one mapping, reads through another, and the last detach removes.
pub(crate) fn create_attach_detach<S: RawSegment, M: RawSemaphore>(key_type: KeyType) {
    let k = TestKey::<S, M>::new(key_type, "life");
    assert!(!S::exists(&k.key));
    let created = S::create(&k.key, 100, AccessMode::ReadWrite, 0o600).unwrap();
    assert!(created.len() >= 100, "len {}", created.len());
    assert!(created.writable());
    assert!(S::exists(&k.key));
    // SAFETY: the mapping is writable and at least 100 bytes long (checked above), and no
    // other handle to it exists yet.
    unsafe { std::ptr::copy_nonoverlapping(b"contract".as_ptr(), created.ptr(), 8) };
    let reader = S::attach(&k.key, AccessMode::ReadOnly).unwrap();
    assert!(!reader.writable());
    if S::PERSISTENT {
        assert_eq!(reader.len(), created.len());
    } else {
        // Windows reports an attacher the section's size rounded up to pages (Wine does;
        // Qt reports that to everyone), its creator the size it asked for.
        assert!(reader.len() >= created.len(), "{}", reader.len());
    }
    // SAFETY: the mapping is at least 100 bytes long and nobody writes it now.
    let seen = unsafe { std::slice::from_raw_parts(reader.ptr(), 8) }.to_vec();
    assert_eq!(seen, b"contract");
    reader.populate(false).unwrap();
    assert_eq!(created.detach(true, true).unwrap(), Detached::Kept);
    assert!(S::exists(&k.key));
    assert_eq!(reader.detach(true, true).unwrap(), Detached::Removed);
    assert!(!S::exists(&k.key));
}

/// New segments are zeroed, a taken key is `AlreadyExists`, a missing one `NotFound`.
pub(crate) fn errors<S: RawSegment, M: RawSemaphore>(key_type: KeyType) {
    let k = TestKey::<S, M>::new(key_type, "errors");
    assert_eq!(
        S::attach(&k.key, AccessMode::ReadOnly).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(!S::remove(&k.key, true).unwrap());
    let seg = S::create(&k.key, 4096, AccessMode::ReadWrite, 0o600).unwrap();
    seg.populate(true).unwrap();
    // SAFETY: the mapping is at least 4096 bytes long and nobody else has it.
    let bytes = unsafe { std::slice::from_raw_parts(seg.ptr(), 4096) };
    assert!(bytes.iter().all(|&b| b == 0));
    let again = S::create(&k.key, 4096, AccessMode::ReadWrite, 0o600);
    assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);
    assert_eq!(seg.detach(true, true).unwrap(), Detached::Removed);
}

/// `remove` respects attachments unless forced; a detach after a forced removal says so;
/// a segment kept by its policy is an orphan that `remove` takes. Where segments go with
/// their last handle, nothing can be kept or removed, and the last detach destroys.
pub(crate) fn removal<S: RawSegment, M: RawSemaphore>(key_type: KeyType) {
    let k = TestKey::<S, M>::new(key_type, "remove");
    let seg = S::create(&k.key, 64, AccessMode::ReadWrite, 0o600).unwrap();
    assert!(!S::remove(&k.key, true).unwrap(), "removed while attached");
    assert!(S::exists(&k.key));
    if !S::PERSISTENT {
        let err = S::remove(&k.key, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        assert!(S::exists(&k.key));
        assert_eq!(seg.detach(false, false).unwrap(), Detached::Removed);
        assert!(!S::exists(&k.key));
        return;
    }
    assert!(S::remove(&k.key, false).unwrap());
    assert!(!S::exists(&k.key));
    assert_eq!(seg.detach(true, true).unwrap(), Detached::AlreadyRemoved);

    let kept = S::create(&k.key, 64, AccessMode::ReadWrite, 0o600).unwrap();
    assert_eq!(kept.detach(false, false).unwrap(), Detached::Kept);
    assert!(S::exists(&k.key));
    assert!(S::remove(&k.key, true).unwrap());
    assert!(!S::exists(&k.key));
}

/// Counting, polling, timeouts, sharing by name, removal.
pub(crate) fn semaphore<S: RawSegment, M: RawSemaphore>(key_type: KeyType) {
    let k = TestKey::<S, M>::new(key_type, "sem");
    let op = Operation::Acquire;
    assert_eq!(
        M::open(&k.key, 1, SemOpen::Existing, 0o600)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let (sem, created) = M::open(&k.key, 1, SemOpen::CreateOrOpen, 0o600).unwrap();
    assert!(created);
    assert!(sem.still_named());
    let (other, created) = M::open(&k.key, 5, SemOpen::OpenOrCreate, 0o600).unwrap();
    assert!(!created, "an existing semaphore was created again");
    assert!(!sem.acquire(Wait::Poll, Undo::No, op).unwrap());
    assert_eq!(
        other.acquire(Wait::Poll, Undo::No, op).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    let start = Instant::now();
    let err = other
        .acquire(Wait::For(Duration::from_millis(50)), Undo::No, op)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(start.elapsed() >= Duration::from_millis(50));
    other.release(2, Undo::No, Operation::Release).unwrap();
    sem.acquire(Wait::Forever, Undo::No, op).unwrap();
    other
        .acquire(Wait::For(Duration::from_secs(5)), Undo::No, op)
        .unwrap();
    // The segment lock's way: held with undo, released with undo.
    other.release(1, Undo::No, Operation::Release).unwrap();
    assert!(!sem.acquire(Wait::Poll, Undo::Yes, op).unwrap());
    assert_eq!(
        other.acquire(Wait::Poll, Undo::Yes, op).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    sem.release(1, Undo::Yes, Operation::Release).unwrap();
    // Qt's Create mode resets the value where the platform's Qt does (not on Windows).
    let (reset, _) = M::open(&k.key, 3, SemOpen::CreateOrReset, 0o600).unwrap();
    let units = if M::PERSISTENT { 3 } else { 1 };
    for _ in 0..units {
        reset.acquire(Wait::Poll, Undo::No, op).unwrap();
    }
    assert_eq!(
        reset.acquire(Wait::Poll, Undo::No, op).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    drop((other, reset));
    sem.remove().unwrap();
    if !M::PERSISTENT {
        drop(sem); // the last handle: the semaphore goes with it
    }
    assert_eq!(
        M::open(&k.key, 1, SemOpen::Existing, 0o600)
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

/// Instantiates the suite for one backend: `suite!(module_name, Segment, Semaphore, KeyType)`.
macro_rules! suite {
    ($name:ident, $seg:ty, $sem:ty, $key_type:expr) => {
        mod $name {
            use super::*;
            use crate::sys::conformance as c;

            #[test]
            fn create_attach_detach() {
                c::create_attach_detach::<$seg, $sem>($key_type);
            }
            #[test]
            fn errors() {
                c::errors::<$seg, $sem>($key_type);
            }
            #[test]
            fn removal() {
                c::removal::<$seg, $sem>($key_type);
            }
            #[test]
            fn semaphore() {
                c::semaphore::<$seg, $sem>($key_type);
            }
        }
    };
}
pub(crate) use suite;
