//! The run directory of an import, with the contract of a live one: `events.bin` through the event
//! log writer, trace files, classification and report through the same pipeline as `observer run`,
//! `summary.txt`/`.json` with run's keys (plus `source`, `unparsed_lines`, ...), `command.txt`, and
//! `import.txt` saying what was read, what was skipped and every line that could not be read.
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use super::{
    emit::{Emitted, End},
    located,
    source::Layout,
    unparsed::{Unparsed, LISTED},
    ImportError,
};
use crate::{
    analysis::{report, Classification},
    clock,
    event::Event,
    eventlog::{LogHeader, RECORD_SCHEMA},
    out_dir::{Access, OutDir},
    processes::{describe_exit, describe_exit_signal, ProcessExit},
    rundir::{self, Place},
    session::open_capture,
    sinks::Pipeline,
    summary::Summary,
};

pub const IMPORT_TXT: &str = "import.txt";

/// Records handed to the pipeline at a time.
const BATCH: usize = 4096;

/// What the import read, for `import.txt` and the summary.
pub struct Meta<'a> {
    pub input: &'a Path,
    pub layout: Layout,
    /// Each file and its non-blank line count.
    pub files: &'a [(PathBuf, usize)],
    pub lines: usize,
    pub parsed: usize,
    pub unparsed: &'a Unparsed,
    pub timed: bool,
    /// First and last wall time, when times are known.
    pub span: Option<(i64, i64)>,
    pub placeholder_tid: bool,
    pub unknown_clone_kind: u64,
}

fn import_txt(meta: &Meta<'_>, emitted: &Emitted, records: u64) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "source: {}", meta.input.display());
    let layout = match meta.layout {
        Layout::PerThread => format!("strace -ff: {} files, one per thread", meta.files.len()),
        Layout::Single => "strace -o: one file".to_string(),
    };
    let _ = writeln!(t, "layout: {layout}");
    let times = if meta.timed {
        "from the timestamps (-tt/-t: taken as UTC, dated from each file's modification time; -ttt: epoch seconds)"
    } else if meta.layout == Layout::PerThread {
        "unknown (no timestamps): records keep only the order; the order across threads is unknown (files follow thread creation)"
    } else {
        "unknown (no timestamps): records keep only the order of the file"
    };
    let _ = writeln!(t, "times: {times}");
    let _ = writeln!(t, "files:");
    for (file, count) in meta.files {
        let _ = writeln!(t, "  {} ({count} lines)", file.display());
    }
    let skipped: u64 = emitted.skipped.values().sum();
    let _ = writeln!(t, "lines: {}", meta.lines);
    let _ = writeln!(t, "parsed: {}", meta.parsed);
    let _ = writeln!(t, "unparsed: {}", meta.unparsed.total());
    let _ = writeln!(t, "records: {records}");
    let _ = writeln!(t, "unfinished_never_resumed: {}", emitted.never_resumed);
    let _ = writeln!(t, "skipped_not_in_schema: {skipped}");
    for (name, n) in &emitted.skipped {
        let _ = writeln!(t, "  {name}: {n}");
    }
    if meta.placeholder_tid {
        let _ = writeln!(
            t,
            "note: nothing says the tid of the lines without a pid prefix; they are given tid {} (not a real tid)",
            super::UNKNOWN_TID
        );
    }
    if meta.unknown_clone_kind > 0 {
        let _ = writeln!(
            t,
            "note: {} clone calls had unreadable flags; their children are taken as processes",
            meta.unknown_clone_kind
        );
    }
    let _ = writeln!(t, "unparsed lines:");
    for (file, line, text) in meta.unparsed.listed() {
        let _ = writeln!(t, "{}", located(&file, line, &text));
    }
    if meta.unparsed.total() > LISTED {
        let _ = writeln!(t, "... and {} more", meta.unparsed.total() - LISTED);
    }
    t
}

/// What the header of `events.bin` says, known before the first record.
pub struct Opening<'a> {
    pub input: &'a Path,
    pub span: Option<(i64, i64)>,
    pub base: Option<i64>,
    pub command: Vec<String>,
    pub root_pid: Option<u32>,
}

/// The run directory being written: records go to its pipeline as they are made.
pub struct Output {
    dir: OutDir,
    pipeline: Pipeline,
    /// Records not handed on yet.
    batch: Vec<Event>,
}

fn failed(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError {
    let path = path.to_path_buf();
    move |source| ImportError::RunDir { path, source }
}

fn started_at(span: Option<(i64, i64)>) -> String {
    span.map_or_else(|| "unknown".to_string(), |(first, _)| clock::rfc3339(first))
}

/// Creates the run directory and starts its `events.bin`.
pub fn open(out: Option<&Path>, access: Access, opening: Opening<'_>) -> Result<Output, ImportError> {
    let name = opening.input.file_name().map_or_else(|| "strace".to_string(), |n| n.to_string_lossy().into_owned());
    let place = Place::out_or_default(out, format!("import-{name}"), access);
    let dir = rundir::create(&place, &clock::compact_utc(clock::now_wall_ns())).map_err(failed(&place.path()))?;
    let header = LogHeader {
        record_schema: RECORD_SCHEMA,
        kernel_release: String::new(),
        hostname: String::new(),
        boot_to_wall_ns: opening.base.unwrap_or(0),
        started_at: started_at(opening.span),
        command: opening.command,
        observer_pid: 0,
        root_pid: opening.root_pid,
    };
    let pipeline = open_capture(&dir, header, None).map_err(failed(dir.path()))?;
    Ok(Output { dir, pipeline, batch: Vec::with_capacity(2 * BATCH) })
}

impl Output {
    /// Takes `events` (leaving it empty), handing them on a batch at a time.
    pub fn feed(&mut self, events: &mut Vec<Event>) {
        self.batch.append(events);
        while self.batch.len() >= BATCH {
            self.pipeline.handle_batch(&self.batch[..BATCH]);
            self.batch.drain(..BATCH);
        }
    }

    /// Finishes the run directory; returns it and the findings.
    pub fn finish(mut self, meta: &Meta<'_>, emitted: &Emitted) -> Result<(PathBuf, Classification), ImportError> {
        if !self.batch.is_empty() {
            self.pipeline.handle_batch(&self.batch);
        }
        let Output { dir, mut pipeline, .. } = self;
        let path = dir.path();
        if let Some(cut) = pipeline.cut() {
            return Err(failed(path)(std::io::Error::other(format!("events.bin {cut}"))));
        }
        let (records, classification) = pipeline.finish(None).map_err(failed(path))?;
        report::write(&classification, &dir).map_err(failed(path))?;
        let command_line = rundir::shell_join(&emitted.command);
        if !emitted.command.is_empty() {
            dir.write(rundir::COMMAND, format!("{command_line}\n")).map_err(failed(path))?;
        }
        dir.write(IMPORT_TXT, import_txt(meta, emitted, records)).map_err(failed(path))?;

        let mut s = Summary::default();
        s.put("command", if emitted.command.is_empty() { "unknown".to_string() } else { command_line });
        s.put("run_dir", path.display().to_string());
        s.put("source", format!("imported from strace: {}", meta.input.display()));
        s.put("started_at", started_at(meta.span));
        match meta.span {
            Some((first, last)) => s.put("duration_s", ((last - first) as f64 / 1e6).round() / 1000.0),
            None => s.put("duration_s", "unknown"),
        }
        match emitted.root_pid {
            Some(pid) => s.put("pid", pid),
            None => s.put("pid", "unknown"),
        }
        let (exit, exit_code) = match (emitted.root_end, emitted.root_pid) {
            (Some(End::Code(c)), _) => (describe_exit(&ProcessExit::Code(c)), serde_json::Value::from(c)),
            (Some(End::Signal(sig)), pid) => {
                let sender = pid.and_then(|p| pipeline.book.sender_of(p, sig));
                (describe_exit_signal(sig, sender), serde_json::Value::from(128 + sig))
            }
            (None, _) => {
                ("unknown (strace did not show the command end)".to_string(), serde_json::Value::from("unknown"))
            }
        };
        s.put("exit", exit);
        s.put("exit_code", exit_code);
        pipeline.put_outcome(&mut s, &classification, records);
        s.put("lines_read", meta.lines);
        s.put("unparsed_lines", meta.unparsed.total());
        s.put("skipped_not_in_schema", emitted.skipped.values().sum::<u64>());
        pipeline.put_counts(&mut s);
        s.write(&dir).map_err(failed(path))?;
        crate::render::html::write(&dir, &path.join(rundir::EVENTS), &classification, None).map_err(failed(path))?;
        Ok((path.to_path_buf(), classification))
    }
}
