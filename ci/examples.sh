#!/usr/bin/env bash
# Runs every example under examples/, each across the processes it claims (they start
# themselves, or their Qt peer, as children), each under a time limit: the walk-throughs
# (semaphore_pipeline, memfd_handover, owner_died, inspect_clean, queue, latest_value, notify,
# async_wait (feature async), qt_interop with
# "$QSHM_PYTHON", a Python with PyQt6), and the writer/reader pair, the reader started while
# the writer holds its segment. Every example uses keys with its pid and cleans up; the
# leak guard of ci/test.sh checks that.
#
#   QSHM_PYTHON=.venv/bin/python ci/examples.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

: "${QSHM_PYTHON:?set QSHM_PYTHON to a Python with PyQt6 (ci/setup-venv.sh prints one)}"
export QSHM_PYTHON

cargo build -p qshm --examples --features async --quiet
dir="${CARGO_TARGET_DIR:-target}/debug/examples"
limit=60

run() { # name, args...
    local name="$1"
    shift
    local t=$SECONDS
    echo "-- example $name" >&2
    if ! timeout "$limit" "$dir/$name" "$@"; then
        echo "example $name failed (or took over ${limit}s)" >&2
        exit 1
    fi
    echo "-- example $name: ok ($((SECONDS - t))s)" >&2
}

run semaphore_pipeline
run memfd_handover
run owner_died
run inspect_clean
run queue
run latest_value
run notify
run async_wait
run qt_interop
run bench_windows_lock # elsewhere than Windows it says so and exits 0

# The two-terminal pair: the writer holds its segment until a line arrives on its stdin.
key="qshm-example-pair-$$"
work="$(mktemp -d)"
writer_pid=""
cleanup() {
    [ -n "$writer_pid" ] && kill "$writer_pid" 2> /dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkfifo "$work/stdin"
timeout "$limit" "$dir/writer" "$key" "hello from the writer" < "$work/stdin" > "$work/out" &
writer_pid=$!
exec 3> "$work/stdin" # the writer's stdin stays open until we write its line
for _ in $(seq 1 200); do
    grep -q 'press Enter' "$work/out" && break
    sleep 0.05
done
grep -q 'press Enter' "$work/out" || { echo "example writer did not start" >&2; exit 1; }
got="$(timeout "$limit" "$dir/reader" "$key")"
echo >&3
exec 3>&-
wait "$writer_pid"
writer_pid=""
if [ "$got" != "hello from the writer" ]; then
    echo "example reader printed '$got', expected the writer's message" >&2
    exit 1
fi
echo "-- examples writer and reader: ok (the reader read '$got')" >&2
