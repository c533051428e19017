//! The header of a mapped segment (`struct qshm_header` in `include/qshm.h`): its layout and
//! its validation, the same on every platform. Reading and writing it is the platform's.

use crate::error::{Error, ErrorKind, Operation, Result};

/// The first 8 bytes of every segment.
pub(crate) const MAGIC: [u8; 8] = *b"QSHM\0SEG";

/// The layout version this build writes.
pub(crate) const VERSION: u32 = 3;

/// The oldest layout version this build reads. Version 3 added the change counter and its
/// sleeper count (offsets 88 and 92); every version-2 header has room for them (its size is
/// a multiple of 64, at least 88, so at least 128) and they read 0 there, so a version-2
/// segment gets change notification too.
pub(crate) const OLDEST_VERSION: u32 = 2;

/// Written in native byte order; a reader of the other byte order sees `0x04030201`.
pub(crate) const BYTE_ORDER: u32 = 0x0102_0304;

/// Header flag: the file is removed when its last qshm user detaches.
pub(crate) const FLAG_REMOVE_ON_LAST_DETACH: u32 = 1;

/// Header flag: the segment's users and its lock's owners are told apart by classic record
/// locks (macOS, iOS, FreeBSD, and Linux's portable-Unix test mode: `sys/unix/record_lock.rs`)
/// rather than by `flock` and open-file-description locks (Linux, `include/qshm.h`). The two
/// protocols do not see each other's users, so a process refuses a segment of the other.
#[allow(dead_code)] // read on Unix
pub(crate) const FLAG_RECORD_LOCKS: u32 = 2;

/// The bytes of the fixed part of the header (the fields below): the smallest header a
/// segment may declare is the next multiple of 64.
pub(crate) const MIN_HEADER_SIZE: usize = std::mem::size_of::<Header>();

/// Upper bound on a declared header size, so garbage cannot make us map gigabytes.
pub(crate) const MAX_HEADER_SIZE: usize = 1 << 20;

/// The fixed part of the header, layout version 3 (`struct qshm_header` in `qshm.h`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Header {
    pub(crate) magic: [u8; 8],
    pub(crate) version: u32,
    pub(crate) header_size: u32,
    pub(crate) data_size: u64,
    pub(crate) flags: u32,
    pub(crate) byte_order: u32,
    pub(crate) pid_ns: u64,
    pub(crate) time_ns: u64,
    pub(crate) layout_version: u32,
    pub(crate) reserved0: u32,
    pub(crate) layout_hash: u64,
    pub(crate) lock: u64,
    pub(crate) state: u32,
    pub(crate) reserved1: u32,
    pub(crate) generation: u64,
    pub(crate) changes: u32,
    pub(crate) change_waiters: u32,
}

const _: () = {
    assert!(std::mem::offset_of!(Header, version) == 8);
    assert!(std::mem::offset_of!(Header, header_size) == 12);
    assert!(std::mem::offset_of!(Header, data_size) == 16);
    assert!(std::mem::offset_of!(Header, flags) == 24);
    assert!(std::mem::offset_of!(Header, byte_order) == 28);
    assert!(std::mem::offset_of!(Header, pid_ns) == 32);
    assert!(std::mem::offset_of!(Header, time_ns) == 40);
    assert!(std::mem::offset_of!(Header, layout_version) == 48);
    assert!(std::mem::offset_of!(Header, layout_hash) == 56);
    assert!(std::mem::offset_of!(Header, lock) == 64);
    assert!(std::mem::offset_of!(Header, state) == 72);
    assert!(std::mem::offset_of!(Header, generation) == 80);
    assert!(std::mem::offset_of!(Header, changes) == 88);
    assert!(std::mem::offset_of!(Header, change_waiters) == 92);
    assert!(std::mem::size_of::<Header>() == 96);
};

impl Header {
    fn from_bytes(b: &[u8; MIN_HEADER_SIZE]) -> Header {
        let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        Header {
            magic: b[0..8].try_into().expect("8 bytes"),
            version: u32_at(8),
            header_size: u32_at(12),
            data_size: u64_at(16),
            flags: u32_at(24),
            byte_order: u32_at(28),
            pid_ns: u64_at(32),
            time_ns: u64_at(40),
            layout_version: u32_at(48),
            reserved0: 0,
            layout_hash: u64_at(56),
            lock: u64_at(64),
            state: u32_at(72),
            reserved1: 0,
            generation: u64_at(80),
            changes: u32_at(88),
            change_waiters: u32_at(92),
        }
    }
}

/// What a valid header says: header size, data size, flags, and the creator's (PID, time)
/// namespaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderFacts {
    pub(crate) header_size: usize,
    pub(crate) data_size: usize,
    pub(crate) flags: u32,
    /// The creator's (PID, time) namespaces.
    pub(crate) namespaces: (u64, u64),
    /// The layout stamp (version, hash); (0, 0): none.
    pub(crate) layout: (u32, u64),
}

/// Refuses a segment whose layout stamp is not the `expected` one (when one is expected).
pub(crate) fn check_layout(
    found: (u32, u64),
    expected: Option<(u32, u64)>,
    op: Operation,
    label: &str,
) -> Result<()> {
    let Some(expected) = expected.filter(|&e| e != found) else {
        return Ok(());
    };
    let show = |(version, hash): (u32, u64)| {
        if (version, hash) == (0, 0) {
            "no layout stamp".to_owned()
        } else {
            format!("layout stamp version {version}, hash {hash:#018x}")
        }
    };
    Err(
        Error::new(ErrorKind::Layout, op, label).with_detail(format!(
            "the segment was created with {}; this program expects {}",
            show(found),
            show(expected)
        )),
    )
}

/// Checks a header read from a file of `file_len` bytes; returns what it says ([`HeaderFacts`]).
/// The error is (kind, message).
pub(crate) fn validate_header(
    bytes: &[u8],
    file_len: u64,
) -> std::result::Result<HeaderFacts, (ErrorKind, String)> {
    if bytes.len() < MIN_HEADER_SIZE || file_len < MIN_HEADER_SIZE as u64 {
        return Err((
            ErrorKind::InvalidSize,
            format!(
                "the file is {file_len} bytes, smaller than a qshm header ({MIN_HEADER_SIZE} bytes)"
            ),
        ));
    }
    let h = Header::from_bytes(bytes[..MIN_HEADER_SIZE].try_into().expect("header bytes"));
    if h.magic != MAGIC {
        return Err((
            ErrorKind::KeyError,
            "not a qshm segment (bad magic: expected \"QSHM\\0SEG\" at offset 0)".into(),
        ));
    }
    if h.byte_order != BYTE_ORDER {
        return Err((
            ErrorKind::Unsupported,
            format!(
                "the segment was made on a machine of the other byte order ({:#010x})",
                h.byte_order
            ),
        ));
    }
    if !(OLDEST_VERSION..=VERSION).contains(&h.version) {
        let why = if h.version == 1 {
            " (version 1, written by earlier builds of qshm, identified lock owners by thread id, which cannot \
             work across PID namespaces: re-create the segment)"
        } else {
            ""
        };
        return Err((
            ErrorKind::Unsupported,
            format!(
                "layout version {} is not supported (this build reads versions {OLDEST_VERSION} to {VERSION}){why}",
                h.version
            ),
        ));
    }
    let header_size = h.header_size as usize;
    if !(MIN_HEADER_SIZE..=MAX_HEADER_SIZE).contains(&header_size) || header_size % 64 != 0 {
        return Err((
            ErrorKind::KeyError,
            format!(
                "corrupt header: header size {header_size} (must be a multiple of 64 between \
                 {MIN_HEADER_SIZE} and {MAX_HEADER_SIZE})"
            ),
        ));
    }
    let needed = (header_size as u64).checked_add(h.data_size);
    let Some(needed) = needed.filter(|&n| n <= isize::MAX as u64) else {
        return Err((
            ErrorKind::InvalidSize,
            format!("corrupt header: data size {} is too large", h.data_size),
        ));
    };
    if h.data_size == 0 {
        return Err((ErrorKind::InvalidSize, "corrupt header: data size 0".into()));
    }
    if file_len < needed {
        return Err((
            ErrorKind::InvalidSize,
            format!(
                "the header claims {needed} bytes ({header_size} of header and {} of data) \
                 but the file has only {file_len}",
                h.data_size
            ),
        ));
    }
    Ok(HeaderFacts {
        header_size,
        data_size: h.data_size as usize,
        flags: h.flags,
        namespaces: (h.pid_ns, h.time_ns),
        layout: (h.layout_version, h.layout_hash),
    })
}

/// The bytes of a new header (the fixed part; the lock, state and generation are 0).
pub(crate) fn new_header_bytes(
    header_size: usize,
    data_size: usize,
    flags: u32,
    (pid_ns, time_ns): (u64, u64),
    (layout_version, layout_hash): (u32, u64),
) -> [u8; MIN_HEADER_SIZE] {
    let mut bytes = [0u8; MIN_HEADER_SIZE];
    bytes[0..8].copy_from_slice(&MAGIC);
    bytes[8..12].copy_from_slice(&VERSION.to_ne_bytes());
    bytes[12..16].copy_from_slice(&(header_size as u32).to_ne_bytes());
    bytes[16..24].copy_from_slice(&(data_size as u64).to_ne_bytes());
    bytes[24..28].copy_from_slice(&flags.to_ne_bytes());
    bytes[28..32].copy_from_slice(&BYTE_ORDER.to_ne_bytes());
    bytes[32..40].copy_from_slice(&pid_ns.to_ne_bytes());
    bytes[40..48].copy_from_slice(&time_ns.to_ne_bytes());
    bytes[48..52].copy_from_slice(&layout_version.to_ne_bytes());
    bytes[56..64].copy_from_slice(&layout_hash.to_ne_bytes());
    bytes
}

/// The layout stamp (version, hash) in the header mapped at `base`.
///
/// # Safety
///
/// `base` must point to a mapped, page-aligned header of at least `MIN_HEADER_SIZE` bytes
/// (readable) that stays mapped during the call.
pub(crate) unsafe fn mapped_layout(base: *const u8) -> (u32, u64) {
    use std::sync::atomic::{AtomicU32, Ordering};
    // SAFETY: offsets 48, 56 and 60 lie in the header and are 4-aligned (base is
    // page-aligned); the caller keeps the header mapped. Atomic loads, because another
    // process could write these bytes at any time (a well-behaved one never does after
    // creating the segment); 32-bit loads, which every target does on read-only pages.
    let word =
        |offset: usize| unsafe { (*base.add(offset).cast::<AtomicU32>()).load(Ordering::Relaxed) };
    let (a, b) = (u64::from(word(56)), u64::from(word(60)));
    let hash = if cfg!(target_endian = "little") {
        b << 32 | a
    } else {
        a << 32 | b
    };
    (word(48), hash)
}

/// The total size of a segment of `data_size` bytes after a header of `header_size`:
/// `InvalidSize` for 0 or more than `isize::MAX`.
pub(crate) fn checked_total(
    data_size: usize,
    header_size: usize,
    op: Operation,
    label: &str,
) -> Result<usize> {
    if data_size == 0 {
        return Err(Error::new(ErrorKind::InvalidSize, op, label).with_detail("size is 0"));
    }
    header_size
        .checked_add(data_size)
        .filter(|&t| t <= isize::MAX as usize)
        .ok_or_else(|| {
            Error::new(ErrorKind::InvalidSize, op, label)
                .with_detail("size is larger than isize::MAX")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_header_validates() {
        let mut file = vec![0u8; 4096 + 10];
        file[..MIN_HEADER_SIZE].copy_from_slice(&new_header_bytes(4096, 10, 1, (7, 8), (3, 9)));
        assert_eq!(
            validate_header(&file, file.len() as u64),
            Ok(HeaderFacts {
                header_size: 4096,
                data_size: 10,
                flags: 1,
                namespaces: (7, 8),
                layout: (3, 9)
            })
        );
        let short = validate_header(&file, 4096 + 9).unwrap_err();
        assert_eq!(short.0, ErrorKind::InvalidSize);
        file[0] = b'X';
        assert_eq!(
            validate_header(&file, file.len() as u64).unwrap_err().0,
            ErrorKind::KeyError
        );
    }
}
