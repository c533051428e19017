#!/usr/bin/env bash
# The long reliability campaign: tests/reliability.rs with many more kills, then its results
# written to RELIABILITY.md (kills survived, operations run, objects leaked, per backend).
#
#   ci/crash-campaign.sh                       # 10 000 kills per lock kind, 60 s of churn
#   KILLS=500 CHURN_SECONDS=10 ci/crash-campaign.sh
#
# The suite's own run (ci/test.sh) does 200 kills per lock kind; this is the same code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
kills="${KILLS:-10000}"
churn="${CHURN_SECONDS:-60}"
export QSHM_PYTHON="${QSHM_PYTHON:-$(ci/setup-venv.sh)}"
log="$(mktemp)"
start=$(date +%s)
QSHM_CRASH_KILLS="$kills" QSHM_CHURN_SECONDS="$churn" QSHM_LOAD_INCREMENTS=100000 \
    cargo test --release --test reliability -- --nocapture --test-threads=1 2>&1 | tee "$log" >&2
elapsed=$(( $(date +%s) - start ))
{
    echo "# Reliability campaign: last results"
    echo
    echo "Written by \`ci/crash-campaign.sh\` (KILLS=$kills, CHURN_SECONDS=$churn) on $(date -u +%Y-%m-%d),"
    echo "$(nproc) cores, $(uname -sr), in ${elapsed} s. What each line means: tests/reliability.rs."
    echo
    echo "| test | kind | figures |"
    echo "|---|---|---|"
    # With one test thread the harness prints "test name ... " on the same line first.
    grep -o 'RELIABILITY .*' "$log" | sed -E 's/^RELIABILITY ([a-z]+) kind=([a-z-]+) (.*)$/| \1 | \2 | \3 |/'
    echo
    echo "Two thirds of the workers run in other namespaces: one in three under \`unshare --pid --fork"
    echo "--mount-proc\` (another PID namespace with its own /proc, as a container sharing /dev/shm and"
    echo "the IPC namespace), one in three under \`unshare --time --boottime 100000\`;"
    echo "\`killed_in_other_namespaces\` counts the kills that hit those. \`double_holders\` counts the"
    echo "times a holder found another inside the lock (each names itself in the segment on entry and"
    echo "checks on leaving that nobody else did meanwhile): the campaign fails unless it is 0."
    echo
    echo "\`survived\` counts kills after which the next process got the lock within 1 s (100 ms for the"
    echo "in-segment lock of \`mapped\`) and found the segment usable or re-created it;"
    echo "\`owner_died_reported\` the kills the lock kind reported to the next holder (System V cannot:"
    echo "the kernel releases silently); \`leaked\` the objects left after the last user was killed and"
    echo "the clean-up path ran; \`slowest_recovery_ms\` the longest wait for the lock after a kill (a"
    echo "take-over inside \`attach\` is not counted there); \`unrecognised_deaths\` the POSIX holders"
    echo "killed in the few instructions between taking the semaphore and writing their owner record"
    echo "(the documented limit), which the campaign resolves as an operator would."
} > RELIABILITY.md
grep -q 'test result: ok' "$log" || { echo "the campaign failed: see the log above" >&2; exit 1; }
echo "RELIABILITY.md written" >&2
