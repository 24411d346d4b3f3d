//! The stuck snapshot's model (`stuck.json`): for every tracked thread, its state, kernel wait
//! channel, the syscall it is blocked in and what that wait is on — fds decoded to pipes, eventfds
//! and sockets, futexes to mutex owners, waits to children. Taken by `hang`, rendered by
//! `render::stuck`, read here by the hang classifiers and by `analyze`.
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::runtime::Runtime;

pub const STUCK_TXT: &str = "stuck.txt";
pub const STUCK_JSON: &str = "stuck.json";
pub const SCHEMA: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StuckSnapshot {
    pub schema: u32,
    pub taken_at: String,
    /// Why it was taken: `timeout after 5s`, `no progress for 3s`, ...
    pub reason: String,
    /// Length of the CPU window the `cpu_*` figures cover.
    pub window_s: f64,
    /// Syscalls the tracked threads completed in that window (from the capture).
    pub syscalls_in_window: u64,
    /// How long a thread must go without progress to count as stuck: the watchdog's window
    /// (`--hang-after`), which the CPU window may exceed by a sampling interval. Absent in older
    /// snapshots (then `window_s` stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_window_s: Option<f64>,
    pub processes: Vec<ProcessSnapshot>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSnapshot {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    pub state: TaskState,
    pub maps_lines: usize,
    pub rss_kb: u64,
    pub children: Vec<u32>,
    /// The runtime recognised from the executable and the mapped libraries.
    #[serde(default)]
    pub runtime: Runtime,
    /// `go1.19.8`, `python3.11`...; empty when the files do not say.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime_version: String,
    /// Where the names of JIT code came from (`/tmp/perf-12.map`), or how to get them when a
    /// frame is in JIT code no map names; empty when no frame is in JIT code.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jit_names: String,
    /// The runtime's own dump of its threads (`runtime-PID.txt` in the run directory), or why
    /// there is none; empty unless `--runtime-dumps` asked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime_dump: String,
    pub threads: Vec<ThreadSnapshot>,
    /// The container, pod or systemd unit its cgroups name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::container::Workload>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreadSnapshot {
    pub tid: u32,
    pub comm: String,
    pub state: TaskState,
    pub wchan: String,
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    /// Share of one CPU used over the window.
    pub cpu_share: f64,
    /// Seconds since the thread last made a call that did more than wait (sleep, poll, futex):
    /// how long it has been stuck. Absent in older snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syscall: Option<BlockedCall>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fds: Vec<FdWait>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub futex: Option<FutexWait>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child_wait: Option<ChildWait>,
    /// User-space frames of a blocked thread, innermost first, as `function (file)`: unwound
    /// where the binary allows; a frame found only by scanning the stack starts with `? `.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_frames: Vec<String>,
    /// Sampled functions of a thread on CPU, by the innermost frame: (function, samples).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub samples: Vec<(String, u32)>,
    /// Sampled call chains of a thread on CPU, most samples first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stacks: Vec<SampledStack>,
    /// Where the thread is in its runtime's own words (`Mutex.lock`, `waits on a Python lock`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub activity: String,
}

/// One call chain the sampler found a thread in, and how many ticks found it there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampledStack {
    /// Function names, innermost first (`JS:*spin`, `main`...); JIT code no map names reads
    /// `[JIT code]`.
    pub frames: Vec<String>,
    pub count: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockedCall {
    pub name: String,
    pub nr: u32,
    pub args: Vec<u64>,
    /// Decoded like a trace line: `ppoll([...], 2, NULL, NULL, 8)`.
    pub text: String,
    /// Seconds since the call was entered (unknown when read from /proc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_s: Option<f64>,
    /// `kernel in-flight table` or `/proc syscall` (for calls entered before tracking began).
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FdWait {
    pub fd: i32,
    pub target: String,
    /// eventfd, pipe, socket, tty, file, anon_inode, unknown
    pub kind: String,
    /// Who holds the other end / what it is, in words (`write end held only by this process (fd 5)`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The tracked processes holding the other end (a pipe's write end, a unix socket's peer, the
    /// eventfd itself): who could wake this wait. Empty when none or unknown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_end: Vec<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FutexWait {
    pub addr: u64,
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word: Option<i32>,
    /// The thread owning the lock, read from a glibc pthread_mutex_t (`__owner`, 8 bytes after the
    /// lock word) or from a PI futex word, when it names a live thread of the process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_tid: Option<u32>,
    /// The futex word holds a live tid: pthread_join waiting for that thread to exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joining_tid: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildWait {
    /// `any child`, `pid 123`, `process group 5`.
    pub waits_for: String,
    pub children: Vec<ChildState>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildState {
    pub pid: u32,
    pub comm: String,
    pub state: TaskState,
}

/// Share of one CPU a thread must use to count as spinning.
pub const SPIN_SHARE: f64 = 0.9;
/// Share of a CPU each of several threads passing a lock must use to count as spinning together
/// (with [`SPIN_SHARE`] between them).
pub const GROUP_SPIN_SHARE: f64 = 0.2;

/// A task's scheduler state, the letter of `/proc/<pid>/stat` (written as that letter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// `R`: running or runnable.
    Running,
    /// `S`: interruptible sleep.
    Sleeping,
    /// `D`: uninterruptible sleep (usually I/O).
    DiskSleep,
    /// `T`: stopped by a signal.
    Stopped,
    /// `t`: stopped by a tracer.
    TracingStop,
    /// `I`: an idle kernel thread.
    Idle,
    /// `Z`: exited, not yet reaped.
    Zombie,
    /// `X`: dead.
    Dead,
    /// Any other letter a kernel may report.
    Other(char),
    /// Not read.
    #[default]
    Unknown,
}

impl TaskState {
    /// The letter `/proc` uses; `None` when not read.
    pub fn letter(self) -> Option<char> {
        Some(match self {
            TaskState::Running => 'R',
            TaskState::Sleeping => 'S',
            TaskState::DiskSleep => 'D',
            TaskState::Stopped => 'T',
            TaskState::TracingStop => 't',
            TaskState::Idle => 'I',
            TaskState::Zombie => 'Z',
            TaskState::Dead => 'X',
            TaskState::Other(c) => c,
            TaskState::Unknown => return None,
        })
    }

    /// Stopped, by a signal or a tracer.
    pub fn is_stopped(self) -> bool {
        matches!(self, TaskState::Stopped | TaskState::TracingStop)
    }

    /// Off CPU waiting for something (asleep, stopped or idle).
    pub fn is_waiting(self) -> bool {
        matches!(self, TaskState::Sleeping | TaskState::DiskSleep | TaskState::Idle) || self.is_stopped()
    }
}

impl From<char> for TaskState {
    fn from(letter: char) -> Self {
        match letter {
            'R' => TaskState::Running,
            'S' => TaskState::Sleeping,
            'D' => TaskState::DiskSleep,
            'T' => TaskState::Stopped,
            't' => TaskState::TracingStop,
            'I' => TaskState::Idle,
            'Z' => TaskState::Zombie,
            'X' => TaskState::Dead,
            other => TaskState::Other(other),
        }
    }
}

impl From<&str> for TaskState {
    fn from(text: &str) -> Self {
        text.chars().next().map_or(TaskState::Unknown, TaskState::from)
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.letter() {
            Some(c) => f.pad(c.encode_utf8(&mut [0; 4])),
            None => f.pad(""),
        }
    }
}

impl Serialize for TaskState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(TaskState::from(text.as_str()))
    }
}

impl StuckSnapshot {
    pub fn threads(&self) -> impl Iterator<Item = (&ProcessSnapshot, &ThreadSnapshot)> {
        self.processes.iter().flat_map(|p| p.threads.iter().map(move |t| (p, t)))
    }

    pub fn process(&self, pid: u32) -> Option<&ProcessSnapshot> {
        self.processes.iter().find(|p| p.pid == pid)
    }

    pub fn read(dir: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(dir.join(STUCK_JSON)).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states_are_written_as_the_proc_letter() {
        for letter in ['R', 'S', 'D', 'T', 't', 'I', 'Z', 'X', 'P'] {
            let state = TaskState::from(letter);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{letter}\""));
            assert_eq!(serde_json::from_str::<TaskState>(&json).unwrap(), state);
        }
        assert_eq!(TaskState::from('t'), TaskState::TracingStop);
        assert!(TaskState::from('t').is_stopped() && !TaskState::Running.is_waiting());
        assert_eq!(serde_json::to_string(&TaskState::Unknown).unwrap(), "\"\"");
    }
}
