#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md: the criterion suite (cargo bench -p
# qshm-benches) and Qt's QSharedMemory measured by benches/qt/qt_bench.cpp, built against
# Debian's qt6-base-dev (installed by benches/qt/build.sh when missing), plus Qt 6.11's life
# cycle through PyQt6 (benches/qt/pyqt_bench.py, in ci/setup-venv.sh's venv), in one invocation,
# so that every ratio compares figures taken on the same machine at the same time.
#
#   benches/run.sh             # everything, ~15 minutes; rewrites BENCHMARKS.md
#   benches/run.sh handoff     # a criterion filter: only matching benchmarks (report
#                              # written to target/BENCHMARKS.partial.md instead)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=BENCHMARKS.md
if [ $# -gt 0 ]; then out=target/BENCHMARKS.partial.md; fi

qt_bin="$(benches/qt/build.sh)"
rm -rf target/criterion
cargo bench -p qshm-benches --bench suite -- "$@"
"$qt_bin" "$@" > target/qt_bench.jsonl
# Qt 6.11 (POSIX and System V life cycle) through PyQt6, from the tests' virtualenv.
if py="$(ci/setup-venv.sh)"; then
    "$py" benches/qt/pyqt_bench.py "$@" >> target/qt_bench.jsonl
else
    echo "warning: no PyQt6 virtualenv; Qt 6.11 rows left out" >&2
fi
python3 benches/report.py target/criterion target/qt_bench.jsonl \
    "benches/run.sh${*:+ $*}" > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
