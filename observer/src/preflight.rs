//! `preflight.txt` and `preflight.json`: the limits, cgroups, memory and environment the traced
//! child starts with — the data model and its text. Reading it from a live process is
//! `proc::preflight`; which environment values are kept out is `redact`.
use std::{fmt::Write as _, io, path::Path};

use serde::{Deserialize, Deserializer, Serialize};

use crate::out_dir::OutDir;

pub const PREFLIGHT_TXT: &str = "preflight.txt";
pub const PREFLIGHT_JSON: &str = "preflight.json";

/// The sysctls that bound memory commitment and thread/process creation, in the order reported.
pub const SYSCTLS: [&str; 6] = [
    "vm.overcommit_memory",
    "vm.overcommit_ratio",
    "vm.overcommit_kbytes",
    "vm.max_map_count",
    "kernel.threads-max",
    "kernel.pid_max",
];

/// The value of every variable of a process observer may not show (another user's process).
pub const NOT_KEPT: &str = "<not kept>";

/// What the traced child was allowed to use when it started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preflight {
    pub pid: u32,
    pub taken_at: String,
    pub kernel_release: String,
    pub cpus: u32,
    pub uid: u32,
    pub gid: u32,
    /// Every row of `/proc/<pid>/limits`, in the kernel's order.
    pub limits: Vec<Limit>,
    /// One entry per line of `/proc/<pid>/cgroup`.
    pub cgroups: Vec<CgroupInfo>,
    pub meminfo: MemInfo,
    /// `(name, value)` in the order of [`SYSCTLS`]; unreadable ones are left out.
    pub sysctls: Vec<(String, String)>,
    /// Sorted by name, secrets replaced by `redact::REDACTED` (see `redact`), or every value by
    /// [`NOT_KEPT`] (see `environment_values_not_kept`).
    pub environment: Vec<(String, String)>,
    /// Why no value of the environment is kept (a process of another user), when none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_values_not_kept: Option<String>,
}

/// One row of `/proc/<pid>/limits`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// As the kernel names it, e.g. "Max processes".
    pub name: String,
    /// `None` is unlimited.
    pub soft: Option<u64>,
    /// `None` is unlimited.
    pub hard: Option<u64>,
    /// e.g. "bytes"; empty for the priorities, which have none.
    pub unit: String,
}

/// One cgroup the child belongs to, with what the pids and memory controllers say about it.
///
/// For the `Option<Option<u64>>` fields, `None` means the controller does not apply here (or could
/// not be read) and `Some(None)` means it applies without a limit ("max"). In JSON the former is
/// an absent field and the latter `null`, so the two survive a round trip.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupInfo {
    /// "v2", or the v1 hierarchy's controllers as `/proc/<pid>/cgroup` lists them, e.g. "pids".
    pub hierarchy: String,
    /// Relative to the hierarchy's root, e.g. "/user.slice/session-2.scope".
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub pids_max: Option<Option<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_current: Option<u64>,
    /// `pids.events`' `max`: how many forks the limit refused so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_refused: Option<u64>,
    /// Bytes: `memory.max` (v2) or `memory.limit_in_bytes` (v1).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub memory_max: Option<Option<u64>>,
    /// Bytes: `memory.current` (v2) or `memory.usage_in_bytes` (v1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_current: Option<u64>,
}

/// The `/proc/meminfo` lines that decide whether an allocation (or a thread stack) can be committed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemInfo {
    pub mem_total_kb: Option<u64>,
    pub committed_as_kb: Option<u64>,
    pub commit_limit_kb: Option<u64>,
}

/// A field that is present in JSON is `Some`, even when its value is `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

impl Preflight {
    pub fn limit(&self, name: &str) -> Option<&Limit> {
        self.limits.iter().find(|l| l.name == name)
    }

    pub fn sysctl(&self, name: &str) -> Option<&str> {
        self.sysctls.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The container, pod or systemd unit the process started in, when its cgroups name one.
    pub fn workload(&self) -> Option<crate::container::Workload> {
        crate::container::Workload::from_cgroups(self.cgroups.iter().map(|c| (c.hierarchy.as_str(), c.path.as_str())))
    }

    /// The first cgroup whose pids controller sets a number, else the first where the controller
    /// applies but says "max": a number is what explains a failed clone, "max" rules that out.
    pub fn pids_cgroup(&self) -> Option<&CgroupInfo> {
        pids_cgroup(&self.cgroups)
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "pid: {}", self.pid);
        let _ = writeln!(out, "taken_at: {}", self.taken_at);
        let _ = writeln!(out, "kernel_release: {}", self.kernel_release);
        let _ = writeln!(out, "cpus: {}", self.cpus);
        let _ = writeln!(out, "uid: {}", self.uid);
        let _ = writeln!(out, "gid: {}", self.gid);

        out.push_str("\n[limits]\n");
        for l in &self.limits {
            let unit = if l.unit.is_empty() { String::new() } else { format!(" {}", l.unit) };
            let _ = writeln!(out, "{}: soft={} hard={}{unit}", l.name, or_unlimited(l.soft), or_unlimited(l.hard));
        }

        out.push_str("\n[cgroups]\n");
        for c in &self.cgroups {
            let _ = write!(out, "{}: {}", c.hierarchy, c.path);
            if let Some(max) = c.pids_max {
                let _ = write!(out, " pids.max={}", or_max(max));
            }
            if let Some(cur) = c.pids_current {
                let _ = write!(out, " pids.current={cur}");
            }
            if let Some(max) = c.memory_max {
                let _ = write!(out, " memory.max={}", or_max(max));
            }
            if let Some(cur) = c.memory_current {
                let _ = write!(out, " memory.current={cur}");
            }
            out.push('\n');
        }

        out.push_str("\n[meminfo]\n");
        for (name, value) in [
            ("MemTotal", self.meminfo.mem_total_kb),
            ("Committed_AS", self.meminfo.committed_as_kb),
            ("CommitLimit", self.meminfo.commit_limit_kb),
        ] {
            if let Some(v) = value {
                let _ = writeln!(out, "{name}: {v} kB");
            }
        }

        out.push_str("\n[sysctls]\n");
        for (k, v) in &self.sysctls {
            let _ = writeln!(out, "{k}: {}", one_line(v));
        }

        out.push_str("\n[environment]\n");
        if let Some(why) = &self.environment_values_not_kept {
            let _ = writeln!(out, "# values not kept: {why}");
        }
        for (k, v) in &self.environment {
            let _ = writeln!(out, "{}: {}", one_line(k), one_line(v));
        }
        out
    }

    pub fn to_json(&self) -> String {
        crate::rundir::json_text(self).expect("plain values serialize")
    }

    pub fn write(&self, dir: &OutDir) -> io::Result<()> {
        dir.write(PREFLIGHT_TXT, self.to_text())?;
        dir.write(PREFLIGHT_JSON, self.to_json())
    }

    /// The snapshot a run directory holds, if it holds a readable one.
    pub fn read(dir: &Path) -> Option<Preflight> {
        let text = std::fs::read_to_string(dir.join(PREFLIGHT_JSON)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

fn or_unlimited(v: Option<u64>) -> String {
    v.map_or_else(|| "unlimited".to_string(), |v| v.to_string())
}

fn or_max(v: Option<u64>) -> String {
    v.map_or_else(|| "max".to_string(), |v| v.to_string())
}

/// Keeps one fact per line in preflight.txt even when an environment value holds newlines.
fn one_line(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r")
}

/// The pids cgroup that applies among `cgroups`: a limited one first, else any with the controller.
pub fn pids_cgroup(cgroups: &[CgroupInfo]) -> Option<&CgroupInfo> {
    cgroups
        .iter()
        .find(|c| matches!(c.pids_max, Some(Some(_))))
        .or_else(|| cgroups.iter().find(|c| c.pids_max.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::REDACTED;

    #[test]
    fn json_written_to_a_run_directory_reads_back_identically() {
        let p = Preflight {
            pid: 42,
            taken_at: "2026-01-01T00:00:00Z".into(),
            kernel_release: "6.1.0".into(),
            cpus: 4,
            uid: 1000,
            gid: 1000,
            limits: vec![
                Limit { name: "Max stack size".into(), soft: Some(8388608), hard: None, unit: "bytes".into() },
                Limit { name: "Max nice priority".into(), soft: Some(0), hard: Some(0), unit: String::new() },
            ],
            cgroups: vec![
                CgroupInfo {
                    hierarchy: "pids".into(),
                    path: "/".into(),
                    pids_max: Some(None),
                    ..CgroupInfo::default()
                },
                CgroupInfo {
                    hierarchy: "v2".into(),
                    path: "/a".into(),
                    pids_max: Some(Some(10)),
                    pids_current: Some(2),
                    memory_max: Some(Some(1 << 30)),
                    memory_current: Some(4096),
                    ..CgroupInfo::default()
                },
                CgroupInfo { hierarchy: "cpu".into(), path: "/".into(), ..CgroupInfo::default() },
            ],
            meminfo: MemInfo { mem_total_kb: Some(1), committed_as_kb: Some(2), commit_limit_kb: None },
            sysctls: vec![("vm.overcommit_memory".into(), "0".into())],
            environment: vec![("API_KEY".into(), REDACTED.into()), ("PATH".into(), "/bin".into())],
            environment_values_not_kept: None,
        };
        let tmp = tempfile::tempdir().unwrap();
        p.write(&OutDir::open(tmp.path()).unwrap()).unwrap();
        assert!(p.to_json().ends_with("}\n"));
        assert_eq!(Preflight::read(tmp.path()), Some(p.clone()));
        assert_eq!(p.pids_cgroup().map(|c| c.path.as_str()), Some("/a"));
        let text = std::fs::read_to_string(tmp.path().join(PREFLIGHT_TXT)).unwrap();
        assert!(text.contains("pids: / pids.max=max\n"), "{text}");
        assert!(text.contains("API_KEY: <redacted>\n"));
        assert_eq!(Preflight::read(&tmp.path().join("absent")), None);
    }
}
