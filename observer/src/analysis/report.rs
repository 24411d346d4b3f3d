//! `classification.json` (for programs) and `report.txt` (for people) from a classification.
use std::io;

use super::{Classification, Severity};
use crate::decode::escape_controls;
use crate::out_dir::OutDir;

pub const CLASSIFICATION_JSON: &str = "classification.json";
pub const REPORT_TXT: &str = "report.txt";

pub fn to_json(c: &Classification) -> String {
    crate::rundir::json_text(c).expect("findings serialize")
}

/// The verdict: the root cause and what followed from it, or that nothing went wrong.
pub fn verdict(c: &Classification) -> String {
    let root = c.verdict.as_ref().and_then(|v| c.findings.iter().find(|f| f.id == v.root).map(|f| (v, f)));
    match (root, c.findings.first()) {
        (Some((v, f)), _) => format!("{} [{}] {}", v.severity.as_str(), f.signature, escape_controls(&v.text)),
        // A schema 1 classification: the most severe finding.
        (None, Some(f)) if c.verdict.is_none() && f.severity > Severity::Info && f.id.is_empty() => {
            format!("{} [{}] {}", f.severity.as_str(), f.signature, escape_controls(&f.summary))
        }
        (None, Some(_)) => "no failure found (informational findings below)".into(),
        (None, None) => "no failure found".into(),
    }
}

/// One line per finding, as printed when a run ends.
pub fn finding_lines(c: &Classification) -> Vec<String> {
    c.findings
        .iter()
        .map(|f| {
            let summary = escape_controls(&f.summary);
            format!("{} [{}] pid {} tid {}: {summary}", f.severity.as_str(), f.signature, f.pid, f.tid)
        })
        .collect()
}

pub fn to_text(c: &Classification) -> String {
    let mut out = format!("verdict: {}\n", verdict(c));
    for (i, f) in c.findings.iter().enumerate() {
        let id = if f.id.is_empty() { format!("{}.", i + 1) } else { format!("{}.", f.id) };
        out.push_str(&format!(
            "\n{id} {} [{}] pid {} tid {}\n   {}\n",
            f.severity.as_str(),
            f.signature,
            f.pid,
            f.tid,
            escape_controls(&f.summary)
        ));
        if !f.caused_by.is_empty() {
            out.push_str(&format!("   caused by: {}\n", f.caused_by.join(", ")));
        }
        if let Some(w) = &f.workload {
            out.push_str(&format!("   in: {} (cgroup {})\n", w.describe(), w.cgroup));
        }
        if !f.evidence.is_empty() {
            out.push_str("   evidence:\n");
            for e in &f.evidence {
                out.push_str(&format!("     {}\n", escape_controls(&e.to_line())));
            }
        }
    }
    out
}

pub fn write(c: &Classification, dir: &OutDir) -> io::Result<()> {
    dir.write(CLASSIFICATION_JSON, to_json(c))?;
    dir.write(REPORT_TXT, to_text(c))
}
