//! Facts read when a failure arrives (`failures.json`): the failing task's cgroups and resource
//! limits at that moment. They can differ from the preflight's: a wrapper joins a cgroup or sets a
//! limit after the start (`sh -c 'echo $$ > cgroup.procs; exec app'`, systemd-run, a container).
use std::{io, path::Path};

use serde::{Deserialize, Serialize};

use crate::preflight::{CgroupInfo, Limit};

pub const FAILURES_JSON: &str = "failures.json";

/// What kind of resource a failure was short of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shortage {
    /// A task could not be created (clone/fork EAGAIN).
    Tasks,
    /// Memory could not be mapped or committed (mmap/mprotect/brk ENOMEM).
    Memory,
}

/// The first failure of one kind in one process, and what the kernel said about the task then.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureFacts {
    pub pid: u32,
    pub tid: u32,
    pub shortage: Option<Shortage>,
    /// The failing call's record time (CLOCK_BOOTTIME ns).
    pub ts_ns: u64,
    /// Whether the task could still be read (a process that dies at once leaves only its record).
    pub read: bool,
    /// The ancestor read instead, when the failing process was already gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_from: Option<u32>,
    pub cgroups: Vec<CgroupInfo>,
    pub limits: Vec<Limit>,
}

impl FailureFacts {
    /// The pids cgroup that applies: a limited one first, else any with the controller.
    pub fn pids_cgroup(&self) -> Option<&CgroupInfo> {
        crate::preflight::pids_cgroup(&self.cgroups)
    }

    /// The container, pod or systemd unit the failing task was in.
    pub fn workload(&self) -> Option<crate::container::Workload> {
        crate::container::Workload::from_cgroups(self.cgroups.iter().map(|c| (c.hierarchy.as_str(), c.path.as_str())))
    }

    pub fn limit(&self, name: &str) -> Option<&Limit> {
        self.limits.iter().find(|l| l.name == name)
    }
}

/// The facts recorded for `pid`'s first failure of this kind.
pub fn find(facts: &[FailureFacts], pid: u32, shortage: Shortage) -> Option<&FailureFacts> {
    facts.iter().find(|f| f.pid == pid && f.shortage == Some(shortage) && f.read)
}

/// As [`find`]; for a process that was gone before it could be read, the facts of its nearest
/// ancestor that failed the same way (cgroups and limits are inherited at fork).
pub fn find_inherited(
    facts: &[FailureFacts],
    pid: u32,
    shortage: Shortage,
    parent_of: impl Fn(u32) -> Option<u32>,
) -> Option<&FailureFacts> {
    let mut at = Some(pid);
    let mut hops = 0;
    while let Some(p) = at.filter(|_| hops < 64) {
        if let Some(f) = find(facts, p, shortage) {
            return Some(f);
        }
        at = parent_of(p);
        hops += 1;
    }
    None
}

pub fn write(dir: &crate::out_dir::OutDir, facts: &[FailureFacts]) -> io::Result<()> {
    if facts.is_empty() {
        return Ok(());
    }
    dir.write(FAILURES_JSON, crate::rundir::json_text(facts).map_err(io::Error::other)?)
}

/// The facts a run directory holds; none when it has no `failures.json` (older captures too).
pub fn read(dir: &Path) -> Vec<FailureFacts> {
    std::fs::read_to_string(dir.join(FAILURES_JSON))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}
