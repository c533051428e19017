//! `qshm write KEY`: attach read-write, lock, copy in. Data that does not fit is refused
//! before anything is written.

use std::process::ExitCode;

use qshm::{AccessMode, SharedMemory};

use super::{attach, detach, lock, lock_wait, read_input, Ctx, Outcome};
use crate::cli::WriteCmd;
use crate::json::Obj;

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &WriteCmd) -> Outcome {
    let name = cmd.key.as_str();
    let key = ctx.key(name)?;
    let mut shm = SharedMemory::with_native_key(key);
    let waited = attach(ctx, name, &mut shm, AccessMode::ReadWrite, &cmd.wait)?;
    // A peer that shrank the segment: refused under the lock, not SIGBUS.
    shm.set_check_size_on_lock(true);
    let size = shm.size() as u64;
    let offset = cmd.offset;
    if offset > size {
        return Err(ctx.op(
            name,
            format_args!(
                "offset {offset} is past the end of the segment ({size} bytes); nothing written"
            ),
        ));
    }
    let data = read_input(ctx, name, cmd.input.as_deref(), size - offset)?;
    let fits = offset
        .checked_add(data.len() as u64)
        .is_some_and(|end| end <= size);
    if !fits {
        return Err(ctx.op(
            name,
            format_args!(
                "{} bytes at offset {offset} do not fit in the segment ({size} bytes); nothing written",
                data.len()
            ),
        ));
    }
    {
        let mut guard = lock(ctx, name, &shm, &cmd.wait, waited)?;
        let bytes = guard.as_mut_slice().map_err(|e| ctx.lib(name, &e))?;
        let start = offset as usize;
        bytes[start..start + data.len()].copy_from_slice(&data);
        guard.unlock().map_err(|e| ctx.lib(name, &e))?;
    }
    detach(ctx, name, &mut shm, lock_wait(&cmd.wait))?;
    ctx.emit(
        || format!("wrote {} bytes at offset {offset} of {name}", data.len()),
        || {
            Obj::new("write")
                .str("key", name)
                .num("offset", offset)
                .num("length", data.len() as u64)
                .num("size", size)
        },
    );
    Ok(ExitCode::SUCCESS)
}
