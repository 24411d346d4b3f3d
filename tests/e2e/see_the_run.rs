//! Seeing a run: `report.html` of real runs (a deadlock, a spinning thread, the RLIMIT_DATA demo)
//! opened from a `file://` URL in headless Chromium, checked in the DOM its script built and kept
//! as a screenshot under the test target directory (`artifacts/`); and the same runs exported
//! with `observer export`, the Perfetto trace decoded with Perfetto's own schema.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
};

use observer::{
    analysis::{Classification, Signature},
    decode::signal_name,
    event::Event,
};
use serde_json::Value;

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

/// Exports the run as a Perfetto trace, decodes it with the official schema, and checks it against
/// the capture: one thread track per traced thread, a slice per syscall (balanced, in the right
/// thread), every signal, valid flows from each fork to its child, every finding. Then the same
/// for the Chrome JSON.
fn check_exports(dir: &Path, test: &str) {
    let events = events(dir);
    let traced = traced_threads(dir);
    let mut syscalls: BTreeMap<u32, usize> = BTreeMap::new();
    for e in &events {
        if let Event::Syscall(s) = e {
            *syscalls.entry(s.header.tid).or_default() += 1;
        }
    }
    let signals: Vec<(u32, String)> = events
        .iter()
        .filter_map(|e| match e {
            Event::SignalGenerate(g) => Some((g.target_tid, signal_name(g.sig).unwrap().to_string())),
            _ => None,
        })
        .collect();
    let forks = events.iter().filter(|e| matches!(e, Event::Fork(_))).count();
    let findings = classification(dir).findings.len();

    let trace = dir.join("trace.pftrace");
    let out = Command::new(observer_bin()).arg("export").arg(dir).arg("-o").arg(&trace).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    if let Some(python) = perfetto_python_or_skip(test) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/decode_perfetto.py");
        let decoded = Command::new(python).arg(script).arg(&trace).output().unwrap();
        assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
        let d: Value = serde_json::from_slice(&decoded.stdout).unwrap();
        let threads = d["threads"].as_object().unwrap();
        let tid_of: BTreeMap<&str, u32> =
            threads.iter().map(|(uuid, t)| (uuid.as_str(), t["tid"].as_u64().unwrap() as u32)).collect();
        let tracks: Vec<u32> = tid_of.values().copied().collect();
        assert_eq!(tracks.iter().copied().collect::<BTreeSet<u32>>(), traced, "a thread track per traced thread");
        assert_eq!(tracks.len(), traced.len(), "one track each");
        assert_eq!(d["unbalanced_slices"], 0, "every slice begins before it ends, on its own thread");
        let slices: BTreeMap<u32, usize> = d["slices"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(uuid, list)| (tid_of[uuid.as_str()], list.as_array().unwrap().len()))
            .collect();
        assert_eq!(slices, syscalls, "a slice per syscall, on the thread that made it");
        let instants = d["instants"].as_array().unwrap();
        let on = |i: &Value| tid_of.get(i["track"].as_str().unwrap()).copied();
        for (target, name) in &signals {
            assert!(
                instants
                    .iter()
                    .any(|i| on(i) == Some(*target) && i["name"] == name.as_str() && i["category"][0] == "signal"),
                "{name} to {target} is an instant on its track"
            );
        }
        let flows = d["flows"].as_array().unwrap();
        for flow in flows {
            let (from, to) = (flow["from"].as_array().unwrap(), flow["to"].as_array().unwrap());
            assert_eq!((from.len(), to.len()), (1, 1), "a flow has one start and one end: {flow}");
            assert!(from[0][1].as_u64() <= to[0][1].as_u64(), "a flow goes forward in time: {flow}");
            assert!(
                tid_of.contains_key(from[0][0].as_str().unwrap()) && tid_of.contains_key(to[0][0].as_str().unwrap())
            );
        }
        assert!(flows.len() >= forks, "a flow from each fork to its child: {} < {forks}", flows.len());
        let annotated = instants.iter().filter(|i| i["category"][0] == "finding").count();
        assert_eq!(annotated, findings, "every finding is an annotation");
        assert_eq!(d["sequence_ids"], serde_json::json!([1]));
    }

    let json_path = dir.join("trace.json");
    let out = Command::new(observer_bin())
        .args(["export", "--format", "chrome-json", "-o"])
        .arg(&json_path)
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let chrome: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).expect("valid JSON");
    let events = chrome["traceEvents"].as_array().unwrap();
    let of = |ph: &'static str| events.iter().filter(move |e| e["ph"] == ph);
    assert_eq!(of("X").filter(|e| e["cat"] == "syscall").count(), syscalls.values().sum::<usize>());
    let named: BTreeSet<u32> =
        of("M").filter(|e| e["name"] == "thread_name").map(|e| e["tid"].as_u64().unwrap() as u32).collect();
    assert_eq!(named, traced, "every thread is named");
    let starts: BTreeSet<u64> = of("s").map(|e| e["id"].as_u64().unwrap()).collect();
    let ends: BTreeSet<u64> = of("f").map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(starts, ends, "every flow starts and ends");
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
    check_exports(&dir, "export of a deadlock");
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
    check_exports(&dir, "export of a spin");
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
    check_exports(&dir, "export of the demo");
}
