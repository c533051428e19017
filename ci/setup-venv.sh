#!/usr/bin/env bash
# Creates or updates <repo>/.venv with pinned PyQt6 and PyQt5 wheels from PyPI,
# for the Qt interoperability tests (tests/qt/peer.py, tests/util/qt.rs).
#
#   ci/setup-venv.sh            # prints the venv's python path on stdout (last line)
#   QSHM_VENV=/some/dir ci/setup-venv.sh   # another location
#   PYTHON=python3.11 ci/setup-venv.sh     # another base interpreter
#
# Idempotent: when the venv already imports PyQt6.QtCore and PyQt5.QtCore at the
# pinned versions it only prints the path. Progress goes to stderr, so
#   QSHM_PYTHON="$(ci/setup-venv.sh)"
# works. As root on Debian it apt-get installs the few system libraries QtCore
# links against (and python3-venv) when they are missing.
set -euo pipefail

# Pinned versions: PyQt6 6.11 brings Qt 6.11, PyQt5 5.15 brings Qt 5.15.
PYQT6=6.11.0
PYQT6_QT6=6.11.2
PYQT6_SIP=13.13.0
PYQT5=5.15.11
PYQT5_QT5=5.15.19
PYQT5_SIP=12.20.0

# Debian packages that libQt6Core / libQt5Core (the wheels' own copies) link
# against: glib (libglib-2.0, libgthread-2.0), pcre2, zstd, zlib, libstdc++.
SYSTEM_PACKAGES=(libglib2.0-0 libpcre2-8-0 libzstd1 zlib1g libstdc++6)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${QSHM_VENV:-$repo/.venv}"
base_python="${PYTHON:-python3}"
py="$venv/bin/python"

log() { echo "setup-venv: $*" >&2; }

# True when the venv has both bindings at the pinned versions and QtCore loads.
venv_ok() {
    [ -x "$py" ] || return 1
    "$py" - "$PYQT6" "$PYQT6_QT6" "$PYQT5" "$PYQT5_QT5" <<'EOF' >/dev/null 2>&1
import sys
import PyQt6.QtCore as q6
import PyQt5.QtCore as q5
want = sys.argv[1:]
have = [q6.PYQT_VERSION_STR, q6.qVersion(), q5.PYQT_VERSION_STR, q5.qVersion()]
sys.exit(0 if have == want else 1)
EOF
}

apt_updated=0
apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        log "missing system packages: $* (not root or no apt-get: install them by hand)"
        return 0
    fi
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        apt_updated=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_system_packages() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    local missing=() p
    for p in "${SYSTEM_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
}

if venv_ok; then
    echo "$py"
    exit 0
fi

ensure_system_packages

# A venv whose interpreter no longer runs (moved, base python removed) or that
# has no pip (an interrupted creation) is rebuilt.
if [ -e "$venv" ] && ! "$py" -m pip --version >/dev/null 2>&1; then
    log "removing broken venv $venv"
    rm -rf "$venv"
fi

if [ ! -x "$py" ]; then
    log "creating venv $venv with $(command -v "$base_python")"
    if ! "$base_python" -m venv "$venv" >&2; then
        # Debian's system python needs python3-venv for ensurepip.
        rm -rf "$venv"
        apt_install python3-venv
        "$base_python" -m venv "$venv" >&2
    fi
fi

log "installing PyQt6==$PYQT6 (Qt $PYQT6_QT6) and PyQt5==$PYQT5 (Qt $PYQT5_QT5)"
"$py" -m pip install --disable-pip-version-check --no-input --quiet \
    --only-binary=:all: \
    "PyQt6==$PYQT6" "PyQt6-Qt6==$PYQT6_QT6" "PyQt6-sip==$PYQT6_SIP" \
    "PyQt5==$PYQT5" "PyQt5-Qt5==$PYQT5_QT5" "PyQt5-sip==$PYQT5_SIP" >&2

if ! venv_ok; then
    log "PyQt is installed but does not import at the pinned versions:"
    "$py" -c 'import PyQt6.QtCore as a, PyQt5.QtCore as b; print(a.PYQT_VERSION_STR, a.qVersion(), b.PYQT_VERSION_STR, b.qVersion())' >&2 || true
    exit 1
fi

echo "$py"
