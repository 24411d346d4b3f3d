//! Everything observer reads about live processes from /proc (on procfs) and the kernel's socket
//! diagnostics: threads and their state ([`task`]), memory mappings ([`maps`]), unix-socket peers
//! ([`sockets`]), a process's preflight ([`preflight`]) and process trees, command lines, owners,
//! cgroups, the workload they name, and sysctls (here). No aya in it.
pub mod maps;
pub mod preflight;
pub mod sockets;
pub mod task;

use std::{io, os::unix::fs::MetadataExt, path::Path};

use procfs::process::Process;

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

/// Whether process `pid` exists (a zombie still does).
pub fn exists(pid: u32) -> bool {
    process(pid).is_some()
}

/// Every process on the host, in no particular order.
pub fn all_pids() -> Vec<u32> {
    procfs::process::all_processes()
        .map(|all| all.filter_map(|p| u32::try_from(p.ok()?.pid()).ok()).collect())
        .unwrap_or_default()
}

/// The process and all its descendants, parents before children.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let new: Vec<u32> = task::children(tree[i]).into_iter().filter(|c| !tree.contains(c)).collect();
        tree.extend(new);
        i += 1;
    }
    tree
}

/// The command line of `pid` (empty for kernel threads, zombies and processes that are gone).
pub fn cmdline(pid: u32) -> Vec<String> {
    process(pid).and_then(|p| p.cmdline().ok()).unwrap_or_default()
}

/// A sysctl by its dotted name (`kernel.pid_max`), trimmed; `None` when unreadable.
pub fn sysctl(name: &str) -> Option<String> {
    let path = Path::new("/proc/sys").join(name.replace('.', "/"));
    std::fs::read_to_string(path).ok().map(|t| t.trim().to_string())
}

/// The effective capability set of this process (none when unreadable).
pub fn effective_capabilities() -> u64 {
    Process::myself().and_then(|me| me.status()).map_or(0, |status| status.capeff)
}

/// The real uid of `pid`.
pub fn real_uid(pid: u32) -> Option<u32> {
    Some(process(pid)?.status().ok()?.ruid)
}

/// The workload (container, pod, systemd unit) `pid`'s cgroups name, if any.
pub fn workload(pid: u32) -> Option<crate::container::Workload> {
    let groups = process(pid)?.cgroups().ok()?;
    let lines: Vec<(String, String)> = groups
        .0
        .iter()
        .map(|g| {
            let v2 = g.hierarchy == 0 && g.controllers.is_empty();
            (if v2 { "v2".to_string() } else { g.controllers.join(",") }, g.pathname.clone())
        })
        .collect();
    crate::container::Workload::from_cgroups(lines.iter().map(|(h, p)| (h.as_str(), p.as_str())))
}

/// The cgroup v2 id of `pid` (the inode of its directory under `v2_root`), from its `0::` line.
pub fn cgroup_v2_id(pid: u32, v2_root: &Path) -> Option<u64> {
    let groups = process(pid)?.cgroups().ok()?;
    let v2 = groups.0.iter().find(|g| g.hierarchy == 0 && g.controllers.is_empty())?;
    std::fs::metadata(v2_root.join(v2.pathname.trim_start_matches('/'))).ok().map(|m| m.ino())
}

/// The two cgroup filesystems, told apart by their magic numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupFs {
    V1,
    V2,
}

const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Which cgroup filesystem `path` is on; `None` when it is on another filesystem (a directory
/// like /etc, where writing `cgroup.procs` would create an ordinary file).
pub fn cgroup_fs(path: &Path) -> io::Result<Option<CgroupFs>> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: statfs into a zeroed struct with a NUL-terminated path.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(match fs.f_type as i64 {
        CGROUP_SUPER_MAGIC => Some(CgroupFs::V1),
        CGROUP2_SUPER_MAGIC => Some(CgroupFs::V2),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_in_its_own_tree_with_a_command_line_and_an_owner() {
        let me = std::process::id();
        assert!(exists(me) && all_pids().contains(&me));
        assert_eq!(process_tree(me)[0], me);
        assert!(!cmdline(me).is_empty());
        // SAFETY: getuid has no preconditions.
        assert_eq!(real_uid(me), Some(unsafe { libc::getuid() }));
        assert!(!exists(u32::MAX - 1));
        assert!(sysctl("kernel.pid_max").is_some_and(|v| v.parse::<u32>().is_ok()));
        assert_eq!(sysctl("kernel.no_such_sysctl"), None);
    }

    #[test]
    fn only_cgroup_filesystems_are_cgroups() {
        assert_eq!(cgroup_fs(Path::new("/etc")).unwrap(), None);
        // v2 alone, or hybrid (a tmpfs at /sys/fs/cgroup with the hierarchies below it).
        let mounts = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/pids"];
        assert!(mounts.iter().any(|m| cgroup_fs(Path::new(m)).is_ok_and(|fs| fs.is_some())));
        assert!(cgroup_fs(Path::new("/no/such/dir")).is_err());
    }
}
