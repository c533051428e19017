#!/usr/bin/env bash
# Miri over the library's pure logic: key derivation and the text form (with Qt's golden
# rows), header validation of mapped segments, the /proc parsers, and the in-segment lock's
# protocol in private memory. Needs a nightly toolchain (installs the miri and rust-src
# components). The lock's protocol reads this thread's identity from /proc, hence
# -Zmiri-disable-isolation; nothing else here touches the operating system.
#
#   ci/miri.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rustup +nightly component add miri rust-src >&2
MIRIFLAGS="-Zmiri-disable-isolation" \
    cargo +nightly miri test -p qshm --lib -- \
    key:: header_validation lock_protocol_in_private_memory procfs:: \
    --skip never_panics_on_pieces_of_the_rows # quadratic: minutes under Miri; the fuzzers cover it
