//! Starting the traced command held at a gate: forked into its own process group, blocked on a
//! pipe until the probes track its pid, then released to exec. Also its wait and group kill.
//!
//! The command never outlives observer unobserved: its leader gets PR_SET_PDEATHSIG (SIGKILL),
//! so it ends with observer even when observer is killed with SIGKILL. What the leader started
//! itself is not covered by that: those processes are stopped with the group when observer stops
//! normally, and run on when observer is SIGKILLed (see docs/security.md).
use std::{
    ffi::{CString, OsString},
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("command not found: {0} (not a path and not in $PATH)")]
    NotFound(String),
    #[error("cannot execute {path}: {reason}")]
    Exec { path: PathBuf, reason: std::io::Error },
    #[error("could not start the command: {0}")]
    Spawn(std::io::Error),
}

/// How the command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal { sig: i32, core_dumped: bool },
}

impl ExitStatus {
    pub fn from_wait_status(status: i32) -> Self {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signal { sig: libc::WTERMSIG(status), core_dumped: libc::WCOREDUMP(status) }
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        }
    }

    /// The exit code observer itself returns: the child's code, or 128 + signal.
    pub fn shell_code(&self) -> i32 {
        match *self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal { sig, .. } => 128 + sig,
        }
    }
}

/// Resolves `program` like execvp would: a path as given, a bare name through $PATH.
pub fn resolve(program: &str) -> Result<PathBuf, ChildError> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if path.exists() { Ok(path) } else { Err(ChildError::NotFound(program.into())) };
    }
    which::which(program).map_err(|_| ChildError::NotFound(program.into()))
}

fn cstring(bytes: &[u8]) -> Result<CString, ChildError> {
    CString::new(bytes).map_err(|_| ChildError::Spawn(std::io::Error::other("argument contains a NUL byte")))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ChildError> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(ChildError::Spawn(std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 just returned these two fresh descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Where the child's input comes from and its output goes.
pub struct Stdio {
    /// `None`: observer's own standard input.
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// A forked child that has not run a single instruction of the command yet.
pub struct BlockedChild {
    pid: i32,
    gate: Option<OwnedFd>,
    exec_error: OwnedFd,
    path: PathBuf,
}

impl BlockedChild {
    /// Forks the child into a new process group; it waits at the gate until `release`. Call it
    /// from the thread that lives as long as observer (the main thread): the leader's
    /// PR_SET_PDEATHSIG fires when the thread that forked it ends.
    pub fn spawn(path: &Path, argv: &[OsString], stdio: Stdio) -> Result<Self, ChildError> {
        let c_path = cstring(path.as_os_str().as_bytes())?;
        let c_args: Vec<CString> = argv.iter().map(|a| cstring(a.as_bytes())).collect::<Result<_, _>>()?;
        let mut c_argv: Vec<*const libc::c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
        c_argv.push(std::ptr::null());
        let (gate_read, gate_write) = pipe()?;
        let (error_read, error_write) = pipe()?;
        // SAFETY: getpid has no preconditions.
        let observer = unsafe { libc::getpid() };
        // SAFETY: sigemptyset initialises the zeroed set.
        let no_signals = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            set
        };

        // SAFETY: after fork the child only calls async-signal-safe functions (setpgid, prctl,
        // sigprocmask, signal, dup2, close, read, write, execv, _exit) on data prepared before
        // the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(ChildError::Spawn(std::io::Error::last_os_error()));
        }
        if pid == 0 {
            unsafe {
                libc::setpgid(0, 0);
                // Killed with observer, however observer ends; if observer is already gone, the
                // command must not start at all.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
                if libc::getppid() != observer {
                    libc::_exit(127);
                }
                // Observer's own signal arrangements (blocked stop signals, ignored SIGPIPE,
                // SIGXFSZ, SIGTTIN) are not the command's: it starts with the defaults.
                libc::sigprocmask(libc::SIG_SETMASK, &no_signals, std::ptr::null_mut());
                for sig in [libc::SIGPIPE, libc::SIGXFSZ, libc::SIGTTIN] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                if let Some(stdin) = &stdio.stdin {
                    libc::dup2(stdin.as_raw_fd(), 0);
                }
                libc::dup2(stdio.stdout.as_raw_fd(), 1);
                libc::dup2(stdio.stderr.as_raw_fd(), 2);
                libc::close(gate_write.as_raw_fd());
                let mut byte = 0u8;
                loop {
                    let n = libc::read(gate_read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                    if n == 1 {
                        break;
                    }
                    if n == 0 || *libc::__errno_location() != libc::EINTR {
                        // The observer went away before releasing us: do not run untraced.
                        libc::_exit(127);
                    }
                }
                libc::execv(c_path.as_ptr(), c_argv.as_ptr());
                let errno = *libc::__errno_location();
                libc::write(error_write.as_raw_fd(), (&errno as *const i32).cast(), 4);
                libc::_exit(127);
            }
        }
        drop(gate_read);
        drop(error_write);
        // Also from the parent, so the group exists whichever side runs first.
        // SAFETY: plain syscall on our own child.
        unsafe { libc::setpgid(pid, pid) };
        Ok(Self { pid, gate: Some(gate_write), exec_error: error_read, path: path.to_path_buf() })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets the child exec; returns once exec has succeeded (or why it failed).
    pub fn release(&mut self) -> Result<(), ChildError> {
        if let Some(gate) = self.gate.take() {
            // SAFETY: writing one byte from a valid buffer to our pipe.
            unsafe { libc::write(gate.as_raw_fd(), b"go".as_ptr().cast(), 1) };
        }
        let mut errno = 0i32;
        // Blocks until exec closes the CLOEXEC write end (success) or the child reports errno.
        // SAFETY: reading 4 bytes into a valid i32.
        let n = unsafe { libc::read(self.exec_error.as_raw_fd(), (&mut errno as *mut i32).cast(), 4) };
        if n == 4 {
            let mut status = 0;
            // SAFETY: reaping our own child, which has exited with 127.
            unsafe { libc::waitpid(self.pid, &mut status, 0) };
            return Err(ChildError::Exec { path: self.path.clone(), reason: std::io::Error::from_raw_os_error(errno) });
        }
        Ok(())
    }
}

/// Blocks until `pid` exits and reaps it.
pub fn wait_blocking(pid: i32) -> std::io::Result<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waiting on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(ExitStatus::from_wait_status(status));
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Sends `sig` to every process of the group `pgid`; false when the group is already gone.
pub fn signal_group(pgid: i32, sig: i32) -> bool {
    // SAFETY: plain syscall.
    unsafe { libc::killpg(pgid, sig) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_status_maps_to_code_or_signal_and_shell_exit_code() {
        assert_eq!(ExitStatus::from_wait_status(3 << 8), ExitStatus::Code(3));
        let killed = ExitStatus::from_wait_status(libc::SIGKILL);
        assert_eq!(killed, ExitStatus::Signal { sig: 9, core_dumped: false });
        assert_eq!(killed.shell_code(), 137);
    }

    #[test]
    fn unknown_commands_are_reported_by_name() {
        let err = resolve("no-such-command-observer-test").unwrap_err();
        assert_eq!(err.to_string(), "command not found: no-such-command-observer-test (not a path and not in $PATH)");
        assert!(resolve("sh").is_ok());
    }
}
