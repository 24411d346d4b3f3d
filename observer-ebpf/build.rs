//! Rebuilds the eBPF object when bpf-linker changes (it is the linker, cargo does not track it),
//! and declares the `bpf_target_arch` cfg that observer-build sets.
use which::which;

fn main() {
    // observer-build passes `--cfg bpf_target_arch="..."`; declare it so rustc does not warn.
    println!("cargo::rustc-check-cfg=cfg(bpf_target_arch, values(\"x86_64\", \"aarch64\", \"arm\", \"riscv64\", \"powerpc64\", \"s390x\", \"mips\", \"loongarch64\"))");
    if let Ok(bpf_linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", bpf_linker.display());
    }
}
