#!/usr/bin/env bash
# The Windows backend's costs under Wine, in one run: qshm's lock against the raw
# WaitForSingleObject + ReleaseSemaphore pair, and the life cycle against Qt 6.11 and Qt 5.15
# for Windows (through PyQt). Wine's figures are not Windows figures: compare ratios only.
# Needs ci/wine.sh's environment (run it first). Prints the figures; BENCHMARKS.md quotes them.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=/dev/null
source target/wine/env.sh
cargo run --release --quiet --target x86_64-pc-windows-gnu --example bench_windows_lock
script='Z:'"$(pwd | tr / '\\')"'\benches\qt\pyqt_windows_bench.py'
for v in 6 5; do
    var="QSHM_WIN_PYTHON_QT$v"
    # Wine's CPython needs pipes or /dev/null as its std handles.
    /usr/lib/wine/wine64 "${!var}" "$script" "$v" </dev/null 2>&1 | cat
done
