//! The one build of the eBPF object: observer's build script (which embeds it) and
//! `cargo xtask build-ebpf` both call [`build`], so they produce the same bytes from the same cfg,
//! with BTF.
//!
//! The object is the observer-ebpf crate built for `bpfel-unknown-none` by `rustup run <toolchain>
//! cargo` (the toolchain's own cargo and rustc, whatever this process runs under), with
//! `-Z build-std=core` unlocked by `RUSTC_BOOTSTRAP=1` for this nested build only.
use std::{
    fmt,
    path::{Path, PathBuf},
    process::Command,
};

/// Set to `1`, observer's build script embeds an empty object instead of building one, so
/// `cargo check` and `cargo clippy` work without bpf-linker; such a binary cannot capture.
pub const SKIP_ENV: &str = "OBSERVER_SKIP_EBPF";

/// Names the rustup toolchain that builds the object; `stable` when unset.
pub const TOOLCHAIN_ENV: &str = "OBSERVER_EBPF_TOOLCHAIN";

/// The eBPF target.
pub const TARGET: &str = "bpfel-unknown-none";

/// The eBPF crate's bin target, and the file name of the object.
pub const OBJECT_NAME: &str = "observer";

/// What the object is built from, relative to the workspace root (for `rerun-if-changed`).
pub const INPUTS: &[&str] = &[
    "observer-ebpf/src",
    "observer-ebpf/Cargo.toml",
    "observer-ebpf/build.rs",
    "observer-common/src",
    "observer-common/Cargo.toml",
    "Cargo.lock",
];

/// Environment a surrounding cargo sets that must not leak into the nested build: another rustc,
/// wrappers (clippy's among them), host flags, another target directory.
const CLEARED_ENV: &[&str] = &[
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
];

/// One build of the object.
#[derive(Clone, Debug)]
pub struct Build {
    /// The workspace root (holding observer-ebpf/).
    pub workspace: PathBuf,
    /// The nested build's target directory.
    pub target_dir: PathBuf,
    /// The rustup toolchain, e.g. `stable`.
    pub toolchain: String,
    /// The architecture the object will run on (`bpf_target_arch`, e.g. `x86_64`): the eBPF
    /// programs that read registers are compiled for it.
    pub arch: String,
}

/// Why the object could not be built.
#[derive(Debug)]
pub enum Error {
    /// rustup could not be started.
    Spawn(std::io::Error),
    /// The nested build failed; its stderr then stdout.
    Failed { status: std::process::ExitStatus, output: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Spawn(e) => write!(f, "cannot run rustup to build the eBPF object: {e}; run `cargo xtask setup`"),
            Error::Failed { status, output } => write!(
                f,
                "{output}\nbuilding the eBPF object failed ({status}); `cargo xtask setup` installs rust-src, LLVM 22 and bpf-linker"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl Build {
    /// A build for `workspace` into `target_dir`, with the toolchain from [`TOOLCHAIN_ENV`].
    pub fn new(workspace: impl Into<PathBuf>, target_dir: impl Into<PathBuf>, arch: impl Into<String>) -> Self {
        Build {
            workspace: workspace.into(),
            target_dir: target_dir.into(),
            toolchain: std::env::var(TOOLCHAIN_ENV).unwrap_or_else(|_| "stable".into()),
            arch: arch.into(),
        }
    }

    /// The rustflags of the nested build: the arch cfg, full debug info (the source of BTF) and
    /// bpf-linker's `--btf`.
    pub fn rustflags(&self) -> Vec<String> {
        vec![format!("--cfg=bpf_target_arch=\"{}\"", self.arch), "-Cdebuginfo=2".into(), "-Clink-arg=--btf".into()]
    }

    /// The command that builds the object.
    pub fn command(&self) -> Command {
        let mut cmd = self.cargo("build");
        cmd.arg("--bins");
        cmd
    }

    /// The lint gate for the eBPF crate: clippy with the same cfg, warnings as errors.
    pub fn clippy_command(&self) -> Command {
        let mut cmd = self.cargo("clippy");
        cmd.args(["--lib", "--bins", "--", "-D", "warnings"]);
        cmd
    }

    /// `cargo <subcommand>` of the toolchain on the eBPF crate, for the target, with build-std.
    fn cargo(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new("rustup");
        cmd.args(["run", &self.toolchain, "cargo", subcommand, "--package", "observer-ebpf", "--release"])
            .args(["--target", TARGET, "-Z", "build-std=core", "--target-dir"])
            .arg(&self.target_dir)
            .current_dir(&self.workspace);
        for key in CLEARED_ENV {
            cmd.env_remove(key);
        }
        cmd.env("RUSTC_BOOTSTRAP", "1").env("CARGO_ENCODED_RUSTFLAGS", self.rustflags().join("\x1f"));
        cmd
    }

    /// Where the object lands.
    pub fn object(&self) -> PathBuf {
        object_in(&self.target_dir)
    }

    /// Builds the object, output captured; returns its path.
    pub fn run(&self) -> Result<PathBuf, Error> {
        let output = self.command().output().map_err(Error::Spawn)?;
        if !output.status.success() {
            let text = [output.stderr, output.stdout].map(|b| String::from_utf8_lossy(&b).into_owned()).join("");
            return Err(Error::Failed { status: output.status, output: text.trim_end().to_string() });
        }
        Ok(self.object())
    }
}

/// The object's path under a nested build's target directory.
pub fn object_in(target_dir: &Path) -> PathBuf {
    target_dir.join(TARGET).join("release").join(OBJECT_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nested_build_gets_the_arch_cfg_and_btf_and_none_of_the_outer_flags() {
        let build = Build {
            workspace: "/w".into(),
            target_dir: "/t".into(),
            toolchain: "stable".into(),
            arch: "x86_64".into(),
        };
        let cmd = build.command();
        let envs: Vec<_> = cmd.get_envs().collect();
        let flags = envs.iter().find(|(k, _)| *k == "CARGO_ENCODED_RUSTFLAGS").and_then(|(_, v)| *v).unwrap();
        assert_eq!(flags, "--cfg=bpf_target_arch=\"x86_64\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf");
        for key in ["RUSTC", "RUSTFLAGS", "RUSTC_WORKSPACE_WRAPPER", "CARGO_TARGET_DIR"] {
            assert!(envs.contains(&(std::ffi::OsStr::new(key), None)), "{key} is cleared");
        }
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args[..3], ["run", "stable", "cargo"]);
        assert!(args.windows(2).any(|w| w == ["-Z", "build-std=core"]));
        assert_eq!(build.object(), Path::new("/t/bpfel-unknown-none/release/observer"));
    }
}
