//! The terminal observer runs at. The command's process group stays in the background, so the
//! keys that signal the foreground group (Ctrl-C, Ctrl-\, Ctrl-Z) reach observer, which snapshots
//! before it stops the command. The command's input is relayed from the terminal through a pipe,
//! so reading it does not stop the command with SIGTTIN.
use std::{
    fs::File,
    io::{self, Write},
    os::fd::{FromRawFd, OwnedFd},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::Duration,
};

/// How often the relay checks whether the run is over while the terminal is quiet.
const QUIET_CHECK: Duration = Duration::from_millis(100);

/// Copies what is typed at the terminal to the command's standard input until end of input
/// (Ctrl-D), the command closes it, or the run ends (drop).
pub struct InputRelay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl InputRelay {
    /// When observer's standard input is a terminal whose foreground is observer's process group:
    /// the pipe end the command reads instead, and the relay feeding it. `None` otherwise (a
    /// file, a pipe, or a terminal observer runs in the background of): the command reads
    /// observer's standard input itself.
    pub fn start() -> io::Result<Option<(OwnedFd, InputRelay)>> {
        // SAFETY: plain queries on fd 0.
        let foreground = unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() };
        if !foreground {
            return Ok(None);
        }
        let mut fds = [0; 2];
        // SAFETY: a valid 2-element array for pipe2.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors owned from here on.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("stdin".into()).spawn(move || relay(&flag, write))?;
        Ok(Some((read, InputRelay { stop, thread: Some(thread) })))
    }
}

impl Drop for InputRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn relay(stop: &AtomicBool, mut to: File) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let mut ready = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut ready, 1, QUIET_CHECK.as_millis() as i32) };
        if n <= 0 {
            continue;
        }
        // SAFETY: reading into a valid buffer of its length.
        let got = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        match got {
            0 => return, // end of input: the command sees it as its stdin closing
            n if n > 0 => {
                if to.write_all(&buf[..n as usize]).is_err() {
                    return; // the command closed its input
                }
            }
            // EIO: observer is in the background now (SIGTTIN is ignored); wait to be foreground.
            _ => std::thread::sleep(QUIET_CHECK),
        }
    }
}
