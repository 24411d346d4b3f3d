//! Builds the eBPF object with the stable toolchain and leaves it in OUT_DIR for embedding.
fn main() -> anyhow::Result<()> {
    // The eBPF target needs `-Z build-std=core`; RUSTC_BOOTSTRAP=1 unlocks it on stable for the
    // nested build only (aya-build reads it from here and passes it on).
    std::env::set_var("RUSTC_BOOTSTRAP", "1");
    let package = aya_build::Package { name: "observer-ebpf", root_dir: "../observer-ebpf", ..Default::default() };
    aya_build::build_ebpf([package], aya_build::Toolchain::Custom("stable"))
}
