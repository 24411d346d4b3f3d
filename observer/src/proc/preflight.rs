//! The preflight of a process, read from /proc and its cgroup directories: its limits (rows of
//! `/proc/<pid>/limits` as the kernel lists them), cgroups with their pids and memory controllers,
//! the host's memory commitment and sysctls, and its environment with secrets redacted — or only
//! its names, for a process of another user.
use std::path::{Path, PathBuf};

use procfs::{
    process::{MountInfo, Process},
    Current, Meminfo,
};

use crate::{
    preflight::{CgroupInfo, Limit, MemInfo, Preflight, NOT_KEPT, SYSCTLS},
    redact,
};

/// cgroup v1 memory reports "no limit" as a page-rounded LONG_MAX rather than "max"; no machine
/// has anywhere near 4 EiB, so anything this large means unlimited whatever the page size.
const V1_UNLIMITED_FLOOR: u64 = 1 << 62;

/// Snapshots `pid` (and the system it runs on). Never fails: whatever cannot be read stays empty.
pub fn take(pid: u32, taken_at: String) -> Preflight {
    let process = i32::try_from(pid).ok().and_then(|p| Process::new(p).ok());
    let (uid, gid) = process
        .as_ref()
        .and_then(|p| p.status().ok())
        .map(|s| (s.ruid, s.rgid))
        // The child is forked from us and has not exec'd yet, so it still has our ids.
        .unwrap_or_else(|| unsafe { (libc::getuid(), libc::getgid()) });
    let values_not_kept = (!belongs_to_invoker(uid)).then(|| {
        // SAFETY: getuid has no preconditions.
        let ours = unsafe { libc::getuid() };
        format!("the process belongs to uid {uid}, not to the user running observer (uid {ours})")
    });
    let limits = limits(pid);
    let meminfo = Meminfo::current()
        .map(|m| MemInfo {
            mem_total_kb: Some(m.mem_total / 1024),
            committed_as_kb: Some(m.committed_as / 1024),
            commit_limit_kb: m.commit_limit.map(|v| v / 1024),
        })
        .unwrap_or_default();
    let sysctls = SYSCTLS.iter().filter_map(|name| super::sysctl(name).map(|v| (name.to_string(), v))).collect();
    let mut environment: Vec<(String, String)> = process
        .as_ref()
        .and_then(|p| p.environ().ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let (k, v) = (k.to_string_lossy().into_owned(), v.to_string_lossy());
            let v = if values_not_kept.is_some() { NOT_KEPT.to_string() } else { redact::value(&k, &v) };
            (k, v)
        })
        .collect();
    environment.sort();
    // SAFETY: sysconf only reads a system constant.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    Preflight {
        pid,
        taken_at,
        kernel_release: super::sysctl("kernel.osrelease").unwrap_or_default(),
        cpus: u32::try_from(cpus).unwrap_or(0),
        uid,
        gid,
        limits,
        cgroups: process.as_ref().map(read_cgroups).unwrap_or_default(),
        meminfo,
        sysctls,
        environment,
        environment_values_not_kept: values_not_kept,
    }
}

/// Whether a process of `uid` belongs to whoever runs observer: its real uid, or under sudo the
/// user who ran sudo (`SUDO_UID`, which only sudo sets for a root process). Anyone else's
/// environment is theirs: /proc keeps it from other users (`environ` is 0400), and so does observer.
fn belongs_to_invoker(uid: u32) -> bool {
    // SAFETY: getuid has no preconditions.
    let ours = unsafe { libc::getuid() };
    uid == ours || (ours == 0 && std::env::var("SUDO_UID").ok().and_then(|u| u.parse::<u32>().ok()) == Some(uid))
}

/// Rows of a `/proc/<pid>/limits` text, parsed here rather than by procfs: its `Limits` keeps 16
/// named fields and drops the kernel's row names, order and units, which preflight reports as read
/// (and a kernel adding a row would lose it). Split on whitespace rather than the kernel's column widths
/// because a 20-digit value fills its column and leaves a single space; names never hold a value
/// token, so the values and unit are found from the end of the row.
pub fn parse_limits(text: &str) -> Vec<Limit> {
    fn value(token: &str) -> Option<Option<u64>> {
        if token == "unlimited" {
            Some(None)
        } else {
            token.parse().ok().map(Some)
        }
    }
    let mut limits = Vec::new();
    for line in text.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(&last) = tokens.last() else { continue };
        let (values_end, unit) = if value(last).is_some() { (tokens.len(), "") } else { (tokens.len() - 1, last) };
        if values_end < 3 {
            continue;
        }
        let (Some(soft), Some(hard)) = (value(tokens[values_end - 2]), value(tokens[values_end - 1])) else {
            // The header row ("Limit  Soft Limit  Hard Limit  Units") ends up here.
            continue;
        };
        limits.push(Limit { name: tokens[..values_end - 2].join(" "), soft, hard, unit: unit.to_string() });
    }
    limits
}

fn read_cgroups(process: &Process) -> Vec<CgroupInfo> {
    let Ok(groups) = process.cgroups() else { return Vec::new() };
    // Our own mount table, not the child's: the directories are opened from this process.
    let mounts = Process::myself().and_then(|p| p.mountinfo()).map(|m| m.0).unwrap_or_default();
    groups
        .0
        .iter()
        .map(|g| {
            let v2 = g.hierarchy == 0 && g.controllers.is_empty();
            let dir = cgroup_dir(&mounts, v2, &g.controllers, &g.pathname);
            read_cgroup(v2, &g.controllers, &g.pathname, dir.as_deref())
        })
        .collect()
}

/// Where the cgroup at `path` (as `/proc/<pid>/cgroup` gives it) lives in our mount table.
fn cgroup_dir(mounts: &[MountInfo], v2: bool, controllers: &[String], path: &str) -> Option<PathBuf> {
    let is_hierarchy = |m: &MountInfo| {
        if v2 {
            return m.fs_type == "cgroup2";
        }
        m.fs_type == "cgroup"
            && controllers.iter().all(|c| match c.split_once('=') {
                // Named hierarchies ("name=systemd") carry their name as a `name=` super option.
                Some((key, val)) => m.super_options.get(key).is_some_and(|v| v.as_deref() == Some(val)),
                None => m.super_options.contains_key(c.as_str()),
            })
    };
    // A mount may expose only a subtree (its `root`), as in containers without a cgroup namespace.
    mounts.iter().filter(|m| is_hierarchy(m)).find_map(|m| {
        let rest = if m.root == "/" { Some(path) } else { path.strip_prefix(m.root.as_str()) }?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some(m.mount_point.join(rest.trim_start_matches('/')))
    })
}

fn read_cgroup(v2: bool, controllers: &[String], path: &str, dir: Option<&Path>) -> CgroupInfo {
    let mut info = CgroupInfo {
        hierarchy: if v2 { "v2".to_string() } else { controllers.join(",") },
        path: path.to_string(),
        ..CgroupInfo::default()
    };
    let Some(dir) = dir else { return info };
    let has = |name: &str| {
        if v2 {
            read_trimmed(&dir.join("cgroup.controllers")).is_some_and(|c| c.split_whitespace().any(|c| c == name))
        } else {
            controllers.iter().any(|c| c == name)
        }
    };
    // Root cgroups have no limit files at all: nothing can be set there, so they are unlimited.
    let root_unlimited = if path == "/" { Some(None) } else { None };
    let limit = |file: &str| match read_trimmed(&dir.join(file)) {
        Some(text) => parse_cgroup_limit(&text),
        None => root_unlimited,
    };
    let number = |file: &str| read_trimmed(&dir.join(file)).and_then(|t| t.parse().ok());
    if has("pids") {
        info.pids_max = limit("pids.max");
        info.pids_current = number("pids.current");
        info.pids_refused = read_trimmed(&dir.join("pids.events"))
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("max ")).and_then(|n| n.trim().parse().ok()));
    }
    if has("memory") {
        let (max, current) =
            if v2 { ("memory.max", "memory.current") } else { ("memory.limit_in_bytes", "memory.usage_in_bytes") };
        info.memory_max = limit(max);
        info.memory_current = number(current);
    }
    info
}

/// A cgroup limit file's value: `Some(None)` for no limit, `None` if it is not a limit at all.
fn parse_cgroup_limit(text: &str) -> Option<Option<u64>> {
    match text {
        "max" => Some(None),
        _ => text.parse::<u64>().ok().map(|v| if v >= V1_UNLIMITED_FLOOR { None } else { Some(v) }),
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|t| t.trim().to_string())
}

/// The cgroups and resource limits of `pid` now: what explains a failure when it happens (a
/// wrapper may have moved the command into a cgroup, or set a limit, after the start).
pub fn task_limits(pid: u32) -> (Vec<CgroupInfo>, Vec<Limit>) {
    let process = i32::try_from(pid).ok().and_then(|p| Process::new(p).ok());
    (process.as_ref().map(read_cgroups).unwrap_or_default(), limits(pid))
}

/// The cgroup at `path` in hierarchy `root` (the id `/proc/cgroups` gives; 0 for v2), read now:
/// for a task that moved into it during the capture and is gone before it could be read.
pub fn cgroup_in_hierarchy(root: i32, path: &str) -> Option<CgroupInfo> {
    let controllers: Vec<String> = if root == 0 {
        Vec::new()
    } else {
        let table = std::fs::read_to_string("/proc/cgroups").ok()?;
        table
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (name, id) = (f.next()?, f.next()?.parse::<i32>().ok()?);
                (id == root).then(|| name.to_string())
            })
            .collect()
    };
    if root != 0 && controllers.is_empty() {
        return None;
    }
    let mounts = Process::myself().and_then(|p| p.mountinfo()).map(|m| m.0).unwrap_or_default();
    let dir = cgroup_dir(&mounts, root == 0, &controllers, path);
    Some(read_cgroup(root == 0, &controllers, path, dir.as_deref()))
}

/// Every row of `/proc/<pid>/limits` (none when unreadable).
fn limits(pid: u32) -> Vec<Limit> {
    std::fs::read_to_string(format!("/proc/{pid}/limits")).map(|t| parse_limits(&t)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS_SAMPLE: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max stack size            8388608              unlimited            bytes     
Max processes             96364                96364                processes 
Max address space         18446744073709551614 unlimited            bytes     
Max nice priority         0                    0                    
Max realtime timeout      unlimited            unlimited            us        
";

    #[test]
    fn parses_every_limits_row_with_unlimited_as_none() {
        let limits = parse_limits(LIMITS_SAMPLE);
        let names: Vec<&str> = limits.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Max cpu time",
                "Max stack size",
                "Max processes",
                "Max address space",
                "Max nice priority",
                "Max realtime timeout"
            ]
        );
        assert_eq!(limits[0], Limit { name: "Max cpu time".into(), soft: None, hard: None, unit: "seconds".into() });
        assert_eq!(limits[1].soft, Some(8388608));
        assert_eq!(limits[1].hard, None);
        assert_eq!(
            limits[2],
            Limit { name: "Max processes".into(), soft: Some(96364), hard: Some(96364), unit: "processes".into() }
        );
        // A 20-digit value leaves one space before the next column.
        assert_eq!(limits[3].soft, Some(18446744073709551614));
        assert_eq!(limits[3].hard, None);
        assert_eq!(
            limits[4],
            Limit { name: "Max nice priority".into(), soft: Some(0), hard: Some(0), unit: String::new() }
        );
        assert_eq!(limits[5].unit, "us");
    }

    #[test]
    fn cgroup_limits_read_max_and_v1_huge_values_as_unlimited() {
        assert_eq!(parse_cgroup_limit("max"), Some(None));
        assert_eq!(parse_cgroup_limit("4096"), Some(Some(4096)));
        assert_eq!(parse_cgroup_limit("9223372036854771712"), Some(None));
        assert_eq!(parse_cgroup_limit("junk"), None);
    }

    #[test]
    fn reads_v1_and_v2_controller_files_from_a_cgroup_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let v1 = tmp.path().join("v1");
        std::fs::create_dir(&v1).unwrap();
        std::fs::write(v1.join("pids.max"), "max\n").unwrap();
        std::fs::write(v1.join("pids.current"), "7\n").unwrap();
        let info = read_cgroup(false, &["pids".to_string()], "/a", Some(&v1));
        assert_eq!(info.hierarchy, "pids");
        assert_eq!((info.pids_max, info.pids_current), (Some(None), Some(7)));
        assert_eq!(info.memory_max, None);

        let v2 = tmp.path().join("v2");
        std::fs::create_dir(&v2).unwrap();
        std::fs::write(v2.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        std::fs::write(v2.join("pids.max"), "512\n").unwrap();
        std::fs::write(v2.join("pids.current"), "3\n").unwrap();
        std::fs::write(v2.join("pids.events"), "max 7\n").unwrap();
        std::fs::write(v2.join("memory.max"), "max\n").unwrap();
        std::fs::write(v2.join("memory.current"), "1048576\n").unwrap();
        let info = read_cgroup(true, &[], "/user.slice", Some(&v2));
        assert_eq!(
            info,
            CgroupInfo {
                hierarchy: "v2".into(),
                path: "/user.slice".into(),
                pids_max: Some(Some(512)),
                pids_current: Some(3),
                pids_refused: Some(7),
                memory_max: Some(None),
                memory_current: Some(1048576),
            }
        );
    }

    #[test]
    fn finds_cgroup_directories_from_the_mount_table() {
        let mounts: Vec<MountInfo> = [
            "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
            "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd",
            "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct",
            "41 31 0:38 /docker/abc /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw",
        ]
        .iter()
        .map(|l| MountInfo::from_line(l).unwrap())
        .collect();
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            cgroup_dir(&mounts, false, &owned(&["pids"]), "/x/y"),
            Some(PathBuf::from("/sys/fs/cgroup/pids/x/y"))
        );
        assert_eq!(cgroup_dir(&mounts, false, &owned(&["pids"]), "/"), Some(PathBuf::from("/sys/fs/cgroup/pids")));
        assert_eq!(
            cgroup_dir(&mounts, false, &owned(&["cpu", "cpuacct"]), "/s"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/s"))
        );
        assert_eq!(
            cgroup_dir(&mounts, false, &owned(&["name=systemd"]), "/"),
            Some(PathBuf::from("/sys/fs/cgroup/systemd"))
        );
        assert_eq!(cgroup_dir(&mounts, false, &owned(&["memory"]), "/"), None);
        assert_eq!(
            cgroup_dir(&mounts, true, &[], "/docker/abc/sub"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/sub"))
        );
        assert_eq!(cgroup_dir(&mounts, true, &[], "/docker/abcd"), None);
    }

    #[test]
    fn taking_this_process_fills_limits_meminfo_sysctls_and_cgroups() {
        let p = take(std::process::id(), "2026-01-01T00:00:00Z".into());
        assert_eq!(p.pid, std::process::id());
        assert_eq!(p.taken_at, "2026-01-01T00:00:00Z");
        assert!(!p.kernel_release.is_empty());
        assert!(p.cpus >= 1);
        assert!(p.limit("Max processes").is_some(), "{:?}", p.limits);
        assert!(p.limit("Max address space").is_some());
        assert!(p.meminfo.mem_total_kb.is_some_and(|kb| kb > 0));
        let names: Vec<&str> = p.sysctls.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, SYSCTLS);
        assert!(p.sysctl("kernel.pid_max").is_some_and(|v| v.parse::<u64>().is_ok()));
        assert!(!p.cgroups.is_empty());
        assert!(p.to_text().contains("\n[limits]\nMax cpu time: "));
    }
}
