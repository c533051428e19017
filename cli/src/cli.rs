//! The command line: verbs, their arguments and their help texts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use qshm::KeyType;

const KEY_HELP: &str = "A Qt key (`hello`, named exactly as Qt names it), or with --native a \
                        QNativeIpcKey text (`posix:/name`, `systemv:/path`, `windows:name`)";

/// See and repair what lives in shared memory: Qt's QSharedMemory segments and qshm's.
#[derive(Debug, Parser)]
#[command(
    name = "qshm",
    version,
    about,
    propagate_version = true,
    after_help = "Examples:\n  qshm demo\n  qshm list\n  qshm info hello\n  \
                  qshm read hello --length 16 | xxd\n  qshm clean --dry-run"
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every verb takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Print JSON Lines: one JSON object per result and line, each with `"verb"` and
    /// `"schema"` (the format's version); an error is then a JSON object on stderr. Valid
    /// UTF-8 whatever the names on the machine hold (docs/cli.md)
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// KEY is a QNativeIpcKey text (`posix:/name`, `systemv:/path`, `windows:name`), not a
    /// Qt key
    #[arg(long, global = true)]
    pub(crate) native: bool,
    /// The backend a Qt key names [default: Qt's for Qt keys: systemv on Linux, windows on
    /// Windows; `sysv` is an alias of `systemv`]
    #[arg(long = "type", value_enum, global = true, value_name = "TYPE")]
    pub(crate) key_type: Option<KeyTypeArg>,
}

/// `--type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyTypeArg {
    /// System V (`shmget`), Qt's default on Linux
    #[value(name = "systemv", alias = "sysv")]
    SystemV,
    /// POSIX realtime (`shm_open`, /dev/shm)
    Posix,
    /// Windows named sections and semaphores, Qt's (only) type on Windows
    Windows,
}

impl KeyTypeArg {
    /// Every value, in the order of the help text.
    pub(crate) const ALL: [KeyTypeArg; 3] =
        [KeyTypeArg::SystemV, KeyTypeArg::Posix, KeyTypeArg::Windows];

    /// The library's key type.
    pub(crate) fn key_type(self) -> KeyType {
        match self {
            KeyTypeArg::SystemV => KeyType::SystemV,
            KeyTypeArg::Posix => KeyType::PosixRealtime,
            KeyTypeArg::Windows => KeyType::Windows,
        }
    }

    /// The value as typed on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            KeyTypeArg::SystemV => "systemv",
            KeyTypeArg::Posix => "posix",
            KeyTypeArg::Windows => "windows",
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the native key of the segment, of its lock, and the Qt text form of a key
    #[command(
        after_help = "One labelled line each: `segment`, `lock`, `text` (Qt's \
                      QNativeIpcKey text).\n\nExample:\n  qshm key hello\n  \
                      qshm key --type posix hello"
    )]
    Key(KeyCmd),
    /// Create a segment, fill it, and hold it until interrupted (Ctrl-C, SIGTERM) or --for
    #[command(
        after_help = "Prints one line when the segment is ready. When qshm exits, \
                            the segment is removed unless another process holds it \
                            (Qt's Unix ownership).\n\nOn Windows a segment lives while any \
                            process has it open; Ctrl-C, Ctrl-Break or closing the console \
                            end the hold, and --mode does nothing.\n\nExample:\n  \
                            echo hi | qshm create hello 4096 --input - --for 60"
    )]
    Create(CreateCmd),
    /// Attach read-only, lock, and copy bytes out (stdout by default, binary-safe)
    #[command(
        after_help = "With --wait or --nonblock, a lock held longer (by anyone, Qt \
                            included) is `lock busy`, exit status 1, as with flock -w / -n. \
                            --no-lock reads without the lock, to rescue the data of a segment \
                            whose lock is stuck (a Qt process killed holding a POSIX lock): \
                            the bytes may be torn by a writer, and a warning says so on \
                            stderr.\n\nExamples:\n  qshm read hello --offset 0 --length 16 | xxd\n  \
                            qshm read hello --wait 2 -O state.bin\n  \
                            qshm read --type posix hello --no-lock -O rescued.bin"
    )]
    Read(ReadCmd),
    /// Attach read-write, lock, and copy bytes in (stdin by default)
    #[command(
        after_help = "Data that does not fit in the segment is an error, and then \
                            nothing is written. With --wait or --nonblock, a lock held longer \
                            is `lock busy`, exit status 1, and nothing is written.\n\n\
                            Example:\n  printf 'hello' | qshm write hello --offset 16 --wait 1"
    )]
    Write(WriteCmd),
    /// Hold a segment's lock for a time, until interrupted, or for the life of a command
    #[command(
        after_help = "With a command, its exit status is qshm's (128 + N when signal N \
                            ended it). With --wait SECONDS or --nonblock, a lock held longer is \
                            `lock busy`, exit status 1, and the command does not run (flock -w \
                            / -n).\n\nOn Windows, Ctrl-C reaches the command too; qshm \
                            gives the lock back before it exits. A command's exit code above \
                            255 becomes 255, and Ctrl-C's becomes 130.\n\nExamples:\n  \
                            qshm lock hello --for 5\n  qshm lock hello -- cp state.bin backup.bin\n  \
                            qshm lock hello --nonblock -- ./rotate.sh"
    )]
    Lock(LockCmd),
    /// Announce a change of a segment: wake every process waiting for one (qshm::notify)
    #[command(
        after_help = "Uses the segment's change notifier (a companion that Qt ignores, made \
                            on first use, removed with the segment). Prints the new change \
                            count.\n\nExample:\n  printf 'v2' | qshm write hello && qshm notify hello"
    )]
    Notify(NotifyCmd),
    /// Wait until a segment changes (until some process notifies), without polling
    #[command(
        after_help = "Exits 0 when a change is announced (qshm notify, Notifier::notify, \
                            qshm_notify in C), 1 when --timeout passes first. Prints the new \
                            change count.\n\nExample:\n  \
                            while qshm wait hello; do qshm read hello | process; done"
    )]
    Wait(WaitCmd),
    /// Show a segment: backend, keys, size, attachments, pids, owner, lock state, orphan
    #[command(
        after_help = "On Windows: attaches read-only, which takes the lock for an instant as \
                            Qt's attach does (so it waits while another process holds it), and \
                            shows the keys and the size as Windows reports it; Windows does not \
                            tell attachments, pids, owner or lock state.\n\nExample:\n  \
                            qshm info hello\n  qshm info --native posix:/my-app\n  \
                            qshm info --mapped /dev/shm/my-mapped-segment"
    )]
    Info(InfoCmd),
    /// List every Qt or qshm segment on the machine (qshm's mapped segments in /dev/shm and
    /// $XDG_RUNTIME_DIR too), orphans marked
    #[command(
        after_help = "On Windows: not available (exit status 3). Windows offers programs no \
                            supported way to list named sections; `qshm info KEY` shows one \
                            whose key you know.\n\nExample:\n  qshm list\n  \
                            qshm list --json --match myapp"
    )]
    List(ListCmd),
    /// Remove a segment with its key file and lock semaphore
    #[command(
        after_help = "Refuses while processes are attached, unless --force (they keep \
                            their mapping; nobody new can attach).\n\nOn Windows: not \
                            available (exit status 3). A segment and its lock die with their \
                            last handle, and nothing can remove them before.\n\nExamples:\n  \
                            qshm remove hello\n  qshm remove --id 32769"
    )]
    Remove(RemoveCmd),
    /// Remove every orphan: unattached segments whose creator is gone, stale key files,
    /// lock semaphores with no segment
    #[command(
        after_help = "On Windows there is never anything to clean: a segment and its lock \
                            die with their last handle, so a crash leaves nothing behind. \
                            `clean` says so and exits with 0.\n\nExample:\n  \
                            qshm clean --dry-run\n  qshm clean"
    )]
    Clean(CleanCmd),
    /// Several worker processes share one segment, count under its lock and stream a
    /// message through it; the result is checked
    #[command(after_help = "Example:\n  qshm demo\n  qshm demo --workers 8")]
    Demo(DemoCmd),
    /// What this machine and this container allow, and why an attach or create would fail
    /// here, each finding with its fix
    #[command(
        after_help = "Looks at /dev/shm (size, free space, mount options), the System V \
                      limits (shmmax, shmall, shmmni, semmni, semmsl) and their use, the IPC \
                      and PID namespaces (against PID 1's), fs.protected_regular, TMPDIR and \
                      XDG_RUNTIME_DIR as Qt resolves them, and snap or flatpak confinement. \
                      Exit status 0 when nothing is wrong, 1 when a finding is an error.\n\n\
                      Example:\n  qshm doctor\n  qshm doctor --json"
    )]
    Doctor,
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    #[command(
        after_help = "Examples:\n  qshm completions bash > ~/.local/share/bash-completion/completions/qshm\n  \
                      qshm completions zsh > \"${fpath[1]}/_qshm\"\n  \
                      qshm completions fish > ~/.config/fish/completions/qshm.fish"
    )]
    Completions(CompletionsCmd),
    /// Print the manual page (roff), generated from the same definitions as --help
    #[command(after_help = "Examples:\n  qshm man > qshm.1 && man ./qshm.1\n  \
                            qshm man read > qshm-read.1")]
    Man(ManCmd),
    /// A worker of `qshm demo` (internal)
    #[command(hide = true)]
    DemoWorker(DemoWorkerCmd),
}

#[derive(Debug, Args)]
pub(crate) struct ManCmd {
    /// The page of this verb (`qshm-VERB(1)`) instead of the tool's (`qshm(1)`)
    #[arg(value_name = "VERB")]
    pub(crate) verb: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsCmd {
    /// The shell
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

/// `--wait SECONDS` / `--nonblock`: how long to wait for the lock (default: for ever).
#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// Wait at most SECONDS for the lock, then fail with `lock busy` (exit status 1)
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, conflicts_with = "nonblock")]
    pub(crate) wait: Option<f64>,
    /// Do not wait for the lock: fail at once with `lock busy` (exit status 1) if it is held
    #[arg(long)]
    pub(crate) nonblock: bool,
}

#[derive(Debug, Args)]
pub(crate) struct InfoCmd {
    #[arg(help = KEY_HELP)]
    pub(crate) key: String,
    /// KEY is the path of a qshm mapped segment (`qshm::mapped`, include/qshm.h), a file in
    /// /dev/shm or $XDG_RUNTIME_DIR (Linux)
    #[arg(long, conflicts_with = "native")]
    pub(crate) mapped: bool,
}

#[derive(Debug, Args)]
pub(crate) struct KeyCmd {
    #[arg(help = KEY_HELP)]
    pub(crate) key: String,
}

#[derive(Debug, Args)]
pub(crate) struct CreateCmd {
    #[arg(help = KEY_HELP)]
    pub(crate) key: String,
    /// Size in bytes (at least 1)
    #[arg(value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) size: u64,
    /// Fill the segment from FILE (`-`: standard input)
    #[arg(long, short, value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    /// Permission bits of the segment and its lock, in octal (ignored on Windows)
    #[arg(long, short, value_name = "OCTAL", default_value = "600", value_parser = parse_mode)]
    pub(crate) mode: u32,
    /// Hold it this many seconds, then exit (default: until interrupted)
    #[arg(long = "for", value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) for_secs: Option<f64>,
}

#[derive(Debug, Args)]
pub(crate) struct ReadCmd {
    #[arg(help = KEY_HELP)]
    pub(crate) key: String,
    /// First byte to read
    #[arg(long, short, default_value_t = 0)]
    pub(crate) offset: u64,
    /// Number of bytes (default: to the end of the segment)
    #[arg(long, short)]
    pub(crate) length: Option<u64>,
    /// Write the bytes to FILE instead of standard output
    #[arg(long, short = 'O', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
    /// Attach and read without the lock (to rescue a segment whose lock is stuck): the bytes
    /// may be torn by a concurrent writer; warns on stderr; never removes the segment
    #[arg(long, conflicts_with_all = ["wait", "nonblock"])]
    pub(crate) no_lock: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WriteCmd {
    #[arg(help = KEY_HELP)]
    pub(crate) key: String,
    /// First byte to write
    #[arg(long, short, default_value_t = 0)]
    pub(crate) offset: u64,
    /// Read the bytes from FILE (default and `-`: standard input)
    #[arg(long, short, value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LockCmd {
    #[arg(help = KEY_HELP)]
    pub(crate) key: String,
    /// Hold the lock this many seconds (default: until interrupted)
    #[arg(long = "for", value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) for_secs: Option<f64>,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
    /// Run this command while holding the lock (after `--`)
    #[arg(last = true, value_name = "COMMAND", conflicts_with = "for_secs")]
    pub(crate) command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct NotifyCmd {
    #[arg(help = KEY_HELP)]
    pub(crate) key: String,
}

#[derive(Debug, Args)]
pub(crate) struct WaitCmd {
    #[arg(help = KEY_HELP)]
    pub(crate) key: String,
    /// Give up after SECONDS (exit status 1); default: wait as long as it takes
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) timeout: Option<f64>,
}

#[derive(Debug, Args)]
pub(crate) struct ListCmd {
    /// Only segments whose native key, lock key or file contains TEXT
    #[arg(long = "match", value_name = "TEXT")]
    pub(crate) filter: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveCmd {
    #[arg(help = KEY_HELP, required_unless_present = "id")]
    pub(crate) key: Option<String>,
    /// Remove the System V segment with this id instead (one whose key file is gone)
    #[arg(long, value_name = "SHMID", conflicts_with = "key")]
    pub(crate) id: Option<i32>,
    /// Remove it even while processes are attached
    #[arg(long, short)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CleanCmd {
    /// Only show what would be removed
    #[arg(long, short = 'n')]
    pub(crate) dry_run: bool,
    /// Only leftovers whose native key or file contains TEXT (leaves out segments whose
    /// key file is gone)
    #[arg(long = "match", value_name = "TEXT")]
    pub(crate) filter: Option<String>,
    /// Also standalone System V semaphores nobody uses (a QSystemSemaphore's count may be
    /// tokens a consumer will come for): only with --match, naming them
    #[arg(long, requires = "filter")]
    pub(crate) semaphores: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DemoCmd {
    /// Number of worker processes
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) workers: u32,
    /// Locked increments per worker
    #[arg(long, default_value_t = 25_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) increments: u64,
}

#[derive(Debug, Args)]
pub(crate) struct DemoWorkerCmd {
    pub(crate) key: String,
    pub(crate) index: u32,
    pub(crate) increments: u64,
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o777 => Ok(m),
        _ => Err(format!(
            "`{s}` is not octal permission bits (e.g. 600, 660)"
        )),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=1e9).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn modes_and_seconds() {
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o640"), Ok(0o640));
        assert!(parse_mode("800").is_err());
        assert!(parse_mode("1777").is_err());
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("nan").is_err());
    }
}
