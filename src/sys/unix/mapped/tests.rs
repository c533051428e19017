//! Unit tests of the mapped segments.

use super::*;

#[test]
fn send_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<MappedInner>();
}

fn header_bytes(version: u32, header_size: u32, data_size: u64) -> Vec<u8> {
    let mut b = vec![0u8; 4096];
    b[..8].copy_from_slice(&MAGIC);
    b[8..12].copy_from_slice(&version.to_ne_bytes());
    b[12..16].copy_from_slice(&header_size.to_ne_bytes());
    b[16..24].copy_from_slice(&data_size.to_ne_bytes());
    b[28..32].copy_from_slice(&BYTE_ORDER.to_ne_bytes());
    b
}

#[test]
fn header_validation() {
    let ok = header_bytes(VERSION, 4096, 100);
    assert_eq!(validate_header(&ok, 4196).unwrap().data_size, 100);
    assert_eq!(
        validate_header(&ok, 4195).unwrap_err().0,
        ErrorKind::InvalidSize
    );
    assert_eq!(
        validate_header(&ok[..10], 10).unwrap_err().0,
        ErrorKind::InvalidSize
    );
    assert_eq!(
        validate_header(&header_bytes(4, 4096, 1), 8192)
            .unwrap_err()
            .0,
        ErrorKind::Unsupported
    );
    // Version 2 (before the change counter) is still read: its header has the room.
    assert_eq!(
        validate_header(&header_bytes(2, 128, 1), 8192)
            .unwrap()
            .header_size,
        128
    );
    // Version 1 named lock owners by thread id: refused, with the reason.
    let (kind, why) = validate_header(&header_bytes(1, 4096, 1), 8192).unwrap_err();
    assert_eq!(kind, ErrorKind::Unsupported);
    assert!(why.contains("PID namespaces"), "{why}");
    assert_eq!(
        validate_header(&header_bytes(VERSION, 13, 1), 8192)
            .unwrap_err()
            .0,
        ErrorKind::KeyError
    );
    assert_eq!(
        validate_header(&header_bytes(VERSION, 4096, u64::MAX), 8192)
            .unwrap_err()
            .0,
        ErrorKind::InvalidSize
    );
    assert_eq!(
        validate_header(&header_bytes(VERSION, 4096, 0), 8192)
            .unwrap_err()
            .0,
        ErrorKind::InvalidSize
    );
    let mut bad = ok.clone();
    bad[0] = b'X';
    assert_eq!(
        validate_header(&bad, 8192).unwrap_err().0,
        ErrorKind::KeyError
    );
}

#[test]
#[cfg_attr(miri, ignore = "statfs")]
fn ram_backed_file_systems_are_recognised() {
    if let Ok(st) = rustix::fs::statfs("/dev/shm") {
        assert!(is_ram_fs(&st), "/dev/shm: {}", fs_name(&st));
    }
    if let Ok(st) = rustix::fs::statfs("/proc") {
        assert!(!is_ram_fs(&st), "/proc: {}", fs_name(&st));
    }
}
