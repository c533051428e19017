//! Unit tests of `SharedMemory` that need to reach inside it.

use super::*;
use std::cell::Cell;

thread_local! {
    /// Makes the next populate on this thread fail, as a full file system or memory
    /// limit would (there is no way to make the kernel fail it on demand).
    pub(super) static FAIL_POPULATE: Cell<bool> = const { Cell::new(false) };
}

/// A populating `create` that fails removes the segment it made, under either policy.
#[test]
fn a_failed_populating_create_leaves_nothing() {
    let types = [KeyType::SystemV, KeyType::PosixRealtime, KeyType::Windows];
    for key_type in types
        .into_iter()
        .filter(|&t| crate::platform::is_key_type_supported(t))
    {
        for policy in [LastDetach::Remove, LastDetach::Keep] {
            let name = format!("qshm-unit-populate-{}-{policy:?}", std::process::id());
            let key = NativeKey::legacy(&name, key_type);
            let mut shm = SharedMemory::with_native_key(key.clone());
            shm.set_populate(true);
            shm.set_last_detach(policy);
            FAIL_POPULATE.with(|f| f.set(true));
            let err = shm.create(4096, AccessMode::ReadWrite).unwrap_err();
            let left = Segment::exists(&key);
            let _ = SharedMemory::force_remove(&key);
            assert_eq!(err.kind(), ErrorKind::OutOfResources, "{err}");
            assert!(!shm.is_attached());
            assert!(
                !left,
                "{key_type:?} {policy:?}: the failed create left its segment"
            );
            assert_eq!(shm.last_detach(), policy);
        }
    }
}
