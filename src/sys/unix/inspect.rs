//! The system calls of [`crate::inspect`]: System V objects by id (`semctl` queries,
//! `IPC_RMID` of a segment whose key file is gone), `ftok`, and reading a glibc POSIX
//! semaphore's value without opening it.
//!
//! Everything else inspection needs (`/proc/sysvipc/*`, `/proc/<pid>/maps`, `/dev/shm`) is
//! read with `std::fs` in `src/inspect.rs`.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man2/semctl.2.html> (`GETVAL`, `GETPID`, `GETNCNT`)
//! * <https://man7.org/linux/man-pages/man2/shmctl.2.html> (`IPC_STAT`, `IPC_RMID`)
//! * <https://man7.org/linux/man-pages/man3/ftok.3.html>
//! * <https://man7.org/linux/man-pages/man5/proc_sysvipc.5.html>

use std::ffi::{c_int, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::cvt;

/// `flock(LOCK_EX|LOCK_NB)`: whether this process now holds `file`'s `flock` exclusively
/// (the POSIX backend's attach count: nobody else is counted).
pub(crate) fn try_lock_exclusive(file: &std::fs::File) -> bool {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// `ftok(path, proj)`: the System V key of a key file, exactly as the backend computes it
/// (glibc's formula; a planted link in a world-writable directory is refused).
pub(crate) fn ftok(path: &Path, proj: u8) -> io::Result<i32> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    super::sysv::ftok(&c, proj).map_err(io::Error::from_raw_os_error)
}

/// What `semctl` tells about semaphore 0 of a set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SemState {
    /// `GETVAL`.
    pub(crate) value: u32,
    /// `GETPID`: the process that did the last operation (0: none yet).
    pub(crate) last_pid: u32,
    /// `GETNCNT`: processes waiting for the value to increase.
    pub(crate) waiters: u32,
}

fn semctl_get(semid: i32, cmd: c_int) -> io::Result<u32> {
    // SAFETY: GETVAL, GETPID and GETNCNT take no fourth argument and only read kernel state.
    let rc = unsafe { libc::semctl(semid, 0, cmd) };
    cvt(rc)
        .map(|rc| rc as u32)
        .map_err(io::Error::from_raw_os_error)
}

/// `semctl(semid, 0, GETVAL | GETPID | GETNCNT)`. Needs read permission on the set.
pub(crate) fn sem_state(semid: i32) -> io::Result<SemState> {
    Ok(SemState {
        value: semctl_get(semid, libc::GETVAL)?,
        last_pid: semctl_get(semid, libc::GETPID)?,
        waiters: semctl_get(semid, libc::GETNCNT)?,
    })
}

/// `semctl(semid, 0, IPC_RMID)`: removes a semaphore set by id.
pub(crate) fn sem_remove_id(semid: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no fourth argument.
    let rc = unsafe { libc::semctl(semid, 0, libc::IPC_RMID) };
    cvt(rc).map(|_| ()).map_err(io::Error::from_raw_os_error)
}

/// Opens `path` for reading without following a link and without waiting on a FIFO planted
/// there ([`open_no_wait`](super::open_no_wait)).
pub(crate) fn open_no_wait(path: &Path) -> io::Result<std::fs::File> {
    let flags =
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC;
    let path = path
        .to_str()
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(super::open_no_wait(path, flags)?.into())
}

/// `shmctl(shmid, IPC_STAT)`: the key and the attach count of a segment, by id.
pub(crate) fn shm_key_and_nattch(shmid: i32) -> io::Result<(i32, u64)> {
    // SAFETY: shmid_ds is a plain C struct of integers, for which all-zero is valid.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds for the kernel to fill.
    let rc = unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) };
    cvt(rc).map_err(io::Error::from_raw_os_error)?;
    #[cfg(not(qshm_libc = "musl"))]
    let key = ds.shm_perm.__key;
    #[cfg(qshm_libc = "musl")]
    #[allow(deprecated)] // the libc crate's name for musl's `__ipc_perm_key`, to be renamed
    let key = ds.shm_perm.__ipc_perm_key;
    Ok((key, ds.shm_nattch as u64))
}

/// `shmctl(shmid, IPC_RMID)`: removes a segment by id (the segment goes when its last
/// attachment does). What removes a segment whose key file is gone.
pub(crate) fn shm_remove_id(shmid: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID takes no buffer; a null pointer is what the man page prescribes.
    let rc = unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
    cvt(rc).map(|_| ()).map_err(io::Error::from_raw_os_error)
}

/// What a glibc POSIX semaphore's file (`/dev/shm/sem.<name>`) says, read without
/// `sem_open`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PosixSemState {
    /// The value, as the C library keeps it (`posix::sem_head`).
    pub(crate) value: u32,
    /// The pid qshm's owner record names (bytes 16..24, see `posix/owner.rs`), a hint in the
    /// holder's PID namespace; 0 when no qshm process holds it.
    pub(crate) owner_pid: u32,
    /// Whether the holder the record names is alive, as the kernel tells through the
    /// record's liveness slot (true when the record names none, or the kernel does not
    /// answer: unknown is never dead).
    pub(crate) owner_alive: bool,
}

/// Reads a POSIX semaphore's file (its first [`SEM_FILE_LEN`](super::posix::SEM_FILE_LEN)
/// bytes at most). `None` when the file cannot be read or is too short for a `sem_t`.
pub(crate) fn posix_sem_state(path: &Path) -> Option<PosixSemState> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Anyone may put anything at a name in /dev/shm: no link is followed, a FIFO does not
    // block the open, and only a regular file is read, boundedly.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::with_capacity(super::posix::SEM_FILE_LEN);
    (&file)
        .take(super::posix::SEM_FILE_LEN as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_ne_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let head: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
    let record = word(16).unwrap_or(0);
    Some(PosixSemState {
        value: super::posix::sem_head(head).0,
        owner_pid: super::posix::record_pid(record),
        owner_alive: record == 0 || super::posix::is_alive(&file, record),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn ftok_is_the_documented_formula() {
        let path = std::env::temp_dir().join(format!("qshm-inspect-ftok-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let want =
            (0x51 << 24) | (((meta.dev() & 0xff) << 16) as i32) | ((meta.ino() & 0xffff) as i32);
        let got = ftok(&path, b'Q');
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got.unwrap(), want);
    }

    #[test]
    fn removed_ids_report_errors() {
        // A System V id that cannot exist: the calls fail cleanly.
        assert!(sem_state(-1).is_err());
        assert!(shm_key_and_nattch(-1).is_err());
        assert!(shm_remove_id(-1).is_err());
        assert!(sem_remove_id(-1).is_err());
    }
}
