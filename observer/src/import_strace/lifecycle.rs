//! strace's lines that are not syscalls: `--- SIGSEGV {si_signo=..., si_code=..., si_addr=...} ---`,
//! `--- stopped by SIGTTIN ---`, `+++ exited with N +++`, `+++ killed by SIGKILL +++`,
//! `+++ superseded by execve in pid N +++`.
use super::value;
use crate::decode::{errno_by_name, si_code_by_name, signal_by_name};

/// A signal-delivery stop as strace prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigInfo {
    pub sig: i32,
    /// `si_code`, when printed and understood.
    pub code: Option<i32>,
    pub errno: i32,
    /// `si_pid`: the sending process, for signals sent by one (and SIGCHLD's child).
    pub pid: Option<u32>,
    /// `si_addr`: the faulting address.
    pub addr: Option<u64>,
}

/// What a `---` or `+++` line says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Signal(SigInfo),
    /// The thread entered a group stop (the delivery was printed before).
    Stopped(i32),
    Exited(i32),
    Killed(i32),
    /// A non-leader thread exec'd and now lives on as pid N.
    Superseded(u32),
}

/// Reads the line body `--- ... ---` or `+++ ... +++`; `None` when it is neither or not understood.
pub fn parse(body: &str) -> Option<Lifecycle> {
    if let Some(inner) = body.strip_prefix("+++ ").and_then(|b| b.strip_suffix(" +++")) {
        if let Some(code) = inner.strip_prefix("exited with ") {
            return code.trim().parse().ok().map(Lifecycle::Exited);
        }
        if let Some(rest) = inner.strip_prefix("killed by ") {
            let name = rest.split_whitespace().next()?;
            return signal_by_name(name).filter(|_| name.starts_with("SIG")).map(Lifecycle::Killed);
        }
        if let Some(pid) = inner.strip_prefix("superseded by execve in pid ") {
            return pid.trim().parse().ok().map(Lifecycle::Superseded);
        }
        return None;
    }
    let inner = body.strip_prefix("--- ")?.strip_suffix(" ---")?;
    if let Some(name) = inner.strip_prefix("stopped by ") {
        return signal_by_name(name.trim()).map(Lifecycle::Stopped);
    }
    let (name, rest) = inner.split_once(' ').unwrap_or((inner, ""));
    if !name.starts_with("SIG") {
        return None;
    }
    let sig = signal_by_name(name)?;
    let rest = rest.trim();
    let mut info = SigInfo { sig, code: None, errno: 0, pid: None, addr: None };
    if rest.starts_with('{') {
        if let Some(code) = value::field(rest, "si_code") {
            info.code = si_code_by_name(sig, code);
        }
        if let Some(errno) = value::field(rest, "si_errno") {
            info.errno =
                errno_by_name(errno).or_else(|| value::int(errno).and_then(|v| i32::try_from(v).ok())).unwrap_or(0);
        }
        info.pid = value::field(rest, "si_pid").and_then(value::int).and_then(|p| u32::try_from(p).ok());
        info.addr = value::field(rest, "si_addr").and_then(value::reg);
    } else if !(rest.is_empty() || rest.starts_with('(')) {
        // Old strace: `--- SIGCHLD (Child exited) @ 0 (0) ---`; anything else is not ours.
        return None;
    }
    Some(Lifecycle::Signal(info))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_keeps_its_code_and_address() {
        assert_eq!(
            parse("--- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---"),
            Some(Lifecycle::Signal(SigInfo { sig: 11, code: Some(1), errno: 0, pid: None, addr: Some(0x10) }))
        );
    }

    #[test]
    fn a_signal_sent_by_a_process_keeps_its_sender() {
        assert_eq!(
            parse("--- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=5205, si_uid=0} ---"),
            Some(Lifecycle::Signal(SigInfo { sig: 15, code: Some(0), errno: 0, pid: Some(5205), addr: None }))
        );
        let chld = "--- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=5206, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---";
        assert_eq!(
            parse(chld),
            Some(Lifecycle::Signal(SigInfo { sig: 17, code: Some(1), errno: 0, pid: Some(5206), addr: None }))
        );
    }

    #[test]
    fn old_style_signal_lines_keep_only_the_signal() {
        assert_eq!(
            parse("--- SIGCHLD (Child exited) @ 0 (0) ---"),
            Some(Lifecycle::Signal(SigInfo { sig: 17, code: None, errno: 0, pid: None, addr: None }))
        );
    }

    #[test]
    fn exits_kills_stops_and_supersedes() {
        assert_eq!(parse("+++ exited with 1 +++"), Some(Lifecycle::Exited(1)));
        assert_eq!(parse("+++ killed by SIGKILL +++"), Some(Lifecycle::Killed(9)));
        assert_eq!(parse("+++ killed by SIGSEGV (core dumped) +++"), Some(Lifecycle::Killed(11)));
        assert_eq!(parse("--- stopped by SIGTTIN ---"), Some(Lifecycle::Stopped(21)));
        assert_eq!(parse("+++ superseded by execve in pid 1234 +++"), Some(Lifecycle::Superseded(1234)));
    }

    #[test]
    fn garbage_between_markers_is_not_understood() {
        for line in [
            "+++ exited with x +++",
            "--- SIGNOPE {si_signo=0} ---",
            "--- hello ---",
            "+++ something +++",
            "--- SIGINT garbage ---",
        ] {
            assert_eq!(parse(line), None, "{line}");
        }
    }
}
