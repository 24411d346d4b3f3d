//! The `observer` binary: parse arguments, run, map every error to one line and an exit code.
use std::process::ExitCode;

use clap::Parser;
use observer::{
    capture::CaptureError,
    child::ChildError,
    cli::{Cli, Command},
    run::{run, RunError},
};

fn exit_code_for(err: &RunError) -> u8 {
    match err {
        RunError::Capture(CaptureError::NotPrivileged) => 77,
        RunError::Capture(
            CaptureError::TracefsMissing { .. }
            | CaptureError::TracefsMount { .. }
            | CaptureError::TracepointMissing { .. }
            | CaptureError::LayoutMismatch { .. },
        ) => 78,
        RunError::Capture(CaptureError::Verifier { .. } | CaptureError::Attach { .. } | CaptureError::Load(_)) => 79,
        RunError::Capture(CaptureError::BufferSize(_)) | RunError::NoCommand => 2,
        RunError::Capture(CaptureError::Map { .. }) | RunError::RunDir { .. } => 125,
        RunError::Child(ChildError::NotFound(_)) => 127,
        RunError::Child(_) => 126,
    }
}

/// Resolves with the name of the first SIGINT or SIGTERM observer receives.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("observer: cannot start the runtime: {e}");
            return ExitCode::from(125);
        }
    };
    match cli.command {
        Command::Run(args) => {
            let opts = match args.into_options() {
                Ok(o) => o,
                Err(msg) => {
                    eprintln!("observer: {msg}");
                    return ExitCode::from(2);
                }
            };
            let quiet = opts.quiet;
            match runtime.block_on(run(opts, shutdown_signal())) {
                Ok(mut outcome) => {
                    if !quiet {
                        eprint!("{}", outcome.summary.to_text().lines().take(16).map(|l| format!("  {l}\n")).collect::<String>());
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
    }
}
