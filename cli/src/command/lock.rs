//! `qshm lock KEY`: hold a segment's lock for a time, until interrupted, or while a command
//! runs (whose exit status becomes ours).

use std::io;
use std::process::{Command, ExitCode};
use std::time::Duration;

use qshm::{AccessMode, SharedMemory};

use super::platform::exit_status;
use super::{attach, detach, lock, lock_wait, seconds, Ctx, Outcome};
use crate::cli::LockCmd;
use crate::json::Obj;
use crate::{signals, Failure};

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &LockCmd) -> Outcome {
    let name = cmd.key.as_str();
    let key = ctx.key(name)?;
    let mut shm = SharedMemory::with_native_key(key);
    // Read-only is enough to take the lock, and works where the segment's mode gives only
    // read permission.
    let waited = attach(ctx, name, &mut shm, AccessMode::ReadOnly, &cmd.wait)?;
    // Waiting for the lock with signals at their defaults keeps Ctrl-C working while it is
    // held by someone else; once it is ours, they are blocked and waited for, so that we
    // unlock and detach before exiting.
    let guard = lock(ctx, name, &shm, &cmd.wait, waited)?;
    let blocked =
        signals::block().map_err(|e| ctx.op(name, format_args!("cannot block signals: {e}")))?;
    ctx.emit(
        || format!("locked {name} (pid {})", std::process::id()),
        || {
            Obj::new("lock")
                .str("status", "locked")
                .str("key", name)
                .str("native_key", &shm.native_key().to_string())
                .num("pid", std::process::id())
        },
    );
    let status = if cmd.command.is_empty() {
        blocked.wait(seconds(cmd.for_secs));
        0
    } else {
        run_command(ctx, name, &cmd.command, &blocked)?
    };
    guard.unlock().map_err(|e| ctx.lib(name, &e))?;
    detach(ctx, name, &mut shm, lock_wait(&cmd.wait))?;
    Ok(ExitCode::from(status))
}

/// Runs the command to its end, forwarding SIGINT, SIGTERM and SIGHUP to it. Returns its
/// exit status (128 + signal when a signal ended it).
fn run_command(
    ctx: &Ctx<'_>,
    name: &str,
    argv: &[String],
    blocked: &signals::Blocked,
) -> Result<u8, Failure> {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    let mut child = signals::unblocked_in_child(&mut command)
        .spawn()
        .map_err(|e| {
            let status = if e.kind() == io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            ctx.op(name, format_args!("cannot run `{}`: {e}", argv[0]))
                .with_status(status)
        })?;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(exit_status(status)),
            Ok(None) => {}
            Err(e) => return Err(ctx.op(name, format_args!("cannot wait for the command: {e}"))),
        }
        if let Some(sig) = blocked.wait(Some(Duration::from_millis(20))) {
            signals::forward(child.id(), sig);
        }
    }
}
