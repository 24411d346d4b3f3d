//! Golden captures: real runs checked in under tests/data/<case>/ (made by regenerate.sh). Analysing
//! each must give exactly the classification.json and report.txt checked in beside it, so a change
//! to a classifier shows up as a reviewed diff of expected output. Needs no privileges.
use std::path::Path;

fn check(case: &str) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data").join(case);
    let dir = tempfile::tempdir().unwrap();
    for file in ["events.bin", "preflight.json"] {
        std::fs::copy(data.join(file), dir.path().join(file)).unwrap_or_else(|e| panic!("{case}/{file}: {e}"));
    }
    let analysis = observer::offline::analyze(dir.path()).unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_eq!(analysis.skipped_tail, 0);
    for file in ["classification.json", "report.txt"] {
        let expected = std::fs::read_to_string(data.join(file)).unwrap();
        let actual = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_eq!(actual, expected, "{case}/{file} differs from the golden copy");
    }
}

#[test]
fn golden_data_limit() {
    check("data-limit");
}

#[test]
fn golden_as_limit() {
    check("as-limit");
}

#[test]
fn golden_pids_cgroup() {
    check("pids-cgroup");
}

#[test]
fn golden_va_probe() {
    check("va-probe");
}

#[test]
fn golden_segfault() {
    check("segfault");
}

#[test]
fn golden_exit_nonzero() {
    check("exit-nonzero");
}

#[test]
fn golden_sibling_kill() {
    check("sibling-kill");
}

#[test]
fn every_golden_case_has_a_test() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data");
    let mut cases: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    let source = include_str!("golden.rs");
    for case in cases {
        assert!(source.contains(&format!("check(\"{case}\")")), "tests/data/{case} has no golden test");
    }
}
