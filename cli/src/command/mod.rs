//! The verbs, one module each, and what they share: key resolution, output, input.

mod create;
mod demo;
mod key;
mod lock;
mod manual;
mod notify;
mod read;
mod write;

// The platform choice, made here once: the verbs that look at what exists (`info`, `list`,
// `clean`, `remove`, built on `qshm::inspect`) and a command's exit status, on Unix; what
// Windows offers instead in `windows.rs`. (Interruption is chosen in `main.rs`: `signals`.)
#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as platform;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as platform;

use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use qshm::{AccessMode, ErrorKind, KeyType, LockGuard, NativeKey, SharedMemory};

use crate::cli::{Cli, Command, Global, KeyTypeArg, WaitArgs};
use crate::json::Obj;
use crate::Failure;

pub(crate) type Outcome = Result<ExitCode, Failure>;

/// Runs the verb.
pub(crate) fn run(cli: Cli) -> Outcome {
    let g = &cli.global;
    match cli.command {
        Command::Key(c) => key::run(&Ctx::new(g, "key"), &c),
        Command::Create(c) => create::run(&Ctx::new(g, "create"), &c),
        Command::Read(c) => read::run(&Ctx::new(g, "read"), &c),
        Command::Write(c) => write::run(&Ctx::new(g, "write"), &c),
        Command::Lock(c) => lock::run(&Ctx::new(g, "lock"), &c),
        Command::Notify(c) => notify::notify(&Ctx::new(g, "notify"), &c),
        Command::Wait(c) => notify::wait(&Ctx::new(g, "wait"), &c),
        Command::Info(c) => platform::info(&Ctx::new(g, "info"), &c),
        Command::List(c) => platform::list(&Ctx::new(g, "list"), &c),
        Command::Remove(c) => platform::remove(&Ctx::new(g, "remove"), &c),
        Command::Clean(c) => platform::clean(&Ctx::new(g, "clean"), &c),
        Command::Demo(c) => demo::run(&Ctx::new(g, "demo"), &c),
        Command::Doctor => platform::doctor(&Ctx::new(g, "doctor")),
        Command::Completions(c) => manual::completions(&c),
        Command::Man(c) => manual::man(&Ctx::new(g, "man"), &c),
        Command::DemoWorker(c) => demo::worker(&c),
    }
}

/// What every verb needs: the global options and its own name, for messages.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) g: &'a Global,
    pub(crate) verb: &'static str,
}

impl<'a> Ctx<'a> {
    fn new(g: &'a Global, verb: &'static str) -> Ctx<'a> {
        Ctx { g, verb }
    }

    pub(crate) fn json(&self) -> bool {
        self.g.json
    }

    /// The native key KEY names: a Qt key (with `--type`), or with `--native` a
    /// QNativeIpcKey text. A text that does not parse is a usage error.
    pub(crate) fn key(&self, text: &str) -> Result<NativeKey, Failure> {
        if self.g.native {
            if self.g.key_type.is_some() {
                return Err(Failure::usage(
                    self.verb,
                    "--type applies to Qt keys; a native key names its type itself",
                ));
            }
            return text.parse::<NativeKey>().map_err(|_| {
                Failure::usage(
                    self.verb,
                    format!(
                        "`{text}` is not a native key (expected e.g. `posix:/name` or \
                         `systemv:/path`)"
                    ),
                )
            });
        }
        if text.is_empty() {
            return Err(Failure::usage(self.verb, "the key is empty"));
        }
        // Without --type, the type Qt gives Qt keys here (System V on Linux, Windows on
        // Windows): the library knows it.
        let (key_type, arg) = match self.g.key_type {
            None => (KeyType::legacy_default_for_os(), None),
            Some(arg) => (arg.key_type(), Some(arg)),
        };
        let key = NativeKey::legacy(text, key_type);
        if key.is_empty() {
            // Qt derives no name for a type this platform does not have (Windows keys on
            // Unix, Unix keys on Windows), and neither does the library.
            let here: Vec<&str> = KeyTypeArg::ALL
                .iter()
                .filter(|a| a.key_type().is_supported())
                .map(|a| a.name())
                .collect();
            return Err(Failure::usage(
                self.verb,
                format_args!(
                    "Qt gives `--type {}` keys no name on this platform (here: {})",
                    arg.map_or("?", KeyTypeArg::name),
                    here.join(", ")
                ),
            ));
        }
        Ok(key)
    }

    pub(crate) fn op(&self, key: &str, cause: impl std::fmt::Display) -> Failure {
        Failure::op(self.verb, key, cause)
    }

    pub(crate) fn lib(&self, key: &str, err: &qshm::Error) -> Failure {
        Failure::lib(self.verb, key, err)
    }

    /// Prints a result: `text` normally, the JSON object with `--json`.
    pub(crate) fn emit(&self, text: impl FnOnce() -> String, obj: impl FnOnce() -> Obj) {
        let line = if self.json() { obj().finish() } else { text() };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// Reads FILE, or standard input for `None` and `-`: at most `limit` bytes (what fits), so
/// that an endless input (`/dev/zero`, a stream) is refused, not read until memory runs out.
pub(crate) fn read_input(
    ctx: &Ctx<'_>,
    key: &str,
    path: Option<&Path>,
    limit: u64,
) -> Result<Vec<u8>, Failure> {
    let mut data = Vec::new();
    let (read, what) = match path {
        None => (
            std::io::stdin()
                .lock()
                .take(limit.saturating_add(1))
                .read_to_end(&mut data),
            "standard input".to_owned(),
        ),
        Some(p) if p == Path::new("-") => (
            std::io::stdin()
                .lock()
                .take(limit.saturating_add(1))
                .read_to_end(&mut data),
            "standard input".to_owned(),
        ),
        Some(p) => (
            std::fs::File::open(p)
                .and_then(|f| f.take(limit.saturating_add(1)).read_to_end(&mut data)),
            p.display().to_string(),
        ),
    };
    read.map_err(|e| ctx.op(key, format_args!("cannot read {what}: {e}")))?;
    if data.len() as u64 > limit {
        return Err(ctx.op(
            key,
            format_args!("{what} holds more than the {limit} bytes that fit; nothing done"),
        ));
    }
    Ok(data)
}

/// How long `--wait` / `--nonblock` let a verb wait for the lock: `None` for ever, zero not
/// at all.
pub(crate) fn lock_wait(w: &WaitArgs) -> Option<Duration> {
    if w.nonblock {
        Some(Duration::ZERO)
    } else {
        seconds(w.wait)
    }
}

/// `lock busy` (exit status 1) for a lock that stayed held, as `flock -w` / `-n` fail.
pub(crate) fn busy_or(ctx: &Ctx<'_>, key: &str, err: &qshm::Error, wait: &WaitArgs) -> Failure {
    if matches!(err.kind(), ErrorKind::Timeout | ErrorKind::WouldBlock) {
        let how = match (wait.wait, wait.nonblock) {
            (_, true) => "held by another process (--nonblock)".to_owned(),
            (Some(s), _) => format!("still held by another process after {s} s (--wait)"),
            (None, _) => "held by another process".to_owned(),
        };
        return ctx.op(key, format_args!("lock busy: {how}"));
    }
    ctx.lib(key, err)
}

/// Attaches, waiting for the lock (where attaching takes it: System V) as `wait` says, and
/// returns how long that took (a later [`lock`] waits only for what is left). With a
/// limited wait, the detach (which takes the lock too) waits no longer either.
pub(crate) fn attach(
    ctx: &Ctx<'_>,
    key: &str,
    shm: &mut SharedMemory,
    mode: AccessMode,
    wait: &WaitArgs,
) -> Result<Duration, Failure> {
    if let Some(d) = lock_wait(wait) {
        shm.set_detach_timeout(d.max(Duration::from_millis(10)));
    }
    let start = Instant::now();
    match lock_wait(wait) {
        None => shm.attach(mode),
        Some(d) => shm.attach_timeout(mode, d),
    }
    .map_err(|e| busy_or(ctx, key, &e, wait))?;
    Ok(start.elapsed())
}

/// Detaches. A detach that found the lock held for as long as a limited wait allows is
/// detached all the same (the segment, if this was its last user, stays for a later one):
/// not an error then.
pub(crate) fn detach(
    ctx: &Ctx<'_>,
    key: &str,
    shm: &mut SharedMemory,
    wait: Option<Duration>,
) -> Result<(), Failure> {
    match shm.detach() {
        Err(e) if e.kind() == ErrorKind::Timeout && wait.is_some() => Ok(()),
        r => r.map_err(|e| ctx.lib(key, &e)),
    }
}

/// Takes the lock, waiting as `wait` says, less `waited` already (by the attach): one
/// `--wait` bounds the whole verb, as `flock -w` does. What is used up leaves one try.
pub(crate) fn lock<'a>(
    ctx: &Ctx<'_>,
    key: &str,
    shm: &'a SharedMemory,
    wait: &WaitArgs,
    waited: Duration,
) -> Result<LockGuard<'a>, Failure> {
    match lock_wait(wait).map(|d| d.saturating_sub(waited)) {
        None => shm.lock(),
        Some(d) if d.is_zero() => shm.try_lock(),
        Some(d) => shm.lock_timeout(d),
    }
    .map_err(|e| busy_or(ctx, key, &e, wait))
}

/// `--for SECONDS` as a duration.
pub(crate) fn seconds(s: Option<f64>) -> Option<Duration> {
    s.map(Duration::from_secs_f64)
}

/// The name of a key type in output: `systemv` (any project id), `posix`, `windows`.
pub(crate) fn type_name(key_type: KeyType) -> &'static str {
    if key_type.is_system_v() {
        "systemv"
    } else if key_type == KeyType::Windows {
        "windows"
    } else {
        "posix"
    }
}
