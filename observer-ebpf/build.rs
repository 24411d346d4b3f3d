//! Rebuilds the eBPF object when bpf-linker changes (it is the linker, cargo does not track it).
use which::which;

fn main() {
    if let Ok(bpf_linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", bpf_linker.display());
    }
}
