//! Opening a capture after the fact: a run directory or a bare `events.bin`, with its preflight
//! when there is one; `observer analyze` re-runs every classifier on it.
use std::path::{Path, PathBuf};

use crate::{
    analysis::{analyze_source_with, report, snapshot::StuckSnapshot, Classification},
    event::Event,
    eventlog::LogHeader,
    out_dir::OutDir,
    preflight::Preflight,
    processes::ProcessBook,
    render::html::{self, timeline::TimelineBuilder, Collected},
    rundir,
    source::{FileSource, SourceError},
};

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Data { path: PathBuf, source: SourceError },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl OfflineError {
    /// Bad data (corrupt, foreign, unsupported) rather than a missing or unreadable file.
    pub fn is_bad_data(&self) -> bool {
        matches!(self, OfflineError::Data { source: SourceError::Log(e), .. } if !matches!(e, crate::eventlog::LogError::Io(_)))
    }
}

/// A capture on disk: where its files are.
#[derive(Clone, Debug)]
pub struct Capture {
    /// The run directory (the directory holding `events.bin`).
    pub dir: PathBuf,
    pub events: PathBuf,
}

impl Capture {
    /// A run directory, or an `events.bin` (its directory then plays the run directory).
    pub fn locate(path: &Path) -> Result<Self, OfflineError> {
        let meta = std::fs::metadata(path).map_err(|source| OfflineError::Open { path: path.into(), source })?;
        if meta.is_dir() {
            let events = path.join(rundir::EVENTS);
            if !events.exists() {
                return Err(OfflineError::Open {
                    path: events,
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "not a run directory: it has no events.bin",
                    ),
                });
            }
            Ok(Capture { dir: path.into(), events })
        } else {
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
            Ok(Capture { dir, events: path.into() })
        }
    }

    pub fn open(&self) -> Result<FileSource, OfflineError> {
        FileSource::open(&self.events).map_err(|source| match source {
            SourceError::Log(crate::eventlog::LogError::Io(e)) => {
                OfflineError::Open { path: self.events.clone(), source: e }
            }
            source => OfflineError::Data { path: self.events.clone(), source },
        })
    }
}

/// The outcome of analysing a capture.
pub struct Analysis {
    pub capture: Capture,
    pub classification: Classification,
    pub book: ProcessBook,
    /// Bytes at the end of `events.bin` that did not form a whole record or block.
    pub skipped_tail: u64,
}

/// A capture diagnosed again, nothing written.
pub struct Diagnosis {
    pub header: LogHeader,
    pub classification: Classification,
    pub book: ProcessBook,
    pub stuck: Option<StuckSnapshot>,
    /// Bytes at the end of `events.bin` that did not form a whole record or block.
    pub skipped_tail: u64,
}

/// Re-runs every classifier on a capture, with what its run directory knows (preflight, failure
/// facts, stuck snapshot), handing each event to `also` on the way.
pub fn diagnose(capture: &Capture, also: impl FnMut(&Event, &ProcessBook)) -> Result<Diagnosis, OfflineError> {
    let mut source = capture.open()?;
    let header = source.header().clone();
    let preflight = Preflight::read(&capture.dir);
    let failures = crate::analysis::failure_facts::read(&capture.dir);
    let stuck = StuckSnapshot::read(&capture.dir);
    let (classification, book) =
        analyze_source_with(&mut source, &header, preflight.as_ref(), stuck.as_ref(), &failures, also)
            .map_err(|source| OfflineError::Data { path: capture.events.clone(), source })?;
    Ok(Diagnosis { header, classification, book, stuck, skipped_tail: source.truncated_tail() })
}

/// Re-runs every classifier on a capture and rewrites its `classification.json`, `report.txt`,
/// `report.html`, and the flame graph (`profile.folded`, `flamegraph.svg`) of the stuck snapshot's
/// samples.
pub fn analyze(path: &Path) -> Result<Analysis, OfflineError> {
    let capture = Capture::locate(path)?;
    let write_error = |source| OfflineError::Write { path: capture.dir.clone(), source };
    // Opened first: a directory that cannot be written (a link) is refused before any work.
    let dir = OutDir::open(&capture.dir).map_err(write_error)?;
    // The page's timeline is gathered in the analysis pass: the log is read once.
    let mut timeline = TimelineBuilder::default();
    let Diagnosis { header, classification, book, stuck, skipped_tail } =
        diagnose(&capture, |event, book| timeline.observe(event, book))?;
    report::write(&classification, &dir).map_err(write_error)?;
    if let Some(stuck) = &stuck {
        crate::render::flame::write(stuck, &dir).map_err(write_error)?;
    }
    let collected = Collected { builder: timeline, book: &book, header: &header };
    html::write_collected(&dir, Some(collected), &classification, stuck.as_ref()).map_err(write_error)?;
    Ok(Analysis { capture, classification, book, skipped_tail })
}
