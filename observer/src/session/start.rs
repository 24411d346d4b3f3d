//! The steps before a capture, the same for every command: the run directory with its command
//! file, then — once the process is known — its preflight and the event log the sinks write.
use std::{io, time::Instant};

use super::RunError;
use crate::{
    clock,
    eventlog::{EventLogWriter, LogHeader},
    out_dir::OutDir,
    preflight::Preflight,
    proc,
    rundir::{self, Place},
    sinks::{EventFile, Pipeline},
};

/// A run directory that has been created, and when its capture started.
pub struct RunDir {
    pub dir: OutDir,
    /// The command as `command.txt` and the summary give it.
    pub command_line: String,
    pub started_wall: i64,
    pub started: Instant,
}

/// Creates the run directory at `place` and writes `command.txt`: the command line, then `note`
/// (e.g. `# attached to pid 42`) on a line of its own.
pub fn create_run_dir(place: &Place, command: &[String], note: Option<&str>) -> Result<RunDir, RunError> {
    let started_wall = clock::now_wall_ns();
    let started = Instant::now();
    let dir = rundir::create(place, &clock::compact_utc(started_wall))
        .map_err(|source| RunError::RunDir { path: place.path(), source })?;
    let command_line = rundir::shell_join(command);
    let text = match note {
        Some(note) => format!("{command_line}\n{note}\n"),
        None => format!("{command_line}\n"),
    };
    dir.write(rundir::COMMAND, text).map_err(|source| RunError::RunDir { path: dir.path().to_path_buf(), source })?;
    Ok(RunDir { dir, command_line, started_wall, started })
}

/// The capture files of a live capture of process `pid` (just started, or attached to): its
/// preflight now and the event log of this machine, at most `max_size` bytes of it (with room held
/// back for the files written after a cut: [`EventFile`]).
pub fn open_live_capture(
    run: &RunDir,
    pid: u32,
    command: Vec<String>,
    max_size: Option<u64>,
) -> Result<Pipeline, RunError> {
    let taken_at = clock::rfc3339(run.started_wall);
    let preflight = proc::preflight::take(pid, taken_at.clone());
    let header = LogHeader::live(command, Some(pid), taken_at);
    open_capture_with(&run.dir, header, Some(preflight), |log, dir| EventFile::new(log, dir, max_size))
        .map_err(|source| RunError::RunDir { path: run.dir.path().to_path_buf(), source })
}

/// The capture files of a run directory: the preflight (when there is one), the event log with
/// `header`, and the sinks fed from it. Its input is bounded (an import, a flight recorder), so
/// the event log is too.
pub fn open_capture(dir: &OutDir, header: LogHeader, preflight: Option<Preflight>) -> io::Result<Pipeline> {
    open_capture_with(dir, header, preflight, |log, _| EventFile::unbounded(log))
}

fn open_capture_with(
    dir: &OutDir,
    header: LogHeader,
    preflight: Option<Preflight>,
    event_file: impl FnOnce(EventLogWriter, &OutDir) -> EventFile,
) -> io::Result<Pipeline> {
    if let Some(preflight) = &preflight {
        preflight.write(dir)?;
    }
    let log = EventLogWriter::new(dir.create(rundir::EVENTS)?, &header)?;
    Ok(Pipeline::new(dir, event_file(log, dir), header, preflight))
}
