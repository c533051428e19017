#!/usr/bin/env bash
# Builds benches/qt/qt_bench.cpp (a benchmark of Qt's own QSharedMemory)
# against Debian's Qt 6 (qt6-base-dev), installing the packages if missing.
#
# Usage: benches/qt/build.sh [OUTPUT]   (default: target/qt_bench in the repo root;
# a relative OUTPUT is taken relative to the caller's cwd). Works from any cwd.
# Prints the binary's absolute path as the last line of stdout; everything
# else goes to stderr. Skips compiling when the binary is newer than the source.
set -euo pipefail

out="${1:-}"
if [[ -n "$out" && "$out" != /* ]]; then
    out="$PWD/$out"
fi
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root="$PWD"
out="$(realpath -m "${out:-$root/target/qt_bench}")"
src="$root/benches/qt/qt_bench.cpp"
script="$root/benches/qt/build.sh"

if [[ -x "$out" && "$out" -nt "$src" && "$out" -nt "$script" ]]; then
    echo "qt_bench is up to date: $out" >&2
    echo "$out"
    exit 0
fi

multiarch() { gcc -print-multiarch 2>/dev/null || g++ -print-multiarch; }

have_qt() {
    command -v g++ >/dev/null 2>&1 || return 1
    command -v pkg-config >/dev/null 2>&1 || return 1
    pkg-config --exists Qt6Core 2>/dev/null && return 0
    [[ -f "/usr/include/$(multiarch)/qt6/QtCore/qsharedmemory.h" ]]
}

if ! have_qt; then
    pkgs=(qt6-base-dev g++ pkg-config)
    sudo=""
    if [[ "$(id -u)" -ne 0 ]]; then
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "installing ${pkgs[*]}" >&2
    if ! $sudo apt-get install -y --no-install-recommends "${pkgs[@]}" >&2; then
        $sudo apt-get update >&2
        $sudo apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
    fi
fi

if pkg-config --exists Qt6Core 2>/dev/null; then
    read -r -a qt_cflags <<<"$(pkg-config --cflags Qt6Core)"
    read -r -a qt_libs <<<"$(pkg-config --libs Qt6Core)"
else
    inc="/usr/include/$(multiarch)/qt6"
    qt_cflags=("-I$inc" "-I$inc/QtCore")
    qt_libs=(-lQt6Core)
fi

mkdir -p "$(dirname "$out")"
echo "compiling $src -> $out" >&2
g++ -std=c++17 -O2 -fPIC -Wall -Wextra "${qt_cflags[@]}" "$src" -o "$out.tmp.$$" "${qt_libs[@]}" >&2
mv -f "$out.tmp.$$" "$out"
echo "$out"
