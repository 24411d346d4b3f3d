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

/// The directory of `tests/workloads/`.
pub fn workloads_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/workloads")
}

/// `program` found on PATH (or at an absolute path), or `None` after printing why `test` skips;
/// under OBSERVER_REQUIRE_BPF=1 a missing runtime fails the test instead (CI installs them with
/// `cargo xtask setup`).
pub fn runtime_or_skip(test: &str, program: &str) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = if program.starts_with('/') {
        vec![PathBuf::from(program)]
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).map(|d| d.join(program)).collect()
    };
    if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
        return Some(found);
    }
    let reason = format!("{program} is not installed (`cargo xtask setup` installs the runtimes)");
    if std::env::var("OBSERVER_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("{test}: OBSERVER_REQUIRE_BPF=1 but {reason}");
    }
    eprintln!("skipped {test}: {reason}");
    None
}

/// Builds `out` once per test binary run, one build at a time (compilers put temporary files
/// beside their output, named after it): `build(tmp)` writes to a temporary name, renamed into
/// place when the build succeeded.
fn build_once(out: PathBuf, what: &str, build: impl FnOnce(&Path) -> Command) -> PathBuf {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if !out.exists() {
        let tmp = out.with_extension("building");
        let _ = std::fs::remove_dir_all(&tmp);
        let mut cmd = build(&tmp);
        let output = cmd.output().unwrap_or_else(|e| panic!("building {what}: {cmd:?}: {e}"));
        assert!(
            output.status.success(),
            "building {what}: {cmd:?}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

fn built(kind: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("workload-{kind}-{name}-{}", std::process::id()))
}

/// `tests/workloads/go/<name>.go` built with `go build`.
pub fn go_workload(test: &str, name: &str) -> Option<PathBuf> {
    let go = runtime_or_skip(test, "go")?;
    let src = workloads_dir().join("go").join(format!("{name}.go"));
    Some(build_once(built("go", name), &src.display().to_string(), |tmp| {
        let mut c = Command::new(go);
        c.args(["build", "-o"]).arg(tmp).arg(&src).env("GOFLAGS", "-buildvcs=false");
        c
    }))
}

/// `tests/workloads/ocaml/<name>.ml` built with `ocamlopt` and the threads library (the source is
/// copied into a build directory of this thread's own: ocamlopt writes its objects beside the
/// source, and the file name is the module name that symbols carry).
pub fn ocaml_workload(test: &str, name: &str) -> Option<PathBuf> {
    let ocamlopt = runtime_or_skip(test, "ocamlopt")?;
    let src = workloads_dir().join("ocaml").join(format!("{name}.ml"));
    let build_dir =
        built("ocaml-build", name).with_extension(format!("{:?}", std::thread::current().id()).replace(['(', ')'], ""));
    std::fs::create_dir_all(&build_dir).unwrap();
    let copy = build_dir.join(format!("{name}.ml"));
    std::fs::copy(&src, &copy).unwrap();
    Some(build_once(built("ocaml", name), &src.display().to_string(), |tmp| {
        let mut c = Command::new(ocamlopt);
        c.args(["-I", "+threads", "unix.cmxa", "threads.cmxa"]).arg(&copy).arg("-o").arg(tmp).current_dir(&build_dir);
        c
    }))
}

/// `tests/workloads/rust/<name>.rs` built with `rustc -O`.
pub fn rust_workload(test: &str, name: &str) -> Option<PathBuf> {
    let rustc = runtime_or_skip(test, "rustc")?;
    let src = workloads_dir().join("rust").join(format!("{name}.rs"));
    Some(build_once(built("rust", name), &src.display().to_string(), |tmp| {
        let mut c = Command::new(rustc);
        c.args(["-O", "--edition", "2021", "-o"]).arg(tmp).arg(&src);
        c
    }))
}

/// The classes of `tests/workloads/java/*.java`, compiled with `javac` into one directory (the
/// class path), and the `java` launcher.
pub fn java_workloads(test: &str) -> Option<(PathBuf, PathBuf)> {
    let javac = runtime_or_skip(test, "javac")?;
    let java = runtime_or_skip(test, "java")?;
    let dir = workloads_dir().join("java");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "java"))
        .collect();
    sources.sort();
    let classes = build_once(built("java", "classes"), &dir.display().to_string(), |tmp| {
        let mut c = Command::new(javac);
        c.arg("-d").arg(tmp).args(&sources);
        c
    });
    Some((java, classes))
}

/// A script under `tests/workloads/` and the interpreter that runs it (`python3` prefers the
/// distribution's /usr/bin/python3 over a PATH shim: shims are shell scripts that add a process).
pub fn script_workload(test: &str, interpreter: &str, path: &str) -> Option<(PathBuf, PathBuf)> {
    let distro = Path::new("/usr/bin").join(interpreter);
    let program = if distro.is_file() { distro } else { runtime_or_skip(test, interpreter)? };
    Some((program, workloads_dir().join(path)))
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

/// A Python with the `perfetto` and `protobuf` packages (a virtualenv under the test target
/// directory, made once), or `None` after printing why not (no venv module, no package index);
/// under OBSERVER_REQUIRE_BPF=1 their absence fails the test instead.
pub fn perfetto_python_or_skip(test: &str) -> Option<PathBuf> {
    static READY: std::sync::Mutex<Option<Result<PathBuf, String>>> = std::sync::Mutex::new(None);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    let result = ready.get_or_insert_with(|| {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("perfetto-venv");
        let python = venv.join("bin/python");
        let works = |python: &Path| {
            Command::new(python)
                .args(["-c", "from perfetto.protos.perfetto.trace import perfetto_trace_pb2"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if works(&python) {
            return Ok(python);
        }
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).output();
        if !made.as_ref().is_ok_and(|o| o.status.success()) {
            return Err(format!("python3 -m venv failed: {made:?}"));
        }
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "perfetto", "protobuf"])
            .output()
            .map_err(|e| format!("pip: {e}"))?;
        if !pip.status.success() || !works(&python) {
            return Err(format!(
                "pip could not install perfetto and protobuf (is the package index reachable?): {}",
                String::from_utf8_lossy(&pip.stderr).lines().last().unwrap_or("")
            ));
        }
        Ok(python)
    });
    match result {
        Ok(python) => Some(python.clone()),
        Err(reason) => {
            let reason = reason.clone();
            drop(ready);
            if std::env::var("OBSERVER_REQUIRE_BPF").as_deref() == Ok("1") {
                panic!("{test}: OBSERVER_REQUIRE_BPF=1 but {reason}");
            }
            eprintln!("skipped {test}: {reason}");
            None
        }
    }
}
