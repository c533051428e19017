//! What this target offers, as key derivation and backend choice need it: the facts the
//! build script's gates (`build.rs`) imply. Constants and pure functions of them, plus, on
//! Apple platforms, whether the application is sandboxed (asked once, as Qt asks it).

use crate::key::{KeyType, NamingRules};

/// The naming rules of this platform's keys.
pub(crate) fn naming() -> NamingRules {
    NamingRules {
        apple_posix: cfg!(qshm_apple),
        apple_sandboxed: cfg!(qshm_apple) && crate::sys::apple_sandboxed(),
        windows: cfg!(qshm_windows),
    }
}

/// Qt 6's type for a `QNativeIpcKey` made without one (`DefaultTypeForOs`).
pub(crate) const DEFAULT_KEY_TYPE: KeyType = if cfg!(qshm_windows) {
    KeyType::Windows
} else {
    KeyType::PosixRealtime
};

/// Qt's type for Qt keys (`QSharedMemory::setKey`, `legacyDefaultTypeForOs`): on Apple
/// platforms System V unless sandboxed.
pub(crate) fn legacy_default_key_type() -> KeyType {
    if cfg!(qshm_windows) {
        KeyType::Windows
    } else if cfg!(qshm_apple) {
        crate::key::apple_legacy_default_type(naming().apple_sandboxed)
    } else {
        KeyType::SystemV
    }
}

/// Which key types have a backend here.
pub(crate) fn is_key_type_supported(key_type: KeyType) -> bool {
    let backend = (cfg!(qshm_linux) && key_type.is_system_v())
        || (cfg!(any(qshm_linux, qshm_posix_portable)) && key_type == KeyType::PosixRealtime)
        || (cfg!(qshm_sysv_only) && key_type.is_system_v())
        || (cfg!(qshm_windows) && key_type == KeyType::Windows);
    backend && naming().available(key_type)
}
