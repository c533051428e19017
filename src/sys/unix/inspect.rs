//! The system calls of [`crate::inspect`]: System V objects by id (`semctl` queries,
//! `IPC_RMID` of a segment whose key file is gone) and by key (`shmget`/`semget` and
//! `IPC_STAT`, where there is no `/proc/sysvipc` to list them: macOS, FreeBSD, the portable
//! mode), `ftok`, and reading a glibc POSIX semaphore's value without opening it (Linux).
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
//! * FreeBSD's `shmctl(2)` and `semctl(2)`; macOS's `<sys/shm.h>` (its `shmid_ds` is packed
//!   to 4 bytes, which the `libc` crate's is not: the fields after `shm_nattch` are not read
//!   there)

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
    super::sysv::ftok(&c, proj)
        .map(super::sysv::key_to_i32)
        .map_err(io::Error::from_raw_os_error)
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
    use super::sysv::sem_cmd::{GETNCNT, GETPID, GETVAL};
    Ok(SemState {
        value: semctl_get(semid, GETVAL)?,
        last_pid: semctl_get(semid, GETPID)?,
        waiters: semctl_get(semid, GETNCNT)?,
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

/// What `shmctl(IPC_STAT)` tells of a segment: what `/proc/sysvipc/shm` shows of it.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(qshm_portable), allow(dead_code))] // the key-file snapshot's (inspect/snapshot.rs)
pub(crate) struct ShmStat {
    pub(crate) key: i32,
    /// The permission bits.
    pub(crate) mode: u32,
    pub(crate) size: u64,
    pub(crate) cpid: u32,
    pub(crate) lpid: u32,
    pub(crate) nattch: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Seconds since the epoch; 0 where not read (macOS, see the module docs).
    pub(crate) ctime: u64,
}

/// The key an `ipc_perm` records (each C library names the field its own way).
#[allow(clippy::unnecessary_cast)] // key_t is wider than 32 bits on FreeBSD only
fn perm_key(perm: &libc::ipc_perm) -> i32 {
    #[cfg(all(qshm_linux, not(qshm_libc = "musl")))]
    let key = perm.__key;
    #[cfg(qshm_libc = "musl")]
    #[allow(deprecated)] // the libc crate's name for musl's `__ipc_perm_key`, to be renamed
    let key = perm.__ipc_perm_key;
    #[cfg(target_vendor = "apple")]
    let key = perm._key;
    #[cfg(target_os = "freebsd")]
    let key = perm.key;
    key as i32
}

/// `shmctl(shmid, IPC_STAT)`: a segment, by id.
#[allow(clippy::unnecessary_cast)] // the field types vary across C libraries
pub(crate) fn shm_stat(shmid: i32) -> io::Result<ShmStat> {
    let ds = super::sysv::shm_stat(shmid).map_err(io::Error::from_raw_os_error)?;
    #[cfg(not(target_vendor = "apple"))]
    let ctime = ds.shm_ctime.max(0) as u64;
    #[cfg(target_vendor = "apple")]
    let ctime = 0;
    Ok(ShmStat {
        key: perm_key(&ds.shm_perm),
        mode: ds.shm_perm.mode as u32 & 0o777,
        size: ds.shm_segsz as u64,
        cpid: ds.shm_cpid as u32,
        lpid: ds.shm_lpid as u32,
        nattch: ds.shm_nattch as u64,
        uid: ds.shm_perm.uid as u32,
        gid: ds.shm_perm.gid as u32,
        ctime,
    })
}

/// `shmctl(shmid, IPC_STAT)`: the key and the attach count of a segment, by id.
pub(crate) fn shm_key_and_nattch(shmid: i32) -> io::Result<(i32, u64)> {
    shm_stat(shmid).map(|st| (st.key, st.nattch))
}

/// `shmget(key, 0, 0)`: the id of the segment with System V key `key`.
#[cfg_attr(not(qshm_portable), allow(dead_code))] // the key-file snapshot's (inspect/snapshot.rs)
pub(crate) fn shm_id(key: i32) -> io::Result<i32> {
    // SAFETY: a lookup without IPC_CREAT creates nothing and only returns an id.
    let rc = unsafe { libc::shmget(super::sysv::key_from_i32(key), 0, 0) };
    cvt(rc).map_err(io::Error::from_raw_os_error)
}

/// `semget(key, 0, 0)`: the id of the semaphore set with System V key `key`.
#[cfg_attr(not(qshm_portable), allow(dead_code))] // the key-file snapshot's (inspect/snapshot.rs)
pub(crate) fn sem_id(key: i32) -> io::Result<i32> {
    // SAFETY: a lookup without IPC_CREAT creates nothing and only returns an id.
    let rc = unsafe { libc::semget(super::sysv::key_from_i32(key), 0, 0) };
    cvt(rc).map_err(io::Error::from_raw_os_error)
}

/// `semctl(semid, 0, IPC_STAT)`: the owner's uid and the permission bits of a set, by id.
#[cfg_attr(not(qshm_portable), allow(dead_code))] // the key-file snapshot's (inspect/snapshot.rs)
pub(crate) fn sem_owner_and_mode(semid: i32) -> io::Result<(u32, u32)> {
    super::sysv::sem_stat(semid)
        .map(|(_, uid, mode)| (uid, mode))
        .ok_or_else(io::Error::last_os_error)
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
#[cfg(qshm_linux)]
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

/// No semaphore files here (macOS and FreeBSD keep POSIX semaphores elsewhere).
#[cfg(not(qshm_linux))]
pub(crate) fn posix_sem_state(_: &Path) -> Option<PosixSemState> {
    None
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
        assert!(sem_owner_and_mode(-1).is_err());
        assert!(shm_remove_id(-1).is_err());
        assert!(sem_remove_id(-1).is_err());
    }
}
