#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 30 s each; FUZZ_SECONDS to change):
#
#   ci/fuzz.sh                 # 30 s per target
#   FUZZ_SECONDS=3600 ci/fuzz.sh
#
# cargo-fuzz needs a nightly toolchain (installed on these machines) and cargo-fuzz itself,
# which this script installs when it is missing. Crashes land in fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
seconds="${FUZZ_SECONDS:-30}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked >&2
fi
cargo +nightly fuzz build >&2
for target in $(cargo fuzz list); do
    echo "== fuzz $target for ${seconds}s" >&2
    mkdir -p "corpus/$target"
    status=0
    cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 >"/tmp/fuzz-$target.log" 2>&1 || status=$?
    grep -E "^#[0-9]+ +DONE|^Done|SUMMARY|panicked|ERROR" "/tmp/fuzz-$target.log" >&2 || true
    if [ "$status" -ne 0 ] || compgen -G "artifacts/$target/*" >/dev/null; then
        tail -40 "/tmp/fuzz-$target.log" >&2
        echo "fuzz target $target failed (status $status); crashes in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
rm -rf "${TMPDIR:-/tmp}"/qshm-fuzz-*
echo "fuzzing: no crash in $(cargo fuzz list | wc -l) targets × ${seconds}s" >&2
