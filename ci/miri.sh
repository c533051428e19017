#!/usr/bin/env bash
# Miri over the library's pure logic: key derivation and the text form (with Qt's golden
# rows), header validation of mapped segments, the /proc parsers, and the in-segment lock's
# protocol in private memory; then, in the portable mode, the polling wait on a lock word
# against another thread. Needs a nightly toolchain (installs the miri and rust-src
# components). The lock's protocol reads this thread's identity from /proc, and the wait
# reads the clock, hence -Zmiri-disable-isolation; nothing else here touches the operating
# system.
#
#   ci/miri.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rustup +nightly component add miri rust-src >&2
MIRIFLAGS="-Zmiri-disable-isolation" \
    cargo +nightly miri test -p qshm --lib -- \
    key:: header_validation lock_protocol_in_private_memory procfs:: \
    --skip never_panics_on_pieces_of_the_rows # quadratic: minutes under Miri; the fuzzers cover it
# The portable mode's polling waiter on a 64-bit lock word (macOS before 14.4 polls too),
# racing another thread's 64-bit compare-and-swap: Miri reports a racing mixed-size atomic
# access as undefined behaviour, which a 32-bit poll of the word's low half was.
MIRIFLAGS="-Zmiri-disable-isolation" RUSTFLAGS="--cfg qshm_portable" \
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/miri-portable" \
    cargo +nightly miri test -p qshm --lib -- wait_word::tests::a_lock_word
