//! One capture, whichever command starts it: the types `run`, `attach` and `repeat` share (what
//! to do on a hang, why a capture stopped, its errors and outcome) and the skeleton they compose:
//! run dir ([`start`]) -> capture -> loop ([`event_loop`]) -> finalize ([`finish`]).
pub mod event_loop;
pub mod finish;
pub mod start;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    analysis::Classification,
    capture::{CaptureError, Probes},
    child::{ChildError, ExitStatus},
    summary::Summary,
};

/// Starts tracking processes that are already running, with every thread they have now; the fork
/// hook covers whatever they create from then on (`attach`, and `watch`'s processes at start).
pub fn track_running(probes: &mut Probes, pids: &[u32]) -> Result<(), CaptureError> {
    for &tgid in pids {
        probes.track(tgid)?;
        for tid in crate::proc::task::threads(tgid) {
            probes.track_thread(tid, tgid)?;
        }
    }
    Ok(())
}

pub use event_loop::{watch, OnInterrupt, SessionEnd, SessionOptions, Target};
pub use finish::{finalize, Finished};
pub use start::{create_run_dir, open_capture, open_live_capture, RunDir};

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
    #[error("--cgroup {0}: not a cgroup directory (give a directory under a cgroup v1 or v2 mount, e.g. /sys/fs/cgroup/...)")]
    NotACgroup(PathBuf),
    #[error("no process {0}: give the pid of a running process (see `pgrep`)")]
    NoSuchProcess(u32),
    #[error("pid {0} is observer itself: give the pid of the process to watch")]
    AttachToSelf(u32),
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

pub(crate) fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::RunDir { path: path.to_path_buf(), source }
}
