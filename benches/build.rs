//! Compiles the C side of the lock benchmarks (`c/bench.c`, through `include/qshm.h`) into
//! a static library, with the system C compiler (`$CC`, else `cc`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let obj = out.join("bench.o");
    let status = Command::new(&cc)
        .args(["-O2", "-fPIC", "-pthread", "-c", "-I"])
        .arg(root.join("../include"))
        .arg(root.join("c/bench.c"))
        .arg("-o")
        .arg(&obj)
        .status()
        .expect("run the C compiler");
    assert!(status.success(), "compiling c/bench.c failed");
    let status = Command::new("ar")
        .arg("rcs")
        .arg(out.join("libqshmbench.a"))
        .arg(&obj)
        .status()
        .expect("run ar");
    assert!(status.success(), "ar failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=qshmbench");
    println!("cargo:rerun-if-changed=c/bench.c");
    println!("cargo:rerun-if-changed=../include/qshm.h");
}
