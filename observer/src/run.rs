//! `observer run`: start the command held at the gate, track it in the kernel, release it, stream
//! its events into the run directory until it ends (or is stopped), then write the summary.
use std::{
    ffi::OsString,
    fs::File,
    io::{Read, Write},
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    capture::{Kernel, Probes},
    child::{self, BlockedChild, ExitStatus},
    interrupt::{self, Interrupts},
    out_dir::Access,
    proc,
    rundir::{self, Place},
    session::{
        self, create_run_dir, finalize, io_at, open_live_capture, Finished, OnHang, OnInterrupt, RunDir, RunError,
        RunOutcome, SessionOptions, Target,
    },
    sinks::Pipeline,
    terminal::InputRelay,
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
    /// Save the runtime's own dump of its threads with the stuck snapshot.
    pub runtime_dumps: bool,
    /// A cgroup directory to start the command in.
    pub cgroup: Option<PathBuf>,
    /// Print the summary on stderr at the end.
    pub quiet: bool,
    /// Who may read the run directory (`--group`).
    pub access: Access,
    /// Largest events.bin (and trace text) a run writes.
    pub max_size: Option<u64>,
}

/// An option value that does not make sense (e.g. a negative timeout).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunArgsError(pub String);

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
    run: &RunDir,
    pid: i32,
    command: &[String],
    cgroup: Option<&Path>,
    max_size: Option<u64>,
) -> Result<Pipeline, RunError> {
    if let Some(cgroup) = cgroup {
        std::fs::write(cgroup.join("cgroup.procs"), pid.to_string())
            .map_err(|source| RunError::Cgroup { path: cgroup.to_path_buf(), source })?;
    }
    let pipeline = open_live_capture(run, pid as u32, command.to_vec(), max_size)?;
    probes.track(pid as u32)?;
    Ok(pipeline)
}

/// `--cgroup DIR` must be a directory of a cgroup filesystem: anywhere else, "joining" it would
/// write an ordinary file named cgroup.procs.
pub fn check_cgroup(cgroup: Option<&Path>) -> Result<(), RunError> {
    let Some(path) = cgroup else { return Ok(()) };
    match proc::cgroup_fs(path) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(RunError::NotACgroup(path.to_path_buf())),
        Err(source) => Err(RunError::Cgroup { path: path.to_path_buf(), source }),
    }
}

/// Runs the command under observation. `interrupts` are the signals asking observer to stop
/// (Ctrl-C, SIGTERM, SIGHUP...): the command is then stopped like a timeout (a second one kills it
/// at once) and the run finalised.
pub async fn run(opts: RunOptions, interrupts: &mut Interrupts) -> Result<RunOutcome, RunError> {
    // Fail fast on what needs no kernel work.
    let argv0 = opts.command.first().ok_or(RunError::NoCommand)?.to_string_lossy().into_owned();
    child::resolve(&argv0)?;
    check_cgroup(opts.cgroup.as_deref())?;
    let mut kernel = Kernel::load(opts.buffer_size)?;
    let place = Place::out_or_default(opts.out.as_deref(), argv0, opts.access);
    let result = run_in(&mut kernel, &opts, &place, interrupts).await;
    let detaching = kernel.detach_in_background();
    result.map(|outcome| RunOutcome { detaching: Some(detaching), ..outcome })
}

/// One run with probes that are already loaded (`run`, or each attempt of `repeat`), its run
/// directory at `place`.
pub async fn run_in(
    kernel: &mut Kernel,
    opts: &RunOptions,
    place: &Place,
    interrupts: &mut Interrupts,
) -> Result<RunOutcome, RunError> {
    let argv0 = opts.command.first().ok_or(RunError::NoCommand)?.to_string_lossy().into_owned();
    let program = child::resolve(&argv0)?;
    let tally = kernel.tally();
    let command: Vec<String> = opts.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let run = create_run_dir(place, &command, None)?;
    let dir = run.dir.path().to_path_buf();

    let stdout_file = run.dir.create(rundir::STDOUT).map_err(io_at(&dir))?;
    let stderr_file = run.dir.create(rundir::STDERR).map_err(io_at(&dir))?;
    let mut tees = Vec::new();
    // At a terminal, the command's group is kept out of the foreground (Ctrl-C is observer's);
    // what is typed reaches it through a relay.
    let (stdin, relay) = match InputRelay::start().map_err(io_at(&dir))? {
        Some((fd, relay)) => (Some(fd), Some(relay)),
        None => (None, None),
    };
    let stdio = if opts.tee {
        let (out_r, out_w) = pipe_files().map_err(io_at(&dir))?;
        let (err_r, err_w) = pipe_files().map_err(io_at(&dir))?;
        tees.push(tee_thread(out_r, stdout_file, true));
        tees.push(tee_thread(err_r, stderr_file, false));
        child::Stdio { stdin, stdout: OwnedFd::from(out_w), stderr: OwnedFd::from(err_w) }
    } else {
        child::Stdio { stdin, stdout: OwnedFd::from(stdout_file), stderr: OwnedFd::from(stderr_file) }
    };

    let mut child = BlockedChild::spawn(&program, &opts.command, stdio)?;
    let pid = child.pid();
    interrupt::set_job_group(Some(pid));
    let ready = prepare_capture(&mut kernel.probes, &run, pid, &command, opts.cgroup.as_deref(), opts.max_size);
    let mut pipeline = match ready {
        Ok(ready) => ready,
        Err(e) => {
            // Never leave the held child behind.
            child::signal_group(pid, libc::SIGKILL);
            let _ = child::wait_blocking(pid);
            interrupt::set_job_group(None);
            return Err(e);
        }
    };
    pipeline.hurry_on(interrupts.hurry());
    if let Err(e) = child.release() {
        interrupt::set_job_group(None);
        return Err(e.into());
    }

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
        runtime_dumps: opts.runtime_dumps,
        on_interrupt: OnInterrupt::Stop,
    };
    let end = session::watch(kernel, &mut pipeline, target, &session, interrupts, &run.dir).await;
    interrupt::set_job_group(None);
    if end.is_err() {
        // The command must not run on untraced; the waiter reaps it.
        child::signal_group(pid, libc::SIGKILL);
    }
    drop(relay);
    let end = end?;
    let finished = finalize(Finished { run, root: pid as u32, kernel, tally, pipeline, end })?;
    for t in tees {
        let _ = t.join();
    }
    Ok(finished)
}
