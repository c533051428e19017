//! `qshm info KEY`: one segment, without attaching to it.

use std::process::ExitCode;

use qshm::inspect::{self, SegmentInfo};

use super::{pid_text, printable, segment_json};
use crate::cli::InfoCmd;
use crate::command::{Ctx, Outcome};

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &InfoCmd) -> Outcome {
    if cmd.mapped {
        let path = std::path::Path::new(&cmd.key);
        if !path.exists() {
            return Err(ctx.op(&cmd.key, "no such file"));
        }
        let m = super::mapped::read_path(path).ok_or_else(|| {
            ctx.op(
                &cmd.key,
                "not a qshm mapped segment (no qshm header of version 2 or 3), or not readable",
            )
        })?;
        ctx.emit(|| m.text(), || m.json("info"));
        return Ok(ExitCode::SUCCESS);
    }
    let key = ctx.key(&cmd.key)?;
    let info = inspect::info(&key).map_err(|e| ctx.lib(&cmd.key, &e))?;
    ctx.emit(|| text(&info), || segment_json("info", &info));
    Ok(ExitCode::SUCCESS)
}

/// The `info` text: one field a line.
pub(crate) fn text(s: &SegmentInfo) -> String {
    let unknown = if s.path.is_some() || s.key_file.is_some() {
        "(none: the name is not UTF-8)".to_owned()
    } else {
        "(unknown: key file gone)".to_owned()
    };
    let mut lines = vec![
        ("backend", {
            let mut b = s.backend.name().to_owned();
            if let (Some(id), Some(k)) = (s.id, s.sysv_key) {
                b.push_str(&format!(" (shmid {id}, key {k:#010x})"));
            }
            b
        }),
        (
            "native key",
            s.native_key
                .as_ref()
                .map_or(unknown.clone(), ToString::to_string),
        ),
        (
            "qt key",
            s.qt_key.clone().unwrap_or_else(|| "(unknown)".to_owned()),
        ),
        (
            "lock key",
            s.lock_key.as_ref().map_or(unknown, ToString::to_string),
        ),
    ];
    if let Some(p) = &s.path {
        lines.push(("file", inspect::escape_name(p.as_os_str())));
    }
    if let Some(p) = &s.key_file {
        lines.push(("key file", inspect::escape_name(p.as_os_str())));
    }
    lines.extend([
        ("size", format!("{} bytes", s.size)),
        ("attached", format!("{} process(es)", s.attach_count)),
        ("creator pid", pid_text(s.creator_pid, s.creator_alive)),
        ("last pid", pid_text(s.last_pid, None)),
        (
            "owner",
            format!("uid {}, gid {}, mode {:04o}", s.uid, s.gid, s.mode),
        ),
        ("lock", s.lock_state.to_string()),
        ("orphaned", if s.orphaned { "yes" } else { "no" }.to_owned()),
    ]);
    lines
        .iter()
        .map(|(k, v)| format!("{k:<12} {}", printable(v)))
        .collect::<Vec<_>>()
        .join("\n")
}
