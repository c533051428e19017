//! `qshm read KEY`: attach read-only, lock, copy out.

use std::io::Write;
use std::process::ExitCode;

use qshm::{AccessMode, SharedMemory};

use super::{Ctx, Outcome};
use crate::cli::ReadCmd;
use crate::json::{hex, Obj};

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &ReadCmd) -> Outcome {
    let name = cmd.key.as_str();
    let key = ctx.key(name)?;
    let mut shm = SharedMemory::with_native_key(key);
    shm.attach(AccessMode::ReadOnly)
        .map_err(|e| ctx.lib(name, &e))?;
    let size = shm.size() as u64;
    let offset = cmd.offset;
    if offset > size {
        return Err(ctx.op(
            name,
            format_args!("offset {offset} is past the end of the segment ({size} bytes)"),
        ));
    }
    let length = cmd.length.unwrap_or(size - offset);
    if length > size - offset {
        return Err(ctx.op(
            name,
            format_args!(
                "{length} bytes at offset {offset} run past the end of the segment ({size} bytes)"
            ),
        ));
    }
    // Copy under the lock (`read_at` takes it), write out after releasing it: a slow reader
    // of our output must not hold everyone else up. `read_at` never dies of SIGBUS when a
    // peer has shrunk the segment: that is an error.
    let mut data = vec![0; length as usize];
    shm.read_at(offset as usize, &mut data)
        .map_err(|e| ctx.lib(name, &e))?;
    shm.detach().map_err(|e| ctx.lib(name, &e))?;
    match &cmd.output {
        Some(path) => std::fs::write(path, &data)
            .map_err(|e| ctx.op(name, format_args!("cannot write {}: {e}", path.display())))?,
        None if ctx.json() => {}
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&data)
                .and_then(|()| out.flush())
                .map_err(|e| ctx.op(name, format_args!("cannot write standard output: {e}")))?;
        }
    }
    if ctx.json() {
        ctx.emit(String::new, || {
            let obj = Obj::new("read")
                .str("key", name)
                .num("offset", offset)
                .num("length", length)
                .num("size", size);
            match &cmd.output {
                Some(p) => obj.str("output", &p.display().to_string()),
                None => obj.str("data_hex", &hex(&data)),
            }
        });
    }
    Ok(ExitCode::SUCCESS)
}
