//! Shared test plumbing: the BPF gate, compiling workloads, running observer, reading a run dir.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use observer::{
    event::Event,
    source::{EventSource, FileSource},
};

/// Tests that measure CPU use (a spinning thread must get 90% of a CPU) run alone; the others
/// share the machine.
static CPU: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// A test's hold on the machine: shared, or exclusive for CPU-sensitive tests.
pub enum CpuGuard {
    Shared(#[allow(dead_code)] std::sync::RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] std::sync::RwLockWriteGuard<'static, ()>),
}

fn bpf_available(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    let reason = "not running as root, so eBPF programs cannot be loaded";
    if std::env::var("OBSERVER_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("{test}: OBSERVER_REQUIRE_BPF=1 but {reason}");
    }
    eprintln!("skipped {test}: {reason}");
    false
}

/// `Some` when tests that load BPF can run here (hold it for the test); `None` after printing why
/// not; panics when they must run (OBSERVER_REQUIRE_BPF=1).
pub fn bpf_or_skip(test: &str) -> Option<CpuGuard> {
    bpf_available(test).then(|| CpuGuard::Shared(CPU.read().unwrap_or_else(|e| e.into_inner())))
}

/// As `bpf_or_skip`, with the machine to itself.
pub fn bpf_alone_or_skip(test: &str) -> Option<CpuGuard> {
    bpf_available(test).then(|| CpuGuard::Exclusive(CPU.write().unwrap_or_else(|e| e.into_inner())))
}

pub fn observer_bin() -> &'static str {
    env!("CARGO_BIN_EXE_observer")
}

pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `tests/workloads/<name>.c` once per test binary run.
pub fn workload(name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/workloads").join(format!("{name}.c"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("workload-{name}-{}", std::process::id()));
    if !out.exists() {
        // A name of this thread's own: tests compiling the same workload at once must not collide.
        let tmp = out.with_extension(format!("tmp-{:?}", std::thread::current().id()).replace(['(', ')'], ""));
        let status =
            Command::new("cc").args(["-O2", "-g", "-pthread", "-o"]).arg(&tmp).arg(&src).status().expect("cc runs");
        assert!(status.success(), "compiling {}", src.display());
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

/// `observer run --out DIR [extra...] -- cmd...`
pub fn observe(dir: &Path, extra: &[&str], cmd: &[&str]) -> Output {
    let output = Command::new(observer_bin())
        .args(["run", "--quiet", "--out"])
        .arg(dir)
        .args(extra)
        .arg("--")
        .args(cmd)
        .output()
        .expect("observer starts");
    eprintln!("observer stderr:\n{}", String::from_utf8_lossy(&output.stderr));
    output
}

pub fn summary(dir: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(dir.join("summary.txt")).expect("summary.txt exists");
    text.lines().filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Every record of the run's event log, checking that it reads to the end with no cut tail.
pub fn events(dir: &Path) -> Vec<Event> {
    let mut source = FileSource::open(&dir.join("events.bin")).expect("events.bin opens");
    let mut out = Vec::new();
    while source.read_batch(&mut out).expect("events.bin decodes") {}
    assert_eq!(source.truncated_tail(), 0, "events.bin has a cut tail");
    out
}

pub fn trace(dir: &Path, tid: u32) -> String {
    std::fs::read_to_string(dir.join(format!("trace.{tid}.txt"))).unwrap_or_else(|_| panic!("trace.{tid}.txt exists"))
}

/// A pids cgroup of `max` tasks (v1 where mounted, else v2), removed on drop.
pub struct PidsCgroup(pub PathBuf);

impl PidsCgroup {
    pub fn new(name: &str, max: u32) -> Self {
        let v1 = Path::new("/sys/fs/cgroup/pids");
        let root = if v1.join("cgroup.procs").exists() { v1.to_path_buf() } else { PathBuf::from("/sys/fs/cgroup") };
        if root == Path::new("/sys/fs/cgroup") {
            // cgroup v2: the pids controller must be enabled for children of the root.
            let _ = std::fs::write(root.join("cgroup.subtree_control"), "+pids");
        }
        let dir = root.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::create_dir(&dir);
        std::fs::write(dir.join("pids.max"), max.to_string()).expect("pids.max is writable");
        PidsCgroup(dir)
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Whether a tool the test needs is missing: skips with the reason, or fails under
/// OBSERVER_REQUIRE_BPF=1 (CI, where `cargo xtask setup` installs everything).
pub fn missing_tool(test: &str, reason: &str) {
    if std::env::var("OBSERVER_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("{test}: OBSERVER_REQUIRE_BPF=1 but {reason}");
    }
    eprintln!("skipped {test}: {reason}");
}

/// Headless Chromium (Debian's package), when installed.
pub fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = which::which("chromium").ok();
    if found.is_none() {
        missing_tool(test, "chromium is not installed (`cargo xtask setup` installs it)");
    }
    found
}

/// What headless Chromium made of a page: the DOM after its scripts ran, the console messages it
/// logged, and a screenshot.
pub struct RenderedPage {
    pub dom: String,
    pub console: Vec<String>,
    pub screenshot: PathBuf,
}

/// Opens `page` from a `file://` URL in headless Chromium (a fresh profile, no network), dumps
/// its DOM and takes a screenshot into `screenshot`.
pub fn render_page(chromium: &Path, page: &Path, screenshot: &Path) -> RenderedPage {
    let profile = screenshot.with_extension("profile");
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let run = |what: &[&str]| {
        let _ = std::fs::remove_dir_all(&profile);
        let out = Command::new("timeout")
            .arg("180")
            .arg(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--enable-logging=stderr",
                "--v=0",
                "--window-size=1400,1200",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(what)
            .arg(&url)
            .output()
            .expect("chromium starts");
        assert!(out.status.success(), "chromium {what:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let dumped = run(&["--dump-dom"]);
    let shot = run(&[&format!("--screenshot={}", screenshot.display())]);
    let _ = std::fs::remove_dir_all(&profile);
    let console = [&dumped.stderr, &shot.stderr]
        .iter()
        .flat_map(|e| String::from_utf8_lossy(e).lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.contains(":CONSOLE"))
        .collect();
    assert!(screenshot.exists(), "no screenshot at {}", screenshot.display());
    RenderedPage { dom: String::from_utf8_lossy(&dumped.stdout).into_owned(), console, screenshot: screenshot.into() }
}

/// Where a test keeps what a person may want to look at afterwards (never committed).
pub fn artifact(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Every thread a capture traced: the tasks its records come from and the threads they created
/// (a signal's sender may be outside the capture).
pub fn traced_threads(dir: &Path) -> std::collections::BTreeSet<u32> {
    events(dir)
        .iter()
        .flat_map(|e| match e {
            Event::SignalGenerate(g) => vec![g.target_tid],
            Event::Fork(f) => vec![f.header.tid, f.child_tid],
            other => vec![other.header().tid],
        })
        .collect()
}
