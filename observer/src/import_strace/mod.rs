//! `observer import-strace`: reads strace output — a `-ff -o NAME` directory of `NAME.<tid>` files,
//! or one `-o FILE` file with or without `-f` pid prefixes; with or without `-t`/`-tt`/`-ttt`, `-T`
//! and `-y` — and writes a run directory whose `events.bin` holds the records the kernel side
//! would have written, so `observer analyze` finds the same signatures in old captures. What
//! strace did not record is flagged unknown, never made up; lines that cannot be read are listed
//! in `import.txt` with their file and line number.
mod calls;
mod emit;
mod lifecycle;
mod line;
mod order;
mod output;
mod scan;
mod source;
mod stamp;
mod tasks;
mod value;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use crate::analysis::Classification;

pub use order::UNKNOWN_TID;

/// What an import read and wrote.
#[derive(Debug)]
pub struct ImportReport {
    /// The run directory written.
    pub dir: PathBuf,
    /// The strace files read, in the order they were read.
    pub files: Vec<PathBuf>,
    /// Non-blank lines read.
    pub lines: usize,
    /// Lines understood: `lines` minus `unparsed` (those of syscalls observer does not record included).
    pub parsed: usize,
    /// Every line that could not be read: file, line number (from 1), text.
    pub unparsed: Vec<(PathBuf, usize, String)>,
    /// Calls skipped because observer does not record that syscall, by name.
    pub skipped_by_syscall: BTreeMap<String, u64>,
    pub classification: Classification,
}

/// `file:line: text`, the text cut to a readable length.
fn located(file: &Path, line: usize, text: &str) -> String {
    let mut text = text.trim_end().to_string();
    if text.chars().count() > 160 {
        text = text.chars().take(160).collect::<String>() + "...";
    }
    format!("{}:{line}: {text}", file.display())
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
    #[error("no strace output in {path}: none of its {lines} lines could be read{}; give a file written by strace -o FILE (or the files of strace -ff -o NAME)", first_unparsed(.first))]
    NothingParsed { path: PathBuf, lines: usize, first: Option<(PathBuf, usize, String)> },
    #[error("cannot write the run directory {path}: {source}; choose a writable --out DIR")]
    RunDir { path: PathBuf, source: std::io::Error },
}

/// What reading the input gave, before anything is written.
struct Read {
    layout: source::Layout,
    files: Vec<(source::SourceFile, usize)>,
    /// Per file, its understood lines.
    items: Vec<Vec<order::Item>>,
    lines: usize,
    /// Whether any line was understood.
    any_parsed: bool,
    unparsed: Vec<(PathBuf, usize, String)>,
    placeholder_tid: bool,
}

fn read(path: &Path) -> Result<Read, ImportError> {
    let (layout, files) = source::discover(path)?;
    let mut read =
        Read { layout, files: Vec::new(), items: Vec::new(), lines: 0, any_parsed: false, unparsed: Vec::new(), placeholder_tid: false };
    let mut per_file: Vec<(Vec<(usize, line::Line)>, Vec<u32>)> = Vec::new();
    for file in files {
        let raw = source::read_lines(&file)?;
        let count = raw.iter().filter(|l| !l.trim().is_empty()).count();
        let mut parsed: Vec<(usize, line::Line)> = Vec::new();
        for (number, text) in line::untangle(&raw) {
            if text.trim().is_empty() {
                continue;
            }
            match line::parse(&text) {
                Some(l) => parsed.push((number, l)),
                None => read.unparsed.push((file.path.clone(), number, text)),
            }
        }
        read.lines += count;
        read.any_parsed |= !parsed.is_empty();
        let (tids, placeholder) = order::assign_tids(layout, file.tid, &parsed);
        read.placeholder_tid |= placeholder;
        per_file.push((parsed, tids));
        read.files.push((file, count));
    }
    let stamps: Vec<Vec<Option<stamp::Stamp>>> = per_file.iter().map(|(p, _)| p.iter().map(|(_, l)| l.stamp).collect()).collect();
    let dated: Vec<(&[Option<stamp::Stamp>], Option<i64>)> =
        stamps.iter().zip(&read.files).map(|(s, (f, _))| (s.as_slice(), f.mtime_ns)).collect();
    let walls = stamp::to_wall(&dated);
    for (index, ((parsed, tids), walls)) in per_file.into_iter().zip(walls).enumerate() {
        let items = parsed
            .into_iter()
            .zip(tids)
            .zip(walls)
            .map(|(((number, l), tid), wall)| order::Item { file: index, line: number, tid, wall, body: l.body })
            .collect();
        read.items.push(items);
    }
    Ok(read)
}

/// Imports the strace output at `path` into a run directory: `out`, or by default
/// `./observer-runs/import-<name>-<UTC time>/`. Fails only when the input cannot be found or read,
/// when not one of its lines is strace output, or when the run directory cannot be written.
pub fn import(path: &Path, out: Option<&Path>) -> Result<ImportReport, ImportError> {
    let read = read(path)?;
    let parsed = read.lines.saturating_sub(read.unparsed.len());
    if !read.any_parsed {
        return Err(ImportError::NothingParsed { path: path.to_path_buf(), lines: read.lines, first: read.unparsed.first().cloned() });
    }
    let timed = read.items.iter().flatten().filter(|i| order::is_event(&i.body)).all(|i| i.wall.is_some());
    let walls = || read.items.iter().flatten().filter_map(|i| i.wall);
    let (first_wall, last_wall) = (walls().min(), walls().max());
    // Timestamp 0 is the first whole second of the capture.
    let base = first_wall.filter(|_| timed).map(|w| w.div_euclid(1_000_000_000) * 1_000_000_000);
    let ops = order::pair(order::order(read.layout, read.items, timed));
    let family = tasks::Family::infer(&ops);
    let emitted = emit::emit(&ops, &family, base);
    let meta = output::Meta {
        input: path,
        layout: read.layout,
        files: &read.files,
        lines: read.lines,
        parsed,
        unparsed: &read.unparsed,
        timed,
        span: first_wall.zip(last_wall).filter(|_| timed),
        base,
        placeholder_tid: read.placeholder_tid,
        unknown_clone_kind: family.unknown_kind,
    };
    let (dir, classification) = output::write(out, &meta, &emitted)?;
    Ok(ImportReport {
        dir,
        files: read.files.into_iter().map(|(f, _)| f.path).collect(),
        lines: read.lines,
        parsed,
        unparsed: read.unparsed,
        skipped_by_syscall: emitted.skipped,
        classification,
    })
}

#[cfg(test)]
mod scratch {
    #[test]
    #[ignore]
    fn scratch_import() {
        let path = std::env::var("IMP").unwrap();
        let out = std::env::var("OUT").unwrap();
        let _ = std::fs::remove_dir_all(&out);
        match super::import(std::path::Path::new(&path), Some(std::path::Path::new(&out))) {
            Ok(r) => eprintln!("{:?} lines {} parsed {} unparsed {} skipped {:?}\n{}", r.dir, r.lines, r.parsed, r.unparsed.len(), r.skipped_by_syscall.len(), crate::analysis::report::to_text(&r.classification)),
            Err(e) => eprintln!("ERR {e}"),
        }
    }
}
