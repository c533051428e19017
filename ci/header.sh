#!/usr/bin/env bash
# include/qshm.h compiles cleanly (-Wall -Wextra -Wpedantic -Werror) and links as C99, C11
# and C17, each strict (-std=cNN) with _DEFAULT_SOURCE and with _GNU_SOURCE, as the default
# GNU dialects with no feature macro, and as C++11 and C++17; strict C without a feature
# macro stops at the header's own #error, which names what to define (the header defines no
# feature macro itself). Uses $CC and $CXX (cc, c++), and clang/clang++ too when installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
src=tests/c/header_check.c
warn=(-Wall -Wextra -Wpedantic -Werror -pthread -Iinclude)
checks=0

ccs=("${CC:-cc}")
cxxs=("${CXX:-c++}")
if command -v clang > /dev/null && [ "${CC:-cc}" != clang ]; then ccs+=(clang); fi
if command -v clang++ > /dev/null && [ "${CXX:-c++}" != clang++ ]; then cxxs+=(clang++); fi

build() { # compiler, flags...: compile and link the check program
    local compiler="$1"
    shift
    if ! "$compiler" "$@" "${warn[@]}" -o "$out/check" 2> "$out/log"; then
        echo "qshm.h: $compiler $* failed:" >&2
        cat "$out/log" >&2
        exit 1
    fi
    checks=$((checks + 1))
}

for cc in "${ccs[@]}"; do
    for std in c99 c11 c17; do
        build "$cc" -std="$std" -D_DEFAULT_SOURCE -x c "$src"
        build "$cc" -std="$std" -DQSHM_CHECK_ASKED_GNU -D_GNU_SOURCE -x c "$src"
        build "$cc" -std="gnu${std#c}" -x c "$src"
        # Strict ISO C without a feature macro: the header's #error, not a stray message.
        if "$cc" -std="$std" "${warn[@]}" -fsyntax-only -x c "$src" 2> "$out/log"; then
            echo "qshm.h: $cc -std=$std without _DEFAULT_SOURCE compiled; expected its #error" >&2
            exit 1
        fi
        grep -q 'qshm.h needs syscall() and O_CLOEXEC' "$out/log" || {
            echo "qshm.h: $cc -std=$std without _DEFAULT_SOURCE failed without the header's #error:" >&2
            cat "$out/log" >&2
            exit 1
        }
        checks=$((checks + 1))
    done
done
for cxx in "${cxxs[@]}"; do
    for std in c++11 c++17; do
        build "$cxx" -std="$std" -x c++ "$src"
        build "$cxx" -std="$std" -DQSHM_CHECK_ASKED_GNU -D_GNU_SOURCE -x c++ "$src"
    done
done
echo "include/qshm.h: $checks compiler configurations checked (${ccs[*]}; ${cxxs[*]})" >&2
