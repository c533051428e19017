#!/usr/bin/env bash
# Every Linux that Qt runs on, beyond x86_64 glibc: for each target, clippy -D warnings on
# the library and its tests, then the conformance, semaphore, mapped, POSIX and
# reliability suites, run for real: i686 glibc and x86_64 musl natively (an x86_64 kernel
# runs both), aarch64 and armv7 glibc under qemu-user, registered with binfmt_misc so that
# the child processes the tests start run under qemu too. Qt interop stays on x86_64 (its
# tests say so where they are skipped). Installs what it needs (Debian's cross compilers,
# the target C libraries, qemu-user-static; rustup targets). Called by ci/test.sh.
#
#   ci/cross.sh                                  # every target
#   QSHM_CROSS_TARGETS=aarch64-unknown-linux-gnu ci/cross.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

targets="${QSHM_CROSS_TARGETS:-i686-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf}"
suites=(--lib --test conformance --test semaphore --test mapped --test posix --test reliability --test notify --test queue --test cell)

started=$SECONDS
stage() { printf '\n== cross: %s (at %ds)\n' "$*" "$((SECONDS - started))" >&2; }

# Debian packages, installed only when missing.
need=()
want() { dpkg -s "$1" >/dev/null 2>&1 || need+=("$1"); }
for target in $targets; do
    case "$target" in
    i686-unknown-linux-gnu) want gcc-i686-linux-gnu; want libc6-dev-i386-cross; want libc6-i386; want lib32gcc-s1 ;;
    aarch64-unknown-linux-gnu) want gcc-aarch64-linux-gnu; want libc6-dev-arm64-cross; want libc6:arm64; want libgcc-s1:arm64; want qemu-user-static ;;
    armv7-unknown-linux-gnueabihf) want gcc-arm-linux-gnueabihf; want libc6-dev-armhf-cross; want libc6:armhf; want libgcc-s1:armhf; want qemu-user-static ;;
    esac
done
if [ ${#need[@]} -gt 0 ]; then
    stage "installing ${need[*]}"
    # The ARM C libraries as Debian multiarch packages put the dynamic loaders where the
    # binaries look for them (/lib/ld-linux-*.so), so qemu needs no QEMU_LD_PREFIX (which
    # would also redirect every absolute path the tests use, "/" included).
    dpkg --add-architecture arm64
    dpkg --add-architecture armhf
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# qemu-user for ARM binaries, child processes included.
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
    mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
fi
for arch in aarch64 arm; do
    case " $targets " in *" ${arch}"*) ;; *) continue ;; esac
    if [ ! -e "$binfmt/qemu-$arch" ]; then
        conf="/usr/lib/binfmt.d/qemu-$arch.conf"
        if [ -w "$binfmt/register" ] && [ -f "$conf" ]; then
            cat "$conf" > "$binfmt/register"
        else
            echo "cross: cannot register qemu-$arch with binfmt_misc (not root, or no binfmt_misc)" >&2
            exit 1
        fi
    fi
done

for target in $targets; do
    if ! rustup target list --installed | grep -qx "$target"; then
        rustup target add "$target" >&2
    fi
done

for target in $targets; do
    stage "$target: clippy"
    cargo clippy -p qshm --all-targets --target "$target" --quiet -- -D warnings
    stage "$target: build the suites"
    cargo test -p qshm --target "$target" "${suites[@]}" --no-run --quiet
    stage "$target: run the suites"
    case "$target" in
    aarch64-* | armv7-*)
        # Under emulation every process start and system call costs ~10× more: the
        # reliability suite runs as a smoke test there (each kill still lands at a random
        # point; set QSHM_CRASH_KILLS and the others for a longer campaign).
        QSHM_CRASH_KILLS="${QSHM_CRASH_KILLS:-60}" QSHM_LOAD_INCREMENTS="${QSHM_LOAD_INCREMENTS:-20000}" \
            QSHM_CHURN_SECONDS="${QSHM_CHURN_SECONDS:-5}" \
            cargo test -p qshm --target "$target" "${suites[@]}"
        ;;
    *) cargo test -p qshm --target "$target" "${suites[@]}" ;;
    esac
done
stage "done"
