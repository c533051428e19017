//! Reading `/proc/<pid>/maps`: which files a process maps, named by device and inode.
//!
//! A path is no name for a mapped file: a file created unnamed (`O_TMPFILE`) and linked
//! into place later shows in the maps of the process that created it as
//! `/dev/shm/#<inode> (deleted)`, and a name can be given to another file after the first
//! is unlinked. The device and inode fields say which file it is. Pure text parsing: no
//! system call here.
//!
//! # References
//!
//! * <https://man7.org/linux/man-pages/man5/proc_pid_maps.5.html>

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
    #[cfg(unix)]
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
    fn parses_maps_lines() {
        let maps = "\
7f00a0000000-7f00a0001000 rw-s 00000000 00:19 4242 /dev/shm/#4242 (deleted)
7f00a0002000-7f00a0003000 rw-p 00000000 00:00 0 \n\
7f00a0004000-7f00a0005000 r--s 00000000 103:02 77 /dev/shm/x y
garbage line
";
        let found: Vec<_> = mapped_files(maps).collect();
        assert_eq!(
            found,
            [
                (0x7f00_a000_0000, FileId::new(0x19, 4242)),
                (0x7f00_a000_4000, FileId::new(0x10302, 77)),
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
