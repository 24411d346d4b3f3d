//! `observer watch` end to end, in a test binary of its own so that counting the BPF programs
//! loaded on the machine is not disturbed by other tests: unrelated processes crash, fail
//! pthread_create, fork-storm a pids cgroup and deadlock while the daemon runs; each must become
//! one incident directory with the right signature, the metrics must count them, memory must stay
//! flat over thousands of short processes, and stopping must leave nothing of ours loaded.
use std::{
    io::{Read, Write},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const OUR_PROGRAMS: &[&str] = &[
    "sys_enter",
    "sys_exit",
    "sched_process_fork",
    "sched_process_exec",
    "sched_process_exit",
    "signal_generate",
    "signal_deliver",
    "signal_fault",
];

fn require_bpf() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert_ne!(
        std::env::var("OBSERVER_REQUIRE_BPF").as_deref(),
        Ok("1"),
        "OBSERVER_REQUIRE_BPF=1 but not running as root"
    );
    eprintln!("skipped watch test: not running as root, so eBPF programs cannot be loaded");
    false
}

fn build(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/workloads").join(format!("{name}.c"));
    let out = dir.join(name);
    assert!(Command::new("cc").args(["-O2", "-g", "-pthread", "-o"]).arg(&out).arg(src).status().unwrap().success());
    out
}

/// Ids of the BPF programs loaded on the machine, with their names.
fn loaded_programs() -> Vec<(u64, String)> {
    let out = Command::new("bpftool")
        .args(["-j", "prog", "list"])
        .output()
        .expect("bpftool runs (cargo xtask setup installs it)");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Array(vec![]));
    list.as_array()
        .map(|progs| {
            progs
                .iter()
                .filter_map(|p| Some((p["id"].as_u64()?, p["name"].as_str().unwrap_or_default().to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Ids of the programs a process holds open, from its fds' fdinfo (`prog_id:` lines).
fn programs_held_by(pid: u32) -> Vec<u64> {
    let mut ids: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .filter_map(|info| {
                    info.lines().find_map(|l| l.strip_prefix("prog_id:")).and_then(|v| v.trim().parse().ok())
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A child in its own process group, so the watch sees it as its own tree.
fn spawn_alone(cmd: &mut Command) -> Child {
    cmd.process_group(0).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// A child that makes itself a session of its own (as a daemon does) after the fork: the watch
/// sees it forked into this test's tree, then leave it.
fn spawn_in_own_session(cmd: &mut Command) -> Child {
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

fn incidents(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scrape(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or_else(|| panic!("{name} in {text}"))
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[test]
fn watch_turns_each_incident_into_one_directory_and_leaves_nothing_loaded() {
    if !require_bpf() {
        return;
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("watch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (threads, segv, storm, abba) =
        (build(&work, "threads"), build(&work, "segv_readonly"), build(&work, "fork_storm"), build(&work, "abba"));
    let incident_dir = work.join("incidents");
    // A port of its own: another observer (a second checkout's tests) may be serving metrics.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let addr = addr.as_str();

    let mut daemon = Command::new(env!("CARGO_BIN_EXE_observer"))
        .args([
            "watch",
            "--json",
            "--comm",
            "abba",
            "--hang-after",
            "2",
            "--max-incidents-per-minute",
            "1000",
            "--metrics",
            addr,
            "--incidents",
        ])
        .arg(&incident_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the metrics endpoint", Duration::from_secs(20), || std::net::TcpStream::connect(addr).is_ok());
    let held: Vec<u64> = programs_held_by(daemon.id());
    let loaded = loaded_programs();
    for name in OUR_PROGRAMS {
        assert!(
            loaded.iter().any(|(id, n)| held.contains(id) && n == name),
            "the daemon holds a loaded {name}: {loaded:?}"
        );
    }

    // Three crashes, each in a session of its own (one incident each, whatever their common
    // parent), a pthread_create failure, a fork storm in a small pids cgroup, a deadlock. Other
    // processes of the machine may have incidents too: ours are told apart by pid.
    let crash_pids: Vec<u32> = (0..3)
        .map(|_| {
            let mut crash = spawn_in_own_session(&mut Command::new(&segv));
            crash.wait().unwrap();
            crash.id()
        })
        .collect();
    let mut limited = spawn_alone(Command::new("prlimit").arg("--data=41943040").arg(&threads).arg("8"));
    let limited_pid = limited.id();
    limited.wait().unwrap();
    let cgroup = Path::new("/sys/fs/cgroup/pids").join(format!("observer-watch-{}", std::process::id()));
    let cgroup = if Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        cgroup
    } else {
        Path::new("/sys/fs/cgroup").join(format!("observer-watch-{}", std::process::id()))
    };
    std::fs::create_dir_all(&cgroup).unwrap();
    std::fs::write(cgroup.join("pids.max"), "6").unwrap();
    let storm_cmd = format!("echo $$ > {}/cgroup.procs && exec {} 60", cgroup.display(), storm.display());
    let mut storm = spawn_alone(Command::new("sh").args(["-c", &storm_cmd]));
    let storm_pid = storm.id();
    storm.wait().unwrap();
    let mut deadlocked = spawn_alone(&mut Command::new(&abba));
    let deadlocked_pid = deadlocked.id();

    let expected = [
        ("fatal-signal", crash_pids[0]),
        ("fatal-signal", crash_pids[1]),
        ("fatal-signal", crash_pids[2]),
        ("pthread-stack-mprotect-enomem", limited_pid),
        ("clone-eagain", storm_pid),
        ("deadlock", deadlocked_pid),
    ];
    let ours = |sig: &str, pid: u32| -> Vec<String> {
        incidents(&incident_dir)
            .into_iter()
            .filter(|d| d.ends_with(&format!("-{sig}-{pid}")) || d.contains(&format!("-{sig}-{pid}.")))
            .collect()
    };
    wait_for("six incidents", Duration::from_secs(30), || {
        expected.iter().all(|(sig, pid)| !ours(sig, *pid).is_empty())
    });
    let _ = deadlocked.kill();
    let _ = deadlocked.wait();
    let _ = std::fs::remove_dir(&cgroup);
    let found = incidents(&incident_dir);
    for (sig, pid) in expected {
        let dirs = ours(sig, pid);
        assert_eq!(dirs.len(), 1, "exactly one {sig} incident for pid {pid} (the storm is rate limited): {found:?}");
        let dir = incident_dir.join(&dirs[0]);
        for file in ["events.bin", "classification.json", "report.txt", "summary.txt"] {
            assert!(dir.join(file).exists(), "{sig}: {file}");
        }
        let c = std::fs::read_to_string(dir.join("classification.json")).unwrap();
        assert!(c.contains(&format!("\"signature\": \"{sig}\"")), "{sig}: {c}");
    }
    // A crash's flight recorder holds its own tree: nothing of the process it was forked from.
    for pid in &crash_pids {
        let events = std::fs::read(incident_dir.join(&ours("fatal-signal", *pid)[0]).join("events.bin")).unwrap();
        let mut log = observer::eventlog::EventLogReader::from_bytes(events).unwrap();
        while let Some(e) = log.next_event().unwrap() {
            assert_eq!(e.header().tgid, *pid, "crash {pid}'s incident holds another process's event: {e:?}");
        }
    }
    let storm_dir = incident_dir.join(&ours("clone-eagain", storm_pid)[0]);
    assert!(std::fs::read_to_string(storm_dir.join("report.txt")).unwrap().contains("EAGAIN"));
    assert!(incident_dir.join(&ours("deadlock", deadlocked_pid)[0]).join("stuck.txt").exists());

    // Other processes of the machine (and the deadlocked one, killed above) may add incidents
    // while this looks: the counters lie between the directories before and after the scrape.
    let before = incidents(&incident_dir);
    let metrics = scrape(addr);
    let after = incidents(&incident_dir);
    let count = |dirs: &[String], sig: &str| dirs.iter().filter(|d| d.contains(&format!("-{sig}-"))).count() as f64;
    for sig in ["clone-eagain", "fatal-signal"] {
        let counted = metric(&metrics, &format!("observer_incidents_total{{signature=\"{sig}\"}}"));
        assert!((count(&before, sig)..=count(&after, sig)).contains(&counted), "{sig}: {counted} in {metrics}");
    }
    assert!(
        metric(&metrics, "observer_incidents_suppressed_total{signature=\"clone-eagain\"}") >= 1.0,
        "the storm's other failures are counted: {metrics}"
    );
    assert!(metric(&metrics, "observer_events_received_total{kind=\"fork\"}") > 10.0);
    assert_eq!(metric(&metrics, "observer_events_dropped_total{kind=\"syscall\"}"), 0.0);
    assert!(metric(&metrics, "observer_resident_memory_bytes") > 0.0);

    // Thousands of short-lived processes: memory stays flat.
    let burst = |n: usize| {
        for _ in 0..n {
            Command::new("true").status().unwrap();
        }
        std::thread::sleep(Duration::from_secs(7)); // trees linger 5 s, then are swept
    };
    burst(500);
    let rss_warm = rss_kb(daemon.id());
    burst(2000);
    let rss_after = rss_kb(daemon.id());
    assert!(rss_after < rss_warm + 4 * 1024, "RSS grew from {rss_warm} kB to {rss_after} kB over 2000 processes");
    let trees = metric(&scrape(addr), "observer_process_trees");
    assert!(trees < 50.0, "{trees} process trees still held after the burst");

    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.wait().unwrap();
    let mut stdout = String::new();
    daemon.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    assert_eq!(status.code(), Some(0));
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), incidents(&incident_dir).len(), "one JSON line per incident: {stdout}");
    for (sig, pid) in expected {
        assert!(lines.iter().any(|l| l["signature"] == sig && l["pid"] == pid), "a JSON line for {sig} of {pid}");
    }
    // The kernel frees a program after an RCU grace period once its last fd is closed.
    let still =
        || -> Vec<(u64, String)> { loaded_programs().into_iter().filter(|(id, _)| held.contains(id)).collect() };
    wait_for("the daemon's programs to be unloaded", Duration::from_secs(10), || still().is_empty());
}
