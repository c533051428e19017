//! Permissions, planted symbolic links and exhausted resources, on both backends.
//!
//! Other users are played by `nobody` (`setpriv`); exhausted System V limits by a private IPC
//! namespace (`unshare --ipc`) with tiny `kernel.shm*`/`kernel.sem` values. Both need root,
//! as CI runs.
#![cfg(unix)] // Unix users, modes and namespaces

mod util;

use std::time::Duration;

use qshm::{
    AccessMode, ErrorKind, KeyType, NativeKey, SemaphoreMode, SharedMemory, SystemSemaphore,
};
use util::{ChildProc, Cleanup, Watchdog};

const BACKENDS: [KeyType; 2] = [KeyType::SystemV, KeyType::PosixRealtime];

const AS_NOBODY: &[&str] = &[
    "setpriv",
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
    "--",
];
/// `nobody`, with root's group (gid 0) as its one supplementary group.
const AS_NOBODY_IN_GROUP_0: &[&str] = &[
    "setpriv",
    "--reuid=nobody",
    "--regid=nogroup",
    "--groups=0",
    "--",
];

fn run(prefix: &[&str], role: &str, args: &[&str]) -> String {
    let mut child = ChildProc::spawn_under(prefix, role, args);
    let line = child.expect_line(Duration::from_secs(60));
    assert!(
        child.wait(Duration::from_secs(60)).success(),
        "{role}: child failed"
    );
    line
}

/// With the default mode (0600), another user can neither attach, nor take the lock, nor
/// remove the segment; the data is unchanged.
#[test]
fn default_mode_keeps_other_users_out() {
    let _w = Watchdog::new(
        "default_mode_keeps_other_users_out",
        Duration::from_secs(120),
    );
    for t in BACKENDS {
        let key = NativeKey::legacy(&util::unique_key("perm-default"), t);
        let _c = Cleanup::new().segment(&key);
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.create(64, AccessMode::ReadWrite).unwrap();
        shm.lock().unwrap().as_mut_slice().unwrap()[..6].copy_from_slice(b"secret");
        let line = run(AS_NOBODY, "intruder", &[&key.to_string()]);
        assert_eq!(
            line, "attach PermissionDenied, lock PermissionDenied, remove PermissionDenied",
            "{t:?}"
        );
        assert_eq!(&shm.lock().unwrap().as_slice()[..6], b"secret", "{t:?}");
        assert_eq!(
            shm.lock().unwrap().as_slice()[6..]
                .iter()
                .filter(|&&b| b != 0)
                .count(),
            0
        );
    }
}

/// With an explicit mode (0660) and a shared group, the other user can.
#[test]
fn explicit_group_mode_lets_the_group_in() {
    let _w = Watchdog::new(
        "explicit_group_mode_lets_the_group_in",
        Duration::from_secs(120),
    );
    for t in BACKENDS {
        let key = NativeKey::legacy(&util::unique_key("perm-group"), t);
        let _c = Cleanup::new().segment(&key);
        let mut shm = SharedMemory::with_native_key(key.clone());
        shm.set_permissions(0o660);
        shm.create(64, AccessMode::ReadWrite).unwrap();
        let line = run(AS_NOBODY_IN_GROUP_0, "group_member", &[&key.to_string()]);
        assert_eq!(line, "wrote", "{t:?}");
        assert_eq!(&shm.lock().unwrap().as_slice()[..5], b"group", "{t:?}");
    }
}

/// A symbolic link planted by another user where a key file or POSIX name goes is never
/// followed: creation fails (or finds the name taken), and the link's target is untouched.
#[test]
fn planted_symlinks_are_not_followed() {
    let _w = Watchdog::new(
        "planted_symlinks_are_not_followed",
        Duration::from_secs(120),
    );
    let target = format!("/tmp/{}", util::unique_key("symlink-target"));
    std::fs::write(&target, b"precious").unwrap();
    struct RemoveFile(String);
    impl Drop for RemoveFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _t = RemoveFile(target.clone());
    for t in BACKENDS {
        let key = NativeKey::legacy(&util::unique_key("symlink"), t);
        let _c = Cleanup::new().segment(&key);
        let (link, lock_link) = if t.is_system_v() {
            (
                key.native_key().to_owned(),
                key.lock_key().native_key().to_owned(),
            )
        } else {
            (
                format!("/dev/shm{}", key.native_key()),
                format!("/dev/shm/sem.{}", &key.lock_key().native_key()[1..]),
            )
        };
        let _l = (RemoveFile(link.clone()), RemoveFile(lock_link.clone()));
        // `nobody` plants links to our file at both names.
        let line = run(AS_NOBODY, "plant", &[&target, &link, &lock_link]);
        assert_eq!(line, "planted");
        let mut shm = SharedMemory::with_native_key(key.clone());
        let err = shm.create(64, AccessMode::ReadWrite).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::PermissionDenied | ErrorKind::AlreadyExists
            ),
            "{t:?}: {err}"
        );
        let err = shm.attach(AccessMode::ReadWrite).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::PermissionDenied | ErrorKind::NotFound
            ),
            "{t:?}: {err}"
        );
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"precious",
            "{t:?}: the target changed"
        );
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}

/// A FIFO another user put where a POSIX segment, its lock or a mapped segment file goes:
/// every operation answers (an error, or the segment left alone) instead of waiting for a
/// writer for ever, and the FIFO is left as it was. (`create`, a read-only `attach`,
/// `force_remove`, `remove_orphan`, `qshm list`'s inspection, `MappedSegment::open_file`
/// and `remove_file` used to hang.)
#[test]
fn planted_fifos_hang_nothing() {
    let _w = Watchdog::new("planted_fifos_hang_nothing", Duration::from_secs(120));
    let mkfifo = |path: &str| {
        let c = std::ffi::CString::new(path).unwrap();
        // SAFETY: a NUL-terminated path and a mode.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o666) };
        assert_eq!(rc, 0, "mkfifo {path}");
    };
    struct RemoveFile(String);
    impl Drop for RemoveFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let is_fifo = |path: &str| {
        use std::os::unix::fs::FileTypeExt;
        std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
    };

    // At a POSIX segment's name.
    let key = NativeKey::legacy(&util::unique_key("fifo-seg"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let seg_path = format!("/dev/shm{}", key.native_key());
    let _f = RemoveFile(seg_path.clone());
    mkfifo(&seg_path);
    let mut shm = SharedMemory::with_native_key(key.clone());
    assert!(shm.create(64, AccessMode::ReadWrite).is_err());
    assert!(shm.attach(AccessMode::ReadOnly).is_err());
    assert!(shm.attach(AccessMode::ReadWrite).is_err());
    let _ = SharedMemory::remove_orphan(&key);
    assert!(is_fifo(&seg_path), "remove_orphan removed the FIFO");
    let _ = qshm::inspect::list();
    let _ = qshm::inspect::info(&key);
    assert!(is_fifo(&seg_path), "inspection touched the FIFO");
    // Forced removal removes the name, whatever it is (shm_unlink does the same): it only
    // must not hang.
    let _ = SharedMemory::force_remove(&key);

    // At its lock's name, beside a real segment.
    let key = NativeKey::legacy(&util::unique_key("fifo-sem"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let sem_path = format!("/dev/shm/sem.{}", &key.lock_key().native_key()[1..]);
    let _s = RemoveFile(sem_path.clone());
    mkfifo(&sem_path);
    let mut shm = SharedMemory::with_native_key(key.clone());
    assert!(shm.create(64, AccessMode::ReadWrite).is_err());
    let _ = qshm::inspect::list();
    let _ = qshm::inspect::info(&key);
    assert!(is_fifo(&sem_path), "the FIFO was touched");

    // At a mapped segment file's path.
    let path = format!("/dev/shm/{}", util::unique_key("fifo-mapped"));
    let _m = RemoveFile(path.clone());
    mkfifo(&path);
    let err = qshm::mapped::MappedSegment::open_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyError, "{err}");
    let err = qshm::mapped::MappedSegment::remove_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyError, "{err}");
    assert!(is_fifo(&path), "the FIFO was touched");
}

/// Where the lock of `key` lives: the POSIX semaphore file, or the System V key file whose
/// `ftok` names the semaphore.
fn lock_path(key: &NativeKey) -> String {
    let lock = key.lock_key();
    if key.key_type().is_system_v() {
        lock.native_key().to_owned()
    } else {
        format!("/dev/shm/sem.{}", &lock.native_key()[1..])
    }
}

/// A `create` (or an `attach`) that fails because another user took the segment's name (a
/// file of theirs at the POSIX name, a FIFO there, a System V segment of theirs behind the
/// key file) leaves nothing of its own: the key's lock semaphore, which it made to serialise
/// the attempt, is gone again. It used to stay (the name being taken looked like a segment
/// that the lock still served). A lock that was there before is left alone.
#[test]
fn a_failed_create_over_a_planted_name_leaves_no_lock() {
    let _w = Watchdog::new(
        "a_failed_create_over_a_planted_name_leaves_no_lock",
        Duration::from_secs(120),
    );
    struct RemoveFile(String);
    impl Drop for RemoveFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let posix_keys = |name: &str| {
        [
            NativeKey::legacy(&util::unique_key(name), KeyType::PosixRealtime),
            NativeKey::platform_safe(&util::unique_key(name), KeyType::PosixRealtime),
        ]
    };
    let mut cases = Vec::new();
    for key in posix_keys("planted-file") {
        cases.push(("file", key));
    }
    for key in posix_keys("planted-fifo") {
        cases.push(("fifo", key));
    }
    cases.push((
        "segment",
        NativeKey::legacy(&util::unique_key("planted-sysv"), KeyType::SystemV),
    ));
    for (what, key) in cases {
        let name = if key.key_type().is_system_v() {
            key.native_key().to_owned()
        } else {
            format!("/dev/shm{}", key.native_key())
        };
        // Dropped after `_c`, which needs the key files to find the System V objects.
        let _files = (RemoveFile(name.clone()), RemoveFile(lock_path(&key)));
        let _c = Cleanup::new().segment(&key).semaphore(&key.lock_key());
        let line = run(AS_NOBODY, "plant_name", &[&key.to_string(), what]);
        assert_eq!(line, "planted", "{what}");
        assert!(!util::exists(&lock_path(&key)), "{what}: a lock already");

        let mut shm = SharedMemory::with_native_key(key.clone());
        let err = shm.create(64, AccessMode::ReadWrite).unwrap_err();
        assert!(!shm.is_attached());
        assert!(
            !util::exists(&lock_path(&key)),
            "{what} {key}: the failed create ({err}) left its lock"
        );
        if what == "fifo" {
            let err = shm.attach(AccessMode::ReadWrite).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::KeyError, "{err}");
            assert!(
                err.to_string().contains("not a shared memory segment"),
                "{err}"
            );
            assert!(
                !util::exists(&lock_path(&key)),
                "{what} {key}: the failed attach ({err}) left a lock"
            );
        }
        assert!(util::exists(&name), "{what}: the planted name was removed");

        // A lock that was there before (unused now: its maker left it) stays.
        let mut sem = SystemSemaphore::with_native_key(key.lock_key(), 1, SemaphoreMode::Create)
            .expect("make the lock");
        sem.set_remove_on_drop(false);
        drop(sem);
        let err = shm.create(64, AccessMode::ReadWrite).unwrap_err();
        assert!(
            util::exists(&lock_path(&key)),
            "{what} {key}: the failed create ({err}) removed a lock it found"
        );
    }
}

/// A symbolic link where a mapped segment file goes is not followed (another user may have
/// planted it to steer us onto a file of their choosing): `open_file` says so.
#[test]
fn mapped_open_file_follows_no_link() {
    let _w = Watchdog::new("mapped_open_file_follows_no_link", Duration::from_secs(60));
    let name = util::unique_key("mapped-link");
    let seg = qshm::mapped::FileOptions::new()
        .directory("/dev/shm")
        .create(&name, 64)
        .unwrap();
    let real = format!("/dev/shm/{name}");
    let link = format!("/dev/shm/{name}-link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let opened = qshm::mapped::MappedSegment::open_file(&link);
    let _ = std::fs::remove_file(&link);
    let err = opened.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyError, "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    drop(seg);
    let _ = qshm::mapped::MappedSegment::remove_file(&real);
}

/// Another local user makes a key's lock semaphore first (mode 0666): at 0 it made the
/// owner's `create` wait for ever (System V), at 3 it let three of the owner's own processes
/// hold the lock of a 0600 segment at once. Such a lock is refused: `PermissionDenied`,
/// saying why, and nothing of the owner's is left behind.
#[test]
fn a_lock_planted_by_another_user_is_refused() {
    let _w = Watchdog::new(
        "a_lock_planted_by_another_user_is_refused",
        Duration::from_secs(120),
    );
    for t in BACKENDS {
        for value in ["0", "3"] {
            let key = NativeKey::legacy(&util::unique_key("plantlock"), t);
            let _c = Cleanup::new().segment(&key).semaphore(&key.lock_key());
            let line = run(AS_NOBODY, "plant_lock", &[&key.to_string(), value]);
            assert_eq!(line, "planted");
            let mut shm = SharedMemory::with_native_key(key.clone());
            let err = shm.create(64, AccessMode::ReadWrite).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::PermissionDenied,
                "{t:?} {value}: {err}"
            );
            assert!(err.to_string().contains("someone else controls"), "{err}");
            assert!(!shm.is_attached());
        }
    }
}

/// Exhausted System V limits, in a private IPC namespace: no segment identifiers left, no
/// pages left, no semaphore sets left. Each is OutOfResources with a clear message.
#[test]
fn system_v_limits_are_out_of_resources() {
    let _w = Watchdog::new(
        "system_v_limits_are_out_of_resources",
        Duration::from_secs(120),
    );
    for (sysctl, what) in [
        ("kernel.shmmni=1", "shmmni"),
        ("kernel.shmall=1", "shmall"),
        ("kernel.sem=250 32000 32 1", "semmni"),
    ] {
        let script = format!("sysctl -q -w '{sysctl}' && exec \"$0\" \"$@\"");
        let prefix = ["unshare", "--ipc", "--", "sh", "-c", script.as_str()];
        let line = run(&prefix, "exhaust_sysv", &[what]);
        assert_eq!(line, format!("{what}: OutOfResources"), "{sysctl}");
    }
}

/// Out of file descriptors: a POSIX segment (a descriptor for the segment and one for its
/// lock) fails with OutOfResources; System V needs none (its key files are made with `mknod`)
/// and works. Once descriptors are free again everything works, and nothing is left behind.
#[test]
fn too_many_open_files_is_out_of_resources() {
    let _w = Watchdog::new(
        "too_many_open_files_is_out_of_resources",
        Duration::from_secs(120),
    );
    let prefix = ["prlimit", "--nofile=64:64", "--"];
    assert_eq!(run(&prefix, "exhaust_fds", &[]), "Ok OutOfResources");
}

#[test]
fn child_entry() {
    let Some(args) = util::child_role() else {
        return;
    };
    let kind =
        |r: qshm::Result<()>| r.map_or_else(|e| format!("{:?}", e.kind()), |()| "Ok".to_owned());
    match args[0].as_str() {
        "intruder" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key.clone());
            let attach = kind(shm.attach(AccessMode::ReadOnly));
            let lock = kind(
                SystemSemaphore::with_native_key(key.lock_key(), 1, SemaphoreMode::Open)
                    .and_then(|sem| sem.try_acquire()),
            );
            let remove = kind(SharedMemory::force_remove(&key).map(drop));
            util::say(&format!("attach {attach}, lock {lock}, remove {remove}"));
        }
        "group_member" => {
            let key: NativeKey = args[1].parse().unwrap();
            let mut shm = SharedMemory::with_native_key(key);
            shm.attach(AccessMode::ReadWrite)
                .expect("attach as a group member");
            shm.lock().unwrap().as_mut_slice().unwrap()[..5].copy_from_slice(b"group");
            util::say("wrote");
        }
        "plant_lock" => {
            // plant_lock KEY VALUE: makes KEY's lock semaphore first, mode 0666, at VALUE.
            let key: NativeKey = args[1].parse().unwrap();
            let value: u32 = args[2].parse().unwrap();
            let lock = key.lock_key();
            // SAFETY: umask takes and returns a mode.
            unsafe { libc::umask(0) };
            if key.key_type().is_system_v() {
                let path = std::ffi::CString::new(lock.native_key()).unwrap();
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(lock.native_key())
                    .expect("the lock's key file");
                // SAFETY: a NUL-terminated path; semget and semctl(SETVAL) take integers.
                unsafe {
                    let k = libc::ftok(path.as_ptr(), i32::from(b'Q'));
                    let id = libc::semget(k, 1, 0o666 | libc::IPC_CREAT | libc::IPC_EXCL);
                    assert_ne!(id, -1, "semget");
                    assert_eq!(libc::semctl(id, 0, libc::SETVAL, value as libc::c_int), 0);
                }
            } else {
                // The file glibc's (and Qt's, and qshm's) sem_open uses, written directly:
                // musl's own sem_open names its files differently. A sem_t's bytes with the
                // value in its first word (as glibc 64-bit and musl keep it).
                use std::io::Write;
                let path = format!("/dev/shm/sem.{}", &lock.native_key()[1..]);
                let mut bytes = [0u8; 32];
                bytes[..4].copy_from_slice(&value.to_ne_bytes());
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .and_then(|mut f| f.write_all(&bytes))
                    .expect("plant the semaphore file");
            }
            util::say("planted");
        }
        "plant_name" => {
            // plant_name KEY WHAT: takes KEY's segment name as this user: a file of 64
            // bytes, mode 0600, or a FIFO at the POSIX name; a segment (with its key file)
            // for System V.
            let key: NativeKey = args[1].parse().unwrap();
            let path = format!("/dev/shm{}", key.native_key());
            match args[2].as_str() {
                "file" => {
                    use std::io::Write;
                    use std::os::unix::fs::OpenOptionsExt;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .and_then(|mut f| f.write_all(&[7; 64]))
                        .expect("plant a file");
                }
                "fifo" => {
                    let c = std::ffi::CString::new(path).unwrap();
                    // SAFETY: a NUL-terminated path and a mode.
                    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
                }
                _ => {
                    let file = key.native_key();
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(file)
                        .expect("the key file");
                    let c = std::ffi::CString::new(file).unwrap();
                    // SAFETY: a NUL-terminated path; shmget takes integers.
                    let id = unsafe {
                        let k = libc::ftok(c.as_ptr(), i32::from(b'Q'));
                        libc::shmget(k, 64, 0o600 | libc::IPC_CREAT | libc::IPC_EXCL)
                    };
                    assert_ne!(id, -1, "shmget");
                }
            }
            util::say("planted");
        }
        "plant" => {
            for link in &args[2..] {
                std::os::unix::fs::symlink(&args[1], link).expect("plant a link");
            }
            util::say("planted");
        }
        "exhaust_sysv" => {
            let key = NativeKey::legacy(&util::unique_key("exhaust"), KeyType::SystemV);
            let _c = Cleanup::new().segment(&key);
            let mut first = SharedMemory::with_native_key(key);
            let result = match args[1].as_str() {
                // One identifier: the first segment takes it, the second finds none.
                "shmmni" => first.create(64, AccessMode::ReadWrite).and_then(|()| {
                    let other = NativeKey::legacy(&util::unique_key("exhaust2"), KeyType::SystemV);
                    let _c2 = Cleanup::new().segment(&other);
                    SharedMemory::with_native_key(other).create(64, AccessMode::ReadWrite)
                }),
                // One page in all: a 1 MiB segment does not fit.
                "shmall" => first.create(1 << 20, AccessMode::ReadWrite),
                // One semaphore set: the segment's lock takes it, a second segment's finds none.
                _ => first.create(64, AccessMode::ReadWrite).and_then(|()| {
                    let other = NativeKey::legacy(&util::unique_key("exhaust3"), KeyType::SystemV);
                    let _c3 = Cleanup::new().segment(&other);
                    SharedMemory::with_native_key(other).create(64, AccessMode::ReadWrite)
                }),
            };
            let err = result.expect_err("the limit must be hit");
            assert!(err.to_string().contains("out of resources"), "{err}");
            util::say(&format!("{}: {:?}", args[1], err.kind()));
        }
        "exhaust_fds" => {
            let mut hog = Vec::new();
            while let Ok(f) = std::fs::File::open("/dev/null") {
                hog.push(f);
            }
            let mut kinds = Vec::new();
            for t in BACKENDS {
                let key = NativeKey::legacy(&util::unique_key("nofds"), t);
                let _c = Cleanup::new().segment(&key);
                let mut shm = SharedMemory::with_native_key(key.clone());
                let outcome = shm
                    .create(64, AccessMode::ReadWrite)
                    .and_then(|()| shm.detach());
                kinds.push(kind(outcome));
                assert_eq!(util::objects_left(&key), Vec::<String>::new());
            }
            drop(hog);
            for t in BACKENDS {
                let key = NativeKey::legacy(&util::unique_key("nofds-after"), t);
                let _c = Cleanup::new().segment(&key);
                let mut shm = SharedMemory::with_native_key(key);
                shm.create(64, AccessMode::ReadWrite)
                    .expect("create once descriptors are free");
                shm.detach().unwrap();
            }
            util::say(&kinds.join(" "));
        }
        other => panic!("unknown role {other}"),
    }
    std::process::exit(0);
}
