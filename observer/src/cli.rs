//! Command-line arguments as typed by the user, and their validation into run options.
use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::capture::probes::DEFAULT_BUFFER_SIZE;

pub const EXIT_CODES_HELP: &str = "\
Exit status:
  observer run exits with the command's exit code, or 128+N when the command was killed by signal N.
  Its own failures use codes a command rarely returns:
    2    bad usage (unknown option, missing command)
    77   not permitted: needs root or CAP_BPF + CAP_PERFMON
    78   kernel environment: tracefs not mounted, tracepoint missing, tracepoint layout differs
    79   the kernel refused an eBPF program (the verifier log is printed)
    125  observer itself failed (run directory, I/O)
    126  the command could not be executed
    127  the command was not found";

#[derive(Debug, Parser)]
#[command(name = "observer", version, about = "Watch a program from the kernel with eBPF: syscalls, threads, signals; find why it hangs or cannot create threads.", after_help = EXIT_CODES_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command under observation and write a run directory.
    #[command(after_help = EXIT_CODES_HELP)]
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The run directory to write (default: ./observer-runs/<cmd>-<UTC time>/, with a `latest` link).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Stop the command's process group after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Seconds between SIGTERM and SIGKILL when stopping the command.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub kill_grace: f64,
    /// Kernel ring-buffer size in bytes (a power of two, at least 4096).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_SIZE)]
    pub buffer_size: u64,
    /// Also copy the command's stdout and stderr to the terminal.
    #[arg(long)]
    pub tee: bool,
    /// Do not print the summary at the end (the run directory path is still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("--{name} {value}: must be a non-negative number of seconds"))
}

impl RunArgs {
    pub fn into_options(self) -> Result<crate::run::RunOptions, String> {
        Ok(crate::run::RunOptions {
            timeout: self.timeout.map(|t| seconds("timeout", t)).transpose()?,
            kill_grace: seconds("kill-grace", self.kill_grace)?,
            command: self.command,
            out: self.out,
            buffer_size: self.buffer_size,
            tee: self.tee,
            quiet: self.quiet,
        })
    }
}
