//! Qt's runtime directory (`QStandardPaths::RuntimeLocation`), where the key files of
//! non-legacy System V keys live: part of Qt's key derivation.

/// `$XDG_RUNTIME_DIR` when it is absolute, a directory owned by this user and mode 0700, as
/// Qt requires of it (and as qshm's mapped segments require of their default directory).
#[cfg(any(qshm_linux, qshm_unix_other))]
pub(crate) fn private_runtime_dir() -> Option<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dir = std::path::PathBuf::from(std::env::var_os("XDG_RUNTIME_DIR")?);
    let meta = std::fs::metadata(&dir).ok()?;
    let private = meta.is_dir() && meta.uid() == crate::sys::euid() && meta.mode() & 0o777 == 0o700;
    (dir.is_absolute() && private).then_some(dir)
}

/// The runtime directory: [`private_runtime_dir`], else Qt's fallback
/// `TEMP/runtime-<user>`.
#[cfg(any(qshm_linux, qshm_unix_other))]
pub(crate) fn runtime_dir() -> String {
    match private_runtime_dir() {
        Some(dir) => super::clean_path(&dir.to_string_lossy()),
        None => format!(
            "{}/runtime-{}",
            super::temp_dir(Default::default()),
            crate::sys::user_name(crate::sys::euid())
        ),
    }
}

/// Elsewhere Qt uses the temporary directory.
#[cfg(not(any(qshm_linux, qshm_unix_other)))]
pub(crate) fn runtime_dir() -> String {
    std::env::temp_dir().to_string_lossy().into_owned()
}
