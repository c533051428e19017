#!/usr/bin/env bash
# Runs every benchmark and writes BENCHMARKS.md: the criterion suite (cargo bench -p
# qshm-benches) and Qt's QSharedMemory measured by benches/qt/qt_bench.cpp, built against
# Debian's qt6-base-dev (installed by benches/qt/build.sh when missing), in one invocation,
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
python3 benches/report.py target/criterion target/qt_bench.jsonl \
    "benches/run.sh${*:+ $*}" > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
