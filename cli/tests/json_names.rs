//! `--json` is JSON Lines that a real parser (serde_json) reads, whatever the names on the
//! machine hold: control characters, quotes, backslashes, U+2028 and bytes that are not
//! UTF-8, in /dev/shm and in the TMPDIR the CLI is pointed at. Errors are JSON on stderr.
#![cfg(target_os = "linux")]

mod common;

use std::ffi::OsStr;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::{command, finish, qshm, tag, Cleanup, Watchdog};
use qshm::{AccessMode, KeyType, NativeKey, SharedMemory};
use serde_json::Value;

/// Hostile bytes for a file name (no `/`, no NUL): quote, backslash, newline, tab, escape,
/// DEL, U+2028, and bytes that are not UTF-8.
const HOSTILE: &[u8] = b"-q\"b\\n\nt\t\x01\x1b[0m\x7f\xe2\x80\xa8\xff\xfe-";

fn path_with(dir: &str, prefix: &str, name: &str, suffix: &[u8]) -> PathBuf {
    let mut bytes = format!("{dir}/{prefix}{name}").into_bytes();
    bytes.extend_from_slice(suffix);
    PathBuf::from(OsStr::from_bytes(&bytes))
}

fn make_file(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.write_all(bytes).unwrap();
}

/// Every line of `out` is one JSON object with `verb` and `schema`.
#[track_caller]
fn json_lines(out: &[u8], verb: &str) -> Vec<Value> {
    let text = std::str::from_utf8(out).expect("--json output is UTF-8");
    text.lines()
        .map(|line| {
            let v: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert_eq!(v["verb"], verb, "{line}");
            assert_eq!(v["schema"], 1, "{line}");
            v
        })
        .collect()
}

#[test]
fn list_and_clean_json_parse_whatever_the_names() {
    let _w = Watchdog::new("list_and_clean_json_parse_whatever_the_names");
    let name = tag();
    let tmp = std::env::temp_dir().join(format!("qshmtest-json-{name}"));
    std::fs::create_dir(&tmp).unwrap();
    let tmp_s = tmp.to_str().unwrap().to_owned();

    // /dev/shm: a POSIX segment with a hostile, non-UTF-8 name and its lock beside it, and
    // one whose name is hostile but valid UTF-8.
    let utf8_suffix: &[u8] = b"-q\"b\\n\nt\t\x01\x1b[0m\x7f\xe2\x80\xa8-";
    let seg = path_with("/dev/shm", "", &name, HOSTILE);
    let lock = path_with("/dev/shm", "sem.", &name, HOSTILE);
    let seg8 = path_with("/dev/shm", "", &format!("{name}u"), utf8_suffix);
    let lock8 = path_with("/dev/shm", "sem.", &format!("{name}u"), utf8_suffix);
    // TMPDIR: a stale key file with a hostile name (a leftover for `clean`), and a live
    // System V segment whose key file has a hostile UTF-8 name.
    let stale = path_with(&tmp_s, "qipc_sharedmemory_", &name, HOSTILE);
    let key_file = path_with(
        &tmp_s,
        "qipc_sharedmemory_",
        &format!("{name}k"),
        utf8_suffix,
    );
    let sysv_key = NativeKey::new(key_file.to_str().unwrap(), KeyType::SystemV);
    let _c = Cleanup::new()
        .key(sysv_key.clone())
        .file(&seg)
        .file(&lock)
        .file(&seg8)
        .file(&lock8)
        .dir(&tmp);

    let mut sem = [0u8; 32];
    sem[..4].copy_from_slice(&1u32.to_ne_bytes());
    for (path, bytes) in [
        (&seg, &[1u8; 64][..]),
        (&lock, &sem[..]),
        (&seg8, &[2u8; 32][..]),
        (&lock8, &sem[..]),
        (&stale, &[][..]),
    ] {
        make_file(path, bytes);
    }
    // Old enough for `clean`, which leaves young key files alone (they may be being made).
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(SystemTime::now() - Duration::from_secs(3600)))
        .unwrap();
    let mut shm = SharedMemory::with_native_key(sysv_key.clone());
    shm.create(48, AccessMode::ReadWrite)
        .expect("create the System V segment");

    let mut c = command(&["list", "--json", "--match", &name]);
    c.env("TMPDIR", &tmp);
    let run = finish(c).ok();
    let list = json_lines(&run.stdout, "list");
    let by_path = |p: &Path| {
        list.iter()
            .find(|v| {
                v["path"].as_str() == Some(&p.to_string_lossy())
                    || v["key_file"].as_str() == Some(&p.to_string_lossy())
            })
            .unwrap_or_else(|| panic!("{} not listed: {list:#?}", p.display()))
    };
    let v = by_path(&seg);
    assert_eq!(v["size"], 64);
    assert_eq!(
        v["path_escaped"],
        qshm::inspect::escape_name(seg.as_os_str()).as_str()
    );
    assert_eq!(v["native_key"], Value::Null, "not UTF-8: no native key");
    let v = by_path(&seg8);
    assert_eq!(v["path"], seg8.to_str().unwrap(), "exact after decoding");
    assert_eq!(v["size"], 32);
    let v = by_path(&key_file);
    assert_eq!(v["backend"], "systemv");
    assert_eq!(v["size"], 48);
    assert_eq!(v["key_file"], key_file.to_str().unwrap());
    assert_eq!(v["native_key"], sysv_key.to_string().as_str());

    // The text table shows them escaped, one line each (no raw control character).
    let mut c = command(&["list", "--match", &name]);
    c.env("TMPDIR", &tmp);
    let text = finish(c).ok().out();
    assert_eq!(text.lines().count(), 1 + list.len(), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");

    // `clean --dry-run --json` names the stale key file (and nothing is removed).
    let mut c = command(&["clean", "--dry-run", "--json", "--match", &name]);
    c.env("TMPDIR", &tmp);
    let run = finish(c).ok();
    let dry = json_lines(&run.stdout, "clean");
    assert!(
        dry.iter()
            .any(|v| v["name_escaped"] == qshm::inspect::escape_name(stale.as_os_str()).as_str()),
        "{dry:#?}"
    );
    assert!(stale.exists());
    shm.detach().unwrap();
}

/// With `--json`, an error is one JSON object on stderr, with a hostile key too.
#[test]
fn errors_are_json_on_stderr() {
    let _w = Watchdog::new("errors_are_json_on_stderr");
    let key = format!("{}\"\\\n\u{1}\u{2028}", tag());
    let run = qshm(&["read", &key, "--json"]);
    assert_eq!(run.status, 1);
    assert!(run.stdout.is_empty());
    let v: Value = serde_json::from_str(run.stderr.trim_end())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", run.stderr));
    assert_eq!(v["verb"], "read");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["key"], key.as_str());
    assert_eq!(v["exit_status"], 1);
    assert!(
        v["error"].as_str().unwrap().contains("does not exist"),
        "{v}"
    );
    // A usage error (clap's) too, and a key that does not parse.
    for args in [
        &["read", "--json", "--bogus"][..],
        &["info", "--json", "--native", "nonsense\u{1}"][..],
    ] {
        let run = qshm(args);
        assert_eq!(run.status, 2, "{run:?}");
        let v: Value = serde_json::from_str(run.stderr.trim_end())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", run.stderr));
        assert_eq!(v["exit_status"], 2);
        assert!(v["error"].is_string(), "{v}");
    }
}
