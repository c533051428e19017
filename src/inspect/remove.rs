//! Removing what a listing found: segments, their locks and key files, stale semaphores.

use super::*;

pub(super) fn remove_sysv(info: &SegmentInfo, force: bool) -> Result<bool> {
    let (Some(id), Some(sysv_key)) = (info.id, info.sysv_key) else {
        return Ok(false);
    };
    let label = info.native_key.as_ref().map_or_else(
        || match &info.key_file {
            Some(file) => escape_name(file.as_os_str()),
            None => format!("shmid {id}"),
        },
        ToString::to_string,
    );
    let sem = match &info.lock_key {
        Some(lock) => {
            let (sem, _) = Semaphore::open(lock, 1, SemOpen::OpenOrCreate, 0o600)
                .map_err(|e| e.with_op(Operation::Remove).with_key(label.clone()))?;
            let wait = if force {
                Wait::Poll
            } else {
                Wait::For(LOCK_WAIT)
            };
            let locked = sem.acquire(wait, Undo::Yes, Operation::Remove).is_ok();
            if !locked && !force {
                let _ = drop_lock_if_unused(&sem, false, info);
                return Err(Error::new(ErrorKind::LockError, Operation::Remove, label)
                    .with_detail("its lock is held (in use); not removed"));
            }
            Some((sem, locked))
        }
        None => None,
    };
    let result = remove_sysv_locked(info, id, sysv_key, force, &label);
    if let Some((sem, locked)) = sem {
        let _ = drop_lock_if_unused(&sem, locked, info);
    }
    result
}

/// Removes the lock when the segment is gone and nobody waits, else releases it (when
/// `release`).
pub(super) fn drop_lock_if_unused(
    sem: &Semaphore,
    release: bool,
    info: &SegmentInfo,
) -> Result<()> {
    let segment_gone = info
        .id
        .map_or(true, |id| os::shm_key_and_nattch(id).is_err());
    if segment_gone && sem.waiters() == 0 {
        sem.remove()
    } else if release {
        sem.release(1, Undo::Yes, Operation::Remove)
    } else {
        Ok(())
    }
}

pub(super) fn remove_sysv_locked(
    info: &SegmentInfo,
    id: i32,
    sysv_key: i32,
    force: bool,
    label: &str,
) -> Result<bool> {
    let err = |e: &io::Error| {
        crate::sys::os_error(
            e.raw_os_error().unwrap_or(libc::EIO),
            Operation::Remove,
            label,
        )
    };
    match os::shm_key_and_nattch(id) {
        Ok((key, nattch)) => {
            if key != sysv_key && key != 0 {
                return Ok(false); // the id was reused for another segment
            }
            if nattch != 0 && !force {
                return Ok(false);
            }
        }
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
            remove_key_file_if_stale(info);
            return Ok(false);
        }
        Err(e) => return Err(err(&e)),
    }
    match os::shm_remove_id(id) {
        Ok(()) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => return Ok(false),
        Err(e) => return Err(err(&e)),
    }
    remove_key_file_if_stale(info);
    Ok(true)
}

/// Unlinks a System V segment's key file if it still names that segment's key (a key file
/// replaced meanwhile is left alone).
pub(super) fn remove_key_file_if_stale(info: &SegmentInfo) {
    let path = match (&info.key_file, &info.native_key) {
        (Some(file), _) => file.as_path(),
        (None, Some(native)) => Path::new(native.native_key()),
        (None, None) => return,
    };
    let Some(sysv_key) = info.sysv_key else {
        return;
    };
    if os::ftok(path, project_of(sysv_key)).ok() == Some(sysv_key) {
        let _ = fs::remove_file(path);
    }
}

pub(super) fn remove_posix(info: &SegmentInfo, force: bool) -> Result<bool> {
    let Some(path) = &info.path else {
        return Ok(false);
    };
    let label = info
        .native_key
        .as_ref()
        .map_or_else(|| escape_name(path.as_os_str()), ToString::to_string);
    // qshm's attach count: its exclusive `flock`, held until the file is unlinked, makes an
    // attacher that opened the file meanwhile see it unlinked and give up. No segment lock
    // is taken: a Qt process attaching holds the file open (it has `shm_open`ed it before it
    // maps it), and `process_users` counts open descriptors as well as mappings.
    let users = process_users();
    if !force && users.of_path(path) > 0 {
        return Ok(false);
    }
    // Not blocking on a FIFO planted at the name, not following a link.
    let _counted = match os::open_no_wait(path) {
        Ok(file) => {
            if !os::try_lock_exclusive(&file) && !force {
                return Ok(false); // a qshm process attached since the look at the users
            }
            Some(file)
        }
        Err(_) => None, // the removal below reports why, if it matters
    };
    let removed = match fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(crate::sys::os_error(
                e.raw_os_error().unwrap_or(libc::EIO),
                Operation::Remove,
                label,
            ))
        }
    };
    let lock = info.lock_path.clone().or_else(|| {
        info.lock_key
            .as_ref()
            .and_then(|k| posix_path(k.native_key(), "sem."))
    });
    if let Some(lock) = lock {
        if force || users.of_path(&lock) == 0 {
            let _ = fs::remove_file(&lock);
        }
    }
    Ok(removed)
}

pub(super) fn remove_stale_semaphore(sem: &SemaphoreInfo) -> Result<bool> {
    let label = sem.native_key.as_ref().map_or_else(
        || match sem.path.as_ref().or(sem.key_file.as_ref()) {
            Some(file) => escape_name(file.as_os_str()),
            None => format!("semid {}", sem.id.unwrap_or(-1)),
        },
        ToString::to_string,
    );
    let err = |e: &io::Error| {
        crate::sys::os_error(
            e.raw_os_error().unwrap_or(libc::EIO),
            Operation::Remove,
            label.clone(),
        )
    };
    match sem.backend {
        Backend::SystemV => {
            let Some(id) = sem.id else { return Ok(false) };
            match os::sem_state(id) {
                Ok(s) if s.waiters == 0 && !process_alive(s.last_pid) => {}
                Ok(_) => return Ok(false),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
                    return Ok(false)
                }
                Err(e) => return Err(err(&e)),
            }
            match os::sem_remove_id(id) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {
                    return Ok(false)
                }
                Err(e) => return Err(err(&e)),
            }
            let key_file = match (&sem.key_file, &sem.native_key) {
                (Some(file), _) => Some(file.as_path()),
                (None, Some(native)) => Some(Path::new(native.native_key())),
                (None, None) => None,
            };
            if let (Some(path), Some(key)) = (key_file, sem.sysv_key) {
                if os::ftok(path, project_of(key)).ok() == Some(key) {
                    let _ = fs::remove_file(path);
                }
            }
            Ok(true)
        }
        Backend::Posix => {
            let Some(path) = &sem.path else {
                return Ok(false);
            };
            if process_users().of_path(path) > 0 {
                return Ok(false);
            }
            remove_file(path, Operation::Remove)
        }
    }
}

pub(super) fn remove_file(path: &Path, op: Operation) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(crate::sys::os_error(
            e.raw_os_error().unwrap_or(libc::EIO),
            op,
            escape_name(path.as_os_str()),
        )),
    }
}
