//! `qshm doctor`: on this machine, and where things fail: a full small tmpfs over /dev/shm
//! and an exhausted `kernel.shmmni` in a private mount and IPC namespace (`unshare -rmi`),
//! which it must name as the causes, with their fixes.
#![cfg(target_os = "linux")]

mod common;

use std::process::Command;

use common::{finish, qshm, Watchdog, BIN};
use serde_json::Value;

fn findings(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

fn check<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|v| v["check"] == name)
        .unwrap_or_else(|| panic!("no {name} in {all:#?}"))
}

#[test]
fn doctor_reports_every_check_here() {
    let _w = Watchdog::new("doctor_reports_every_check_here");
    let run = qshm(&["doctor", "--json"]);
    assert!(run.status == 0 || run.status == 1, "{run:?}");
    let all = findings(&run.stdout);
    for name in [
        "dev_shm",
        "shmmni",
        "shmall",
        "shmmax",
        "semmni",
        "semmsl",
        "ipc_namespace",
        "pid_namespace",
        "protected_regular",
        "tmpdir",
        "xdg_runtime_dir",
    ] {
        let v = check(&all, name);
        assert_eq!(v["verb"], "doctor");
        assert_eq!(v["schema"], 1);
        assert!(
            ["ok", "note", "warning", "error"].contains(&v["level"].as_str().unwrap()),
            "{v}"
        );
        if v["level"] == "error" || v["level"] == "warning" {
            assert!(v["fix"].is_string(), "a problem comes with its fix: {v}");
        }
    }
    let errors = all.iter().filter(|v| v["level"] == "error").count();
    assert_eq!(run.status, i32::from(errors > 0), "{all:#?}");
    let text = qshm(&["doctor"]).out();
    assert!(
        text.contains("dev_shm:") && text.contains("error(s)"),
        "{text}"
    );
    // A TMPDIR that does not exist: Qt cannot make its key files; an error with the fix.
    let mut c = Command::new(BIN);
    c.args(["doctor", "--json"])
        .env("TMPDIR", "/nonexistent/qshm-doctor-test");
    let run = finish(c);
    assert_eq!(run.status, 1);
    let all = findings(&run.stdout);
    let t = check(&all, "tmpdir");
    assert_eq!(t["level"], "error", "{t}");
    assert!(t["fix"].as_str().unwrap().contains("mkdir"), "{t}");
}

/// Whether `unshare -rmi` (a user namespace mapped to root, with private mount and IPC
/// namespaces) works for this user here; why not otherwise.
fn unshare_works() -> Result<(), String> {
    let out = Command::new("timeout")
        .args(["20", "unshare", "-rmi", "--propagation", "private", "true"])
        .output()
        .map_err(|e| format!("cannot run unshare: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`unshare -rmi` fails here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn doctor_names_a_full_dev_shm_and_exhausted_shmmni_with_their_fixes() {
    let _w = Watchdog::new("doctor_names_a_full_dev_shm_and_exhausted_shmmni_with_their_fixes");
    if let Err(why) = unshare_works() {
        eprintln!(
            "SKIPPED doctor_names_a_full_dev_shm_and_exhausted_shmmni_with_their_fixes: {why}"
        );
        return;
    }
    // Inside: a 64 KiB tmpfs over /dev/shm, filled; shmmni 2 in the new IPC namespace, and
    // 2 segments (they die with the namespace, the tmpfs with the mount namespace: nothing
    // is left behind outside).
    let script = format!(
        "mount -t tmpfs -o size=64k tmpfs /dev/shm || exit 90
         head -c 1048576 /dev/zero > /dev/shm/fill 2>/dev/null
         echo 2 > /proc/sys/kernel/shmmni || exit 91
         ipcmk -M 4096 >/dev/null && ipcmk -M 4096 >/dev/null || exit 92
         ipcmk -M 4096 >/dev/null 2>&1 && exit 93
         exec '{BIN}' doctor --json"
    );
    let mut c = Command::new("timeout");
    c.args([
        "60",
        "unshare",
        "-rmi",
        "--propagation",
        "private",
        "sh",
        "-c",
        &script,
    ]);
    let run = finish(c);
    assert_eq!(run.status, 1, "doctor finds errors: {run:?}");
    let all = findings(&run.stdout);

    let shm = check(&all, "dev_shm");
    assert_eq!(shm["level"], "error", "{shm}");
    assert_eq!(shm["size_bytes"], 65536, "{shm}");
    assert_eq!(shm["free_bytes"], 0, "{shm}");
    assert!(shm["why"].as_str().unwrap().contains("full"), "{shm}");
    assert!(shm["fix"].as_str().unwrap().contains("--shm-size"), "{shm}");

    let mni = check(&all, "shmmni");
    assert_eq!(mni["level"], "error", "{mni}");
    assert_eq!(mni["limit"], 2);
    assert_eq!(mni["used"], 2);
    assert!(mni["why"].as_str().unwrap().contains("ENOSPC"), "{mni}");
    assert!(
        mni["fix"]
            .as_str()
            .unwrap()
            .contains("sysctl -w kernel.shmmni="),
        "{mni}"
    );

    let ipc = check(&all, "ipc_namespace");
    assert_eq!(ipc["host"], false, "{ipc}");
    assert!(ipc["fix"].as_str().unwrap().contains("--ipc=host"), "{ipc}");
    // Nothing else is an error here, but for what is one outside too.
    let errors = |all: &[Value]| -> Vec<String> {
        all.iter()
            .filter(|v| v["level"] == "error")
            .map(|v| v["check"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut expected = errors(&findings(&qshm(&["doctor", "--json"]).stdout));
    expected.extend(["dev_shm".to_owned(), "shmmni".to_owned()]);
    expected.sort();
    expected.dedup();
    let mut inside = errors(&all);
    inside.sort();
    assert_eq!(inside, expected, "{all:#?}");
}

/// In a private PID namespace (`unshare -rpf --mount-proc`), `pid_namespace` says so.
#[test]
fn doctor_tells_a_private_pid_namespace() {
    let _w = Watchdog::new("doctor_tells_a_private_pid_namespace");
    if let Err(why) = unshare_works() {
        eprintln!("SKIPPED doctor_tells_a_private_pid_namespace: {why}");
        return;
    }
    let mut c = Command::new("timeout");
    c.args([
        "60",
        "unshare",
        "-rpf",
        "--mount-proc",
        BIN,
        "doctor",
        "--json",
    ]);
    let run = finish(c);
    if run.status != 0 && run.status != 1 {
        eprintln!("SKIPPED doctor_tells_a_private_pid_namespace: unshare -rpf fails: {run:?}");
        return;
    }
    let all = findings(&run.stdout);
    let pid = check(&all, "pid_namespace");
    assert_eq!(pid["host"], false, "{pid}");
    assert_eq!(pid["level"], "note", "{pid}");
    assert!(pid["fix"].as_str().unwrap().contains("--pid=host"), "{pid}");
    // Only the PID namespace changed: the IPC one is as outside.
    let outside = findings(&qshm(&["doctor", "--json"]).stdout);
    assert_eq!(
        check(&all, "ipc_namespace")["ipc_ns"],
        check(&outside, "ipc_namespace")["ipc_ns"]
    );
}
