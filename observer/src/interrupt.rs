//! Signals that ask observer to stop. Every signal whose default action would end observer is
//! blocked before the first thread exists and taken by one thread with `sigwaitinfo`, so none can
//! end observer while its command runs on untraced: the first asks the capture to stop (snapshot,
//! SIGTERM, grace, SIGKILL), a second forces it (SIGKILL now); one that arrives while observer
//! writes the trace text at the end cuts the text short. Ctrl-Z stops the command's process group
//! together with observer; `fg` resumes both.
use std::{
    io,
    sync::{
        atomic::{AtomicI32, AtomicU32, Ordering},
        Arc,
    },
};

use tokio::sync::mpsc;

/// Signals handled like SIGTERM: each one another process or the terminal can send whose default
/// action ends a process. The faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS) and
/// abort's SIGABRT would be observer crashing, and SIGKILL cannot be caught: for those the
/// command's leader has PR_SET_PDEATHSIG (see [`crate::child`]).
pub fn stop_signals() -> Vec<i32> {
    let mut signals = vec![
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGSTKFLT,
        libc::SIGXCPU,
    ];
    signals.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    signals
}

/// The process group Ctrl-Z stops along with observer (0: none).
static JOB_GROUP: AtomicI32 = AtomicI32::new(0);

/// Names the command's process group, stopped and continued with observer on Ctrl-Z / `fg`.
pub fn set_job_group(pgid: Option<i32>) {
    JOB_GROUP.store(pgid.unwrap_or(0), Ordering::SeqCst);
}

/// The signals a capture is asked to stop by, in arrival order, and how many came.
pub struct Interrupts {
    rx: mpsc::UnboundedReceiver<&'static str>,
    received: Arc<AtomicU32>,
}

/// Feeds an [`Interrupts`] by hand (tests, and commands that drive a capture themselves).
#[derive(Clone)]
pub struct InterruptSender {
    tx: mpsc::UnboundedSender<&'static str>,
    received: Arc<AtomicU32>,
}

impl InterruptSender {
    pub fn send(&self, name: &'static str) {
        self.received.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(name);
    }
}

/// The count of signals, readable from code that runs without the runtime: rendering the trace
/// text at the end stops when one arrives meanwhile.
#[derive(Clone, Debug, Default)]
pub struct Hurry(Arc<AtomicU32>);

impl Hurry {
    pub fn count(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Interrupts {
    /// An `Interrupts` nothing feeds but `sender`.
    pub fn manual() -> (InterruptSender, Interrupts) {
        let (tx, rx) = mpsc::unbounded_channel();
        let received = Arc::new(AtomicU32::new(0));
        (InterruptSender { tx, received: received.clone() }, Interrupts { rx, received })
    }

    /// Takes every stop signal (and SIGTSTP) from now on. Call it before any other thread is
    /// started: threads inherit the blocked mask, which is what keeps the signals off them.
    pub fn from_signals() -> io::Result<Interrupts> {
        let (sender, interrupts) = Self::manual();
        let mut set = empty_set();
        for sig in stop_signals().into_iter().chain([libc::SIGTSTP]) {
            // SAFETY: adding a valid signal number to an initialised set.
            unsafe { libc::sigaddset(&mut set, sig) };
        }
        // SAFETY: a valid set; blocks these signals in this thread and every thread started later.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // A file larger than RLIMIT_FSIZE fails with EFBIG, a write error the capture survives,
        // rather than ending observer with SIGXFSZ. A background read of the terminal fails with
        // EIO rather than stopping observer. The command gets both back at their defaults.
        // SAFETY: setting dispositions to SIG_IGN.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            libc::signal(libc::SIGTTIN, libc::SIG_IGN);
        }
        std::thread::Builder::new().name("signals".into()).spawn(move || wait_for_signals(set, sender))?;
        Ok(interrupts)
    }

    /// The next signal's name; pending forever once nothing can send one.
    pub async fn recv(&mut self) -> &'static str {
        match self.rx.recv().await {
            Some(name) => name,
            None => std::future::pending().await,
        }
    }

    /// How many signals arrived so far (taken or not).
    pub fn received(&self) -> u32 {
        self.received.load(Ordering::SeqCst)
    }

    pub fn hurry(&self) -> Hurry {
        Hurry(self.received.clone())
    }
}

fn empty_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        set
    }
}

/// The `signals` thread: turns each signal into a message; Ctrl-Z into a stop of the command's
/// group and of observer (resumed together).
fn wait_for_signals(set: libc::sigset_t, sender: InterruptSender) {
    loop {
        // SAFETY: a valid set; a null siginfo pointer is allowed.
        let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if sig < 0 {
            continue; // EINTR
        }
        if sig == libc::SIGTSTP {
            stop_with_job();
            continue;
        }
        sender.send(signal_name(sig));
    }
}

fn stop_with_job() {
    let group = JOB_GROUP.load(Ordering::SeqCst);
    // SAFETY: plain syscalls. SIGSTOP raised in this very thread stops it (and every other
    // thread) before the call returns to the next line; sent to the process, another thread
    // could take it while this one runs on and continues the group at once.
    unsafe {
        if group > 0 {
            libc::killpg(group, libc::SIGSTOP);
        }
        libc::raise(libc::SIGSTOP);
        if group > 0 {
            libc::killpg(group, libc::SIGCONT);
        }
    }
}

/// `SIGHUP`, `SIGRT_2`: the name strace gives a stop signal.
fn signal_name(sig: i32) -> &'static str {
    crate::decode::signal_name(sig).unwrap_or("a signal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stop_signal_has_a_name_of_its_own() {
        let names: std::collections::BTreeSet<&str> = stop_signals().into_iter().map(signal_name).collect();
        assert_eq!(names.len(), stop_signals().len());
        assert!(!names.contains("a signal"), "{names:?}");
        assert!(names.contains("SIGHUP") && names.contains("SIGRT_2"), "{names:?}");
    }

    #[tokio::test]
    async fn signals_arrive_in_order_and_are_counted() {
        let (sender, mut interrupts) = Interrupts::manual();
        let hurry = interrupts.hurry();
        sender.send("SIGTERM");
        assert_eq!(interrupts.recv().await, "SIGTERM");
        sender.send("SIGINT");
        assert_eq!(interrupts.recv().await, "SIGINT");
        assert_eq!((hurry.count(), interrupts.received()), (2, 2));
    }
}
