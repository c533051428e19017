//! `qshm remove KEY`: a segment with its key file and lock semaphore; refuses while it is
//! attached unless `--force`.

use std::process::ExitCode;

use qshm::inspect::{self, Backend};

use crate::cli::RemoveCmd;
use crate::command::{Ctx, Outcome};
use crate::json::Obj;

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &RemoveCmd) -> Outcome {
    let (label, info) = match (&cmd.key, cmd.id) {
        (_, Some(id)) => {
            let label = format!("--id {id}");
            let all = inspect::list().map_err(|e| ctx.lib(&label, &e))?;
            let info = all
                .into_iter()
                .find(|s| s.backend == Backend::SystemV && s.id == Some(id))
                .ok_or_else(|| ctx.op(&label, "no Qt or qshm System V segment has this id"))?;
            (label, info)
        }
        (Some(name), None) => {
            let key = ctx.key(name)?;
            let info = inspect::info(&key).map_err(|e| ctx.lib(name, &e))?;
            (name.clone(), info)
        }
        (None, None) => unreachable!("clap requires KEY or --id"),
    };
    if info.attach_count > 0 && !cmd.force {
        return Err(ctx.op(
            &label,
            format_args!(
                "attached by {} process(es); not removed (--force removes it anyway)",
                info.attach_count
            ),
        ));
    }
    match inspect::remove(&info, cmd.force) {
        Ok(true) => {}
        Ok(false) if cmd.force => return Err(ctx.op(&label, "already gone")),
        Ok(false) => return Err(ctx.op(&label, "in use (attached meanwhile); not removed")),
        Err(e) => return Err(ctx.lib(&label, &e)),
    }
    let native = info.native_key.as_ref().map(ToString::to_string);
    ctx.emit(
        || {
            format!(
                "removed {label}: {}",
                native.as_deref().unwrap_or("(key file gone)")
            )
        },
        || {
            Obj::new("remove")
                .str("key", &label)
                .str("backend", info.backend.name())
                .opt_str("native_key", native.as_deref())
                .opt_num("shmid", info.id)
                .num("attach_count", info.attach_count)
                .bool("forced", cmd.force)
                .bool("removed", true)
        },
    );
    Ok(ExitCode::SUCCESS)
}
