//! A mapped segment file with any content and any size: opening it never crashes (a clear
//! error, or a segment whose lock and bytes work), and nothing is left behind.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use qshm::mapped::FileOptions;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("qshm-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("segment");
    std::fs::write(&path, data).expect("write the garbage file");
    let mut options = FileOptions::new();
    options.directory(&dir).allow_disk_backed(true);
    if let Ok(segment) = options.open("segment") {
        // A garbage lock word may name a live process: never wait long.
        if let Ok(guard) = segment.lock_timeout(Duration::from_millis(5)) {
            let bytes = guard.as_slice();
            assert_eq!(bytes.len(), segment.size());
            std::hint::black_box(bytes.iter().fold(0u8, |a, &b| a ^ b));
        }
        let _ = segment.detach();
    }
    let _ = std::fs::remove_file(&path);
});
