//! Any text: parsing a native key never panics, and a key that parses prints back to text
//! that parses to the same key. Any Qt key: derivation never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qshm::{KeyType, NativeKey, SystemSemaphore};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(key) = text.parse::<NativeKey>() {
        let printed = key.to_string();
        let again: NativeKey = printed.parse().expect("printed key parses");
        assert_eq!(again, key, "{printed:?}");
        let _ = key.lock_key();
    }
    for t in [KeyType::SystemV, KeyType::PosixRealtime, KeyType::Windows] {
        let derived = NativeKey::legacy(&text, t);
        let _ = SystemSemaphore::legacy_native_key(&text, t);
        if !text.starts_with('\u{feff}') {
            let round: NativeKey = derived.to_string().parse().expect("derived key parses");
            assert_eq!(round, derived);
        }
    }
});
