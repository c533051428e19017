//! What Apple platforms answer about the application, as Qt asks it: whether it is sandboxed
//! (`qt_apple_isSandboxed`) and the per-user temporary directory (`NSTemporaryDirectory`).
//! The rules that use the answers are pure functions in `key/apple.rs`.

use std::sync::OnceLock;

/// Whether this application is sandboxed, asked once per process: on macOS, whether the
/// executable's code signature has the `com.apple.security.app-sandbox` entitlement; on the
/// other Apple platforms, always (as Qt decides).
pub(crate) fn apple_sandboxed() -> bool {
    static SANDBOXED: OnceLock<bool> = OnceLock::new();
    *SANDBOXED.get_or_init(|| {
        let os = if cfg!(qshm_macos) {
            crate::key::AppleOs::MacOs
        } else {
            crate::key::AppleOs::Other
        };
        crate::key::apple_is_sandboxed(os, has_sandbox_entitlement)
    })
}

/// `confstr(_CS_DARWIN_USER_TEMP_DIR)`: the per-user `/var/folders/…/T/`, which
/// `NSTemporaryDirectory` returns when `$TMPDIR` is unset.
pub(crate) fn darwin_user_temp_dir() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 1024];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; confstr writes at most that
    // many, NUL-terminated, and returns the length it needs (0 on error).
    let needed =
        unsafe { libc::confstr(libc::_CS_DARWIN_USER_TEMP_DIR, buf.as_mut_ptr(), buf.len()) };
    if needed == 0 || needed > buf.len() {
        return None;
    }
    // SAFETY: confstr succeeded within the buffer, so it holds a NUL-terminated string.
    let dir = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(dir.to_string_lossy().into_owned())
}

/// Qt's check on macOS: `SecStaticCodeCreateWithPath` of the executable,
/// `SecRequirementCreateWithString("entitlement[\"com.apple.security.app-sandbox\"] exists")`
/// and `SecStaticCodeCheckValidityWithErrors(…, kSecCSBasicValidateOnly, …)`; any failure
/// means "not sandboxed".
#[cfg(qshm_macos)]
fn has_sandbox_entitlement() -> bool {
    use std::ffi::c_void;
    use std::os::unix::ffi::OsStrExt;

    type CFTypeRef = *const c_void;
    const K_CF_STRING_ENCODING_UTF8: u32 = 0x0800_0100;
    const K_SEC_CS_DEFAULT_FLAGS: u32 = 0;
    // kSecCSDoNotValidateExecutable | kSecCSDoNotValidateResources.
    const K_SEC_CS_BASIC_VALIDATE_ONLY: u32 = (1 << 1) | (1 << 2);
    const ERR_SEC_SUCCESS: i32 = 0;

    #[link(name = "CoreFoundation", kind = "framework")]
    extern "C" {
        fn CFRelease(cf: CFTypeRef);
        fn CFURLCreateFromFileSystemRepresentation(
            allocator: CFTypeRef,
            buffer: *const u8,
            len: isize,
            is_directory: u8,
        ) -> CFTypeRef;
        fn CFStringCreateWithCString(
            allocator: CFTypeRef,
            c_str: *const libc::c_char,
            encoding: u32,
        ) -> CFTypeRef;
    }
    #[link(name = "Security", kind = "framework")]
    extern "C" {
        fn SecStaticCodeCreateWithPath(path: CFTypeRef, flags: u32, code: *mut CFTypeRef) -> i32;
        fn SecRequirementCreateWithString(text: CFTypeRef, flags: u32, req: *mut CFTypeRef) -> i32;
        fn SecStaticCodeCheckValidityWithErrors(
            code: CFTypeRef,
            flags: u32,
            requirement: CFTypeRef,
            errors: *mut CFTypeRef,
        ) -> i32;
    }

    /// Releases a Core Foundation object it owns (a null one is never made).
    struct Owned(CFTypeRef);
    impl Drop for Owned {
        fn drop(&mut self) {
            // SAFETY: `self.0` is a non-null object this value owns one reference to.
            unsafe { CFRelease(self.0) }
        }
    }
    let owned = |cf: CFTypeRef| (!cf.is_null()).then_some(Owned(cf));

    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let bytes = exe.as_os_str().as_bytes();
    let Ok(len) = isize::try_from(bytes.len()) else {
        return false;
    };
    // SAFETY: `bytes` is valid for `len` bytes; a null allocator is the default one.
    let url = unsafe {
        CFURLCreateFromFileSystemRepresentation(std::ptr::null(), bytes.as_ptr(), len, 0)
    };
    let Some(url) = owned(url) else { return false };
    let text = c"entitlement[\"com.apple.security.app-sandbox\"] exists";
    // SAFETY: `text` is NUL-terminated UTF-8; a null allocator is the default one.
    let text = unsafe {
        CFStringCreateWithCString(std::ptr::null(), text.as_ptr(), K_CF_STRING_ENCODING_UTF8)
    };
    let Some(text) = owned(text) else {
        return false;
    };
    let mut code: CFTypeRef = std::ptr::null();
    // SAFETY: `url.0` is a live CFURL; `code` is a valid out-pointer.
    if unsafe { SecStaticCodeCreateWithPath(url.0, K_SEC_CS_DEFAULT_FLAGS, &mut code) }
        != ERR_SEC_SUCCESS
    {
        return false;
    }
    let Some(code) = owned(code) else {
        return false;
    };
    let mut requirement: CFTypeRef = std::ptr::null();
    // SAFETY: `text.0` is a live CFString; `requirement` is a valid out-pointer.
    if unsafe { SecRequirementCreateWithString(text.0, K_SEC_CS_DEFAULT_FLAGS, &mut requirement) }
        != ERR_SEC_SUCCESS
    {
        return false;
    }
    let Some(requirement) = owned(requirement) else {
        return false;
    };
    // SAFETY: both objects are live; a null error pointer asks for no error object.
    let status = unsafe {
        SecStaticCodeCheckValidityWithErrors(
            code.0,
            K_SEC_CS_BASIC_VALIDATE_ONLY,
            requirement.0,
            std::ptr::null_mut(),
        )
    };
    status == ERR_SEC_SUCCESS
}

/// Asked on macOS only.
#[cfg(not(qshm_macos))]
fn has_sandbox_entitlement() -> bool {
    true
}
