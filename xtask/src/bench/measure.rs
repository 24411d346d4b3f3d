//! Running one command under one configuration and measuring it: the workload's own start and end
//! (it writes them itself, on CLOCK_MONOTONIC), the tool's startup before and teardown after, CPU
//! times, observer's resident memory and what each tool reports lost.
use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};

use super::sys;

/// The configurations every workload runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Config {
    Bare,
    Observer,
    Strace,
    Perf,
    Bpftrace,
    /// The bare workload, untracked, while `observer attach` to an idle process has every probe attached.
    HostWide,
    /// The bare workload, untracked, while the `observer watch` daemon runs with default options.
    Watch,
    /// As `HostWide`, with the syscall programs returning at their first instruction: what the
    /// syscall hooks cost by themselves, the floor under every untracked figure.
    HooksOnly,
}

impl Config {
    /// The bare workload, untracked, with an observer running in the background.
    pub fn background(self) -> bool {
        matches!(self, Config::HostWide | Config::Watch | Config::HooksOnly)
    }

    pub const ALL: [Config; 8] = [
        Config::Bare,
        Config::Observer,
        Config::Strace,
        Config::Perf,
        Config::Bpftrace,
        Config::HostWide,
        Config::Watch,
        Config::HooksOnly,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Config::Bare => "bare",
            Config::Observer => "observer",
            Config::Strace => "strace",
            Config::Perf => "perf_trace",
            Config::Bpftrace => "bpftrace",
            Config::HostWide => "observer_hostwide_untracked",
            Config::Watch => "observer_watch_untracked",
            Config::HooksOnly => "hooks_only_untracked",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Config::Bare => "bare",
            Config::Observer => "observer run",
            Config::Strace => "strace -f",
            Config::Perf => "perf trace",
            Config::Bpftrace => "bpftrace",
            Config::HostWide => "untracked, observer attached elsewhere",
            Config::Watch => "untracked, observer watch running",
            Config::HooksOnly => "untracked, empty programs on the same hooks (floor)",
        }
    }
}

/// Everything the configurations need to know about the machine's tools.
pub struct Env {
    pub observer: PathBuf,
    /// The watched syscalls, comma-separated.
    pub syscall_list: String,
    pub bpftrace_script: PathBuf,
    /// Per-CPU buffer pages for perf trace and bpftrace: the same 16 MiB in all as observer's default ring.
    pub perf_pages: u64,
}

/// One measured run.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub config: &'static str,
    pub round: usize,
    pub warmup: bool,
    pub ok: bool,
    pub error: Option<String>,
    /// The workload's own elapsed time (from its start and end stamps).
    pub workload_s: f64,
    /// From spawning the outer command to the workload's start stamp.
    pub startup_s: f64,
    /// From the workload's end stamp to the outer command's exit.
    pub teardown_s: f64,
    /// The workload's own CPU time (getrusage in the workload), user and system.
    pub workload_user_s: f64,
    pub workload_sys_s: f64,
    /// Extra number the workload reports (bench_rate: calls made).
    pub workload_calls: Option<u64>,
    /// CPU time of the tool process itself (observer, strace, perf, bpftrace; 10 ms ticks).
    pub tool_cpu_s: Option<f64>,
    /// Observer's largest VmRSS seen and its VmHWM, KiB.
    pub observer_rss_kib: Option<u64>,
    pub observer_hwm_kib: Option<u64>,
    /// Observer's summary: events received, dropped, submitted.
    pub events_received: Option<u64>,
    pub events_dropped: Option<u64>,
    pub events_submitted: Option<u64>,
    pub inflight_overflows: Option<u64>,
    /// Events the tool reported lost (perf trace LOST records, bpftrace "Lost N events").
    pub tool_lost: Option<u64>,
    /// Bytes the tool wrote (trace file or run directory).
    pub output_bytes: Option<u64>,
    /// Observer: size of events.bin, and the syscall records in it.
    pub events_bin_bytes: Option<u64>,
    pub syscall_events: Option<u64>,
    /// Tracers not started by us that were running when the sample started.
    pub foreign_tracers: Vec<String>,
    pub loadavg: f64,
}

/// How a workload is started: its argv with `{TIME}` standing for the time file.
pub struct Invocation<'a> {
    pub argv: &'a [String],
    pub timeout: Duration,
}

struct Watched {
    exited_ns: i64,
    success: bool,
    cpu: Option<sys::CpuTimes>,
    max_rss: Option<u64>,
    hwm: Option<u64>,
    timed_out: bool,
}

/// Waits for a child, polling every 2 ms: memory while it runs, CPU times once it has exited (read
/// from its zombie before it is reaped).
fn watch(child: &mut std::process::Child, timeout: Duration, sample_memory: bool) -> Result<Watched> {
    let pid = child.id();
    let deadline = std::time::Instant::now() + timeout;
    let (mut max_rss, mut hwm) = (None::<u64>, None::<u64>);
    let mut timed_out = false;
    let mut interrupted = false;
    loop {
        if sys::exited_unreaped(pid) {
            let exited_ns = sys::mono_ns();
            let cpu = sys::cpu_times(pid);
            let status = child.wait()?;
            return Ok(Watched { exited_ns, success: status.success() && !timed_out, cpu, max_rss, hwm, timed_out });
        }
        if sample_memory {
            if let Some((rss, h)) = sys::memory_kib(pid) {
                max_rss = Some(max_rss.unwrap_or(0).max(rss));
                hwm = Some(hwm.unwrap_or(0).max(h));
            }
        }
        if std::time::Instant::now() > deadline {
            timed_out = true;
            if !interrupted {
                sys::signal(pid, sys::SIGINT);
                interrupted = true;
            } else if std::time::Instant::now() > deadline + Duration::from_secs(10) {
                sys::signal(pid, sys::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `START END UTIME_US STIME_US [CALLS]` as the workloads write it.
struct Stamps {
    start_ns: i64,
    end_ns: i64,
    user_s: f64,
    sys_s: f64,
    calls: Option<u64>,
}

fn read_stamps(path: &Path) -> Result<Stamps> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("the workload wrote no time file {}", path.display()))?;
    let f: Vec<i64> = text.split_whitespace().map(|v| v.parse().unwrap_or(-1)).collect();
    if f.len() < 4 || f[..4].iter().any(|&v| v < 0) {
        bail!("bad time file {}: {text:?}", path.display());
    }
    Ok(Stamps {
        start_ns: f[0],
        end_ns: f[1],
        user_s: f[2] as f64 / 1e6,
        sys_s: f[3] as f64 / 1e6,
        calls: f.get(4).map(|&c| c as u64),
    })
}

fn dir_bytes(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => std::fs::read_dir(path).map_or(0, |d| d.flatten().map(|e| dir_bytes(&e.path())).sum()),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// `key: value` lines of an observer summary.txt.
pub fn summary_value(dir: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.join("summary.txt")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")).and_then(|v| v.trim().parse().ok()))
}

fn lost_in(text: &str) -> u64 {
    let mut lost = 0;
    for line in text.lines() {
        // bpftrace: "Lost 123 events"; perf trace: "LOST 123 events!".
        let lower = line.to_ascii_lowercase();
        if let Some(pos) = lower.find("lost ") {
            if let Some(n) = lower[pos + 5..].split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
                lost += n;
            }
        }
    }
    lost
}

fn open(path: &Path) -> Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}

/// Runs `inv` once under `config`, with its files in `scratch` (removed afterwards).
pub fn sample(env: &Env, config: Config, inv: &Invocation, scratch: &Path, round: usize, warmup: bool) -> Sample {
    let mut s = Sample { config: config.key(), round, warmup, loadavg: sys::loadavg(), ..Sample::default() };
    s.foreign_tracers = sys::foreign_tracers(&[]);
    let _ = std::fs::remove_dir_all(scratch);
    let result = std::fs::create_dir_all(scratch)
        .map_err(anyhow::Error::from)
        .and_then(|()| sample_in(env, config, inv, scratch, &mut s));
    match result {
        Ok(()) => s.ok = true,
        Err(e) => {
            s.ok = false;
            s.error = Some(format!("{e:#}"));
        }
    }
    let _ = std::fs::remove_dir_all(scratch);
    s
}

fn sample_in(env: &Env, config: Config, inv: &Invocation, scratch: &Path, s: &mut Sample) -> Result<()> {
    let time_file = scratch.join("time");
    let argv: Vec<String> = inv
        .argv
        .iter()
        .map(|a| a.replace("{TIME}", &time_file.to_string_lossy()).replace("{SCRATCH}", &scratch.to_string_lossy()))
        .collect();
    let out_file = scratch.join("trace.out");
    let run_dir = scratch.join("run");
    let mut cmd = match config {
        Config::Bare | Config::HostWide | Config::Watch | Config::HooksOnly => {
            let mut c = Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        }
        Config::Observer => {
            let mut c = Command::new(&env.observer);
            c.args(["run", "--quiet", "--out"]).arg(&run_dir).arg("--").args(&argv);
            c
        }
        Config::Strace => {
            let mut c = Command::new("strace");
            c.args(["-f", "-ttt", "-T", "-e", &format!("trace={}", env.syscall_list), "-o"])
                .arg(&out_file)
                .arg("--")
                .args(&argv);
            c
        }
        Config::Perf => {
            let mut c = Command::new("perf");
            c.args(["trace", "-m", &env.perf_pages.to_string(), "-e", &env.syscall_list, "-o"])
                .arg(&out_file)
                .arg("--")
                .args(&argv);
            c
        }
        Config::Bpftrace => {
            if argv.iter().any(|a| a.contains(' ')) {
                bail!("bpftrace -c splits the command on spaces; an argument contains one");
            }
            let mut c = Command::new("bpftrace");
            c.env("BPFTRACE_MAP_KEYS_MAX", "65536")
                .env("BPFTRACE_PERF_RB_PAGES", env.perf_pages.to_string())
                .arg("-o")
                .arg(&out_file)
                .arg("-c")
                .arg(argv.join(" "))
                .arg(&env.bpftrace_script);
            c
        }
    };
    cmd.stdin(Stdio::null()).stdout(open(&scratch.join("stdout.txt"))?).stderr(open(&scratch.join("stderr.txt"))?);

    // Host-wide: every probe attached by `observer attach` to an idle process of ours, or the
    // `observer watch` daemon.
    let mut attached = None;
    if config.background() {
        attached = Some(Background::start(env, scratch, config)?);
    }

    let spawned = sys::mono_ns();
    let mut child = cmd.spawn().with_context(|| format!("starting {cmd:?}"))?;
    let w = watch(&mut child, inv.timeout, config == Config::Observer);
    let host = attached.map(Background::stop);
    let w = w?;
    if let Some(host) = host {
        let host = host?;
        s.tool_cpu_s = host.cpu_s;
        s.observer_rss_kib = host.max_rss;
        s.observer_hwm_kib = host.hwm;
        s.events_dropped = summary_value(&host.dir, "events_dropped");
        s.events_received = summary_value(&host.dir, "events_received");
    }
    if w.timed_out {
        bail!("timed out after {:?}", inv.timeout);
    }
    if !w.success {
        let err = std::fs::read_to_string(scratch.join("stderr.txt")).unwrap_or_default();
        bail!("{} failed: {}", config.key(), err.lines().rev().take(3).collect::<Vec<_>>().join(" / "));
    }
    let stamps = read_stamps(&time_file)?;
    s.workload_s = (stamps.end_ns - stamps.start_ns) as f64 / 1e9;
    s.startup_s = (stamps.start_ns - spawned) as f64 / 1e9;
    s.teardown_s = (w.exited_ns - stamps.end_ns) as f64 / 1e9;
    s.workload_user_s = stamps.user_s;
    s.workload_sys_s = stamps.sys_s;
    s.workload_calls = stamps.calls;
    match config {
        Config::Bare | Config::HostWide | Config::Watch | Config::HooksOnly => {}
        Config::Observer => {
            s.tool_cpu_s = w.cpu.map(|c| c.self_ms / 1e3);
            s.observer_rss_kib = w.max_rss;
            s.observer_hwm_kib = w.hwm;
            s.events_received = summary_value(&run_dir, "events_received");
            s.events_dropped = summary_value(&run_dir, "events_dropped");
            s.events_submitted = summary_value(&run_dir, "events_submitted_by_kernel");
            s.inflight_overflows = summary_value(&run_dir, "inflight_table_overflows");
            s.output_bytes = Some(dir_bytes(&run_dir));
            s.events_bin_bytes = Some(dir_bytes(&run_dir.join("events.bin")));
            s.syscall_events = summary_value(&run_dir, "events.syscall");
            if s.events_received.is_none() {
                bail!("observer wrote no summary in {}", run_dir.display());
            }
        }
        Config::Strace | Config::Perf | Config::Bpftrace => {
            s.tool_cpu_s = w.cpu.map(|c| c.self_ms / 1e3);
            s.output_bytes = Some(dir_bytes(&out_file));
            if config != Config::Strace {
                let mut text = std::fs::read_to_string(scratch.join("stderr.txt")).unwrap_or_default();
                // perf trace and bpftrace write their loss notes into the output file.
                if let Ok(f) = std::fs::read(&out_file) {
                    let f = String::from_utf8_lossy(&f);
                    for line in f.lines().filter(|l| l.to_ascii_lowercase().contains("lost ")) {
                        text.push_str(line);
                        text.push('\n');
                    }
                }
                s.tool_lost = Some(lost_in(&text));
            }
        }
    }
    Ok(())
}

/// An observer in the background while the bare workload runs: `observer attach --pid` to an idle
/// `sleep` of ours (every probe attached, nothing else tracked), or `observer watch`.
struct Background {
    sleeper: Option<std::process::Child>,
    observer: std::process::Child,
    dir: PathBuf,
}

struct HostWideEnd {
    dir: PathBuf,
    cpu_s: Option<f64>,
    max_rss: Option<u64>,
    hwm: Option<u64>,
}

impl Background {
    fn start(env: &Env, scratch: &Path, config: Config) -> Result<Self> {
        let watch = config == Config::Watch;
        let dir = scratch.join(if watch { "incidents" } else { "attach" });
        let stderr = scratch.join("background.stderr.txt");
        let mut sleeper = None;
        let mut cmd = Command::new(&env.observer);
        if watch {
            cmd.args(["watch", "--incidents"]).arg(&dir);
        } else {
            let s = Command::new("sleep").arg("100000").stdin(Stdio::null()).spawn().context("starting sleep")?;
            cmd.args(["attach", "--quiet", "--pid", &s.id().to_string(), "--out"]).arg(&dir);
            if config == Config::HooksOnly {
                cmd.env("OBSERVER_BENCH_HOOKS_ONLY", "1");
            }
            sleeper = Some(s);
        }
        let spawned = cmd
            .stdin(Stdio::null())
            .stdout(open(&scratch.join("background.stdout.txt"))?)
            .stderr(open(&stderr)?)
            .spawn();
        let kill_sleeper = |sleeper: Option<std::process::Child>| {
            if let Some(mut s) = sleeper {
                let _ = s.kill();
                let _ = s.wait();
            }
        };
        let mut observer = match spawned {
            Ok(o) => o,
            Err(e) => {
                kill_sleeper(sleeper);
                return Err(e).context("starting the background observer");
            }
        };
        // attach creates events.bin once every probe is attached; watch says so on stderr.
        let ready = || {
            if watch {
                std::fs::read_to_string(&stderr).is_ok_and(|t| t.contains("observer watch: watching"))
            } else {
                dir.join("events.bin").exists()
            }
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !ready() {
            if std::time::Instant::now() > deadline || observer.try_wait().ok().flatten().is_some() {
                let _ = observer.kill();
                let _ = observer.wait();
                kill_sleeper(sleeper);
                bail!(
                    "the background observer did not start: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(100));
        Ok(Self { sleeper, observer, dir })
    }

    fn stop(mut self) -> Result<HostWideEnd> {
        let pid = self.observer.id();
        let mem = sys::memory_kib(pid);
        sys::signal(pid, sys::SIGINT);
        let w = watch(&mut self.observer, Duration::from_secs(60), false);
        if let Some(mut s) = self.sleeper.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let w = w?;
        Ok(HostWideEnd {
            dir: self.dir,
            cpu_s: w.cpu.map(|c| c.self_ms / 1e3),
            max_rss: mem.map(|m| m.0),
            hwm: mem.map(|m| m.1),
        })
    }
}
