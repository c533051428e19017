//! `qshm list`: every Qt or qshm segment on the machine.

use std::process::ExitCode;

use qshm::inspect;

use super::{segment_json, segment_name};
use crate::cli::ListCmd;
use crate::command::{Ctx, Outcome};

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &ListCmd) -> Outcome {
    let mut all = inspect::list().map_err(|e| ctx.lib("", &e))?;
    if let Some(filter) = &cmd.filter {
        all.retain(|s| s.names().iter().any(|n| n.contains(filter.as_str())));
    }
    if ctx.json() {
        for s in &all {
            ctx.emit(String::new, || segment_json("list", s));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no Qt or qshm shared memory segments");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<8} {:>8} {:>10} {:>6} {:>8} {:>8} {:>5} {:>4} {:<16} {:<6} KEY",
        "BACKEND", "ID", "SIZE", "NATTCH", "CPID", "LPID", "UID", "MODE", "LOCK", "ORPHAN"
    );
    for s in &all {
        let opt = |v: Option<u32>| v.map_or("-".to_owned(), |p| p.to_string());
        let key = segment_name(s);
        println!(
            "{:<8} {:>8} {:>10} {:>6} {:>8} {:>8} {:>5} {:>04o} {:<16} {:<6} {key}",
            s.backend.name(),
            s.id.map_or("-".to_owned(), |i| i.to_string()),
            s.size,
            s.attach_count,
            opt(s.creator_pid),
            opt(s.last_pid),
            s.uid,
            s.mode,
            s.lock_state.to_string(),
            if s.orphaned { "yes" } else { "no" },
        );
    }
    Ok(ExitCode::SUCCESS)
}
