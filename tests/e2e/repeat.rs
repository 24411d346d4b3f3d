//! `observer repeat`: attempts until a signature appears, rates over attempts, bounded disk use.
use std::process::Command;

use crate::harness::*;

/// Exits 3 about half of the time: an intermittent failure.
const COIN: &str = "n=$(od -An -N1 -tu1 /dev/urandom); [ $((n % 2)) -eq 0 ] && exit 3; exit 0";

#[test]
fn repeat_stops_at_the_first_hit_and_keeps_only_hits() {
    let Some(_cpu) = bpf_or_skip("repeat until") else {
        return;
    };
    let parent = scratch("repeat-hunt");
    let out = Command::new(observer_bin())
        .args(["repeat", "--until", "exit-nonzero", "--max-attempts", "40", "--keep", "hits", "--out"])
        .arg(&parent)
        .args(["--", "sh", "-c", COIN])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(parent.join("repeat.json")).unwrap()).unwrap();
    let attempts = report["attempts"].as_array().unwrap();
    assert_eq!(report["found"], true);
    let last = attempts.last().unwrap();
    assert_eq!(last["hit"], true);
    assert_eq!(last["exit"], "code 3");
    assert!(attempts[..attempts.len() - 1].iter().all(|a| a["hit"] == false && a["exit"] == "code 0"));
    assert_eq!(
        stderr.lines().filter(|l| l.contains("observer: attempt ")).count(),
        attempts.len(),
        "a progress line per attempt"
    );
    let dirs: Vec<String> = std::fs::read_dir(&parent)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs, vec![format!("attempt-{:03}", attempts.len())], "only the hit is kept");
    let kept = parent.join(&dirs[0]);
    assert!(std::fs::read_to_string(kept.join("classification.json")).unwrap().contains("\"exit-nonzero\""));
    let text = std::fs::read_to_string(parent.join("repeat.txt")).unwrap();
    assert!(text.contains(&format!("exit-nonzero                              1  1/{}", attempts.len())), "{text}");
}

#[test]
fn repeat_without_until_runs_every_attempt_and_gives_rates() {
    let Some(_cpu) = bpf_or_skip("repeat rates") else {
        return;
    };
    let parent = scratch("repeat-rates");
    let out = Command::new(observer_bin())
        .args(["repeat", "--max-attempts", "6", "--out"])
        .arg(&parent)
        .args(["--", "sh", "-c", COIN])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(parent.join("repeat.json")).unwrap()).unwrap();
    assert_eq!(report["attempts"].as_array().unwrap().len(), 6);
    let exits = report["exit_counts"].as_object().unwrap();
    let total: u64 = exits.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 6);
    let nonzero = exits.get("code 3").and_then(|v| v.as_u64()).unwrap_or(0);
    assert_eq!(report["signature_counts"].get("exit-nonzero").and_then(|v| v.as_u64()).unwrap_or(0), nonzero);
    for n in 1..=6 {
        assert!(parent.join(format!("attempt-{n:03}/summary.txt")).exists(), "--keep all keeps attempt {n}");
    }
}

#[test]
fn an_unknown_signature_is_refused_before_the_first_attempt() {
    let parent = scratch("repeat-bad");
    std::fs::remove_dir_all(&parent).unwrap();
    let out = Command::new(observer_bin())
        .args(["repeat", "--until", "clone-eagain,pthread-eagain", "--out"])
        .arg(&parent)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'pthread-eagain' for '--until")
            && stderr.contains("[possible values: pthread-stack-mprotect-enomem,"),
        "{stderr}"
    );
    assert!(!parent.exists(), "nothing ran");
}
