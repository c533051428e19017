//! `qshm create KEY SIZE`: create, fill, hold until interrupted or `--for`, then detach (the
//! segment goes with the last detach, as with Qt on Unix).

use std::process::ExitCode;

use qshm::{AccessMode, SharedMemory};

use super::{platform, read_input, seconds, Ctx, Outcome};
use crate::cli::CreateCmd;
use crate::json::Obj;
use crate::signals;

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &CreateCmd) -> Outcome {
    let name = cmd.key.as_str();
    let key = ctx.key(name)?;
    let data = match &cmd.input {
        Some(path) => read_input(ctx, name, Some(path), cmd.size)?,
        None => Vec::new(),
    };
    let size = usize::try_from(cmd.size).map_err(|_| {
        ctx.op(
            name,
            format_args!("{} bytes is more than this system can address", cmd.size),
        )
    })?;
    if data.len() > size {
        return Err(ctx.op(
            name,
            format_args!(
                "the input ({} bytes) is larger than the segment ({size} bytes); nothing created",
                data.len()
            ),
        ));
    }
    let mut shm = SharedMemory::with_native_key(key);
    shm.set_permissions(cmd.mode);
    shm.create(size, AccessMode::ReadWrite)
        .map_err(|e| ctx.lib(name, &e))?;
    if !data.is_empty() {
        let filled = shm.lock().and_then(|mut guard| {
            guard.as_mut_slice()?[..data.len()].copy_from_slice(&data);
            guard.unlock()
        });
        if let Err(e) = filled {
            return Err(ctx.lib(name, &e)); // dropping `shm` detaches and removes it
        }
    }
    let hold = seconds(cmd.for_secs);
    // Blocked before saying "ready", so that a signal sent as soon as we are ready is
    // waited for, not fatal.
    let blocked =
        signals::block().map_err(|e| ctx.op(name, format_args!("cannot block signals: {e}")))?;
    ctx.emit(
        || {
            let until = match hold {
                Some(d) => format!("for {:.1} s", d.as_secs_f64()),
                None => "until interrupted (Ctrl-C)".to_owned(),
            };
            let mode = if platform::PERMISSIONS {
                format!(", mode {:04o}", cmd.mode)
            } else {
                String::new()
            };
            format!(
                "created {name}: {}, {} bytes{mode}, pid {}; holding it {until}",
                shm.native_key(),
                shm.size(),
                std::process::id()
            )
        },
        || {
            Obj::new("create")
                .str("status", "ready")
                .str("key", name)
                .str("native_key", &shm.native_key().to_string())
                .num("size", shm.size() as u64)
                .opt_str(
                    "mode",
                    platform::PERMISSIONS
                        .then(|| format!("{:04o}", cmd.mode))
                        .as_deref(),
                )
                .num("pid", std::process::id())
                .num("bytes_written", data.len() as u64)
        },
    );
    blocked.wait(hold);
    shm.detach().map_err(|e| ctx.lib(name, &e))?;
    Ok(ExitCode::SUCCESS)
}
