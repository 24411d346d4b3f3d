//! Verdicts on real runtimes: small programs in C, Rust, Go, OCaml, CPython, Node, Java (and
//! Chromium) from `tests/workloads/`, each run under `observer run` with the verdict it must get.
//! Healthy programs must come out quiet (informational findings at most), hangs must be found
//! although runtime threads keep ticking, and thread-creation failures must name the limit that
//! was hit (the pids cgroup of the failing task, RLIMIT_DATA).
//!
//! A missing runtime skips its tests with a reason, unless OBSERVER_REQUIRE_BPF=1 (CI, where
//! `cargo xtask setup` installs them): then they fail.
use std::path::{Path, PathBuf};

use observer::analysis::{Classification, Finding, Severity};

use crate::harness::*;

/// Hangs: found after 2 s without progress; the timeout only bounds a run where they are not.
const HANG: &[&str] = &["--hang-after", "2", "--timeout", "15"];
/// Programs that end by themselves; the timeout only bounds a broken run.
const ENDS: &[&str] = &["--timeout", "30"];

pub(crate) fn classification(dir: &Path) -> Classification {
    let text = std::fs::read_to_string(dir.join("classification.json")).expect("classification.json exists");
    serde_json::from_str(&text).expect("classification.json parses")
}

fn verdict_line(dir: &Path) -> String {
    let report = std::fs::read_to_string(dir.join("report.txt")).expect("report.txt exists");
    report.lines().next().unwrap_or_default().to_string()
}

pub(crate) fn printed(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stdout.txt")).unwrap_or_default()
}

/// The thread id a workload printed as `<label> tid=<N>`.
pub(crate) fn printed_tid(dir: &Path, label: &str) -> u32 {
    let out = printed(dir);
    out.lines()
        .find_map(|l| l.strip_prefix(label)?.trim_start().strip_prefix("tid=")?.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no `{label} tid=` line in stdout.txt:\n{out}"))
}

/// `thread <tid>` appears in `text` as a whole number.
fn names_thread(text: &str, tid: u32) -> bool {
    let needle = format!("thread {tid}");
    text.match_indices(&needle).any(|(i, _)| !text[i + needle.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

fn evidence_has(f: &Finding, needle: &str) -> bool {
    f.evidence.iter().any(|e| e.text.contains(needle))
}

fn first(c: &Classification) -> &Finding {
    c.findings.first().unwrap_or_else(|| panic!("no finding at all: {c:#?}"))
}

pub(crate) fn finding<'a>(c: &'a Classification, signature: &str) -> &'a Finding {
    c.findings.iter().find(|f| f.signature.name() == signature).unwrap_or_else(|| panic!("no {signature} in {c:#?}"))
}

/// A healthy run: it ended as `exit` says, nothing above an informational finding, and the verdict
/// says no failure.
fn assert_quiet(dir: &Path, exit: &str) {
    let s = summary(dir);
    assert_eq!(s["exit"], exit, "stderr.txt:\n{}", std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default());
    let c = classification(dir);
    let loud: Vec<&Finding> = c.findings.iter().filter(|f| f.severity > Severity::Info).collect();
    assert!(loud.is_empty(), "a healthy run must have informational findings only: {loud:#?}");
    let verdict = verdict_line(dir);
    assert!(verdict.starts_with("verdict: no failure found"), "{verdict}");
}

/// A hang stopped by `--hang-after 2` whose verdict is one wait cycle (`deadlock` or
/// `hang-blocked`) naming every thread of the cycle; returns that finding.
fn assert_hang_naming(dir: &Path, tids: &[u32]) -> Finding {
    assert!(printed(dir).lines().any(|l| l == "hung"), "the workload reached its hang: {}", printed(dir));
    let s = summary(dir);
    assert_eq!(s["stopped_by"], "no progress for 2s", "--hang-after fired; verdict: {}", verdict_line(dir));
    assert!(dir.join("stuck.txt").exists());
    let c = classification(dir);
    let f = first(&c);
    assert!(["deadlock", "hang-blocked"].contains(&f.signature.name()), "the verdict is the hang: {c:#?}");
    for &tid in tids {
        assert!(names_thread(&f.summary, tid), "thread {tid} named in: {}", f.summary);
    }
    f.clone()
}

/// The processes still in a cgroup we made (a browser's helpers can outlive the run): killed by
/// pid so the cgroup can be removed.
fn kill_members(cgroup: &Path) {
    for _ in 0..20 {
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = procs.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill has no memory preconditions; these are processes this test started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

pub(crate) fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A JVM for the thread-creation tests: interpreter only (without JIT compiler threads, whose
/// arena mallocs otherwise hit RLIMIT_DATA first in about half the runs and abort the VM with
/// "insufficient memory"), and its crash files in the run's scratch directory, not the cwd.
fn java_cmd(java: &Path, classes: &Path, dir: &Path, main: &str) -> Vec<String> {
    let error_file = format!("-XX:ErrorFile={}/hs_err_pid%p.log", dir.display());
    let mut cmd: Vec<String> = [path_str(java), "-Xint", "-XX:+UseSerialGC", "-Xmx64m"].map(String::from).to_vec();
    cmd.extend([error_file, "-cp".into(), path_str(classes).into(), main.into()]);
    cmd
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------------------------
// Healthy programs: quiet.

#[test]
fn c_threads_run_quietly() {
    let Some(_cpu) = bpf_or_skip("c healthy") else {
        return;
    };
    let dir = scratch("rt-c-healthy");
    observe(&dir, ENDS, &[path_str(&workload("threads")), "8"]);
    assert_quiet(&dir, "code 0");
}

#[test]
fn c_exit_3_from_a_multithreaded_program_is_its_exit_code_not_a_sigkill() {
    let Some(_cpu) = bpf_or_skip("c mt exit") else {
        return;
    };
    let dir = scratch("rt-c-mt-exit");
    observe(&dir, ENDS, &[path_str(&workload("mt_exit")), "3"]);
    assert_quiet(&dir, "code 3");
    let report = std::fs::read_to_string(dir.join("report.txt")).unwrap();
    assert!(!report.contains("ended by signal"), "{report}");
}

#[test]
fn rust_threads_run_quietly() {
    let Some(_cpu) = bpf_or_skip("rust healthy") else {
        return;
    };
    let Some(bin) = rust_workload("rust healthy", "healthy") else {
        return;
    };
    let dir = scratch("rt-rust-healthy");
    observe(&dir, ENDS, &[path_str(&bin)]);
    assert_quiet(&dir, "code 0");
}

#[test]
fn go_goroutines_and_a_ticker_run_quietly() {
    let Some(_cpu) = bpf_or_skip("go healthy") else {
        return;
    };
    let Some(bin) = go_workload("go healthy", "healthy") else {
        return;
    };
    let dir = scratch("rt-go-healthy");
    observe(&dir, ENDS, &[path_str(&bin)]);
    assert_quiet(&dir, "code 0");
}

#[test]
fn ocaml_threads_run_quietly() {
    let Some(_cpu) = bpf_or_skip("ocaml healthy") else {
        return;
    };
    let Some(bin) = ocaml_workload("ocaml healthy", "healthy") else {
        return;
    };
    let dir = scratch("rt-ocaml-healthy");
    observe(&dir, ENDS, &[path_str(&bin)]);
    assert_quiet(&dir, "code 0");
}

#[test]
fn python_threading_runs_quietly() {
    let Some(_cpu) = bpf_or_skip("python healthy") else {
        return;
    };
    let Some((python, script)) = script_workload("python healthy", "python3", "python/healthy.py") else {
        return;
    };
    let dir = scratch("rt-python-healthy");
    observe(&dir, ENDS, &[path_str(&python), path_str(&script)]);
    assert_quiet(&dir, "code 0");
}

#[test]
fn node_timers_promises_and_workers_run_quietly() {
    let Some(_cpu) = bpf_or_skip("node healthy") else {
        return;
    };
    let Some((node, script)) = script_workload("node healthy", "node", "node/healthy.js") else {
        return;
    };
    let dir = scratch("rt-node-healthy");
    observe(&dir, ENDS, &[path_str(&node), path_str(&script)]);
    assert_quiet(&dir, "code 0");
}

#[test]
fn java_version_is_quiet_although_hotspot_takes_sigsegv() {
    let Some(_cpu) = bpf_or_skip("java -version") else {
        return;
    };
    let Some(java) = runtime_or_skip("java -version", "java") else {
        return;
    };
    let dir = scratch("rt-java-version");
    observe(&dir, ENDS, &[path_str(&java), "-version"]);
    assert_quiet(&dir, "code 0");
}

#[test]
fn java_threads_run_quietly() {
    let Some(_cpu) = bpf_or_skip("java healthy") else {
        return;
    };
    let Some((java, classes)) = java_workloads("java healthy") else {
        return;
    };
    let dir = scratch("rt-java-healthy");
    observe(&dir, ENDS, &[path_str(&java), "-cp", path_str(&classes), "Healthy"]);
    assert_quiet(&dir, "code 0");
    assert_eq!(printed(&dir), "counter 100000\n");
}

// ---------------------------------------------------------------------------------------------
// Hangs.

#[test]
fn c_mutex_held_across_a_pipe_read_is_one_hang_naming_both_threads() {
    let Some(_cpu) = bpf_or_skip("c mutex+pipe") else {
        return;
    };
    let dir = scratch("rt-c-mutex-pipe");
    observe(&dir, HANG, &[path_str(&workload("mutex_pipe"))]);
    let (handler, replier) = (printed_tid(&dir, "handler"), printed_tid(&dir, "replier"));
    let f = assert_hang_naming(&dir, &[handler, replier]);
    let mutex = printed(&dir).split_whitespace().find(|w| w.starts_with("0x")).unwrap().to_string();
    assert!(f.summary.contains(&mutex), "the mutex {mutex} named in: {}", f.summary);
    assert!(f.summary.contains("read"), "the handler's read named in: {}", f.summary);
}

#[test]
fn c_condvar_wait_holding_the_signallers_mutex_names_both_threads() {
    let Some(_cpu) = bpf_or_skip("c mutex+condvar") else {
        return;
    };
    let dir = scratch("rt-c-mutex-condvar");
    observe(&dir, HANG, &[path_str(&workload("mutex_condvar"))]);
    let (waiter, signaller) = (printed_tid(&dir, "waiter"), printed_tid(&dir, "signaller"));
    let f = assert_hang_naming(&dir, &[waiter, signaller]);
    let mutex = printed(&dir).split_whitespace().find(|w| w.starts_with("0x")).unwrap().to_string();
    assert!(f.summary.contains(&mutex), "the mutex {mutex} named in: {}", f.summary);
}

#[test]
fn c_relocking_a_held_mutex_is_a_deadlock_on_itself() {
    let Some(_cpu) = bpf_or_skip("c relock") else {
        return;
    };
    let dir = scratch("rt-c-relock");
    observe(&dir, HANG, &[path_str(&workload("mutex_relock"))]);
    let worker = printed_tid(&dir, "worker");
    let f = assert_hang_naming(&dir, &[worker]);
    assert_eq!(f.signature.name(), "deadlock", "{f:#?}");
    assert!(f.summary.starts_with("self-deadlock: "), "{}", f.summary);
    assert!(f.summary.contains(&format!("thread {worker} (")), "{}", f.summary);
    assert!(f.summary.contains("which it holds itself"), "{}", f.summary);
    assert!(f.summary.contains("bump_counter_locked"), "the relocking function named in: {}", f.summary);
}

#[test]
fn ocaml_mutex_held_across_a_pipe_read_hangs_although_the_tick_thread_ticks() {
    let Some(_cpu) = bpf_or_skip("ocaml mutex+pipe") else {
        return;
    };
    let Some(bin) = ocaml_workload("ocaml mutex+pipe", "mutex_pipe") else {
        return;
    };
    let dir = scratch("rt-ocaml-mutex-pipe");
    observe(&dir, HANG, &[path_str(&bin)]);
    let (handler, replier) = (printed_tid(&dir, "handler"), printed_tid(&dir, "replier"));
    let f = assert_hang_naming(&dir, &[handler, replier]);
    assert!(f.summary.contains("read"), "the handler's read named in: {}", f.summary);
}

#[test]
fn go_mutex_deadlock_hangs_although_a_ticker_ticks() {
    let Some(_cpu) = bpf_or_skip("go mutex+ticker") else {
        return;
    };
    let Some(bin) = go_workload("go mutex+ticker", "mutex_ticker") else {
        return;
    };
    let dir = scratch("rt-go-mutex-ticker");
    observe(&dir, HANG, &[path_str(&bin)]);
    // Goroutines are not threads: the kernel cannot name the two, only that the program is stuck.
    assert_hang_naming(&dir, &[]);
}

#[test]
fn python_two_threads_spinning_on_the_gil_are_both_spinning() {
    let Some(_cpu) = bpf_alone_or_skip("python gil spin") else {
        return;
    };
    let Some((python, script)) = script_workload("python gil spin", "python3", "python/gil_spin.py") else {
        return;
    };
    let dir = scratch("rt-python-gil-spin");
    observe(&dir, HANG, &[path_str(&python), path_str(&script)]);
    let spinners = [printed_tid(&dir, "spinner1"), printed_tid(&dir, "spinner2")];
    assert!(printed(&dir).lines().any(|l| l == "hung"), "{}", printed(&dir));
    assert_eq!(summary(&dir)["stopped_by"], "no progress for 2s", "verdict: {}", verdict_line(&dir));
    let c = classification(&dir);
    assert_eq!(first(&c).signature.name(), "hang-spinning", "the verdict is the spin: {c:#?}");
    for tid in spinners {
        assert!(
            c.findings
                .iter()
                .any(|f| f.signature.name() == "hang-spinning" && (f.tid == tid || names_thread(&f.summary, tid))),
            "spinner {tid} found spinning: {c:#?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Thread creation failures.

/// The verdict is `clone-eagain` with the pids cgroup's limit, and the exit it caused is explained.
fn assert_clone_eagain_in_pids_cgroup(dir: &Path, max: u32) {
    let c = classification(dir);
    let f = finding(&c, "clone-eagain");
    assert!(evidence_has(f, "= -1 EAGAIN"), "{f:#?}");
    assert!(f.summary.contains(&format!("allows {max} tasks")), "the pids cgroup named in: {}", f.summary);
    assert_eq!(first(&c).signature.name(), "clone-eagain", "the verdict is the failed clone: {c:#?}");
    assert!(!c.findings.iter().any(|f| f.signature.name() == "exit-nonzero"), "the exit is explained: {c:#?}");
}

/// The verdict is an ENOMEM finding that names RLIMIT_DATA (`mib` MiB), not the address space.
fn assert_enomem_naming_rlimit_data(dir: &Path, mib: u32) -> Finding {
    let c = classification(dir);
    let f = first(&c);
    assert!(
        f.signature.name().ends_with("-enomem") && f.severity >= Severity::Error,
        "the verdict is the ENOMEM: {c:#?}"
    );
    assert!(evidence_has(f, "= -1 ENOMEM"), "{f:#?}");
    assert!(f.summary.contains(&format!("RLIMIT_DATA is {mib} MiB")), "RLIMIT_DATA named in: {}", f.summary);
    assert!(!f.summary.contains("RLIMIT_AS"), "not blamed on the address space: {}", f.summary);
    assert!(!c.findings.iter().any(|f| f.signature.name() == "exit-nonzero"), "the exit is explained: {c:#?}");
    f.clone()
}

fn rust_spawn_loop(test: &str) -> Option<PathBuf> {
    rust_workload(test, "spawn_loop")
}

#[test]
fn rust_spawn_under_a_pids_cgroup_is_clone_eagain() {
    let Some(_cpu) = bpf_or_skip("rust pids") else {
        return;
    };
    let Some(bin) = rust_spawn_loop("rust pids") else {
        return;
    };
    let cgroup = PidsCgroup::new("observer-e2e-rust", 8);
    let dir = scratch("rt-rust-pids");
    // RUST_BACKTRACE unset: the panic must not symbolize (see the RLIMIT_DATA test).
    let out = observe(&dir, &["--cgroup", path_str(&cgroup.0)], &["env", "-u", "RUST_BACKTRACE", path_str(&bin)]);
    assert_eq!(out.status.code(), Some(101), "the spawn panicked");
    assert!(std::fs::read_to_string(dir.join("stderr.txt")).unwrap().contains("failed to spawn thread"));
    assert_clone_eagain_in_pids_cgroup(&dir, 8);
}

#[test]
fn rust_spawn_in_a_pids_cgroup_joined_by_a_wrapper_names_that_cgroup() {
    let Some(_cpu) = bpf_or_skip("rust pids wrapper") else {
        return;
    };
    let Some(bin) = rust_spawn_loop("rust pids wrapper") else {
        return;
    };
    let cgroup = PidsCgroup::new("observer-e2e-rust-late", 8);
    let dir = scratch("rt-rust-pids-late");
    // The cgroup is joined after observer started the command, as systemd-run or a container
    // runtime would: the start-time preflight cannot know it.
    let script =
        format!("echo $$ > {}/cgroup.procs && exec env -u RUST_BACKTRACE {}", cgroup.0.display(), bin.display());
    let out = observe(&dir, ENDS, &["sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(101), "the spawn panicked");
    assert_clone_eagain_in_pids_cgroup(&dir, 8);
}

#[test]
fn rust_spawn_under_rlimit_data_is_a_stack_enomem_naming_rlimit_data() {
    let Some(_cpu) = bpf_or_skip("rust rlimit data") else {
        return;
    };
    let Some(bin) = rust_spawn_loop("rust rlimit data") else {
        return;
    };
    let dir = scratch("rt-rust-data");
    // With RUST_BACKTRACE=1 the panic's symbolizer runs out of memory too and std's OOM hook waits
    // for the backtrace lock its own thread holds: a hang, not this test's subject.
    let out = observe(&dir, ENDS, &["env", "-u", "RUST_BACKTRACE", "prlimit", "--data=41943040", path_str(&bin)]);
    assert_eq!(out.status.code(), Some(101), "the spawn panicked");
    let f = assert_enomem_naming_rlimit_data(&dir, 40);
    assert_eq!(f.signature.name(), "pthread-stack-mprotect-enomem", "{f:#?}");
}

#[test]
fn java_threads_under_a_pids_cgroup_are_clone_eagain() {
    let Some(_cpu) = bpf_or_skip("java pids") else {
        return;
    };
    let Some((java, classes)) = java_workloads("java pids") else {
        return;
    };
    let cgroup = PidsCgroup::new("observer-e2e-java", 40);
    let dir = scratch("rt-java-pids");
    let cmd = java_cmd(&java, &classes, &dir, "ThreadsUntilFailure");
    let out = observe(&dir, &["--cgroup", path_str(&cgroup.0), "--timeout", "30"], &strs(&cmd));
    assert_eq!(out.status.code(), Some(1), "Thread.start failed: {}", printed(&dir));
    assert!(printed(&dir).contains("unable to create native thread"), "{}", printed(&dir));
    assert_clone_eagain_in_pids_cgroup(&dir, 40);
}

#[test]
fn java_threads_under_rlimit_data_name_rlimit_data_not_the_address_space() {
    let Some(_cpu) = bpf_or_skip("java rlimit data") else {
        return;
    };
    let Some((java, classes)) = java_workloads("java rlimit data") else {
        return;
    };
    let dir = scratch("rt-java-data");
    let mut cmd = vec!["prlimit".to_string(), format!("--data={}", 256 << 20)];
    cmd.extend(java_cmd(&java, &classes, &dir, "ThreadsUntilFailure"));
    let out = observe(&dir, ENDS, &strs(&cmd));
    assert_eq!(out.status.code(), Some(1), "Thread.start failed: {}", printed(&dir));
    let f = assert_enomem_naming_rlimit_data(&dir, 256);
    // The JVM maps its thread stacks read-write at once (guard size 0): the MAP_STACK mmap fails.
    assert!(evidence_has(&f, "MAP_STACK"), "{f:#?}");
}

#[test]
fn go_heap_under_rlimit_data_is_an_enomem_naming_rlimit_data() {
    let Some(_cpu) = bpf_or_skip("go rlimit data") else {
        return;
    };
    let Some(bin) = go_workload("go rlimit data", "heap") else {
        return;
    };
    let dir = scratch("rt-go-data");
    let out = observe(&dir, ENDS, &["prlimit", &format!("--data={}", 128 << 20), path_str(&bin), "256"]);
    assert_eq!(out.status.code(), Some(2), "the Go runtime died");
    assert!(std::fs::read_to_string(dir.join("stderr.txt")).unwrap().contains("out of memory"));
    assert_enomem_naming_rlimit_data(&dir, 128);
}

#[test]
fn chromium_in_a_pids_cgroup_joined_by_a_wrapper_is_clone_eagain_not_a_null_dereference() {
    let Some(_cpu) = bpf_or_skip("chromium pids") else {
        return;
    };
    let Some(chromium) = runtime_or_skip("chromium pids", "chromium") else {
        return;
    };
    let cgroup = PidsCgroup::new("observer-e2e-chromium", 80);
    let dir = scratch("rt-chromium-pids");
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec {} --headless --no-sandbox --disable-gpu --dump-dom about:blank",
        cgroup.0.display(),
        chromium.display()
    );
    observe(&dir, &["--hang-after", "2", "--timeout", "30"], &["sh", "-c", &script]);
    kill_members(&cgroup.0);
    let c = classification(&dir);
    let null: Vec<&Finding> = c.findings.iter().filter(|f| f.summary.contains("null")).collect();
    assert!(null.is_empty(), "the int3 CHECK traps after clone3 = EAGAIN are no null dereference: {null:#?}");
    assert_clone_eagain_in_pids_cgroup(&dir, 80);
}
