#!/usr/bin/env bash
# Checks that ci/wine.sh's setup works, each step timed:
#  1. a throwaway Rust program (written to target/wine/smoke) built for x86_64-pc-windows-gnu
#     runs under ci/wine/run.sh: arguments, exit code, a child copy of itself spawned with
#     std::process::Command and read through a pipe; with pipes and with regular files as
#     std handles; and its own `cargo test` (the harness re-running its exe) under the runner;
#  2. real Qt for Windows: QSharedMemory("hello") created by one Wine process (Qt 6.11, then
#     Qt 5.15) and read by two others, one per Qt major (ci/wine/qt_shm_demo.py);
#  3. with --lib-tests: cargo test --target x86_64-pc-windows-gnu -j1 --lib -p qshm.
#
#   ci/wine.sh && ci/wine/smoke.sh [--lib-tests]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
W=$root/target/wine
# shellcheck source=/dev/null
source "$W/env.sh"
run=$root/ci/wine/run.sh
target=x86_64-pc-windows-gnu
t0=$SECONDS
exec 3>&1 # timings go here, never into a captured output
step() { printf '\n== smoke: %s (at %ds)\n' "$*" "$((SECONDS - t0))"; }
timed() { # prints a command's wall time after it
    local start=${EPOCHREALTIME/[.,]/}
    "$@" 3>&-
    local rc=$? end=${EPOCHREALTIME/[.,]/}
    printf '   (%d ms: %s)\n' $(((end - start) / 1000)) "$*" >&3
    return $rc
}

step "1. a Rust program for $target under Wine"
smoke=$W/smoke
mkdir -p "$smoke/src"
cat >"$smoke/Cargo.toml" <<'EOF'
[package]
name = "wine-smoke"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]
EOF
cat >"$smoke/src/main.rs" <<'EOF'
//! Throwaway check (written by ci/wine/smoke.sh) that a Rust program for
//! x86_64-pc-windows-gnu runs under Wine: std starts (ProcessPrng), arguments pass
//! through, a child copy of itself runs with piped stdin/stdout, exit codes come back.
use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input).unwrap();
        println!("child {} got {:?} and args {:?}", std::process::id(), input, &args[2..]);
        std::process::exit(7);
    }
    let mut seeded: HashMap<&str, u32> = HashMap::new(); // RandomState: ProcessPrng
    seeded.insert("a", 1);
    println!("parent {} args {:?} os {}", std::process::id(), &args[1..], std::env::consts::OS);
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(&exe)
        .args(["child", "two words", "\u{fc}n\u{ef}"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    child.stdin.take().unwrap().write_all(b"ping").unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let status = child.wait().unwrap();
    print!("from the child's pipe: {out}");
    assert_eq!(status.code(), Some(7));
    assert!(out.contains("got \"ping\"") && out.contains("\u{fc}n\u{ef}"), "{out}");
    let code: i32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    println!("child exited with 7; exiting with {code}");
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds() {
        assert_eq!(1 + 1, 2);
    }

    #[test]
    fn spawns_itself() {
        // The libtest harness: one test run again in a child copy of this test exe.
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args(["--exact", "tests::adds"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
    }
}
EOF
(cd "$smoke" && timed cargo build -j1 --quiet --target "$target")
exe=$smoke/target/$target/debug/wine-smoke.exe
set +e
timed "$run" "$exe" 3 </dev/null | cat
rc=${PIPESTATUS[0]}
set -e
[ "$rc" = 3 ] || { echo "smoke: exit code $rc, not 3" >&2; exit 1; }
out=$(mktemp "$W/smoke-out.XXXXXX")
set +e
"$run" "$exe" 4 </dev/null >"$out" 2>&1 # a regular file as stdout and stderr
rc=$?
set -e
[ "$rc" = 4 ] && grep -q 'got "ping"' "$out" || { cat "$out"; echo "smoke: file handles failed" >&2; exit 1; }
rm -f "$out"
echo "   (a regular file as stdout and stderr: exit code 4 and the child's output, as expected)"
(cd "$smoke" && timed cargo test -j1 --quiet --target "$target" 2>&1 | grep -E 'test result|passed|failed')

step "2. real Qt for Windows: QSharedMemory(\"hello\") across Wine processes"
demo='Z:'"${root//\//\\}"'\ci\wine\qt_shm_demo.py'
fifo=$W/smoke-creator.fifo
log=$W/smoke-creator.log
for creator in 6 5; do
    echo "-- Qt $creator creates; Qt 6 and Qt 5 attach"
    rm -f "$fifo"
    mkfifo "$fifo"
    "$run" "$W/python$creator/python.exe" "$demo" create "$creator" <"$fifo" >"$log" 2>&1 &
    creator_pid=$!
    exec 7>"$fifo" # the creator's stdin: closing it lets the creator detach and exit
    for _ in $(seq 300); do
        grep -qE '^(ready|create failed)' "$log" && break
        sleep 0.1
    done
    tr -d '\r' <"$log" | sed 's/^/   creator: /'
    grep -q '^ready' "$log" || { echo "smoke: the Qt $creator creator failed" >&2; exit 1; }
    for reader in 6 5; do
        got=$(timed "$run" "$W/python$reader/python.exe" "$demo" attach "$reader" </dev/null 2>&1 | tr -d '\r')
        sed "s/^/   reader$reader: /" <<<"$got"
        grep -q "^read written by Qt $creator\." <<<"$got" || { echo "smoke: Qt $reader did not read it" >&2; exit 1; }
    done
    exec 7>&-
    wait "$creator_pid"
    tail -n 1 "$log" | tr -d '\r' | sed 's/^/   creator: /'
done
rm -f "$fifo" "$log"

if [ "${1:-}" = --lib-tests ]; then
    step "3. cargo test --target $target -j1 --lib -p qshm"
    timed cargo test --target "$target" -j1 --lib -p qshm
fi
step "done"
