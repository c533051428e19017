//! `qshm notify KEY` and `qshm wait KEY`: a segment's change notifier (`qshm::notify`) from
//! the shell. Linux and Windows; elsewhere (no notifier yet) they say so, with status 3.

#[cfg(any(target_os = "linux", windows))]
pub(crate) use imp::{notify, wait};

/// The exit status of a verb this platform cannot do (docs/cli.md).
#[cfg(not(any(target_os = "linux", windows)))]
const UNSUPPORTED: u8 = 3;

#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) fn notify(ctx: &super::Ctx<'_>, cmd: &crate::cli::NotifyCmd) -> super::Outcome {
    Err(ctx
        .op(
            &cmd.key,
            "change notification is not available on this platform yet",
        )
        .with_status(UNSUPPORTED))
}

#[cfg(not(any(target_os = "linux", windows)))]
pub(crate) fn wait(ctx: &super::Ctx<'_>, cmd: &crate::cli::WaitCmd) -> super::Outcome {
    Err(ctx
        .op(
            &cmd.key,
            "change notification is not available on this platform yet",
        )
        .with_status(UNSUPPORTED))
}

#[cfg(any(target_os = "linux", windows))]
mod imp {
    use std::process::ExitCode;

    use qshm::{AccessMode, ErrorKind, SharedMemory};

    use super::super::{seconds, Ctx, Outcome};
    use crate::cli::{NotifyCmd, WaitCmd};
    use crate::json::Obj;

    /// Attaches read-only (enough for the notifier) and opens the notifier.
    fn open(
        ctx: &Ctx<'_>,
        name: &str,
    ) -> Result<(SharedMemory, qshm::notify::Notifier), crate::Failure> {
        let mut shm = SharedMemory::with_native_key(ctx.key(name)?);
        shm.attach(AccessMode::ReadOnly)
            .map_err(|e| ctx.lib(name, &e))?;
        let notifier = shm.notifier().map_err(|e| ctx.lib(name, &e))?;
        Ok((shm, notifier))
    }

    pub(crate) fn notify(ctx: &Ctx<'_>, cmd: &NotifyCmd) -> Outcome {
        let name = cmd.key.as_str();
        let (mut shm, notifier) = open(ctx, name)?;
        let change = notifier.notify().map_err(|e| ctx.lib(name, &e))?;
        drop(notifier);
        shm.detach().map_err(|e| ctx.lib(name, &e))?;
        ctx.emit(
            || format!("notified {name} (change {change})"),
            || Obj::new("notify").str("key", name).num("change", change),
        );
        Ok(ExitCode::SUCCESS)
    }

    pub(crate) fn wait(ctx: &Ctx<'_>, cmd: &WaitCmd) -> Outcome {
        let name = cmd.key.as_str();
        let (mut shm, notifier) = open(ctx, name)?;
        let seen = notifier.current();
        let result = notifier.wait(seen, seconds(cmd.timeout));
        drop(notifier);
        shm.detach().map_err(|e| ctx.lib(name, &e))?;
        let change = match result {
            Ok(change) => change,
            Err(e) if e.kind() == ErrorKind::Timeout => {
                return Err(ctx.op(
                    name,
                    format_args!("no change within {} s", cmd.timeout.unwrap_or_default()),
                ))
            }
            Err(e) => return Err(ctx.lib(name, &e)),
        };
        ctx.emit(
            || format!("changed {name} (change {change})"),
            || Obj::new("wait").str("key", name).num("change", change),
        );
        Ok(ExitCode::SUCCESS)
    }
}
