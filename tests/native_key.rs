//! tst_qnativeipckey, ported at the API level (the exact text rows are unit tests of the
//! text form, generated from real Qt 6.11).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use qshm::{ErrorKind, KeyType, NativeKey, SharedMemory, SystemSemaphore};

fn hash(k: &NativeKey) -> u64 {
    let mut h = DefaultHasher::new();
    k.hash(&mut h);
    h.finish()
}

#[test]
fn default_types() {
    assert_eq!(KeyType::SystemV.to_raw(), u16::from(b'Q'));
    assert_eq!(KeyType::default_for_os(), KeyType::PosixRealtime);
    assert_eq!(KeyType::legacy_default_for_os(), KeyType::SystemV);
    assert_eq!(NativeKey::default().key_type(), KeyType::PosixRealtime);
    assert_eq!(NativeKey::default().to_string(), "posix:");
    assert_eq!(SharedMemory::new().native_key().to_string(), "posix:");
}

#[test]
fn construct() {
    let k = NativeKey::new("dummy", KeyType::SystemV);
    let copy = k.clone();
    assert_eq!(copy, k);
    assert_eq!(copy.key_type(), KeyType::SystemV);
    assert_eq!(copy.native_key(), "dummy");
    assert!(!k.is_empty());
    assert!(NativeKey::default().is_empty());
    for raw in [0u16, 0x102, 0xffff] {
        assert_eq!(KeyType::from_raw(raw), None);
    }
}

#[test]
fn equality_and_hash() {
    let legacy = NativeKey::legacy("hello", KeyType::SystemV);
    let same_native = NativeKey::new(legacy.native_key(), KeyType::SystemV);
    // The legacy key takes part in equality, and not in the hash.
    assert_ne!(legacy, same_native);
    assert_eq!(legacy.clone().without_legacy_key(), same_native);
    assert_eq!(NativeKey::legacy("hello", KeyType::SystemV), legacy);
    assert_ne!(
        NativeKey::new("/x", KeyType::SystemV),
        NativeKey::new("/x", KeyType::PosixRealtime)
    );
    assert_ne!(
        NativeKey::new("/x", KeyType::SystemV),
        NativeKey::new("/x", KeyType::from_raw(1).unwrap())
    );
    assert_eq!(
        hash(&NativeKey::new("/x", KeyType::SystemV)),
        hash(&NativeKey::new("/x", KeyType::SystemV))
    );
    assert_eq!(
        NativeKey::new("/x", KeyType::from_raw(0x51).unwrap()),
        NativeKey::new("/x", KeyType::SystemV)
    );
}

#[test]
fn to_string_and_parse_examples() {
    let cases = [
        (NativeKey::legacy("hello", KeyType::SystemV), None),
        (
            NativeKey::new("/x y?z#w%q&r=s", KeyType::PosixRealtime),
            Some("posix:/x y%3Fz%23w%25q&r=s"),
        ),
        (
            NativeKey::new("//double", KeyType::PosixRealtime),
            Some("posix:/%2Fdouble"),
        ),
        (
            NativeKey::new("/x", KeyType::from_raw(0x52).unwrap()),
            Some("systemv-82:/x"),
        ),
        (NativeKey::new("", KeyType::PosixRealtime), Some("posix:")),
    ];
    for (key, text) in cases {
        let s = key.to_string();
        if let Some(text) = text {
            assert_eq!(s, text);
        }
        assert_eq!(s.parse::<NativeKey>().unwrap(), key, "{s}");
    }
    let hello = NativeKey::legacy("hello", KeyType::SystemV);
    assert!(hello.to_string().starts_with("systemv:"));
    assert!(hello.to_string().ends_with(
        "qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d?legacyKey=hello"
    ));
}

#[test]
fn parse_rejects_invalid_text() {
    for text in [
        "",
        "posix",
        "junk:posix:",
        "systemv-0:/x",
        "systemv-256:/x",
        "posix:/x?other=1",
        "posix://host/x",
        " posix:/x",
    ] {
        let err = text.parse::<NativeKey>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyError, "{text:?}");
        assert!(err.to_string().contains("native key"), "{err}");
    }
}

#[test]
fn legacy_keys_round_trip() {
    let payloads = [
        "",
        "foobar",
        "/sometext",
        "Global\\sometext",
        ":/",
        "/:",
        "%",
        "?#",
        "#?",
        "//",
        "///",
        "é",
        "\u{a0}\u{ff}",
        "Ā. .𐀀",
        "a%b&c=d#e?f+g h",
    ];
    for t in [
        KeyType::SystemV,
        KeyType::PosixRealtime,
        KeyType::from_raw(1).unwrap(),
        KeyType::from_raw(255).unwrap(),
    ] {
        for p in payloads {
            for key in [
                NativeKey::legacy(p, t),
                SystemSemaphore::legacy_native_key(p, t),
            ] {
                let text = key.to_string();
                let back: NativeKey = text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
                assert_eq!(back, key, "{text:?}");
                assert_eq!(back.legacy_key(), if p.is_empty() { None } else { Some(p) });
            }
        }
    }
}

#[test]
fn lock_key_rules() {
    // Legacy key: the qipc_systemsem_ name of the same Qt key and type.
    let k = NativeKey::legacy("hello", KeyType::PosixRealtime);
    assert_eq!(
        k.lock_key().native_key(),
        "/qipc_systemsem_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
    );
    assert_eq!(k.lock_key().key_type(), KeyType::PosixRealtime);
    // No legacy key: the very same key.
    let n = NativeKey::new("/tmp/x/projfile", KeyType::from_raw(0x52).unwrap());
    assert_eq!(n.lock_key(), n);
}
