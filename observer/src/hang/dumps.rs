//! The runtime's own view of its threads (`--runtime-dumps`), asked for once a hang is declared,
//! only where the runtime gives it without stopping or killing the process: the JVM's thread dump
//! (`jcmd PID Thread.print`, else SIGQUIT when the JVM handles it), CPython's stacks through
//! `py-spy dump --nonblocking` when py-spy is installed. Runtimes that dump only by dying (Go's
//! SIGQUIT) are left alone and the snapshot says so.
use std::{
    io::{self, Read, Seek, SeekFrom},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    analysis::{runtime::Runtime, snapshot::StuckSnapshot},
    out_dir::OutDir,
};

/// How long one dump command may take.
const DUMP_TIMEOUT: Duration = Duration::from_secs(20);

/// One process's dump, as its runtime wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeDump {
    pub pid: u32,
    pub text: String,
}

/// `runtime-PID.txt`, in the run (or incident) directory.
pub fn file_name(pid: u32) -> String {
    format!("runtime-{pid}.txt")
}

/// Runs `cmd` with its output in a file, killed after [`DUMP_TIMEOUT`]; its stdout (and stderr
/// after it) when it exits with success, else why not.
fn output_of(mut cmd: Command) -> Result<String, String> {
    // A file without a name (O_TMPFILE), readable by us alone: nothing another user plants in
    // the temporary directory (a link under a guessable name) can be written through or read.
    let temp_dir = std::env::temp_dir();
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(&temp_dir)
        .map_err(|e| format!("a temporary file in {}: {e}", temp_dir.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let out = file.try_clone().map_err(|e| e.to_string())?;
    let program = cmd.get_program().to_string_lossy().into_owned();
    // Output into a file, not a pipe: a thread dump can outgrow a pipe's buffer while we wait.
    let mut child =
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().map_err(|e| format!("cannot run {program}: {e}"))?;
    let deadline = Instant::now() + DUMP_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let mut text = String::new();
    let _ = file.seek(SeekFrom::Start(0)).and_then(|_| file.read_to_string(&mut text));
    match status {
        Some(s) if s.success() => Ok(text),
        Some(s) => Err(format!("{program} failed ({s}): {}", text.trim())),
        None => Err(format!("{program} did not answer within {}s", DUMP_TIMEOUT.as_secs())),
    }
}

/// The `jcmd` of the JDK the process runs (`<release>/bin/jcmd` beside its libjvm.so), else the
/// one on PATH.
fn jcmd_for(pid: u32) -> Option<PathBuf> {
    let libjvm =
        crate::proc::maps::mappings(pid).into_iter().filter_map(|m| m.path).find(|p| p.ends_with("/libjvm.so"))?;
    // <release>/lib/server/libjvm.so
    let release = Path::new(&libjvm).parent()?.parent()?.parent()?;
    Some(release.join("bin/jcmd")).filter(|p| p.is_file()).or_else(|| which::which("jcmd").ok())
}

/// Whether `pid` has a handler for SIGQUIT (`SigCgt` in /proc/<pid>/status): then SIGQUIT asks
/// for its dump instead of killing it (a JVM started with -Xrs has none).
fn catches_sigquit(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGQUIT - 1)) != 0)
}

/// A JVM's thread dump; with the note saying where it went.
fn jvm(pid: u32) -> (Option<String>, String) {
    let jcmd_error = match jcmd_for(pid) {
        Some(jcmd) => {
            let mut cmd = Command::new(&jcmd);
            cmd.arg(pid.to_string()).arg("Thread.print");
            match output_of(cmd) {
                Ok(text) => return (Some(text), format!("{} (jcmd {pid} Thread.print)", file_name(pid))),
                Err(e) => e,
            }
        }
        None => "no jcmd found beside the JVM or on PATH".to_string(),
    };
    if catches_sigquit(pid) {
        // SAFETY: plain syscall; the JVM answers SIGQUIT by printing its threads and goes on.
        if unsafe { libc::kill(pid as i32, libc::SIGQUIT) } == 0 {
            return (None, format!("{jcmd_error}; sent SIGQUIT instead: the JVM printed its threads on its stdout"));
        }
    }
    (None, format!("no thread dump: {jcmd_error}"))
}

/// CPython's Python stacks through py-spy, reading the process's memory without pausing it.
fn cpython(pid: u32) -> (Option<String>, String) {
    let Ok(py_spy) = which::which("py-spy") else {
        return (None, "no Python stacks: py-spy is not installed (pip install py-spy)".to_string());
    };
    let mut cmd = Command::new(py_spy);
    cmd.args(["dump", "--nonblocking", "--pid"]).arg(pid.to_string());
    match output_of(cmd) {
        Ok(text) => (Some(text), format!("{} (py-spy dump --nonblocking --pid {pid})", file_name(pid))),
        Err(e) => (None, format!("no Python stacks: {e}")),
    }
}

/// Asks each process's runtime for its view, and records in the snapshot where it is (or why
/// there is none). The dumps are returned to be written beside the snapshot ([`write`]).
pub fn take(snap: &mut StuckSnapshot) -> Vec<RuntimeDump> {
    let mut dumps = Vec::new();
    for p in &mut snap.processes {
        let (text, note) = match p.runtime {
            Runtime::Jvm => jvm(p.pid),
            Runtime::Cpython => cpython(p.pid),
            other => match other.dump_note() {
                Some(note) => (None, note.to_string()),
                None => continue,
            },
        };
        p.runtime_dump = note;
        if let Some(text) = text {
            dumps.push(RuntimeDump { pid: p.pid, text });
        }
    }
    dumps
}

/// Writes each dump as `runtime-PID.txt` into `dir`.
pub fn write(dumps: &[RuntimeDump], dir: &OutDir) -> io::Result<()> {
    for dump in dumps {
        dir.write(&file_name(dump.pid), &dump.text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::snapshot::ProcessSnapshot;

    #[test]
    fn a_command_output_or_why_not() {
        let mut echo = Command::new("sh");
        echo.args(["-c", "echo out; echo err >&2"]);
        assert_eq!(output_of(echo).unwrap(), "out\nerr\n");
        let mut failing = Command::new("sh");
        failing.args(["-c", "echo nope >&2; exit 3"]);
        let e = output_of(failing).unwrap_err();
        assert!(e.starts_with("sh failed (exit status: 3): nope"), "{e}");
        assert!(output_of(Command::new("/nonexistent/jcmd")).unwrap_err().starts_with("cannot run /nonexistent/jcmd"));
    }

    #[test]
    fn sigquit_is_sent_only_to_a_process_that_handles_it() {
        // This test binary does not handle SIGQUIT; a shell trapping it does.
        assert!(!catches_sigquit(std::process::id()));
        let mut trapper = Command::new("sh").args(["-c", "trap 'echo quit' QUIT; sleep 5"]).spawn().unwrap();
        let pid = trapper.id();
        let mut caught = false;
        for _ in 0..200 {
            caught = catches_sigquit(pid);
            if caught {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = trapper.kill();
        let _ = trapper.wait();
        assert!(caught);
    }

    #[test]
    fn runtimes_that_dump_only_by_dying_are_left_alone_with_a_note() {
        let mut snap = StuckSnapshot {
            processes: vec![
                ProcessSnapshot { pid: 1, runtime: Runtime::Go, ..Default::default() },
                ProcessSnapshot { pid: 2, runtime: Runtime::C, ..Default::default() },
            ],
            ..Default::default()
        };
        assert!(take(&mut snap).is_empty());
        assert!(snap.processes[0].runtime_dump.contains("SIGQUIT, which also kills"), "{:?}", snap.processes[0]);
        assert_eq!(snap.processes[1].runtime_dump, "");
        let dir = tempfile::tempdir().unwrap();
        write(&[RuntimeDump { pid: 7, text: "Full thread dump".into() }], &OutDir::open(dir.path()).unwrap()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("runtime-7.txt")).unwrap(), "Full thread dump");
    }
}
