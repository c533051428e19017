//! Unix: the verbs that look at what exists, built on `qshm::inspect` (one module each
//! under `unix/`), what they share, and a command's exit status.

mod clean;
mod doctor;
mod info;
mod list;
mod mapped;
mod remove;

use qshm::inspect::{self, SegmentInfo};

use crate::json::Obj;

pub(super) use clean::run as clean;
pub(super) use doctor::run as doctor;
pub(super) use info::run as info;
pub(super) use list::run as list;
pub(super) use remove::run as remove;

impl Obj {
    /// A file name as two fields: `key`, a string (lossy: what is not UTF-8 becomes
    /// U+FFFD, as JSON strings must be Unicode), and `<key>_escaped`, the name exactly
    /// ([`qshm::inspect::escape_name`]: `\xHH` for each byte that is not UTF-8, `\\` for
    /// a backslash); both `null` without a file.
    pub(crate) fn file(self, key: &str, path: Option<&std::path::Path>) -> Obj {
        let escaped = format!("{key}_escaped");
        match path {
            Some(p) => self
                .str(key, &p.to_string_lossy())
                .str(&escaped, &qshm::inspect::escape_name(p.as_os_str())),
            None => self.null(key).null(&escaped),
        }
    }
}

/// The exit status for a child's: its code, or 128 + the signal that ended it.
pub(crate) fn exit_status(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + (sig & 0x7f)).unwrap_or(1),
        (None, None) => 1,
    }
}

/// One segment as a JSON object (the schema of `info` and `list`, README).
pub(crate) fn segment_json(verb: &str, s: &SegmentInfo) -> Obj {
    let native = s.native_key.as_ref().map(ToString::to_string);
    let lock = s.lock_key.as_ref().map(ToString::to_string);
    Obj::new(verb)
        .str("backend", s.backend.name())
        .opt_str("native_key", native.as_deref())
        .opt_str("qt_key", s.qt_key.as_deref())
        .opt_str("lock_key", lock.as_deref())
        .opt_num("shmid", s.id)
        .opt_str(
            "sysv_key",
            s.sysv_key.map(|k| format!("{k:#010x}")).as_deref(),
        )
        .file("path", s.path.as_deref())
        .file("key_file", s.key_file.as_deref())
        .num("size", s.size)
        .num("attach_count", s.attach_count)
        .opt_num("creator_pid", s.creator_pid)
        .opt_bool("creator_alive", s.creator_alive)
        .opt_num("last_pid", s.last_pid)
        .num("uid", s.uid)
        .num("gid", s.gid)
        .str("mode", &format!("{:04o}", s.mode))
        .str("lock_state", s.lock_state.name())
        .opt_num("lock_pid", s.lock_state.pid())
        .bool("orphaned", s.orphaned)
}

/// How a segment is named in text output: its native key text; for one whose names are not
/// UTF-8 (no native key), its file, escaped ([`inspect::escape_name`]); else that its key
/// file is gone.
pub(crate) fn segment_name(s: &SegmentInfo) -> String {
    printable(&segment_name_raw(s))
}

fn segment_name_raw(s: &SegmentInfo) -> String {
    match (&s.native_key, s.path.as_ref().or(s.key_file.as_ref())) {
        (Some(key), _) => key.to_string(),
        (None, Some(file)) => format!(
            "{} (name not UTF-8)",
            inspect::escape_name(file.as_os_str())
        ),
        (None, None) => "(key file gone)".to_owned(),
    }
}

/// `s` for a terminal: control characters (C0, DEL, C1) and the line and paragraph
/// separators as `\xHH` / `\u{HHHH}`, so that a name cannot break a line of the table or
/// send escape sequences to the terminal.
pub(crate) fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match u32::from(c) {
            n @ (0..=0x1f | 0x7f) => out.push_str(&format!("\\x{n:02x}")),
            n @ (0x80..=0x9f | 0x2028 | 0x2029) => out.push_str(&format!("\\u{{{n:04x}}}")),
            _ => out.push(c),
        }
    }
    out
}

/// A pid with whether it runs, for text output.
pub(crate) fn pid_text(pid: Option<u32>, alive: Option<bool>) -> String {
    match (pid, alive) {
        (Some(p), Some(true)) => format!("{p} (running)"),
        (Some(p), Some(false)) => format!("{p} (gone)"),
        (Some(p), None) => p.to_string(),
        (None, _) => "-".to_owned(),
    }
}

/// Whether segments have permission bits (`create --mode`).
pub(super) const PERMISSIONS: bool = true;
