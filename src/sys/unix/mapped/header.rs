//! Reading and writing a segment's header through its descriptor (the layout and its
//! validation: `sys/segment_header.rs`).

use super::*;
pub(crate) use crate::sys::segment_header::*;

/// The header size new segments get: one page (at least 4096).
pub(crate) fn new_header_size() -> usize {
    page_size().max(4096)
}

/// Writes a new header into a freshly sized, not yet shared descriptor.
pub(super) fn write_header(
    fd: &OwnedFd,
    header_size: usize,
    data_size: usize,
    flags: u32,
    layout: Option<(u32, u64)>,
    label: &str,
    op: Operation,
) -> Result<()> {
    let bytes = new_header_bytes(
        header_size,
        data_size,
        flags | PROTOCOL,
        namespaces(),
        layout.unwrap_or((0, 0)),
    );
    let n = rustix::io::pwrite(fd, &bytes, 0).map_err(|e| Ctx::label(op, label).errno(e))?;
    if n != bytes.len() {
        return Err(Error::new(ErrorKind::OutOfResources, op, label)
            .with_detail("short write of the header"));
    }
    Ok(())
}

/// Reads and validates the header of `fd`, whose size is `file_len`: header size, data
/// size, flags and the creator's (PID, time) namespaces. Read with `pread`, not through a
/// mapping (a fault would map the neighbouring pages too).
pub(super) fn read_header(
    fd: impl AsFd,
    file_len: u64,
    op: Operation,
    label: &str,
) -> Result<HeaderFacts> {
    let mut bytes = [0u8; MIN_HEADER_SIZE];
    let mut got = 0;
    while got < bytes.len() {
        match rustix::io::pread(&fd, &mut bytes[got..], got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Ctx::label(op, label).errno(e)),
        }
    }
    let facts = validate_header(&bytes[..got], file_len)
        .map_err(|(kind, msg)| Error::new(kind, op, label).with_detail(msg))?;
    if facts.flags & FLAG_RECORD_LOCKS != PROTOCOL {
        let (theirs, ours) = if PROTOCOL == 0 {
            ("classic record locks (a macOS, iOS or FreeBSD build of qshm, or the portable-Unix test mode)", "flock and open-file-description locks")
        } else {
            (
                "flock and open-file-description locks (Linux's qshm, or include/qshm.h)",
                "classic record locks",
            )
        };
        return Err(
            Error::new(ErrorKind::Unsupported, op, label).with_detail(format!(
                "the segment counts its users with {theirs}, and this build with {ours}: \
             neither would see the other's users"
            )),
        );
    }
    Ok(facts)
}

/// The protocol flag this build writes and expects (`FLAG_RECORD_LOCKS`).
#[cfg(qshm_posix_portable)]
const PROTOCOL: u32 = FLAG_RECORD_LOCKS;
#[cfg(not(qshm_posix_portable))]
const PROTOCOL: u32 = 0;
