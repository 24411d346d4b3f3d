//! Command-line arguments as typed by the user, and their validation into run options.
use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{capture::probes::DEFAULT_BUFFER_SIZE, out_dir::Access, run::RunArgsError};

pub const EXIT_CODES_HELP: &str = "\
Exit status:
  observer run exits with the command's exit code, or 128+N when the command was killed by signal N.
  repeat exits 0 when --until found a hit (or without --until), 1 when it did not.
  analyze, replay and export exit 0 when they read the capture. Failures use codes a command rarely returns:
    2    bad usage (unknown option, missing command, unknown syscall name)
    65   the capture is corrupt, foreign or of an unsupported version (the byte offset is printed)
    66   the capture cannot be opened
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
    /// Run a command again and again (a run directory per attempt) until a signature appears or
    /// N attempts, and report how often each signature and exit happened.
    #[command(after_help = EXIT_CODES_HELP)]
    Repeat(RepeatArgs),
    /// Watch a process tree that is already running: its threads now and every fork from now on.
    /// Ctrl-C detaches and leaves it running; --timeout and --hang-after stop it like `run` does.
    #[command(after_help = EXIT_CODES_HELP)]
    Attach(AttachArgs),
    /// Run as a host-side daemon: stream every process at low rate, track the ones matching the
    /// filters in full, and write an incident directory the moment a signature appears.
    #[command(after_help = EXIT_CODES_HELP)]
    Watch(WatchArgs),
    /// Turn strace output (a `-ff -o NAME` directory or a `-f -o FILE` file) into a run directory
    /// with the same event records, and diagnose it.
    #[command(name = "import-strace", after_help = EXIT_CODES_HELP)]
    ImportStrace(ImportStraceArgs),
    /// Re-run every classifier on a run directory (or a bare events.bin) and rewrite
    /// classification.json, report.txt and report.html.
    #[command(after_help = EXIT_CODES_HELP)]
    Analyze(AnalyzeArgs),
    /// Print the events of a capture, filtered, as trace lines or JSON lines.
    #[command(after_help = EXIT_CODES_HELP)]
    Replay(ReplayArgs),
    /// Write a capture as a Perfetto trace (ui.perfetto.dev, trace_processor) or as Chrome's
    /// Trace Event JSON: a track per thread, a slice per syscall, signals, failures, flows, findings.
    #[command(after_help = EXIT_CODES_HELP)]
    Export(ExportArgs),
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ExportFormat {
    /// Perfetto's TrackEvent protobuf (open it in ui.perfetto.dev or trace_processor).
    Perfetto,
    /// Chrome's Trace Event Format JSON (chrome://tracing, Perfetto, speedscope).
    ChromeJson,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run directory or an events.bin file.
    pub path: PathBuf,
    #[arg(long, value_enum, default_value = "perfetto")]
    pub format: ExportFormat,
    /// The file to write.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

/// `--group`: who besides the owner may read what observer writes.
#[derive(Debug, Args)]
pub struct GroupFlag {
    /// Let this group (a name or a gid) read the output: directories 0750 and files 0640 with
    /// that group, instead of 0700 and 0600 (see docs/security.md).
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

impl GroupFlag {
    pub fn access(&self) -> Result<Access, RunArgsError> {
        match &self.group {
            Some(name) => Access::for_group(name).map_err(|e| RunArgsError(e.to_string())),
            None => Ok(Access::OWNER),
        }
    }
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    /// The process to watch (with all its descendants).
    #[arg(long)]
    pub pid: u32,
    /// The run directory to write (default: ./observer-runs/attach-<comm>-<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub group: GroupFlag,
    /// Stop the tree (snapshot first) after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Seconds between SIGTERM and SIGKILL when stopping the tree.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub kill_grace: f64,
    /// Declare a hang after this many seconds without progress (see `run --help`).
    #[arg(long, value_name = "SECS")]
    pub hang_after: Option<f64>,
    /// What to do once a hang is declared.
    #[arg(long, value_enum, default_value = "kill")]
    pub on_hang: OnHangArg,
    /// Once a hang is declared, also save the runtime's own view of its threads where it gives one
    /// without stopping: a JVM's thread dump (jcmd, else SIGQUIT), Python stacks (py-spy, when
    /// installed); as runtime-PID.txt beside the snapshot.
    #[arg(long)]
    pub runtime_dumps: bool,
    /// Kernel ring-buffer size in bytes (a power of two, at least 4096).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_SIZE)]
    pub buffer_size: u64,
    /// Stop writing events.bin at this size (and the trace text at as much); see `run --help`.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub max_size: u64,
    /// Do not print the summary at the end.
    #[arg(long, short)]
    pub quiet: bool,
}

impl OnHangArg {
    pub fn into_on_hang(self) -> crate::session::OnHang {
        match self {
            OnHangArg::Kill => crate::session::OnHang::Kill,
            OnHangArg::Keep => crate::session::OnHang::Keep,
        }
    }
}

impl AttachArgs {
    pub fn into_options(self) -> Result<crate::attach::AttachOptions, RunArgsError> {
        Ok(crate::attach::AttachOptions {
            pid: self.pid,
            out: self.out,
            timeout: self.timeout.map(|t| seconds("timeout", t)).transpose()?,
            kill_grace: seconds("kill-grace", self.kill_grace)?,
            hang_after: self.hang_after.map(|t| seconds("hang-after", t)).transpose()?,
            on_hang: self.on_hang.into_on_hang(),
            runtime_dumps: self.runtime_dumps,
            buffer_size: self.buffer_size,
            access: self.group.access()?,
            max_size: Some(self.max_size),
        })
    }
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Track in full every process whose command name is NAME (checked in the kernel at exec).
    #[arg(long = "comm", value_name = "NAME")]
    pub comms: Vec<String>,
    /// Track in full every process in this cgroup v2 directory.
    #[arg(long = "cgroup", value_name = "PATH")]
    pub cgroups: Vec<PathBuf>,
    /// Track in full every process of this user.
    #[arg(long = "uid", value_name = "UID")]
    pub uids: Vec<u32>,
    /// Track in full this process and its descendants.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Where incident directories go.
    #[arg(long, value_name = "DIR", default_value = "observer-incidents")]
    pub incidents: PathBuf,
    #[command(flatten)]
    pub group: GroupFlag,
    /// Declare a hang in a fully tracked tree after this many seconds without progress.
    #[arg(long, value_name = "SECS")]
    pub hang_after: Option<f64>,
    /// Once a hang is declared, also save the runtime's own view of its threads where it gives one
    /// without stopping: a JVM's thread dump (jcmd, else SIGQUIT), Python stacks (py-spy, when
    /// installed); as runtime-PID.txt beside the snapshot.
    #[arg(long)]
    pub runtime_dumps: bool,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9464), at /metrics.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Print one JSON line per incident on stdout.
    #[arg(long)]
    pub json: bool,
    /// At most this many incident directories per minute, whatever happens.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_incidents_per_minute: usize,
    /// One incident per signature and process tree within this many seconds (the rest are counted).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub incident_window: f64,
    /// Flight recorder: the last this many seconds of each process tree...
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub recorder_seconds: f64,
    /// ...and at most this many events of it.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub recorder_events: usize,
    /// Kernel ring-buffer size in bytes (a power of two, at least 4096).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_SIZE)]
    pub buffer_size: u64,
}

impl WatchArgs {
    pub fn into_options(self) -> Result<crate::watch::WatchOptions, RunArgsError> {
        Ok(crate::watch::WatchOptions {
            comms: self.comms,
            cgroups: self.cgroups,
            uids: self.uids,
            pids: self.pids,
            incidents: self.incidents,
            access: self.group.access()?,
            hang_after: self.hang_after.map(|t| seconds("hang-after", t)).transpose()?,
            runtime_dumps: self.runtime_dumps,
            metrics: self.metrics,
            json: self.json,
            max_incidents_per_minute: self.max_incidents_per_minute,
            window: seconds("incident-window", self.incident_window)?,
            recorder: crate::watch::trees::RecorderBounds {
                max_events: self.recorder_events,
                max_age: seconds("recorder-seconds", self.recorder_seconds)?,
            },
            buffer_size: self.buffer_size,
        })
    }
}

#[derive(Debug, Args)]
pub struct ImportStraceArgs {
    /// A directory of `NAME.<tid>` files (strace -ff -o NAME), one of them, or one strace -f -o file.
    pub path: PathBuf,
    /// The run directory to write (default: ./observer-runs/import-<name>-<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub group: GroupFlag,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A run directory or an events.bin file.
    pub path: PathBuf,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ReplayFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A run directory or an events.bin file (it may still be growing).
    pub path: PathBuf,
    /// Only events of this thread.
    #[arg(long)]
    pub tid: Option<u32>,
    /// Only events of this process.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Only these syscalls (comma-separated names).
    #[arg(long, value_name = "NAME,...")]
    pub syscall: Option<String>,
    /// Only syscalls that returned an error.
    #[arg(long)]
    pub failed: bool,
    /// From this time on: seconds after the first event (2.5) or a UTC time of day (22:41:07.5).
    #[arg(long, value_name = "T")]
    pub since: Option<crate::replay::TimeBound>,
    /// Up to this time (same forms as --since).
    #[arg(long, value_name = "T")]
    pub until: Option<crate::replay::TimeBound>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: ReplayFormat,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum OnHangArg {
    Kill,
    Keep,
}

/// How the command is watched and stopped: shared by `run` and `repeat`.
#[derive(Debug, Args)]
pub struct WatchFlags {
    /// Stop the command's process group after this many seconds (stuck snapshot first).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Seconds between SIGTERM and SIGKILL when stopping the command.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub kill_grace: f64,
    /// Kernel ring-buffer size in bytes (a power of two, at least 4096).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_SIZE)]
    pub buffer_size: u64,
    /// Declare a hang when no tracked thread makes progress (a syscall that does more than wait)
    /// for this many seconds, or one thread spins on a CPU without such a call that long:
    /// snapshot and classify.
    #[arg(long, value_name = "SECS")]
    pub hang_after: Option<f64>,
    /// What to do once a hang is declared: stop the process group like --timeout, or keep it running.
    #[arg(long, value_enum, default_value = "kill")]
    pub on_hang: OnHangArg,
    /// Once a hang is declared, also save the runtime's own view of its threads where it gives one
    /// without stopping: a JVM's thread dump (jcmd, else SIGQUIT), Python stacks (py-spy, when
    /// installed); as runtime-PID.txt beside the snapshot.
    #[arg(long)]
    pub runtime_dumps: bool,
    /// Start the command inside this cgroup directory (v1 or v2; it must exist), before its
    /// first instruction, so its limits apply from the start and show in the preflight.
    #[arg(long, value_name = "DIR")]
    pub cgroup: Option<PathBuf>,
    /// Also copy the command's stdout and stderr to the terminal.
    #[arg(long)]
    pub tee: bool,
    /// Stop writing events.bin at this size (bytes, or with K, M, G, T): the command runs on and
    /// is stopped as planned, later events are counted but not written, and the summary says
    /// where the capture was cut. The trace text rendered from it stops at as much.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = parse_size)]
    pub max_size: u64,
}

/// `4096`, `512K`, `64M`, `1G`, `2T` (powers of 1024; a trailing `B` or `iB` is allowed).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (digits, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let bad = || format!("{text:?} is not a size: give bytes, or a number with K, M, G or T (e.g. 512M)");
    let n: u64 = digits.trim().parse().map_err(|_| bad())?;
    let bytes = n.checked_mul(1 << shift).ok_or_else(bad)?;
    if bytes < 64 * 1024 {
        return Err(format!("{text}: at least 64K, room for the header and a few records"));
    }
    Ok(bytes)
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The run directory to write (default: ./observer-runs/<cmd>-<UTC time>/, with a `latest` link).
    /// It must not exist yet, or be empty.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub group: GroupFlag,
    #[command(flatten)]
    pub watch: WatchFlags,
    /// Do not print the summary at the end (the run directory path is still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum KeepArg {
    All,
    Hits,
    Last,
}

#[derive(Debug, Args)]
pub struct RepeatArgs {
    /// Stop at the first attempt with one of these signatures (comma-separated).
    #[arg(long, value_name = "SIGNATURE,...", value_delimiter = ',', value_enum)]
    pub until: Vec<observer_common::Signature>,
    /// At most this many attempts (all of them without --until).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_attempts: u32,
    /// Which attempt directories to keep: all, hits (attempts with a hit), or only the last.
    #[arg(long, value_enum, default_value = "all")]
    pub keep: KeepArg,
    /// Parent directory of the attempts (default: ./observer-runs/repeat-<cmd>-<UTC time>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub group: GroupFlag,
    #[command(flatten)]
    pub watch: WatchFlags,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

impl RepeatArgs {
    pub fn into_options(self) -> Result<crate::repeat::RepeatOptions, RunArgsError> {
        Ok(crate::repeat::RepeatOptions {
            until: self.until,
            max_attempts: self.max_attempts,
            keep: match self.keep {
                KeepArg::All => crate::repeat::Keep::All,
                KeepArg::Hits => crate::repeat::Keep::Hits,
                KeepArg::Last => crate::repeat::Keep::Last,
            },
            out: self.out,
            run: self.watch.into_options(self.command, None, true, self.group.access()?)?,
        })
    }
}

fn seconds(name: &str, value: f64) -> Result<Duration, RunArgsError> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| RunArgsError(format!("--{name} {value}: must be a non-negative number of seconds")))
}

impl WatchFlags {
    fn into_options(
        self,
        command: Vec<OsString>,
        out: Option<PathBuf>,
        quiet: bool,
        access: Access,
    ) -> Result<crate::run::RunOptions, RunArgsError> {
        Ok(crate::run::RunOptions {
            timeout: self.timeout.map(|t| seconds("timeout", t)).transpose()?,
            kill_grace: seconds("kill-grace", self.kill_grace)?,
            command,
            out,
            buffer_size: self.buffer_size,
            tee: self.tee,
            cgroup: self.cgroup,
            hang_after: self.hang_after.map(|t| seconds("hang-after", t)).transpose()?,
            on_hang: self.on_hang.into_on_hang(),
            runtime_dumps: self.runtime_dumps,
            quiet,
            access,
            max_size: Some(self.max_size),
        })
    }
}

impl RunArgs {
    pub fn into_options(self) -> Result<crate::run::RunOptions, RunArgsError> {
        self.watch.into_options(self.command, self.out, self.quiet, self.group.access()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes_and_refuse_nonsense() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(parse_size("lots").unwrap_err().contains("not a size"));
        assert!(parse_size("1K").unwrap_err().contains("at least 64K"));
        assert!(parse_size("99999999999T").is_err());
    }
}
