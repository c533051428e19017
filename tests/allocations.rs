//! What a failure costs: a `try_lock` that finds the lock held allocates the error and the
//! copy kept for `last_error()`, and formats nothing (the key's text is made once per
//! object). A global allocator counts the calling thread's allocations.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use qshm::{AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory};
use util::{Cleanup, Watchdog};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell` that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn allocations_of(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn a_failing_try_lock_allocates_twice_and_formats_nothing() {
    let _w = Watchdog::new("failing_try_lock_allocations", Duration::from_secs(60));
    for key_type in [KeyType::SystemV, KeyType::PosixRealtime] {
        let key = NativeKey::legacy(&util::unique_key("alloc"), key_type);
        let _c = Cleanup::new().segment(&key);
        let mut holder = SharedMemory::with_native_key(key.clone());
        holder.create(64, AccessMode::ReadWrite).unwrap();
        let mut other = SharedMemory::with_native_key(key.clone());
        other.attach(AccessMode::ReadWrite).unwrap();
        let guard = holder.lock().unwrap();
        // From another thread (in this one, the holder, any object says LockError at once);
        // the count is per thread. The first failure may open the lock (POSIX opens it
        // lazily): not counted.
        let (kind, n) = std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(other.try_lock().unwrap_err().kind(), ErrorKind::WouldBlock);
                let mut kind = None;
                let n = allocations_of(|| kind = other.try_lock().err().map(|e| e.kind()));
                (kind, n)
            })
            .join()
            .unwrap()
        });
        assert_eq!(kind, Some(ErrorKind::WouldBlock));
        assert!(
            n <= 2,
            "{key_type:?}: a failing try_lock allocated {n} times"
        );
        drop(guard);
    }
}
