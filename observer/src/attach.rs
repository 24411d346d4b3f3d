//! `observer attach --pid PID`: watch a process tree that is already running — its existing
//! threads and every fork from now on — with the same run directory, watchdog and diagnosis as
//! `run`. Detaching (Ctrl-C) leaves it running, untouched.
use std::{
    future::Future,
    os::fd::{FromRawFd, OwnedFd},
    path::PathBuf,
    time::Duration,
};

use tokio::io::unix::AsyncFd;

use crate::{
    capture::Kernel,
    interrupt::Interrupts,
    out_dir::Access,
    proc::{self, task::process_stat},
    rundir::Place,
    session::{
        self, create_run_dir, finalize, open_live_capture, Finished, OnHang, OnInterrupt, RunError, RunOutcome,
        SessionOptions, Target,
    },
};

#[derive(Clone, Debug)]
pub struct AttachOptions {
    pub pid: u32,
    pub out: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub hang_after: Option<Duration>,
    pub on_hang: OnHang,
    /// Save the runtime's own dump of its threads with the stuck snapshot.
    pub runtime_dumps: bool,
    pub buffer_size: u64,
    /// Who may read the run directory (`--group`).
    pub access: Access,
    /// Largest events.bin (and trace text) the capture writes.
    pub max_size: Option<u64>,
}

/// Resolves when `pid` has exited (a pidfd becomes readable), without being its parent.
fn exited(pid: u32) -> std::io::Result<impl Future<Output = ()>> {
    // SAFETY: plain syscall; the returned fd is owned from here on.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor from pidfd_open.
    let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns the pidfd for as long as it is registered.
    let async_fd = unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    Ok(async move {
        let _ = async_fd.readable().await;
    })
}

/// The processes of `pid`'s tree that attach watches: never observer itself (nor what it started),
/// which is in the tree when attaching to the shell observer was started from.
fn tree_without_observer(pid: u32) -> Vec<u32> {
    let ours = proc::process_tree(std::process::id());
    proc::process_tree(pid).into_iter().filter(|p| !ours.contains(p)).collect()
}

pub async fn attach(opts: AttachOptions, interrupts: &mut Interrupts) -> Result<RunOutcome, RunError> {
    let pid = opts.pid;
    if process_stat(pid).is_none() {
        return Err(RunError::NoSuchProcess(pid));
    }
    if pid == std::process::id() {
        return Err(RunError::AttachToSelf(pid));
    }
    let mut kernel = Kernel::load(opts.buffer_size)?;
    let result = attach_in(&mut kernel, &opts, interrupts).await;
    let detaching = kernel.detach_in_background();
    result.map(|outcome| RunOutcome { detaching: Some(detaching), ..outcome })
}

async fn attach_in(
    kernel: &mut Kernel,
    opts: &AttachOptions,
    interrupts: &mut Interrupts,
) -> Result<RunOutcome, RunError> {
    let pid = opts.pid;
    let tally = kernel.tally();

    let command = proc::cmdline(pid);
    let comm = process_stat(pid).map_or_else(|| pid.to_string(), |s| s.comm);
    let place = Place::out_or_default(opts.out.as_deref(), format!("attach-{comm}"), opts.access);
    let run = create_run_dir(&place, &command, Some(&format!("# attached to pid {pid}")))?;
    let mut pipeline = open_live_capture(&run, pid, command, opts.max_size)?;
    pipeline.hurry_on(interrupts.hurry());
    session::track_running(&mut kernel.probes, &tree_without_observer(pid))?;
    let ended = exited(pid).map_err(|_| RunError::NoSuchProcess(pid))?;
    let target = Target {
        root: pid,
        group: None,
        ended: Box::pin(async move {
            ended.await;
            None
        }),
    };
    let session = SessionOptions {
        timeout: opts.timeout,
        kill_grace: opts.kill_grace,
        hang_after: opts.hang_after,
        on_hang: opts.on_hang,
        runtime_dumps: opts.runtime_dumps,
        on_interrupt: OnInterrupt::Detach,
    };
    let end = session::watch(kernel, &mut pipeline, target, &session, interrupts, &run.dir).await?;
    finalize(Finished { run, root: pid, kernel, tally, pipeline, end })
}
