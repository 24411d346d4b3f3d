//! Seeing a run: `report.html` of real runs (a deadlock, a spinning thread, the RLIMIT_DATA demo)
//! opened from a `file://` URL in headless Chromium, checked in the DOM its script built and kept
//! as a screenshot under the test target directory (`artifacts/`).
use std::{collections::BTreeSet, path::Path};

use observer::analysis::{Classification, Signature};

use crate::harness::*;

fn classification(dir: &Path) -> Classification {
    serde_json::from_str(&std::fs::read_to_string(dir.join("classification.json")).unwrap()).unwrap()
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The `data-tid` of every lane, in page order, with whether it is one of the chain's.
fn lanes(dom: &str) -> Vec<(u32, bool)> {
    dom.split("<div class=\"lane")
        .skip(1)
        .filter(|rest| rest.starts_with(['"', ' ']))
        .map(|rest| {
            let tag = &rest[..rest.find('>').unwrap()];
            let tid = tag.split("data-tid=\"").nth(1).and_then(|t| t.split('"').next()).unwrap();
            (tid.parse().unwrap(), tag.starts_with(" chain"))
        })
        .collect()
}

/// The marks of one kind: the text of their `<title>` (the trace lines they stand for).
fn marks<'a>(dom: &'a str, kind: &str) -> Vec<&'a str> {
    dom.split(&format!("class=\"mark mark-{kind}\""))
        .skip(1)
        .map(|rest| rest.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap())
        .collect()
}

/// Opens the run's report.html and checks what every page must show: the verdict at the top, one
/// lane per traced thread, no script error.
fn open_report(chromium: &Path, dir: &Path, name: &str) -> RenderedPage {
    let page = render_page(chromium, &dir.join("report.html"), &artifact(&format!("report-{name}.png")));
    eprintln!("screenshot of {name}: {}", page.screenshot.display());
    assert!(page.console.is_empty(), "console messages: {:#?}", page.console);
    assert!(page.dom.contains("<div id=\"page-errors\" hidden=\"\"></div>"), "the page reported an error");
    let c = classification(dir);
    let verdict = page.dom.split("<section id=\"verdict\">").nth(1).expect("a verdict section");
    if let Some(v) = &c.verdict {
        let root = c.findings.iter().find(|f| f.id == v.root).unwrap();
        assert!(verdict.starts_with(&format!("<div class=\"verdict sev-{}\">", v.severity.as_str())), "{verdict}");
        let head = &verdict[..verdict.find("</section>").unwrap()];
        assert!(head.contains(root.signature.name()) && head.contains(&html_escape(&v.text)), "{head}");
    }
    let shown: Vec<u32> = lanes(&page.dom).iter().map(|l| l.0).collect();
    let unique: BTreeSet<u32> = shown.iter().copied().collect();
    assert_eq!(unique.len(), shown.len(), "one lane per thread: {shown:?}");
    assert_eq!(unique, traced_threads(dir), "a lane for every traced thread");
    page
}

#[test]
fn the_report_of_a_deadlock_shows_both_threads_first_and_the_snapshot() {
    let Some(chromium) = runtime_or_skip("report of a deadlock", "chromium") else { return };
    let Some(_cpu) = bpf_or_skip("report of a deadlock") else { return };
    let dir = scratch("see-abba");
    observe(&dir, &["--hang-after", "2", "--timeout", "60"], &[workload("abba").to_str().unwrap()]);
    let c = classification(&dir);
    assert_eq!(c.findings[0].signature, Signature::Deadlock);
    let page = open_report(&chromium, &dir, "deadlock");
    let lanes = lanes(&page.dom);
    let pid: u32 = summary(&dir)["pid"].parse().unwrap();
    let workers: BTreeSet<u32> = traced_threads(&dir).into_iter().filter(|&t| t != pid).collect();
    assert_eq!(workers.len(), 2);
    let first_two: BTreeSet<u32> = lanes[..2].iter().map(|l| l.0).collect();
    assert_eq!(first_two, workers, "the deadlocked threads come first: {lanes:?}");
    assert!(lanes[..2].iter().all(|l| l.1), "and are marked as the chain: {lanes:?}");
    let table = page.dom.split("<table class=\"stuck\">").nth(1).expect("the stuck snapshot as a table");
    for tid in &workers {
        assert!(table.contains(&format!("<tr data-tid=\"{tid}\" class=\"chain\"")), "{tid} in {table}");
    }
    assert!(table.contains("FUTEX_WAIT_PRIVATE") && table.contains("mutex 0x"), "{table}");
    assert!(!marks(&page.dom, "signal").is_empty(), "the SIGTERM that stopped it is a mark");
    assert!(page.dom.contains("\"window\":[") && page.dom.contains("\"snapshot\":"), "the watchdog window is shaded");
}

#[test]
fn the_report_of_a_spinning_thread_has_its_flame_graph() {
    let Some(chromium) = runtime_or_skip("report of a spin", "chromium") else { return };
    let Some(_cpu) = bpf_alone_or_skip("report of a spin") else { return };
    let dir = scratch("see-spin");
    observe(&dir, &["--hang-after", "2", "--timeout", "60"], &[workload("spin_named").to_str().unwrap()]);
    let page = open_report(&chromium, &dir, "spin");
    let c = classification(&dir);
    let spin = c.findings.iter().find(|f| f.signature == Signature::HangSpinning).expect("a spinning thread");
    let flames = page.dom.split("<section id=\"flames\">").nth(1).expect("a flame graph section");
    assert!(flames.contains(&format!("thread {} (", spin.tid)), "{flames}");
    assert!(flames.contains("<title>spin_forever_in_named_function: "), "{flames}");
    assert_eq!(lanes(&page.dom)[0], (spin.tid, true), "the spinning thread first");
}

#[test]
fn the_report_of_the_data_limit_demo_marks_the_failed_mprotect() {
    let Some(chromium) = runtime_or_skip("report of the demo", "chromium") else { return };
    let Some(_cpu) = bpf_or_skip("report of the demo") else { return };
    let dir = scratch("see-data");
    observe(&dir, &[], &["prlimit", "--data=41943040", workload("threads").to_str().unwrap(), "8"]);
    let page = open_report(&chromium, &dir, "data-limit");
    let failures = marks(&page.dom, "failure");
    assert!(
        failures.iter().any(|t| t.contains("mprotect(") && t.contains("= -1 ENOMEM (Cannot allocate memory)")),
        "{failures:#?}"
    );
    assert!(
        marks(&page.dom, "limit").iter().any(|t| t.contains("prlimit64(0, RLIMIT_DATA, {rlim_cur=41943040")),
        "the limit change is a mark"
    );
    let pid: u32 = summary(&dir)["pid"].parse().unwrap();
    assert_eq!(lanes(&page.dom)[0], (pid, true), "the failing thread first");
    // `analyze` writes the same page again.
    let before = std::fs::read(dir.join("report.html")).unwrap();
    std::fs::remove_file(dir.join("report.html")).unwrap();
    let out = std::process::Command::new(observer_bin()).arg("analyze").arg(&dir).output().unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read(dir.join("report.html")).unwrap(), before);
}
