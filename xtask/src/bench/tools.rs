//! The comparison tools (strace, perf trace, bpftrace) and Chromium: installed from Debian when
//! missing, checked to work on this kernel, and the watched syscall set they are all given.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};

use super::sys;

/// A syscall observer watches, as `observer_common::syscalls::WATCHED` lists it.
#[derive(Clone, Debug)]
pub struct Watched {
    pub name: String,
    /// Arguments observer keeps (read/write: only the fd).
    pub nargs: usize,
}

/// The watched syscalls, from observer-common's table, so every tool gets the same set.
pub fn watched() -> Result<Vec<Watched>> {
    Ok(observer_common::syscalls::WATCHED
        .iter()
        .map(|s| Watched { name: s.name.to_string(), nargs: usize::from(s.nargs) })
        .collect())
}

pub fn have(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

fn apt_install(package: &str, updated: &mut bool) -> Result<()> {
    if !sys::is_root() {
        bail!("{package} is not installed and installing it needs root");
    }
    if !*updated {
        eprintln!("bench: apt-get update");
        crate::run(Command::new("apt-get").args(["update", "-qq"]))?;
        *updated = true;
    }
    eprintln!("bench: installing {package} from Debian");
    crate::run(Command::new("apt-get").args(["install", "-y", "-qq", package]).env("DEBIAN_FRONTEND", "noninteractive"))
}

/// Each tool: `Ok(version)` when usable, `Err(reason)` when its column is skipped.
pub struct Tools {
    pub strace: Result<String, String>,
    pub perf: Result<String, String>,
    pub bpftrace: Result<String, String>,
    pub chromium: Result<String, String>,
}

fn first_line(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
    Ok(String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string())
}

fn ensure(program: &str, package: &str, updated: &mut bool) -> Result<(), String> {
    if have(program) {
        return Ok(());
    }
    apt_install(package, updated).map_err(|e| format!("{package} could not be installed: {e:#}"))?;
    if have(program) {
        Ok(())
    } else {
        Err(format!("{package} installed but `{program}` is not on PATH"))
    }
}

/// Installs what is missing and checks that each tool traces a trivial command here.
pub fn prepare(set: &[Watched], scratch: &Path) -> Tools {
    let mut updated = false;
    let list = set.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(",");

    let strace = ensure("strace", "strace", &mut updated).and_then(|()| first_line(Command::new("strace").arg("-V")));

    let perf = ensure("perf", "linux-perf", &mut updated).and_then(|()| {
        let out = scratch.join("perf-check.txt");
        let run = Command::new("perf")
            .args(["trace", "-e", &list, "-o"])
            .arg(&out)
            .args(["--", "/bin/true"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if !run.status.success() || !text.contains("execve") && !text.contains("mmap") {
            return Err(format!(
                "`perf trace` does not work on this kernel: {} {}",
                run.status,
                String::from_utf8_lossy(&run.stderr).lines().last().unwrap_or("").trim()
            ));
        }
        first_line(Command::new("perf").arg("--version"))
    });

    let bpftrace = ensure("bpftrace", "bpftrace", &mut updated).and_then(|()| {
        let script = scratch.join("check.bt");
        std::fs::write(&script, bpftrace_script(set, &tracefs_root()).map_err(|e| format!("{e:#}"))?)
            .map_err(|e| e.to_string())?;
        let out = scratch.join("bpftrace-check.txt");
        let run = Command::new("bpftrace")
            .arg("-o")
            .arg(&out)
            .args(["-c", "/bin/true"])
            .arg(&script)
            .output()
            .map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if !run.status.success() || !text.contains(" mmap(") {
            return Err(format!(
                "bpftrace cannot run the tracepoint script here: {} {}",
                run.status,
                String::from_utf8_lossy(&run.stderr).trim()
            ));
        }
        first_line(Command::new("bpftrace").arg("--version"))
    });

    let chromium = ensure("chromium", "chromium", &mut updated)
        .and_then(|()| first_line(Command::new("chromium").arg("--version").stderr(Stdio::null())));

    Tools { strace, perf, bpftrace, chromium }
}

pub fn tracefs_root() -> PathBuf {
    for p in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(p).join("events/syscalls").is_dir() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("/sys/kernel/tracing")
}

/// Argument field names of `syscalls/sys_enter_<name>`, from its format file.
fn enter_fields(tracefs: &Path, name: &str) -> Result<Vec<String>> {
    let path = tracefs.join(format!("events/syscalls/sys_enter_{name}/format"));
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut fields = Vec::new();
    for line in text.lines() {
        let Some(decl) = line.trim().strip_prefix("field:") else { continue };
        let decl = decl.split(';').next().unwrap_or("");
        let field = decl.rsplit([' ', '*']).next().unwrap_or("").to_string();
        if field.starts_with("common_") || field == "__syscall_nr" || field.is_empty() {
            continue;
        }
        fields.push(field);
    }
    Ok(fields)
}

/// The bpftrace program: the same syscalls on the same `syscalls:sys_enter_X`/`sys_exit_X`
/// tracepoints, following the command's process tree (a tgid map grown on `sched_process_fork`,
/// like observer's), one line per event (entry with the arguments observer keeps; exit with the
/// return value) into the `-o` file.
pub fn bpftrace_script(set: &[Watched], tracefs: &Path) -> Result<String> {
    let mut s = String::new();
    s.push_str("// Generated by `cargo xtask bench`: observer's watched syscalls, one line per event.\n");
    s.push_str("BEGIN { @t[cpid] = 1; }\n");
    s.push_str("tracepoint:sched:sched_process_fork /@t[pid]/ { @t[args->child_pid] = 1; }\n");
    // Thread ids other than the leader's were added by the fork hook; drop them as threads end.
    s.push_str("tracepoint:sched:sched_process_exit /@t[pid] && tid != pid/ { delete(@t[tid]); }\n");
    for sc in set {
        let fields = enter_fields(tracefs, &sc.name)?;
        let kept: Vec<&String> = fields.iter().take(sc.nargs).collect();
        let fmt: Vec<&str> = kept.iter().map(|_| "%lx").collect();
        let mut args = String::new();
        for f in &kept {
            args.push_str(&format!(", (uint64)args->{f}"));
        }
        s.push_str(&format!(
            "tracepoint:syscalls:sys_enter_{n} /@t[pid]/ {{ printf(\"%llu %d %d {n}({})\\n\", nsecs, pid, tid{args}); }}\n",
            fmt.join(", "),
            n = sc.name
        ));
        s.push_str(&format!(
            "tracepoint:syscalls:sys_exit_{n} /@t[pid]/ {{ printf(\"%llu %d %d {n} = %ld\\n\", nsecs, pid, tid, args->ret); }}\n",
            n = sc.name
        ));
    }
    Ok(s)
}
