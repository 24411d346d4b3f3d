//! `cargo xtask bench [--quick]`: observer's overhead against bare runs, `strace -f`, `perf trace`
//! and `bpftrace` on the same workloads, alternating the configurations round by round (after a
//! warm-up round) and reporting medians and ratios to the bare run of the same invocation; plus the
//! event rate observer sustains without drops, its resident memory, and `observer analyze`
//! throughput. Writes docs/benchmarks.md and docs/benchmarks.json.
mod measure;
mod report;
mod sys;
mod tools;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use crate::{run, setup, workspace_root};
use measure::{Config, Env, Invocation, Sample};

/// Sizes and repetitions of one invocation.
#[derive(Clone, Debug)]
pub struct Plan {
    pub quick: bool,
    pub mprotect_calls: u64,
    pub threads: u64,
    pub forkexecs: u64,
    pub idle_rounds: u64,
    pub idle_sleep_us: u64,
    /// Measured rounds of workload (1), each preceded by `warmups` discarded rounds: its strace
    /// and perf trace runs take about a minute each.
    pub rounds: usize,
    /// Measured rounds of the others, which take a second or less and spread by +-10% bare on
    /// this VM: more rounds keep their medians steady.
    pub short_rounds: usize,
    pub warmups: usize,
    /// Seconds per step of the event-rate ladder, and bisection steps after the first drop.
    pub knee_seconds: f64,
    pub knee_bisect: usize,
    /// Events in the capture `observer analyze` is timed on, and timed repetitions.
    pub analyze_events: u64,
    pub analyze_rounds: usize,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Plan {
                quick,
                mprotect_calls: 200_000,
                threads: 2_000,
                forkexecs: 400,
                idle_rounds: 100,
                idle_sleep_us: 5_000,
                rounds: 3,
                short_rounds: 3,
                warmups: 1,
                knee_seconds: 3.0,
                knee_bisect: 1,
                analyze_events: 1_000_000,
                analyze_rounds: 2,
            }
        } else {
            Plan {
                quick,
                mprotect_calls: 1_000_000,
                threads: 10_000,
                forkexecs: 2_000,
                idle_rounds: 200,
                idle_sleep_us: 5_000,
                rounds: 5,
                short_rounds: 11,
                warmups: 1,
                knee_seconds: 10.0,
                knee_bisect: 3,
                analyze_events: 10_000_000,
                analyze_rounds: 3,
            }
        }
    }
}

/// One workload as run.
pub struct WorkloadSpec {
    pub key: &'static str,
    pub title: String,
    pub argv: Vec<String>,
    pub rounds: usize,
    /// Why it was not run.
    pub skipped: Option<String>,
}

/// A configuration left out, and why.
pub struct SkippedConfig {
    pub config: Config,
    pub reason: String,
}

pub struct WorkloadResult {
    pub spec: WorkloadSpec,
    pub configs: Vec<Config>,
    pub samples: Vec<Sample>,
}

/// One step of the event-rate ladder.
#[derive(Clone, Debug)]
pub struct KneeStep {
    /// Calls per second asked for (0 = as fast as possible).
    pub target_rate: f64,
    pub threads: u32,
    pub sample: Sample,
    /// Events per second observer received over the workload's run.
    pub achieved_rate: f64,
}

pub struct Knee {
    pub buffer_size: u64,
    pub steps: Vec<KneeStep>,
    /// Highest rate sustained with zero drops, and the lowest rate that dropped.
    pub knee_rate: Option<f64>,
    pub first_drop_rate: Option<f64>,
}

pub struct AnalyzeResult {
    pub capture_events: u64,
    pub capture_dropped: u64,
    pub events_bin_bytes: u64,
    pub capture_rate: f64,
    pub times_s: Vec<f64>,
    pub max_rss_kib: Option<u64>,
    pub error: Option<String>,
}

pub struct Machine {
    pub date_utc: String,
    pub cpu: String,
    pub cpus: usize,
    pub mem_mib: u64,
    pub kernel: String,
    pub os: String,
    pub observer_commit: String,
    pub observer_dirty: bool,
    pub tools: Vec<(&'static str, Result<String, String>)>,
    pub loadavg_start: f64,
    pub loadavg_end: f64,
    pub duration_s: f64,
}

fn output(cmd: &mut Command) -> String {
    cmd.output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

fn compile_workloads(root: &Path, bin: &Path) -> Result<()> {
    std::fs::create_dir_all(bin)?;
    for name in ["bench_mprotect", "bench_threads", "bench_forkexec", "bench_idle", "bench_timer", "bench_rate"] {
        run(Command::new("cc")
            .args(["-O2", "-Wall", "-pthread", "-o"])
            .arg(bin.join(name))
            .arg(root.join(format!("tests/workloads/{name}.c"))))?;
    }
    Ok(())
}

fn default_buffer_size(observer: &Path) -> u64 {
    // `observer run --help` shows the default of --buffer-size.
    let help = output(Command::new(observer).args(["run", "--help"]));
    help.lines()
        .skip_while(|l| !l.contains("--buffer-size"))
        .take(4)
        .find_map(|l| l.split("[default: ").nth(1).and_then(|r| r.split(']').next()).and_then(|v| v.parse().ok()))
        .unwrap_or(16 * 1024 * 1024)
}

fn progress(workload: &str, s: &Sample) {
    let what = if s.ok {
        let mut t = format!("{:8.3} s", s.workload_s);
        if let Some(d) = s.events_dropped {
            t.push_str(&format!("  events {} dropped {}", s.events_received.unwrap_or(0), d));
        }
        if let (Some(bytes), Some(calls)) = (s.events_bin_bytes, s.syscall_events.filter(|&n| n > 0)) {
            t.push_str(&format!("  events.bin {:.1} B/syscall", bytes as f64 / calls as f64));
        }
        if let Some(l) = s.tool_lost.filter(|&l| l > 0) {
            t.push_str(&format!("  lost {l}"));
        }
        t
    } else {
        format!("FAILED: {}", s.error.as_deref().unwrap_or("?"))
    };
    let warm = if s.warmup { " (warm-up)" } else { "" };
    println!("bench: {workload:<9} round {}{warm:<10} {:<28} {what}", s.round, s.config);
}

fn run_workload(env: &Env, spec: WorkloadSpec, configs: Vec<Config>, scratch: &Path, plan: &Plan) -> WorkloadResult {
    let mut samples = Vec::new();
    if spec.skipped.is_none() {
        let timeout = Duration::from_secs(if plan.quick { 300 } else { 900 });
        let inv = Invocation { argv: &spec.argv, timeout };
        let total = plan.warmups + spec.rounds;
        for round in 0..total {
            let warmup = round < plan.warmups;
            // A B C ... then B C ... A: every configuration runs next to every other, no fixed order.
            for i in 0..configs.len() {
                let config = configs[(i + round) % configs.len()];
                let s = measure::sample(
                    env,
                    config,
                    &inv,
                    &scratch.join(format!("{}-{}", spec.key, config.key())),
                    round,
                    warmup,
                );
                progress(spec.key, &s);
                samples.push(s);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    WorkloadResult { spec, configs, samples }
}

fn rate_invocation(bin: &Path, rate: f64, seconds: f64, count: u64, threads: u32) -> Vec<String> {
    vec![
        bin.join("bench_rate").to_string_lossy().into_owned(),
        format!("{rate:.0}"),
        format!("{seconds}"),
        count.to_string(),
        threads.to_string(),
        "{TIME}".into(),
    ]
}

fn knee_step(env: &Env, bin: &Path, scratch: &Path, plan: &Plan, rate: f64, threads: u32, n: usize) -> KneeStep {
    let argv = rate_invocation(bin, rate, plan.knee_seconds, 0, threads);
    let inv = Invocation { argv: &argv, timeout: Duration::from_secs(300) };
    let sample = measure::sample(env, Config::Observer, &inv, &scratch.join("knee"), n, false);
    let achieved_rate =
        if sample.ok { sample.events_received.unwrap_or(0) as f64 / sample.workload_s.max(1e-9) } else { 0.0 };
    let step = KneeStep { target_rate: rate, threads, sample, achieved_rate };
    println!(
        "bench: rate     asked {:>9} /s x{} thread(s): observer received {:>9.0} events/s, dropped {} {}",
        if rate > 0.0 { format!("{rate:.0}") } else { "max".into() },
        threads,
        step.achieved_rate,
        step.sample.events_dropped.map_or("?".into(), |d| d.to_string()),
        step.sample.error.as_deref().unwrap_or("")
    );
    step
}

fn dropped(step: &KneeStep) -> bool {
    !step.sample.ok || step.sample.events_dropped.unwrap_or(1) > 0
}

/// Raises the event rate until observer (default buffer) first drops, then bisects. One thread up
/// to what one thread can make under observer; beyond that two threads (this machine's CPUs are
/// then shared by the workload and observer's reader, which is the point of the measurement).
fn knee(env: &Env, bin: &Path, scratch: &Path, plan: &Plan, buffer_size: u64) -> Knee {
    let mut steps: Vec<KneeStep> = Vec::new();
    // Last rate (asked, threads) without drops, first with.
    let mut good: Option<(f64, u32)> = None;
    let mut bad: Option<(f64, u32)> = None;
    let mut ladder: Vec<(f64, u32)> = vec![(50e3, 1), (100e3, 1), (200e3, 1), (400e3, 1), (800e3, 1), (0.0, 1)];
    let mut i = 0;
    while i < ladder.len() {
        let (rate, threads) = ladder[i];
        i += 1;
        let step = knee_step(env, bin, scratch, plan, rate, threads, steps.len());
        let failed = dropped(&step);
        let achieved = step.achieved_rate;
        steps.push(step);
        // Flat out stands for the rate it reached.
        let asked = if rate > 0.0 { rate } else { achieved };
        if failed {
            bad = Some((asked.max(good.map_or(0.0, |g| g.0) * 1.05), threads));
            break;
        }
        good = Some((asked, threads));
        if rate == 0.0 && threads == 1 {
            // One thread cannot go faster: continue with two.
            // Then more producers than CPUs: the reader has to win CPU time from them.
            ladder.extend([(achieved * 1.25, 2), (achieved * 1.5, 2), (achieved * 2.0, 2), (0.0, 2), (0.0, 4)]);
        }
    }
    if let (Some((mut lo, _)), Some((mut hi, threads))) = (good, bad) {
        for _ in 0..plan.knee_bisect {
            let mid = (lo + hi) / 2.0;
            let step = knee_step(env, bin, scratch, plan, mid, threads, steps.len());
            if dropped(&step) {
                hi = mid;
            } else {
                lo = mid;
            }
            steps.push(step);
        }
    }
    let knee_rate = steps
        .iter()
        .filter(|s| !dropped(s))
        .map(|s| s.achieved_rate)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    let first_drop_rate = steps
        .iter()
        .filter(|s| dropped(s) && s.sample.ok)
        .map(|s| s.achieved_rate)
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.min(r))));
    Knee { buffer_size, steps, knee_rate, first_drop_rate }
}

fn dir_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Captures about `plan.analyze_events` events (paced below the knee so none is dropped), then
/// times `observer analyze` on it.
fn analyze_throughput(env: &Env, bin: &Path, scratch: &Path, plan: &Plan, knee: &Knee) -> AnalyzeResult {
    let dir = scratch.join("analyze-capture");
    let _ = std::fs::remove_dir_all(&dir);
    let rate = knee.knee_rate.map_or(100e3, |k| (k * 0.8).max(50e3));
    let mut result = AnalyzeResult {
        capture_events: 0,
        capture_dropped: 0,
        events_bin_bytes: 0,
        capture_rate: rate,
        times_s: Vec::new(),
        max_rss_kib: None,
        error: None,
    };
    println!("bench: analyze  capturing {} events at {rate:.0}/s ...", plan.analyze_events);
    let status = Command::new(&env.observer)
        .args(["run", "--quiet", "--out"])
        .arg(&dir)
        .arg("--")
        .args(
            rate_invocation(bin, rate, 0.0, plan.analyze_events, 1)
                .iter()
                .map(|a| a.replace("{TIME}", &scratch.join("analyze-time").to_string_lossy())),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if !status.as_ref().is_ok_and(|s| s.success()) {
        result.error = Some(format!("the capture run failed: {status:?}"));
        return result;
    }
    result.capture_events = measure::summary_value(&dir, "events_written").unwrap_or(0);
    result.capture_dropped = measure::summary_value(&dir, "events_dropped").unwrap_or(0);
    result.events_bin_bytes = dir_size(&dir.join("events.bin"));
    // Only events.bin matters to analyze; the trace files are gigabytes of text.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("trace.") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    for round in 0..=plan.analyze_rounds {
        let start = Instant::now();
        let mut child = match Command::new(&env.observer)
            .arg("analyze")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                result.error = Some(e.to_string());
                break;
            }
        };
        let pid = child.id();
        let mut rss = None::<u64>;
        let status = loop {
            if let Some(st) = child.try_wait().ok().flatten() {
                break st;
            }
            if let Some((_, hwm)) = sys::memory_kib(pid) {
                rss = Some(rss.unwrap_or(0).max(hwm));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let t = start.elapsed().as_secs_f64();
        if !status.success() {
            result.error = Some(format!("observer analyze failed: {status}"));
            break;
        }
        println!(
            "bench: analyze  {} {:.3} s ({:.2} M events/s)",
            if round == 0 { "warm-up" } else { "timed  " },
            t,
            result.capture_events as f64 / t / 1e6
        );
        if round > 0 {
            result.times_s.push(t);
        }
        result.max_rss_kib = rss.max(result.max_rss_kib);
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn spec(key: &'static str, title: String, argv: Vec<String>, rounds: usize) -> WorkloadSpec {
    WorkloadSpec { key, title, argv, rounds, skipped: None }
}

pub fn bench(quick: bool) -> Result<()> {
    let started = Instant::now();
    setup::ensure()?;
    if !sys::is_root() {
        anyhow::bail!("the benchmark loads eBPF programs and runs perf/bpftrace: run it as root");
    }
    let root = workspace_root();
    run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).current_dir(&root).args([
        "build",
        "--release",
        "--package",
        "observer",
    ]))?;
    let observer = root.join("target/release/observer");
    // What the binary was built from: the tree may change while the benchmark runs.
    let commit = output(Command::new("git").current_dir(&root).args(["rev-parse", "--short", "HEAD"]));
    let dirty = !output(Command::new("git").current_dir(&root).args([
        "status",
        "--porcelain",
        "--",
        "observer",
        "observer-common",
        "observer-ebpf",
    ]))
    .is_empty();
    let out = root.join("target/bench");
    let bin = out.join("bin");
    let scratch = out.join("scratch");
    std::fs::create_dir_all(&scratch)?;
    compile_workloads(&root, &bin)?;

    let plan = Plan::new(quick);
    let set = tools::watched()?;
    let tools = tools::prepare(&set, &out);
    let script = out.join("observer-syscalls.bt");
    std::fs::write(&script, tools::bpftrace_script(&set, &tools::tracefs_root())?)
        .context("writing the bpftrace script")?;
    let buffer_size = default_buffer_size(&observer);
    let cpus = sys::cpus() as u64;
    let env = Env {
        observer: observer.clone(),
        syscall_list: set.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(","),
        bpftrace_script: script.clone(),
        perf_pages: (buffer_size / 4096 / cpus).next_power_of_two(),
    };

    let machine_start = sys::loadavg();
    let mut skipped_configs = Vec::new();
    let mut configs = Vec::new();
    for c in Config::ALL {
        let why = match c {
            Config::Strace => tools.strace.as_ref().err(),
            Config::Perf => tools.perf.as_ref().err(),
            Config::Bpftrace => tools.bpftrace.as_ref().err(),
            _ => None,
        };
        match why {
            Some(reason) => {
                println!("bench: skipping {}: {reason}", c.title());
                skipped_configs.push(SkippedConfig { config: c, reason: reason.clone() });
            }
            None => configs.push(c),
        }
    }

    let b = |name: &str| bin.join(name).to_string_lossy().into_owned();
    let mut specs = vec![
        spec(
            "mprotect",
            format!("{} mprotect calls, one thread", plan.mprotect_calls),
            vec![b("bench_mprotect"), plan.mprotect_calls.to_string(), "{TIME}".into()],
            plan.rounds,
        ),
        spec(
            "threads",
            format!("create and join {} threads", plan.threads),
            vec![b("bench_threads"), plan.threads.to_string(), "{TIME}".into()],
            plan.short_rounds,
        ),
        spec(
            "forkexec",
            format!("fork + exec /bin/true, {} times", plan.forkexecs),
            vec![b("bench_forkexec"), plan.forkexecs.to_string(), "{TIME}".into()],
            plan.short_rounds,
        ),
        spec(
            "chromium",
            "headless Chromium dumping a page (--dump-dom)".into(),
            [b("bench_timer"), "{TIME}".into(), "chromium".into()]
                .into_iter()
                .chain(
                    [
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-quic",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--user-data-dir={SCRATCH}/profile",
                        "--dump-dom",
                        "data:text/html,<h1>ok</h1>",
                    ]
                    .map(String::from),
                )
                .collect(),
            plan.short_rounds,
        ),
        spec(
            "idle",
            format!("idle-heavy: {} x (sleep {} ms + ~20 us of work)", plan.idle_rounds, plan.idle_sleep_us / 1000),
            vec![b("bench_idle"), plan.idle_rounds.to_string(), plan.idle_sleep_us.to_string(), "{TIME}".into()],
            plan.short_rounds,
        ),
    ];
    if let Err(why) = &tools.chromium {
        println!("bench: skipping the Chromium workload: {why}");
        specs[3].skipped = Some(why.clone());
    }

    let mut results = Vec::new();
    for spec in specs {
        results.push(run_workload(&env, spec, configs.clone(), &scratch, &plan));
    }
    let knee = knee(&env, &bin, &scratch, &plan, buffer_size);
    let analyze = analyze_throughput(&env, &bin, &scratch, &plan, &knee);

    let machine = Machine {
        date_utc: output(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        cpu: sys::cpu_model(),
        cpus: sys::cpus(),
        mem_mib: sys::mem_total_mib(),
        kernel: output(Command::new("uname").arg("-r")),
        os: std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string()))
            })
            .unwrap_or_default(),
        observer_commit: commit,
        observer_dirty: dirty,
        tools: vec![
            ("strace", tools.strace),
            ("perf", tools.perf),
            ("bpftrace", tools.bpftrace),
            ("chromium", tools.chromium),
        ],
        loadavg_start: machine_start,
        loadavg_end: sys::loadavg(),
        duration_s: started.elapsed().as_secs_f64(),
    };
    let doc = root.join("docs/benchmarks.md");
    let kept =
        std::fs::read_to_string(&doc).ok().and_then(|old| old.find(report::KEPT_MARKER).map(|i| old[i..].to_string()));
    let rep = report::Report {
        plan: &plan,
        machine: &machine,
        results: &results,
        skipped_configs: &skipped_configs,
        knee: &knee,
        analyze: &analyze,
        env: &env,
    };
    std::fs::write(&doc, rep.markdown(kept.as_deref()))?;
    std::fs::write(root.join("docs/benchmarks.json"), format!("{:#}\n", rep.json()))?;
    println!("\n{}", rep.summary_table());
    println!("bench: wrote {} and docs/benchmarks.json in {:.0} s", doc.display(), started.elapsed().as_secs_f64());
    Ok(())
}
