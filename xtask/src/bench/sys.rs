//! The few system calls the benchmark needs that std does not offer (xtask has no libc crate):
//! CLOCK_MONOTONIC as a number (the workloads report their own start and end on that clock),
//! signals, and "has this child exited?" without reaping it, so its /proc entry can still be read.
use std::path::Path;

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn waitid(idtype: u32, id: u32, infop: *mut u8, options: i32) -> i32;
    fn geteuid() -> u32;
}

const CLOCK_MONOTONIC: i32 = 1;
const P_PID: u32 = 1;
const WNOHANG: i32 = 1;
const WEXITED: i32 = 4;
const WNOWAIT: i32 = 0x0100_0000;
pub const SIGINT: i32 = 2;
pub const SIGKILL: i32 = 9;

/// CLOCK_MONOTONIC in nanoseconds: the clock the workloads time themselves with.
pub fn mono_ns() -> i64 {
    let mut ts = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out-pointer.
    unsafe { clock_gettime(CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

pub fn signal(pid: u32, sig: i32) -> bool {
    // SAFETY: plain syscall.
    unsafe { kill(pid as i32, sig) == 0 }
}

pub fn is_root() -> bool {
    // SAFETY: plain syscall.
    unsafe { geteuid() == 0 }
}

/// Whether our child `pid` has exited, leaving it unreaped (a zombie whose /proc/PID/stat still
/// holds its CPU times).
pub fn exited_unreaped(pid: u32) -> bool {
    // siginfo_t is 128 bytes; on x86_64 si_pid sits at offset 16 and stays 0 when nothing exited.
    let mut info = [0u8; 128];
    // SAFETY: a buffer the size of siginfo_t.
    let rc = unsafe { waitid(P_PID, pid, info.as_mut_ptr(), WEXITED | WNOHANG | WNOWAIT) };
    rc == 0 && i32::from_ne_bytes([info[16], info[17], info[18], info[19]]) != 0
}

/// CPU time from /proc/PID/stat, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTimes {
    /// The process itself (all its threads), not the children it waited for.
    pub self_ms: f64,
}

pub fn cpu_times(pid: u32) -> Option<CpuTimes> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ": state is field 3, utime 14, stime 15.
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) * 10.0; // USER_HZ = 100
    Some(CpuTimes { self_ms: tick(11) + tick(12) })
}

/// (VmRSS, VmHWM) of a process in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The 1-minute load average.
pub fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(-1.0)
}

/// Tracers running on the machine that this benchmark did not start (anything observer, strace,
/// perf or bpftrace outside our own process tree): they attach probes host-wide and tax every run.
pub fn foreign_tracers(ours: &[u32]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return found };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if ours.contains(&pid) || pid == std::process::id() {
            continue;
        }
        let Ok(comm) = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("comm")) else { continue };
        let comm = comm.trim();
        if matches!(comm, "observer" | "strace" | "perf" | "bpftrace") {
            found.push(format!("{comm}[{pid}]"));
        }
    }
    found
}

/// CPU model, as /proc/cpuinfo names it.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

pub fn mem_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
