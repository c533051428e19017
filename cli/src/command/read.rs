//! `qshm read KEY`: attach read-only, lock, copy out.

use std::io::Write;
use std::process::ExitCode;

use std::time::Duration;

use qshm::{AccessMode, SharedMemory};

use super::{attach, busy_or, detach, lock_wait, Ctx, Outcome};
use crate::cli::ReadCmd;
use crate::json::{hex, Obj};

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &ReadCmd) -> Outcome {
    let name = cmd.key.as_str();
    let key = ctx.key(name)?;
    let mut shm = SharedMemory::with_native_key(key);
    let wait = lock_wait(&cmd.wait);
    // --no-lock: a rescue, attached without the lock even where attaching takes it (System
    // V: a hung holder keeps it); its detach only unmaps, and never removes the segment.
    let waited = if cmd.no_lock {
        eprintln!(
            "qshm: read {name}: warning: reading without the lock (--no-lock): the bytes may \
             be inconsistent if a process is writing them"
        );
        shm.attach_unlocked().map_err(|e| ctx.lib(name, &e))?;
        Duration::ZERO
    } else {
        attach(ctx, name, &mut shm, AccessMode::ReadOnly, &cmd.wait)?
    };
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
    // --no-lock: a copy made without the lock (never a slice of bytes a writer may change),
    // which may be torn; the warning above said so on stderr, whatever the output format.
    let mut data = vec![0; length as usize];
    let read = if cmd.no_lock {
        shm.read_at_unlocked(offset as usize, &mut data)
    } else {
        match wait {
            None => shm.read_at(offset as usize, &mut data),
            Some(d) => shm.read_at_timeout(offset as usize, &mut data, d.saturating_sub(waited)),
        }
    };
    read.map_err(|e| busy_or(ctx, name, &e, &cmd.wait))?;
    detach(ctx, name, &mut shm, wait)?;
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
                .num("size", size)
                .bool("locked", !cmd.no_lock);
            match &cmd.output {
                Some(p) => obj.str("output", &p.display().to_string()),
                None => obj.str("data_hex", &hex(&data)),
            }
        });
    }
    Ok(ExitCode::SUCCESS)
}
