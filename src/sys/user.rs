//! Who this process is: the one source of its user id, and the user's name.

/// The effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The login name of `uid` (`getpwuid_r`), or the number when it has none.
pub(crate) fn user_name(uid: libc::uid_t) -> String {
    let mut buf = vec![0 as libc::c_char; 1024];
    // SAFETY: an all-zero passwd is a valid value of a plain C struct of integers and
    // pointers; getpwuid_r overwrites it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the duration of the call and `buf.len()` is the
    // size of the buffer behind `buf`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`, which
        // outlives this borrow.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    uid.to_string()
}
