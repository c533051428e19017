//! Keys: Qt's `QNativeIpcKey` and the derivation of native names from Qt keys.
//!
//! The mapping from a Qt key (`"hello"`) to the names the operating system sees
//! (`/tmp/qipc_sharedmemory_helloaaf4…`) is a compatibility protocol shared with every Qt
//! program and every other version of this crate. Changing it is a breaking change.
//!
//! # Platform-specific behavior
//!
//! ### Unix (System V keys)
//!
//! A legacy key `k` becomes `TEMP/qipc_sharedmemory_<letters><sha1>` for a segment and
//! `TEMP/qipc_systemsem_<letters><sha1>` for a semaphore, where `<letters>` are the ASCII
//! letters of `k` in order, `<sha1>` is the lower-case hexadecimal SHA-1 of the UTF-8 bytes of
//! `k`, and `TEMP` is `$TMPDIR` cleaned as `QDir::cleanPath` does (made absolute against the
//! current directory; `/tmp` when unset or empty). That file's `ftok(path, id)` is the System V
//! key, with `id` = `'Q'` (0x51) or the project id of a [`KeyType::SystemVProject`] key.
//!
//! Qt 5.15 to 6.8 additionally resolved symbolic links in `$TMPDIR` and used an empty
//! directory when `$TMPDIR` did not exist; Qt 6.9 and later do not. The default here is the
//! Qt 6.9+ rule; [`TempDirStyle::Canonical`] gives the older one.
//!
//! ### Unix (POSIX realtime keys)
//!
//! A legacy key becomes `/qipc_sharedmemory_<letters><sha1>` (segment) and
//! `/qipc_systemsem_<letters><sha1>` (semaphore). On Apple platforms both become
//! `/<first 29 hex digits of the sha1>`, the same name for both.

mod apple;
mod runtime;
mod text;

pub(crate) use apple::legacy_default_type as apple_legacy_default_type;
#[cfg(qshm_apple)]
pub(crate) use apple::{is_sandboxed as apple_is_sandboxed, AppleOs};
#[cfg(any(qshm_linux, qshm_unix_other))]
pub(crate) use runtime::private_runtime_dir;
#[cfg(any(qshm_linux, qshm_unix_other))]
pub(crate) use runtime::runtime_dir;

use std::fmt;
use std::num::NonZeroU8;
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Operation};
use crate::platform;

/// The kind of native key, and so the operating system API a segment or semaphore uses.
///
/// This is Qt's `QNativeIpcKey::Type`. Two processes meet only when they use the same
/// type and the same native key.
///
/// # Examples
///
/// ```
/// use qshm::KeyType;
/// assert_eq!(KeyType::SystemV.ftok_project_id(), Some(b'Q'));
/// assert_eq!(KeyType::from_raw(0x51), Some(KeyType::SystemV));
/// assert_eq!(KeyType::from_raw(0x52).unwrap().ftok_project_id(), Some(0x52));
/// assert_eq!(KeyType::from_raw(0), None);
/// ```
#[derive(Clone, Copy, Debug, Eq)]
pub enum KeyType {
    /// System V IPC with the ftok project id `'Q'` (0x51), Qt's default on Linux for Qt keys.
    SystemV,
    /// System V IPC with another ftok project id (1–255). A value of 0x51 is the same as
    /// [`KeyType::SystemV`]: they compare equal and print the same.
    SystemVProject(NonZeroU8),
    /// POSIX realtime IPC (`shm_open`, `sem_open`), the default type of `QNativeIpcKey` in Qt 6.
    PosixRealtime,
    /// Windows named file mappings and semaphores.
    Windows,
}

impl KeyType {
    /// Qt's numeric value of the type: 1–255 for System V (the ftok project id), 0x100 for
    /// POSIX realtime, 0x101 for Windows.
    pub fn to_raw(self) -> u16 {
        match self {
            KeyType::SystemV => 0x51,
            KeyType::SystemVProject(id) => u16::from(id.get()),
            KeyType::PosixRealtime => 0x100,
            KeyType::Windows => 0x101,
        }
    }

    /// The type with Qt's numeric value `raw`, or `None` when no type has that value
    /// (0 is Qt's invalid type).
    pub fn from_raw(raw: u16) -> Option<KeyType> {
        match raw {
            0x51 => Some(KeyType::SystemV),
            1..=0xff => NonZeroU8::new(raw as u8).map(KeyType::SystemVProject),
            0x100 => Some(KeyType::PosixRealtime),
            0x101 => Some(KeyType::Windows),
            _ => None,
        }
    }

    /// The ftok project id of a System V type, `None` for the others.
    pub fn ftok_project_id(self) -> Option<u8> {
        match self.to_raw() {
            raw @ 1..=0xff => Some(raw as u8),
            _ => None,
        }
    }

    /// True for [`KeyType::SystemV`] and every [`KeyType::SystemVProject`].
    pub fn is_system_v(self) -> bool {
        self.ftok_project_id().is_some()
    }

    /// The type Qt 6 uses for a `QNativeIpcKey` made without a type: POSIX realtime on Unix,
    /// Windows on Windows.
    pub fn default_for_os() -> KeyType {
        platform::DEFAULT_KEY_TYPE
    }

    /// The type Qt uses for Qt keys (`QSharedMemory::setKey`, the `QString` constructor):
    /// System V on Linux (as the official Qt builds are configured), Windows on Windows; on
    /// Apple platforms System V unless the application is sandboxed, POSIX realtime when it
    /// is (Qt's `legacyDefaultTypeForOs`, decided at run time).
    pub fn legacy_default_for_os() -> KeyType {
        platform::legacy_default_key_type()
    }

    /// Whether this build of qshm can create and attach segments of this type on this
    /// platform (Qt's `QSharedMemory::isKeyTypeSupported`).
    pub fn is_supported(self) -> bool {
        platform::is_key_type_supported(self)
    }
}

impl PartialEq for KeyType {
    fn eq(&self, other: &KeyType) -> bool {
        self.to_raw() == other.to_raw()
    }
}

impl std::hash::Hash for KeyType {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.to_raw().hash(state);
    }
}

/// How `$TMPDIR` becomes the directory of legacy System V key files.
///
/// Qt changed this in 6.9. Processes that derive different directories never meet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TempDirStyle {
    /// Qt 6.9 and later: `$TMPDIR` cleaned (`//`, `.` and `..` resolved, trailing `/`
    /// removed) and made absolute against the current directory, without resolving symbolic
    /// links; `/tmp` when unset or empty.
    #[default]
    Current,
    /// Qt 5.15 to 6.8: as [`TempDirStyle::Current`], then symbolic links resolved
    /// (`realpath`); a directory that does not exist gives the empty string, so key files go
    /// to `/`.
    Canonical,
}

/// A native key: Qt's `QNativeIpcKey`.
///
/// It names a segment or semaphore the way the operating system sees it, together with the
/// [`KeyType`] that picks the API and, for keys derived from a Qt key, that Qt key (the
/// *legacy key*), which decides the name of a segment's lock semaphore.
///
/// Its text form is Qt's (`QNativeIpcKey::toString`), so a key can be handed to a Qt program
/// on a command line and back.
///
/// # Examples
///
/// ```
/// use qshm::{KeyType, NativeKey};
///
/// let k: NativeKey = "posix:/my-app".parse()?;
/// assert_eq!(k.key_type(), KeyType::PosixRealtime);
/// assert_eq!(k.native_key(), "/my-app");
/// assert_eq!(k.to_string(), "posix:/my-app");
///
/// let legacy = NativeKey::legacy("hello", KeyType::PosixRealtime);
/// assert_eq!(legacy.native_key(), "/qipc_sharedmemory_helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d");
/// assert_eq!(legacy.legacy_key(), Some("hello"));
/// # Ok::<(), qshm::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NativeKey {
    key_type: KeyType,
    native: String,
    legacy: Option<String>,
}

impl NativeKey {
    /// A native key used verbatim, with no legacy key (Qt's `QNativeIpcKey(key, type)`).
    ///
    /// ```
    /// use qshm::{KeyType, NativeKey};
    /// let k = NativeKey::new("/tmp/my-ftok-file", KeyType::SystemV);
    /// assert_eq!(k.to_string(), "systemv:/tmp/my-ftok-file");
    /// ```
    pub fn new(native: impl Into<String>, key_type: KeyType) -> NativeKey {
        NativeKey {
            key_type,
            native: native.into(),
            legacy: None,
        }
    }

    /// The native key Qt derives for the Qt key `key` of a shared memory segment
    /// (`QSharedMemory::legacyNativeKey`), the one `SharedMemory::with_key` uses.
    ///
    /// An empty `key` gives an empty native key, which `create` and `attach` refuse.
    pub fn legacy(key: &str, key_type: KeyType) -> NativeKey {
        NativeKey::legacy_with_style(key, key_type, TempDirStyle::Current)
    }

    /// As [`NativeKey::legacy`], with the `$TMPDIR` rule of a given Qt version.
    pub fn legacy_with_style(key: &str, key_type: KeyType, style: TempDirStyle) -> NativeKey {
        NativeKey::legacy_for(IpcKind::SharedMemory, key, key_type, style)
    }

    pub(crate) fn legacy_for(
        kind: IpcKind,
        key: &str,
        key_type: KeyType,
        style: TempDirStyle,
    ) -> NativeKey {
        NativeKey {
            key_type,
            native: legacy_native_name(kind, key, key_type, style, &platform::naming()),
            legacy: if key.is_empty() {
                None
            } else {
                Some(key.to_owned())
            },
        }
    }

    /// The native key Qt 6.6+ derives for a portable name (`QSharedMemory::platformSafeKey`).
    ///
    /// POSIX realtime: `/` + `key`. System V: `key` when it starts with `/`, else
    /// `$XDG_RUNTIME_DIR/key` (or Qt's fallback `$TMPDIR/runtime-$USER`). Windows (on
    /// Windows): `shm_` + `key`, after a leading `Local\` or `Global\`, cut to 260 UTF-16
    /// units. The result has no legacy key, so a segment's lock semaphore uses the same
    /// native key (on Windows, that key with `_sem` appended: [`NativeKey::lock_key`]).
    ///
    /// ```
    /// use qshm::{KeyType, NativeKey};
    /// let k = NativeKey::platform_safe("hello", KeyType::PosixRealtime);
    /// assert_eq!(k.native_key(), "/hello");
    /// assert_eq!(k.legacy_key(), None);
    /// ```
    pub fn platform_safe(key: &str, key_type: KeyType) -> NativeKey {
        let native = if key.is_empty() || !platform::naming().names(key_type) {
            String::new()
        } else if key_type.is_system_v() {
            if key.starts_with('/') {
                key.to_owned()
            } else {
                format!("{}/{}", runtime::runtime_dir(), key)
            }
        } else if key_type == KeyType::PosixRealtime {
            platform::naming().posix_platform_safe(key)
        } else {
            windows_platform_safe(IpcKind::SharedMemory, key)
        };
        NativeKey {
            key_type,
            native,
            legacy: None,
        }
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The native key: the System V key file path or the POSIX name.
    pub fn native_key(&self) -> &str {
        &self.native
    }

    /// The Qt key this native key was derived from, if any.
    pub fn legacy_key(&self) -> Option<&str> {
        self.legacy.as_deref()
    }

    /// True when the native key is empty; `create` and `attach` refuse such a key.
    pub fn is_empty(&self) -> bool {
        self.native.is_empty()
    }

    /// The native key of the semaphore that locks a segment with this key (Qt 6.6.1+ rule):
    /// for a key derived from a Qt key, the `qipc_systemsem_` name of that Qt key (derived
    /// again with this process's `$TMPDIR`); otherwise this very key, except for a Windows
    /// key on Windows, whose section and semaphore share one namespace: there the name cut
    /// to 255 UTF-16 units, then `_sem` (Qt's `MAX_PATH` rule).
    pub fn lock_key(&self) -> NativeKey {
        match &self.legacy {
            Some(legacy) => NativeKey::legacy_for(
                IpcKind::Semaphore,
                legacy,
                self.key_type,
                TempDirStyle::Current,
            ),
            None if self.key_type == KeyType::Windows
                && platform::naming().windows
                && !self.native.is_empty() =>
            {
                NativeKey::new(windows_lock_name(&self.native), KeyType::Windows)
            }
            None => self.clone(),
        }
    }

    /// The key with its legacy key dropped (what Qt's `setNativeKey` does).
    pub fn without_legacy_key(mut self) -> NativeKey {
        self.legacy = None;
        self
    }
}

impl Default for NativeKey {
    /// An empty key of [`KeyType::default_for_os`] (Qt's `QNativeIpcKey()`).
    fn default() -> NativeKey {
        NativeKey::new(String::new(), KeyType::default_for_os())
    }
}

impl fmt::Debug for NativeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NativeKey({self})")
    }
}

impl fmt::Display for NativeKey {
    /// Qt's `QNativeIpcKey::toString` form: `systemv:/tmp/qipc_…?legacyKey=hello`,
    /// `posix:/name`, `systemv-82:/x`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::format(
            self.key_type,
            &self.native,
            self.legacy.as_deref(),
        ))
    }
}

impl FromStr for NativeKey {
    type Err = Error;

    /// Parses Qt's text form (`QNativeIpcKey::fromString`).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeyError`] for text Qt considers invalid: an unknown scheme, a
    /// `systemv-N` with N outside 1–255, a host or port, or a query item other than
    /// `legacyKey`.
    fn from_str(s: &str) -> Result<NativeKey, Error> {
        match text::parse(s) {
            Some((key_type, native, legacy)) => Ok(NativeKey {
                key_type,
                native,
                legacy,
            }),
            None => Err(
                Error::new(ErrorKind::KeyError, Operation::ParseKey, s).with_detail(
                    "not a valid native key text (expected e.g. `posix:/name` or `systemv:/path`)",
                ),
            ),
        }
    }
}

/// What a legacy name is derived for: the prefix differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpcKind {
    SharedMemory,
    Semaphore,
}

impl IpcKind {
    fn prefix(self) -> &'static str {
        match self {
            IpcKind::SharedMemory => "qipc_sharedmemory_",
            IpcKind::Semaphore => "qipc_systemsem_",
        }
    }
}

/// Platform naming rules that key derivation depends on. Kept as data so that every
/// platform's rules are tested on every platform.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NamingRules {
    /// Apple: POSIX names are `/` + 29 hex digits, and platform-safe names are cut to 29
    /// UTF-16 units; no name has more than 30 bytes (`apple.rs`).
    pub(crate) apple_posix: bool,
    /// Apple, in a sandboxed application: legacy POSIX names are the key itself, which must
    /// be `<application group identifier>/<name>`.
    pub(crate) apple_sandboxed: bool,
    /// Windows: only Windows keys have names; elsewhere only the Unix types do.
    pub(crate) windows: bool,
}

impl NamingRules {
    /// Whether keys of this type have native names on the platform (Qt's
    /// `isIpcSupported`, which decides key derivation; an unsupported type derives "").
    fn names(&self, key_type: KeyType) -> bool {
        self.windows == (key_type == KeyType::Windows)
    }

    fn posix_platform_safe(&self, key: &str) -> String {
        if self.apple_posix {
            apple::platform_safe_posix_name(key)
        } else {
            format!("/{key}")
        }
    }

    /// Checks a POSIX native key against the platform's rules before any system call (on
    /// Apple platforms: at most 30 bytes; in a sandbox, `<group>/<name>`); the reason it
    /// cannot name an object otherwise. Other platforms' backends check their own rules.
    #[cfg_attr(not(qshm_linux), allow(dead_code))] // the POSIX backends call it
    pub(crate) fn check_posix_name(&self, native: &str) -> std::result::Result<(), String> {
        if self.apple_posix {
            apple::check_posix_name(native, self.apple_sandboxed)
        } else {
            Ok(())
        }
    }

    /// Whether a key type can be used at all, whatever the backends (Qt's
    /// `isIpcSupportedAtRuntime`: no System V in an Apple sandbox).
    pub(crate) fn available(&self, key_type: KeyType) -> bool {
        !self.apple_posix || apple::key_type_available(key_type, self.apple_sandboxed)
    }
}

/// Qt's `platformSafeKey` for Windows keys: a leading `Local\` or `Global\` kept, then
/// `shm_` (segments) or `sem_` (semaphores) and the rest, cut to `MAX_PATH` (260) UTF-16
/// units (a surrogate pair that the cut would split is left out whole).
pub(crate) fn windows_platform_safe(kind: IpcKind, key: &str) -> String {
    let (prefix, payload) = ["Local\\", "Global\\"]
        .into_iter()
        .find_map(|p| key.strip_prefix(p).map(|rest| (p, rest)))
        .unwrap_or(("", key));
    let mid = match kind {
        IpcKind::SharedMemory => "shm_",
        IpcKind::Semaphore => "sem_",
    };
    utf16_prefix(&format!("{prefix}{mid}{payload}"), 260).to_owned()
}

/// The longest prefix of `s` of at most `units` UTF-16 code units, whole characters only.
fn utf16_prefix(s: &str, units: usize) -> &str {
    let mut used = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if used + c.len_utf16() > units {
            break;
        }
        used += c.len_utf16();
        end = i + c.len_utf8();
    }
    &s[..end]
}

/// The lock semaphore's name for the Windows native key `native` (Qt's
/// `semaphoreNativeKey`): `native` cut to `MAX_PATH - 5` UTF-16 units, then `_sem`. A cut
/// that would split a surrogate pair keeps the pair's first half out too.
pub(crate) fn windows_lock_name(native: &str) -> String {
    format!("{}_sem", utf16_prefix(native, 260 - 4 - 1))
}

/// The name of the change notifier's companion of the segment `key` (`qshm::notify`): the
/// first 96 bits of the SHA-1 of its type and native name, so any key fits any system's
/// name limits.
/// On Windows it is a section name, `Local\qshm_notify_<hash>` (`Global\` for a key in
/// the global namespace).
#[cfg_attr(not(any(qshm_linux, qshm_windows)), allow(dead_code))]
pub(crate) fn companion_name(key: &NativeKey) -> String {
    let hash = sha1_hex(&format!("{}:{}", key.key_type().to_raw(), key.native_key()));
    if cfg!(windows) {
        let global = key
            .native_key()
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("Global\\"));
        let ns = if global { "Global" } else { "Local" };
        format!("{ns}\\qshm_notify_{}", &hash[..24])
    } else {
        format!("qshm-notify-{}", &hash[..24]) // sys::notify::COMPANION_PREFIX
    }
}

/// The lower-case hexadecimal SHA-1 of the UTF-8 bytes of `key`.
pub(crate) fn sha1_hex(key: &str) -> String {
    // `Digest`'s `Display` is the lower-case hexadecimal form.
    sha1_smol::Sha1::from(key.as_bytes()).digest().to_string()
}

/// Qt's `legacyPlatformSafeKey`.
pub(crate) fn legacy_native_name(
    kind: IpcKind,
    key: &str,
    key_type: KeyType,
    style: TempDirStyle,
    rules: &NamingRules,
) -> String {
    if key.is_empty() || !rules.names(key_type) {
        return String::new();
    }
    if key_type == KeyType::PosixRealtime && rules.apple_posix {
        return apple::legacy_posix_name(key, rules.apple_sandboxed);
    }
    let hex = sha1_hex(key);
    let letters: String = key.chars().filter(char::is_ascii_alphabetic).collect();
    let name = format!("{}{letters}{hex}", kind.prefix());
    match key_type {
        KeyType::PosixRealtime => format!("/{name}"),
        KeyType::Windows => name,
        _ => format!("{}/{name}", temp_dir(style)),
    }
}

/// Qt's temporary directory for key files, by the rule of `style`.
pub(crate) fn temp_dir(style: TempDirStyle) -> String {
    let env = std::env::var_os("TMPDIR").map(|v| v.to_string_lossy().into_owned());
    let tmpdir = if cfg!(qshm_apple) {
        // The per-user `/var/folders/…/T` when `$TMPDIR` is unset.
        apple::temp_dir_source(env, crate::sys::darwin_user_temp_dir)
    } else {
        env.filter(|v| !v.is_empty())
            .unwrap_or_else(|| "/tmp".to_owned())
    };
    let absolute = if tmpdir.starts_with('/') {
        tmpdir
    } else {
        let cwd = std::env::current_dir().map(|p| p.to_string_lossy().into_owned());
        format!("{}/{tmpdir}", cwd.unwrap_or_default())
    };
    let cleaned = clean_path(&absolute);
    match style {
        TempDirStyle::Current => cleaned,
        TempDirStyle::Canonical => std::fs::canonicalize(&cleaned)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// `QDir::cleanPath` for absolute paths: `//` folded, `.` dropped, `..` resolved (never
/// above `/`), no trailing `/` except for the root itself.
pub(crate) fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINUX: NamingRules = NamingRules {
        apple_posix: false,
        apple_sandboxed: false,
        windows: false,
    };
    const APPLE: NamingRules = NamingRules {
        apple_posix: true,
        apple_sandboxed: false,
        windows: false,
    };
    const WINDOWS: NamingRules = NamingRules {
        apple_posix: false,
        apple_sandboxed: false,
        windows: true,
    };

    /// Qt's `semaphoreNativeKey` for Windows native keys: cut to 255 UTF-16 units, `_sem`.
    #[test]
    fn windows_lock_names() {
        assert_eq!(windows_lock_name("shm_hello"), "shm_hello_sem");
        assert_eq!(windows_lock_name("Global\\x"), "Global\\x_sem");
        let long = "a".repeat(300);
        assert_eq!(windows_lock_name(&long), format!("{}_sem", "a".repeat(255)));
        // A pair that would be split at the cut stays out whole.
        let pair = format!("{}\u{1F600}", "b".repeat(254));
        assert_eq!(windows_lock_name(&pair), format!("{}_sem", "b".repeat(254)));
        let bmp = format!("{}é", "b".repeat(254));
        assert_eq!(windows_lock_name(&bmp), format!("{bmp}_sem"));
    }

    /// Qt's `platformSafeKey` for Windows keys.
    #[test]
    fn windows_platform_safe_names() {
        let shm = |k: &str| windows_platform_safe(IpcKind::SharedMemory, k);
        assert_eq!(shm("hello"), "shm_hello");
        assert_eq!(shm("Local\\x"), "Local\\shm_x");
        assert_eq!(shm("Global\\x"), "Global\\shm_x");
        assert_eq!(shm("global\\x"), "shm_global\\x"); // case matters, as in Qt
        assert_eq!(windows_platform_safe(IpcKind::Semaphore, "k"), "sem_k");
        assert_eq!(shm(&"x".repeat(300)), format!("shm_{}", "x".repeat(256)));
    }

    #[test]
    fn sha1_of_hello() {
        assert_eq!(
            sha1_hex("hello"),
            "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
        );
    }

    #[test]
    fn legacy_names_match_qt_table() {
        let rows = [
            ("hello", "helloaaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
            ("my key/ä!", "mykey0eede1c3d5b68f1af7c03a9ff7f3aecfdccb5908"),
            ("A-b_C 9", "AbC65798d6f8f9431ce31dac0d019babbb1426a1892"),
            ("日本", "44da6bbcf285cdb317aa91174217990d1b94d64d"),
            (
                "/abs/path",
                "abspath16a4cd887c98ef63349c48d5f574a425f41314e7",
            ),
        ];
        for (key, tail) in rows {
            let posix = legacy_native_name(
                IpcKind::SharedMemory,
                key,
                KeyType::PosixRealtime,
                TempDirStyle::Current,
                &LINUX,
            );
            assert_eq!(posix, format!("/qipc_sharedmemory_{tail}"));
            let sem = legacy_native_name(
                IpcKind::Semaphore,
                key,
                KeyType::Windows,
                TempDirStyle::Current,
                &WINDOWS,
            );
            assert_eq!(sem, format!("qipc_systemsem_{tail}"));
            // Windows keys have no name on Unix (Qt 6.11 on Linux: "").
            let none = legacy_native_name(
                IpcKind::Semaphore,
                key,
                KeyType::Windows,
                TempDirStyle::Current,
                &LINUX,
            );
            assert_eq!(none, "");
        }
        assert_eq!(
            legacy_native_name(
                IpcKind::SharedMemory,
                "",
                KeyType::SystemV,
                TempDirStyle::Current,
                &LINUX
            ),
            ""
        );
    }

    #[test]
    fn apple_posix_names_are_29_hex_digits() {
        let name = legacy_native_name(
            IpcKind::SharedMemory,
            "hello",
            KeyType::PosixRealtime,
            TempDirStyle::Current,
            &APPLE,
        );
        assert_eq!(name, "/aaf4c61ddcc5e8a2dabede0f3b482");
        let sem = legacy_native_name(
            IpcKind::Semaphore,
            "hello",
            KeyType::PosixRealtime,
            TempDirStyle::Current,
            &APPLE,
        );
        assert_eq!(name, sem);
        assert_eq!(
            APPLE.posix_platform_safe(&"x".repeat(40)),
            format!("/{}", "x".repeat(29))
        );
    }

    #[test]
    fn clean_path_like_qdir() {
        assert_eq!(clean_path("/tmp/x/"), "/tmp/x");
        assert_eq!(clean_path("/tmp//x/./y/../z"), "/tmp/x/z");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(clean_path("/.."), "/");
        assert_eq!(clean_path("//"), "/");
    }

    #[test]
    fn key_type_raw_round_trip() {
        for raw in 0..=0x102u16 {
            if let Some(t) = KeyType::from_raw(raw) {
                assert_eq!(t.to_raw(), raw);
            } else {
                assert!(raw == 0 || raw > 0x101);
            }
        }
        assert_eq!(
            KeyType::SystemVProject(NonZeroU8::new(0x51).unwrap()),
            KeyType::SystemV
        );
    }
}
