//! The shape of a diagnosis: findings with a severity, a one-line summary and the evidence
//! (events and snapshot facts) behind them; `classification.json` is their serialisation.
pub use observer_common::Signature;
use serde::{Deserialize, Serialize};

use super::causes::Verdict;
use crate::{event::Event, processes::ProcessBook, render};

/// 2: findings carry `id` and `caused_by`, and the classification its `verdict`. Schema 1 files
/// (without them) still read.
pub const CLASSIFICATION_SCHEMA: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Fatal,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Fatal => "fatal",
        }
    }
}

/// One fact behind a finding: an event of the capture, or a fact from a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// `event`, `preflight` or `capture` (a fact derived from the whole capture).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<u32>,
    pub text: String,
}

impl Evidence {
    pub fn event(event: &Event, book: &ProcessBook, boot_to_wall_ns: i64) -> Self {
        let ts = event.header().ts_ns;
        Evidence {
            source: "event".into(),
            time: Some(render::when(event, boot_to_wall_ns)),
            ts_ns: Some(ts),
            tid: Some(render::owner_tid(event)),
            text: render::describe(event, book),
        }
    }

    pub fn fact(source: &str, text: impl Into<String>) -> Self {
        Evidence { source: source.into(), time: None, ts_ns: None, tid: None, text: text.into() }
    }

    /// One line of `report.txt`.
    pub fn to_line(&self) -> String {
        match (&self.time, self.tid) {
            (Some(t), Some(tid)) => format!("{t} [tid {tid}] {}", self.text),
            _ => format!("{}: {}", self.source, self.text),
        }
    }
}

/// What a finding established, in a form a program can act on (the summary says it in words).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The process was ended by signal `sig`, sent by process `sender` (`None`: raised by the
    /// kernel, or the sender was not seen).
    Signal { sig: i32, sender: Option<u32> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `F1`, `F2`...: the finding's place in the report, root causes first.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub signature: Signature,
    pub severity: Severity,
    pub pid: u32,
    pub tid: u32,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    /// Other processes the same finding covers (one limit hit by many processes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<u32>,
    /// Ids of the findings that led to this one (a clone failure before the trap that followed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caused_by: Vec<String>,
    /// The container, pod or systemd unit of the process it is about, when its cgroups name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::container::Workload>,
    /// Not part of `classification.json` (schema 1): read in process, by `observer watch`.
    #[serde(skip)]
    pub cause: Option<Cause>,
}

impl Finding {
    /// A finding with no links yet (the linking pass gives ids and causes).
    pub fn new(
        signature: Signature,
        severity: Severity,
        pid: u32,
        tid: u32,
        summary: impl Into<String>,
        evidence: Vec<Evidence>,
    ) -> Self {
        Finding {
            id: String::new(),
            signature,
            severity,
            pid,
            tid,
            summary: summary.into(),
            evidence,
            processes: Vec::new(),
            caused_by: Vec::new(),
            workload: None,
            cause: None,
        }
    }

    fn first_ts(&self) -> u64 {
        self.evidence.iter().filter_map(|e| e.ts_ns).min().unwrap_or(u64::MAX)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    pub schema: u32,
    /// The root cause and its chain; absent when nothing above info was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    pub findings: Vec<Finding>,
}

impl Classification {
    /// Links causes to consequences and orders the findings root cause first (then most severe,
    /// then by when their evidence starts), so the same capture always gives the same file.
    pub fn new(mut findings: Vec<Finding>, book: &ProcessBook) -> Self {
        findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(a.first_ts().cmp(&b.first_ts()))
                .then(a.signature.cmp(&b.signature))
                .then(a.tid.cmp(&b.tid))
        });
        let verdict = super::causes::link(&mut findings, book);
        Classification { schema: CLASSIFICATION_SCHEMA, verdict, findings }
    }

    pub fn has(&self, signature: Signature) -> bool {
        self.findings.iter().any(|f| f.signature == signature)
    }
}
