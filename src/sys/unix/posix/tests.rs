//! Unit tests of the POSIX backend.

use super::*;

#[test]
fn send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PosixSegment>();
    assert_send_sync::<PosixSemaphore>();
}

#[test]
fn the_kernel_vouches_for_a_holder_through_its_slot() {
    let key = NativeKey::platform_safe(
        &format!("qshm-unit-slot-{}", std::process::id()),
        crate::KeyType::PosixRealtime,
    );
    let (holder, _) = PosixSemaphore::open(&key, 1, SemOpen::OpenOrCreate, 0o600).unwrap();
    let (waiter, _) = PosixSemaphore::open(&key, 1, SemOpen::Existing, 0o600).unwrap();
    let token = holder.token();
    assert_eq!(record_pid(token), std::process::id());
    // Another open file description sees the slot locked; ours does not conflict with it.
    assert!(is_alive(&waiter.file, token));
    // Once the holder's descriptor is closed (as when its process dies), it is free.
    drop(holder);
    assert!(!is_alive(&waiter.file, token));
    // A record that names no slot (a pid alone) is never taken for dead.
    assert!(is_alive(&waiter.file, u64::from(u32::MAX) << 32));
    waiter.remove().unwrap();
}

#[test]
fn a_replaced_semaphore_is_noticed() {
    let key = NativeKey::platform_safe(
        &format!("qshm-unit-replaced-{}", std::process::id()),
        crate::KeyType::PosixRealtime,
    );
    let (sem, created) = PosixSemaphore::open(&key, 1, SemOpen::OpenOrCreate, 0o600).unwrap();
    assert!(created);
    assert!(sem.still_named());
    // Someone removes it and makes another under the same name.
    sem.remove().unwrap();
    let (other, created) = PosixSemaphore::open(&key, 1, SemOpen::OpenOrCreate, 0o600).unwrap();
    assert!(created);
    assert!(!sem.still_named(), "the old handle must notice");
    assert!(other.still_named());
    // Removing through the old handle must not remove the new semaphore.
    sem.acquire(Wait::Forever, Undo::Yes, Operation::Lock)
        .unwrap();
    sem.remove_while_held().unwrap();
    assert!(
        other.still_named(),
        "the old handle removed the new semaphore"
    );
    other.remove().unwrap();
}

/// A child forked while the segment is mapped maps it too (System V counts such a child
/// as an attachment): the lease sees no other opener, the look at the descendants finds
/// the child, and the segment stays until the child is gone.
#[test]
fn a_forked_child_keeps_the_segment() {
    let key = NativeKey::platform_safe(
        &format!("qshm-unit-forked-{}", std::process::id()),
        crate::KeyType::PosixRealtime,
    );
    let seg = PosixSegment::create(&key, 4096, AccessMode::ReadWrite, 0o600).unwrap();
    let path = seg.path.clone();
    // A socket pair as the pipe (std::io::pipe is newer than the MSRV).
    let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
    // SAFETY: the child calls only async-signal-safe functions (read, _exit) before it
    // exits, as is required after fork in a multi-threaded process.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        use std::os::fd::AsRawFd;
        let mut byte = 0u8;
        // SAFETY: valid descriptors and a one-byte buffer; the child's copy of the write
        // end is closed so that the read ends when the parent closes its own; _exit
        // skips every Rust destructor and atexit handler the child must not run.
        unsafe {
            libc::close(w.as_raw_fd());
            libc::read(r.as_raw_fd(), std::ptr::from_mut(&mut byte).cast(), 1);
            libc::_exit(0);
        }
    }
    drop(r);
    let removed = seg.detach(true, false);
    let kept = std::path::Path::new(&path).exists();
    drop(w); // the child reads EOF and exits
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let _ = rustix::fs::unlink(&path);
    assert_eq!(
        removed.unwrap(),
        Detached::Kept,
        "removed while a forked child maps it"
    );
    assert!(kept);
    // Once it is gone, the next last detach removes the segment again.
    let seg = PosixSegment::create(&key, 4096, AccessMode::ReadWrite, 0o600).unwrap();
    assert_eq!(seg.detach(true, false).unwrap(), Detached::Removed);
    assert!(!std::path::Path::new(&path).exists());
}

/// Opening the file while the lease is held breaks it, and the kernel signals the
/// holder: with the default `SIGIO` this process would die. Another thread opens the
/// file in a tight loop while the lease is taken and released many times.
#[test]
fn a_broken_lease_does_not_kill() {
    let path = format!("{SHM_DIR}qshm-unit-lease-{}", std::process::id());
    let flags = OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path.as_str(), flags, Mode::from_raw_mode(0o600)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let opener = {
        let (stop, path) = (stop.clone(), path.clone());
        std::thread::spawn(move || {
            let mut opens = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = open_existing(&path, AccessMode::ReadOnly);
                opens += 1;
            }
            opens
        })
    };
    let (mut alone, mut shared) = (0, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        match sole_open_file(&fd) {
            Some(true) => alone += 1,
            Some(false) => shared += 1,
            None => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    let opens = opener.join().unwrap();
    let _ = rustix::fs::unlink(path.as_str());
    assert!(opens > 0);
    assert!(
        alone + shared > 0,
        "leases unavailable here: nothing was tested"
    );
    assert!(shared > 0, "another open was never seen");
}

/// Both ways of naming an unnamed file: the name appears, refers to the file, and a
/// taken name is `EEXIST` without harm to the file that has it.
#[test]
fn unnamed_files_are_named_either_way() {
    for (i, link) in [link_unnamed, link_through_proc].into_iter().enumerate() {
        let path = format!("{SHM_DIR}qshm-unit-link-{}-{i}", std::process::id());
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        let tmp = rustix::fs::open(SHM_DIR, flags, Mode::from_raw_mode(0o600)).unwrap();
        rustix::io::write(&tmp, b"first").unwrap();
        let linked = link(&tmp, &path);
        let content = std::fs::read(&path);
        let other = rustix::fs::open(SHM_DIR, flags, Mode::from_raw_mode(0o600)).unwrap();
        let taken = link(&other, &path);
        let after = std::fs::read(&path);
        let _ = rustix::fs::unlink(&path);
        linked.unwrap();
        assert_eq!(content.unwrap(), b"first");
        assert_eq!(taken, Err(rustix::io::Errno::EXIST));
        assert_eq!(after.unwrap(), b"first");
    }
}

#[test]
fn parent_is_read_from_proc() {
    assert_eq!(
        parent_of(std::process::id()),
        Some(std::os::unix::process::parent_id())
    );
    assert_eq!(parent_of(u32::MAX), None);
}

#[test]
fn names_are_checked() {
    let key = NativeKey::new("/x", crate::KeyType::PosixRealtime);
    let ctx = Ctx::new(Operation::Create, &key);
    assert_eq!(file_name(ctx, "/ok", "").unwrap(), "ok");
    for bad in ["", "/", "noslash", "/a/b", "/.", "/..", "/a\0b"] {
        assert_eq!(
            file_name(ctx, bad, "").unwrap_err().kind(),
            ErrorKind::KeyError,
            "{bad:?}"
        );
    }
    let long = format!("/{}", "x".repeat(255));
    assert!(file_name(ctx, &long, "").is_ok());
    assert_eq!(
        file_name(ctx, &long, "sem.").unwrap_err().kind(),
        ErrorKind::KeyError
    );
    assert!(file_name(ctx, &format!("/{}", "x".repeat(256)), "").is_err());
}
