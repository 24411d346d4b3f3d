//! The files after a capture: the classification, report and summary of the finished capture.
use super::{io_at, RunDir, RunError, RunOutcome, SessionEnd};
use crate::{
    analysis::{report, snapshot::STUCK_TXT},
    capture::{Kernel, Tally},
    child::ExitStatus,
    clock,
    processes::{describe_exit, describe_exit_signal, ProcessExit},
    sinks::Pipeline,
    summary::Summary,
};

/// Everything a finished session leaves to be written.
pub struct Finished<'a> {
    pub run: RunDir,
    pub root: u32,
    pub kernel: &'a Kernel,
    /// The kernel's counters when the capture began.
    pub tally: Tally,
    pub pipeline: Pipeline,
    pub end: SessionEnd,
}

/// Classifies, and writes the summary and report of a finished capture.
pub fn finalize(f: Finished<'_>) -> Result<RunOutcome, RunError> {
    let Finished { run, root, kernel, tally, mut pipeline, end } = f;
    let RunDir { dir, command_line, started_wall, started } = run;
    let path = dir.path();
    let Tally { counters, undecodable } = kernel.tally_since(&tally);
    let fault_addresses = kernel
        .probes
        .fault_addresses_unavailable()
        .map_or_else(|| "captured".to_string(), |why| format!("unavailable: {why}"));
    // The wait status is the truth about the root, whatever records were dropped.
    match end.exit {
        Some(ExitStatus::Code(c)) => pipeline.book.settle_exit(root, ProcessExit::Code(c)),
        Some(ExitStatus::Signal { sig, .. }) => {
            pipeline.book.settle_exit(root, ProcessExit::Signal { sig, sender: None });
        }
        None => {}
    }
    let (records, classification) = pipeline.finish(end.stuck.as_ref()).map_err(io_at(path))?;
    // The summary is written even when the report cannot be (a full disk).
    let report_written = report::write(&classification, &dir);

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
        (None, Some(exit @ ProcessExit::Unknown)) => (describe_exit(&exit), ExitStatus::Code(0)),
        (None, None) if end.detached => ("still running (observer detached)".to_string(), ExitStatus::Code(0)),
        (None, None) => (describe_exit(&ProcessExit::Unknown), ExitStatus::Code(0)),
    };
    let mut s = Summary::default();
    s.put("command", command_line);
    s.put("run_dir", path.display().to_string());
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
    s.put(
        "left_running_outside_group",
        if end.escaped.is_empty() {
            "no".to_string()
        } else {
            let who: Vec<String> = end.escaped.iter().map(|(pid, comm)| format!("{pid} ({comm})")).collect();
            format!("{}: left the group (setsid/setpgid), stopped with it", who.join(", "))
        },
    );
    pipeline.put_outcome(&mut s, &classification, records);
    s.put("events_submitted_by_kernel", counters.submitted_total());
    // Submitted but never read (observer stopped reading before the ring was empty): never silent.
    s.put("events_unread", counters.submitted_total().saturating_sub(pipeline.stats.events_received + undecodable));
    s.put("events_dropped", counters.dropped_total());
    for kind in crate::event::REPORTED_KINDS {
        s.put(format!("events_dropped.{}", crate::event::kind_name(kind)), counters.dropped[kind as usize]);
    }
    s.put("events_undecodable", undecodable);
    s.put("inflight_table_overflows", counters.inflight_full);
    s.put("fault_addresses", fault_addresses);
    s.put("syscall_hooks", kernel.probes.syscall_hooks().to_string());
    pipeline.put_counts(&mut s);
    s.write(&dir).map_err(io_at(path))?;
    report_written.map_err(io_at(path))?;
    // The page is a view of the files above: a full disk may leave it out, never the summary.
    if let Err(e) =
        crate::render::html::write(&dir, &path.join(crate::rundir::EVENTS), &classification, end.stuck.as_ref())
    {
        eprintln!("observer: could not write report.html in {}: {e}", path.display());
    }
    Ok(RunOutcome { dir: path.to_path_buf(), exit, summary: s, classification, detaching: None })
}
