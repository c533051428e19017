//! `qshm completions SHELL` and `qshm man [VERB]`: generated from the same clap definitions
//! as `--help` (clap_complete, clap_mangen), so they never disagree with the tool.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use super::{Ctx, Outcome};
use crate::cli::{Cli, CompletionsCmd, ManCmd};
use crate::Failure;

/// Prints the completion script for the shell.
pub(crate) fn completions(cmd: &CompletionsCmd) -> Outcome {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(cmd.shell, &mut command, "qshm", &mut out);
    write_out("completions", &out)
}

/// Prints the manual page in roff: `qshm(1)`, or with a verb `qshm-VERB(1)`.
pub(crate) fn man(ctx: &Ctx<'_>, cmd: &ManCmd) -> Outcome {
    let mut command = Cli::command();
    command.build();
    let page = match &cmd.verb {
        None => command,
        Some(verb) => {
            let sub = command
                .get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                .find(|s| s.get_name() == verb)
                .ok_or_else(|| {
                    let verbs: Vec<&str> = command
                        .get_subcommands()
                        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                        .map(|s| s.get_name())
                        .collect();
                    Failure::usage(
                        ctx.verb,
                        format_args!("no verb `{verb}` (verbs: {})", verbs.join(", ")),
                    )
                })?;
            let name = format!("qshm-{verb}");
            sub.clone().name(name).bin_name(format!("qshm {verb}"))
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .map_err(|e| ctx.op("", format_args!("cannot render the page: {e}")))?;
    write_out("man", &out)
}

fn write_out(verb: &str, bytes: &[u8]) -> Outcome {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::op(verb, "", format_args!("cannot write standard output: {e}")))?;
    Ok(ExitCode::SUCCESS)
}
