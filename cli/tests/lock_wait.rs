//! `--wait SECONDS` and `--nonblock` on `read`, `write` and `lock` (a held lock is `lock
//! busy`, exit status 1, as `flock -w` / `-n` fail), and `read --no-lock`, which rescues
//! the data of a segment whose POSIX lock a killed Qt process still holds.
#![cfg(target_os = "linux")]

mod common;
#[path = "../../tests/util/qt.rs"]
mod qt;

use std::path::PathBuf;
use std::time::Duration;

use common::{command, qshm, tag, Bg, Cleanup, Watchdog};
use qshm::{KeyType, NativeKey};

/// A segment of 64 bytes created by `qshm create`, and its lock held by `qshm lock`, both in
/// the background (killed on drop; the clean-up guard removes what they leave).
fn held(key: &str, type_args: &[&str]) -> (Bg, Bg) {
    let mut c = command(&["create", key, "64", "--for", "60", "--json"]);
    c.args(type_args);
    let creator = Bg::spawn(c);
    let line = creator.line();
    assert!(line.contains("\"ready\""), "{line}");
    let mut l = command(&["lock", key, "--for", "60", "--json"]);
    l.args(type_args);
    let locker = Bg::spawn(l);
    let line = locker.line();
    assert!(line.contains("\"locked\""), "{line}");
    (creator, locker)
}

fn wait_and_nonblock(type_args: &[&str], native: impl Fn(&str) -> NativeKey) {
    let key = tag();
    let _c = Cleanup::new().key(native(&key));
    let (_creator, _locker) = held(&key, type_args);
    for verb in ["read", "write", "lock"] {
        let mut args = vec![verb, key.as_str()];
        args.extend_from_slice(type_args);

        let mut waiting = args.clone();
        waiting.extend(["--wait", "0.5"]);
        let run = qshm(&waiting).fails(1, &format!("qshm: {verb} {key}: lock busy"));
        assert!(
            run.took >= Duration::from_millis(500) && run.took < Duration::from_millis(1500),
            "{verb} --wait 0.5 took {:?}",
            run.took
        );
        assert!(run.stdout.is_empty(), "{verb}: {}", run.out());

        let mut nonblock = args.clone();
        nonblock.push("--nonblock");
        let run = qshm(&nonblock).fails(1, "lock busy");
        assert!(
            run.took < Duration::from_millis(1000),
            "{verb} --nonblock took {:?}",
            run.took
        );

        // With --json the error is a JSON object on stderr.
        nonblock.push("--json");
        let run = qshm(&nonblock);
        assert_eq!(run.status, 1, "{run:?}");
        let err: serde_json::Value = serde_json::from_str(run.stderr.trim_end())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", run.stderr));
        assert_eq!(err["verb"], verb);
        assert_eq!(err["schema"], 1);
        assert_eq!(err["key"], key.as_str());
        assert_eq!(err["exit_status"], 1);
        assert!(
            err["error"].as_str().unwrap().starts_with("lock busy"),
            "{err}"
        );
    }
    // --no-lock reads all the same, at once (a System V attach too), with a warning.
    let mut args = vec!["read", key.as_str(), "--no-lock", "--length", "4"];
    args.extend_from_slice(type_args);
    let run = qshm(&args).ok();
    assert_eq!(run.stdout, [0u8; 4]);
    assert!(run.took < Duration::from_millis(1500), "{:?}", run.took);
    assert!(
        run.stderr.contains("warning: reading without the lock"),
        "{run:?}"
    );
    // --wait and --nonblock together make no sense: a usage error; nor with --no-lock.
    qshm(&["read", &key, "--wait", "1", "--nonblock"]).fails(2, "cannot be used with");
    qshm(&["read", &key, "--no-lock", "--nonblock"]).fails(2, "cannot be used with");
}

#[test]
fn wait_and_nonblock_on_a_held_system_v_lock() {
    let _w = Watchdog::new("wait_and_nonblock_on_a_held_system_v_lock");
    wait_and_nonblock(&["--type", "systemv"], |k| {
        NativeKey::legacy(k, KeyType::SystemV)
    });
}

#[test]
fn wait_and_nonblock_on_a_held_posix_lock() {
    let _w = Watchdog::new("wait_and_nonblock_on_a_held_posix_lock");
    wait_and_nonblock(&["--type", "posix"], |k| {
        NativeKey::legacy(k, KeyType::PosixRealtime)
    });
}

/// A free lock is taken at once whatever the wait.
#[test]
fn wait_on_a_free_lock_succeeds() {
    let _w = Watchdog::new("wait_on_a_free_lock_succeeds");
    let key = tag();
    let _c = Cleanup::new().key(NativeKey::legacy(&key, KeyType::SystemV));
    let creator = Bg::spawn(command(&["create", &key, "16", "--for", "60", "--json"]));
    let _ = creator.line();
    let run = qshm(&["read", &key, "--wait", "5", "--length", "4"]).ok();
    assert_eq!(run.stdout, [0u8; 4]);
    assert!(run.took < Duration::from_secs(4), "{:?}", run.took);
    qshm(&["lock", &key, "--nonblock", "--", "true"]).ok();
    let run = qshm(&["read", &key, "--no-lock", "--length", "2", "--json"]).ok();
    assert!(
        run.stderr.contains("warning: reading without the lock"),
        "{run:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v["locked"], false);
    assert_eq!(v["data_hex"], "0000");
}

/// The Python with PyQt6 the Qt peers need, or why there is none (then the test is skipped,
/// saying so: ci/test.sh always provides one).
fn pyqt6() -> Result<PathBuf, String> {
    let python = match std::env::var_os("QSHM_PYTHON").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            [
                root.join(".venv/bin/python"),
                root.join("../.venv/bin/python"),
            ]
            .into_iter()
            .find(|p| p.exists())
            .ok_or("no QSHM_PYTHON and no .venv (ci/setup-venv.sh makes one)")?
        }
    };
    let ok = std::process::Command::new(&python)
        .args(["-c", "import PyQt6.QtCore"])
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !ok.success() {
        return Err(format!("{} cannot import PyQt6", python.display()));
    }
    Ok(python)
}

/// Qt dies holding its POSIX lock, which nothing gives back: `--nonblock` says `lock busy`,
/// `--no-lock` reads the data all the same, with a warning.
#[test]
fn no_lock_reads_a_segment_whose_qt_holder_was_killed() {
    let _w = Watchdog::new("no_lock_reads_a_segment_whose_qt_holder_was_killed");
    if let Err(why) = pyqt6() {
        eprintln!("SKIPPED no_lock_reads_a_segment_whose_qt_holder_was_killed: {why}");
        return;
    }
    let name = tag();
    let text = format!("posix:/{name}");
    let _c = Cleanup::new()
        .key(NativeKey::new(format!("/{name}"), KeyType::PosixRealtime))
        .file(format!("/dev/shm/{name}"))
        .file(format!("/dev/shm/sem.{name}"));
    let mut peer = qt::QtPeer::spawn(qt::QtVersion::Qt6);
    peer.cmd(&format!("nkey {}", qt::hex(text.as_bytes())))
        .expect_ok("nkey");
    peer.cmd("create 64 rw").expect_ok("create");
    peer.cmd(&format!("write 0 {}", qt::hex(b"rescue me")))
        .expect_ok("write");
    peer.cmd("lock").expect_ok("lock");
    peer.kill();

    let info = qshm(&["info", "--native", &text, "--json"]).ok();
    assert!(
        info.out().contains("\"lock_state\":\"holder_dead\""),
        "{}",
        info.out()
    );
    qshm(&["read", "--native", &text, "--nonblock"]).fails(1, "lock busy");
    let run = qshm(&["read", "--native", &text, "--no-lock", "--length", "9"]).ok();
    assert_eq!(run.stdout, b"rescue me");
    assert!(
        run.stderr.contains("warning: reading without the lock"),
        "{}",
        run.stderr
    );
}
