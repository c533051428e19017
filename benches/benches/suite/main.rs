//! The benchmark suite of BENCHMARKS.md: qshm's locks and segments next to the raw system
//! calls they wrap, Qt's `QSharedMemory` (measured by `benches/qt/qt_bench.cpp`, run by
//! `benches/run.sh`), the Rust peers (`shared_memory` + `raw_sync`), glibc's robust mutex
//! and the physical floor (a bare CAS lock, a futex ping-pong, `memcpy`).
//!
//! `cargo bench -p qshm-benches` runs it all; `benches/run.sh` also runs the Qt side and
//! writes BENCHMARKS.md from criterion's `sample.json` files. Benchmarks that need a second
//! process re-run this executable with `QSHM_BENCH_CHILD=<role>` (see [`common`]).
#![allow(unsafe_code, missing_docs)] // FFI to libc, the C side and raw shared memory

mod common;
mod lifecycle;
mod patterns;
mod uncontended;
mod wakeup;
mod xproc;

use criterion::Criterion;

fn main() {
    if let Some(role) = common::child_role() {
        common::become_child();
        if patterns::is_child(&role) {
            patterns::child(&role);
        } else {
            match role.strip_prefix("wakeup/") {
                Some(id) => wakeup::child(id),
                None => xproc::child(&role),
            }
        }
        return;
    }
    // The whole suite takes about ten minutes; a deadlock fails it instead of hanging.
    common::watchdog(std::time::Duration::from_secs(3600));
    let mut c = Criterion::default().configure_from_args();
    uncontended::benches(&mut c);
    lifecycle::benches(&mut c);
    xproc::benches(&mut c);
    patterns::benches(&mut c);
    wakeup::benches(&mut c);
    c.final_summary();
}
