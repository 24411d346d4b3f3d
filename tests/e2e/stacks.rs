//! Stacks a person can read, end to end on real runtimes: JIT code named from node's perf map (or
//! labelled JIT code with the way to name it), the runtime recognised and its frames in its own
//! words (Go, OCaml `Module.fn`, CPython, the JVM), blocked threads unwound without scanner
//! leftovers, spinning threads' call chains with the flame graph `analyze` redraws, and the
//! runtimes' own dumps with `--runtime-dumps` (py-spy for CPython, jcmd for a JVM that lives on).
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use observer::analysis::{
    runtime::Runtime,
    snapshot::{ProcessSnapshot, StuckSnapshot, ThreadSnapshot},
    Finding,
};

use crate::{
    harness::*,
    runtimes::{classification, finding, path_str, printed_tid},
};

/// Hangs: found after 2 s without progress; the timeout only bounds a run where they are not.
const HANG: &[&str] = &["--hang-after", "2", "--timeout", "20"];
/// The same, with the runtime's own dump taken when the hang is declared.
const HANG_DUMPS: &[&str] = &["--hang-after", "2", "--timeout", "20", "--runtime-dumps"];

fn stuck(dir: &Path) -> StuckSnapshot {
    StuckSnapshot::read(dir).expect("stuck.json exists and parses")
}

fn root(snap: &StuckSnapshot) -> &ProcessSnapshot {
    snap.processes.first().expect("the snapshot has the command's process")
}

fn thread(snap: &StuckSnapshot, tid: u32) -> &ThreadSnapshot {
    snap.threads().find(|(_, t)| t.tid == tid).map(|(_, t)| t).unwrap_or_else(|| panic!("no thread {tid}"))
}

fn texts(f: &Finding) -> String {
    f.evidence.iter().map(|e| e.text.as_str()).collect::<Vec<_>>().join("\n")
}

/// Removes the perf map a `node --perf-basic-prof` left in /tmp.
struct PerfMap(u32);

impl Drop for PerfMap {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/tmp/perf-{}.map", self.0));
    }
}

/// py-spy on PATH, or `None` after saying why the check that needs it is skipped (a failure
/// under OBSERVER_REQUIRE_BPF=1, where `cargo xtask setup` must have installed it).
fn py_spy_or_skip(test: &str) -> Option<()> {
    if which::which("py-spy").is_ok() {
        return Some(());
    }
    let reason = "py-spy is not installed (`cargo xtask setup` installs it from PyPI)";
    if std::env::var("OBSERVER_REQUIRE_BPF").as_deref() == Ok("1") {
        panic!("{test}: OBSERVER_REQUIRE_BPF=1 but {reason}");
    }
    eprintln!("skipped the runtime-dump part of {test}: {reason}");
    None
}

#[test]
fn node_spinning_in_js_is_named_from_its_perf_map_and_drawn_as_a_flame_graph() {
    let Some(_cpu) = bpf_alone_or_skip("node spin perf map") else {
        return;
    };
    let Some((node, script)) = script_workload("node spin perf map", "node", "node/spin_forever.js") else {
        return;
    };
    let dir = scratch("stacks-node-perf-map");
    // V8 also writes a log beside the perf map: into the scratch directory, not the cwd.
    let log = format!("--logfile={}/v8.log", dir.display());
    observe(&dir, HANG, &[path_str(&node), "--perf-basic-prof", "--no-logfile-per-isolate", &log, path_str(&script)]);
    let main = printed_tid(&dir, "main");
    let _map = PerfMap(main);
    let c = classification(&dir);
    let f = finding(&c, "hang-spinning");
    assert_eq!(f.tid, main);
    assert!(f.summary.contains("Node.js (V8)"), "{}", f.summary);
    assert!(f.summary.contains("in JS:") && f.summary.contains("spinForeverInJs"), "{}", f.summary);
    assert!(f.summary.contains("runs JavaScript spinForeverInJs"), "{}", f.summary);
    let evidence = texts(f);
    assert!(evidence.contains(&format!("JIT code named from /tmp/perf-{main}.map")), "{evidence}");
    assert!(evidence.contains("% of samples (") && evidence.contains("-> JS:"), "a call chain: {evidence}");
    assert!(!evidence.contains("unmapped"), "{evidence}");
    let snap = stuck(&dir);
    assert_eq!(root(&snap).runtime, Runtime::Node);
    let hottest = &thread(&snap, main).stacks[0];
    assert!(hottest.frames[0].contains("spinForeverInJs") && hottest.frames.len() > 3, "{hottest:?}");

    // The flame graph, and `analyze` drawing it again from the saved snapshot.
    let folded = std::fs::read_to_string(dir.join("profile.folded")).expect("profile.folded");
    assert!(folded.lines().all(|l| l.rsplit_once(' ').is_some_and(|(_, n)| n.parse::<u32>().is_ok())), "{folded}");
    assert!(
        folded.contains(&format!("pid {main} (node);thread {main} (node);")) && folded.contains("spinForeverInJs"),
        "{folded}"
    );
    let svg = std::fs::read_to_string(dir.join("flamegraph.svg")).expect("flamegraph.svg");
    assert!(svg.contains("<svg") && svg.contains("spinForeverInJs"), "the frame is drawn");
    std::fs::remove_file(dir.join("profile.folded")).unwrap();
    std::fs::remove_file(dir.join("flamegraph.svg")).unwrap();
    let out = Command::new(observer_bin()).arg("analyze").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("profile.folded")).unwrap(), folded);
    assert!(std::fs::read_to_string(dir.join("flamegraph.svg")).unwrap().contains("spinForeverInJs"));
}

#[test]
fn node_spinning_without_a_perf_map_is_jit_code_with_the_way_to_name_it() {
    let Some(_cpu) = bpf_alone_or_skip("node spin no map") else {
        return;
    };
    let Some((node, script)) = script_workload("node spin no map", "node", "node/spin_forever.js") else {
        return;
    };
    let dir = scratch("stacks-node-no-map");
    observe(&dir, HANG, &[path_str(&node), path_str(&script)]);
    let main = printed_tid(&dir, "main");
    let c = classification(&dir);
    let f = finding(&c, "hang-spinning");
    assert_eq!(f.tid, main);
    let evidence = texts(f);
    assert!(f.summary.contains("in [JIT code]"), "{}", f.summary);
    assert!(!f.summary.contains("unmapped") && !evidence.contains("unmapped"), "{}\n{evidence}", f.summary);
    assert!(evidence.contains("--perf-basic-prof"), "how to name it: {evidence}");
}

#[test]
fn go_spinning_goroutine_is_named_with_its_call_chain() {
    let Some(_cpu) = bpf_alone_or_skip("go spin") else {
        return;
    };
    let Some(bin) = go_workload("go spin", "spin_forever") else {
        return;
    };
    let dir = scratch("stacks-go-spin");
    observe(&dir, HANG, &[path_str(&bin)]);
    let c = classification(&dir);
    let f = finding(&c, "hang-spinning");
    assert!(f.summary.contains(", Go)") && f.summary.contains("main.spinForeverInGo"), "{}", f.summary);
    let snap = stuck(&dir);
    assert_eq!(root(&snap).runtime, Runtime::Go);
    assert!(root(&snap).runtime_version.starts_with("go1."), "{:?}", root(&snap).runtime_version);
    let (_, spinner) = snap.threads().find(|(_, t)| !t.stacks.is_empty()).expect("a sampled thread");
    let hottest = &spinner.stacks[0].frames;
    assert_eq!(hottest[0], "main.spinForeverInGo", "{hottest:?}");
    // The kernel follows frame pointers: a frameless leaf's own caller is skipped (documented),
    // the goroutine's start is not.
    assert!(hottest.len() >= 2 && hottest.last().is_some_and(|f| f == "runtime.goexit"), "{hottest:?}");
}

#[test]
fn go_mutex_deadlock_threads_show_scheduler_chains_without_scanner_leftovers() {
    let Some(_cpu) = bpf_or_skip("go mutex stacks") else {
        return;
    };
    let Some(bin) = go_workload("go mutex stacks", "mutex_ticker") else {
        return;
    };
    let dir = scratch("stacks-go-mutex");
    observe(&dir, HANG, &[path_str(&bin)]);
    let snap = stuck(&dir);
    let p = root(&snap);
    assert_eq!(p.runtime, Runtime::Go);
    let blocked: Vec<&ThreadSnapshot> = p.threads.iter().filter(|t| t.syscall.is_some()).collect();
    assert!(!blocked.is_empty());
    for t in &blocked {
        assert!(!t.user_frames.is_empty(), "thread {} has a stack", t.tid);
        for frame in &t.user_frames {
            assert!(!frame.starts_with("? "), "unwound, not scanned: thread {} {:#?}", t.tid, t.user_frames);
            assert!(!frame.contains("adjustframe"), "no stale frames: thread {} {:#?}", t.tid, t.user_frames);
        }
        assert!(t.user_frames[0].starts_with("runtime."), "{:#?}", t.user_frames);
    }
    assert!(
        blocked.iter().any(|t| t.activity.contains("parked by the Go scheduler")),
        "the scheduler's idle threads say so: {blocked:#?}"
    );
    assert!(p.runtime_dump.is_empty(), "no dump asked for");
}

#[test]
fn ocaml_mutex_cycle_reads_as_module_dot_function_and_mutex_lock() {
    let Some(_cpu) = bpf_or_skip("ocaml abba") else {
        return;
    };
    let Some(bin) = ocaml_workload("ocaml abba", "ocaml_abba") else {
        return;
    };
    let dir = scratch("stacks-ocaml-abba");
    observe(&dir, HANG_DUMPS, &[path_str(&bin)]);
    let tids = [printed_tid(&dir, "a_then_b"), printed_tid(&dir, "b_then_a")];
    let c = classification(&dir);
    let f = finding(&c, "deadlock");
    assert!(f.summary.contains("Ocaml_abba.transfer"), "the OCaml function named in: {}", f.summary);
    assert!(texts(f).contains("runs OCaml"), "{}", texts(f));
    let snap = stuck(&dir);
    assert_eq!(root(&snap).runtime, Runtime::Ocaml);
    assert!(root(&snap).runtime_dump.contains("no stack dump"), "{:?}", root(&snap).runtime_dump);
    for tid in tids {
        let t = thread(&snap, tid);
        assert_eq!(t.activity, "Mutex.lock", "{t:#?}");
        assert!(t.user_frames.iter().any(|f| f.starts_with("Ocaml_abba.transfer (")), "{:#?}", t.user_frames);
        assert!(t.user_frames.iter().all(|f| !f.starts_with("camlOcaml_abba") && !f.starts_with("? ")), "{t:#?}");
    }
}

#[test]
fn cpython_spinning_is_named_as_the_interpreter_with_python_functions_from_py_spy() {
    let Some(_cpu) = bpf_alone_or_skip("python spin") else {
        return;
    };
    let Some((python, script)) = script_workload("python spin", "python3", "python/spin_forever.py") else {
        return;
    };
    let dir = scratch("stacks-python-spin");
    observe(&dir, HANG_DUMPS, &[path_str(&python), path_str(&script)]);
    let main = printed_tid(&dir, "main");
    let c = classification(&dir);
    let f = finding(&c, "hang-spinning");
    assert_eq!(f.tid, main);
    assert!(f.summary.contains(", CPython)"), "{}", f.summary);
    assert!(f.summary.contains("runs Python bytecode"), "{}", f.summary);
    if py_spy_or_skip("python spin").is_some() {
        let pid = root(&stuck(&dir)).pid;
        let dump = std::fs::read_to_string(dir.join(format!("runtime-{pid}.txt"))).expect("runtime dump");
        assert!(dump.contains("spin_forever_in_python"), "{dump}");
        assert!(texts(f).contains(&format!("runtime dump: runtime-{pid}.txt")), "{}", texts(f));
    }
}

#[test]
fn cpython_lock_cycle_names_python_locks_and_py_spy_names_the_functions() {
    let Some(_cpu) = bpf_or_skip("python lock cycle") else {
        return;
    };
    let Some((python, script)) = script_workload("python lock cycle", "python3", "python/lock_cycle.py") else {
        return;
    };
    let dir = scratch("stacks-python-locks");
    observe(&dir, HANG_DUMPS, &[path_str(&python), path_str(&script)]);
    let tids = [printed_tid(&dir, "a_then_b"), printed_tid(&dir, "b_then_a")];
    let snap = stuck(&dir);
    let p = root(&snap);
    assert_eq!(p.runtime, Runtime::Cpython);
    for tid in tids {
        let t = thread(&snap, tid);
        assert!(t.activity.starts_with("waits on a Python lock"), "{t:#?}");
        assert!(t.user_frames.iter().any(|f| f.starts_with("PyThread_acquire_lock_timed (")), "{t:#?}");
    }
    let c = classification(&dir);
    let verdict = c.findings.first().expect("a finding");
    assert!(texts(verdict).contains("runs CPython"), "{verdict:#?}");
    if py_spy_or_skip("python lock cycle").is_some() {
        assert!(texts(verdict).contains(&format!("runtime dump: runtime-{}.txt", p.pid)), "{verdict:#?}");
        let dump = std::fs::read_to_string(dir.join(format!("runtime-{}.txt", p.pid))).expect("runtime dump");
        assert!(dump.contains("transfer (lock_cycle.py:"), "{dump}");
    }
}

/// Kills and reaps the JVM however the test ends.
struct Jvm(std::process::Child);

impl Drop for Jvm {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn jvm_deadlock_thread_dump_lists_the_java_frames_and_the_jvm_lives_on() {
    let Some(_cpu) = bpf_or_skip("jvm deadlock dump") else {
        return;
    };
    let Some((java, classes)) = java_workloads("jvm deadlock dump") else {
        return;
    };
    let mut jvm = Jvm(Command::new(&java)
        .arg("-cp")
        .arg(&classes)
        .arg("JavaDeadlock")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start java"));
    let pid = jvm.0.id();
    let mut line = String::new();
    let mut out = BufReader::new(jvm.0.stdout.take().unwrap());
    while line.trim() != "hung" {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the JVM ended before its deadlock");
    }
    let dir = scratch("stacks-jvm-deadlock");
    let mut observer = Command::new(observer_bin())
        .args(["attach", "--quiet", "--pid", &pid.to_string(), "--out"])
        .arg(&dir)
        .args(["--hang-after", "2", "--on-hang", "keep", "--timeout", "60", "--runtime-dumps"])
        .spawn()
        .expect("observer starts");
    let dump_path = dir.join(format!("runtime-{pid}.txt"));
    let deadline = Instant::now() + Duration::from_secs(50);
    while !dir.join("stuck.json").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Detach: the JVM must be left running, as the dump found it.
    // SAFETY: plain syscall to the observer we started.
    unsafe { libc::kill(observer.id() as i32, libc::SIGINT) };
    let status = observer.wait().unwrap();
    assert!(status.success(), "observer detached cleanly: {status}");
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state.rsplit_once(") ").map(|(_, rest)| rest.chars().next().unwrap_or('?')).unwrap_or('?');
    assert!(matches!(state, 'S' | 'R'), "the JVM lives on after its thread dump (state {state})");

    let dump = std::fs::read_to_string(&dump_path).expect("runtime-PID.txt written");
    assert!(dump.contains("Found one Java-level deadlock"), "{dump}");
    assert!(dump.contains("at JavaDeadlock.transfer(JavaDeadlock.java:"), "the Java frames: {dump}");
    let snap = stuck(&dir);
    let p = snap.process(pid).expect("the JVM in the snapshot");
    assert_eq!(p.runtime, Runtime::Jvm);
    assert!(p.runtime_dump.starts_with(&format!("runtime-{pid}.txt (jcmd {pid} Thread.print)")), "{p:#?}");
    let waiting = p.threads.iter().filter(|t| t.activity == "waits to enter a Java monitor (synchronized)").count();
    assert_eq!(waiting, 2, "both transfer threads wait on a monitor: {:#?}", p.threads);
}
