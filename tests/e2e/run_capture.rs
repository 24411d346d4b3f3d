//! `observer run` captures what a real program does, completely and only for what it tracks.
use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use observer::event::{c_str, Event};
use observer_common::{flags, syscalls};

use crate::harness::*;

const MAP_STACK: u64 = 0x20000;
const PROT_READ_WRITE: u64 = 0x3;

fn nr(name: &str) -> u32 {
    syscalls::by_name(name).unwrap().nr
}

#[test]
fn every_thread_stack_mmap_and_mprotect_is_captured_in_the_creating_thread() {
    let Some(_cpu) = bpf_or_skip("thread stacks") else {
        return;
    };
    let dir = scratch("threads");
    let n = 16;
    let out = observe(&dir, &[], &[workload("threads").to_str().unwrap(), &n.to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let s = summary(&dir);
    assert_eq!(s["events_dropped"], "0");
    assert_eq!(s["exit"], "code 0");
    let events = events(&dir);
    let pid: u32 = s["pid"].parse().unwrap();

    let stacks: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Syscall(s) if s.header.tid == pid && s.nr == nr("mmap") && s.args[3] & MAP_STACK != 0 => {
                assert_eq!(s.args[0], 0, "stack mmap without hint");
                assert_eq!(s.args[2], 0, "stack mapped PROT_NONE first");
                assert_eq!(s.args[4] as i32, -1, "anonymous stack");
                Some((s.ret as u64, s.args[1]))
            }
            _ => None,
        })
        .collect();
    assert_eq!(stacks.len(), n, "one MAP_STACK mmap per thread");
    for (base, len) in &stacks {
        let committed = events.iter().any(|e| {
            matches!(e, Event::Syscall(s) if s.header.tid == pid && s.nr == nr("mprotect")
                && s.args[0] >= *base && s.args[0] < base + len && s.args[2] == PROT_READ_WRITE && s.ret == 0)
        });
        assert!(committed, "the stack at {base:#x} was made read-write by the creating thread");
    }

    let text = trace(&dir, pid);
    let mmap_lines = text.lines().filter(|l| l.contains("MAP_STACK") && l.contains(" mmap(NULL, ")).count();
    assert_eq!(mmap_lines, n, "{text}");
    let sample = text.lines().find(|l| l.contains("MAP_STACK")).unwrap();
    let (time, rest) = sample.split_once(' ').unwrap();
    assert!(
        time.len() == 15 && time.as_bytes()[2] == b':' && time.as_bytes()[8] == b'.',
        "wall-clock prefix: {sample}"
    );
    assert!(
        rest.starts_with("mmap(NULL, ")
            && rest.contains(", PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0) = 0x"),
        "{sample}"
    );
    // mmap cannot block for long: recorded at exit alone, its line has no duration suffix.
    assert!(!rest.ends_with('>'), "no duration suffix: {sample}");
    assert!(text.lines().filter(|l| l.contains("mprotect(") && l.contains("PROT_READ|PROT_WRITE) = 0")).count() >= n);

    let threads: BTreeSet<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::Fork(f) if f.header.flags & flags::THREAD != 0 => Some(f.child_tid),
            _ => None,
        })
        .collect();
    assert_eq!(threads.len(), n);
    for tid in threads {
        assert!(trace(&dir, tid).contains("exit(0) = ?"), "thread {tid} has its own trace with its exit");
    }
    assert_eq!(s["threads_seen"], (n + 1).to_string());
}

#[test]
fn a_program_making_k_calls_yields_exactly_k_records() {
    let Some(_cpu) = bpf_or_skip("exact count") else {
        return;
    };
    let dir = scratch("count");
    let k = 250;
    let out = observe(&dir, &[], &[workload("kill_self_k").to_str().unwrap(), &k.to_string()]);
    assert_eq!(out.status.code(), Some(0));
    let s = summary(&dir);
    let pid: u32 = s["pid"].parse().unwrap();
    let kills = events(&dir)
        .iter()
        .filter(|e| matches!(e, Event::Syscall(s) if s.nr == nr("kill")))
        .inspect(|e| {
            let Event::Syscall(s) = e else { unreachable!() };
            assert_eq!((s.header.tgid, s.args[0] as u32, s.args[1], s.ret), (pid, pid, 0, 0));
        })
        .count();
    assert_eq!(kills, k);
    assert_eq!(s["syscalls.kill"], k.to_string());
    assert_eq!(s["events_dropped"], "0");
    assert_eq!(s["events_received"], s["events_submitted_by_kernel"], "every submitted record was read");
}

#[test]
fn a_process_killed_by_a_sibling_names_the_signal_and_the_sender() {
    let Some(_cpu) = bpf_or_skip("sibling kill") else {
        return;
    };
    let dir = scratch("sibling");
    let out = observe(&dir, &[], &["sh", "-c", "sleep 30 & victim=$!; env kill -KILL $victim; wait $victim; exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let events = events(&dir);
    let killer = events
        .iter()
        .find_map(|e| match e {
            Event::Exec(x) if c_str(&x.comm) == "kill" => Some(x.header.tgid),
            _ => None,
        })
        .expect("the kill process exec'd");
    let (victim, sender) = events
        .iter()
        .find_map(|e| match e {
            Event::SignalGenerate(g) if g.sig == libc::SIGKILL => Some((g.target_tid, g.header.tgid)),
            _ => None,
        })
        .expect("SIGKILL generation captured");
    assert_eq!(sender, killer);
    let s = summary(&dir);
    let line = &s[&format!("killed.{victim}")];
    assert!(line.ends_with(&format!("signal SIGKILL from pid {killer} (kill)")), "{line}");
    assert!(trace(&dir, victim).contains(&format!("--- SIGKILL {{si_code=SI_USER, si_pid={killer} (kill)}} ---")));
}

#[test]
fn the_run_exit_names_the_signal_and_who_sent_it() {
    let Some(_cpu) = bpf_or_skip("root killed") else {
        return;
    };
    let dir = scratch("rootkill");
    let out = observe(&dir, &[], &["sh", "-c", "env kill -KILL $$; sleep 5"]);
    assert_eq!(out.status.code(), Some(128 + 9));
    let s = summary(&dir);
    let killer = events(&dir)
        .iter()
        .find_map(|e| match e {
            Event::Exec(x) if c_str(&x.comm) == "kill" => Some(x.header.tgid),
            _ => None,
        })
        .unwrap();
    assert_eq!(s["exit"], format!("signal SIGKILL from pid {killer} (kill)"));
    assert_eq!(s["exit_code"], "137");
}

#[test]
fn ctrl_c_stops_the_command_and_leaves_a_complete_run_directory() {
    let Some(_cpu) = bpf_or_skip("ctrl-c") else {
        return;
    };
    let dir = scratch("ctrlc");
    let mut observer = Command::new(observer_bin())
        .args(["run", "--quiet", "--kill-grace", "1", "--out"])
        .arg(&dir)
        .args(["--", "sh", "-c", "while :; do sleep 0.05; done"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until records flow (the command is running and tracked), then interrupt.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(dir.join("events.bin")).map_or(0, |m| m.len()) < 4096 {
        assert!(std::time::Instant::now() < deadline, "no events within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(observer.id() as i32, libc::SIGINT) };
    let status = observer.wait().unwrap();
    let stderr: Vec<String> = BufReader::new(observer.stderr.take().unwrap()).lines().map_while(Result::ok).collect();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{stderr:?}");
    let s = summary(&dir);
    assert_eq!(s["stopped_by"], "SIGINT to observer");
    assert_eq!(s["exit"], format!("signal SIGTERM from pid {} (observer)", observer.id()));
    assert_eq!(s["events_dropped"], "0");
    let events = events(&dir);
    assert_eq!(s["events_written"], events.len().to_string());
    assert!(events.iter().any(|e| matches!(e, Event::Exit(x) if x.header.flags & flags::GROUP_DEAD != 0)));
    for f in ["stdout.txt", "stderr.txt", "command.txt", "summary.json"] {
        assert!(dir.join(f).exists(), "{f}");
    }
}

#[test]
fn the_timeout_stops_the_whole_group_with_term_then_kill() {
    let Some(_cpu) = bpf_or_skip("timeout") else {
        return;
    };
    let dir = scratch("timeout");
    let out = observe(
        &dir,
        &["--timeout", "1", "--kill-grace", "0.5"],
        &["sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"],
    );
    assert_eq!(out.status.code(), Some(128 + 9));
    let s = summary(&dir);
    assert_eq!(s["stopped_by"], "timeout after 1s");
    assert!(s["exit"].starts_with("signal SIGKILL from pid "), "{}", s["exit"]);
    assert!(s["exit"].ends_with("(observer)"), "{}", s["exit"]);
}

#[test]
fn untracked_processes_produce_no_records() {
    let Some(_cpu) = bpf_or_skip("untracked") else {
        return;
    };
    let mut busy = Command::new(workload("mmap_loop")).stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(busy.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let busy_pid: u32 = line.trim().parse().unwrap();
    let dir = scratch("untracked");
    let out = observe(&dir, &[], &[workload("threads").to_str().unwrap(), "4"]);
    busy.kill().unwrap();
    busy.wait().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let s = summary(&dir);
    let pid: u32 = s["pid"].parse().unwrap();
    let events = events(&dir);
    assert!(!events.is_empty());
    for e in &events {
        let h = e.header();
        assert_ne!(h.tgid, busy_pid, "record from the untracked process: {e:?}");
        if !matches!(e, Event::SignalGenerate(_)) {
            assert_eq!(h.tgid, pid, "only the tracked program: {e:?}");
        }
    }
}

#[test]
fn without_out_the_run_goes_to_observer_runs_with_a_latest_link() {
    let Some(_cpu) = bpf_or_skip("default dir") else {
        return;
    };
    let cwd = scratch("default-dir");
    let out = Command::new(observer_bin()).current_dir(&cwd).args(["run", "--quiet", "--", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let runs = cwd.join("observer-runs");
    let dirs: Vec<String> = std::fs::read_dir(&runs)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "latest")
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].starts_with("true-") && dirs[0].ends_with('Z'), "{}", dirs[0]);
    assert_eq!(std::fs::read_link(runs.join("latest")).unwrap().to_string_lossy(), dirs[0]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("run directory: observer-runs/{}", dirs[0])), "the path is printed: {stderr}");
    assert!(runs.join("latest/summary.txt").exists());
}

/// A thread looping on one call: its trace log keeps its first and last 50,000 lines, says how
/// many events are left out between them and how to print them; `observer replay --tid` prints
/// every one, and the kept lines are the same as replay's.
#[test]
fn a_busy_threads_trace_keeps_its_start_and_end_and_replay_prints_the_rest() {
    let Some(_cpu) = bpf_or_skip("trace middle") else {
        return;
    };
    let dir = scratch("trace-middle");
    let calls = 120_000;
    let out = observe(&dir, &[], &[workload("bench_mprotect").to_str().unwrap(), &calls.to_string(), "/dev/null"]);
    assert_eq!(out.status.code(), Some(0));
    let s = summary(&dir);
    assert!(s["trace_text"].starts_with("complete but for "), "{}", s["trace_text"]);
    let tid: u32 = s["pid"].parse().unwrap();

    let trace = std::fs::read_to_string(dir.join(format!("trace.{tid}.txt"))).unwrap();
    let trace: Vec<&str> = trace.lines().collect();
    let replay = Command::new(observer_bin()).args(["replay", "--tid", &tid.to_string()]).arg(&dir).output().unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let replay = String::from_utf8(replay.stdout).unwrap();
    // Replay's lines start with the thread's id; the thread's own log leaves it out.
    let prefix = format!("{tid} ");
    let replay: Vec<&str> = replay.lines().map(|l| l.strip_prefix(&prefix).unwrap_or(l)).collect();
    assert!(replay.iter().filter(|l| l.contains(" mprotect(")).count() >= calls, "replay prints every call");

    let (head, tail) = (50_000, 50_000);
    assert_eq!(trace.len(), head + 1 + tail);
    let marker = trace[head];
    let left_out = replay.len() - head - tail;
    assert!(marker.starts_with(&format!("... {left_out} events of this thread left out here")), "{marker}");
    assert!(marker.contains(&format!("--tid {tid}")), "{marker}");
    assert_eq!(trace[head + 1..], replay[replay.len() - tail..], "the last lines are replay's last lines");
    assert!(trace[..head].iter().filter(|l| l.contains(" mprotect(")).count() > head - 100);
}
