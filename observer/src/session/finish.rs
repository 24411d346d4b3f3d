//! The files around a capture: before it, the preflight and the event log header; after it, the
//! classification, report and summary of the finished capture.
use std::{path::Path, time::Instant};

use super::{io_at, RunError, RunOutcome, SessionEnd};
use crate::{
    analysis::{report, snapshot::STUCK_TXT},
    capture::{Kernel, Tally},
    child::ExitStatus,
    clock,
    eventlog::{EventLogWriter, LogHeader},
    preflight::Preflight,
    processes::{describe_exit, describe_exit_signal, ProcessExit},
    rundir,
    sinks::Pipeline,
    summary::Summary,
};

/// The run directory's capture files for process `pid`: its preflight, the event log with its
/// header, and the sinks fed from it.
pub fn open_capture(dir: &Path, pid: u32, command: Vec<String>, started_wall: i64) -> Result<Pipeline, RunError> {
    let preflight = Preflight::take(pid, clock::rfc3339(started_wall));
    preflight.write(dir).map_err(io_at(dir))?;
    let header = LogHeader::live(command, Some(pid), clock::rfc3339(started_wall));
    let log = EventLogWriter::create(&dir.join(rundir::EVENTS), &header).map_err(io_at(dir))?;
    Ok(Pipeline::new(dir, log, header, Some(preflight)))
}

/// Everything a finished session leaves to be written.
pub struct Finished<'a> {
    pub dir: &'a Path,
    pub started_wall: i64,
    pub started: Instant,
    pub command_line: String,
    pub root: u32,
    pub kernel: &'a Kernel,
    /// The kernel's counters when the capture began.
    pub tally: Tally,
    pub pipeline: Pipeline,
    pub end: SessionEnd,
}

/// Classifies, and writes the summary and report of a finished capture.
pub fn finalize(f: Finished<'_>) -> Result<RunOutcome, RunError> {
    let Finished { dir, started_wall, started, command_line, root, kernel, tally, mut pipeline, end } = f;
    let Tally { counters, undecodable } = kernel.tally_since(&tally);
    let fault_addresses = kernel
        .probes
        .fault_addresses_unavailable()
        .map_or_else(|| "captured".to_string(), |why| format!("unavailable: {why}"));
    let (records, classification) = pipeline.finish(end.stuck.as_ref()).map_err(io_at(dir))?;
    report::write(&classification, dir).map_err(io_at(dir))?;

    // The exit as observer reaped it, else as the capture saw it (an attached process).
    let from_capture = pipeline.book.process(root).and_then(|p| p.exit.clone());
    let (exit_text, exit) = match (end.exit, from_capture) {
        (Some(ExitStatus::Code(c)), _) => (describe_exit(&ProcessExit::Code(c)), ExitStatus::Code(c)),
        (Some(status @ ExitStatus::Signal { sig, .. }), _) => {
            (describe_exit_signal(sig, pipeline.book.sender_of(root, sig)), status)
        }
        (None, Some(exit @ ProcessExit::Code(c))) => (describe_exit(&exit), ExitStatus::Code(c)),
        (None, Some(exit @ ProcessExit::Signal { sig, .. })) => {
            (describe_exit(&exit), ExitStatus::Signal { sig, core_dumped: false })
        }
        (None, None) if end.detached => ("still running (observer detached)".to_string(), ExitStatus::Code(0)),
        (None, None) => ("ended (status not captured)".to_string(), ExitStatus::Code(0)),
    };
    let mut s = Summary::default();
    s.put("command", command_line);
    s.put("run_dir", dir.display().to_string());
    s.put("started_at", clock::rfc3339(started_wall));
    s.put("duration_s", (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    s.put("pid", root);
    pipeline.put_workload(&mut s, root, end.stuck.as_ref());
    s.put("exit", exit_text);
    s.put("exit_code", exit.shell_code());
    s.put(
        "stuck_snapshot",
        end.stuck.as_ref().map_or_else(|| "none".to_string(), |st| format!("{} ({})", STUCK_TXT, st.reason)),
    );
    s.put("stopped_by", end.stop_reason.as_ref().map_or_else(|| "none".to_string(), |r| r.to_string()));
    s.put("left_running_in_group", if end.leftovers { "yes, stopped with the group" } else { "no" });
    pipeline.put_outcome(&mut s, &classification, records);
    s.put("events_submitted_by_kernel", counters.submitted_total());
    s.put("events_dropped", counters.dropped_total());
    for kind in 1..observer_common::kind::COUNT as u16 {
        s.put(format!("events_dropped.{}", crate::event::kind_name(kind)), counters.dropped[kind as usize]);
    }
    s.put("events_undecodable", undecodable);
    s.put("inflight_table_overflows", counters.inflight_full);
    s.put("fault_addresses", fault_addresses);
    s.put("syscall_hooks", kernel.probes.syscall_hooks().to_string());
    pipeline.put_counts(&mut s);
    s.write(dir).map_err(io_at(dir))?;
    crate::render::html::write(dir, &dir.join(rundir::EVENTS), &classification, end.stuck.as_ref())
        .map_err(io_at(dir))?;
    Ok(RunOutcome { dir: dir.to_path_buf(), exit, summary: s, classification, detaching: None })
}
