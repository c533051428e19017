//! `qshm key KEY`: the native key, the lock's native key and the Qt text form.

use std::process::ExitCode;

use super::{type_name, Ctx, Outcome};
use crate::cli::KeyCmd;
use crate::json::Obj;

pub(crate) fn run(ctx: &Ctx<'_>, cmd: &KeyCmd) -> Outcome {
    let key = ctx.key(&cmd.key)?;
    let lock = key.lock_key();
    ctx.emit(
        || {
            format!(
                "segment {}\nlock    {}\ntext    {key}",
                key.native_key(),
                lock.native_key()
            )
        },
        || {
            Obj::new("key")
                .str("key", &cmd.key)
                .opt_str("qt_key", key.legacy_key())
                .str("type", type_name(key.key_type()))
                .str("native_key", key.native_key())
                .str("lock_native_key", lock.native_key())
                .str("key_text", &key.to_string())
                .str("lock_key_text", &lock.to_string())
        },
    );
    Ok(ExitCode::SUCCESS)
}
