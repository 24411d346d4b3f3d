//! docs/benchmarks.md (tables, targets, method, machine, how to reproduce) and
//! docs/benchmarks.json (every sample), from one invocation's results.
use std::fmt::Write;

use serde_json::{json, Value};

use super::{
    measure::{Config, Env, Sample},
    AnalyzeResult, Knee, Machine, Plan, SkippedConfig, WorkloadResult,
};

/// Everything from this line on in docs/benchmarks.md is written by hand and kept across runs.
pub const KEPT_MARKER: &str = "<!-- Written by hand below this line; `cargo xtask bench` keeps it. -->";

pub struct Report<'a> {
    pub plan: &'a Plan,
    pub machine: &'a Machine,
    pub results: &'a [WorkloadResult],
    pub skipped_configs: &'a [SkippedConfig],
    pub knee: &'a Knee,
    pub analyze: &'a AnalyzeResult,
    pub env: &'a Env,
}

pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    Some(if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 })
}

/// Medians of one configuration on one workload.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub n: usize,
    pub failed: usize,
    pub median_s: Option<f64>,
    pub min_s: Option<f64>,
    pub max_s: Option<f64>,
    pub ratio: Option<f64>,
    pub startup_s: Option<f64>,
    pub teardown_s: Option<f64>,
    pub workload_sys_s: Option<f64>,
    pub workload_user_s: Option<f64>,
    pub tool_cpu_s: Option<f64>,
    pub events: Option<f64>,
    /// Over every run, warm-ups included: any drop counts.
    pub dropped: Option<u64>,
    pub lost: Option<u64>,
    pub inflight_overflows: Option<u64>,
    pub output_bytes: Option<f64>,
    /// Bytes of events.bin per syscall record in it (every other record's bytes counted in).
    pub events_bin_per_syscall: Option<f64>,
    pub rss_hwm_kib: Option<u64>,
    pub errors: Vec<String>,
}

fn med(samples: &[&Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().filter_map(|s| f(s)).collect();
    median(&mut v)
}

impl WorkloadResult {
    pub fn cell(&self, config: Config) -> Cell {
        let all: Vec<&Sample> = self.samples.iter().filter(|s| s.config == config.key()).collect();
        let measured: Vec<&Sample> = all.iter().copied().filter(|s| !s.warmup && s.ok).collect();
        let times: Vec<f64> = measured.iter().map(|s| s.workload_s).collect();
        let sum_max = |f: &dyn Fn(&Sample) -> Option<u64>| all.iter().filter_map(|s| f(s)).max();
        Cell {
            n: measured.len(),
            failed: all.iter().filter(|s| !s.ok).count(),
            median_s: med(&measured, |s| Some(s.workload_s)),
            min_s: times.iter().copied().reduce(f64::min),
            max_s: times.iter().copied().reduce(f64::max),
            ratio: None,
            startup_s: med(&measured, |s| Some(s.startup_s)),
            teardown_s: med(&measured, |s| Some(s.teardown_s)),
            workload_sys_s: med(&measured, |s| Some(s.workload_sys_s)),
            workload_user_s: med(&measured, |s| Some(s.workload_user_s)),
            tool_cpu_s: med(&measured, |s| s.tool_cpu_s),
            events: med(&measured, |s| s.events_received.map(|e| e as f64)),
            dropped: sum_max(&|s| s.events_dropped),
            lost: sum_max(&|s| s.tool_lost),
            inflight_overflows: sum_max(&|s| s.inflight_overflows),
            output_bytes: med(&measured, |s| s.output_bytes.map(|b| b as f64)),
            events_bin_per_syscall: med(&measured, |s| match (s.events_bin_bytes, s.syscall_events) {
                (Some(b), Some(n)) if n > 0 => Some(b as f64 / n as f64),
                _ => None,
            }),
            rss_hwm_kib: sum_max(&|s| s.observer_hwm_kib.or(s.observer_rss_kib)),
            errors: all.iter().filter_map(|s| s.error.clone()).collect(),
        }
    }

    pub fn cells(&self) -> Vec<(Config, Cell)> {
        let bare = self.cell(Config::Bare).median_s;
        self.configs
            .iter()
            .map(|&c| {
                let mut cell = self.cell(c);
                cell.ratio = match (cell.median_s, bare) {
                    (Some(m), Some(b)) if b > 0.0 => Some(m / b),
                    _ => None,
                };
                (c, cell)
            })
            .collect()
    }

    fn ratio(&self, config: Config) -> Option<f64> {
        self.cells().into_iter().find(|(c, _)| *c == config).and_then(|(_, cell)| cell.ratio)
    }

    /// `config`'s time minus `baseline`'s in each measured round that has both (the configurations
    /// alternate within a round, so what drifts between rounds drops out of the difference).
    pub fn paired(&self, config: Config, baseline: Config) -> Option<Paired> {
        let time = |config: Config, round: usize| {
            self.samples
                .iter()
                .find(|s| s.config == config.key() && s.round == round && !s.warmup && s.ok)
                .map(|s| s.workload_s)
        };
        let mut rounds: Vec<usize> =
            self.samples.iter().filter(|s| s.config == config.key() && !s.warmup && s.ok).map(|s| s.round).collect();
        rounds.sort_unstable();
        rounds.dedup();
        let mut diffs: Vec<f64> =
            rounds.into_iter().filter_map(|r| Some(time(config, r)? - time(baseline, r)?)).collect();
        let n = diffs.len();
        let median_s = median(&mut diffs)?;
        Some(Paired { median_s, min_s: diffs[0], max_s: diffs[n - 1], n })
    }
}

/// Per-round differences between two configurations of one workload (seconds), sorted.
#[derive(Clone, Copy, Debug)]
pub struct Paired {
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    pub n: usize,
}

#[derive(Clone, Debug)]
pub struct Target {
    pub what: String,
    pub goal: String,
    pub measured: String,
    /// None: not measured in this run.
    pub met: Option<bool>,
    pub by: String,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Report<'_> {
    fn result(&self, key: &str) -> Option<&WorkloadResult> {
        self.results.iter().find(|r| r.spec.key == key && r.spec.skipped.is_none())
    }

    fn ratio_target(&self, key: &str, label: &str, config: Config, limit: f64) -> Target {
        let r = self.result(key).and_then(|w| w.ratio(config));
        let goal = format!("<= {limit:.2}x bare");
        match r {
            None => Target { what: label.into(), goal, measured: "not measured".into(), met: None, by: String::new() },
            Some(r) => Target {
                what: label.into(),
                goal,
                measured: format!("{r:.3}x"),
                met: Some(r <= limit),
                by: if r <= limit {
                    format!("{:.1} points to spare", (limit - r) * 100.0)
                } else {
                    format!(
                        "missed by {:.3}x: {:.1}% overhead where {:.0}% is allowed",
                        r - limit,
                        (r - 1.0) * 100.0,
                        (limit - 1.0) * 100.0
                    )
                },
            },
        }
    }

    /// `config` on workload `key` against the hook floor (empty programs on the same hooks, measured
    /// in the same rounds): at most `points` percentage points of the bare time above it, judged by
    /// the median of the per-round differences.
    fn floor_target(&self, key: &str, label: &str, config: Config, points: f64) -> Target {
        let goal = format!("<= hook floor + {points:.0} point{}", if points == 1.0 { "" } else { "s" });
        let w = self.result(key);
        let bare = w.and_then(|w| w.cell(Config::Bare).median_s).filter(|b| *b > 0.0);
        let (Some(w), Some(bare)) = (w, bare) else {
            return Target { what: label.into(), goal, measured: "not measured".into(), met: None, by: String::new() };
        };
        let (r, f, paired) = (w.ratio(config), w.ratio(Config::HooksOnly), w.paired(config, Config::HooksOnly));
        let (Some(r), Some(f), Some(paired)) = (r, f, paired) else {
            return Target { what: label.into(), goal, measured: "not measured".into(), met: None, by: String::new() };
        };
        let points_of = |s: f64| s / bare * 100.0;
        let above = points_of(paired.median_s);
        Target {
            what: label.into(),
            goal,
            measured: format!(
                "{r:.3}x, floor {f:.3}x; paired: {above:+.1} points (rounds {:+.1} to {:+.1}, n={})",
                points_of(paired.min_s),
                points_of(paired.max_s),
                paired.n
            ),
            met: Some(above <= points),
            by: if above <= points {
                format!("{:.1} points to spare", points - above)
            } else {
                format!("missed by {:.1} points", above - points)
            },
        }
    }

    /// Observer's own cost per traced call on the mprotect loop: the median over rounds of its time
    /// above the hook floor's in the same round.
    fn cost_per_call_target(&self, limit_ns: f64) -> Target {
        let what = "(1) mprotect: observer's own cost above the hook floor".to_string();
        let goal = format!("<= {limit_ns:.0} ns per traced call");
        let Some(paired) = self.result("mprotect").and_then(|w| w.paired(Config::Observer, Config::HooksOnly)) else {
            return Target { what, goal, measured: "not measured".into(), met: None, by: String::new() };
        };
        let per_call = |s: f64| s * 1e9 / self.plan.mprotect_calls as f64;
        let ns = per_call(paired.median_s);
        Target {
            what,
            goal,
            measured: format!(
                "{ns:.0} ns (rounds {:.0} to {:.0}, n={})",
                per_call(paired.min_s),
                per_call(paired.max_s),
                paired.n
            ),
            met: Some(ns <= limit_ns),
            by: if ns <= limit_ns { String::new() } else { format!("missed by {:.0} ns", ns - limit_ns) },
        }
    }

    pub fn targets(&self) -> Vec<Target> {
        let mut t = Vec::new();
        t.push(self.ratio_target("mprotect", "(1) mprotect: observer run", Config::Observer, 1.15));
        t.push(self.cost_per_call_target(120.0));
        // At least 10x less overhead than strace -f.
        let w1 = self.result("mprotect");
        let (ro, rs) = (w1.and_then(|w| w.ratio(Config::Observer)), w1.and_then(|w| w.ratio(Config::Strace)));
        t.push(match (ro, rs) {
            (Some(ro), Some(rs)) => {
                let (oo, os) = (ro - 1.0, rs - 1.0);
                let k = if oo > 0.0 { os / oo } else { f64::INFINITY };
                Target {
                    what: "(1) mprotect: overhead vs strace -f".into(),
                    goal: ">= 10x less overhead".into(),
                    measured: format!(
                        "observer +{:.1}%, strace -f +{:.0}%: {}",
                        oo * 100.0,
                        os * 100.0,
                        if k.is_finite() { format!("{k:.1}x less") } else { "observer overhead not measurable".into() }
                    ),
                    met: Some(k >= 10.0),
                    by: if k >= 10.0 { String::new() } else { format!("missed: {k:.1}x where 10x is asked") },
                }
            }
            _ => Target {
                what: "(1) mprotect: overhead vs strace -f".into(),
                goal: ">= 10x less overhead".into(),
                measured: "not measured".into(),
                met: None,
                by: String::new(),
            },
        });
        t.push(self.ratio_target("threads", "(2) threads: observer run", Config::Observer, 1.05));
        t.push(self.ratio_target("forkexec", "(3) fork+exec: observer run", Config::Observer, 1.05));
        t.push(self.ratio_target("chromium", "(4) Chromium: observer run", Config::Observer, 1.05));
        t.push(self.floor_target(
            "forkexec",
            "(3) fork+exec: observer run against the hook floor",
            Config::Observer,
            2.0,
        ));
        t.push(self.floor_target(
            "chromium",
            "(4) Chromium: observer run against the hook floor",
            Config::Observer,
            2.0,
        ));
        for w in self.results.iter().filter(|w| w.spec.skipped.is_none()) {
            // What the hooks cost with programs that do nothing: no program can do better.
            let floor = w.ratio(Config::HooksOnly).map_or(String::new(), |f| format!(" (hooks alone: {f:.3}x)"));
            for (config, how) in [
                (Config::HostWide, "while observer is attached elsewhere"),
                (Config::Watch, "while `observer watch` runs"),
            ] {
                let mut target =
                    self.ratio_target(w.spec.key, &format!("untracked {} {how}", w.spec.key), config, 1.03);
                if target.met.is_some() {
                    target.measured.push_str(&floor);
                }
                t.push(target);
                t.push(self.floor_target(
                    w.spec.key,
                    &format!("untracked {} {how}, against the hook floor", w.spec.key),
                    config,
                    1.0,
                ));
            }
        }
        let mut drops = 0u64;
        let mut overflows = 0u64;
        let mut which = Vec::new();
        let mut measured_any = false;
        for key in ["mprotect", "threads", "forkexec", "chromium"] {
            if let Some(w) = self.result(key) {
                let c = w.cell(Config::Observer);
                if let Some(d) = c.dropped {
                    measured_any = true;
                    drops += d;
                    overflows += c.inflight_overflows.unwrap_or(0);
                    if d > 0 {
                        which.push(format!("{key}: {d}"));
                    }
                }
            }
        }
        t.push(Target {
            what: "zero drops at the default buffer, workloads (1)-(4)".into(),
            goal: "0 events_dropped".into(),
            measured: if measured_any {
                format!(
                    "{drops} dropped{} (in-flight table overflows: {overflows})",
                    if which.is_empty() { String::new() } else { format!(" ({})", which.join(", ")) }
                )
            } else {
                "not measured".into()
            },
            met: measured_any.then_some(drops == 0 && overflows == 0),
            by: if drops > 0 { format!("missed by {drops} events") } else { String::new() },
        });
        let rss = ["mprotect", "threads"]
            .iter()
            .filter_map(|k| self.result(k))
            .filter_map(|w| w.cell(Config::Observer).rss_hwm_kib)
            .max();
        t.push(Target {
            what: "observer resident memory (peak, mprotect and threads runs)".into(),
            goal: "<= 64 MiB".into(),
            measured: rss.map_or("not measured".into(), |k| format!("{:.1} MiB", mib(k))),
            met: rss.map(|k| mib(k) <= 64.0),
            by: rss.filter(|&k| mib(k) > 64.0).map_or(String::new(), |k| format!("missed by {:.1} MiB", mib(k) - 64.0)),
        });
        for (key, label, limit) in [("mprotect", "(1) mprotect", 24.0), ("chromium", "(4) Chromium", 40.0)] {
            let per = self.result(key).and_then(|w| w.cell(Config::Observer).events_bin_per_syscall);
            t.push(Target {
                what: format!("{label}: events.bin bytes per syscall record"),
                goal: format!("<= {limit:.0} B"),
                measured: per.map_or("not measured".into(), |b| format!("{b:.1} B")),
                met: per.map(|b| b <= limit),
                by: per.filter(|&b| b > limit).map_or(String::new(), |b| format!("missed by {:.1} B", b - limit)),
            });
        }
        let rate = self.analyze_rate();
        t.push(Target {
            what: "`observer analyze` throughput".into(),
            goal: ">= 10 M events/s".into(),
            measured: rate.map_or("not measured".into(), |r| format!("{:.2} M events/s", r / 1e6)),
            met: rate.map(|r| r >= 10e6),
            by: rate.filter(|&r| r < 10e6).map_or(String::new(), |r| {
                format!("missed by {:.2} M events/s ({:.1}x too slow)", (10e6 - r) / 1e6, 10e6 / r)
            }),
        });
        t
    }

    fn analyze_rate(&self) -> Option<f64> {
        let mut times = self.analyze.times_s.clone();
        median(&mut times).filter(|_| self.analyze.capture_events > 0).map(|t| self.analyze.capture_events as f64 / t)
    }

    fn quietness(&self) -> (usize, usize, f64, f64, Vec<String>) {
        let mut n = 0;
        let mut with_foreign = 0;
        let (mut lo, mut hi) = (f64::MAX, 0.0f64);
        let mut names: Vec<String> = Vec::new();
        let knee_samples = self.knee.steps.iter().map(|s| &s.sample);
        for s in self.results.iter().flat_map(|w| w.samples.iter()).chain(knee_samples) {
            n += 1;
            lo = lo.min(s.loadavg);
            hi = hi.max(s.loadavg);
            if !s.foreign_tracers.is_empty() {
                with_foreign += 1;
                for f in &s.foreign_tracers {
                    let name = f.split('[').next().unwrap_or(f).to_string();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        (n, with_foreign, if n == 0 { 0.0 } else { lo }, hi, names)
    }

    /// The main table, as printed at the end of a run and in the doc.
    pub fn summary_table(&self) -> String {
        let mut s = String::new();
        let configs: Vec<Config> = self.results.first().map(|r| r.configs.clone()).unwrap_or_default();
        let _ = write!(s, "| workload |");
        for c in &configs {
            let _ = write!(s, " {} |", c.title());
        }
        s.push('\n');
        let _ = write!(s, "|---|");
        for _ in &configs {
            s.push_str("---|");
        }
        s.push('\n');
        for w in self.results {
            let _ = write!(s, "| {} |", w.spec.title);
            if let Some(why) = &w.spec.skipped {
                let _ = writeln!(s, " skipped: {why} |");
                continue;
            }
            for (c, cell) in w.cells() {
                match (cell.median_s, cell.ratio) {
                    (Some(m), Some(r)) if c != Config::Bare => {
                        let _ = write!(s, " {m:.3} s ({r:.2}x) |");
                    }
                    (Some(m), _) => {
                        let _ = write!(s, " {m:.3} s |");
                    }
                    _ => {
                        let _ = write!(
                            s,
                            " failed{} |",
                            cell.errors
                                .first()
                                .map_or(String::new(), |e| format!(": {}", e.chars().take(80).collect::<String>()))
                        );
                    }
                }
            }
            s.push('\n');
        }
        s
    }

    pub fn markdown(&self, kept: Option<&str>) -> String {
        let m = self.machine;
        let p = self.plan;
        let mut d = String::new();
        let (n, foreign, lo, hi, names) = self.quietness();
        let _ = writeln!(d, "# Benchmarks: observer against strace, perf trace and bpftrace\n");
        let _ = writeln!(
            d,
            "Generated by `cargo xtask bench{}` on {} ({} mode, {:.0} min); the raw figures are in \
             [benchmarks.json](benchmarks.json). Everything above the hand-written part at the end is rewritten by each run.\n",
            if p.quick { " --quick" } else { "" },
            m.date_utc,
            if p.quick { "**quick** (smaller sizes, fewer rounds: do not quote)" } else { "full" },
            m.duration_s / 60.0
        );
        let _ = writeln!(
            d,
            "**Quote figures taken on a quiet machine.** During this run the 1-minute load average was {lo:.1}–{hi:.1} \
             (start {:.1}, end {:.1}; the machine has {} CPUs) and {foreign} of {n} runs started while tracers not started by \
             the benchmark were running{}. Other tracers attach probes host-wide and slow every configuration, the bare \
             runs included; a busy CPU slows observer's reader more than the workload.\n",
            m.loadavg_start,
            m.loadavg_end,
            m.cpus,
            if names.is_empty() { String::new() } else { format!(" ({})", names.join(", ")) }
        );

        let _ = writeln!(d, "## The workload's own time: median, and ratio to bare\n");
        let _ = writeln!(
            d,
            "Median of {} alternating rounds for mprotect and {} for the shorter workloads after {} warm-up round(s); the ratio is the median over the \
             bare median of the same invocation. Tool startup and teardown are not in these figures (next table).\n",
            p.rounds, p.short_rounds, p.warmups
        );
        d.push_str(&self.summary_table());
        d.push('\n');

        let _ = writeln!(d, "Spread (min–max of the measured rounds), events and losses:\n");
        let _ = writeln!(d, "| workload | configuration | rounds | min–max s | workload sys CPU s | tool CPU s | events / lost | output |");
        let _ = writeln!(d, "|---|---|---|---|---|---|---|---|");
        for w in self.results.iter().filter(|w| w.spec.skipped.is_none()) {
            for (c, cell) in w.cells() {
                let spread = match (cell.min_s, cell.max_s) {
                    (Some(a), Some(b)) => format!("{a:.3}–{b:.3}"),
                    _ => "—".into(),
                };
                let events = match c {
                    Config::Observer => {
                        format!("{:.0} / dropped {}", cell.events.unwrap_or(0.0), cell.dropped.unwrap_or(0))
                    }
                    Config::Perf | Config::Bpftrace => format!("lost {}", cell.lost.unwrap_or(0)),
                    Config::Strace => "— (synchronous)".into(),
                    Config::HostWide => format!("attach dropped {}", cell.dropped.unwrap_or(0)),
                    Config::Watch | Config::HooksOnly => "—".into(),
                    Config::Bare => "—".into(),
                };
                let mut outb = cell.output_bytes.map_or("—".into(), |b| format!("{:.1} MB", b / 1e6));
                if let Some(per) = cell.events_bin_per_syscall {
                    outb.push_str(&format!(" (events.bin {per:.1} B/syscall record)"));
                }
                let fails = if cell.failed > 0 {
                    format!(
                        " ({} failed: {})",
                        cell.failed,
                        cell.errors.first().map_or("", |e| e.as_str()).chars().take(100).collect::<String>()
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    d,
                    "| {} | {} | {}{} | {} | {} | {} | {} | {} |",
                    w.spec.key,
                    c.title(),
                    cell.n,
                    fails,
                    spread,
                    cell.workload_sys_s.map_or("—".into(), |v| format!("{v:.3}")),
                    cell.tool_cpu_s.map_or("—".into(), |v| format!("{v:.2}")),
                    events,
                    outb
                );
            }
        }
        d.push('\n');

        let _ = writeln!(d, "## Startup and teardown (seconds, medians; not in the times above)\n");
        let _ = writeln!(
            d,
            "Startup: from spawning the outer command to the workload's first time stamp (bare: process start and dynamic \
             loading alone). Teardown: from the workload's last time stamp to the outer command's exit (observer: draining, \
             writing the run directory, detaching its 8 tracepoint programs, each detach waiting for an RCU grace period).\n"
        );
        let configs: Vec<Config> = self.results.first().map(|r| r.configs.clone()).unwrap_or_default();
        let _ = write!(d, "| workload |");
        for c in &configs {
            let _ = write!(d, " {} |", c.title());
        }
        let _ = write!(d, "\n|---|");
        for _ in &configs {
            d.push_str("---|");
        }
        d.push('\n');
        for w in self.results.iter().filter(|w| w.spec.skipped.is_none()) {
            let _ = write!(d, "| {} |", w.spec.key);
            for (c, cell) in w.cells() {
                if c.background() {
                    d.push_str(" (runs around it) |");
                    continue;
                }
                let _ = write!(
                    d,
                    " {} / {} |",
                    cell.startup_s.map_or("—".into(), |v| format!("{v:.3}")),
                    cell.teardown_s.map_or("—".into(), |v| format!("{v:.3}"))
                );
            }
            d.push('\n');
        }
        d.push('\n');

        let _ = writeln!(d, "## Targets\n");
        let _ = writeln!(
            d,
            "Figures against the hook floor are the median over rounds of the difference to the floor's run in the same round \
             (the configurations alternate within a round), with the smallest and largest round beside it: where those span more \
             than the target allows, one run cannot tell met from missed.\n"
        );
        let _ = writeln!(d, "| target | goal | measured | status |");
        let _ = writeln!(d, "|---|---|---|---|");
        for t in self.targets() {
            let status = match t.met {
                Some(true) => format!("met{}", if t.by.is_empty() { String::new() } else { format!(" ({})", t.by) }),
                Some(false) => format!("**MISSED** — {}", t.by),
                None => "not measured".into(),
            };
            let _ = writeln!(d, "| {} | {} | {} | {} |", t.what, t.goal, t.measured, status);
        }
        d.push('\n');

        let k = self.knee;
        let _ = writeln!(
            d,
            "## Events per second without drops (default --buffer-size {} MiB)\n",
            k.buffer_size / (1024 * 1024)
        );
        let _ = writeln!(
            d,
            "`bench_rate` makes `kill(getpid(), 0)` calls (one syscall record each, no signal) at a paced rate for {} s under \
             `observer run`; the rate goes up until the kernel counts the first failed reservation (`events_dropped` > 0), then \
             is bisected {} time(s). Rates are what observer received over the workload's run time.\n",
            p.knee_seconds, p.knee_bisect
        );
        let _ =
            writeln!(d, "| asked / s | threads | received events / s | dropped | observer CPU s | observer peak RSS |");
        let _ = writeln!(d, "|---|---|---|---|---|---|");
        for s in &k.steps {
            let _ = writeln!(
                d,
                "| {} | {} | {:.0} | {} | {} | {} |",
                if s.target_rate > 0.0 { format!("{:.0}", s.target_rate) } else { "as fast as possible".into() },
                s.threads,
                s.achieved_rate,
                s.sample.events_dropped.map_or_else(|| s.sample.error.clone().unwrap_or("?".into()), |v| v.to_string()),
                s.sample.tool_cpu_s.map_or("—".into(), |v| format!("{v:.2}")),
                s.sample.observer_hwm_kib.map_or("—".into(), |v| format!("{:.1} MiB", mib(v)))
            );
        }
        let _ = writeln!(
            d,
            "\n**Knee: {}**{}.\n",
            k.knee_rate.map_or("none measured".into(), |r| format!("{:.0} events/s sustained with zero drops", r)),
            k.first_drop_rate
                .map_or(" (no step dropped: the knee is above what the generator reached)".into(), |r| format!(
                    "; the lowest rate that dropped was {r:.0} events/s"
                ))
        );

        let _ = writeln!(d, "## Observer resident memory\n");
        let _ = writeln!(d, "VmHWM (peak resident set) of the observer process, sampled every 2 ms from /proc while it ran; the largest over the runs of each workload.\n");
        let _ = writeln!(d, "| workload | `observer run` | `observer attach` elsewhere | `observer watch` |");
        let _ = writeln!(d, "|---|---|---|---|");
        for w in self.results.iter().filter(|w| w.spec.skipped.is_none()) {
            let r = |c| w.cell(c).rss_hwm_kib.map_or("—".into(), |k| format!("{:.1} MiB", mib(k)));
            let _ = writeln!(
                d,
                "| {} | {} | {} | {} |",
                w.spec.key,
                r(Config::Observer),
                r(Config::HostWide),
                r(Config::Watch)
            );
        }
        d.push('\n');

        let a = self.analyze;
        let _ = writeln!(d, "## `observer analyze` throughput\n");
        match (&a.error, self.analyze_rate()) {
            (None, Some(rate)) => {
                let mut t = a.times_s.clone();
                let _ = writeln!(
                    d,
                    "A capture of **{} events** ({:.1} MB events.bin, {:.1} B a record; `bench_rate` paced at {:.0} calls/s, {} dropped) \
                     analysed in {:.2} s (median of {} after a warm-up run; page cache warm): **{:.2} M events/s**; analyze's peak RSS {}.\n",
                    a.capture_events,
                    a.events_bin_bytes as f64 / 1e6,
                    a.events_bin_bytes as f64 / a.capture_events.max(1) as f64,
                    a.capture_rate,
                    a.capture_dropped,
                    median(&mut t).unwrap_or(0.0),
                    a.times_s.len(),
                    rate / 1e6,
                    a.max_rss_kib.map_or("—".into(), |k| format!("{:.1} MiB", mib(k)))
                );
            }
            (err, _) => {
                let _ = writeln!(d, "Not measured: {}\n", err.as_deref().unwrap_or("no capture"));
            }
        }

        let _ = writeln!(d, "## Machine\n");
        let _ = writeln!(d, "| | |\n|---|---|");
        let _ = writeln!(d, "| date | {} |", m.date_utc);
        let _ = writeln!(d, "| CPU | {} ({} CPUs) |", m.cpu, m.cpus);
        let _ = writeln!(d, "| memory | {} MiB |", m.mem_mib);
        let _ = writeln!(d, "| kernel | {} |", m.kernel);
        let _ = writeln!(d, "| system | {} |", m.os);
        let _ = writeln!(
            d,
            "| observer | `target/release/observer` built at the start of the run from {}{} |",
            m.observer_commit,
            if m.observer_dirty {
                " with uncommitted changes in observer/, observer-common/ or observer-ebpf/"
            } else {
                ""
            }
        );
        for (name, v) in &m.tools {
            let _ = writeln!(
                d,
                "| {name} | {} |",
                match v {
                    Ok(v) => v.clone(),
                    Err(e) => format!("not used: {e}"),
                }
            );
        }
        d.push('\n');
        for s in self.skipped_configs {
            let _ = writeln!(d, "Column skipped: **{}** — {}\n", s.config.title(), s.reason);
        }

        let _ = writeln!(d, "## Method\n");
        let _ = writeln!(
            d,
            "- **What is timed.** Each workload takes CLOCK_MONOTONIC stamps around its own work and writes them, with its \
             CPU time (getrusage), to a file; Chromium, which cannot, is started by `bench_timer`, which stamps around its \
             fork+exec+wait. The figures are the workload's own wall time, so a tool's startup (loading and attaching probes, \
             compiling a script) and teardown (draining, writing files, detaching) are excluded for every tool alike and \
             reported separately. Every tool starts the workload itself and holds it until its probes are attached, so the \
             whole workload is traced.\n\
             - **Alternation.** For each workload, one round runs every configuration once, in an order rotated by one each \
             round (A B C …, B C … A, …); the first {} round(s) are warm-ups and are discarded; the table shows medians. \
             Output files are deleted after each run and runs are 200 ms apart.\n\
             - **The syscall set** is observer's (`observer_common::syscalls::WATCHED`, {} syscalls: {}).\n\
             - **bare**: the workload alone.\n\
             - **observer run**: `observer run --quiet --out DIR -- WORKLOAD` with default options (ring buffer {} MiB).\n\
             - **strace -f**: `strace -f -ttt -T -e trace=SET -o FILE -- WORKLOAD` (the timestamps and durations observer records too).\n\
             - **perf trace**: `perf trace -m {} -e SET -o FILE -- WORKLOAD` ({} pages per CPU: the same {} MiB in all as observer's ring).\n\
             - **bpftrace**: `bpftrace -o FILE -c WORKLOAD observer-syscalls.bt` with `BPFTRACE_PERF_RB_PAGES={}` (same buffer) and \
             `BPFTRACE_MAP_KEYS_MAX=65536`; the script (generated into `target/bench/observer-syscalls.bt`) follows the command's \
             process tree like observer (a tgid map grown in `sched:sched_process_fork`) and prints one line per event on \
             every `syscalls:sys_enter_X` (with the arguments observer keeps) and `syscalls:sys_exit_X` (with the return value) of the set.\n\
             - **untracked, observer attached elsewhere**: the cost of observer's probes to a process it does not track (the hooks and the in-kernel filter miss): the \
             benchmark starts `sleep 100000`, runs `observer attach --pid <that sleep> --quiet --out DIR` in the background, \
             waits until its events.bin exists (every probe is attached by then), runs the bare workload (untracked, so each \
             of its syscalls pays the in-kernel filter miss of observer's programs), then stops the attach with SIGINT and \
             kills the sleep.\n\
             - **untracked, observer watch running**: `observer watch --incidents DIR` (default options: every process in \
             host-wide mode, none tracked in full) is started, the benchmark waits for its `watching every process` line \
             (printed once the programs are attached), runs the bare workload, then stops the daemon with SIGINT. Unlike \
             the attach emulation, host-wide mode pairs the resource syscalls (`mmap`, `mprotect`, `clone`, ...) of every \
             process in the kernel when they map a thread stack or set a limit, and reads the registers of any of their \
             calls that fails.\n\
             - **untracked, empty programs on the same hooks (floor)**: as the attach emulation, with \
             `OBSERVER_BENCH_HOOKS_ONLY=1` in observer's environment: the syscall programs are attached to the same raw \
             `sys_enter`/`sys_exit` tracepoints but return at their first instruction. What is left is what the kernel \
             charges every syscall of every process once any program sits on those hooks (the syscall slow path and two \
             program invocations): the floor under both untracked figures, measured in the same rounds.\n\
             - **Drops**: observer's `events_dropped` (failed ring-buffer reservations counted in the kernel) from summary.txt, \
             over every run including warm-ups; perf trace's `LOST` records and bpftrace's `Lost N events` lines; strace stops \
             the tracee and loses nothing.\n\
             - **Machine load**: the load average and any tracer process (`observer`, `strace`, `perf`, `bpftrace`) the \
             benchmark did not start are recorded for each run in benchmarks.json (`loadavg`, `foreign_tracers`).\n\
             - Workloads: `tests/workloads/bench_*.c`, built with `cc -O2 -pthread`. Sizes: {} mprotect calls; {} threads created \
             and joined one after the other; {} fork+exec of /bin/true; Chromium as `chromium --headless --no-sandbox \
             --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update \
             --disable-sync --user-data-dir=<fresh dir> --dump-dom 'data:text/html,<h1>ok</h1>'` (the machine has no network); \
             idle: {} rounds of a {} ms nanosleep and about 20 µs of arithmetic.\n",
            p.warmups,
            self.env.syscall_list.split(',').count(),
            self.env.syscall_list.replace(',', ", "),
            self.knee.buffer_size / (1024 * 1024),
            self.env.perf_pages,
            self.env.perf_pages,
            self.knee.buffer_size / (1024 * 1024),
            self.env.perf_pages,
            p.mprotect_calls,
            p.threads,
            p.forkexecs,
            p.idle_rounds,
            p.idle_sleep_us / 1000
        );

        let _ = writeln!(d, "## Reproduce\n");
        let _ = writeln!(
            d,
            "As root on a quiet machine (Debian 12, kernel with BTF), from the repository root:\n\n```sh\n\
             cargo xtask bench           # full run, about 25 minutes; rewrites docs/benchmarks.md and docs/benchmarks.json\n\
             cargo xtask bench --quick   # smaller sizes and fewer rounds, a few minutes: checks the harness, not for quoting\n```\n\n\
             It builds `target/release/observer`, installs strace, linux-perf, bpftrace and chromium from Debian when missing \
             (a column is skipped, with the reason printed, when its tool cannot run), builds the workloads into \
             `target/bench/bin/`, and runs everything from `target/bench/scratch/`. One configuration by hand, e.g.:\n\n```sh\n\
             target/bench/bin/bench_mprotect 1000000 /tmp/t && cat /tmp/t     # START_NS END_NS USER_US SYS_US\n\
             target/release/observer run --quiet --out /tmp/run -- target/bench/bin/bench_mprotect 1000000 /tmp/t\n\
             strace -f -ttt -T -e trace={} -o /tmp/s.txt -- target/bench/bin/bench_mprotect 1000000 /tmp/t\n```\n",
            self.env.syscall_list
        );

        match kept {
            Some(k) => d.push_str(k),
            None => {
                let _ = writeln!(d, "{KEPT_MARKER}\n\n## Analysis\n\n(Diagnosis of missed targets goes here.)");
            }
        }
        d
    }

    pub fn json(&self) -> Value {
        let m = self.machine;
        let p = self.plan;
        let sample = |s: &Sample| {
            json!({
                "config": s.config,
                "round": s.round,
                "warmup": s.warmup,
                "ok": s.ok,
                "error": s.error,
                "workload_s": s.workload_s,
                "startup_s": s.startup_s,
                "teardown_s": s.teardown_s,
                "workload_user_s": s.workload_user_s,
                "workload_sys_s": s.workload_sys_s,
                "workload_calls": s.workload_calls,
                "tool_cpu_s": s.tool_cpu_s,
                "observer_rss_kib": s.observer_rss_kib,
                "observer_hwm_kib": s.observer_hwm_kib,
                "events_received": s.events_received,
                "events_submitted": s.events_submitted,
                "events_dropped": s.events_dropped,
                "inflight_overflows": s.inflight_overflows,
                "tool_lost": s.tool_lost,
                "output_bytes": s.output_bytes,
                "events_bin_bytes": s.events_bin_bytes,
                "syscall_events": s.syscall_events,
                "loadavg": s.loadavg,
                "foreign_tracers": s.foreign_tracers,
            })
        };
        let workloads: Vec<Value> = self
            .results
            .iter()
            .map(|w| {
                let cells: Vec<Value> = if w.spec.skipped.is_some() {
                    Vec::new()
                } else {
                    w.cells()
                        .into_iter()
                        .map(|(c, cell)| {
                            json!({
                                "config": c.key(),
                                "rounds": cell.n,
                                "failed": cell.failed,
                                "median_s": cell.median_s,
                                "min_s": cell.min_s,
                                "max_s": cell.max_s,
                                "ratio_to_bare": cell.ratio,
                                "median_startup_s": cell.startup_s,
                                "median_teardown_s": cell.teardown_s,
                                "median_workload_sys_s": cell.workload_sys_s,
                                "median_workload_user_s": cell.workload_user_s,
                                "median_tool_cpu_s": cell.tool_cpu_s,
                                "median_events": cell.events,
                                "max_dropped": cell.dropped,
                                "max_tool_lost": cell.lost,
                                "max_rss_kib": cell.rss_hwm_kib,
                            })
                        })
                        .collect()
                };
                json!({
                    "key": w.spec.key,
                    "title": w.spec.title,
                    "argv": w.spec.argv,
                    "skipped": w.spec.skipped,
                    "summary": cells,
                    "samples": w.samples.iter().map(sample).collect::<Vec<_>>(),
                })
            })
            .collect();
        let knee_steps: Vec<Value> = self
            .knee
            .steps
            .iter()
            .map(|s| {
                json!({
                    "target_rate": s.target_rate,
                    "threads": s.threads,
                    "received_rate": s.achieved_rate,
                    "sample": sample(&s.sample),
                })
            })
            .collect();
        let a = self.analyze;
        let targets: Vec<Value> = self
            .targets()
            .into_iter()
            .map(|t| json!({ "target": t.what, "goal": t.goal, "measured": t.measured, "met": t.met, "note": t.by }))
            .collect();
        let tools: serde_json::Map<String, Value> = m
            .tools
            .iter()
            .map(|(n, v)| {
                let v = match v {
                    Ok(version) => json!(version),
                    Err(reason) => json!({ "skipped": reason }),
                };
                (n.to_string(), v)
            })
            .collect();
        let skipped_configs: Vec<Value> =
            self.skipped_configs.iter().map(|s| json!({ "config": s.config.key(), "reason": s.reason })).collect();
        json!({
            "generated_by": if p.quick { "cargo xtask bench --quick" } else { "cargo xtask bench" },
            "mode": if p.quick { "quick" } else { "full" },
            "plan": {
                "mprotect_calls": p.mprotect_calls,
                "threads": p.threads,
                "forkexecs": p.forkexecs,
                "idle_rounds": p.idle_rounds,
                "idle_sleep_us": p.idle_sleep_us,
                "rounds": p.rounds,
                "short_rounds": p.short_rounds,
                "warmups": p.warmups,
                "knee_seconds": p.knee_seconds,
                "analyze_events": p.analyze_events,
            },
            "machine": {
                "date_utc": m.date_utc,
                "cpu": m.cpu,
                "cpus": m.cpus,
                "mem_mib": m.mem_mib,
                "kernel": m.kernel,
                "os": m.os,
                "observer_commit": m.observer_commit,
                "observer_uncommitted_changes": m.observer_dirty,
                "loadavg_start": m.loadavg_start,
                "loadavg_end": m.loadavg_end,
                "duration_s": m.duration_s,
                "tools": tools,
            },
            "syscalls": self.env.syscall_list.split(',').collect::<Vec<_>>(),
            "skipped_configs": skipped_configs,
            "workloads": workloads,
            "event_rate": {
                "buffer_size": self.knee.buffer_size,
                "knee_events_per_s": self.knee.knee_rate,
                "first_drop_events_per_s": self.knee.first_drop_rate,
                "steps": knee_steps,
            },
            "analyze": {
                "capture_events": a.capture_events,
                "capture_dropped": a.capture_dropped,
                "events_bin_bytes": a.events_bin_bytes,
                "capture_rate": a.capture_rate,
                "times_s": a.times_s,
                "events_per_s": self.analyze_rate(),
                "max_rss_kib": a.max_rss_kib,
                "error": a.error,
            },
            "targets": targets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::WorkloadSpec;

    fn sample(config: Config, round: usize, warmup: bool, workload_s: f64) -> Sample {
        Sample { config: config.key(), round, warmup, ok: true, workload_s, ..Sample::default() }
    }

    #[test]
    fn paired_differences_take_each_round_against_its_own_baseline_and_skip_warmups() {
        let spec = WorkloadSpec { key: "w", title: "w".into(), argv: vec![], rounds: 3, skipped: None };
        let mut samples = vec![sample(Config::Observer, 0, true, 9.0), sample(Config::HooksOnly, 0, true, 1.0)];
        // A machine that slows down from round to round: the per-round differences stay 0.1 s.
        for (round, floor) in [(1, 1.0), (2, 2.0), (3, 3.0)] {
            samples.push(sample(Config::HooksOnly, round, false, floor));
            samples.push(sample(Config::Observer, round, false, floor + 0.1));
        }
        // A round whose baseline failed does not count.
        samples.push(sample(Config::Observer, 4, false, 5.0));
        let w = WorkloadResult { spec, configs: vec![Config::Observer, Config::HooksOnly], samples };
        let p = w.paired(Config::Observer, Config::HooksOnly).expect("three paired rounds");
        assert_eq!(p.n, 3);
        for v in [p.median_s, p.min_s, p.max_s] {
            assert!((v - 0.1).abs() < 1e-9, "{p:?}");
        }
        assert!(w.paired(Config::Bare, Config::HooksOnly).is_none());
    }
}
