#!/usr/bin/env bash
# The Windows backend's costs under Wine: qshm's lock against the raw WaitForSingleObject +
# ReleaseSemaphore pair, the in-segment lock of a mapped file, and the life cycle against Qt
# 6.11 and Qt 5.15 for Windows (through PyQt). Wine's figures are not Windows figures: compare
# ratios only. The three programs run in turn, ROUNDS times (default 3), so that a machine
# whose load drifts weighs on all of them alike; the summary gives each figure's median over
# the rounds and the ratios. Needs ci/wine.sh's environment (run it first). BENCHMARKS.md
# quotes the summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=/dev/null
source target/wine/env.sh
rounds="${ROUNDS:-3}"
script='Z:'"$(pwd | tr / '\\')"'\benches\qt\pyqt_windows_bench.py'
cargo build --release --quiet --target x86_64-pc-windows-gnu --example bench_windows_lock
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for round in $(seq "$rounds"); do
    echo "== round $round of $rounds" >&2
    cargo run --release --quiet --target x86_64-pc-windows-gnu --example bench_windows_lock | tee -a "$log"
    for v in 6 5; do
        var="QSHM_WIN_PYTHON_QT$v"
        # Wine's CPython needs pipes or /dev/null as its std handles.
        /usr/lib/wine/wine64 "${!var}" "$script" "$v" </dev/null 2>&1 | tr -d '\r' | tee -a "$log"
    done
done
python3 - "$log" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(.+): ([0-9.]+) ns/iter$", line.strip())
    if m:
        runs.setdefault(m.group(1), []).append(float(m.group(2)))
med = {k: statistics.median(v) for k, v in runs.items()}
def get(prefix):
    return next(v for k, v in med.items() if k.startswith(prefix))
print("\nmedians over %d rounds (ns/iter):" % max(len(v) for v in runs.values()))
for k, v in med.items():
    print("  %-58s %10.0f" % (k, v))
raw = get("raw WaitForSingleObject")
print("\nratios:")
print("  qshm lock+unlock / raw pair:          %.2fx" % (get("qshm SharedMemory::lock()") / raw))
print("  Qt 6.11 lock+unlock / raw pair:       %.2fx" % (get("Qt 6.11.2 lock()") / raw))
print("  Qt 5.15 lock+unlock / raw pair:       %.2fx" % (get("Qt 5.15.2 lock()") / raw))
print("  qshm SystemSemaphore / raw pair:      %.2fx" % (get("qshm SystemSemaphore") / raw))
print("  qshm mapped lock+unlock / raw pair:   %.4fx" % (get("qshm mapped lock()") / raw))
for what, q in (("create(4096) + detach", "qshm create(4096) + detach"), ("attach + detach", "qshm attach + detach")):
    ours = get(q)
    print("  qshm %-22s / Qt 6.11: %.2fx, / Qt 5.15: %.2fx" % (what, ours / get("Qt 6.11.2 " + what.split(" (")[0]), ours / get("Qt 5.15.2 " + what.split(" (")[0])))
PY
