//! `observer repeat`: run the same command again and again under observation until a signature
//! appears (or N attempts), measuring how often each signature and exit happens. The probes are
//! loaded once for all attempts.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{
    analysis::{Severity, Signature},
    capture::Kernel,
    child::ExitStatus,
    clock,
    decode::signal_name,
    interrupt::Interrupts,
    out_dir::OutDir,
    run::{check_cgroup, run_in, RunOptions},
    rundir::{self, Place},
    session::RunError,
};

/// Which attempt directories stay on disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    #[default]
    All,
    /// Only attempts with a hit (one of `--until`'s signatures, or any finding above info).
    Hits,
    /// Only the last attempt.
    Last,
}

#[derive(Clone, Debug)]
pub struct RepeatOptions {
    pub until: Vec<Signature>,
    pub max_attempts: u32,
    pub keep: Keep,
    /// The parent directory; each attempt is `attempt-NNN` inside it.
    pub out: Option<PathBuf>,
    /// Options of each run (`out` is set per attempt).
    pub run: RunOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum RepeatError {
    #[error("--max-attempts must be at least 1")]
    NoAttempts,
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// One attempt's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub number: u32,
    pub dir: String,
    pub kept: bool,
    pub duration_s: f64,
    pub exit: String,
    pub signatures: Vec<Signature>,
    pub hit: bool,
}

/// Everything `repeat.txt` / `repeat.json` say.
#[derive(Clone, Debug, Serialize)]
pub struct RepeatReport {
    pub command: String,
    pub until: Vec<Signature>,
    pub attempts: Vec<Attempt>,
    /// Per signature: attempts it appeared in.
    pub signature_counts: BTreeMap<Signature, u32>,
    /// Per exit (`code 0`, `signal SIGKILL`): attempts.
    pub exit_counts: BTreeMap<String, u32>,
    /// Whether the hunt found what `--until` asked for.
    pub found: bool,
    pub interrupted: bool,
}

/// The directory of attempt `number` inside the parent.
fn attempt_name(number: u32) -> String {
    format!("attempt-{number:03}")
}

fn join(signatures: &[Signature], separator: &str) -> String {
    signatures.iter().map(|s| s.name()).collect::<Vec<_>>().join(separator)
}

fn exit_label(exit: &ExitStatus) -> String {
    match exit {
        ExitStatus::Code(c) => format!("code {c}"),
        ExitStatus::Signal { sig, .. } => {
            format!("signal {}", signal_name(*sig).map_or_else(|| sig.to_string(), str::to_string))
        }
    }
}

fn rate(n: u32, of: usize) -> String {
    format!("{n}/{of} ({:.1}%)", if of == 0 { 0.0 } else { 100.0 * f64::from(n) / of as f64 })
}

impl RepeatReport {
    pub fn progress_line(&self, a: &Attempt, max: u32) -> String {
        let findings = if a.signatures.is_empty() { "none".to_string() } else { join(&a.signatures, ", ") };
        format!(
            "attempt {}/{max}: {:.2}s, exit {}, findings: {findings}{}",
            a.number,
            a.duration_s,
            a.exit,
            if a.hit { "  <- hit" } else { "" }
        )
    }

    pub fn to_text(&self) -> String {
        let n = self.attempts.len();
        let mut out = format!("command: {}\nattempts: {n}\n", self.command);
        if !self.until.is_empty() {
            out.push_str(&format!(
                "until: {}\nfound: {}\n",
                join(&self.until, ","),
                if self.found { "yes" } else { "no" }
            ));
        }
        if self.interrupted {
            out.push_str("interrupted: yes\n");
        }
        out.push_str("\nsignature                          attempts  rate\n");
        for (sig, count) in &self.signature_counts {
            out.push_str(&format!("{sig:<34} {count:>8}  {}\n", rate(*count, n)));
        }
        if self.signature_counts.is_empty() {
            out.push_str("(no findings in any attempt)\n");
        }
        out.push_str("\nexit                               attempts  rate\n");
        for (exit, count) in &self.exit_counts {
            out.push_str(&format!("{exit:<34} {count:>8}  {}\n", rate(*count, n)));
        }
        out.push_str("\nattempt  seconds  exit            findings\n");
        for a in &self.attempts {
            out.push_str(&format!(
                "{:>7}  {:>7.2}  {:<14}  {}{}\n",
                a.number,
                a.duration_s,
                a.exit,
                if a.signatures.is_empty() { "-".to_string() } else { join(&a.signatures, ", ") },
                if a.kept { String::new() } else { "  (deleted)".into() }
            ));
        }
        out
    }

    pub fn write(&self, dir: &OutDir) -> std::io::Result<()> {
        dir.write("repeat.txt", self.to_text())?;
        dir.write("repeat.json", rundir::json_text(self).map_err(std::io::Error::other)?)
    }
}

/// Runs the attempts. On a signal in `interrupts` (Ctrl-C, SIGTERM...) the current attempt is
/// stopped like a timeout and no further attempt starts. `progress` receives a line per attempt.
pub async fn repeat(
    opts: RepeatOptions,
    interrupts: &mut Interrupts,
    mut progress: impl FnMut(&str),
) -> Result<(PathBuf, RepeatReport), RepeatError> {
    if opts.max_attempts == 0 {
        return Err(RepeatError::NoAttempts);
    }
    let argv0 = opts.run.command.first().ok_or(RunError::NoCommand)?.to_string_lossy().into_owned();
    crate::child::resolve(&argv0).map_err(RunError::from)?;
    check_cgroup(opts.run.cgroup.as_deref())?;
    let command: Vec<String> = opts.run.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let base = Path::new(&argv0).file_name().map_or(argv0.clone(), |n| n.to_string_lossy().into_owned());
    let place = Place::out_or_default(opts.out.as_deref(), format!("repeat-{base}"), opts.run.access);
    let parent = rundir::create(&place, &clock::compact_utc(clock::now_wall_ns()))
        .map_err(|source| RepeatError::Io { path: place.path(), source })?;
    let mut kernel = Kernel::load(opts.run.buffer_size).map_err(RunError::from)?;
    let mut report = RepeatReport {
        command: rundir::shell_join(&command),
        until: opts.until.clone(),
        attempts: Vec::new(),
        signature_counts: BTreeMap::new(),
        exit_counts: BTreeMap::new(),
        found: false,
        interrupted: false,
    };
    for number in 1..=opts.max_attempts {
        let name = attempt_name(number);
        let attempt_place = Place::Inside(parent.clone(), name.clone());
        let run_opts = RunOptions { quiet: true, ..opts.run.clone() };
        let outcome = run_in(&mut kernel, &run_opts, &attempt_place, interrupts).await?;
        let mut signatures: Vec<Signature> = outcome.classification.findings.iter().map(|f| f.signature).collect();
        signatures.dedup();
        let hit = if opts.until.is_empty() {
            outcome.classification.findings.iter().any(|f| f.severity > Severity::Info)
        } else {
            signatures.iter().any(|s| opts.until.contains(s))
        };
        let distinct: std::collections::BTreeSet<Signature> = signatures.iter().copied().collect();
        for s in distinct {
            *report.signature_counts.entry(s).or_default() += 1;
        }
        let exit = exit_label(&outcome.exit);
        *report.exit_counts.entry(exit.clone()).or_default() += 1;
        let duration_s = outcome.summary.get("duration_s").and_then(|v| v.as_f64()).unwrap_or(0.0);
        let dir = parent.join(&name).display().to_string();
        let attempt = Attempt { number, dir, kept: true, duration_s, exit, signatures, hit };
        progress(&report.progress_line(&attempt, opts.max_attempts));
        report.attempts.push(attempt);
        let stop_hunt = (!opts.until.is_empty() && hit) || interrupts.received() > 0;
        report.found |= !opts.until.is_empty() && hit;
        // Bound disk use over long hunts: drop what the caller does not want kept.
        if opts.keep != Keep::All {
            for a in report.attempts.iter_mut().filter(|a| a.kept) {
                let keep = match opts.keep {
                    Keep::Hits => a.hit,
                    Keep::Last => a.number == number,
                    Keep::All => true,
                };
                if !keep {
                    let _ = parent.remove_dir_all(&attempt_name(a.number));
                    a.kept = false;
                }
            }
        }
        if stop_hunt {
            break;
        }
    }
    report.interrupted = interrupts.received() > 0;
    report.write(&parent).map_err(|source| RepeatError::Io { path: parent.path().to_path_buf(), source })?;
    let detaching = kernel.detach_in_background();
    let _ = detaching.join();
    Ok((parent.path().to_path_buf(), report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_counts_and_rates_per_signature_and_exit() {
        let attempt = |n, sigs: &[Signature], exit: &str| Attempt {
            number: n,
            dir: format!("attempt-{n:03}"),
            kept: true,
            duration_s: 0.5,
            exit: exit.into(),
            signatures: sigs.to_vec(),
            hit: !sigs.is_empty(),
        };
        let report = RepeatReport {
            command: "prog".into(),
            until: vec![],
            attempts: vec![
                attempt(1, &[], "code 0"),
                attempt(2, &[Signature::CloneEagain], "code 1"),
                attempt(3, &[], "code 0"),
                attempt(4, &[], "code 0"),
            ],
            signature_counts: BTreeMap::from([(Signature::CloneEagain, 1)]),
            exit_counts: BTreeMap::from([("code 0".into(), 3), ("code 1".into(), 1)]),
            found: false,
            interrupted: false,
        };
        let text = report.to_text();
        assert!(text.contains("clone-eagain                              1  1/4 (25.0%)"), "{text}");
        assert!(text.contains("code 0                                    3  3/4 (75.0%)"), "{text}");
    }
}
