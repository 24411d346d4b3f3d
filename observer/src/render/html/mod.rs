//! `report.html`: a run (or incident) for people, in one self-contained file that any browser opens
//! from disk: the verdict and its chain, each finding with its evidence, a zoomable timeline with a
//! lane per thread ([`timeline`], drawn by the inline `report.js`), the stuck snapshot as a table
//! and flame graphs of sampled threads ([`flame`]). No network, no external script or font.
pub mod flame;
pub mod timeline;

use std::{io, path::Path};

use serde_json::{Map, Value};

use crate::{
    analysis::{
        snapshot::{StuckSnapshot, ThreadSnapshot},
        Classification, Finding, Severity,
    },
    eventlog::LogHeader,
    out_dir::OutDir,
    processes::ProcessBook,
    render::lanes::chain_threads,
    source::{for_each_event, FileSource},
};
use timeline::{Timeline, TimelineBuilder};

pub const REPORT_HTML: &str = "report.html";

const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");

/// Text made safe for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Passes JSON on so that it can sit inside a `<script>` element: every `<` escaped (`\u003c`,
/// the same string to a JSON reader), so none can close the element or open a comment.
struct ScriptSafe<W>(W);

impl<W: io::Write> io::Write for ScriptSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // `<` is ASCII: its byte never occurs inside another character's UTF-8.
        let mut rest = buf;
        while let Some(at) = rest.iter().position(|&b| b == b'<') {
            self.0.write_all(&rest[..at])?;
            self.0.write_all(b"\\u003c")?;
            rest = &rest[at + 1..];
        }
        self.0.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The verdict's chain: its root cause, then the consequences in the order they happened. Empty
/// when nothing went wrong. (A schema 1 classification has no links: its most severe finding.)
pub fn chain(c: &Classification) -> Vec<&Finding> {
    let by_id = |id: &String| c.findings.iter().find(|f| &f.id == id);
    match &c.verdict {
        Some(v) => std::iter::once(&v.root).chain(&v.consequences).filter_map(by_id).collect(),
        None => c.findings.iter().take(1).filter(|f| f.severity > Severity::Info && f.id.is_empty()).collect(),
    }
}

/// Writes `report.html` into the run directory `dir`, drawing the timeline from `events` (its
/// `events.bin`, when there is one) and the facts from its `summary.json`.
pub fn write(
    dir: &OutDir,
    events: &Path,
    classification: &Classification,
    stuck: Option<&StuckSnapshot>,
) -> io::Result<()> {
    match collect_timeline(events)? {
        Some((builder, book, header)) => {
            write_collected(dir, Some(Collected { builder, book: &book, header: &header }), classification, stuck)
        }
        None => write_collected(dir, None, classification, stuck),
    }
}

/// A timeline gathered while some other pass read the event log (`observer analyze` builds it in
/// its analysis pass rather than reading `events.bin` twice), with what finishing it needs.
pub struct Collected<'a> {
    pub builder: TimelineBuilder,
    /// The process book of the same pass, after the last event.
    pub book: &'a ProcessBook,
    pub header: &'a LogHeader,
}

/// As [`write`], with the timeline already collected (`None`: the capture has no event log).
pub fn write_collected(
    dir: &OutDir,
    collected: Option<Collected<'_>>,
    classification: &Classification,
    stuck: Option<&StuckSnapshot>,
) -> io::Result<()> {
    let chain_tids = chain_threads(&chain(classification), stuck);
    let timeline = collected.map(|c| c.builder.finish(c.book, c.header, stuck, &chain_tids));
    let summary: Option<Map<String, Value>> = dir
        .read(crate::rundir::SUMMARY_JSON)
        .ok()
        .and_then(|file| serde_json::from_reader(io::BufReader::new(file)).ok());
    dir.write_with(REPORT_HTML, |out| page(out, classification, stuck, summary.as_ref(), timeline.as_ref()))
}

/// The timeline builder of an event log after reading it whole, with the pass's process book and
/// the log's header; `None` when there is no event log.
fn collect_timeline(path: &Path) -> io::Result<Option<(TimelineBuilder, ProcessBook, LogHeader)>> {
    if !path.exists() {
        return Ok(None);
    }
    let mut source = FileSource::open(path).map_err(io::Error::other)?;
    let header = source.header().clone();
    let mut book = ProcessBook::default();
    crate::analysis::seed_book(&mut book, &header);
    let mut builder = TimelineBuilder::default();
    for_each_event(&mut source, |event| {
        book.observe(event);
        builder.observe(event, &book);
    })
    .map_err(io::Error::other)?;
    Ok(Some((builder, book, header)))
}

fn fact(out: &mut String, summary: Option<&Map<String, Value>>, key: &str, label: &str) {
    let Some(value) = summary.and_then(|s| s.get(key)) else { return };
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", escape(label), escape(&text)));
}

fn header(out: &mut String, summary: Option<&Map<String, Value>>, timeline: Option<&Timeline>) {
    let command =
        summary.and_then(|s| s.get("command").or_else(|| s.get("comm"))).and_then(Value::as_str).unwrap_or("capture");
    out.push_str(&format!(
        "<header><h1>observer <span class=\"cmd\">{}</span></h1><dl class=\"facts\">",
        escape(command)
    ));
    for (key, label) in [
        ("incident", "incident"),
        ("started_at", "started"),
        ("time", "time"),
        ("duration_s", "duration (s)"),
        ("pid", "pid"),
        ("container.runtime", "runtime"),
        ("container.id", "container"),
        ("pod.uid", "pod"),
        ("pod.qos_class", "QoS"),
        ("systemd_unit", "unit"),
        ("exit", "exit"),
        ("stopped_by", "stopped by"),
        ("stuck_snapshot", "stuck snapshot"),
        ("events_written", "events"),
        ("events_dropped", "events dropped"),
        ("source", "source"),
    ] {
        fact(out, summary, key, label);
    }
    if let Some(t) = timeline {
        out.push_str(&format!(
            "<dt>threads</dt><dd>{}</dd>",
            t.processes.iter().map(|p| p.threads.len()).sum::<usize>()
        ));
    }
    out.push_str("</dl></header>");
}

fn severity_badge(s: Severity) -> String {
    format!("<span class=\"sev sev-{0}\">{0}</span>", s.as_str())
}

fn finding_head(f: &Finding) -> String {
    let id =
        if f.id.is_empty() { String::new() } else { format!("<a class=\"fid\" href=\"#{0}\">{0}</a> ", escape(&f.id)) };
    format!(
        "{id}{} <span class=\"sig\">{}</span> <span class=\"ids\">pid {} tid {}</span>",
        severity_badge(f.severity),
        f.signature,
        f.pid,
        f.tid
    )
}

fn verdict(out: &mut String, c: &Classification) {
    let chain = chain(c);
    out.push_str("<section id=\"verdict\">");
    match chain.first() {
        Some(root) => {
            let (severity, text) =
                c.verdict.as_ref().map_or((root.severity, root.summary.as_str()), |v| (v.severity, v.text.as_str()));
            out.push_str(&format!(
                "<div class=\"verdict sev-{}\"><div class=\"verdict-head\">Verdict: {} <span class=\"sig\">{}</span></div><p class=\"verdict-text\">{}</p></div>",
                severity.as_str(),
                severity_badge(severity),
                root.signature,
                escape(text)
            ));
            if chain.len() > 1 {
                out.push_str("<ol class=\"chain-list\">");
                for (i, f) in chain.iter().enumerate() {
                    let step = if i == 0 { "root cause" } else { "then" };
                    out.push_str(&format!(
                        "<li><span class=\"because\">{step}</span> {} {}</li>",
                        finding_head(f),
                        escape(&f.summary)
                    ));
                }
                out.push_str("</ol>");
            }
        }
        None => out.push_str(&format!(
            "<div class=\"verdict sev-ok\"><div class=\"verdict-head\">Verdict: {}</div></div>",
            escape(&crate::analysis::report::verdict(c))
        )),
    }
    out.push_str("</section>");
}

fn findings(out: &mut String, c: &Classification, origin_boot_ns: Option<u64>) {
    if c.findings.is_empty() {
        return;
    }
    out.push_str(&format!("<section id=\"findings\"><h2>Findings ({})</h2>", c.findings.len()));
    for (i, f) in c.findings.iter().enumerate() {
        let caused_by: Vec<String> =
            f.caused_by.iter().map(|id| format!("<a class=\"fid\" href=\"#{0}\">{0}</a>", escape(id))).collect();
        let caused_by = if caused_by.is_empty() {
            String::new()
        } else {
            format!(" <span class=\"because\">caused by</span> {}", caused_by.join(", "))
        };
        let anchor = if f.id.is_empty() { String::new() } else { format!(" id=\"{}\"", escape(&f.id)) };
        out.push_str(&format!(
            "<details class=\"finding\"{anchor}{}><summary>{} <span class=\"summary\">{}</span>{caused_by}</summary>",
            if i == 0 { " open" } else { "" },
            finding_head(f),
            escape(&f.summary)
        ));
        if let Some(w) = &f.workload {
            out.push_str(&format!(
                "<p class=\"workload\">in {} <span class=\"ids\">(cgroup {})</span></p>",
                escape(&w.describe()),
                escape(&w.cgroup)
            ));
        }
        if !f.evidence.is_empty() {
            out.push_str("<ul class=\"evidence\">");
            for e in &f.evidence {
                let at = match (e.ts_ns, origin_boot_ns) {
                    (Some(ts), Some(origin)) => format!(" data-t=\"{}\"", ts.saturating_sub(origin)),
                    _ => String::new(),
                };
                let tid = e.tid.map_or(String::new(), |t| format!(" data-tid=\"{t}\""));
                let when = match (&e.time, e.tid) {
                    (Some(time), Some(tid)) => format!("<span class=\"when\">{} [tid {tid}]</span> ", escape(time)),
                    _ => format!("<span class=\"when\">{}:</span> ", escape(&e.source)),
                };
                out.push_str(&format!("<li{at}{tid}>{when}<code>{}</code></li>", escape(&e.text)));
            }
            out.push_str("</ul>");
        }
        out.push_str("</details>");
    }
    out.push_str("</section>");
}

fn waiting_on(t: &ThreadSnapshot) -> String {
    let mut parts = Vec::new();
    if let Some(f) = &t.futex {
        parts.push(match (f.owner_tid, f.joining_tid) {
            (Some(owner), _) => format!("mutex {:#x} held by thread {owner}", f.addr),
            (None, Some(joined)) => format!("joining thread {joined}"),
            _ => format!("futex {:#x} (no owner recorded)", f.addr),
        });
    }
    if let Some(w) = &t.child_wait {
        let children: Vec<String> = w.children.iter().map(|c| format!("{} ({}) {}", c.pid, c.comm, c.state)).collect();
        parts.push(format!("{}: {}", w.waits_for, children.join(", ")));
    }
    for fd in &t.fds {
        let note = if fd.note.is_empty() { String::new() } else { format!(": {}", fd.note) };
        parts.push(format!("fd {} {}{note}", fd.fd, fd.kind));
    }
    parts.join("; ")
}

fn stuck_table(out: &mut String, stuck: &StuckSnapshot, chain: &[u32]) {
    out.push_str(&format!(
        "<section id=\"stuck\"><h2>Stuck snapshot</h2><p class=\"note\">taken {} — {}; CPU over the last {:.1}s, {} syscalls completed in that window</p>",
        escape(&stuck.taken_at),
        escape(&stuck.reason),
        stuck.window_s,
        stuck.syscalls_in_window
    ));
    out.push_str("<table class=\"stuck\"><thead><tr><th>process</th><th>thread</th><th>state</th><th>CPU</th><th>call</th><th>for</th><th>waiting on</th><th>where</th></tr></thead><tbody>");
    for (p, t) in stuck.threads() {
        let call = t.syscall.as_ref().map_or(String::new(), |c| c.text.clone());
        let age = t.syscall.as_ref().and_then(|c| c.blocked_s).map_or(String::new(), |s| format!("{s:.3}s"));
        let site = t
            .user_frames
            .iter()
            .find(|f| !f.contains("libc.so"))
            .or(t.user_frames.first())
            .cloned()
            .or_else(|| t.samples.first().map(|(f, _)| format!("on CPU in {f}")))
            .unwrap_or_default();
        out.push_str(&format!(
            "<tr data-tid=\"{}\"{}><td>{} ({})</td><td>{} ({})</td><td class=\"state\">{} {}</td><td>{:.0}%</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t.tid,
            if chain.contains(&t.tid) { " class=\"chain\"" } else { "" },
            p.pid,
            escape(&p.comm),
            t.tid,
            escape(&t.comm),
            t.state,
            escape(&t.wchan),
            t.cpu_share * 100.0,
            escape(&call),
            age,
            escape(&waiting_on(t)),
            escape(&site)
        ));
    }
    out.push_str("</tbody></table></section>");
}

/// A thread's samples as folded stacks (`outer;inner;leaf`): its unwound call chains when there
/// are, else the functions its samples landed in.
fn folded_samples(t: &ThreadSnapshot) -> Vec<(String, u32)> {
    if t.stacks.is_empty() {
        return t.samples.clone();
    }
    t.stacks
        .iter()
        .map(|s| {
            let frames: Vec<String> = s.frames.iter().rev().map(|f| f.replace(';', ":")).collect();
            (frames.join(";"), s.count)
        })
        .collect()
}

fn flames(out: &mut String, stuck: &StuckSnapshot) {
    let graphs: Vec<String> = stuck
        .threads()
        .filter(|(_, t)| !t.samples.is_empty() || !t.stacks.is_empty())
        .map(|(p, t)| {
            let title = format!("thread {} ({}) of pid {}", t.tid, t.comm, p.pid);
            let svg = flame::svg(&title, &folded_samples(t));
            format!("<figure><figcaption>{}</figcaption>{svg}</figure>", escape(&title))
        })
        .collect();
    if graphs.is_empty() {
        return;
    }
    out.push_str(&format!(
        "<section id=\"flames\"><h2>Where the spinning threads are</h2><p class=\"note\">Samples of each thread on CPU (99 Hz for one second), by call chain, callers above callees; hover a box for its count. The same chains are in <a href=\"{}\">{}</a> (interactive) and <code>{}</code>.</p>",
        crate::render::flame::FLAMEGRAPH,
        crate::render::flame::FLAMEGRAPH,
        crate::render::flame::FOLDED
    ));
    for g in graphs {
        out.push_str(&g);
    }
    out.push_str("</section>");
}

/// Writes the timeline's section: its notes and controls, then its data streamed as JSON (the
/// largest part of the page by far, never held as text).
fn timeline_section(out: &mut dyn io::Write, timeline: &Timeline) -> io::Result<()> {
    let dropped = if timeline.bars_dropped > 0 || timeline.marks_dropped > 0 {
        format!(
            " The {} shortest calls are not drawn one by one (the shading under each lane counts every call); {} marks beyond the page's bound are left out.",
            timeline.bars_dropped, timeline.marks_dropped
        )
    } else {
        String::new()
    };
    let order = if timeline.order_only {
        " This capture has no timestamps: positions only show the order of events."
    } else {
        ""
    };
    write!(
        out,
        "<section id=\"timeline\"><h2>Timeline</h2><p class=\"note\">One lane per thread, grouped by process; the verdict's threads first. Bars are calls as long as they took; marks are failures, signals, fork/exec/exit and limit changes. Wheel to zoom, drag to pan, hover for the trace line.{order}{dropped}</p>\
<div class=\"tl-controls\"><button data-zoom=\"all\">whole run</button><button data-zoom=\"window\">snapshot window</button><button data-zoom=\"in\">zoom in</button><button data-zoom=\"out\">zoom out</button><span class=\"tl-range\"></span></div>\
<div class=\"legend\"><span class=\"lg bar-wait\">waiting call</span><span class=\"lg bar-call\">other call</span><span class=\"lg bar-failed\">failed call</span><span class=\"lg bar-cut\">interrupted / cut off</span><span class=\"lg bar-cpu\">on CPU, no syscalls</span><span class=\"lg mk-failure\">failure</span><span class=\"lg mk-signal\">signal</span><span class=\"lg mk-fork\">fork</span><span class=\"lg mk-exec\">exec</span><span class=\"lg mk-exit\">exit</span><span class=\"lg mk-limit\">limit set</span><span class=\"lg mk-cgroup\">cgroup move</span><span class=\"lg shade-window\">watchdog window</span><span class=\"lg shade-snapshot\">snapshot</span></div>\
<div class=\"tl\"><div class=\"tl-axis-row\"><div class=\"tl-corner\"></div><canvas class=\"tl-axis\"></canvas></div><div class=\"tl-body\"></div></div>\
<script type=\"application/json\" id=\"timeline-data\">"
    )?;
    serde_json::to_writer(ScriptSafe(&mut *out), timeline)?;
    out.write_all(b"</script></section>")
}

/// Writes the whole page to `page_out`.
fn page(
    page_out: &mut dyn io::Write,
    c: &Classification,
    stuck: Option<&StuckSnapshot>,
    summary: Option<&Map<String, Value>>,
    timeline: Option<&Timeline>,
) -> io::Result<()> {
    let title = crate::analysis::report::verdict(c);
    let mut out = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>observer: {}</title><style>{STYLE}</style></head><body>",
        escape(&title)
    );
    header(&mut out, summary, timeline);
    out.push_str("<div id=\"page-errors\" hidden></div>");
    verdict(&mut out, c);
    let origin = timeline.map(|t| t.origin);
    findings(&mut out, c, origin);
    if let Some(t) = timeline {
        page_out.write_all(out.as_bytes())?;
        out.clear();
        timeline_section(page_out, t)?;
    }
    let chain_tids = chain_threads(&chain(c), stuck);
    if let Some(s) = stuck {
        stuck_table(&mut out, s, &chain_tids);
        flames(&mut out, s);
    }
    out.push_str(&format!(
        "<footer>written by observer {} from this directory's events.bin; <code>observer analyze</code> writes it again.</footer><script>{SCRIPT}</script></body></html>\n",
        env!("CARGO_PKG_VERSION")
    ));
    page_out.write_all(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn json_streamed_into_a_script_element_has_no_angle_bracket_and_reads_back_the_same() {
        let value = serde_json::json!({ "texts": ["execve(\"</script><!--x\", ...) = 0", "é<ü", "<", ""] });
        let mut out = Vec::new();
        // Bytes handed over one at a time and in one piece must come out alike.
        let mut safe = ScriptSafe(&mut out);
        for byte in serde_json::to_vec(&value).unwrap() {
            safe.write_all(&[byte]).unwrap();
        }
        serde_json::to_writer(ScriptSafe(&mut out), &value).unwrap();
        let text = String::from_utf8(out).unwrap();
        let (one_by_one, whole) = text.split_at(text.len() / 2);
        assert_eq!(one_by_one, whole);
        assert!(!whole.contains('<'), "{whole}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(whole).unwrap(), value);
    }
}
