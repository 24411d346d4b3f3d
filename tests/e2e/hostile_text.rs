//! Names a program chooses (an exec path with a newline, an escape sequence) and strace input
//! with terminal escapes reach observer's text output escaped the way strace escapes strings: one
//! event is one line, and nothing reaches a terminal as a control sequence.
use std::{path::Path, process::Command};

use crate::harness::*;

/// Every text file of a run directory: no raw ESC, and each trace line starts with its time.
fn assert_clean_text(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".txt") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert!(!text.contains('\x1b'), "{name} holds a raw ESC:\n{text}");
        if name.starts_with("trace.") {
            for line in text.lines() {
                let time = line.split(' ').next().unwrap_or_default();
                assert!(
                    time.len() == 15 && time.as_bytes()[2] == b':',
                    "{name}: a line that is not an event: {line:?}"
                );
            }
        }
    }
}

#[test]
fn an_exec_path_with_a_newline_and_an_escape_sequence_cannot_forge_a_trace_line() {
    let Some(_cpu) = bpf_or_skip("hostile-exec") else {
        return;
    };
    let dir = scratch("hostile-exec");
    let program = dir.join("a\n12:00:00.000000 forged\x1b[31m");
    std::fs::copy("/bin/true", &program).unwrap();
    let run = dir.join("run");
    let out = observe(&run, &[], &["sh", "-c", "exec \"$0\"", program.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert_clean_text(&run);
    let pid: u32 = summary(&run)["pid"].parse().unwrap();
    let trace = trace(&run, pid);
    assert!(trace.contains("a\\n12:00:00.000000 forged\\33[31m"), "{trace}");
}

#[test]
fn strace_input_with_escapes_is_echoed_and_rendered_escaped() {
    let dir = scratch("hostile-strace");
    let input = dir.join("trace.txt");
    std::fs::write(
        &input,
        "100 execve(\"/tmp/a\\nb\\33[2J\", [\"x\"], 0x7ffd /* 1 var */) = 0\n\
         100 \x1b[2J\x1b]0;pwned\x07 not strace\n\
         100 exit_group(0)                     = ?\n\
         100 +++ exited with 0 +++\n",
    )
    .unwrap();
    let run = dir.join("run");
    let out = Command::new(observer_bin()).arg("import-strace").arg(&input).arg("--out").arg(&run).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("not understood") && stderr.contains("\\33[2J\\33]0;pwned\\7"), "{stderr}");
    assert!(!stderr.contains('\x1b') && !String::from_utf8_lossy(&out.stdout).contains('\x1b'));
    assert_clean_text(&run);
    let trace = trace(&run, 100);
    assert!(trace.contains("+++ exec /tmp/a\\nb\\33[2J as"), "{trace}");
}
