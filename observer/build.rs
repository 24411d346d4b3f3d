//! Builds the eBPF object (the observer-ebpf crate for bpfel-unknown-none, with the stable
//! toolchain and `-Z build-std=core` unlocked by RUSTC_BOOTSTRAP for this nested build only) and
//! leaves it in OUT_DIR for `include_bytes_aligned!`. Silent on success; on failure the nested
//! build's output is shown.
use std::{path::PathBuf, process::Command};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    for path in [
        "../observer-ebpf/src",
        "../observer-ebpf/Cargo.toml",
        "../observer-ebpf/build.rs",
        "../observer-common/src",
        "../observer-common/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", manifest.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=OBSERVER_EBPF_TOOLCHAIN");
    let toolchain = std::env::var("OBSERVER_EBPF_TOOLCHAIN").unwrap_or_else(|_| "stable".into());
    let target_dir = out_dir.join("ebpf-target");
    // `rustup run` picks the toolchain's own cargo and rustc, whatever RUSTC this build runs with.
    let mut cmd = Command::new("rustup");
    cmd.args(["run", &toolchain, "cargo", "build", "--package", "observer-ebpf", "--bins", "--release"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core", "--target-dir"])
        .arg(&target_dir)
        .current_dir(manifest.join(".."))
        .env("RUSTC_BOOTSTRAP", "1")
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            ["--cfg=bpf_target_arch=\"x86_64\"", "-Cdebuginfo=2", "-Clink-arg=--btf"].join("\x1f"),
        );
    for key in ["RUSTC", "RUSTC_WORKSPACE_WRAPPER", "RUSTFLAGS", "CARGO_TARGET_DIR"] {
        cmd.env_remove(key);
    }
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            println!("cargo:warning=cannot run rustup to build the eBPF object: {e}; run `cargo xtask setup`");
            std::process::exit(1);
        }
    };
    if !output.status.success() {
        for line in
            String::from_utf8_lossy(&output.stderr).lines().chain(String::from_utf8_lossy(&output.stdout).lines())
        {
            println!("cargo:warning={line}");
        }
        println!("cargo:warning=building the eBPF object failed; `cargo xtask setup` installs rust-src, LLVM 22 and bpf-linker");
        std::process::exit(1);
    }
    let object = target_dir.join("bpfel-unknown-none/release/observer");
    std::fs::copy(&object, out_dir.join("observer")).unwrap_or_else(|e| panic!("copying {}: {e}", object.display()));
}
