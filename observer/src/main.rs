//! The `observer` binary: parse arguments, run the subcommand, map every error to one line and an
//! exit code (documented in `--help`).
use std::{
    io::{BufWriter, Write},
    process::ExitCode,
};

use clap::Parser;
use observer::{
    analysis::{self, report, seed_book},
    attach::attach,
    capture::CaptureError,
    child::ChildError,
    cli::{AnalyzeArgs, Cli, Command, ExportArgs, ExportFormat, ReplayArgs, ReplayFormat},
    import_strace,
    interrupt::Interrupts,
    offline::{self, Capture, OfflineError},
    processes::ProcessBook,
    render::export::{self, ExportError},
    repeat::{self, RepeatError},
    replay::{self, Filter, Format},
    run::{run, RunArgsError},
    session::{RunError, RunOutcome},
    source::EventSource,
    watch::{self, WatchError},
};

fn exit_code_for(err: &RunError) -> u8 {
    match err {
        RunError::Capture(CaptureError::NotPrivileged) => 77,
        RunError::Capture(
            CaptureError::TracefsMissing { .. }
            | CaptureError::TracefsMount { .. }
            | CaptureError::TracepointMissing { .. }
            | CaptureError::LayoutMismatch(_),
        ) => 78,
        RunError::Capture(
            CaptureError::Verifier { .. }
            | CaptureError::Attach { .. }
            | CaptureError::Load(_)
            | CaptureError::NoEbpfObject,
        ) => 79,
        RunError::Capture(CaptureError::BufferSize(_)) | RunError::NoCommand | RunError::NotACgroup(_) => 2,
        RunError::Capture(CaptureError::Map { .. }) | RunError::RunDir { .. } | RunError::Cgroup { .. } => 125,
        RunError::Child(ChildError::NotFound(_)) => 127,
        RunError::NoSuchProcess(_) => 66,
        RunError::AttachToSelf(_) => 2,
        RunError::Child(_) => 126,
    }
}

fn offline_exit_code(err: &OfflineError) -> ExitCode {
    ExitCode::from(if err.is_bad_data() { 65 } else { 66 })
}

/// The single-threaded runtime every capture runs on (the signals it sends come from the thread
/// named `observer`).
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| {
        eprintln!("observer: cannot start the runtime: {e}");
        ExitCode::from(125)
    })
}

/// The signals that stop a capture, taken from now on (before the runtime starts its threads).
fn interrupts() -> Result<Interrupts, ExitCode> {
    Interrupts::from_signals().map_err(|e| {
        eprintln!("observer: cannot take over the stop signals: {e}");
        ExitCode::from(125)
    })
}

/// Runs a capture (`run` or `attach`) to its end and reports it.
fn capture_command(quiet: bool, capture: impl std::future::Future<Output = Result<RunOutcome, RunError>>) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(capture) {
        Ok(mut outcome) => {
            if !quiet {
                for line in outcome.summary.to_text().lines().take(8) {
                    eprintln!("  {line}");
                }
                for line in report::finding_lines(&outcome.classification) {
                    eprintln!("observer: {line}");
                }
            }
            eprintln!("observer: run directory: {}", outcome.dir.display());
            if let Some(detaching) = outcome.detaching.take() {
                let _ = detaching.join();
            }
            ExitCode::from(outcome.exit.shell_code().clamp(0, 255) as u8)
        }
        Err(err) => {
            eprintln!("observer: {err}");
            ExitCode::from(exit_code_for(&err))
        }
    }
}

fn run_command(args: observer::cli::RunArgs) -> ExitCode {
    // First thing: no stop signal may end observer from here on (offline commands keep the
    // default, Ctrl-C ends them).
    let mut interrupts = match interrupts() {
        Ok(i) => i,
        Err(code) => return code,
    };
    match args.into_options() {
        Ok(opts) => {
            let quiet = opts.quiet;
            capture_command(quiet, async move { run(opts, &mut interrupts).await })
        }
        Err(RunArgsError(msg)) => {
            eprintln!("observer: {msg}");
            ExitCode::from(2)
        }
    }
}

fn attach_command(args: observer::cli::AttachArgs) -> ExitCode {
    // First thing: no stop signal may end observer from here on (offline commands keep the
    // default, Ctrl-C ends them).
    let mut interrupts = match interrupts() {
        Ok(i) => i,
        Err(code) => return code,
    };
    let quiet = args.quiet;
    match args.into_options() {
        Ok(opts) => capture_command(quiet, async move { attach(opts, &mut interrupts).await }),
        Err(RunArgsError(msg)) => {
            eprintln!("observer: {msg}");
            ExitCode::from(2)
        }
    }
}

fn repeat_command(args: observer::cli::RepeatArgs) -> ExitCode {
    // First thing: no stop signal may end observer from here on (offline commands keep the
    // default, Ctrl-C ends them).
    let mut interrupts = match interrupts() {
        Ok(i) => i,
        Err(code) => return code,
    };
    let opts = match args.into_options() {
        Ok(o) => o,
        Err(RunArgsError(msg)) => {
            eprintln!("observer: {msg}");
            return ExitCode::from(2);
        }
    };
    let hunting = !opts.until.is_empty();
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = runtime
        .block_on(async move { repeat::repeat(opts, &mut interrupts, |line| eprintln!("observer: {line}")).await });
    match result {
        Ok((parent, report)) => {
            print!("{}", report.to_text());
            eprintln!("observer: attempts are in {} (repeat.txt, repeat.json)", parent.display());
            ExitCode::from(if hunting && !report.found { 1 } else { 0 })
        }
        Err(RepeatError::Run(err)) => {
            eprintln!("observer: {err}");
            ExitCode::from(exit_code_for(&err))
        }
        Err(err) => {
            eprintln!("observer: {err}");
            ExitCode::from(if matches!(err, RepeatError::Io { .. }) { 125 } else { 2 })
        }
    }
}

fn watch_command(args: observer::cli::WatchArgs) -> ExitCode {
    // First thing: no stop signal may end observer from here on (offline commands keep the
    // default, Ctrl-C ends them).
    let mut interrupts = match interrupts() {
        Ok(i) => i,
        Err(code) => return code,
    };
    let opts = match args.into_options() {
        Ok(o) => o,
        Err(RunArgsError(msg)) => {
            eprintln!("observer: {msg}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(watch::watch(opts, interrupts.recv())) {
        Ok(outcome) => {
            eprintln!(
                "observer watch: stopped; {} events, {} dropped, {} incidents, {} held back by rate limits; every program detached",
                outcome.events, outcome.dropped, outcome.incidents, outcome.suppressed
            );
            ExitCode::SUCCESS
        }
        Err(WatchError::Capture(err)) => {
            let err = RunError::Capture(err);
            eprintln!("observer: {err}");
            ExitCode::from(exit_code_for(&err))
        }
        Err(err) => {
            eprintln!("observer: {err}");
            ExitCode::from(if matches!(err, WatchError::Cgroup { .. }) { 2 } else { 125 })
        }
    }
}

fn import_strace_command(args: observer::cli::ImportStraceArgs) -> ExitCode {
    let access = match args.group.access() {
        Ok(access) => access,
        Err(RunArgsError(msg)) => {
            eprintln!("observer: {msg}");
            return ExitCode::from(2);
        }
    };
    match import_strace::import(&args.path, args.out.as_deref(), access) {
        Ok(report) => {
            println!("verdict: {}", analysis::report::verdict(&report.classification));
            for line in analysis::report::finding_lines(&report.classification) {
                println!("{line}");
            }
            println!(
                "read {} lines from {} file(s): {} understood, {} not understood (listed in import.txt)",
                report.lines,
                report.files.len(),
                report.parsed,
                report.unparsed_total
            );
            for (file, line, text) in report.unparsed.iter().take(5) {
                eprintln!("observer: not understood: {}", import_strace::located(file, *line, text));
            }
            println!("run directory: {}", report.dir.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("observer: {err}");
            ExitCode::from(if matches!(err, import_strace::ImportError::NothingParsed { .. }) { 65 } else { 66 })
        }
    }
}

fn report_skipped(path: &std::path::Path, skipped: u64) {
    if skipped > 0 {
        eprintln!(
            "observer: {}: read up to the last whole record; skipped {skipped} bytes of a cut record or block at the end (normal while a capture is being written or after a crash)",
            path.display()
        );
    }
}

fn analyze_command(args: AnalyzeArgs) -> ExitCode {
    match offline::analyze(&args.path) {
        Ok(analysis) => {
            println!("verdict: {}", report::verdict(&analysis.classification));
            for line in report::finding_lines(&analysis.classification) {
                println!("{line}");
            }
            report_skipped(&analysis.capture.events, analysis.skipped_tail);
            println!(
                "wrote {}, {} and {}",
                analysis.capture.dir.join(report::CLASSIFICATION_JSON).display(),
                analysis.capture.dir.join(report::REPORT_TXT).display(),
                analysis.capture.dir.join(observer::render::html::REPORT_HTML).display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("observer: {err}");
            offline_exit_code(&err)
        }
    }
}

fn replay_command(args: ReplayArgs) -> ExitCode {
    let syscalls = match args.syscall.as_deref().map(replay::parse_syscalls).transpose() {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("observer: {msg}");
            return ExitCode::from(2);
        }
    };
    let filter =
        Filter { tid: args.tid, pid: args.pid, syscalls, failed: args.failed, since: args.since, until: args.until };
    let format = match args.format {
        ReplayFormat::Text => Format::Text,
        ReplayFormat::Json => Format::Json,
    };
    let opened = Capture::locate(&args.path).and_then(|c| c.open().map(|s| (c, s)));
    let (capture, mut source) = match opened {
        Ok(x) => x,
        Err(err) => {
            eprintln!("observer: {err}");
            return offline_exit_code(&err);
        }
    };
    let header = source.header().clone();
    let mut book = ProcessBook::default();
    seed_book(&mut book, &header);
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut batch = Vec::with_capacity(4096);
    let mut first_ts = None;
    loop {
        batch.clear();
        // Records read before a corrupt one are still printed, then the corruption is reported.
        let read = source.read_batch(&mut batch);
        for event in &batch {
            book.observe(event);
            let first = *first_ts.get_or_insert(event.header().ts_ns);
            if filter.matches(event, &book, header.boot_to_wall_ns, first) {
                if let Err(e) = replay::write_event(&mut out, format, event, &book, header.boot_to_wall_ns) {
                    // A closed pipe (`| head`) is the reader being done, not an error.
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return ExitCode::SUCCESS;
                    }
                    eprintln!("observer: writing output: {e}");
                    return ExitCode::from(74);
                }
            }
        }
        match read {
            Ok(true) => {}
            Ok(false) => break,
            Err(source_err) => {
                let _ = out.flush();
                eprintln!("observer: {}: {source_err}", capture.events.display());
                return ExitCode::from(65);
            }
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("observer: writing output: {e}");
            return ExitCode::from(74);
        }
    }
    report_skipped(&capture.events, source.truncated_tail());
    ExitCode::SUCCESS
}

fn export_command(args: ExportArgs) -> ExitCode {
    let format = match args.format {
        ExportFormat::Perfetto => export::Format::Perfetto,
        ExportFormat::ChromeJson => export::Format::ChromeJson,
    };
    match export::export(&args.path, format, &args.output) {
        Ok(done) => {
            report_skipped(&args.path, done.skipped_tail);
            println!(
                "wrote {}: {} processes, {} threads, {} syscall slices, {} instants ({} flows, {} findings)",
                args.output.display(),
                done.processes,
                done.threads,
                done.slices,
                done.instants,
                done.flows,
                done.findings
            );
            ExitCode::SUCCESS
        }
        Err(ExportError::Capture(err)) => {
            eprintln!("observer: {err}");
            offline_exit_code(&err)
        }
        Err(err) => {
            eprintln!("observer: {err}");
            ExitCode::from(125)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run_command(args),
        Command::Attach(args) => attach_command(args),
        Command::Repeat(args) => repeat_command(args),
        Command::Watch(args) => watch_command(args),
        Command::ImportStrace(args) => import_strace_command(args),
        Command::Analyze(args) => analyze_command(args),
        Command::Replay(args) => replay_command(args),
        Command::Export(args) => export_command(args),
    }
}
