//! Apple's key rules (macOS, iOS): Qt 6.11's Darwin branches of `qtipccommon.cpp`, as pure
//! functions of their inputs so that every platform's tests run them.
//!
//! * A legacy POSIX key (`legacyPlatformSafeKey`) is `/` + the first 29 hexadecimal digits of
//!   the SHA-1 of its UTF-8 bytes, the same name for a segment and its semaphore (`shm_open`
//!   and `sem_open` have separate namespaces), or, in a sandboxed application, the key itself,
//!   which must then be `<application group identifier>/<name>`.
//! * A non-legacy POSIX key (`platformSafeKey`) is `/` + its first 29 UTF-16 code units.
//! * Names have at most [`SHM_NAME_MAX`] bytes; a longer one is a `KeyError` before any
//!   system call (on a Mac, Qt's gets `ENAMETOOLONG` from `sem_open`, also a `KeyError`).
//! * Qt's type for Qt keys is System V, or POSIX in a sandbox, where System V is unavailable.
//! * System V key files live in Qt's temporary directory, which on Apple platforms is the
//!   per-user `confstr(_CS_DARWIN_USER_TEMP_DIR)` (`NSTemporaryDirectory`) when `$TMPDIR`
//!   is unset or empty.
//!
//! See `../shared/reference/apple-bsd.md` and `docs/keys.md`.

use super::KeyType;

/// The usable bytes of a POSIX name on Apple platforms, the `/` included and the NUL not:
/// Qt's `SHM_NAME_MAX`. XNU's `PSEMNAMLEN` is 31, but only 30 work (Qt's comment: "possibly
/// due to an off-by-one bug in the kernel").
pub(crate) const SHM_NAME_MAX: usize = 30;

/// Which Apple operating system: Qt checks the sandbox entitlement on macOS only and takes
/// every other Apple platform for sandboxed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(qshm_apple), allow(dead_code))] // asked on Apple targets, tested everywhere
pub(crate) enum AppleOs {
    MacOs,
    /// iOS, iPadOS, tvOS, watchOS, visionOS.
    Other,
}

/// Qt's `qt_apple_isSandboxed`: on macOS, whether the executable's code signature carries
/// the `com.apple.security.app-sandbox` entitlement (`has_entitlement`, asked only there);
/// on the other Apple platforms, always.
#[cfg_attr(not(qshm_apple), allow(dead_code))] // asked on Apple targets, tested everywhere
pub(crate) fn is_sandboxed(os: AppleOs, has_entitlement: impl FnOnce() -> bool) -> bool {
    match os {
        AppleOs::MacOs => has_entitlement(),
        AppleOs::Other => true,
    }
}

/// Qt's `QNativeIpcKey::legacyDefaultTypeForOs()` on Darwin (`defaultTypeForOs_internal`):
/// System V unless sandboxed.
pub(crate) fn legacy_default_type(sandboxed: bool) -> KeyType {
    if sandboxed {
        KeyType::PosixRealtime
    } else {
        KeyType::SystemV
    }
}

/// Qt's `isIpcSupportedAtRuntime` on Darwin: System V is not available in a sandbox (using
/// it there raises `SIGSYS`).
pub(crate) fn key_type_available(key_type: KeyType, sandboxed: bool) -> bool {
    !(key_type.is_system_v() && sandboxed)
}

/// The legacy POSIX name of `key` (`legacyPlatformSafeKey` on Darwin); empty for an empty key.
pub(crate) fn legacy_posix_name(key: &str, sandboxed: bool) -> String {
    if key.is_empty() {
        String::new()
    } else if sandboxed {
        key.to_owned()
    } else {
        format!("/{}", &super::sha1_hex(key)[..SHM_NAME_MAX - 1])
    }
}

/// The platform-safe POSIX name of `key` (`platformSafeKey` on Darwin): `/` + its first 29
/// UTF-16 code units. A surrogate pair that the cut splits leaves its first half, which
/// becomes `?` in the bytes the system sees (Qt's UTF-8 encoder), as here.
pub(crate) fn platform_safe_posix_name(key: &str) -> String {
    if key.is_empty() {
        return String::new();
    }
    let mut out = String::from("/");
    let mut units = 0;
    for c in key.chars() {
        let len = c.len_utf16();
        if units + len > SHM_NAME_MAX - 1 {
            if units < SHM_NAME_MAX - 1 {
                out.push('?'); // the lone high surrogate
            }
            break;
        }
        units += len;
        out.push(c);
    }
    out
}

/// Checks a POSIX name (of a segment or a semaphore) against Apple's rules; the reason when
/// the system would refuse it. Called before any system call.
pub(crate) fn check_posix_name(name: &str, sandboxed: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("key is empty".into());
    }
    if name.contains('\0') {
        return Err("the name contains a NUL character".into());
    }
    if name.len() > SHM_NAME_MAX {
        return Err(format!(
            "the name `{name}` is {} bytes; Apple platforms allow {SHM_NAME_MAX}",
            name.len()
        ));
    }
    if sandboxed {
        match name.split_once('/') {
            Some((group, rest)) if !group.is_empty() && !rest.is_empty() => {}
            _ => {
                return Err(format!(
                    "a sandboxed application's name must be `<application group identifier>/<name>`, not `{name}`"
                ))
            }
        }
    }
    Ok(())
}

/// Qt's temporary directory before cleaning, on Apple platforms: `$TMPDIR` when set and not
/// empty, else the per-user temporary directory (`confstr(_CS_DARWIN_USER_TEMP_DIR)`, what
/// `NSTemporaryDirectory` returns), else `/tmp`.
pub(crate) fn temp_dir_source(
    tmpdir: Option<String>,
    user_temp_dir: impl FnOnce() -> Option<String>,
) -> String {
    tmpdir
        .filter(|v| !v.is_empty())
        .or_else(|| user_temp_dir().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "/tmp".to_owned())
}

#[cfg(test)]
mod golden;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{legacy_native_name, IpcKind, NamingRules, TempDirStyle};

    fn rules(sandboxed: bool) -> NamingRules {
        NamingRules {
            apple_posix: true,
            apple_sandboxed: sandboxed,
            windows: false,
        }
    }

    /// The golden rows (at least 30 keys), through the pure functions and through the
    /// derivation `NativeKey` uses with Apple's rules.
    #[test]
    fn golden_rows() {
        assert!(golden::ROWS.len() >= 30);
        for &(key, legacy, legacy_ok, sandboxed_ok, safe, safe_ok) in golden::ROWS {
            assert_eq!(legacy_posix_name(key, false), legacy, "{key:?}");
            assert_eq!(legacy_posix_name(key, true), key, "{key:?}");
            assert_eq!(platform_safe_posix_name(key), safe, "{key:?}");
            assert_eq!(
                check_posix_name(legacy, false).is_ok(),
                legacy_ok,
                "{key:?}"
            );
            assert_eq!(check_posix_name(key, true).is_ok(), sandboxed_ok, "{key:?}");
            assert_eq!(check_posix_name(safe, false).is_ok(), safe_ok, "{key:?}");
            for kind in [IpcKind::SharedMemory, IpcKind::Semaphore] {
                for (sandboxed, expected) in [(false, legacy), (true, key)] {
                    let derived = legacy_native_name(
                        kind,
                        key,
                        KeyType::PosixRealtime,
                        TempDirStyle::Current,
                        &rules(sandboxed),
                    );
                    assert_eq!(derived, expected, "{key:?} {kind:?} sandboxed={sandboxed}");
                }
            }
            assert_eq!(rules(false).posix_platform_safe(key), safe, "{key:?}");
        }
    }

    /// The 30-byte limit: exactly 30 is accepted, 31 is not, whatever the characters.
    #[test]
    fn thirty_bytes() {
        assert!(check_posix_name(&format!("/{}", "x".repeat(29)), false).is_ok());
        assert!(check_posix_name(&format!("/{}", "x".repeat(30)), false).is_err());
        // 1 + 14 × 2 = 29, 1 + 15 × 2 = 31 bytes.
        assert!(check_posix_name(&format!("/{}", "é".repeat(14)), false).is_ok());
        let err = check_posix_name(&format!("/{}", "é".repeat(15)), false).unwrap_err();
        assert!(err.contains("31 bytes"), "{err}");
        assert!(check_posix_name("/a\0b", false).is_err());
        assert!(check_posix_name("", false).is_err());
    }

    #[test]
    fn sandboxed_names_need_a_group() {
        assert!(check_posix_name("ABCDE12345.com.example/shm", true).is_ok());
        for bad in ["/shm", "shm", "group/", "/group/x"] {
            assert!(check_posix_name(bad, true).is_err(), "{bad}");
        }
        // Outside a sandbox the form is free.
        assert!(check_posix_name("shm", false).is_ok());
    }

    #[test]
    fn default_type_and_sandbox() {
        assert!(is_sandboxed(AppleOs::Other, || unreachable!(
            "asked on macOS only"
        )));
        assert!(is_sandboxed(AppleOs::MacOs, || true));
        assert!(!is_sandboxed(AppleOs::MacOs, || false));
        assert_eq!(legacy_default_type(false), KeyType::SystemV);
        assert_eq!(legacy_default_type(true), KeyType::PosixRealtime);
        assert!(key_type_available(KeyType::SystemV, false));
        assert!(!key_type_available(KeyType::SystemV, true));
        assert!(key_type_available(KeyType::PosixRealtime, true));
    }

    #[test]
    fn temp_dir_is_per_user() {
        let user = || Some("/var/folders/ab/xyz/T/".to_owned());
        assert_eq!(temp_dir_source(Some("/custom".into()), user), "/custom");
        assert_eq!(
            temp_dir_source(Some(String::new()), user),
            "/var/folders/ab/xyz/T/"
        );
        assert_eq!(temp_dir_source(None, user), "/var/folders/ab/xyz/T/");
        assert_eq!(temp_dir_source(None, || None), "/tmp");
        // Cleaned as Qt cleans it (the trailing `/` goes).
        assert_eq!(
            crate::key::clean_path(&temp_dir_source(None, user)),
            "/var/folders/ab/xyz/T"
        );
    }
}
