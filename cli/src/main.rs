//! `qshm`: see and repair what lives in shared memory, Qt's segments and qshm's.
//!
//! Every verb is a module of `command/`; `cli.rs` defines the arguments. Exit status: 0 on
//! success, 1 on an operational error (one line on stderr: `qshm: <verb> <key>: <cause>`),
//! 2 on a usage error (clap's, or a key that does not parse), 3 when the verb cannot work on
//! this platform (`list` and `remove` on Windows). With `--json` the error is one JSON object
//! on stderr instead (`"verb"`, `"schema"`, `"error"`: the cause, `"key"`, `"exit_status"`,
//! `"message"`: the line it replaces).
//!
//! What differs by platform is chosen in two places: interruption here (`signals`: Unix
//! signals, or Windows console events in `signals_windows.rs`, behind one interface), and
//! the verbs that look at what exists in `command/mod.rs`.

mod cli;
mod command;
mod json;
#[cfg_attr(windows, path = "signals_windows.rs")]
mod signals;

use std::process::ExitCode;

use clap::Parser;

/// A failure: the exit status and the one line to print on stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    status: u8,
    message: String,
    /// For `--json`: the verb, the key as typed (if any) and the cause alone.
    verb: String,
    key: Option<String>,
    cause: String,
}

impl Failure {
    /// A usage error (status 2): `qshm: <verb>: <message>`.
    pub(crate) fn usage(verb: &str, message: impl std::fmt::Display) -> Failure {
        let cause = message.to_string();
        Failure {
            status: 2,
            message: format!("qshm: {verb}: {cause}"),
            verb: verb.to_owned(),
            key: None,
            cause,
        }
    }

    /// An operational error (status 1): `qshm: <verb> <key>: <cause>`.
    pub(crate) fn op(verb: &str, key: &str, cause: impl std::fmt::Display) -> Failure {
        let cause = cause.to_string();
        let message = if key.is_empty() {
            format!("qshm: {verb}: {cause}")
        } else {
            format!("qshm: {verb} {key}: {cause}")
        };
        Failure {
            status: 1,
            message,
            verb: verb.to_owned(),
            key: (!key.is_empty()).then(|| key.to_owned()),
            cause,
        }
    }

    /// An operational error from the library: its cause, without the library's own
    /// "cannot … `<native key>`" prefix (the verb and the key as typed say that).
    pub(crate) fn lib(verb: &str, key: &str, err: &qshm::Error) -> Failure {
        Failure::op(verb, key, cause(err))
    }

    /// A failure that only sets the exit status (what to say was said already).
    pub(crate) fn silent(status: u8) -> Failure {
        Failure {
            status,
            message: String::new(),
            verb: String::new(),
            key: None,
            cause: String::new(),
        }
    }

    /// The same message with another exit status (a command that cannot run: 126, 127; a
    /// verb this platform cannot do: 3).
    pub(crate) fn with_status(mut self, status: u8) -> Failure {
        self.status = status;
        self
    }

    /// The failure as the JSON object `--json` prints on stderr.
    pub(crate) fn json(&self) -> String {
        json::Obj::new(&self.verb)
            .str("error", &self.cause)
            .opt_str("key", self.key.as_deref())
            .num("exit_status", self.status)
            .str("message", &self.message)
            .finish()
    }
}

/// The cause part of a library error's message: what qshm says about it (or its kind), and
/// the operating system's error. Built from the error's parts, not cut out of its message,
/// which contains the key, and a key may contain anything.
pub(crate) fn cause(err: &qshm::Error) -> String {
    let mut text = match err.detail() {
        Some(detail) => detail.to_owned(),
        None => err.kind().to_string(),
    };
    if let Some(os) = std::error::Error::source(err) {
        text.push_str(&format!(" ({os})"));
    }
    text
}

fn main() -> ExitCode {
    // Usage errors exit with status 2 (as a JSON object on stderr with --json), --help with 0.
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let json = cli.global.json;
    match command::run(cli) {
        Ok(code) => code,
        Err(failure) => {
            if !failure.message.is_empty() {
                if json {
                    eprintln!("{}", failure.json());
                } else {
                    eprintln!("{}", failure.message);
                }
            }
            ExitCode::from(failure.status)
        }
    }
}

/// Clap's error: as clap prints it, or with `--json` anywhere on the command line (it may
/// not have been parsed) as a JSON object on stderr.
fn usage_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let wants_json = std::env::args_os().skip(1).any(|a| a == "--json");
    let informational = matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !wants_json || informational {
        err.exit();
    }
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("");
    let cause = first.strip_prefix("error: ").unwrap_or(first);
    let failure = Failure::usage("usage", cause);
    eprintln!("{}", failure.json());
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    /// A key containing the separator of the message's parts does not confuse the cause.
    #[test]
    fn cause_of_an_error_whose_key_looks_like_a_message() {
        // `posix:/qshm-cli-no-such…` on Unix, `windows:shm_qshm-cli-no-such…` on Windows.
        let key =
            qshm::NativeKey::platform_safe("qshm-cli-no-such`: x", qshm::KeyType::default_for_os());
        let mut shm = qshm::SharedMemory::with_native_key(key);
        let err = shm.attach(qshm::AccessMode::ReadOnly).unwrap_err();
        assert_eq!(err.kind(), qshm::ErrorKind::NotFound);
        let cause = super::cause(&err);
        assert!(!cause.contains("x`"), "{cause}");
        assert!(err.to_string().ends_with(&cause), "{err} / {cause}");
    }
}
