//! Windows: what the verbs that look at what exists can do there, and a command's exit
//! status.
//!
//! Windows destroys a named section, and a semaphore, with its last handle. Nothing is ever
//! left behind to clean, and nothing can be removed while a process has it open. Nor does
//! Windows offer programs a supported way to list the named objects of a session, so `list`
//! cannot see sections whose names it does not know; `info` attaches to the one it names.

use std::process::{ExitCode, ExitStatus};

use qshm::{AccessMode, SharedMemory};

use super::{type_name, Ctx, Outcome};
use crate::cli::{CleanCmd, InfoCmd, ListCmd, RemoveCmd};
use crate::json::Obj;

/// Whether segments have permission bits (`create --mode`): not on Windows, where a section
/// gets its creator's default security.
pub(super) const PERMISSIONS: bool = false;

/// The exit status of a verb that cannot work on this platform.
const UNSUPPORTED: u8 = 3;

/// Why `list` cannot work, and what can.
const NO_LIST: &str = "Windows offers programs no supported way to list named sections, \
                       Qt's or qshm's; `qshm info KEY` shows one whose key you know";

/// Why `remove` cannot work, and why it is not needed.
const NO_REMOVE: &str = "Windows destroys a segment and its lock with their last handle: \
                         no program can remove one that a process has open, and nothing \
                         is left behind when the last one closes";

/// `qshm info KEY`: attaches read-only (which takes the lock for an instant, as Qt's attach
/// does) and prints what Windows tells: the keys and the section's size.
pub(super) fn info(ctx: &Ctx<'_>, cmd: &InfoCmd) -> Outcome {
    let name = cmd.key.as_str();
    if cmd.mapped {
        return Err(ctx
            .op(name, "mapped segments (qshm::mapped) are Linux's")
            .with_status(UNSUPPORTED));
    }
    let key = ctx.key(name)?;
    let mut shm = SharedMemory::with_native_key(key);
    shm.attach(AccessMode::ReadOnly)
        .map_err(|e| ctx.lib(name, &e))?;
    let size = shm.size() as u64;
    shm.detach().map_err(|e| ctx.lib(name, &e))?;
    let key = shm.native_key();
    let lock = key.lock_key();
    ctx.emit(
        || {
            [
                ("backend", type_name(key.key_type()).to_owned()),
                ("native key", key.to_string()),
                (
                    "qt key",
                    key.legacy_key()
                        .unwrap_or("(none: a native key)")
                        .to_owned(),
                ),
                ("lock key", lock.to_string()),
                ("size", format!("{size} bytes")),
                (
                    "not known",
                    "attachments, pids, owner, lock state: Windows does not tell".to_owned(),
                ),
            ]
            .iter()
            .map(|(k, v)| format!("{k:<12} {v}"))
            .collect::<Vec<_>>()
            .join("\n")
        },
        || {
            Obj::new("info")
                .str("backend", type_name(key.key_type()))
                .str("native_key", &key.to_string())
                .opt_str("qt_key", key.legacy_key())
                .str("lock_key", &lock.to_string())
                .num("size", size)
        },
    );
    Ok(ExitCode::SUCCESS)
}

/// `qshm list`: says that Windows cannot; status 3.
pub(super) fn list(ctx: &Ctx<'_>, _cmd: &ListCmd) -> Outcome {
    Err(ctx.op("", NO_LIST).with_status(UNSUPPORTED))
}

/// `qshm remove`: says that Windows cannot, and that it is never needed; status 3.
pub(super) fn remove(ctx: &Ctx<'_>, cmd: &RemoveCmd) -> Outcome {
    let label = match (&cmd.key, cmd.id) {
        (Some(key), _) => key.clone(),
        (None, Some(id)) => format!("--id {id}"),
        (None, None) => String::new(),
    };
    Err(ctx.op(&label, NO_REMOVE).with_status(UNSUPPORTED))
}

/// `qshm clean`: nothing to do, ever; says why, and succeeds (no JSON object: no leftover).
pub(super) fn clean(ctx: &Ctx<'_>, _cmd: &CleanCmd) -> Outcome {
    if !ctx.json() {
        println!(
            "nothing to clean: Windows destroys a segment and its lock with their last handle, \
             so a crash leaves nothing behind"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The exit status for a command's: its code when it fits (0–255); 130 for Ctrl-C's
/// `STATUS_CONTROL_C_EXIT`, as for SIGINT on Unix; 255 for any other code (an NTSTATUS: a
/// crash), which a status byte cannot hold.
pub(super) fn exit_status(status: ExitStatus) -> u8 {
    const STATUS_CONTROL_C_EXIT: i32 = 0xC000_013A_u32 as i32;
    match status.code() {
        Some(code) if (0..=255).contains(&code) => code as u8,
        Some(STATUS_CONTROL_C_EXIT) => 130,
        _ => 255,
    }
}

/// `qshm doctor`: its checks are of Linux's limits (/dev/shm, System V, namespaces).
pub(super) fn doctor(ctx: &Ctx<'_>) -> Outcome {
    Err(ctx
        .op(
            "",
            "not available on Windows: its checks are of /dev/shm, System V limits and \
             namespaces; a Windows section is limited only by the paging file",
        )
        .with_status(UNSUPPORTED))
}
