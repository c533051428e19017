//! `qshm clean`: remove every orphan: unattached segments whose creator is gone, lock
//! semaphores with no segment, stale key files, notifiers' companions of gone segments.

use std::path::Path;
use std::process::ExitCode;

use qshm::inspect::{self, Leftover};

use crate::cli::CleanCmd;
use crate::command::{Ctx, Outcome};
use crate::json::Obj;
use crate::Failure;

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &CleanCmd) -> Outcome {
    let mut items = inspect::leftovers().map_err(|e| ctx.lib("", &e))?;
    if cmd.semaphores {
        items.extend(inspect::unused_semaphores().map_err(|e| ctx.lib("", &e))?);
    }
    if let Some(filter) = &cmd.filter {
        items.retain(|l| l.names().iter().any(|n| n.contains(filter.as_str())));
    }
    // Segments first: removing one removes its lock and key file too.
    items.sort_by_key(|l| match l {
        Leftover::Segment(_) => 0,
        Leftover::Semaphore(_) => 1,
        _ => 2,
    });
    let mut removed = 0usize;
    let mut failed = false;
    for item in &items {
        let name = name_of(item);
        let detail = detail_of(item);
        if cmd.dry_run {
            report(ctx, item, &name, &detail, "would remove", false);
            continue;
        }
        match inspect::remove_leftover(item) {
            Ok(true) => {
                removed += 1;
                report(ctx, item, &name, &detail, "removed", true);
            }
            Ok(false) => report(
                ctx,
                item,
                &name,
                &detail,
                "kept (in use again, or gone)",
                false,
            ),
            Err(e) => {
                let failure = ctx.op(&name, crate::cause(&e));
                if ctx.json() {
                    eprintln!("{}", failure.json());
                } else {
                    eprintln!(
                        "qshm: clean {}: {}",
                        super::printable(&name),
                        crate::cause(&e)
                    );
                }
                failed = true;
            }
        }
    }
    if !ctx.json() {
        match (items.len(), cmd.dry_run) {
            (0, _) => println!("nothing to clean"),
            (n, true) => println!("{n} leftover(s); run without --dry-run to remove them"),
            (n, false) => println!("removed {removed} of {n} leftover(s)"),
        }
    }
    if failed {
        return Err(Failure::silent(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn report(ctx: &Ctx<'_>, item: &Leftover, name: &str, detail: &str, what: &str, removed: bool) {
    ctx.emit(
        || {
            format!(
                "{what} {} {} ({detail})",
                item.kind().replace('_', " "),
                super::printable(name)
            )
        },
        || {
            let obj = Obj::new("clean")
                .str("kind", item.kind())
                .str("name", &name_lossy(item))
                .str("name_escaped", name)
                .str("detail", detail)
                .bool("removed", removed)
                .bool("dry_run", what == "would remove");
            match item {
                Leftover::Segment(s) => obj
                    .str("backend", s.backend.name())
                    .opt_num("shmid", s.id)
                    .num("size", s.size),
                Leftover::Semaphore(s) => {
                    obj.str("backend", s.backend.name()).opt_num("semid", s.id)
                }
                _ => obj,
            }
        },
    );
}

/// What names a leftover in the output, exactly: its native key text, else its file
/// ([`inspect::escape_name`]: a name that is not UTF-8 has no native key), else its id.
fn name_of(item: &Leftover) -> String {
    name_with(item, |p| inspect::escape_name(p.as_os_str()))
}

/// [`name_of`], with a file name that is not UTF-8 given lossily (U+FFFD).
fn name_lossy(item: &Leftover) -> String {
    name_with(item, |p| p.to_string_lossy().into_owned())
}

fn name_with(item: &Leftover, file: impl Fn(&Path) -> String) -> String {
    match item {
        Leftover::Segment(s) => match (&s.native_key, s.path.as_ref().or(s.key_file.as_ref())) {
            (Some(key), _) => key.to_string(),
            (None, Some(p)) => file(p),
            (None, None) => format!("shmid {}", s.id.unwrap_or(-1)),
        },
        Leftover::Semaphore(s) => match (&s.native_key, s.path.as_ref().or(s.key_file.as_ref())) {
            (Some(key), _) => key.to_string(),
            (None, Some(p)) => file(p),
            (None, None) => format!("semid {}", s.id.unwrap_or(-1)),
        },
        Leftover::KeyFile(p) | Leftover::Notifier(p) => file(p),
        _ => "(unknown)".to_owned(),
    }
}

fn detail_of(item: &Leftover) -> String {
    match item {
        Leftover::Segment(s) => {
            let mut d = format!("{} bytes, not attached", s.size);
            if let Some(pid) = s.creator_pid {
                d.push_str(&format!(", creator {pid} gone"));
            }
            if s.native_key.is_none() {
                d.push_str(if s.path.is_some() || s.key_file.is_some() {
                    ", name not UTF-8"
                } else {
                    ", key file gone"
                });
            }
            d
        }
        Leftover::Semaphore(_) => "no segment, nobody uses it".to_owned(),
        Leftover::KeyFile(_) => "nothing behind it".to_owned(),
        Leftover::Notifier(_) => "change notifier of a segment that is gone".to_owned(),
        _ => String::new(),
    }
}
