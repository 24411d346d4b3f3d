//! Diagnosis: classifiers read the decoded event stream (live or replayed, the same way) plus the
//! preflight snapshot, and say what happened as findings with evidence.
pub mod causes;
pub mod classifiers;
pub mod failure_facts;
pub mod finding;
pub mod mappings;
pub mod report;
pub mod runtime;
pub mod snapshot;
pub mod waitfor;

use failure_facts::FailureFacts;

use crate::{
    analysis::snapshot::StuckSnapshot,
    event::Event,
    eventlog::LogHeader,
    preflight::Preflight,
    processes::ProcessBook,
    source::{EventSource, SourceError},
};

pub use finding::{Cause, Classification, Evidence, Finding, Severity, Signature, CLASSIFICATION_SCHEMA};

/// What a classifier may consult besides the event itself.
pub struct Context<'a> {
    /// The process book, already updated with the current event.
    pub book: &'a ProcessBook,
    pub header: &'a LogHeader,
    pub preflight: Option<&'a Preflight>,
    /// The stuck snapshot, when one was taken (timeout or no progress).
    pub stuck: Option<&'a StuckSnapshot>,
    /// What the kernel said about failing tasks when their failures arrived.
    pub failures: &'a [FailureFacts],
}

impl Context<'_> {
    pub fn evidence(&self, event: &Event) -> Evidence {
        Evidence::event(event, self.book, self.header.boot_to_wall_ns)
    }
}

/// One signature detector, fed every event in order.
pub trait Classifier {
    fn observe(&mut self, event: &Event, cx: &Context<'_>);
    /// Findings once the stream has ended; `earlier` holds what the classifiers before it found.
    fn finish(&mut self, cx: &Context<'_>, earlier: &[Finding]) -> Vec<Finding>;
}

/// Runs every classifier over one event stream.
pub struct Analyzer {
    classifiers: Vec<Box<dyn Classifier>>,
}

impl Default for Analyzer {
    fn default() -> Self {
        Self { classifiers: classifiers::all() }
    }
}

impl Analyzer {
    pub fn observe(&mut self, event: &Event, cx: &Context<'_>) {
        for c in &mut self.classifiers {
            c.observe(event, cx);
        }
    }

    pub fn finish(mut self, cx: &Context<'_>) -> Classification {
        let mut findings: Vec<Finding> = Vec::new();
        for c in &mut self.classifiers {
            let found = c.finish(cx, &findings);
            findings.extend(found);
        }
        let mut classification = Classification::new(findings, cx.book);
        for f in &mut classification.findings {
            f.workload = workload_of(f.pid, cx);
        }
        classification
    }
}

/// The workload of process `pid`, from what was read closest to the failure: the stuck snapshot,
/// the failure facts, the cgroup moves of the capture, else the preflight of the capture's root
/// (whose cgroups every process it starts inherits, unless something moves it).
fn workload_of(pid: u32, cx: &Context<'_>) -> Option<crate::container::Workload> {
    cx.stuck
        .and_then(|s| s.process(pid))
        .and_then(|p| p.workload.clone())
        .or_else(|| cx.failures.iter().find(|f| f.pid == pid && f.read).and_then(FailureFacts::workload))
        .or_else(|| {
            // Cgroups it moved into during the capture (or inherited from a parent that did).
            let moved: Vec<(String, &str)> = cx
                .book
                .process(pid)?
                .cgroups
                .iter()
                .map(|(root, path)| (if *root == 0 { "v2".to_string() } else { root.to_string() }, path.as_str()))
                .collect();
            crate::container::Workload::from_cgroups(moved.iter().map(|(h, p)| (h.as_str(), *p)))
        })
        .or_else(|| cx.preflight.and_then(Preflight::workload))
}

/// Analyses a whole event source (a replayed `events.bin`), returning the findings and the
/// process book built on the way.
pub fn analyze_source(
    source: &mut dyn EventSource,
    header: &LogHeader,
    preflight: Option<&Preflight>,
    stuck: Option<&StuckSnapshot>,
    failures: &[FailureFacts],
) -> Result<(Classification, ProcessBook), SourceError> {
    analyze_source_with(source, header, preflight, stuck, failures, |_, _| {})
}

/// As [`analyze_source`], also handing each event to `also` (with the book that has observed it),
/// for whoever needs the same pass.
pub fn analyze_source_with(
    source: &mut dyn EventSource,
    header: &LogHeader,
    preflight: Option<&Preflight>,
    stuck: Option<&StuckSnapshot>,
    failures: &[FailureFacts],
    mut also: impl FnMut(&Event, &ProcessBook),
) -> Result<(Classification, ProcessBook), SourceError> {
    let mut book = ProcessBook::default();
    seed_book(&mut book, header);
    let mut analyzer = Analyzer::default();
    crate::source::for_each_event(source, |event| {
        book.observe(event);
        analyzer.observe(event, &Context { book: &book, header, preflight, stuck, failures });
        also(event, &book);
    })?;
    let classification = analyzer.finish(&Context { book: &book, header, preflight, stuck, failures });
    Ok((classification, book))
}

/// What the header knows before the first event: the launched command's pid and name.
pub fn seed_book(book: &mut ProcessBook, header: &LogHeader) {
    if let (Some(pid), Some(argv0)) = (header.root_pid, header.command.first()) {
        let name = std::path::Path::new(argv0).file_name().map_or(argv0.clone(), |n| n.to_string_lossy().into_owned());
        book.name(pid, &name);
    }
}
