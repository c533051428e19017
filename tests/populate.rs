//! Page population: create and attach touch no page unless asked (`set_populate`,
//! `populate(true)`), so that an 8 GiB segment costs what a 4 KiB one does; asked, every page
//! is mapped (and at create allocated). Checked in the kernel's own accounting: the
//! resident size of the mapping (`/proc/self/smaps`) and the blocks of the file.
#![cfg(unix)] // Linux: madvise, memfd and file blocks

mod util;

use std::os::fd::AsFd;
use std::time::Duration;

use qshm::mapped::{MappedSegment, MemfdOptions, ReceiveOptions};
use qshm::{AccessMode, KeyType, NativeKey, SharedMemory};
use util::{Cleanup, Watchdog};

const MIB: usize = 1 << 20;

/// The resident size, in bytes, of this process's mapping that holds `addr`.
fn rss_of_mapping(addr: *const u8) -> usize {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let addr = addr as usize;
    let holds = |l: &str| {
        let Some((range, _)) = l.split_once(' ') else {
            return false;
        };
        let Some((a, b)) = range.split_once('-') else {
            return false;
        };
        match (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
            (Ok(a), Ok(b)) => a <= addr && addr < b,
            _ => false,
        }
    };
    let mut lines = smaps.lines().skip_while(|l| !holds(l));
    assert!(lines.next().is_some(), "no mapping holds {addr:x}");
    let rss = lines
        .find_map(|l| l.strip_prefix("Rss:"))
        .expect("an Rss line");
    rss.trim()
        .trim_end_matches(" kB")
        .trim()
        .parse::<usize>()
        .unwrap()
        * 1024
}

fn keys(name: &str) -> [(NativeKey, Cleanup); 2] {
    let sysv = NativeKey::legacy(&util::unique_key(name), KeyType::SystemV);
    let posix = NativeKey::platform_safe(&util::unique_key(name), KeyType::PosixRealtime);
    let c1 = Cleanup::new().segment(&sysv);
    let c2 = Cleanup::new().segment(&posix);
    [(sysv, c1), (posix, c2)]
}

#[test]
fn create_and_attach_touch_no_page_unless_asked() {
    let _w = Watchdog::new("populate_default", Duration::from_secs(120));
    for (key, _c) in keys("populate-none") {
        let mut owner = SharedMemory::with_native_key(key.clone());
        owner.create(8 * MIB, AccessMode::ReadWrite).unwrap();
        assert_eq!(
            rss_of_mapping(owner.as_ptr()),
            0,
            "{key}: create touched pages"
        );
        let mut other = SharedMemory::with_native_key(key.clone());
        other.attach(AccessMode::ReadOnly).unwrap();
        assert_eq!(
            rss_of_mapping(other.as_ptr()),
            0,
            "{key}: attach touched pages"
        );
        other.detach().unwrap();
        owner.detach().unwrap();
    }
}

#[test]
fn populate_maps_every_page_at_create_and_attach() {
    let _w = Watchdog::new("populate_asked", Duration::from_secs(120));
    for (key, _c) in keys("populate-all") {
        let mut owner = SharedMemory::with_native_key(key.clone());
        owner.set_populate(true);
        assert!(owner.populate());
        owner.create(8 * MIB, AccessMode::ReadWrite).unwrap();
        assert_eq!(rss_of_mapping(owner.as_ptr()), 8 * MIB, "{key}: create");
        {
            let mut g = owner.lock().unwrap();
            g.as_mut_slice().unwrap()[5 * MIB] = 42;
        }
        let mut reader = SharedMemory::with_native_key(key.clone());
        reader.set_populate(true);
        reader.attach(AccessMode::ReadOnly).unwrap();
        assert_eq!(rss_of_mapping(reader.as_ptr()), 8 * MIB, "{key}: attach");
        assert_eq!(reader.lock().unwrap().as_slice()[5 * MIB], 42, "{key}");
        reader.detach().unwrap();
        owner.detach().unwrap();
    }
}

/// An 8 GiB POSIX segment (sparse in /dev/shm) and an 8 GiB memfd: created and attached
/// without allocating their pages.
#[test]
fn eight_gib_segments_allocate_nothing() {
    let _w = Watchdog::new("populate_8g", Duration::from_secs(120));
    let key = NativeKey::platform_safe(&util::unique_key("populate-8g"), KeyType::PosixRealtime);
    let _c = Cleanup::new().segment(&key);
    let mut shm = SharedMemory::with_native_key(key.clone());
    shm.create(8 << 30, AccessMode::ReadWrite).unwrap();
    let meta = std::fs::metadata(format!("/dev/shm{}", key.native_key())).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.len(), 8 << 30);
    assert_eq!(meta.blocks(), 0, "pages were allocated");
    shm.detach().unwrap();

    let seg = MappedSegment::memfd("populate-8g", 8 << 30).unwrap();
    let st = rustix_fstat_blocks(&seg);
    assert!(st <= 64, "memfd: {st} blocks allocated");
}

fn rustix_fstat_blocks(seg: &MappedSegment) -> u64 {
    let f = std::fs::File::from(seg.as_fd().try_clone_to_owned().unwrap());
    use std::os::unix::fs::MetadataExt;
    f.metadata().unwrap().blocks()
}

#[test]
fn mapped_segments_populate_on_request() {
    let _w = Watchdog::new("populate_mapped", Duration::from_secs(120));
    let seg = MemfdOptions::new()
        .populate(true)
        .create("populate", 4 * MIB)
        .unwrap();
    assert!(rss_of_mapping(seg.as_ptr()) >= 4 * MIB);
    let fd = seg.as_fd().try_clone_to_owned().unwrap();
    let received = MappedSegment::from_fd(fd, ReceiveOptions::new().populate(true)).unwrap();
    assert!(rss_of_mapping(received.as_ptr()) >= 4 * MIB);
    let fd = seg.as_fd().try_clone_to_owned().unwrap();
    let lazy = MappedSegment::from_fd(fd, &ReceiveOptions::new()).unwrap();
    // Only the header page, which every open reads.
    assert!(rss_of_mapping(lazy.as_ptr()) <= 4096 * 4);
}
