//! Bad input and a hostile environment give one clear line and a documented exit code.
use std::process::Command;

use crate::harness::*;

#[test]
fn an_unknown_command_is_exit_127_with_one_line() {
    let dir = scratch("notfound");
    let out = observe(&dir, &[], &["no-such-program-xyz"]);
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim(), "observer: command not found: no-such-program-xyz (not a path and not in $PATH)");
}

#[test]
fn a_bad_buffer_size_is_refused_before_anything_runs() {
    let dir = scratch("badbuf");
    let out = observe(&dir, &["--buffer-size", "1000"], &["true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("power of two"));
    assert!(!dir.join("events.bin").exists());
}

#[test]
fn without_privileges_observer_says_to_use_root() {
    let Some(_cpu) = bpf_or_skip("unprivileged") else {
        return;
    };
    // Drop to nobody with no capabilities; the binary stays readable.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"])
        .arg(observer_bin())
        .args(["run", "--out", "/tmp/observer-unprivileged-test", "--", "true"])
        .output()
        .expect("setpriv runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("run it with sudo"), "{stderr}");
}
