//! Installing what a fresh machine lacks, each step skipped when already done: the rust-src
//! component, LLVM 22 development files, bpf-linker built against them, and a tracefs mount.
use std::{path::Path, process::Command};

use anyhow::{bail, Result};

use crate::run;

fn have(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn rust_src() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", "stable"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.starts_with("rust-src")));
    if !installed {
        eprintln!("setup: adding rust-src to the stable toolchain (eBPF builds core from source)");
        run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "stable"]))?;
    }
    Ok(())
}

fn llvm() -> Result<()> {
    if Path::new("/usr/lib/llvm-22/bin/llvm-config").exists() {
        return Ok(());
    }
    if !is_root() {
        bail!("llvm-22-dev is missing and installing it needs root: run `sudo apt-get install -y llvm-22-dev`");
    }
    eprintln!("setup: installing llvm-22-dev (bpf-linker links against LLVM 22, like rustc)");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "llvm-22-dev"]).env("DEBIAN_FRONTEND", "noninteractive"))
}

fn bpf_linker() -> Result<()> {
    if have("bpf-linker") {
        return Ok(());
    }
    llvm()?;
    eprintln!("setup: building bpf-linker 0.13 against LLVM 22 (about a minute)");
    run(Command::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--version",
            "0.13.0",
            "--no-default-features",
            "--features",
            "llvm-22",
            "--locked",
        ])
        .env("LLVM_PREFIX", "/usr/lib/llvm-22"))
}

fn tracefs() {
    if Path::new("/sys/kernel/tracing/events").is_dir() || !is_root() {
        return;
    }
    let _ = Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]).status();
}

/// bpftool: the tests check with it that no program of ours stays loaded.
fn bpftool() -> Result<()> {
    if have("bpftool") || !is_root() {
        return Ok(());
    }
    eprintln!("setup: installing bpftool");
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get").args(["install", "-y", "-qq", "bpftool"]).env("DEBIAN_FRONTEND", "noninteractive"))
}

/// The runtimes of the e2e corpus (tests/workloads/): each Debian package whose program is
/// missing (python3 is part of the base system).
fn runtimes() -> Result<()> {
    let missing: Vec<&str> = [
        ("javac", "openjdk-17-jdk-headless"),
        ("go", "golang-go"),
        ("ocamlopt", "ocaml-nox"),
        ("node", "nodejs"),
        // Also the browser the tests open report.html in.
        ("chromium", "chromium"),
    ]
    .into_iter()
    .filter(|(program, _)| !have(program))
    .map(|(_, package)| package)
    .collect();
    if missing.is_empty() || !is_root() {
        return Ok(());
    }
    eprintln!("setup: installing the corpus runtimes: {}", missing.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// py-spy (a PyPI package shipping a static binary), which `--runtime-dumps` runs for Python
/// stacks; installed for the system python3 into /usr/local/bin. Not reachable (no network):
/// the tests that need it say so, and fail under OBSERVER_REQUIRE_BPF=1.
fn py_spy() {
    if have("py-spy") || !is_root() {
        return;
    }
    if !Command::new("/usr/bin/python3").args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success()) {
        eprintln!("setup: installing python3-pip (for py-spy)");
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends", "python3-pip"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    eprintln!("setup: installing py-spy (Python stacks for --runtime-dumps)");
    let installed = Command::new("/usr/bin/python3")
        .args(["-m", "pip", "install", "--quiet", "--break-system-packages", "py-spy"])
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        eprintln!("setup: py-spy could not be installed; the Python runtime-dump test will say so");
    }
}

/// Everything the build and the BPF tests need, installed when missing.
pub fn ensure() -> Result<()> {
    rust_src()?;
    bpf_linker()?;
    bpftool()?;
    tracefs();
    Ok(())
}

/// Everything the test suite needs besides the build: the runtimes of the workload corpus, the
/// browser report.html is checked in, py-spy for runtime dumps.
pub fn ensure_for_tests() -> Result<()> {
    ensure()?;
    runtimes()?;
    py_spy();
    Ok(())
}
