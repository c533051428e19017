//! Reading `/proc`: a task's `stat` (state, parent, start time), and `/proc/<pid>/maps`:
//! which files a process maps, named by device and inode. The one parser of each.
//!
//! A path is no name for a mapped file: a file created unnamed (`O_TMPFILE`) and linked
//! into place later shows in the maps of the process that created it as
//! `/dev/shm/#<inode> (deleted)`, and a name can be given to another file after the first
//! is unlinked. The device and inode fields say which file it is.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man5/proc_pid_maps.5.html>,
//!   <https://man7.org/linux/man-pages/man5/proc_pid_stat.5.html>
// Other Unix reads no task status (`inspect::process_alive` asks `kill` there); the
// maps parser serves inspection's POSIX side, which finds nothing to read without `/dev/shm`.
// Off Linux, and in the portable mode (which judges no owner by /proc), parts are unused.
#![cfg_attr(any(not(qshm_linux), qshm_posix_portable), allow(dead_code))]

/// What qshm reads from a task's `stat` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskStat {
    /// Field 3: `R`, `S`, `D`, `Z`, …
    pub(crate) state: u8,
    /// Field 4: the parent process.
    pub(crate) ppid: u32,
    /// Field 22: the start time, in clock ticks since boot.
    pub(crate) start: u64,
}

impl TaskStat {
    /// Whether the task has exited: a zombie (`Z`) or dead (`X`, and `x` of some kernels).
    /// A zombie has given back its files, mappings and `SEM_UNDO` adjustments.
    pub(crate) fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses a `/proc/…/stat` line: `pid (comm) state ppid … starttime …`. The command name
/// may contain spaces and parentheses, so fields are counted after the last `)`.
pub(crate) fn parse_stat(text: &[u8]) -> Option<TaskStat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    // Field 4 was `ppid`; field 22 is 18 further on.
    let start = fields.nth(17)?.parse().ok()?;
    Some(TaskStat { state, ppid, start })
}

/// Reads and parses a `stat` file (at most 1 KiB: the fields qshm needs come first).
pub(crate) fn read_stat(path: impl AsRef<std::path::Path>) -> std::io::Result<TaskStat> {
    crate::sys::portable::linux_only(crate::sys::portable::LinuxOnly::Proc);
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    parse_stat(&buf[..len]).ok_or_else(|| std::io::Error::from(std::io::ErrorKind::InvalidData))
}

/// The `stat` of task `tid`, read as `/proc/<tid>/task/<tid>/stat`: for a process id, its
/// main thread's, which carries the process's start time. Not `/proc/<pid>/stat`: emulators
/// such as qemu-user answer that path for the calling process with made-up figures (the
/// start time rounded to qemu's own start), which would not match what every other process
/// reads.
///
/// Allocates nothing: a waiter asks this about a lock's holder each time it finds the lock
/// taken.
pub(crate) fn task_stat(tid: u32) -> std::io::Result<TaskStat> {
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    let mut buf = [0u8; 48];
    let mut rest = &mut buf[..];
    write!(rest, "/proc/{tid}/task/{tid}/stat")?;
    let len = 48 - rest.len();
    read_stat(std::ffi::OsStr::from_bytes(&buf[..len]))
}

/// A file, as the kernel identifies it: device (major, minor) and inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    major: u64,
    minor: u64,
    ino: u64,
}

impl FileId {
    /// From `st_dev` and `st_ino` (glibc's 64-bit `dev_t` encoding, `gnu_dev_major` and
    /// `gnu_dev_minor`).
    pub(crate) fn new(dev: u64, ino: u64) -> FileId {
        FileId {
            major: ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff),
            minor: (dev & 0xff) | ((dev >> 12) & !0xff),
            ino,
        }
    }

    /// Whether both are on the same device.
    pub(crate) fn same_device(self, other: FileId) -> bool {
        (self.major, self.minor) == (other.major, other.minor)
    }

    /// From file metadata.
    pub(crate) fn of(meta: &std::fs::Metadata) -> FileId {
        use std::os::unix::fs::MetadataExt;
        FileId::new(meta.dev(), meta.ino())
    }
}

/// Every file mapping in the text of a `/proc/<pid>/maps`: where it starts, and the file.
/// Anonymous mappings (inode 0) are skipped.
pub(crate) fn mapped_files(maps: &str) -> impl Iterator<Item = (usize, FileId)> + '_ {
    maps.lines().filter_map(|line| {
        // start-end perms offset major:minor inode [path]
        let mut fields = line.split_ascii_whitespace();
        let start = usize::from_str_radix(fields.next()?.split('-').next()?, 16).ok()?;
        let (major, minor) = fields.nth(2)?.split_once(':')?;
        let ino: u64 = fields.next()?.parse().ok()?;
        (ino != 0).then_some((
            start,
            FileId {
                major: u64::from_str_radix(major, 16).ok()?,
                minor: u64::from_str_radix(minor, 16).ok()?,
                ino,
            },
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_hostile_command_names() {
        let line = b"1234 (a) b) (c) S 77 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 \
                     4294967398 1000 100 18446744073709551615\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, b'S');
        assert_eq!(stat.ppid, 77);
        assert_eq!(stat.start, 4294967398);
        assert!(!stat.is_dead());
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"1 (x) S 1 2"), None);
        for state in [b'Z', b'X', b'x'] {
            assert!(TaskStat {
                state,
                ppid: 1,
                start: 1
            }
            .is_dead());
        }
    }

    #[test]
    fn parses_maps_lines() {
        let maps = "\
7f0a0000-7f0a1000 rw-s 00000000 00:19 4242 /dev/shm/#4242 (deleted)
7f0a2000-7f0a3000 rw-p 00000000 00:00 0 \n\
7f0a4000-7f0a5000 r--s 00000000 103:02 77 /dev/shm/x y
garbage line
";
        let found: Vec<_> = mapped_files(maps).collect();
        assert_eq!(
            found,
            [
                (0x7f0a_0000, FileId::new(0x19, 4242)),
                (0x7f0a_4000, FileId::new(0x10302, 77)),
            ]
        );
        // Large device numbers: major 0x123, minor 0x45678.
        let dev = (0x78 & 0xff) | (0x123 << 8) | (0x45600 << 12);
        assert_eq!(
            FileId::new(dev, 1),
            FileId {
                major: 0x123,
                minor: 0x45678,
                ino: 1
            }
        );
    }
}
