//! Builds the eBPF object with observer-build (the same build `cargo xtask build-ebpf` runs) and
//! leaves it in OUT_DIR for `include_bytes_aligned!`. Silent on success; on failure the nested
//! build's output is shown. With `OBSERVER_SKIP_EBPF=1` it leaves an empty object instead, so
//! `cargo check`/`cargo clippy` work without bpf-linker (loading then fails with the fix).
use std::path::PathBuf;

use observer_build::{Build, INPUTS, OBJECT_NAME, SKIP_ENV, TOOLCHAIN_ENV};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let workspace = manifest.parent().expect("observer lives in the workspace").to_path_buf();
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let embedded = out_dir.join(OBJECT_NAME);
    println!("cargo:rerun-if-env-changed={SKIP_ENV}");
    println!("cargo:rerun-if-env-changed={TOOLCHAIN_ENV}");
    if std::env::var_os(SKIP_ENV).is_some_and(|v| v == "1") {
        std::fs::write(&embedded, b"").unwrap_or_else(|e| panic!("writing {}: {e}", embedded.display()));
        return;
    }
    for path in INPUTS {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").expect("set by cargo");
    let build = Build::new(&workspace, out_dir.join("ebpf-target"), arch);
    let object = match build.run() {
        Ok(object) => object,
        Err(e) => {
            for line in e.to_string().lines() {
                println!("cargo:warning={line}");
            }
            std::process::exit(1);
        }
    };
    std::fs::copy(&object, &embedded).unwrap_or_else(|e| panic!("copying {}: {e}", object.display()));
}
