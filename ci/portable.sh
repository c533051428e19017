#!/usr/bin/env bash
# The portable-Unix mode (issue 16): the Linux build with `--cfg qshm_portable`, which leaves
# out the Linux-only calls macOS and FreeBSD lack (semtimedop, sem_timedwait/sem_clockwait,
# the futex) and takes the fallback paths their builds take (src/sys/portable.rs), POSIX keys
# on the portable POSIX backend (src/sys/unix/posix_portable) that macOS, iOS and FreeBSD
# build. Runs the library's unit tests, the fallback counters' own suite (tests/portable.rs),
# the SharedMemory conformance suite, the semaphore and bounded-wait suites, the crash tests
# (tests/reliability.rs), the POSIX suite (tests/posix.rs, its Linux-only tests ignored with
# their reason), the Qt interop suite against real Qt 6.11 and 5.15 ($QSHM_PYTHON, as
# ci/test.sh prepares it), and the mapped, queue and cell suites, in its own target directory.
#
#   ci/portable.sh                  # all of it
#   ci/portable.sh --test portable  # extra arguments replace the suite list
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Not tests/notify.rs: a process of this mode polls instead of sleeping on the futex, so its
# notify wakes no futex sleeper, and the suite's C peer (include/qshm.h, which sleeps on the
# futex) waits for ever. Mixing this mode with native Linux peers is not supported; its other
# 11 tests pass in this mode (run: ci/portable.sh --test notify).
suites=(--lib --test portable --test conformance --test semaphore --test bounded_waits
    --test reliability --test qt_interop --test posix --test mapped --test queue --test cell)
if [ $# -gt 0 ]; then
    suites=("$@")
fi
export RUSTFLAGS="${RUSTFLAGS:-} --cfg qshm_portable"
export CARGO_TARGET_DIR="${QSHM_PORTABLE_TARGET_DIR:-target/portable}"
cargo clippy -p qshm --all-targets --quiet -- -D warnings

# Each process that takes a fallback path leaves <name>.<pid> here (src/sys/portable.rs).
record="$(mktemp -d)"
trap 'rm -rf "$record"' EXIT
QSHM_PORTABLE_RECORD="$record" cargo test -p qshm "${suites[@]}"

# The calls the mode replaces are not in its binaries at all: no undefined `semtimedop` or
# `sem_timedwait` symbol, and no `sem_clockwait` name to look up (the futex is a raw system
# call, not a symbol: its call sites are compiled out, which clippy above built).
bins="$(cargo test -p qshm "${suites[@]}" --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    exe = json.loads(line).get("executable")
    if exe: print(exe)')"
for bin in $bins; do
    if nm -D --undefined-only "$bin" | grep -wE 'semtimedop|sem_timedwait' >&2 || grep -aq sem_clockwait "$bin"; then
        echo "portable: $bin still calls a Linux-only wait (above)" >&2
        exit 1
    fi
done
echo "portable: $(wc -w <<< "$bins") test binaries, none calls semtimedop, sem_timedwait or sem_clockwait" >&2

# Every fallback must have run in some process of the suites: a mode that silently kept a
# Linux-only call (or never reached the fallback) fails here.
missing=0
for name in wait_word_poll mapped_lock_poll sysv_timed_poll posix_timed_poll named_create posix_portable mapped_record_locks; do
    n="$(find "$record" -name "$name.*" | wc -l)"
    printf 'portable: %-20s taken by %d processes\n' "$name" "$n" >&2
    [ "$n" -gt 0 ] || missing=1
done
if [ "$missing" -ne 0 ]; then
    echo "portable: a fallback path never ran (above)" >&2
    exit 1
fi
