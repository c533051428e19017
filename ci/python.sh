#!/usr/bin/env bash
# The Python package's tests: makes a venv inside the checkout (target/python-venv), installs
# maturin, pytest (with pytest-timeout and pytest-xdist) and numpy from PyPI, builds and
# installs the package exactly as a user would from a checkout (`pip install ./python`: one
# release build of the extension), and runs python/tests with pytest. The Qt peer's
# interpreter (PyQt6) is $QSHM_PYTHON (ci/test.sh exports it), else .venv/bin/python;
# without it the Qt interop tests skip. Then the benchmarks once in quick mode (they only
# have to run: the figures in BENCHMARKS.md come from python/bench/bench.py in full mode).
#
#   ci/python.sh                # everything
#   ci/python.sh -k qt          # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
venv="$CARGO_TARGET_DIR/python-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# The extension crate is its own workspace (it needs a Python to build): format and lints.
cargo fmt --manifest-path python/Cargo.toml -- --check
cargo clippy --manifest-path python/Cargo.toml --all-targets --quiet -- -D warnings

"$venv/bin/python" -m pip install --quiet --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet maturin pytest pytest-timeout pytest-xdist numpy >&2
# From the checkout, as the issue's acceptance asks; --force-reinstall: rebuild this tree.
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps ./python >&2

if [ -z "${QSHM_PYTHON:-}" ] && [ -x .venv/bin/python ]; then
    QSHM_PYTHON="$PWD/.venv/bin/python"
fi
export QSHM_PYTHON="${QSHM_PYTHON:-}"

# From python/ so that pytest.ini applies; the installed package is imported (python/qshm,
# the source tree without the extension, is not on sys.path: pytest is run as a program).
(cd python && "$venv/bin/pytest" -q -n auto "$@")

PYTHON_BENCH_QUICK=1 "$venv/bin/python" python/bench/bench.py > /dev/null
