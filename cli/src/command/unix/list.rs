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
    let mapped = super::mapped::list(cmd.filter.as_deref());
    if ctx.json() {
        for s in &all {
            ctx.emit(String::new, || segment_json("list", s));
        }
        for m in &mapped {
            ctx.emit(String::new, || m.json("list"));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() && mapped.is_empty() {
        println!("no Qt or qshm shared memory segments");
        return Ok(ExitCode::SUCCESS);
    }
    let opt = |v: Option<u32>| v.map_or("-".to_owned(), |p| p.to_string());
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|s| {
            vec![
                s.backend.name().to_owned(),
                s.id.map_or("-".to_owned(), |i| i.to_string()),
                s.size.to_string(),
                s.attach_count.to_string(),
                opt(s.creator_pid),
                opt(s.last_pid),
                s.uid.to_string(),
                format!("{:04o}", s.mode),
                s.lock_state.to_string(),
                if s.orphaned { "yes" } else { "no" }.to_owned(),
                segment_name(s),
            ]
        })
        .chain(mapped.iter().map(super::mapped::Mapped::row))
        .collect();
    print!("{}", table(&rows));
    Ok(ExitCode::SUCCESS)
}

/// The columns of the table: header, and whether the values are numbers (right-aligned).
const COLUMNS: [(&str, bool); 11] = [
    ("BACKEND", false),
    ("ID", true),
    ("SIZE", true),
    ("NATTCH", true),
    ("CPID", true),
    ("LPID", true),
    ("UID", true),
    ("MODE", false),
    ("LOCK", false),
    ("ORPHAN", false),
    ("KEY", false),
];

/// The table, each column as wide as its widest cell (header included); the last column
/// (the key) is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = COLUMNS.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let last = cells.len() - 1;
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i == last {
                out.push_str(cell);
            } else if COLUMNS[i].1 {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
                out.push(' ');
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad + 1));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(COLUMNS.iter().map(|(h, _)| *h).collect());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_fit_their_contents() {
        let row = |id: &str, lock: &str| -> Vec<String> {
            [
                "posix", id, "64", "0", "-", "-", "0", "0600", lock, "no", "posix:/k",
            ]
            .map(str::to_owned)
            .to_vec()
        };
        let t = super::table(&[row("-", "free"), row("123456789012", "held by 4194304")]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "BACKEND           ID SIZE NATTCH CPID LPID UID MODE LOCK            ORPHAN KEY"
        );
        assert_eq!(
            lines[1],
            "posix              -   64      0    -    -   0 0600 free            no     posix:/k"
        );
        assert_eq!(
            lines[2],
            "posix   123456789012   64      0    -    -   0 0600 held by 4194304 no     posix:/k"
        );
    }
}
