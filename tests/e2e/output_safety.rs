//! What observer writes, run as root among other users: never through a link an unprivileged user
//! planted, private by default (0700/0600, 0750/0640 with --group), secrets redacted, nothing of
//! one run lost to another, and default names that never collide.
use std::{
    io::{BufRead, BufReader},
    os::unix::{
        fs::{MetadataExt, PermissionsExt},
        process::CommandExt,
    },
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::harness::*;

const NOBODY: &str = "65534";

/// A scratch directory under /tmp that an unprivileged user can reach (the build directory may
/// not be), removed first.
fn shared_scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("observer-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `args` run as uid/gid 65534 with no supplementary groups.
fn as_nobody(args: &[&str]) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([&format!("--reuid={NOBODY}"), &format!("--regid={NOBODY}"), "--clear-groups", "--"]).args(args);
    cmd
}

fn run_as_nobody(args: &[&str]) {
    let out = as_nobody(args).output().expect("setpriv runs");
    assert!(out.status.success(), "{args:?} as nobody: {}", String::from_utf8_lossy(&out.stderr));
}

/// A directory owned by nobody, in which nobody plants `links` (name -> target).
fn nobody_dir(at: &Path, links: &[(&str, &Path)]) {
    std::fs::create_dir(at).unwrap();
    std::os::unix::fs::chown(at, Some(65534), Some(65534)).unwrap();
    for (name, target) in links {
        run_as_nobody(&["ln", "-s", target.to_str().unwrap(), at.join(name).to_str().unwrap()]);
    }
}

/// A root-owned 0600 file holding `keep`, the target of planted links.
fn root_file(at: &Path) -> PathBuf {
    std::fs::write(at, "keep").unwrap();
    std::fs::set_permissions(at, std::fs::Permissions::from_mode(0o600)).unwrap();
    at.to_path_buf()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn observer(args: &[&str], dir: &Path) -> Output {
    let out = Command::new(observer_bin()).args(args).current_dir(dir).output().expect("observer starts");
    eprintln!("observer {args:?} stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn one_line_error(out: &Output, code: i32, says: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
}

/// The run directory a run printed.
fn run_dir_printed(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("observer: run directory: "))
        .expect("the run directory is printed")
        .into()
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn links_planted_in_out_are_never_written_through() {
    let Some(_cpu) = bpf_or_skip("planted links in --out") else {
        return;
    };
    let base = shared_scratch("planted-out");
    let target = root_file(&base.join("root-only"));

    // Planted before the run: the directory is not empty, so it is refused.
    let planted = base.join("planted");
    nobody_dir(&planted, &[("stdout.txt", &target), ("summary.txt", &target)]);
    let out = observe(&planted, &[], &["sh", "-c", "echo overwritten; echo overwritten >&2"]);
    one_line_error(&out, 125, "is not empty");
    assert!(std::fs::symlink_metadata(planted.join("stdout.txt")).unwrap().file_type().is_symlink());

    // Planted while the run writes into an empty directory it was given: replaced, not followed.
    let racing = base.join("racing");
    nobody_dir(&racing, &[]);
    let run = Command::new(observer_bin())
        .args(["run", "--quiet", "--out"])
        .arg(&racing)
        .args(["--", "sh", "-c", "sleep 1.5; echo output"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("events.bin", Duration::from_secs(30), || racing.join("events.bin").exists());
    for name in ["summary.txt", "report.txt", "classification.json"] {
        run_as_nobody(&["ln", "-s", target.to_str().unwrap(), racing.join(name).to_str().unwrap()]);
    }
    let status = run.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    assert_eq!(mode(&target), 0o600);
    for name in ["summary.txt", "report.txt", "classification.json"] {
        assert!(std::fs::symlink_metadata(racing.join(name)).unwrap().is_file(), "{name} is observer's own file");
    }
    assert_eq!(std::fs::read_to_string(racing.join("stdout.txt")).unwrap(), "output\n");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn analyze_replaces_planted_links_and_refuses_a_linked_directory() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped analyze of planted links: planting as another user needs root");
        return;
    }
    let base = shared_scratch("planted-analyze");
    let target = root_file(&base.join("root-only"));
    let input = base.join("strace.txt");
    std::fs::write(&input, "exit_group(0) = ?\n+++ exited with 0 +++\n").unwrap();
    let run = base.join("run");
    let out = observer(&["import-strace", input.to_str().unwrap(), "--out", run.to_str().unwrap()], &base);
    assert_eq!(out.status.code(), Some(0));
    // The run directory handed to its user, who plants links where analyze writes.
    Command::new("chown").args(["-R", &format!("{NOBODY}:{NOBODY}")]).arg(&run).status().unwrap();
    for name in ["report.txt", "classification.json"] {
        run_as_nobody(&["rm", run.join(name).to_str().unwrap()]);
        run_as_nobody(&["ln", "-s", target.to_str().unwrap(), run.join(name).to_str().unwrap()]);
    }
    let out = observer(&["analyze", run.to_str().unwrap()], &base);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    for name in ["report.txt", "classification.json"] {
        assert!(std::fs::symlink_metadata(run.join(name)).unwrap().is_file(), "{name}");
        assert_eq!(mode(&run.join(name)), 0o600, "{name}");
    }

    let link = base.join("link-to-run");
    std::os::unix::fs::symlink(&run, &link).unwrap();
    one_line_error(&observer(&["analyze", link.to_str().unwrap()], &base), 66, "is a symbolic link");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn out_incidents_and_observer_runs_given_as_links_are_refused_with_the_fix() {
    let Some(_cpu) = bpf_or_skip("linked output directories") else {
        return;
    };
    let base = shared_scratch("linked-out");
    let real = base.join("real");
    std::fs::create_dir(&real).unwrap();
    let link = base.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let fix = "is a symbolic link, and observer does not write through links: give the real directory";

    one_line_error(&observer(&["run", "-q", "--out", link.to_str().unwrap(), "--", "true"], &base), 125, fix);
    one_line_error(&observer(&["watch", "--incidents", link.to_str().unwrap()], &base), 125, fix);
    let cwd = base.join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    std::os::unix::fs::symlink(&real, cwd.join("observer-runs")).unwrap();
    one_line_error(&observer(&["run", "-q", "--", "true"], &cwd), 125, fix);
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0, "nothing was written through a link");
    let _ = std::fs::remove_dir_all(&base);
}

/// Every entry under `dir` (itself included) with its mode and group.
fn modes_under(dir: &Path) -> Vec<(PathBuf, u32, u32)> {
    let meta = std::fs::symlink_metadata(dir).unwrap();
    let mut out = vec![(dir.to_path_buf(), meta.permissions().mode() & 0o7777, meta.gid())];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(modes_under(&path));
        } else {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            out.push((path, meta.permissions().mode() & 0o7777, meta.gid()));
        }
    }
    out
}

#[test]
fn run_directories_are_private_unless_a_group_is_given() {
    let Some(_cpu) = bpf_or_skip("run directory modes") else {
        return;
    };
    let base = scratch("modes");
    let private = base.join("private");
    let out = observer(&["run", "-q", "--out", private.to_str().unwrap(), "--", "sh", "-c", "echo hi"], &base);
    assert_eq!(out.status.code(), Some(0));
    let entries = modes_under(&private);
    assert!(entries.len() > 8, "{entries:?}");
    for (path, mode, _) in &entries {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} is {mode:o}", path.display());
    }

    let shared = base.join("shared");
    let out = observer(
        &["run", "-q", "--group", "nogroup", "--out", shared.to_str().unwrap(), "--", "sh", "-c", "echo hi"],
        &base,
    );
    assert_eq!(out.status.code(), Some(0));
    for (path, mode, gid) in modes_under(&shared) {
        let want = if path.is_dir() { 0o750 } else { 0o640 };
        assert_eq!((mode, gid), (want, 65534), "{}", path.display());
    }

    // The default place: observer-runs made private too.
    let out = observer(&["run", "-q", "--", "true"], &base);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(mode(&base.join("observer-runs")), 0o700);
    let latest = std::fs::canonicalize(base.join("observer-runs/latest")).unwrap();
    assert_eq!(mode(&latest), 0o700);

    one_line_error(&observer(&["run", "--group", "no-such-group-x", "--", "true"], &base), 2, "no such group");
}

#[test]
fn secrets_in_the_environment_are_redacted_in_the_preflight() {
    let Some(_cpu) = bpf_or_skip("environment redaction") else {
        return;
    };
    let dir = scratch("redact");
    let out = Command::new(observer_bin())
        .args(["run", "--quiet", "--out"])
        .arg(&dir)
        .args(["--", "true"])
        .env("DATABASE_URL", "postgres://app:hunter2@db/prod")
        .env("MY_PASSWD", "pw2-value")
        .env("PGPASS", "pgpass-value")
        .env("SESSION_COOKIE", "cookie-value")
        .env("API_TOKEN", "token-value")
        .env("CLIENT_SECRET", "secret-value")
        .env("SIGNING_KEY", "key-value")
        .env("PG_DSN", "host=db user=app password=dsn-value")
        .env("PLAIN_SETTING", "visible-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.join("preflight.txt")).unwrap();
    let json = std::fs::read_to_string(dir.join("preflight.json")).unwrap();
    for file in [&text, &json] {
        for secret in [
            "hunter2",
            "pw2-value",
            "pgpass-value",
            "cookie-value",
            "token-value",
            "secret-value",
            "key-value",
            "dsn-value",
        ] {
            assert!(!file.contains(secret), "{secret} leaked:\n{file}");
        }
        assert!(file.contains("visible-value"));
        assert!(file.contains("postgres://<redacted>@db/prod"), "{file}");
    }
    assert!(text.contains("\nMY_PASSWD: <redacted>\n"), "{text}");
}

/// A child killed (and reaped) when the test ends, whether it passes or not.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_incident_of_another_users_process_keeps_environment_names_only() {
    let Some(_cpu) = bpf_or_skip("watch of another uid") else {
        return;
    };
    let base = shared_scratch("watch-uid");
    let incidents = base.join("incidents");
    let mut daemon = Reaped(
        Command::new(observer_bin())
            .args(["watch", "--uid", NOBODY, "--incidents"])
            .arg(&incidents)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = BufReader::new(daemon.0.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            eprintln!("watch: {line}");
            let _ = tx.send(line);
        }
    });
    let started = rx.recv_timeout(Duration::from_secs(60)).expect("watch says it started");
    assert!(started.contains("watching every process"), "{started}");

    // A process of uid 65534 that stops itself: a job-control-stop incident, taken while the
    // process is still there to have its preflight read. A process group of its own, so that it
    // is a tree of its own for the watch.
    let stopped = Reaped(
        as_nobody(&["sh", "-c", "kill -STOP $$; exit 0"])
            .process_group(0)
            .env("VISIBLE_NAME", "value-of-another-user")
            .env("DATABASE_URL", "postgres://app:hunter2@db/prod")
            .spawn()
            .unwrap(),
    );
    let suffix = format!("-job-control-stop-{}", stopped.0.id());
    let mut found = None;
    wait_for("the incident of the stopped process", Duration::from_secs(60), || {
        found = std::fs::read_dir(&incidents)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(&suffix));
        found.is_some()
    });
    drop(stopped);
    // SAFETY: signalling the daemon we started.
    unsafe { libc::kill(daemon.0.id() as i32, libc::SIGINT) };
    let _ = daemon.0.wait();

    let incident = found.unwrap();
    assert_eq!(mode(&incident), 0o700);
    let text = std::fs::read_to_string(incident.join("preflight.txt")).unwrap();
    let json = std::fs::read_to_string(incident.join("preflight.json")).unwrap();
    assert_eq!(mode(&incident.join("preflight.txt")), 0o600);
    for file in [&text, &json] {
        assert!(file.contains("VISIBLE_NAME"), "{file}");
        assert!(!file.contains("value-of-another-user") && !file.contains("hunter2"), "{file}");
    }
    assert!(text.contains("\nVISIBLE_NAME: <not kept>\n"), "{text}");
    assert!(text.contains("# values not kept: the process belongs to uid 65534"), "{text}");
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn a_second_run_into_the_same_out_is_refused_and_the_first_keeps_its_capture() {
    let Some(_cpu) = bpf_or_skip("same --out twice") else {
        return;
    };
    let dir = scratch("same-out");
    let first = Command::new(observer_bin())
        .args(["run", "--quiet", "--out"])
        .arg(&dir)
        .args(["--", "sh", "-c", "echo first; sleep 2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the first run's events.bin", Duration::from_secs(30), || dir.join("events.bin").exists());
    let second = observe(&dir, &[], &["sh", "-c", "echo second"]);
    one_line_error(&second, 125, "is being written by another observer: give another --out");
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("stdout.txt")).unwrap(), "first\n");
    assert_eq!(summary(&dir)["exit"], "code 0");
    assert!(!events(&dir).is_empty());

    // Once it ended, the directory holds a capture: refused too, and left as it was.
    let again = observe(&dir, &[], &["true"]);
    one_line_error(&again, 125, "is not empty");
    assert_eq!(std::fs::read_to_string(dir.join("stdout.txt")).unwrap(), "first\n");
}

#[test]
fn fifty_default_runs_at_once_all_succeed_with_names_of_their_own() {
    let Some(_cpu) = bpf_alone_or_skip("50 concurrent default runs") else {
        return;
    };
    let cwd = scratch("fifty");
    let runs: Vec<_> = (0..50)
        .map(|_| {
            Command::new(observer_bin())
                .args(["run", "--quiet", "--", "true"])
                .current_dir(&cwd)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut dirs = Vec::new();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        dirs.push(run_dir_printed(&out));
    }
    dirs.sort();
    dirs.dedup();
    assert_eq!(dirs.len(), 50, "{dirs:?}");
    let parent = cwd.join("observer-runs");
    let latest = std::fs::read_link(parent.join("latest")).unwrap();
    assert!(dirs.iter().any(|d| Path::new(d).file_name() == Some(latest.as_os_str())), "{latest:?}");
    for dir in &dirs {
        assert_eq!(summary(&cwd.join(dir))["exit"], "code 0");
    }
}

#[test]
fn a_directory_named_latest_does_not_break_a_default_run() {
    let Some(_cpu) = bpf_or_skip("latest as a directory") else {
        return;
    };
    let cwd = scratch("latest-dir");
    std::fs::create_dir_all(cwd.join("observer-runs/latest")).unwrap();
    std::fs::write(cwd.join("observer-runs/latest/mine.txt"), "mine").unwrap();
    let out = observer(&["run", "--quiet", "--", "true"], &cwd);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("latest not updated"), "{stderr}");
    assert_eq!(summary(&cwd.join(run_dir_printed(&out)))["exit"], "code 0");
    assert_eq!(std::fs::read_to_string(cwd.join("observer-runs/latest/mine.txt")).unwrap(), "mine");
}
