#!/usr/bin/env bash
# The README's test command: installs what the tests need (PyQt6/PyQt5 into .venv, the
# Debian libraries QtCore needs, cross compilers and qemu-user for ci/cross.sh, Wine and
# mingw-w64 and the Windows PyQt wheels for ci/windows.sh), checks
# formatting, lints and docs, packs the two published crates (cargo package), compiles
# include/qshm.h in every C and C++ dialect (ci/header.sh), runs every test of the
# workspace and every example (ci/examples.sh), builds the Python package and runs its
# tests (ci/python.sh), runs the library's suites on every other
# Linux target (ci/cross.sh) and the Python package's on aarch64 (ci/python-cross.sh), and
# fails if the run left any IPC object behind. Prints each stage's time.
#
#   ci/test.sh                 # everything
#   ci/test.sh --test qt_interop     # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Each stage says when it starts, and how long the one before it took.
started=$SECONDS
last=$SECONDS
last_name=""
step() {
    if [ -n "$last_name" ]; then
        printf '== %s: %ds\n' "$last_name" "$((SECONDS - last))" >&2
    fi
    last=$SECONDS
    last_name="$*"
    printf '\n== %s (at %ds)\n' "$*" "$((SECONDS - started))" >&2
}

step "Qt peers (PyQt6 for Qt 6.11, PyQt5 for Qt 5.15)"
QSHM_PYTHON="$(ci/setup-venv.sh)"
export QSHM_PYTHON
"$QSHM_PYTHON" -c 'import PyQt6.QtCore as a, PyQt5.QtCore as b; print("Qt", a.qVersion(), "and Qt", b.qVersion())'

# Everything a test could leave: System V segments and semaphores, POSIX objects, key files.
snapshot() {
    ipcs -m 2>/dev/null | awk '$1 ~ /^0x/ {print "shm", $1, $2}'
    ipcs -s 2>/dev/null | awk '$1 ~ /^0x/ {print "sem", $1, $2}'
    # iceoryx2 (a peer of the queue benchmark) keeps one 16-byte global management object
    # in /dev/shm for every later iceoryx2 process, by design: not a leak of ours.
    ls -1 /dev/shm 2>/dev/null | { grep -v '^iox2_.*\.global_mgmt$' || true; } | sed 's|^|/dev/shm/|'
    ls -1d "${TMPDIR:-/tmp}"/qipc_* /tmp/qipc_* "${TMPDIR:-/tmp}"/qshm-psx-* 2>/dev/null || true
    ls -1d /tmp/runtime-*/qshm* "${XDG_RUNTIME_DIR:-/nonexistent}"/qshm* /tmp/qshmtest* 2>/dev/null || true
}
before="$(snapshot | sort -u)"

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p qshm --all-targets --features bytemuck,async -- -D warnings

step "other targets: FreeBSD, macOS, iOS (library and CLI) and wasm (library); Windows: ci/windows.sh"
# Built only: no Apple or FreeBSD machine runs them. Their key rules run in the Linux unit
# tests (src/key/apple.rs); what their backends would lack runs in the portable stage below.
for target in x86_64-unknown-freebsd x86_64-apple-darwin aarch64-apple-darwin aarch64-apple-ios wasm32-unknown-unknown; do
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        rustup target add "$target" >&2 || { echo "warning: cannot install $target; not checked" >&2; continue; }
    fi
    case "$target" in
    wasm32-*) cargo clippy -p qshm --lib --target "$target" --quiet -- -D warnings ;;
    *) cargo clippy -p qshm -p qshm-cli --target "$target" --quiet -- -D warnings ;;
    esac
    # macOS and FreeBSD compile the System V and the portable POSIX backend (src/sys/unix),
    # iOS the portable POSIX one, not the unsupported stub, and all three `qshm::mapped` with
    # record locks (FreeBSD with memfds and `_umtx_op`): the build script's cfgs for the
    # target, as rustc receives them.
    case "$target" in
    *-apple-darwin | *-freebsd | *-apple-ios)
        cfgs="$(cargo rustc -p qshm --lib --target "$target" --quiet -- --print cfg)"
        case "$target" in
        *-ios) wanted=(qshm_posix_portable qshm_mapped_unix) ;;
        *-freebsd) wanted=(qshm_sysv_only qshm_posix_portable qshm_mapped_unix qshm_memfd qshm_freebsd) ;;
        *) wanted=(qshm_sysv_only qshm_posix_portable qshm_mapped_unix) ;;
        esac
        for cfg in "${wanted[@]}"; do
            grep -qx "$cfg" <<< "$cfgs" || { echo "$target does not select $cfg" >&2; exit 1; }
        done
        # Its unit tests (the conformance suites among them) compile, ready to run there.
        cargo clippy -p qshm --lib --profile test --target "$target" --quiet -- -D warnings
        ;;
    esac
done

step "minimum supported Rust versions: 1.80 builds the library (with its futures), 1.85 the CLI (their rust-version)"
for pair in "1.80.0 qshm --lib --features=async" "1.85.0 qshm-cli --bins"; do
    read -r -a parts <<< "$pair"
    toolchain="${parts[0]}" package="${parts[1]}" what=("${parts[@]:2}")
    if rustup toolchain list 2>/dev/null | grep -q "^${toolchain//./\\.}" || rustup toolchain install "$toolchain" --profile minimal >&2; then
        CARGO_TARGET_DIR="target/msrv-$toolchain" cargo "+$toolchain" check -p "$package" "${what[@]}" --quiet
    else
        echo "warning: cannot install Rust $toolchain here; $package's MSRV not checked" >&2
    fi
done

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "packages: qshm and qshm-cli as crates.io would get them (cargo package, warning-free)"
# `cargo package` packs both crates and builds each from its packed sources alone. The CLI
# depends on `qshm = { version, path }`: since cargo 1.90, packaging both in one command
# resolves that version to the library just packed (a temporary local registry under
# target/package), so the CLI is verified offline against exactly what would be published,
# with nothing on crates.io. Any cargo warning (a stray target, missing metadata, a file
# outside `include`) fails the stage. --allow-dirty: it checks, it does not publish.
# Cargo takes a registry package of the same name and version for unchanged, in two places:
# - the rlib in the target directory: it gets its own, emptied first;
# - the sources cargo unpacked from that temporary registry into
#   $CARGO_HOME/registry/src/-<hash of the registry's path>/qshm-0.1.0, never unpacked again.
#   A second run from the same path (CI's checkout, a developer's tree) then verified the CLI
#   against the library of the first (CI failed so: `qshm::notify` not found). They are
#   removed before, and after, so that nothing of this stage stays outside the checkout.
cargo_registry_src="${CARGO_HOME:-$HOME/.cargo}/registry/src"
forget_packed() {
    rm -rf "$cargo_registry_src"/-*/qshm-[0-9]* "$cargo_registry_src"/-*/qshm-cli-[0-9]*
    rmdir --ignore-fail-on-non-empty "$cargo_registry_src"/-* 2>/dev/null || true
}
forget_packed
rm -rf target/package-verify
package_log="$(CARGO_TARGET_DIR=target/package-verify cargo package -p qshm -p qshm-cli --allow-dirty 2>&1)" || { printf '%s\n' "$package_log" >&2; forget_packed; exit 1; }
forget_packed
if grep -i '^warning' <<< "$package_log" >&2; then
    echo "cargo package warned (above)" >&2
    exit 1
fi
grep -E '^ *Packaged ' <<< "$package_log" >&2

step "include/qshm.h as C99, C11, C17, C++11 and C++17 (ci/header.sh)"
ci/header.sh

step "tests"
cargo test --workspace "$@"
# The typed views (feature `bytemuck`): their suite and their doctests.
cargo test -p qshm --features bytemuck --test views "$@"
cargo test -p qshm --features bytemuck --doc view
# The futures (feature `async`) under tokio: their suite and their doctests.
cargo test -p qshm --features async --test notify_async "$@"
cargo test -p qshm --features async --doc notify

step "portable-Unix mode: the suites without semtimedop, sem_timedwait and the futex, as macOS and FreeBSD lack them (ci/portable.sh)"
ci/portable.sh

step "examples, each across its processes (ci/examples.sh; the Qt one with \$QSHM_PYTHON)"
ci/examples.sh

step "python: the qshm package, pip install ./python and its pytest suite against PyQt6 (ci/python.sh)"
ci/python.sh

step "every other Linux target: i686 and musl natively, aarch64 and armv7 under qemu (ci/cross.sh)"
ci/cross.sh

step "python on aarch64: the package's aarch64 wheel and its pytest suite on Debian's aarch64 CPython under qemu, against the x86_64 PyQt6 peer (ci/python-cross.sh)"
ci/python-cross.sh

step "Windows under Wine: the library's suites, real Qt 6.11 and 5.15 for Windows, the CLI (ci/windows.sh)"
ci/windows.sh

step "benchmarks, once each (criterion --test; Qt's QSharedMemory program, quick mode)"
# Not timed: this proves every benchmark still runs across its processes, checks its
# counters and cleans up (the leak guard below covers it). Figures: benches/run.sh.
cargo bench -p qshm-benches --bench suite -- --test
QT_BENCH_QUICK=1 "$(benches/qt/build.sh)" > /dev/null
PYQT_BENCH_QUICK=1 "$QSHM_PYTHON" benches/qt/pyqt_bench.py > /dev/null

step "fuzzing, briefly (ci/fuzz.sh; FUZZ_SECONDS per target, 20 here)"
if rustup toolchain list 2>/dev/null | grep -q '^nightly' || rustup toolchain install nightly --profile minimal >&2; then
    FUZZ_SECONDS="${FUZZ_SECONDS:-20}" ci/fuzz.sh
    step "Miri over the pure logic (ci/miri.sh)"
    ci/miri.sh
else
    echo "warning: no nightly toolchain here; fuzzing and Miri skipped" >&2
fi

step "leak guard"
after="$(snapshot | sort -u)"
leaked="$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d')"
if [ -n "$leaked" ]; then
    echo "the test suite left these IPC objects behind:" >&2
    printf '  %s\n' "$leaked" >&2
    exit 1
fi
echo "no segment, semaphore or key file left behind" >&2
step "end"
