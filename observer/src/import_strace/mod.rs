//! `observer import-strace`: reads strace output — a `-ff -o NAME` directory of `NAME.<tid>` files,
//! or one `-o FILE` file with or without `-f` pid prefixes; with or without `-t`/`-tt`/`-ttt`, `-T`
//! and `-y` — and writes a run directory whose `events.bin` holds the records the kernel side
//! would have written, so `observer analyze` finds the same signatures in old captures. What
//! strace did not record is flagged unknown, never made up; lines that cannot be read are listed
//! in `import.txt` with their file and line number. It streams: the files are read a line at a
//! time, in memory that does not grow with them.
mod calls;
mod cursor;
mod emit;
mod lifecycle;
mod line;
mod order;
mod output;
mod scan;
mod source;
mod stamp;
mod stream;
mod survey;
mod tasks;
mod tids;
mod unparsed;
mod value;

use std::{
    collections::{BTreeMap, HashMap},
    ops::ControlFlow,
    path::{Path, PathBuf},
};

use crate::{
    analysis::Classification,
    decode::{escape, escape_controls},
    out_dir::Access,
};

pub use tids::UNKNOWN_TID;
pub use unparsed::LISTED as LISTED_UNPARSED;

/// What an import read and wrote.
#[derive(Debug)]
pub struct ImportReport {
    /// The run directory written.
    pub dir: PathBuf,
    /// The strace files read, in the order they were read.
    pub files: Vec<PathBuf>,
    /// Non-blank lines read.
    pub lines: usize,
    /// Lines understood: `lines` minus `unparsed_total` (those of syscalls observer does not record
    /// included).
    pub parsed: usize,
    /// Lines that could not be read.
    pub unparsed_total: usize,
    /// The first [`LISTED_UNPARSED`] of them in file and line order: file, line number (from 1),
    /// text (cut to 160 characters).
    pub unparsed: Vec<(PathBuf, usize, String)>,
    /// Calls skipped because observer does not record that syscall, by name.
    pub skipped_by_syscall: BTreeMap<String, u64>,
    pub classification: Classification,
}

/// `file:line: text`, the text cut to a readable length and escaped like strace escapes strings
/// (an input line can hold terminal escape sequences).
pub fn located(file: &Path, line: usize, text: &str) -> String {
    let file = file.display().to_string();
    format!("{}:{line}: {}", escape_controls(&file), escape(&unparsed::clip(text)))
}

fn first_unparsed(first: &Option<(PathBuf, usize, String)>) -> String {
    match first {
        Some((file, line, text)) => format!("; the first is {}", located(file, *line, text)),
        None => String::new(),
    }
}

/// Why nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: no such file or directory; give a strace output file (strace -o FILE), or the directory or DIR/NAME of strace -ff -o DIR/NAME files")]
    NotFound { path: PathBuf },
    #[error("{dir} holds no strace -ff files (NAME.<tid>); give the strace output file itself, or the directory of its -ff files")]
    NoTraceFiles { dir: PathBuf },
    #[error("{dir} holds several strace -ff captures ({}); give one of them as {dir}/NAME", names.join(", "))]
    SeveralCaptures { dir: PathBuf, names: Vec<String> },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot open {path}: too many files open (the -ff files of threads alive at the same time are read together); raise the open-file limit (ulimit -n) and import again")]
    TooManyOpen { path: PathBuf },
    #[error("no strace output in {path}: none of its {lines} lines parsed{}; give a file written by strace -o FILE (or the files of strace -ff -o NAME)", first_unparsed(.first))]
    NothingParsed { path: PathBuf, lines: usize, first: Option<(PathBuf, usize, String)> },
    #[error("cannot write the run directory {path}: {source}; choose a writable --out DIR")]
    RunDir { path: PathBuf, source: std::io::Error },
}

/// What the header needs to know of the whole stream before its first record: who created whom,
/// the command's process and its command.
struct Cast {
    family: tasks::Family,
    root_pid: Option<u32>,
    command: Vec<String>,
}

/// Reads the stream once for [`Cast`]; when the root process exec'd, reads it again up to its
/// first exec for the command (usually the first line).
fn cast(plan: &stream::Plan) -> Result<Cast, ImportError> {
    let mut family = tasks::Family::default();
    let mut first_tid = None;
    // Per tid, the step number of its first exec that names a command.
    let mut first_exec: HashMap<u32, u64> = HashMap::new();
    let mut step = 0u64;
    plan.for_each_op(|op| {
        family.observe(&op);
        first_tid.get_or_insert(op.tid);
        if let order::OpKind::Syscall(call) = &op.kind {
            if !first_exec.contains_key(&op.tid) && emit::command_of(call).is_some() {
                first_exec.insert(op.tid, step);
            }
        }
        step += 1;
        ControlFlow::Continue(())
    })?;
    family.settle();
    let root_pid = first_tid.map(|t| family.tgid(t));
    let exec_step = first_exec.iter().filter(|(&tid, _)| Some(family.tgid(tid)) == root_pid).map(|(_, &s)| s).min();
    let mut command = Vec::new();
    if let Some(exec_step) = exec_step {
        let mut step = 0u64;
        plan.for_each_op(|op| {
            if step == exec_step {
                if let order::OpKind::Syscall(call) = &op.kind {
                    command = emit::command_of(call).unwrap_or_default();
                }
                return ControlFlow::Break(());
            }
            step += 1;
            ControlFlow::Continue(())
        })?;
    }
    Ok(Cast { family, root_pid, command })
}

/// Imports the strace output at `path` into a run directory: `out`, or by default
/// `./observer-runs/import-<name>-<UTC time>/`. Fails only when the input cannot be found or read,
/// when not one of its lines is strace output, or when the run directory cannot be written.
/// What it makes gets `access`.
///
/// Streams: the files are read a line at a time, three times (to survey them, to learn who
/// created whom and the command, and to write the records) — memory holds per-thread facts, one
/// line per open file and the calls waiting for their other half, never the input.
pub fn import(path: &Path, out: Option<&Path>, access: Access) -> Result<ImportReport, ImportError> {
    let (layout, files) = source::discover(path)?;
    let mut survey = survey::survey(layout, files)?;
    if !survey.any_parsed {
        return Err(ImportError::NothingParsed {
            path: path.to_path_buf(),
            lines: survey.lines,
            first: survey.unparsed.first().cloned(),
        });
    }
    let timed = survey.timed;
    let span = survey.span().filter(|_| timed);
    // Timestamp 0 is the first whole second of the capture.
    let base = span.map(|(first, _)| first.div_euclid(1_000_000_000) * 1_000_000_000);
    let plan = stream::Plan::new(&survey);
    let cast = cast(&plan)?;
    let opening = output::Opening { input: path, span, base, command: cast.command, root_pid: cast.root_pid };
    let mut written = output::open(out, access, opening)?;
    let mut emitter = emit::Emitter::new(&cast.family, base, cast.root_pid);
    plan.for_each_op(|op| {
        emitter.step(&op);
        written.feed(emitter.events());
        ControlFlow::Continue(())
    })?;
    let emitted = emitter.finish();
    for (file, line, text) in &emitted.impossible {
        survey.unparsed.add(*file, *line, &format!("{text} (impossible: a range past the end of the address space)"));
    }
    let unparsed_total = survey.unparsed.total();
    let parsed = survey.lines.saturating_sub(unparsed_total);
    let files: Vec<(PathBuf, usize)> = survey.files.iter().map(|f| (f.start.file.path.clone(), f.lines)).collect();
    let meta = output::Meta {
        input: path,
        layout,
        files: &files,
        lines: survey.lines,
        parsed,
        unparsed: &survey.unparsed,
        timed,
        span,
        placeholder_tid: survey.placeholder_tid,
        unknown_clone_kind: cast.family.unknown_kind,
    };
    let (dir, classification) = written.finish(&meta, &emitted)?;
    Ok(ImportReport {
        dir,
        files: files.into_iter().map(|(f, _)| f).collect(),
        lines: survey.lines,
        parsed,
        unparsed_total,
        unparsed: survey.unparsed.listed(),
        skipped_by_syscall: emitted.skipped,
        classification,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        analysis::{Finding, Signature},
        event::Event,
    };
    use observer_common::flags;

    fn fatal_signal(report: &ImportReport) -> &Finding {
        report.classification.findings.iter().find(|f| f.signature == Signature::FatalSignal).expect("fatal-signal")
    }

    /// Lines of every kind strace writes, as it writes them.
    const SAMPLES: &[&str] = &[
        "5192  00:33:01.950689 execve(\"/usr/bin/prlimit\", [\"prlimit\", \"--as=62914560\", \"./threads\", \"8\"], 0x7ffd127c9168 /* 35 vars */) = 0 <0.000101>",
        "5192  00:33:01.952836 prlimit64(0, RLIMIT_AS, {rlim_cur=61440*1024, rlim_max=61440*1024}, NULL) = 0 <0.000003>",
        "5192  00:33:01.953833 mmap(NULL, 8392704, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0) = 0x7f4ea2a37000 <0.000003>",
        "5192  00:33:01.954059 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f4ea2a36990, parent_tid=0x7f4ea2a36990, exit_signal=0, stack=0x7f4ea2236000, stack_size=0x7fff80, tls=0x7f4ea2a366c0} <unfinished ...>",
        "5192  00:33:01.954092 <... clone3 resumed> => {parent_tid=[5194]}, 88) = 5194 <0.000028>",
        "5194  00:33:01.954510 exit(0 <unfinished ...>",
        "5194  00:33:01.954589 +++ exited with 0 +++",
        "[pid  5346] 00:33:04.738287 read(3</etc/passwd>, \"root:x:0:0:root:/root:/bin/bash\\n\"..., 4096) = 1234 <0.000057>",
        "5205  1795307581.971458 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 5206",
        "5205  1795307581.971469 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=5206, si_uid=0, si_status=0, si_utime=0, si_stime=0} ---",
        "5242  --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---",
        "5242  +++ killed by SIGSEGV (core dumped) +++",
        "futex(0x7ff4443cd990, FUTEX_WAIT_BITSET|FUTEX_CLOCK_REALTIME, 4165, NULL, FUTEX_BITSET_MATCH_ANY) = 0 <0.004255>",
        "futex(0x55d4c3a0, FUTEX_WAKE_OP_PRIVATE, 1, 1, 0x55d4c3a4, FUTEX_OP_SET<<28|0<<12|FUTEX_OP_CMP_GT<<24|0x1) = 1",
        "rt_sigaction(SIGINT, {sa_handler=SIG_IGN, sa_mask=[INT], sa_flags=SA_RESTORER|SA_RESTART, sa_restorer=0x7f2e4fced050}, NULL, 8) = 0",
        "00:33:04.752494 <... rt_sigsuspend resumed>) = ? ERESTARTNOHAND (To be restarted if no handler) <0.016268>",
        "clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f2e4fcaea10) = 5346",
        "mmap(NULL, 2097152, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_HUGETLB|21<<MAP_HUGE_SHIFT, -1, 0) = -1 ENOMEM (Cannot allocate memory)",
        "exit_group(1)           = ?",
        "strace: Process 5346 attached",
        "--- stopped by SIGTTIN ---",
        "+++ superseded by execve in pid 1234 +++",
    ];

    fn events(dir: &Path) -> Vec<Event> {
        use crate::source::{EventSource, FileSource};
        let mut source = FileSource::open(&dir.join("events.bin")).unwrap();
        let mut out = Vec::new();
        while source.read_batch(&mut out).unwrap() {}
        out
    }

    fn write(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path
    }

    /// `lines` written to a file named `name` and imported: the temporary directory (kept while
    /// the test reads), the run directory and the report.
    fn import_lines(name: &str, lines: &[&str]) -> (tempfile::TempDir, PathBuf, ImportReport) {
        let dir = tempfile::tempdir().unwrap();
        let input = write(dir.path(), name, lines);
        let out = dir.path().join("run");
        let report = import(&input, Some(&out), Access::OWNER).unwrap();
        (dir, out, report)
    }

    #[test]
    fn no_input_makes_it_panic() {
        // Every cut of every kind of line, and every line with one character replaced by one that
        // matters to the scanner.
        let mut lines: Vec<String> = Vec::new();
        for sample in SAMPLES {
            let chars: Vec<char> = sample.chars().collect();
            for cut in 0..=chars.len() {
                lines.push(chars[..cut].iter().collect());
                lines.push(chars[cut..].iter().collect());
            }
            for (i, _) in chars.iter().enumerate() {
                for c in ['(', ')', '"', '{', '}', '[', ']', '<', '>', ',', '=', '|', '\\', '?', '-', '9', ' '] {
                    let mut mutated = chars.clone();
                    mutated[i] = c;
                    lines.push(mutated.into_iter().collect());
                }
            }
        }
        lines.extend(
            [
                "\u{0}\u{ffff}",
                "[pid",
                "[pid 99999999999999] x",
                "99999999999999999999 exit(0) = ?",
                "<... >",
                "<... x resumed>",
            ]
            .map(String::from),
        );
        let dir = tempfile::tempdir().unwrap();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let input = write(dir.path(), "fuzz.txt", &refs);
        let report = import(&input, Some(&dir.path().join("run")), Access::OWNER).unwrap();
        assert_eq!(report.lines, lines.iter().filter(|l| !l.trim().is_empty()).count());
        assert!(!report.unparsed.is_empty() && report.parsed > 0);
        // The same lines as per-thread files without prefixes.
        let ff = dir.path().join("ff");
        std::fs::create_dir(&ff).unwrap();
        for (i, chunk) in refs.chunks(refs.len() / 7 + 1).enumerate() {
            write(&ff, &format!("t.{}", 100 + i), chunk);
        }
        import(&ff, Some(&dir.path().join("run-ff")), Access::OWNER).unwrap();
    }

    #[test]
    fn a_segfault_captured_with_dash_f_gives_fatal_signal_with_the_address() {
        let (_dir, out, report) = import_lines(
            "segv.txt",
            &[
                "5242  execve(\"./segv\", [\"./segv\"], 0x7ffc4a3bd2b8 /* 35 vars */) = 0",
                "5242  mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f53a5f19000",
                "5242  --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---",
                "5242  +++ killed by SIGSEGV +++",
            ],
        );
        let f = fatal_signal(&report);
        assert_eq!((f.pid, f.tid), (5242, 5242));
        assert!(f.summary.contains("SIGSEGV (SEGV_MAPERR) in thread 5242 at address 0x10"), "{}", f.summary);
        let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
        for line in [
            "command: ./segv\n",
            "pid: 5242\n",
            "exit: signal SIGSEGV\n",
            "exit_code: 139\n",
            "threads_seen: 1\n",
            "unparsed_lines: 0\n",
        ] {
            assert!(summary.contains(line), "{line:?} in {summary}");
        }
        assert!(
            out.join("trace.5242.txt").exists() && out.join("report.txt").exists() && out.join("command.txt").exists()
        );
    }

    #[test]
    fn the_command_is_the_first_exec_of_the_root_process_wherever_it_is() {
        let (_dir, out, _report) = import_lines(
            "late.txt",
            &[
                "5 brk(NULL) = 0x1000",
                "5 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 6",
                "6 execve(\"/bin/child\", [\"child\"], 0x7ffe /* 3 vars */) = 0",
                "5 execve(\"/bin/nope\", [\"nope\"], 0x7ffe /* 3 vars */) = -1 ENOENT (No such file or directory)",
                "5 execve(\"/bin/sh\", [\"sh\", \"-c\", \"x\"], 0x7ffe /* 3 vars */) = 0",
                "5 execve(\"/bin/true\", [\"true\"], 0x7ffe /* 3 vars */) = 0",
            ],
        );
        assert_eq!(std::fs::read_to_string(out.join("command.txt")).unwrap(), "sh -c x\n");
        let header = crate::eventlog::EventLogReader::open(&out.join("events.bin")).unwrap();
        assert_eq!(
            (header.header().command.clone(), header.header().root_pid),
            (vec!["sh".into(), "-c".into(), "x".into()], Some(5))
        );
    }

    #[test]
    fn a_dash_ttt_dash_y_capture_with_pid_prefixes_keeps_times_and_processes() {
        let (_dir, out, report) = import_lines(
            "kill.txt",
            &[
                "[pid  5205] 1795307581.966731 execve(\"/usr/bin/sh\", [\"sh\", \"-c\", \"sleep 9 & kill -9 $!\"], 0x7fff91ac9370 /* 35 vars */) = 0",
                "[pid  5205] 1795307581.968217 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f2e63c17a10) = 5206",
                "[pid  5206] 1795307581.968262 read(0</dev/null>, \"\", 4096) = 0",
                "[pid  5205] 1795307581.971534 kill(5206, SIGKILL) = 0",
                "[pid  5206] 1795307581.971597 +++ killed by SIGKILL +++",
                "[pid  5205] 1795307581.971600 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_KILLED, si_pid=5206, si_uid=0, si_status=SIGKILL, si_utime=0, si_stime=0} ---",
                "[pid  5205] 1795307581.971700 exit_group(0) = ?",
                "[pid  5205] 1795307581.971800 +++ exited with 0 +++",
            ],
        );
        assert!(report.unparsed.is_empty(), "{:?}", report.unparsed);
        let events = events(&out);
        let read = events
            .iter()
            .find_map(|e| if let Event::Syscall(s) = e { (s.nr == 0).then_some(*s) } else { None })
            .unwrap();
        assert_eq!((read.header.tid, read.header.tgid, read.args[0], read.nargs), (5206, 5206, 0, 1));
        assert_eq!(read.header.flags, flags::IMPORTED | flags::UNKNOWN_DURATION);
        let killed = fatal_signal(&report);
        assert!(killed.summary.contains("process 5206 (sh) was ended by signal SIGKILL"), "{}", killed.summary);
        let summary = std::fs::read_to_string(out.join("summary.txt")).unwrap();
        assert!(summary.contains("processes_seen: 2\n") && summary.contains("exit: code 0\n"), "{summary}");
        assert!(summary.contains("started_at: 2026-11-22T00:33:01.966731Z\n"), "{summary}");
    }
}
