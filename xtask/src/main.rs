//! `cargo xtask`: set up the machine, build the eBPF object, run the demo and the test suite.
mod bench;
mod setup;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "observer's development tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what building and loading eBPF needs (rust-src, llvm-22-dev, bpf-linker; tracefs
    /// mounted) and what the tests need (the corpus runtimes, chromium, py-spy).
    Setup,
    /// Build the eBPF object alone, the one observer embeds (target/ebpf/bpfel-unknown-none/release/observer).
    BuildEbpf,
    /// Set up, build, and run observer on the built-in demo: pthread_create failing under a data limit.
    Demo,
    /// Set up, then run the whole test suite (tests that load BPF need root).
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Set up, then the lint gate: clippy on every target, userspace and eBPF, with warnings as errors.
    Lint,
    /// Overhead against bare runs, strace -f, perf trace and bpftrace; writes docs/benchmarks.{md,json}.
    Bench {
        /// Smaller sizes and fewer rounds (a few minutes): checks the harness, not for quoting.
        #[arg(long)]
        quick: bool,
    },
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

fn ebpf_build() -> observer_build::Build {
    observer_build::Build::new(workspace_root(), workspace_root().join("target/ebpf"), std::env::consts::ARCH)
}

/// The same build observer's build script embeds (observer-build), into target/ebpf/.
fn build_ebpf() -> Result<()> {
    let build =
        observer_build::Build::new(workspace_root(), workspace_root().join("target/ebpf"), std::env::consts::ARCH);
    let object = build.run()?;
    println!("eBPF object: {}", object.display());
    Ok(())
}

fn demo() -> Result<()> {
    setup::ensure()?;
    run(cargo().args(["build", "--release", "--package", "observer"]))?;
    let root = workspace_root();
    let out = root.join("target/demo");
    std::fs::create_dir_all(&out)?;
    let threads = out.join("threads");
    run(Command::new("cc").args(["-O2", "-pthread", "-o"]).arg(&threads).arg(root.join("tests/workloads/threads.c")))?;
    let run_dir = out.join(format!("run-{}", std::process::id()));
    println!("demo: 8 threads with an 8 MiB default stack each, under `prlimit --data=41943040` (40 MiB; this prlimit takes bytes, no suffixes):");
    println!("      the stack mprotect fails with ENOMEM and pthread_create returns EAGAIN.\n");
    let status = Command::new(root.join("target/release/observer"))
        .args(["run", "--out"])
        .arg(&run_dir)
        .args(["--timeout", "30", "--", "prlimit", "--data=41943040"])
        .arg(&threads)
        .arg("8")
        .status()
        .context("could not start observer")?;
    println!("\nobserver exited with {status}; the run directory is {}", run_dir.display());
    println!("\n== {}/summary.txt ==", run_dir.display());
    print!("{}", std::fs::read_to_string(run_dir.join("summary.txt")).context("the run wrote no summary")?);
    println!("\n== {}/report.txt ==", run_dir.display());
    print!("{}", std::fs::read_to_string(run_dir.join("report.txt")).context("the run wrote no report")?);
    // The failing call, as the per-thread trace shows it.
    for entry in std::fs::read_dir(&run_dir)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("trace.")) {
            let text = std::fs::read_to_string(&path)?;
            for line in
                text.lines().filter(|l| l.contains("MAP_STACK") || (l.contains("mprotect") && l.contains("ENOMEM")))
            {
                println!("{}: {line}", path.file_name().unwrap().to_string_lossy());
            }
        }
    }
    Ok(())
}

fn test(args: &[String]) -> Result<()> {
    setup::ensure_for_tests()?;
    run(cargo().arg("test").args(args))
}

fn lint() -> Result<()> {
    setup::ensure()?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--exclude",
        "observer-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The eBPF crate, for its own target and with the cfg its object is built with.
    run(&mut ebpf_build().clippy_command())
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::ensure_for_tests(),
        Task::BuildEbpf => {
            setup::ensure()?;
            build_ebpf()
        }
        Task::Demo => demo(),
        Task::Test { args } => test(&args),
        Task::Lint => lint(),
        Task::Bench { quick } => bench::bench(quick),
    }
}
