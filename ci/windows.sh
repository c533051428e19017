#!/usr/bin/env bash
# Windows, run for real under Wine: clippy -D warnings on the library and its tests for
# x86_64-pc-windows-gnu, then the trait-level suite (--lib), the SharedMemory conformance
# suite, the Windows suite (TerminateProcess of lock holders, errors, sizes), the mapped
# segments' Windows suite, change notification, the queue and the cell across processes
# (tests/queue.rs, tests/cell.rs; their memfd and C-peer tests are Linux-only) and interop
# with real Qt 6.11.2 and Qt 5.15.2 for Windows (tests/qt_windows.rs), each test process and
# each Qt peer a Wine process; then the qshm CLI's tests (cli/tests/portable.rs, Ctrl-C).
# ci/wine.sh installs Wine, mingw-w64, the Windows CPython and the PyQt wheels into
# target/wine (nothing outside the checkout). Called by ci/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS
stage() { printf '\n== windows: %s (at %ds)\n' "$*" "$((SECONDS - started))" >&2; }

stage "setup (ci/wine.sh)"
ci/wine.sh >&2
# shellcheck source=/dev/null
source target/wine/env.sh
target=x86_64-pc-windows-gnu
suites=(-p qshm --target "$target" --features async --lib --test conformance --test windows --test mapped_windows --test qt_windows --test notify --test notify_async --test queue --test cell)

stage "clippy"
cargo clippy -p qshm -p qshm-cli --all-targets --target "$target" --quiet -- -D warnings
cargo clippy -p qshm --all-targets --features async --target "$target" --quiet -- -D warnings
stage "build the suites"
cargo test "${suites[@]}" --no-run --quiet
cargo test -p qshm-cli --target "$target" --no-run --quiet
stage "run the suites under Wine"
cargo test "${suites[@]}"
stage "the qshm CLI under Wine"
cargo test -p qshm-cli --target "$target"
stage "done"
