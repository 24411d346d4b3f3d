//! `observer run`: start the command held at the gate, track it in the kernel, release it, stream
//! its events into the run directory until it ends (or is stopped), then write the summary.
use std::{
    ffi::OsString,
    fs::File,
    future::Future,
    io::{Read, Write},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{
    analysis::{report, Classification},
    capture::{CaptureError, Kernel, Probes, Tally},
    child::{self, BlockedChild, ChildError, ExitStatus},
    clock,
    eventlog::{EventLogWriter, LogHeader},
    hang::snapshot::STUCK_TXT,
    preflight::Preflight,
    processes::{describe_exit, describe_exit_signal, ProcessExit},
    rundir,
    session::{self, OnInterrupt, SessionEnd, SessionOptions, Target},
    sinks::Pipeline,
    summary::Summary,
};

/// Validated options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub command: Vec<OsString>,
    pub out: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub buffer_size: u64,
    pub tee: bool,
    /// Declare a hang after this long without progress.
    pub hang_after: Option<Duration>,
    /// What to do when a hang is declared.
    pub on_hang: OnHang,
    /// A cgroup directory to start the command in.
    pub cgroup: Option<PathBuf>,
    /// Print the summary on stderr at the end.
    pub quiet: bool,
}

/// What `--on-hang` asks for once a hang is declared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnHang {
    /// Stop the process group like the timeout does.
    #[default]
    Kill,
    /// Leave it running (until it ends or the timeout fires).
    Keep,
}

/// Why observer stopped the command before it ended by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    Timeout(Duration),
    Signal(&'static str),
    NoProgress(Duration),
    /// Observer detached from an attached tree on this signal; the tree runs on.
    Detached(&'static str),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Timeout(d) => write!(f, "timeout after {}s", d.as_secs_f64()),
            StopReason::Signal(name) => write!(f, "{name} to observer"),
            StopReason::NoProgress(d) => write!(f, "no progress for {}s", d.as_secs_f64()),
            StopReason::Detached(name) => write!(f, "detached on {name}, the process runs on"),
        }
    }
}

/// An option value that does not make sense (e.g. a negative timeout).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunArgsError(pub String);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Child(#[from] ChildError),
    #[error("run directory {path}: {source}")]
    RunDir { path: PathBuf, source: std::io::Error },
    #[error("cannot start the command in cgroup {path}: {source} (the directory must exist and be writable: a cgroup v1 or v2 directory with cgroup.procs)")]
    Cgroup { path: PathBuf, source: std::io::Error },
    #[error("no process {0}: give the pid of a running process (see `pgrep`)")]
    NoSuchProcess(u32),
    #[error("no command given: usage is `observer run [OPTIONS] -- CMD [ARGS...]`")]
    NoCommand,
}

/// The result of a finished run.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub exit: ExitStatus,
    pub summary: Summary,
    pub classification: Classification,
    /// The probes being detached; join before exiting so nothing of ours stays attached.
    pub detaching: Option<std::thread::JoinHandle<()>>,
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::RunDir { path: path.to_path_buf(), source }
}

/// Copies the child's output into the run directory and to our own terminal (`--tee`).
fn tee_thread(mut from: File, mut to_file: File, to_stdout: bool) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            let _ = to_file.write_all(&buf[..n]);
            if to_stdout {
                let _ = std::io::stdout().write_all(&buf[..n]);
            } else {
                let _ = std::io::stderr().write_all(&buf[..n]);
            }
        }
    })
}

fn pipe_files() -> std::io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: valid array for pipe2.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    use std::os::fd::FromRawFd;
    // SAFETY: fresh descriptors owned from here on.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// With the child held at the gate: snapshot its starting conditions, open the event log, and
/// track it in the kernel.
fn prepare_capture(
    probes: &mut Probes,
    dir: &Path,
    pid: i32,
    command: &[String],
    started_wall: i64,
    cgroup: Option<&Path>,
) -> Result<Pipeline, RunError> {
    if let Some(cgroup) = cgroup {
        std::fs::write(cgroup.join("cgroup.procs"), pid.to_string())
            .map_err(|source| RunError::Cgroup { path: cgroup.to_path_buf(), source })?;
    }
    let pipeline = open_capture(dir, pid as u32, command.to_vec(), started_wall)?;
    probes.track(pid as u32)?;
    Ok(pipeline)
}

/// The run directory's capture files for process `pid`: its preflight, the event log with its
/// header, and the sinks fed from it.
pub(crate) fn open_capture(
    dir: &Path,
    pid: u32,
    command: Vec<String>,
    started_wall: i64,
) -> Result<Pipeline, RunError> {
    let preflight = Preflight::take(pid, clock::rfc3339(started_wall));
    preflight.write(dir).map_err(io_at(dir))?;
    let header = LogHeader::live(command, Some(pid), clock::rfc3339(started_wall));
    let log = EventLogWriter::create(&dir.join(rundir::EVENTS), &header).map_err(io_at(dir))?;
    Ok(Pipeline::new(dir, log, header, Some(preflight)))
}

/// Runs the command under observation. `shutdown` resolves when the user asks observer to stop
/// (Ctrl-C, SIGTERM); the command is then stopped like a timeout and the run finalised.
pub async fn run(opts: RunOptions, shutdown: impl Future<Output = &'static str>) -> Result<RunOutcome, RunError> {
    // Fail fast on what needs no kernel work.
    let argv0 = opts.command.first().ok_or(RunError::NoCommand)?.to_string_lossy().into_owned();
    child::resolve(&argv0)?;
    let mut kernel = Kernel::load(opts.buffer_size)?;
    let result = run_in(&mut kernel, &opts, shutdown).await;
    let detaching = kernel.detach_in_background();
    result.map(|outcome| RunOutcome { detaching: Some(detaching), ..outcome })
}

/// One run with probes that are already loaded (`run`, or each attempt of `repeat`).
pub async fn run_in(
    kernel: &mut Kernel,
    opts: &RunOptions,
    shutdown: impl Future<Output = &'static str>,
) -> Result<RunOutcome, RunError> {
    let argv0 = opts.command.first().ok_or(RunError::NoCommand)?.to_string_lossy().into_owned();
    let program = child::resolve(&argv0)?;
    let tally = kernel.tally();
    let started_wall = clock::now_wall_ns();
    let started = Instant::now();
    let dir = rundir::create(opts.out.as_deref(), &argv0, &clock::compact_utc(started_wall))
        .map_err(io_at(opts.out.as_deref().unwrap_or(Path::new(rundir::DEFAULT_PARENT))))?;
    let command: Vec<String> = opts.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let command_line = rundir::shell_join(&command);
    std::fs::write(dir.join(rundir::COMMAND), format!("{command_line}\n")).map_err(io_at(&dir))?;

    let stdout_file = File::create(dir.join(rundir::STDOUT)).map_err(io_at(&dir))?;
    let stderr_file = File::create(dir.join(rundir::STDERR)).map_err(io_at(&dir))?;
    let mut tees = Vec::new();
    let stdio = if opts.tee {
        let (out_r, out_w) = pipe_files().map_err(io_at(&dir))?;
        let (err_r, err_w) = pipe_files().map_err(io_at(&dir))?;
        tees.push(tee_thread(out_r, stdout_file, true));
        tees.push(tee_thread(err_r, stderr_file, false));
        child::Stdio { stdout: OwnedFd::from(out_w), stderr: OwnedFd::from(err_w) }
    } else {
        child::Stdio { stdout: OwnedFd::from(stdout_file), stderr: OwnedFd::from(stderr_file) }
    };

    let mut child = BlockedChild::spawn(&program, &opts.command, stdio)?;
    let pid = child.pid();
    let ready = prepare_capture(&mut kernel.probes, &dir, pid, &command, started_wall, opts.cgroup.as_deref());
    let mut pipeline = match ready {
        Ok(ready) => ready,
        Err(e) => {
            // Never leave the held child behind.
            child::signal_group(pid, libc::SIGKILL);
            return Err(e);
        }
    };
    child.release()?;

    let waiter = tokio::task::spawn_blocking(move || child::wait_blocking(pid));
    let target = Target {
        root: pid as u32,
        group: Some(pid),
        ended: Box::pin(async move { Some(waiter.await.ok().and_then(Result::ok).unwrap_or(ExitStatus::Code(-1))) }),
    };
    let session = SessionOptions {
        timeout: opts.timeout,
        kill_grace: opts.kill_grace,
        hang_after: opts.hang_after,
        on_hang: opts.on_hang,
        on_interrupt: OnInterrupt::Stop,
    };
    let end = session::watch(kernel, &mut pipeline, target, &session, shutdown, &dir).await?;
    let finished = finalize(Finished {
        dir: &dir,
        started_wall,
        started,
        command_line,
        root: pid as u32,
        kernel,
        tally,
        pipeline,
        end,
    })?;
    for t in tees {
        let _ = t.join();
    }
    Ok(finished)
}

/// Everything a finished session leaves to be written.
pub(crate) struct Finished<'a> {
    pub dir: &'a Path,
    pub started_wall: i64,
    pub started: Instant,
    pub command_line: String,
    pub root: u32,
    pub kernel: &'a Kernel,
    /// The kernel's counters when the capture began.
    pub tally: Tally,
    pub pipeline: Pipeline,
    pub end: SessionEnd,
}

/// Classifies, and writes the summary and report of a finished capture.
pub(crate) fn finalize(f: Finished<'_>) -> Result<RunOutcome, RunError> {
    let Finished { dir, started_wall, started, command_line, root, kernel, tally, mut pipeline, end } = f;
    let Tally { counters, undecodable } = kernel.tally_since(&tally);
    let fault_addresses = kernel
        .probes
        .fault_addresses_unavailable()
        .map_or_else(|| "captured".to_string(), |why| format!("unavailable: {why}"));
    let (records, classification) = pipeline.finish(end.stuck.as_ref()).map_err(io_at(dir))?;
    report::write(&classification, dir).map_err(io_at(dir))?;

    // The exit as observer reaped it, else as the capture saw it (an attached process).
    let from_capture = pipeline.book.process(root).and_then(|p| p.exit.clone());
    let (exit_text, exit) = match (end.exit, from_capture) {
        (Some(ExitStatus::Code(c)), _) => (describe_exit(&ProcessExit::Code(c)), ExitStatus::Code(c)),
        (Some(status @ ExitStatus::Signal { sig, .. }), _) => {
            (describe_exit_signal(sig, pipeline.book.sender_of(root, sig)), status)
        }
        (None, Some(exit @ ProcessExit::Code(c))) => (describe_exit(&exit), ExitStatus::Code(c)),
        (None, Some(exit @ ProcessExit::Signal { sig, .. })) => {
            (describe_exit(&exit), ExitStatus::Signal { sig, core_dumped: false })
        }
        (None, None) if end.detached => ("still running (observer detached)".to_string(), ExitStatus::Code(0)),
        (None, None) => ("ended (status not captured)".to_string(), ExitStatus::Code(0)),
    };
    let mut s = Summary::default();
    s.put("command", command_line);
    s.put("run_dir", dir.display().to_string());
    s.put("started_at", clock::rfc3339(started_wall));
    s.put("duration_s", (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    s.put("pid", root);
    s.put("exit", exit_text);
    s.put("exit_code", exit.shell_code());
    s.put(
        "stuck_snapshot",
        end.stuck.as_ref().map_or_else(|| "none".to_string(), |st| format!("{} ({})", STUCK_TXT, st.reason)),
    );
    s.put("stopped_by", end.stop_reason.as_ref().map_or_else(|| "none".to_string(), |r| r.to_string()));
    s.put("left_running_in_group", if end.leftovers { "yes, stopped with the group" } else { "no" });
    pipeline.put_outcome(&mut s, &classification, records);
    s.put("events_submitted_by_kernel", counters.submitted_total());
    s.put("events_dropped", counters.dropped_total());
    for kind in 1..observer_common::kind::COUNT as u16 {
        s.put(format!("events_dropped.{}", crate::event::kind_name(kind)), counters.dropped[kind as usize]);
    }
    s.put("events_undecodable", undecodable);
    s.put("inflight_table_overflows", counters.inflight_full);
    s.put("fault_addresses", fault_addresses);
    s.put("syscall_hooks", kernel.probes.syscall_hooks().to_string());
    pipeline.put_counts(&mut s);
    s.write(dir).map_err(io_at(dir))?;
    Ok(RunOutcome { dir: dir.to_path_buf(), exit, summary: s, classification, detaching: None })
}
