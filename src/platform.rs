//! What this target offers, as key derivation and backend choice need it: the facts the
//! build script's gates (`build.rs`) imply. Constants and pure functions, no system call.

use crate::key::{KeyType, NamingRules};

/// The naming rules of this platform's keys.
pub(crate) const NAMING: NamingRules = NamingRules {
    apple_posix: cfg!(qshm_apple),
    windows: cfg!(qshm_windows),
};

/// Qt 6's type for a `QNativeIpcKey` made without one.
pub(crate) const DEFAULT_KEY_TYPE: KeyType = if cfg!(qshm_windows) {
    KeyType::Windows
} else {
    KeyType::PosixRealtime
};

/// Qt's type for Qt keys (`QSharedMemory::setKey`).
pub(crate) const LEGACY_DEFAULT_KEY_TYPE: KeyType = if cfg!(qshm_windows) {
    KeyType::Windows
} else {
    KeyType::SystemV
};

/// Which key types have a backend here.
pub(crate) fn is_key_type_supported(key_type: KeyType) -> bool {
    (cfg!(qshm_linux) && (key_type.is_system_v() || key_type == KeyType::PosixRealtime))
        || (cfg!(qshm_windows) && key_type == KeyType::Windows)
}
