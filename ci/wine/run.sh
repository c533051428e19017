#!/usr/bin/env bash
# Cargo runner for x86_64-pc-windows-gnu: runs a Windows program under Wine 8.
#
#   CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=/path/to/ci/wine/run.sh  (target/wine/env.sh sets it)
#   ci/wine/run.sh PROGRAM.exe [ARGS...]
#
# - makes sure the prefix's system32 has bcryptprimitives.dll (ci/wine/bcryptprimitives.c,
#   built by ci/wine.sh): Rust's std needs its ProcessPrng, which Wine 8 lacks. In system32
#   every .exe finds it, child processes and programs outside target/ included;
# - keeps a wineserver for the prefix alive between runs (`wineserver -p`), and when it has
#   to start one, boots the Wine session (services.exe, explorer.exe, ...) with `wineboot`
#   on /dev/null first: those processes keep the std handles of the process that started
#   them for as long as the server lives, so a pipe given to the first program of a session
#   (`cargo test | tee log`) would otherwise not see EOF until the server exits;
# - gives the program std handles Wine's CPython accepts: a pipe, a terminal or /dev/null.
#   A regular file (`cargo test > log`) is passed through a pipe and `cat` instead (CPython
#   under Wine cannot start with a file as a std handle, and children inherit them);
# - passes the arguments through and exits with the program's exit code.
#
# Environment: WINEPREFIX (default target/wine/prefix), WINEDEBUG (default -all),
# QSHM_WINESERVER_PERSIST (seconds the wineserver outlives its last client, default 120).
# `WINEPREFIX=... /usr/lib/wine/wineserver -k` ends the server (and every program) at once.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
W=$(cd "$here/../.." && pwd)/target/wine
: "${WINEPREFIX:=$W/prefix}"
: "${WINEDEBUG:=-all}"
export WINEPREFIX WINEDEBUG
wine=/usr/lib/wine/wine64
wineserver=/usr/lib/wine/wineserver

if [ $# -lt 1 ]; then
    echo "usage: $0 PROGRAM.exe [ARGS...]" >&2
    exit 2
fi
if [ ! -f "$WINEPREFIX/system.reg" ] || [ ! -x "$wine" ]; then
    echo "$0: no Wine prefix at $WINEPREFIX (or no $wine): run ci/wine.sh first" >&2
    exit 2
fi
exe=$1
shift

dll=$W/dll/bcryptprimitives.dll
sys32=$WINEPREFIX/drive_c/windows/system32
if [ -f "$dll" ] && ! cmp -s "$dll" "$sys32/bcryptprimitives.dll"; then
    # Atomic: several runners may race here.
    cp "$dll" "$sys32/bcryptprimitives.dll.$$" && mv -f "$sys32/bcryptprimitives.dll.$$" "$sys32/bcryptprimitives.dll"
fi

# One runner at a time starts (and boots) the server; `wineserver -p` exits 0 when it
# started one, non-zero when one already runs for this prefix. Neither it nor the session
# may inherit the lock's descriptor (they would hold the lock for their lifetime).
(
    flock 9
    if "$wineserver" -p"${QSHM_WINESERVER_PERSIST:-120}" </dev/null >/dev/null 2>&1 9>&-; then
        "$wine" wineboot </dev/null >/dev/null 2>&1 9>&-
    fi
) 9>>"$W/run.lock"

is_file() { # is fd $1 a regular file? (bash's test fstat()s /dev/fd/N itself)
    [ -f "/dev/fd/$1" ]
}

in_file=0 out_file=0 err_file=0
is_file 0 && in_file=1
is_file 1 && out_file=1
is_file 2 && err_file=1

if [ $((in_file + out_file + err_file)) -eq 0 ]; then
    exec "$wine" "$exe" "$@"
fi

# Some handle is a regular file: interpose pipes. `exec N>` keeps our own copies.
if [ $err_file -eq 1 ]; then
    exec 3>&2
    exec 2> >(exec cat >&3)
    err_cat=$!
fi
if [ $in_file -eq 1 ]; then
    exec 4<&0
    exec 0< <(exec cat <&4)
fi
if [ $out_file -eq 1 ]; then
    "$wine" "$exe" "$@" | cat
    status=${PIPESTATUS[0]}
else
    "$wine" "$exe" "$@"
    status=$?
fi
if [ $err_file -eq 1 ]; then
    exec 2>&3 3>&- # closes the pipe: the stderr cat sees EOF
    wait "$err_cat" 2>/dev/null
fi
exit "$status"
