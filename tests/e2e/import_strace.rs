//! `import_strace`: real workloads captured with the installed strace (`-ff -tt -T`, `-f -tt -T -o`,
//! and `-ff` without times), imported into run directories, and diagnosed the same way as the same
//! workloads under `observer run`: same signatures, found in the same (creating, main) thread, with
//! the same evidence; and `observer analyze` reads the imported directory unchanged.
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use observer::{
    analysis::{Classification, Finding, Signature},
    event::Event,
    import_strace::{import, ImportError, ImportReport},
    out_dir::Access,
};
use observer_common::flags;

use crate::harness::*;

/// `tests/workloads/threads.c`, built once: `harness::workload` compiles through one temporary
/// name, so two first calls at the same time race; these tests at least take turns.
fn threads_workload() -> PathBuf {
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    workload("threads")
}

/// Whether strace is installed and can trace here.
fn strace_or_skip(test: &str) -> bool {
    let ok = Command::new("strace").args(["-o", "/dev/null", "true"]).status().is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("OBSERVER_REQUIRE_BPF").as_deref() == Ok("1") {
            panic!("{test}: strace is not installed or cannot trace");
        }
        eprintln!("skipped {test}: strace is not installed or cannot trace");
    }
    ok
}

/// `strace ARGS -- CMD...`, which must run; returns its exit code.
fn strace(args: &[&str], cmd: &[&str]) -> Option<i32> {
    let out = Command::new("strace").args(args).arg("--").args(cmd).output().expect("strace starts");
    eprintln!("strace stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out.status.code()
}

fn classification(dir: &Path) -> Classification {
    let text = std::fs::read_to_string(dir.join("classification.json")).expect("classification.json exists");
    serde_json::from_str(&text).expect("classification.json parses")
}

fn signatures(c: &Classification) -> BTreeSet<Signature> {
    c.findings.iter().map(|f| f.signature).collect()
}

fn finding(c: &Classification, signature: Signature) -> &Finding {
    c.findings.iter().find(|f| f.signature == signature).unwrap_or_else(|| panic!("no {signature} in {c:#?}"))
}

fn evidence_has(f: &Finding, needle: &str) -> bool {
    f.evidence.iter().any(|e| e.text.contains(needle))
}

fn root_pid(dir: &Path) -> u32 {
    summary(dir)["pid"].parse().unwrap()
}

fn imported(path: &Path, out: &Path) -> ImportReport {
    let report = import(path, Some(out), Access::OWNER).unwrap_or_else(|e| panic!("import of {}: {e}", path.display()));
    eprintln!("{}", std::fs::read_to_string(out.join("import.txt")).unwrap());
    report
}

/// What both captures must agree on: the signature set, and for `signature` the role of the thread
/// (the command's main thread, the one creating threads) and the evidence.
fn assert_same_diagnosis(live: &Path, import: &Path, signature: Signature, needles: &[&str]) {
    let (l, i) = (classification(live), classification(import));
    assert_eq!(signatures(&i), signatures(&l), "imported {i:#?}\nlive {l:#?}");
    for (dir, c) in [(live, &l), (import, &i)] {
        let f = finding(c, signature);
        assert_eq!(
            (f.pid, f.tid),
            (root_pid(dir), root_pid(dir)),
            "{}: found in the creating (main) thread",
            dir.display()
        );
        for needle in needles {
            assert!(evidence_has(f, needle), "{}: no {needle:?} in {f:#?}", dir.display());
        }
    }
}

/// Every record is marked imported; with `-tt` none has an unknown time.
fn assert_records_imported(dir: &Path, timed: bool) -> Vec<Event> {
    let events = events(dir);
    assert!(!events.is_empty());
    for e in &events {
        let f = e.header().flags;
        assert_ne!(f & flags::IMPORTED, 0, "{e:?}");
        if timed && e.kind_name() != "signal_generate" {
            assert_eq!(f & flags::UNKNOWN_TIME, 0, "{e:?}");
        }
    }
    events
}

#[test]
fn dash_ff_capture_of_a_data_limit_is_diagnosed_like_observer_run() {
    if !strace_or_skip("import -ff data limit") {
        return;
    }
    let Some(_cpu) = bpf_or_skip("import -ff data limit") else {
        return;
    };
    let threads = threads_workload();
    let cmd = ["prlimit", "--data=41943040", threads.to_str().unwrap(), "8"];
    let root = scratch("import-ff-data");
    let (capture, out, live) = (root.join("strace"), root.join("imported"), root.join("live"));
    std::fs::create_dir_all(&capture).unwrap();
    let prefix = capture.join("trace");
    assert_eq!(strace(&["-ff", "-tt", "-T", "-o", prefix.to_str().unwrap()], &cmd), Some(1), "pthread_create failed");
    let report = imported(&capture, &out);
    assert!(report.unparsed.is_empty(), "{:?}", report.unparsed);
    assert_eq!(report.parsed, report.lines);
    let s = summary(&out);
    assert_eq!(report.files.len().to_string(), s["threads_seen"], "one -ff file per thread");
    assert!(report.files.len() >= 2, "threads were created before the failure");
    assert_eq!(s["processes_seen"], "1");
    assert_eq!(s["exit"], "code 1");
    assert_eq!(s["source"], format!("imported from strace: {}", capture.display()));
    assert!(report.skipped_by_syscall.get("openat").is_some_and(|n| *n > 0), "{:?}", report.skipped_by_syscall);
    assert!(s["command"].starts_with("prlimit --data=41943040 "), "{}", s["command"]);
    assert_records_imported(&out, true);

    observe(&live, &[], &cmd);
    assert_same_diagnosis(&live, &out, Signature::PthreadStackMprotectEnomem, &["MAP_STACK", "= -1 ENOMEM"]);
    let f = finding(&report.classification, Signature::PthreadStackMprotectEnomem);
    assert!(f.summary.contains("RLIMIT_DATA is 40 MiB"), "the prlimit64 in the trace names the limit: {}", f.summary);

    // `observer analyze` works on the imported directory unchanged and finds the same.
    let before = std::fs::read(out.join("classification.json")).unwrap();
    let analyzed = Command::new(observer_bin()).arg("analyze").arg(&out).output().unwrap();
    assert!(analyzed.status.success(), "{}", String::from_utf8_lossy(&analyzed.stderr));
    assert_eq!(std::fs::read(out.join("classification.json")).unwrap(), before);
    let stdout = String::from_utf8_lossy(&analyzed.stdout);
    assert!(stdout.starts_with("verdict: error [pthread-stack-mprotect-enomem]"), "{stdout}");
    let trace = trace(&out, root_pid(&out));
    assert!(trace.contains("mprotect(") && trace.contains("= -1 ENOMEM (Cannot allocate memory) <0.0"), "{trace}");
}

#[test]
fn dash_f_capture_of_an_address_space_limit_is_diagnosed_like_observer_run() {
    if !strace_or_skip("import -f as limit") {
        return;
    }
    let Some(_cpu) = bpf_or_skip("import -f as limit") else {
        return;
    };
    let threads = threads_workload();
    let cmd = ["prlimit", "--as=62914560", threads.to_str().unwrap(), "8"];
    let root = scratch("import-f-as");
    let (file, out, live) = (root.join("strace.txt"), root.join("imported"), root.join("live"));
    assert_eq!(strace(&["-f", "-tt", "-T", "-o", file.to_str().unwrap()], &cmd), Some(1));
    let report = imported(&file, &out);
    assert!(report.unparsed.is_empty(), "{:?}", report.unparsed);
    assert_eq!(report.files, vec![file.clone()]);
    let s = summary(&out);
    assert_eq!(s["processes_seen"], "1", "threads of one process, told apart by their clone3 flags");
    assert!(s["threads_seen"].parse::<u32>().unwrap() >= 2);
    assert_records_imported(&out, true);

    observe(&live, &[], &cmd);
    assert_same_diagnosis(&live, &out, Signature::PthreadStackMmapEnomem, &["MAP_STACK, -1, 0) = -1 ENOMEM"]);
    let f = finding(&report.classification, Signature::PthreadStackMmapEnomem);
    assert!(f.summary.contains("RLIMIT_AS is 60 MiB"), "{}", f.summary);
}

/// A pids cgroup of `max` tasks (cgroup v1 `pids` hierarchy or v2), removed on drop.

#[test]
fn a_pids_cgroup_clone_failure_under_strace_gives_clone_eagain_like_observer_run() {
    if !strace_or_skip("import clone eagain") {
        return;
    }
    let Some(_cpu) = bpf_or_skip("import clone eagain") else {
        return;
    };
    let threads = threads_workload();
    let root = scratch("import-pids");
    let (file, out, live) = (root.join("strace.txt"), root.join("imported"), root.join("live"));
    // Two tasks: strace itself (the shell execs into it) and the traced command, so the command's
    // first pthread_create is refused, whatever the timing.
    let cgroup = PidsCgroup::new("observer-e2e-import", 2);
    let script = format!(
        "echo $$ > {}/cgroup.procs; exec strace -f -tt -T -o {} -- {} 16",
        cgroup.0.display(),
        file.display(),
        threads.display()
    );
    let status = Command::new("sh").args(["-c", &script]).status().unwrap();
    assert_eq!(status.code(), Some(1), "pthread_create failed under the cgroup");
    let report = imported(&file, &out);
    assert!(report.unparsed.is_empty(), "{:?}", report.unparsed);
    let f = finding(&report.classification, Signature::CloneEagain);
    assert!(f.summary.contains("no preflight snapshot"), "strace records no cgroup: {}", f.summary);

    // The same room for the command alone: observer puts only the command in the cgroup.
    let live_cgroup = PidsCgroup::new("observer-e2e-import-live", 1);
    let out_live = observe(&live, &["--cgroup", live_cgroup.0.to_str().unwrap()], &[threads.to_str().unwrap(), "16"]);
    assert_eq!(out_live.status.code(), Some(1));
    assert_same_diagnosis(&live, &out, Signature::CloneEagain, &["clone3(", "= -1 EAGAIN"]);
}

#[test]
fn an_untimed_dash_ff_capture_with_a_stray_line_still_imports_and_lists_it() {
    if !strace_or_skip("import untimed") {
        return;
    }
    let threads = threads_workload();
    let root = scratch("import-untimed");
    let (capture, out) = (root.join("strace"), root.join("imported"));
    std::fs::create_dir_all(&capture).unwrap();
    let prefix = capture.join("t");
    assert_eq!(
        strace(
            &["-ff", "-o", prefix.to_str().unwrap()],
            &["prlimit", "--data=41943040", threads.to_str().unwrap(), "8"]
        ),
        Some(1)
    );
    // The command's own file is the one with the lowest tid; append a line strace never writes.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&capture).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let main = files[0].clone();
    let mut text = std::fs::read_to_string(&main).unwrap();
    let stray_line = text.lines().count() + 1;
    text.push_str("this is not strace output\n");
    std::fs::write(&main, text).unwrap();

    let report = imported(&prefix, &out);
    assert_eq!(report.unparsed, vec![(main.clone(), stray_line, "this is not strace output".to_string())]);
    assert_eq!(report.parsed + 1, report.lines);
    let listing = std::fs::read_to_string(out.join("import.txt")).unwrap();
    assert!(listing.contains(&format!("{}:{stray_line}: this is not strace output", main.display())), "{listing}");
    assert!(listing.contains("unparsed: 1"), "{listing}");
    let s = summary(&out);
    assert_eq!((s["unparsed_lines"].as_str(), s["started_at"].as_str()), ("1", "unknown"));
    let events = events(&out);
    assert!(events.iter().all(|e| e.header().flags & flags::UNKNOWN_TIME != 0), "no times in the capture");
    assert!(events.iter().any(|e| matches!(e, Event::Syscall(s) if s.header.flags & flags::UNKNOWN_DURATION != 0)));
    let f = finding(&report.classification, Signature::PthreadStackMprotectEnomem);
    assert_eq!((f.pid, f.tid), (root_pid(&out), root_pid(&out)));
    assert!(evidence_has(f, "MAP_STACK") && evidence_has(f, "= -1 ENOMEM"), "{f:#?}");
}

#[test]
fn inputs_that_are_not_strace_output_are_refused_with_the_fix() {
    let root = scratch("import-refused");
    let missing = import(&root.join("nope"), Some(&root.join("out1")), Access::OWNER).unwrap_err();
    assert!(matches!(missing, ImportError::NotFound { .. }), "{missing}");
    assert!(missing.to_string().contains("strace -o FILE"), "{missing}");

    let junk = root.join("junk.txt");
    std::fs::write(&junk, "\nhello\nworld\n").unwrap();
    let err = import(&junk, Some(&root.join("out2")), Access::OWNER).unwrap_err();
    assert!(matches!(err, ImportError::NothingParsed { lines: 2, .. }), "{err}");
    assert!(err.to_string().contains(&format!("{}:2: hello", junk.display())), "{err}");
    assert!(!root.join("out2").exists(), "nothing is written for nothing read");

    let good = root.join("good.txt");
    std::fs::write(&good, "exit_group(0) = ?\n+++ exited with 0 +++\n").unwrap();
    let blocker = root.join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let err = import(&good, Some(&blocker.join("run")), Access::OWNER).unwrap_err();
    assert!(matches!(err, ImportError::RunDir { .. }), "{err}");
    assert!(err.to_string().contains("--out"), "{err}");
}
