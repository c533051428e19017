#!/usr/bin/env bash
# The Python package on aarch64, run for real: builds the package's abi3 wheel for
# aarch64-unknown-linux-gnu (`maturin build --features abi3 --target`, a
# manylinux_2_34_aarch64 wheel) and runs the whole pytest suite with it on Debian's aarch64
# CPython (3.11) under qemu-user, with the aarch64 numpy wheel from PyPI, and against the
# x86_64 PyQt6 peer ($QSHM_PYTHON): the Qt interop tests then cross architectures as well
# as processes. Child processes (the tests start many) run under qemu through binfmt_misc.
#
# Needs what ci/cross.sh sets up (the aarch64 Rust target and linker, libc6:arm64 and
# libgcc-s1:arm64, qemu-user registered with binfmt_misc) and ci/python.sh's venv (maturin,
# pip), so ci/test.sh runs it after both. Debian's aarch64 CPython and the libraries it
# needs beyond those are downloaded (`apt-get download`) and unpacked into the target
# directory, not installed: nothing outside the checkout changes.
#
#   ci/python-cross.sh            # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
host_venv="$CARGO_TARGET_DIR/python-venv"
root="$CARGO_TARGET_DIR/aarch64-python"
target=aarch64-unknown-linux-gnu

for need in "$host_venv/bin/maturin" /proc/sys/fs/binfmt_misc/qemu-aarch64 /lib/ld-linux-aarch64.so.1; do
    if [ ! -e "$need" ]; then
        echo "python-cross: $need is missing: run ci/python.sh and ci/cross.sh first" >&2
        exit 1
    fi
done

# Debian's CPython for aarch64 (this Debian's python3: 3.11 on Debian 12, which the
# abi3-py311 wheel takes, as it takes any later one) and the shared libraries it and numpy
# load that ci/cross.sh did not install. `.unpacked` marks a complete unpack.
pyver="$(apt-cache depends python3-minimal:arm64 2>/dev/null |
    sed -n 's/.*Depends: python\(3\.[0-9]*\)-minimal.*/\1/p' | head -n 1)"
pyver="${pyver:-3.11}"
debs=(
    "python$pyver-minimal:arm64" "libpython$pyver-minimal:arm64" "libpython$pyver-stdlib:arm64"
    zlib1g:arm64 libexpat1:arm64 libffi8:arm64 libbz2-1.0:arm64 liblzma5:arm64
    libuuid1:arm64 libstdc++6:arm64
)
if [ "$(cat "$root/.unpacked" 2>/dev/null)" != "${debs[*]}" ]; then
    rm -rf "$root"
    mkdir -p "$root/debs"
    download() { (cd "$root/debs" && apt-get download -qq "${debs[@]}" 2> >(grep -v 'unsandboxed' >&2)); }
    if ! download; then
        # Lists older than the archive (a security update replaced a version): refresh.
        apt-get update -qq >&2
        download
    fi
    for deb in "$root"/debs/*.deb; do
        dpkg-deb -x "$deb" "$root"
    done
    rm -rf "$root/debs"
    echo "${debs[*]}" > "$root/.unpacked"
fi
python="$root/usr/bin/python$pyver"
# Only the aarch64 processes find anything here (an x86_64 process, the Qt peer, passes
# over libraries of another machine).
export LD_LIBRARY_PATH="$root/usr/lib/aarch64-linux-gnu:$root/lib/aarch64-linux-gnu"

rm -rf "$root/wheel"
(cd python && "$host_venv/bin/maturin" build --quiet --release --features abi3 \
    --target "$target" --out "$root/wheel" >&2)
wheels=("$root"/wheel/qshm-*-abi3-*_aarch64.whl)
wheel="${wheels[0]}"

# A venv of the aarch64 interpreter (no pip of its own: the host's pip fills it, asking
# PyPI for aarch64 wheels).
"$python" -m venv --without-pip --clear "$root/venv"
site="$("$root/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
platforms=()
for tag in manylinux_2_34 manylinux_2_28 manylinux_2_17 manylinux2014; do
    platforms+=(--platform "${tag}_aarch64")
done
"$host_venv/bin/python" -m pip install --quiet --target "$site" "${platforms[@]}" \
    --python-version "$pyver" --implementation cp --only-binary=:all: \
    pytest pytest-timeout pytest-xdist numpy "$wheel" >&2

"$root/venv/bin/python" -c 'import platform, qshm; assert platform.machine() == "aarch64", platform.machine(); print("python-cross:", platform.python_version(), platform.machine(), qshm._qshm.__file__)' >&2

# From python/ so that pytest.ini applies; -P: the source tree's python/qshm (no extension
# in it) is not put on sys.path, the installed aarch64 package is imported.
if [ -z "${QSHM_PYTHON:-}" ] && [ -x .venv/bin/python ]; then
    QSHM_PYTHON="$PWD/.venv/bin/python"
fi
export QSHM_PYTHON="${QSHM_PYTHON:-}"
(cd python && "$root/venv/bin/python" -P -m pytest -q -n 2 "$@")
