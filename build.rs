//! The platform gate: the one place that decides which backend set a target gets.
//!
//! Emits cfg aliases that the code uses instead of raw `target_os`/`target_env` checks:
//!
//! | cfg | targets | what they get |
//! |---|---|---|
//! | `qshm_linux` | Linux with glibc or musl | System V, POSIX, `mapped`, `inspect` |
//! | `qshm_libc = "glibc64"` | 64-bit glibc | the lock's owner record in the tail of `sem_t` |
//! | `qshm_libc = "glibc32"` | 32-bit glibc | the record beside the 16-byte `sem_t` |
//! | `qshm_libc = "musl"` | musl | the record in the tail of musl's `sem_t` |
//! | `qshm_unix_other` | other Unix (FreeBSD, Apple, other Linux libcs, …) | key rules and `inspect` stubs |
//! | `qshm_sysv_only` | macOS and FreeBSD (besides `qshm_unix_other`) | the System V backend, built with `qshm_portable` |
//! | `qshm_posix_portable` | macOS, iOS and FreeBSD; Linux with `--cfg qshm_portable` | the portable POSIX backend (`sys/unix/posix_portable`) for POSIX realtime keys |
//! | `qshm_portable` | macOS, iOS and FreeBSD; Linux with `RUSTFLAGS="--cfg qshm_portable"` (`ci/portable.sh`) | no `semtimedop`, `sem_timedwait`, futex, `O_TMPFILE`, `mknodat`, `/proc`: the fallbacks of `sys/portable.rs` |
//! | `qshm_mapped_unix` | Linux, macOS, iOS and FreeBSD | `qshm::mapped` (its queue and cell) on Unix: Linux's `flock` and open-file-description locks, or, with `qshm_posix_portable`, classic record locks |
//! | `qshm_memfd` | Linux and FreeBSD | `memfd_create` and file seals (`F_ADD_SEALS`) for `qshm::mapped` |
//! | `qshm_freebsd` | FreeBSD | `_umtx_op` for sleeping on a shared word (`sys/wait_word.rs`) |
//! | `qshm_windows` | Windows | the Windows backend (named sections, semaphores, mutexes) |
//! | `qshm_none` | everything else (wasm, …) | key rules; every operation `Unsupported` |
//!
//! Exactly one of `qshm_linux`, `qshm_unix_other`, `qshm_windows`, `qshm_none` is set;
//! `qshm_apple` is set besides on Apple targets, whose key names follow Apple's rules, and
//! `qshm_macos` on macOS, the one Apple platform where an application may be unsandboxed.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(qshm_linux)");
    println!("cargo:rustc-check-cfg=cfg(qshm_unix_other)");
    println!("cargo:rustc-check-cfg=cfg(qshm_windows)");
    println!("cargo:rustc-check-cfg=cfg(qshm_none)");
    println!("cargo:rustc-check-cfg=cfg(qshm_apple)");
    println!("cargo:rustc-check-cfg=cfg(qshm_macos)");
    println!("cargo:rustc-check-cfg=cfg(qshm_sysv_only)");
    println!("cargo:rustc-check-cfg=cfg(qshm_posix_portable)");
    println!("cargo:rustc-check-cfg=cfg(qshm_mapped_unix)");
    println!("cargo:rustc-check-cfg=cfg(qshm_memfd)");
    println!("cargo:rustc-check-cfg=cfg(qshm_freebsd)");
    // The portable-Unix test mode: `RUSTFLAGS="--cfg qshm_portable"` (ci/test.sh), the Linux
    // build without the Linux-only calls macOS and FreeBSD lack (sys/portable.rs).
    println!("cargo:rustc-check-cfg=cfg(qshm_portable)");
    println!("cargo:rustc-check-cfg=cfg(qshm_libc, values(\"glibc64\", \"glibc32\", \"musl\"))");
    // docs.rs builds with `--cfg docsrs` (Cargo.toml: package.metadata.docs.rs), which
    // turns on the `doc(cfg)` badges of platform-only items.
    println!("cargo:rustc-check-cfg=cfg(docsrs)");

    let var = |name: &str| env::var(name).unwrap_or_default();
    let os = var("CARGO_CFG_TARGET_OS");
    let libc_env = var("CARGO_CFG_TARGET_ENV");
    let width = var("CARGO_CFG_TARGET_POINTER_WIDTH");
    let unix = var("CARGO_CFG_TARGET_FAMILY")
        .split(',')
        .any(|family| family == "unix");

    let libc = match (os.as_str(), libc_env.as_str(), width.as_str()) {
        ("linux", "gnu", "64") => Some("glibc64"),
        ("linux", "gnu", "32") => Some("glibc32"),
        ("linux", "musl", _) => Some("musl"),
        _ => None,
    };
    if var("CARGO_CFG_TARGET_VENDOR") == "apple" {
        // Apple's naming rules for keys (whatever backend the target gets).
        println!("cargo:rustc-cfg=qshm_apple");
        if os == "macos" {
            // Only macOS asks whether the application is sandboxed (Qt takes every other
            // Apple platform for sandboxed).
            println!("cargo:rustc-cfg=qshm_macos");
        }
    }
    match libc {
        Some(libc) => {
            println!("cargo:rustc-cfg=qshm_linux");
            println!("cargo:rustc-cfg=qshm_mapped_unix");
            println!("cargo:rustc-cfg=qshm_memfd");
            println!("cargo:rustc-cfg=qshm_libc=\"{libc}\"");
            // The portable-Unix test mode (`RUSTFLAGS="--cfg qshm_portable"`, which cargo
            // shows build scripts as CARGO_CFG_QSHM_PORTABLE): POSIX keys take the backend
            // macOS, iOS and FreeBSD take.
            if env::var_os("CARGO_CFG_QSHM_PORTABLE").is_some() {
                println!("cargo:rustc-cfg=qshm_posix_portable");
            }
        }
        None if unix => {
            println!("cargo:rustc-cfg=qshm_unix_other");
            let apple = var("CARGO_CFG_TARGET_VENDOR") == "apple";
            if os == "macos" || os == "freebsd" {
                // The System V backend, built as the portable mode tests it on Linux (no
                // semtimedop: timed waits poll). iOS has no System V in its sandbox.
                println!("cargo:rustc-cfg=qshm_sysv_only");
            }
            if apple || os == "freebsd" {
                // POSIX realtime keys: the portable POSIX backend, as the portable mode
                // runs it on Linux.
                println!("cargo:rustc-cfg=qshm_posix_portable");
                println!("cargo:rustc-cfg=qshm_portable");
                // `qshm::mapped` with classic record locks (`sys/unix/record_lock.rs`).
                println!("cargo:rustc-cfg=qshm_mapped_unix");
                if os == "freebsd" {
                    // memfd_create (over shm_open(SHM_ANON)) and file seals; `_umtx_op` to
                    // sleep on a shared word.
                    println!("cargo:rustc-cfg=qshm_memfd");
                    println!("cargo:rustc-cfg=qshm_freebsd");
                }
            }
        }
        None if os == "windows" => println!("cargo:rustc-cfg=qshm_windows"),
        None => println!("cargo:rustc-cfg=qshm_none"),
    }
}
