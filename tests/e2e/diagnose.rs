//! Each signature provoked for real under `observer run`, and the diagnosis it gives: the finding,
//! its thread and its evidence; plus `analyze` and `replay` on the capture.
use std::{path::Path, process::Command};

use observer::analysis::{Classification, Finding, Signature};

use crate::harness::*;

fn classification(dir: &Path) -> Classification {
    let text = std::fs::read_to_string(dir.join("classification.json")).expect("classification.json exists");
    serde_json::from_str(&text).expect("classification.json parses")
}

fn finding(c: &Classification, signature: Signature) -> &Finding {
    c.findings.iter().find(|f| f.signature == signature).unwrap_or_else(|| panic!("no {signature} in {c:#?}"))
}

fn root_pid(dir: &Path) -> u32 {
    summary(dir)["pid"].parse().unwrap()
}

fn evidence_has(f: &Finding, needle: &str) -> bool {
    f.evidence.iter().any(|e| e.text.contains(needle))
}

#[test]
fn a_data_limit_gives_pthread_stack_mprotect_enomem_naming_rlimit_data() {
    let Some(_cpu) = bpf_or_skip("mprotect enomem") else {
        return;
    };
    let dir = scratch("diag-data");
    let out = observe(&dir, &[], &["prlimit", "--data=41943040", workload("threads").to_str().unwrap(), "8"]);
    assert_eq!(out.status.code(), Some(1), "the workload saw pthread_create fail");
    let c = classification(&dir);
    let f = finding(&c, Signature::PthreadStackMprotectEnomem);
    assert_eq!((f.pid, f.tid), (root_pid(&dir), root_pid(&dir)), "found in the creating (main) thread");
    assert!(evidence_has(f, "MAP_STACK") && evidence_has(f, "= -1 ENOMEM"), "{f:#?}");
    assert!(f.summary.contains("RLIMIT_DATA is 40 MiB"), "{}", f.summary);
    assert!(!c.findings.iter().any(|f| f.signature == Signature::ExitNonzero), "the exit is explained");
    let report = std::fs::read_to_string(dir.join("report.txt")).unwrap();
    assert!(report.starts_with("verdict: error [pthread-stack-mprotect-enomem]"), "{report}");
}

#[test]
fn an_address_space_limit_gives_pthread_stack_mmap_enomem_naming_rlimit_as() {
    let Some(_cpu) = bpf_or_skip("mmap enomem") else {
        return;
    };
    let dir = scratch("diag-as");
    let out = observe(&dir, &[], &["prlimit", "--as=62914560", workload("threads").to_str().unwrap(), "8"]);
    assert_eq!(out.status.code(), Some(1));
    let c = classification(&dir);
    let f = finding(&c, Signature::PthreadStackMmapEnomem);
    assert_eq!(f.tid, root_pid(&dir));
    assert!(evidence_has(f, "MAP_STACK, -1, 0) = -1 ENOMEM"), "{f:#?}");
    assert!(f.summary.contains("RLIMIT_AS is 60 MiB"), "{}", f.summary);
}

#[test]
fn a_pids_cgroup_gives_clone_eagain_with_its_numbers() {
    let Some(_cpu) = bpf_or_skip("clone eagain") else {
        return;
    };
    let cgroup = PidsCgroup::new("observer-e2e-clone", 4);
    let dir = scratch("diag-pids");
    let out = observe(
        &dir,
        &["--cgroup", cgroup.0.to_str().unwrap()],
        &[workload("threads").to_str().unwrap(), "16", "hold"],
    );
    assert_eq!(out.status.code(), Some(1));
    let c = classification(&dir);
    let f = finding(&c, Signature::CloneEagain);
    assert_eq!(f.tid, root_pid(&dir));
    assert!(evidence_has(f, "clone3(") && evidence_has(f, "= -1 EAGAIN"), "{f:#?}");
    assert!(f.summary.contains("allows 4 tasks and about 4 were in use"), "{}", f.summary);
    assert!(evidence_has(f, "pids.max 4"), "{f:#?}");
}

#[test]
fn a_five_level_paging_probe_is_reported_as_info() {
    let Some(_cpu) = bpf_or_skip("va probe") else {
        return;
    };
    let dir = scratch("diag-va");
    let out = observe(&dir, &[], &[workload("va_probe").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let c = classification(&dir);
    let f = finding(&c, Signature::VaProbeEnomem);
    assert_eq!((f.tid, f.severity.as_str()), (root_pid(&dir), "info"));
    assert!(evidence_has(f, "mmap(0x800000000000, 4096") && evidence_has(f, "MAP_FIXED_NOREPLACE"), "{f:#?}");
    let report = std::fs::read_to_string(dir.join("report.txt")).unwrap();
    assert!(report.starts_with("verdict: no failure found"), "{report}");
}

#[test]
fn a_segfault_gives_fatal_signal_with_the_address_and_its_mapping() {
    let Some(_cpu) = bpf_or_skip("fatal signal") else {
        return;
    };
    let dir = scratch("diag-segv");
    let out = observe(&dir, &[], &[workload("segv_readonly").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(128 + libc::SIGSEGV));
    let addr = std::fs::read_to_string(dir.join("stdout.txt")).unwrap().trim().to_string();
    let c = classification(&dir);
    let f = finding(&c, Signature::FatalSignal);
    assert_eq!((f.tid, f.severity.as_str()), (root_pid(&dir), "fatal"));
    assert!(
        f.summary.contains(&format!("SIGSEGV (SEGV_ACCERR) in thread {} at address {addr}", f.tid)),
        "{}",
        f.summary
    );
    assert!(f.summary.contains("is in an anonymous mapping") && f.summary.contains("PROT_READ"), "{}", f.summary);
}

#[test]
fn a_kill_by_another_process_gives_fatal_signal_naming_the_sender() {
    let Some(_cpu) = bpf_or_skip("fatal kill") else {
        return;
    };
    let dir = scratch("diag-kill");
    let out = observe(&dir, &[], &["sh", "-c", "sleep 30 & victim=$!; env kill -KILL $victim; wait $victim; exit 0"]);
    assert_eq!(out.status.code(), Some(0));
    let c = classification(&dir);
    let f = finding(&c, Signature::FatalSignal);
    assert!(
        f.summary.contains("was ended by signal SIGKILL from pid") && f.summary.ends_with("(kill)"),
        "{}",
        f.summary
    );
    assert!(evidence_has(f, "--- SIGKILL {si_code=SI_USER, si_pid="), "{f:#?}");
}

#[test]
fn timeout_under_a_terminal_gives_job_control_stop() {
    let Some(_cpu) = bpf_or_skip("job control") else {
        return;
    };
    let dir = scratch("diag-tty");
    // `script` gives observer a controlling terminal; the command's process group is not the
    // terminal's foreground (observer is, and relays the command's input), so cat's read of the
    // terminal itself stops it with SIGTTIN.
    let inner = format!(
        "{} run -q --timeout 3 --kill-grace 0.5 --out {} -- sh -c 'timeout 1 cat /dev/tty'",
        observer_bin(),
        dir.display()
    );
    let status =
        Command::new("script").args(["-qec", &inner, "/dev/null"]).stdin(std::process::Stdio::null()).status().unwrap();
    assert!(status.code().is_some(), "observer under script ended: {status}");
    let c = classification(&dir);
    let f = finding(&c, Signature::JobControlStop);
    assert!(f.summary.contains("(cat) was stopped by SIGTTIN from the kernel: it read from its controlling terminal from a background process group"), "{}", f.summary);
    assert!(evidence_has(f, "--- SIGTTIN delivered"), "{f:#?}");
    let cat_pid = f.pid;
    assert!(trace(&dir, f.tid).contains("+++ exec /usr/bin/cat as cat +++"), "tid {} pid {cat_pid}", f.tid);
}

#[test]
fn a_failing_command_with_no_other_finding_gives_exit_nonzero() {
    let Some(_cpu) = bpf_or_skip("exit nonzero") else {
        return;
    };
    let dir = scratch("diag-exit");
    let out = observe(&dir, &[], &["sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let c = classification(&dir);
    let f = finding(&c, Signature::ExitNonzero);
    assert_eq!((f.pid, f.severity.as_str()), (root_pid(&dir), "info"));
    assert!(f.summary.contains("exited with code 3"), "{}", f.summary);
}

#[test]
fn analyze_reproduces_the_run_diagnosis_byte_for_byte() {
    let Some(_cpu) = bpf_or_skip("analyze") else {
        return;
    };
    let dir = scratch("diag-analyze");
    observe(&dir, &[], &["prlimit", "--data=41943040", workload("threads").to_str().unwrap(), "8"]);
    let live_json = std::fs::read(dir.join("classification.json")).unwrap();
    let live_report = std::fs::read(dir.join("report.txt")).unwrap();
    std::fs::remove_file(dir.join("classification.json")).unwrap();
    let out = Command::new(observer_bin()).arg("analyze").arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(dir.join("classification.json")).unwrap(), live_json);
    assert_eq!(std::fs::read(dir.join("report.txt")).unwrap(), live_report);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("verdict: error [pthread-stack-mprotect-enomem]"), "{stdout}");
}

#[test]
fn replay_filters_and_reads_a_cut_capture_up_to_its_last_whole_block() {
    let Some(_cpu) = bpf_or_skip("replay") else {
        return;
    };
    let dir = scratch("diag-replay");
    observe(&dir, &[], &["prlimit", "--data=41943040", workload("threads").to_str().unwrap(), "8"]);
    let replay = |args: &[&str]| Command::new(observer_bin()).arg("replay").args(args).output().unwrap();
    let failed = replay(&[dir.to_str().unwrap(), "--failed", "--syscall", "mprotect"]);
    let text = String::from_utf8_lossy(&failed.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("mprotect(") && text.contains("= -1 ENOMEM (Cannot allocate memory)"), "{text}");
    let json = replay(&[dir.to_str().unwrap(), "--syscall", "mmap", "--format", "json"]);
    for line in String::from_utf8_lossy(&json.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["syscall"], "mmap");
    }
    // events.bin is made of blocks (docs/event-log.md): a 24-byte frame ("OBLK", compressed
    // length, raw length, record count, two checksums), then the compressed records.
    let whole = std::fs::read(dir.join("events.bin")).unwrap();
    let word = |at: usize| u32::from_le_bytes(whole[at..at + 4].try_into().unwrap()) as usize;
    let mut blocks = Vec::new();
    let mut at = 16 + word(12);
    while at < whole.len() {
        assert_eq!(&whole[at..at + 4], b"OBLK");
        blocks.push((at, word(at + 12)));
        at += 24 + word(at + 4);
    }
    let (last_at, last_records) = *blocks.last().expect("a block");
    let lines = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).lines().count();
    let all = replay(&[dir.to_str().unwrap()]);
    // Cut inside the last block: the blocks before it are read, the rest is a skipped tail.
    let cut = dir.join("cut.bin");
    std::fs::write(&cut, &whole[..whole.len() - 7]).unwrap();
    let partial = replay(&[cut.to_str().unwrap()]);
    assert!(partial.status.success());
    assert_eq!(lines(&partial) + last_records, lines(&all));
    assert!(
        String::from_utf8_lossy(&partial.stderr).contains("skipped"),
        "{}",
        String::from_utf8_lossy(&partial.stderr)
    );
    // A damaged byte in the last block's compressed records: its checksum disagrees.
    let mut corrupt = whole.clone();
    corrupt[last_at + 24 + 3] ^= 0x20;
    std::fs::write(&cut, &corrupt).unwrap();
    let bad = replay(&[cut.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains(&format!("corrupt event log at byte {last_at}: block checksum")),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert_eq!(lines(&bad) + last_records, lines(&all), "the records before the damage are printed");
    let foreign = replay(&["/bin/true"]);
    assert_eq!(foreign.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&foreign.stderr).contains("not an observer event log"));
}
