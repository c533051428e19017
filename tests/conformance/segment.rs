//! tst_qsharedmemory, ported: each function takes the key type under test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use qshm::{AccessMode, ErrorKind, KeyType, NativeKey, SharedMemory};

use crate::util::{self, ChildProc, Cleanup};

/// Whether segments of this key type go with their last handle (Windows): nothing is ever
/// orphaned, and nothing can be removed while in use.
fn goes_with_last_handle(t: KeyType) -> bool {
    t == KeyType::Windows
}

/// Whether `attacher`'s size agrees with the creator's `created`: equal, except that Windows
/// under Wine reports an attacher the size rounded up to pages (`NtQuerySection`).
fn same_size(t: KeyType, attacher: usize, created: usize) -> bool {
    attacher == created
        || (goes_with_last_handle(t)
            && attacher >= created
            && attacher <= created.next_multiple_of(4096))
}

/// A legacy (Qt key) native key of type `t` for a fresh unique name.
fn legacy(t: KeyType, name: &str) -> (NativeKey, Cleanup) {
    let key = NativeKey::legacy(&util::unique_key(name), t);
    let cleanup = Cleanup::new().segment(&key);
    (key, cleanup)
}

pub(crate) fn constructor(_t: KeyType) {
    let shm = SharedMemory::new();
    assert!(!shm.is_attached());
    assert!(shm.as_ptr().is_null());
    assert!(shm.as_mut_ptr().is_null());
    assert!(shm.native_key().is_empty());
    assert_eq!(shm.native_key(), &NativeKey::default());
    assert_eq!(shm.size(), 0);
    assert_eq!(shm.error(), None);
    assert_eq!(shm.error_string(), "");
    assert_eq!(shm.key(), None);
}

pub(crate) fn native_key(t: KeyType) {
    let name = util::unique_key("nativekey");
    let k = NativeKey::platform_safe(&name, t);
    let mut shm = SharedMemory::with_native_key(k.clone());
    assert_eq!(shm.native_key(), &k);
    assert_eq!(shm.key(), None);
    assert_eq!(shm.error(), None);
    assert_eq!(
        shm.detach().map_err(|e| e.kind()),
        Err(ErrorKind::NotAttached)
    );

    let mut other = SharedMemory::new();
    other.set_native_key(k.clone());
    assert_eq!(other.native_key(), &k);
    assert_eq!(other.error(), None);

    // Switching to another key type of the same name.
    let other_type = if t == KeyType::SystemV {
        KeyType::from_raw(0x54).unwrap()
    } else {
        KeyType::SystemV
    };
    let k2 = NativeKey::platform_safe(&name, other_type);
    other.set_native_key(k2.clone());
    assert_eq!(other.native_key(), &k2);
    assert_eq!(other.native_key().key_type(), other_type);
}

pub(crate) fn legacy_key(t: KeyType) {
    for key in ["o/e", "t/o", "|x", "hello"] {
        let mut shm = SharedMemory::with_native_key(NativeKey::legacy(key, t));
        assert_eq!(shm.key(), Some(key));
        assert_eq!(shm.native_key().legacy_key(), Some(key));
        let mut by_set = SharedMemory::new();
        by_set.set_key(key);
        assert_eq!(by_set.key(), Some(key));
        // A native key without a Qt key nulls key().
        shm.set_native_key(NativeKey::new(shm.native_key().native_key().to_owned(), t));
        assert_eq!(shm.key(), None);
    }
}

pub(crate) fn create(t: KeyType) {
    // Null key: KeyError.
    let mut shm = SharedMemory::with_native_key(NativeKey::new("", t));
    let err = shm.create(1024, AccessMode::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyError);
    assert!(shm.as_ptr().is_null());
    assert!(!shm.error_string().is_empty());
    assert_eq!(shm.error(), Some(ErrorKind::KeyError));

    let (key, _c) = legacy(t, "create");
    // Size 0: InvalidSize (Qt: -1 and 0), and no side objects.
    let mut shm = SharedMemory::with_native_key(key.clone());
    let err = shm.create(0, AccessMode::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidSize);
    assert!(shm.as_ptr().is_null());
    assert!(!shm.error_string().is_empty());
    assert_eq!(
        util::objects_left(&key),
        Vec::<String>::new(),
        "size 0 left objects"
    );

    // 1024: fine.
    shm.create(1024, AccessMode::ReadWrite).unwrap();
    assert!(shm.is_attached());
    assert!(shm.size() >= 1024);
    assert_eq!(shm.error(), None);
    assert!(!shm.as_ptr().is_null());

    // Existing: AlreadyExists, not attached.
    let mut again = SharedMemory::with_native_key(key.clone());
    let err = again.create(1024, AccessMode::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert!(again.as_ptr().is_null());
    assert!(!again.is_attached());
    assert!(err.to_string().contains(&key.to_string()), "{err}");

    // Already attached.
    let err = shm.create(16, AccessMode::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyAttached);
}

pub(crate) fn attach(t: KeyType) {
    let mut shm = SharedMemory::with_native_key(NativeKey::new("", t));
    assert_eq!(
        shm.attach(AccessMode::ReadWrite).unwrap_err().kind(),
        ErrorKind::KeyError
    );

    let (missing, _c1) = legacy(t, "doesntexist");
    let mut shm = SharedMemory::with_native_key(missing.clone());
    assert_eq!(
        shm.attach(AccessMode::ReadWrite).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(!shm.is_attached());
    assert_eq!(shm.error(), Some(ErrorKind::NotFound));

    let (key, _c2) = legacy(t, "existing");
    let mut creator = SharedMemory::with_native_key(key.clone());
    creator.create(1024, AccessMode::ReadWrite).unwrap();
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.attach(AccessMode::ReadWrite).unwrap();
    assert!(shm.is_attached());
    assert!(
        same_size(t, shm.size(), creator.size()),
        "{} vs {}",
        shm.size(),
        creator.size()
    );
    assert_eq!(
        shm.attach(AccessMode::ReadWrite).unwrap_err().kind(),
        ErrorKind::AlreadyAttached
    );
    shm.detach().unwrap();
    assert_eq!(shm.size(), 0);
    assert!(shm.as_ptr().is_null());
    shm.attach(AccessMode::ReadOnly).unwrap();
    assert_eq!(shm.access_mode(), Some(AccessMode::ReadOnly));
    shm.detach().unwrap();
    assert_eq!(shm.size(), 0);
}

pub(crate) fn change_key_type(t: KeyType) {
    let name = util::unique_key("changekeytype");
    let key = NativeKey::platform_safe(&name, t);
    let _c = Cleanup::new().segment(&key);
    let mut creator = SharedMemory::with_native_key(key);
    creator.create(512, AccessMode::ReadWrite).unwrap();
    let other_type = if t == KeyType::SystemV {
        KeyType::from_raw(0x54).unwrap()
    } else {
        KeyType::SystemV
    };
    let other = NativeKey::platform_safe(&name, other_type);
    let _c2 = Cleanup::new().segment(&other);
    let mut shm = SharedMemory::with_native_key(other);
    let err = shm.attach(AccessMode::ReadWrite).unwrap_err();
    // On Windows a System V key names nothing (Qt derives ""): an empty key.
    let expected = if goes_with_last_handle(t) {
        ErrorKind::KeyError
    } else {
        ErrorKind::NotFound
    };
    assert_eq!(err.kind(), expected, "{err}");
}

pub(crate) fn lock(t: KeyType) {
    let shm = SharedMemory::new();
    assert_eq!(shm.lock().unwrap_err().kind(), ErrorKind::LockError);
    assert_eq!(shm.error(), Some(ErrorKind::LockError));

    let (key, _c) = legacy(t, "lock");
    let mut shm = SharedMemory::with_native_key(key);
    // A key but not created yet.
    assert_eq!(shm.lock().unwrap_err().kind(), ErrorKind::LockError);
    shm.create(100, AccessMode::ReadWrite).unwrap();
    let guard = shm.lock().unwrap();
    // Qt returns true with a warning; a second guard would alias the memory and a second
    // semaphore acquire would deadlock, so qshm says LockError instead.
    let err = shm.lock().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockError);
    assert!(err.to_string().contains("already locked"), "{err}");
    guard.unlock().unwrap();
    // And it can be taken again.
    drop(shm.lock().unwrap());
    shm.detach().unwrap();
    assert_eq!(shm.lock().unwrap_err().kind(), ErrorKind::LockError);
}

/// Runs `f` on a thread of its own and returns what it returned.
fn in_another_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// The lock belongs to the process, not to an object: a second object for the key, locked
/// by the thread that holds the lock through the first, gets `LockError` (it used to wait on
/// itself for ever); from another thread it waits for the first holder, as another process
/// would.
pub(crate) fn lock_through_a_second_object(t: KeyType) {
    let (key, _c) = legacy(t, "locksecondobject");
    let mut first = SharedMemory::with_native_key(key.clone());
    first.create(64, AccessMode::ReadWrite).unwrap();
    let mut second = SharedMemory::with_native_key(key.clone());
    second.attach(AccessMode::ReadWrite).unwrap();
    let mut guard = first.lock().unwrap();
    let err = second.lock().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockError, "{err}");
    assert!(err.to_string().contains("already locked"), "{err}");
    assert_eq!(second.try_lock().unwrap_err().kind(), ErrorKind::LockError);
    let err = second.lock_timeout(Duration::from_millis(10)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockError, "{err}");
    // Another thread waits for the holder, whichever object it uses.
    guard.as_mut_slice().unwrap()[0] = 1;
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut g = second.lock().unwrap();
            let b = g.as_mut_slice().unwrap();
            assert_eq!(b[0], 2, "the waiter got in before the holder was done");
            b[0] = 3;
        });
        std::thread::sleep(Duration::from_millis(50));
        guard.as_mut_slice().unwrap()[0] = 2;
        drop(guard);
        waiter.join().unwrap();
    });
    // create, attach and detach take the lock too: in the holding thread they say so
    // instead of waiting for ever.
    // (A POSIX attach takes no lock, and a detach that is not the last may take none;
    // on Windows, where the system destroys a segment with its last handle, none of the
    // three needs it.)
    let guard = first.lock().unwrap();
    let mut third = SharedMemory::with_native_key(key.clone());
    let err = third.create(64, AccessMode::ReadWrite).unwrap_err();
    let expected = if goes_with_last_handle(t) {
        ErrorKind::AlreadyExists
    } else {
        ErrorKind::LockError
    };
    assert_eq!(err.kind(), expected, "{err}");
    if t.is_system_v() {
        let err = third.attach(AccessMode::ReadWrite).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LockError, "{err}");
        let err = second.detach().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LockError, "{err}");
        assert!(second.is_attached());
    }
    drop(guard);
    assert_eq!(first.lock().unwrap().as_slice()[0], 3);
    // Dropping every object of the key forgets it; new ones lock as usual.
    second.detach().unwrap();
    drop(second);
    first.detach().unwrap();
}

/// A process forks while holding the lock: the child's copy of the guard, dropped, must not
/// release the parent's lock (it used to: POSIX then stayed at 2 for good, System V until
/// the child exited), and the parent's own unlock still works.
#[cfg(unix)]
pub(crate) fn a_forked_copy_of_a_guard_does_not_unlock(t: KeyType) {
    let (key, _c) = legacy(t, "forkguard");
    let mut child = ChildProc::spawn("fork_while_locked", &[&key.to_string()]);
    assert_eq!(child.expect_line(Duration::from_secs(60)), "kept");
    assert!(child.wait(Duration::from_secs(30)).success());
}

/// A detach waits for the lock only so long (Qt's waits for ever: behind a holder that keeps
/// it, or a Qt holder that died holding a POSIX lock, a drop hung): then it detaches without
/// it, says so (`Timeout`), and leaves the segment to the last user, whose detach removes
/// everything as usual.
pub(crate) fn detach_does_not_wait_for_ever(t: KeyType) {
    // No sibling test forks while the segment is mapped here (for ~0.3 s): a forked copy
    // keeps a System V attachment until it execs, and the last detach rightly keeps the
    // segment for it (every spawn is a real fork under qemu-user).
    let _quiet = util::no_spawns();
    let (key, _c) = legacy(t, "boundeddetach");
    let mut holder = SharedMemory::with_native_key(key.clone());
    holder.create(64, AccessMode::ReadWrite).unwrap();
    assert_eq!(holder.detach_timeout(), Duration::from_secs(10));
    // Attached before the lock is taken (a System V attach waits for it, as Qt's does);
    // each locks once, so that its detach needs the lock (POSIX attaches without).
    let mut other = SharedMemory::with_native_key(key.clone());
    other.attach(AccessMode::ReadWrite).unwrap();
    drop(other.lock().unwrap());
    let mut dropped = SharedMemory::with_native_key(key.clone());
    dropped.attach(AccessMode::ReadWrite).unwrap();
    drop(dropped.lock().unwrap());
    let guard = holder.lock().unwrap();
    if goes_with_last_handle(t) {
        // The system destroys the segment with its last handle: detach takes no lock, and
        // so waits for nobody.
        std::thread::scope(|s| {
            s.spawn(|| {
                other.set_detach_timeout(Duration::from_millis(200));
                other.detach().unwrap();
                assert!(!other.is_attached());
                drop(dropped);
            })
            .join()
            .unwrap();
        });
        drop(guard);
        holder.detach().unwrap();
        assert_eq!(util::objects_left(&key), Vec::<String>::new());
        return;
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            other.set_detach_timeout(Duration::from_millis(200));
            let err = other.detach().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
            assert!(err.to_string().contains("detached without it"), "{err}");
            assert!(!other.is_attached());
            // And a drop returns too.
            dropped.set_detach_timeout(Duration::from_millis(100));
            drop(dropped);
        })
        .join()
        .unwrap();
    });
    drop(guard);
    holder.detach().unwrap();
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
}

pub(crate) fn remove_while_attached(t: KeyType) {
    let (key, _c) = legacy(t, "removewhileattached");
    {
        let mut creator = SharedMemory::with_native_key(key.clone());
        creator.create(1024, AccessMode::ReadWrite).unwrap();
        let mut attacher = SharedMemory::with_native_key(key.clone());
        attacher.attach(AccessMode::ReadWrite).unwrap();
    }
    let mut third = SharedMemory::with_native_key(key.clone());
    assert_eq!(
        third.attach(AccessMode::ReadWrite).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

pub(crate) fn empty_memory(t: KeyType) {
    let (key, _c) = legacy(t, "emptymemory");
    let mut shm = SharedMemory::with_native_key(key);
    shm.create(1024, AccessMode::ReadOnly).unwrap();
    let guard = shm.lock().unwrap();
    assert!(guard.as_slice().iter().all(|&b| b == 0));
    assert_eq!(guard.len(), shm.size());
}

pub(crate) fn read_only(t: KeyType) {
    let (key, _c) = legacy(t, "readonly");
    let text = key.to_string();
    // The child creates ReadOnly and writes through the raw pointer: it must die by SIGSEGV.
    let mut child = ChildProc::spawn("write_read_only", &[&text]);
    let status = child.wait(Duration::from_secs(30));
    assert!(died_of_access_violation(status), "child status {status:?}");
    // The safe API refuses as well.
    let mut shm = SharedMemory::with_native_key(key);
    // The crashed child left an orphan; adopt or create.
    if shm.create(64, AccessMode::ReadOnly).is_err() {
        shm.attach(AccessMode::ReadOnly).unwrap();
    }
    let mut guard = shm.lock().unwrap();
    assert_eq!(
        guard.as_mut_slice().unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
}

/// Whether a process died writing where it may not: SIGSEGV, or Windows's
/// `STATUS_ACCESS_VIOLATION`.
fn died_of_access_violation(status: std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal() == Some(11)
    }
    #[cfg(windows)]
    {
        // STATUS_ACCESS_VIOLATION; Wine without a debugger ends an unhandled exception with
        // STATUS_DEBUGGER_INACTIVE.
        matches!(
            status.code().map(|c| c as u32),
            Some(0xC000_0005 | 0xC000_0354)
        )
    }
}

fn attach_before_create(key: NativeKey) {
    let _c = Cleanup::new().segment(&key);
    // The last detach must find itself the last: no sibling test's fork may hold a copy
    // of an attachment meanwhile (under qemu-user every spawn is a real fork; see
    // `util::no_spawns`).
    let _quiet = util::no_spawns();
    let mut shm = SharedMemory::with_native_key(key.clone());
    assert_eq!(
        shm.attach(AccessMode::ReadOnly).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    shm.create(1024, AccessMode::ReadWrite).unwrap();
    assert!(shm.is_attached());
    shm.detach().unwrap();
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
}

pub(crate) fn attach_before_create_legacy(t: KeyType) {
    attach_before_create(NativeKey::legacy(&util::unique_key("abc-legacy"), t));
}

pub(crate) fn attach_before_create_native(t: KeyType) {
    attach_before_create(NativeKey::platform_safe(&util::unique_key("abc-native"), t));
}

fn producer_consumer(t: KeyType, consumer_mode: AccessMode) {
    let (key, _c) = legacy(t, "producerconsumer");
    let mut producer = SharedMemory::with_native_key(key.clone());
    producer.create(4096, AccessMode::ReadWrite).unwrap();
    let message = b"the quick brown fox jumps over the lazy dog";
    producer.lock().unwrap().as_mut_slice().unwrap()[..message.len()].copy_from_slice(message);
    let mut consumer = SharedMemory::with_native_key(key);
    consumer.attach(consumer_mode).unwrap();
    assert_ne!(consumer.as_ptr(), producer.as_ptr(), "a distinct mapping");
    assert_eq!(
        &consumer.lock().unwrap().as_slice()[..message.len()],
        message
    );
}

pub(crate) fn simple_producer_consumer_read_only(t: KeyType) {
    producer_consumer(t, AccessMode::ReadOnly);
}

pub(crate) fn simple_producer_consumer_read_write(t: KeyType) {
    producer_consumer(t, AccessMode::ReadWrite);
}

pub(crate) fn simple_double_producer_consumer(t: KeyType) {
    let (key, _c) = legacy(t, "doubleproducerconsumer");
    let mut producer = SharedMemory::with_native_key(key.clone());
    producer.create(4096, AccessMode::ReadWrite).unwrap();
    producer.detach().unwrap();
    producer.create(4096, AccessMode::ReadWrite).unwrap();
    let mut consumer = SharedMemory::with_native_key(key);
    consumer.attach(AccessMode::ReadOnly).unwrap();
}

/// A lock-protected hand-off: the producer puts `rounds` values one at a time; consumers
/// (each with its own object, in its own thread) take them. Every value arrives once.
fn threaded_producer_consumer(t: KeyType, consumers: usize) {
    let (key, _c) = legacy(t, "threadedpc");
    let rounds = 200u64;
    let mut producer = SharedMemory::with_native_key(key.clone());
    producer.create(64, AccessMode::ReadWrite).unwrap();
    let start = Arc::new(Barrier::new(consumers + 1));
    let done = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..consumers)
        .map(|_| {
            let key = key.clone();
            let start = start.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let mut shm = SharedMemory::with_native_key(key);
                shm.attach(AccessMode::ReadWrite).unwrap();
                start.wait();
                let mut sum = 0u64;
                while !done.load(Ordering::Acquire) {
                    let mut g = shm.lock().unwrap();
                    let bytes = g.as_mut_slice().unwrap();
                    if bytes[0] == b'Q' {
                        sum += util::read_u64(&bytes[8..]);
                        bytes[0] = b'E';
                    }
                    drop(g);
                    std::thread::yield_now();
                }
                sum
            })
        })
        .collect();
    start.wait();
    let mut sent = 0;
    for value in 1..=rounds {
        loop {
            let mut g = producer.lock().unwrap();
            let bytes = g.as_mut_slice().unwrap();
            if bytes[0] != b'Q' {
                util::write_u64(&mut bytes[8..], value);
                bytes[0] = b'Q';
                sent += value;
                break;
            }
            drop(g);
            std::thread::yield_now();
        }
    }
    // Wait for the last value to be taken.
    while producer.lock().unwrap().as_slice()[0] == b'Q' {
        std::thread::yield_now();
    }
    done.store(true, Ordering::Release);
    let received: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(received, sent);
}

pub(crate) fn simple_threaded_producer_consumer_1(t: KeyType) {
    threaded_producer_consumer(t, 1);
}

pub(crate) fn simple_threaded_producer_consumer_5(t: KeyType) {
    threaded_producer_consumer(t, 5);
}

/// The multi-process version (QSKIP'd upstream as unstable; stable here): the key crosses
/// processes in its text form.
pub(crate) fn simple_process_producer_consumer(t: KeyType) {
    let (key, _c) = legacy(t, "processpc");
    let text = key.to_string();
    let mut producer = ChildProc::spawn("producer", &[&text, "300"]);
    assert_eq!(producer.expect_line(Duration::from_secs(30)), "ready");
    let consumers: Vec<_> = (0..3)
        .map(|_| ChildProc::spawn("consumer", &[&text]))
        .collect();
    let sum: u64 = consumers
        .into_iter()
        .map(|mut c| {
            let line = c.expect_line(Duration::from_secs(60));
            assert!(c.wait(Duration::from_secs(30)).success());
            line.parse::<u64>().unwrap()
        })
        .sum();
    assert!(producer.wait(Duration::from_secs(30)).success());
    assert_eq!(sum, (1..=300u64).sum::<u64>());
}

pub(crate) fn use_too_much_memory(t: KeyType) {
    let (key, _c) = legacy(t, "toomuch");
    let mut shm = SharedMemory::with_native_key(key);
    // More than any machine has. On 32-bit targets that is more than a slice may span: a
    // 2 or 3 GiB segment can really be created and mapped by a 32-bit process.
    let sizes = match usize::try_from(1u64 << 50) {
        Ok(pib) => vec![pib, usize::MAX / 2, usize::MAX],
        Err(_) => vec![isize::MAX as usize + 1, usize::MAX],
    };
    for size in sizes {
        let err = shm.create(size, AccessMode::ReadWrite).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::OutOfResources | ErrorKind::InvalidSize
            ),
            "size {size}: {err}"
        );
        assert!(!shm.is_attached());
        assert_eq!(shm.size(), 0);
    }
}

pub(crate) fn unique_key(t: KeyType) {
    let rows = [
        ("key1", "key1", true),
        ("key1", "key2", false),
        ("key", "ke", false),
        ("key", "ke\u{0}y", false),
        ("Noël", "Nol", false),
        ("abc", "ABC", false),
        ("", "", true),
    ];
    for (a, b, same) in rows {
        let ka = NativeKey::legacy(a, t);
        let kb = NativeKey::legacy(b, t);
        assert_eq!(ka.native_key() == kb.native_key(), same, "{a:?} vs {b:?}");
    }
}

pub(crate) fn create_with_same_key(t: KeyType) {
    let (key, _c) = legacy(t, "createwithsamekey");
    let mut mem1 = SharedMemory::with_native_key(key.clone());
    let mut mem2 = SharedMemory::with_native_key(key.clone());
    for _ in 0..2 {
        mem1.create(1024, AccessMode::ReadWrite).unwrap();
        assert_eq!(
            mem2.create(1024, AccessMode::ReadWrite).unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        mem2.attach(AccessMode::ReadWrite).unwrap();
        mem2.detach().unwrap();
        mem1.detach().unwrap();
    }
}

/// docs/qt-ipc.md §8.3: after kill -9 of the creator, the `create() || attach()` idiom adopts the
/// orphan (as Qt 5.15 does; Qt 6.6+ reaps it in the failed create instead), and the
/// adopter's detach removes it.
pub(crate) fn orphan_after_crash_is_adopted(t: KeyType) {
    let (key, _c) = legacy(t, "orphan");
    let text = key.to_string();
    let mut child = ChildProc::spawn("create_and_hang", &[&text, "4096", "orphaned data"]);
    assert_eq!(child.expect_line(Duration::from_secs(30)), "ready");
    child.kill9();
    // The last detach must find itself the last: no sibling test's fork may hold a copy
    // of an attachment meanwhile (under qemu-user every spawn is a real fork; see
    // `util::no_spawns`).
    let _quiet = util::no_spawns();
    let mut shm = SharedMemory::with_native_key(key.clone());
    if goes_with_last_handle(t) {
        // Nothing outlives its last handle: the key is free again.
        shm.create(4096, AccessMode::ReadWrite).unwrap();
        assert!(shm.lock().unwrap().as_slice().iter().all(|&b| b == 0));
        return;
    }
    let err = shm.create(4096, AccessMode::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    shm.attach(AccessMode::ReadWrite).unwrap();
    assert_eq!(&shm.lock().unwrap().as_slice()[..13], b"orphaned data");
    shm.detach().unwrap();
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
    assert_eq!(
        shm.attach(AccessMode::ReadWrite).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// `remove_orphan` removes a segment nobody is attached to, and leaves one in use.
pub(crate) fn remove_orphan_cleans_up(t: KeyType) {
    let (key, _c) = legacy(t, "removeorphan");
    let text = key.to_string();
    let mut child = ChildProc::spawn("create_and_hang", &[&text, "4096", "x"]);
    assert_eq!(child.expect_line(Duration::from_secs(30)), "ready");
    // The last detach must find itself the last: no sibling test's fork may hold a copy
    // of an attachment meanwhile (under qemu-user every spawn is a real fork; see
    // `util::no_spawns`).
    let _quiet = util::no_spawns();
    // In use: not removed.
    assert!(!SharedMemory::remove_orphan(&key).unwrap());
    child.kill9();
    // Windows: gone with its last handle, nothing for remove_orphan to do.
    assert_eq!(
        SharedMemory::remove_orphan(&key).unwrap(),
        !goes_with_last_handle(t)
    );
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
    let mut shm = SharedMemory::with_native_key(key);
    assert_eq!(
        shm.attach(AccessMode::ReadWrite).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// docs/qt-ipc.md §8.4: a failing `create()` on an existing key must not break a lock
/// someone holds.
pub(crate) fn create_does_not_reset_held_lock(t: KeyType) {
    let (key, _c) = legacy(t, "createnoreset");
    let mut owner = SharedMemory::with_native_key(key.clone());
    owner.create(64, AccessMode::ReadWrite).unwrap();
    let guard = owner.lock().unwrap();
    let mut other = SharedMemory::with_native_key(key.clone());
    // create() waits for the lock in Qt too (it is serialised by it); run it in a thread.
    let handle = std::thread::spawn(move || {
        let err = other.create(64, AccessMode::ReadWrite).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
        other.attach(AccessMode::ReadWrite).unwrap();
        let start = Instant::now();
        let res = other.try_lock().map(|_| ()).map_err(|e| e.kind());
        (res, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(100));
    drop(guard);
    let (res, _) = handle.join().unwrap();
    if goes_with_last_handle(t) {
        // Create and attach take no lock there: they returned at once, and the lock the
        // failed create found held was still held.
        assert_eq!(res, Err(ErrorKind::WouldBlock));
    } else {
        // After the owner released, the lock is free exactly once, not twice.
        assert_eq!(res, Ok(()));
    }
    let g = owner.lock().unwrap();
    let mut third = SharedMemory::with_native_key(key);
    let third_err = std::thread::spawn(move || third.attach(AccessMode::ReadWrite).map(|_| third));
    std::thread::sleep(Duration::from_millis(50));
    if t.is_system_v() {
        // A System V attach is serialised by the lock, as in Qt (the last detach reads the
        // attach count under it), so it waits while `g` is held.
        assert!(
            !third_err.is_finished(),
            "attach did not wait for the held lock"
        );
    } else {
        // A POSIX attach needs no lock (its count is a `flock`), nor a Windows one (the
        // system counts handles); the lock stays held.
        assert!(
            third_err.is_finished(),
            "a POSIX or Windows attach waited for the lock"
        );
        let third = third_err.join().unwrap().unwrap();
        let held = in_another_thread(|| third.try_lock().map(|_| ()).map_err(|e| e.kind()));
        assert_eq!(held, Err(ErrorKind::WouldBlock));
        drop(g);
        assert_eq!(third.try_lock().map(|_| ()).map_err(|e| e.kind()), Ok(()));
        return;
    }
    drop(g);
    let third = third_err.join().unwrap().unwrap();
    assert_eq!(third.try_lock().map(|_| ()).map_err(|e| e.kind()), Ok(()));
}

pub(crate) fn try_lock_and_timeout(t: KeyType) {
    let (key, _c) = legacy(t, "trylock");
    let mut a = SharedMemory::with_native_key(key.clone());
    a.create(64, AccessMode::ReadWrite).unwrap();
    let mut b = SharedMemory::with_native_key(key);
    b.attach(AccessMode::ReadWrite).unwrap();
    let held = a.lock().unwrap();
    // `b` is used from another thread: in this one, which holds the key's lock, any object
    // for the key says LockError at once (lock_through_a_second_object).
    let start = Instant::now();
    let err = in_another_thread(|| b.try_lock().map(drop)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    assert!(start.elapsed() < Duration::from_millis(500));
    let start = Instant::now();
    let err = in_another_thread(|| b.lock_timeout(Duration::from_millis(100)).map(drop));
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Timeout);
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    drop(held);
    drop(b.lock_timeout(Duration::from_millis(100)).unwrap());
}

/// Unix ownership: the last detach removes the segment, its key file and its lock.
pub(crate) fn last_detach_removes_everything(t: KeyType) {
    for key in [
        NativeKey::legacy(&util::unique_key("lastdetach"), t),
        NativeKey::platform_safe(&util::unique_key("lastdetach-native"), t),
    ] {
        let _c = Cleanup::new().segment(&key);
        let mut a = SharedMemory::with_native_key(key.clone());
        a.create(128, AccessMode::ReadWrite).unwrap();
        let mut b = SharedMemory::with_native_key(key.clone());
        b.attach(AccessMode::ReadOnly).unwrap();
        a.detach().unwrap();
        assert!(
            !util::objects_left(&key).is_empty(),
            "removed while still attached"
        );
        b.detach().unwrap();
        assert_eq!(
            util::objects_left(&key),
            Vec::<String>::new(),
            "left by the last detach"
        );
        let mut c = SharedMemory::with_native_key(key.clone());
        assert_eq!(
            c.attach(AccessMode::ReadWrite).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}

/// Child roles.
pub(crate) fn child(args: &[String]) {
    let key: NativeKey = args[1].parse().expect("key text");
    match args[0].as_str() {
        #[cfg(unix)]
        "fork_while_locked" => {
            let mut shm = SharedMemory::with_native_key(key);
            shm.create(64, AccessMode::ReadWrite).expect("create");
            let guard = shm.lock().expect("lock");
            let (mut to_parent, mut to_child) = ([0; 2], [0; 2]);
            // SAFETY: two arrays of two descriptors, as pipe(2) fills.
            unsafe {
                assert_eq!(libc::pipe(to_parent.as_mut_ptr()), 0);
                assert_eq!(libc::pipe(to_child.as_mut_ptr()), 0);
            }
            let mut byte = 0u8;
            // SAFETY: the forked copy drops its guard (atomics, one allocation for the
            // refusal) in a child of a process whose other threads are idle test-harness
            // threads, writes and reads one byte, and leaves with _exit.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let refused = guard.unlock().is_err();
                // SAFETY: one byte from/to a valid local, on descriptors made above.
                unsafe {
                    libc::write(to_parent[1], (&u8::from(refused) as *const u8).cast(), 1);
                    libc::read(to_child[0], (&mut byte as *mut u8).cast(), 1);
                    libc::_exit(0);
                }
            }
            // SAFETY: one byte into a valid local, from the pipe made above.
            unsafe { libc::read(to_parent[0], (&mut byte as *mut u8).cast(), 1) };
            let refused = byte == 1;
            // While the copy lives (System V's undo would hide a wrong release after it
            // exits), another thread must find the lock still held.
            let while_alive = in_another_thread(|| shm.try_lock().map(drop).map_err(|e| e.kind()));
            // SAFETY: one byte from a valid local into the pipe made above; then our child.
            unsafe {
                libc::write(to_child[1], (&byte as *const u8).cast(), 1);
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
            }
            let after_exit = in_another_thread(|| shm.try_lock().map(drop).map_err(|e| e.kind()));
            drop(guard);
            // Exactly one unit now: one holder in, the next one out.
            let once = in_another_thread(|| {
                let g = shm.try_lock().map_err(|e| e.kind())?;
                let twice = in_another_thread(|| shm.try_lock().map(drop).map_err(|e| e.kind()));
                drop(g);
                Ok::<_, ErrorKind>(twice)
            });
            let report = format!(
                "refused {refused}, while alive {while_alive:?}, after exit {after_exit:?}, \
                 then {once:?}"
            );
            if refused
                && while_alive == Err(ErrorKind::WouldBlock)
                && after_exit == Err(ErrorKind::WouldBlock)
                && once == Ok(Err(ErrorKind::WouldBlock))
            {
                util::say("kept");
            } else {
                util::say(&report);
            }
            shm.detach().expect("detach");
        }
        "write_read_only" => {
            let mut shm = SharedMemory::with_native_key(key);
            shm.create(64, AccessMode::ReadOnly).expect("create");
            let p = shm.as_mut_ptr();
            // SAFETY: deliberately writing through a read-only mapping; the OS must kill us.
            unsafe { std::ptr::write_volatile(p, 1) };
            util::say("wrote"); // unreachable if the mapping is really read-only
            std::process::exit(0);
        }
        "create_and_hang" => {
            let size: usize = args[2].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.create(size, AccessMode::ReadWrite).expect("create");
            shm.lock().unwrap().as_mut_slice().unwrap()[..args[3].len()]
                .copy_from_slice(args[3].as_bytes());
            util::say("ready");
            std::thread::sleep(Duration::from_secs(600));
        }
        "producer" => {
            let rounds: u64 = args[2].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.create(64, AccessMode::ReadWrite).expect("create");
            util::say("ready");
            for value in 1..=rounds {
                loop {
                    let mut g = shm.lock().unwrap();
                    let bytes = g.as_mut_slice().unwrap();
                    if bytes[0] != b'Q' {
                        util::write_u64(&mut bytes[8..], value);
                        bytes[0] = b'Q';
                        break;
                    }
                    drop(g);
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
            // Wait until taken, then tell consumers to stop.
            loop {
                let mut g = shm.lock().unwrap();
                let bytes = g.as_mut_slice().unwrap();
                if bytes[0] != b'Q' {
                    bytes[0] = b'X';
                    break;
                }
                drop(g);
                std::thread::sleep(Duration::from_micros(50));
            }
            // Stay attached until every consumer has seen the stop mark.
            std::thread::sleep(Duration::from_millis(500));
        }
        "consumer" => {
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite).expect("attach");
            let mut sum = 0u64;
            loop {
                let mut g = shm.lock().unwrap();
                let bytes = g.as_mut_slice().unwrap();
                match bytes[0] {
                    b'Q' => {
                        sum += util::read_u64(&bytes[8..]);
                        bytes[0] = b'E';
                    }
                    b'X' => break,
                    _ => {}
                }
                drop(g);
                std::thread::sleep(Duration::from_micros(50));
            }
            util::say(&sum.to_string());
        }
        other => panic!("unknown child role {other}"),
    }
}

/// `force_remove` while attached: users keep their mapping; the last one's detach then
/// removes the lock too, so nothing is left.
pub(crate) fn force_remove_while_attached(t: KeyType) {
    let (key, _c) = legacy(t, "forceremove");
    // The last detach must find itself the last: no sibling test's fork may hold a copy
    // of an attachment meanwhile (under qemu-user every spawn is a real fork; see
    // `util::no_spawns`).
    let _quiet = util::no_spawns();
    let mut a = SharedMemory::with_native_key(key.clone());
    a.create(64, AccessMode::ReadWrite).unwrap();
    a.lock().unwrap().as_mut_slice().unwrap()[0] = 9;
    if goes_with_last_handle(t) {
        let err = SharedMemory::force_remove(&key).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
        a.detach().unwrap();
        assert_eq!(util::objects_left(&key), Vec::<String>::new());
        return;
    }
    assert!(SharedMemory::force_remove(&key).unwrap());
    let mut newcomer = SharedMemory::with_native_key(key.clone());
    assert_eq!(
        newcomer.attach(AccessMode::ReadOnly).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        a.lock().unwrap().as_slice()[0],
        9,
        "the mapping stays until detach"
    );
    a.detach().unwrap();
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
}

/// An object that attached and detached before (a System V object keeps its lock's id for
/// the next attach, as Qt keeps its semaphore) attaches again after the last detach removed
/// everything and another object made it all anew: it must serialise on the new lock.
pub(crate) fn reattach_after_the_lock_was_replaced(t: KeyType) {
    let (key, _c) = legacy(t, "reattach");
    // The last detach must find itself the last: no sibling test's fork may hold a copy
    // of an attachment meanwhile (under qemu-user every spawn is a real fork; see
    // `util::no_spawns`).
    let _quiet = util::no_spawns();
    let mut owner = SharedMemory::with_native_key(key.clone());
    owner.create(64, AccessMode::ReadWrite).unwrap();
    let mut a = SharedMemory::with_native_key(key.clone());
    a.attach(AccessMode::ReadWrite).unwrap();
    a.detach().unwrap();
    owner.detach().unwrap();
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
    let mut again = SharedMemory::with_native_key(key.clone());
    again.create(64, AccessMode::ReadWrite).unwrap();
    a.attach(AccessMode::ReadWrite).unwrap();
    {
        let held = again.lock().unwrap();
        // From another thread: in this one the process-wide hold answers first.
        assert_eq!(
            in_another_thread(|| a.try_lock().map(drop))
                .unwrap_err()
                .kind(),
            ErrorKind::WouldBlock,
            "the two objects lock different locks"
        );
        drop(held);
        a.try_lock().unwrap().as_mut_slice().unwrap()[0] = 7;
    }
    assert_eq!(again.lock().unwrap().as_slice()[0], 7);
    a.detach().unwrap();
    again.detach().unwrap();
    assert_eq!(util::objects_left(&key), Vec::<String>::new());
}
