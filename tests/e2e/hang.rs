//! Hang anatomy end to end: real programs that hang under `observer run --hang-after` (and
//! `attach`), and the stuck snapshot and hang signature each one must produce.
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
};

use observer::{
    analysis::snapshot::{StuckSnapshot, TaskState},
    analysis::{Classification, Finding, Signature},
    event::Event,
};
use observer_common::flags;

use crate::harness::*;

fn classification(dir: &Path) -> Classification {
    serde_json::from_str(&std::fs::read_to_string(dir.join("classification.json")).unwrap()).unwrap()
}

fn finding(c: &Classification, signature: Signature) -> &Finding {
    c.findings.iter().find(|f| f.signature == signature).unwrap_or_else(|| panic!("no {signature} in {c:#?}"))
}

fn stuck(dir: &Path) -> StuckSnapshot {
    StuckSnapshot::read(dir).expect("stuck.json exists and parses")
}

fn thread_ids(dir: &Path) -> Vec<u32> {
    events(dir)
        .iter()
        .filter_map(|e| match e {
            Event::Fork(f) if f.header.flags & flags::THREAD != 0 => Some(f.child_tid),
            _ => None,
        })
        .collect()
}

#[test]
fn an_abba_deadlock_is_found_with_both_threads_mutexes_and_functions() {
    let Some(_cpu) = bpf_or_skip("abba") else {
        return;
    };
    let dir = scratch("hang-abba");
    let out = observe(&dir, &["--hang-after", "2", "--timeout", "60"], &[workload("abba").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "stopped by --on-hang kill");
    let s = summary(&dir);
    assert_eq!(s["stopped_by"], "no progress for 2s");
    // "mutex a 0x..., mutex b 0x..."
    let printed = std::fs::read_to_string(dir.join("stdout.txt")).unwrap();
    let addrs: Vec<&str> =
        printed.split_whitespace().filter(|w| w.starts_with("0x")).map(|w| w.trim_end_matches(',')).collect();
    assert_eq!(addrs.len(), 2, "{printed}");
    let c = classification(&dir);
    let f = finding(&c, Signature::Deadlock);
    assert_eq!(c.findings[0].signature, Signature::Deadlock, "the verdict is the deadlock");
    let threads = thread_ids(&dir);
    assert_eq!(threads.len(), 2);
    for tid in &threads {
        assert!(
            f.summary.contains(&format!("thread {tid} (")) && f.summary.contains(") waits in lock_"),
            "{}",
            f.summary
        );
    }
    for addr in &addrs {
        assert!(f.summary.contains(&format!("for mutex {addr} held by thread")), "{addr} in {}", f.summary);
    }
    assert!(f.summary.contains("lock_a_then_b") && f.summary.contains("lock_b_then_a"), "{}", f.summary);
    assert!(dir.join("stuck.txt").exists());
}

#[test]
fn a_spinning_thread_is_found_with_the_function_it_spins_in() {
    let Some(_cpu) = bpf_alone_or_skip("spin") else {
        return;
    };
    let dir = scratch("hang-spin");
    observe(&dir, &["--hang-after", "2", "--timeout", "60"], &[workload("spin_named").to_str().unwrap()]);
    let printed = std::fs::read_to_string(dir.join("stdout.txt")).unwrap();
    let spinner: u32 = printed
        .split("spinner_tid=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .expect("spinner tid printed");
    let c = classification(&dir);
    let f = finding(&c, Signature::HangSpinning);
    assert_eq!(f.tid, spinner);
    assert!(f.summary.contains("in spin_forever_in_named_function"), "{}", f.summary);
    let snap = stuck(&dir);
    let (_, t) = snap.threads().find(|(_, t)| t.tid == spinner).unwrap();
    assert!(t.cpu_share > 0.9, "{t:?}");
    assert_eq!(t.samples[0].0, "spin_forever_in_named_function");
}

#[test]
fn a_ppoll_on_an_eventfd_and_a_self_pipe_is_decoded() {
    let Some(_cpu) = bpf_or_skip("ppoll") else {
        return;
    };
    let dir = scratch("hang-ppoll");
    observe(&dir, &["--hang-after", "2", "--timeout", "60"], &[workload("ppoll_forever").to_str().unwrap()]);
    let c = classification(&dir);
    let f = finding(&c, Signature::HangBlocked);
    let pid = summary(&dir)["pid"].clone();
    assert!(
        f.summary
            .contains(&format!("main thread {pid} in ppoll on eventfd fd 3, pipe fd 4 (write end in this process)")),
        "{}",
        f.summary
    );
    assert!(f.summary.ends_with("nothing on CPU"), "{}", f.summary);
    let snap = stuck(&dir);
    let (_, t) = snap.threads().next().unwrap();
    let call = t.syscall.as_ref().unwrap();
    assert_eq!((call.name.as_str(), call.source.as_str()), ("ppoll", "kernel in-flight table"));
    assert!(call.blocked_s.unwrap() >= 2.0);
    assert_eq!(t.fds[1].note, "write end held only by this process (fd 5)");
}

#[test]
fn timeout_cat_in_a_terminal_is_a_stopped_tree() {
    let Some(_cpu) = bpf_or_skip("tty stop") else {
        return;
    };
    let dir = scratch("hang-tty");
    let inner = format!(
        "{} run -q --hang-after 2 --timeout 60 --out {} -- sh -c 'timeout 60 cat /dev/tty'",
        observer_bin(),
        dir.display()
    );
    Command::new("script").args(["-qec", &inner, "/dev/null"]).stdin(Stdio::null()).status().unwrap();
    let c = classification(&dir);
    let stopped = finding(&c, Signature::HangStopped);
    assert!(stopped.summary.contains("(cat) is stopped (state T"), "{}", stopped.summary);
    assert!(stopped.summary.contains("see job-control-stop"), "{}", stopped.summary);
    // Root cause first: the background read that stopped cat, then the stop, then who waits on it.
    let order: Vec<Signature> = c.findings.iter().map(|f| f.signature).collect();
    assert_eq!(
        order[..3],
        [Signature::JobControlStop, Signature::HangStopped, Signature::HangWaitingChild],
        "the verdict is the stop, its consequences under it: {c:#?}"
    );
    assert_eq!(c.findings[2].caused_by, [c.findings[1].id.clone()]);
    let chain = finding(&c, Signature::HangWaitingChild);
    assert!(
        chain.summary.contains("(timeout) is blocked in rt_sigsuspend, which pid")
            && chain.summary.ends_with("(cat) is stopped"),
        "{}",
        chain.summary
    );
}

#[test]
fn a_parent_waiting_on_a_sleeping_child_names_the_chain() {
    let Some(_cpu) = bpf_or_skip("waiting child") else {
        return;
    };
    let dir = scratch("hang-child");
    observe(&dir, &["--hang-after", "2", "--timeout", "60"], &["sh", "-c", "sleep 1000; echo unreachable"]);
    let c = classification(&dir);
    let f = finding(&c, Signature::HangWaitingChild);
    let pid = summary(&dir)["pid"].clone();
    assert!(
        f.summary.starts_with(&format!("pid {pid} (sh) thread {pid} waits in wait4 for any child, which pid ")),
        "{}",
        f.summary
    );
    assert!(f.summary.contains("(sleep) is blocked in clock_nanosleep for"), "{}", f.summary);
}

#[test]
fn the_timeout_takes_the_snapshot_before_it_stops_anything() {
    let Some(_cpu) = bpf_or_skip("timeout snapshot") else {
        return;
    };
    let dir = scratch("hang-timeout");
    observe(&dir, &["--timeout", "1.5"], &[workload("ppoll_forever").to_str().unwrap()]);
    let snap = stuck(&dir);
    assert_eq!(snap.reason, "timeout after 1.5s");
    let (p, t) = snap.threads().next().unwrap();
    assert_eq!(p.state, TaskState::Sleeping, "snapshotted alive, before SIGTERM");
    assert!(t.syscall.as_ref().is_some_and(|c| c.name == "ppoll" && c.blocked_s.unwrap() > 1.0), "{t:?}");
    assert!(p.maps_lines > 5 && p.rss_kb > 0, "{p:?}");
    let s = summary(&dir);
    assert!(s["stuck_snapshot"].starts_with("stuck.txt (timeout after 1.5s)"), "{}", s["stuck_snapshot"]);
}

#[test]
fn attach_finds_a_deadlock_in_a_running_process_and_detach_leaves_it_running() {
    let Some(_cpu) = bpf_or_skip("attach") else {
        return;
    };
    let mut abba = Command::new(workload("abba")).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(abba.stdout.take().unwrap()).read_line(&mut line).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let dir = scratch("hang-attach");
    let out = Command::new(observer_bin())
        .args([
            "attach",
            "-q",
            "--hang-after",
            "2",
            "--on-hang",
            "keep",
            "--timeout",
            "4",
            "--pid",
            &abba.id().to_string(),
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.code().is_some(), "{}", String::from_utf8_lossy(&out.stderr));
    let c = classification(&dir);
    assert!(finding(&c, Signature::Deadlock).summary.contains("lock_a_then_b"), "{:#?}", c.findings);
    let _ = abba.kill();
    let _ = abba.wait();

    // Detach: Ctrl-C leaves the process running.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let dir = scratch("hang-detach");
    let mut observer = Command::new(observer_bin())
        .args(["attach", "-q", "--pid", &sleeper.id().to_string(), "--out"])
        .arg(&dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(observer.id() as i32, libc::SIGINT) };
    assert_eq!(observer.wait().unwrap().code(), Some(0));
    assert!(sleeper.try_wait().unwrap().is_none(), "the attached process still runs");
    assert_eq!(summary(&dir)["exit"], "still running (observer detached)");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

/// A thread on a whole CPU making hundreds of thousands of syscalls a second, stopped by Ctrl-C
/// under `--hang-after 2`. Recorded calls (`kill(getpid(), 0)`), past a `--max-size` cap where the
/// capture stops keeping records, are progress by the kernel's per-thread counters: no hang. Calls
/// observer does not record (`getppid`) are counted but do no work: a spin, which must not say the
/// thread makes no syscalls.
#[test]
fn a_busy_program_stopped_by_ctrl_c_is_judged_by_the_kernels_counts() {
    let Some(_cpu) = bpf_alone_or_skip("busy-ctrl-c") else {
        return;
    };
    for mode in ["kill", "getppid"] {
        let dir = scratch(&format!("hang-busy-{mode}"));
        let mut observer = Command::new(observer_bin())
            .args(["run", "-q", "--hang-after", "2", "--max-size", "8M", "--out"])
            .arg(&dir)
            .arg("--")
            .arg(workload("syscall_storm"))
            .args([mode, "30"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3500));
        // SAFETY: signalling our own child.
        unsafe { libc::kill(observer.id() as i32, libc::SIGINT) };
        observer.wait().unwrap();
        let c = classification(&dir);
        let hangs: Vec<_> = c.findings.iter().filter(|f| f.signature.is_hang()).collect();
        if mode == "kill" {
            assert!(hangs.is_empty(), "{mode}: {hangs:#?}");
        }
        let report = std::fs::read_to_string(dir.join("report.txt")).unwrap();
        assert!(!report.contains("no syscalls"), "{mode}: {report}");
        let snap = stuck(&dir);
        assert!(snap.syscalls_in_window > 100_000, "{mode}: {} syscalls in the window", snap.syscalls_in_window);
    }
}
