//! Finding the strace output to import: one file (`-o FILE`, with or without `-f`), or the
//! `NAME.<tid>` files of `-ff -o NAME` given as their directory or as `DIR/NAME`; reading them.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use super::ImportError;

/// One input file.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The tid in the name of a `-ff` file (`trace.4163`), or the number a single file's name ends
    /// in (only a last resort for its tid).
    pub tid: Option<u32>,
    /// Modification time, nanoseconds since the epoch: dates `-tt` times.
    pub mtime_ns: Option<i64>,
}

/// How the input is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `-ff`: one file per thread, lines without a pid prefix.
    PerThread,
    /// One file; with `-f`, lines carry a pid prefix.
    Single,
}

/// `trace.4163` is (`trace`, 4163).
fn split_tid(name: &str) -> Option<(&str, u32)> {
    let (stem, tid) = name.rsplit_once('.')?;
    if stem.is_empty() || tid.is_empty() || !tid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem, tid.parse().ok()?))
}

fn mtime_ns(path: &Path) -> Option<i64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_nanos()).ok()
}

fn file(path: PathBuf) -> SourceFile {
    let tid = path.file_name().and_then(|n| split_tid(&n.to_string_lossy()).map(|(_, t)| t));
    SourceFile { mtime_ns: mtime_ns(&path), tid, path }
}

/// The `-ff` files in `dir`, by their NAME.
fn per_thread_files(dir: &Path) -> Result<BTreeMap<String, Vec<SourceFile>>, ImportError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ImportError::Read { path: dir.to_path_buf(), source })?;
    let mut groups: BTreeMap<String, Vec<SourceFile>> = BTreeMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some((stem, _)) = split_tid(&name) {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                groups.entry(stem.to_string()).or_default().push(file(entry.path()));
            }
        }
    }
    for files in groups.values_mut() {
        files.sort_by_key(|f| f.tid);
    }
    Ok(groups)
}

/// The files `path` names, and their layout.
pub fn discover(path: &Path) -> Result<(Layout, Vec<SourceFile>), ImportError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok((Layout::Single, vec![file(path.to_path_buf())])),
        Ok(meta) if meta.is_dir() => {
            let mut groups = per_thread_files(path)?;
            match groups.len() {
                0 => Err(ImportError::NoTraceFiles { dir: path.to_path_buf() }),
                1 => Ok((Layout::PerThread, groups.pop_first().map(|(_, f)| f).unwrap_or_default())),
                _ => Err(ImportError::SeveralCaptures { dir: path.to_path_buf(), names: groups.into_keys().collect() }),
            }
        }
        Ok(_) => Err(ImportError::NotFound { path: path.to_path_buf() }),
        Err(_) => {
            // `DIR/NAME` for the files `DIR/NAME.<tid>`.
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let files = match (name, dir.is_dir()) {
                (Some(name), true) => per_thread_files(dir)?.remove(&name),
                _ => None,
            };
            match files {
                Some(files) if !files.is_empty() => Ok((Layout::PerThread, files)),
                _ => Err(ImportError::NotFound { path: path.to_path_buf() }),
            }
        }
    }
}

/// A line longer than this is cut here (and then, having lost its end, is not understood): memory
/// stays bounded whatever the input holds.
pub const MAX_LINE: usize = 1 << 20;

/// Opens `path`; when this process has as many files open as it may, first raises its soft limit
/// to the hard one (the files of threads alive at the same time are open together).
fn open_raising_limit(path: &Path) -> std::io::Result<std::fs::File> {
    match std::fs::File::open(path) {
        Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: getrlimit/setrlimit only read and write the struct given.
            let raised = unsafe {
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max && {
                    limit.rlim_cur = limit.rlim_max;
                    libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
                }
            };
            if raised {
                std::fs::File::open(path)
            } else {
                Err(e)
            }
        }
        other => other,
    }
}

/// The lines of one file, read one at a time (invalid UTF-8 replaced, never refused: strace
/// escapes what it prints), up to a byte limit: a file still being written reads the same on
/// every pass. A read error ends the lines and is kept for [`RawLines::finish`].
pub struct RawLines {
    reader: std::io::Take<std::io::BufReader<std::fs::File>>,
    path: PathBuf,
    buf: Vec<u8>,
    /// Bytes read so far.
    pub bytes: u64,
    /// Non-blank lines read so far.
    pub non_blank: usize,
    error: Option<std::io::Error>,
}

impl RawLines {
    /// Opens `file`, to be read up to `limit` bytes (`u64::MAX`: to its end).
    pub fn open(file: &SourceFile, limit: u64) -> Result<Self, ImportError> {
        let opened = open_raising_limit(&file.path).map_err(|source| match source.raw_os_error() {
            Some(libc::EMFILE) => ImportError::TooManyOpen { path: file.path.clone() },
            _ => ImportError::Read { path: file.path.clone(), source },
        })?;
        Ok(Self {
            reader: std::io::Read::take(std::io::BufReader::new(opened), limit),
            path: file.path.clone(),
            buf: Vec::new(),
            bytes: 0,
            non_blank: 0,
            error: None,
        })
    }

    /// The read error that ended the lines early, if one did.
    pub fn finish(&mut self) -> Result<(), ImportError> {
        match self.error.take() {
            Some(source) => Err(ImportError::Read { path: self.path.clone(), source }),
            None => Ok(()),
        }
    }

    /// Reads up to the next newline, keeping at most [`MAX_LINE`] bytes of it; `false` at the end.
    fn fill(&mut self) -> std::io::Result<bool> {
        use std::io::{BufRead, Read};
        self.buf.clear();
        let kept = (&mut self.reader).take(MAX_LINE as u64).read_until(b'\n', &mut self.buf)?;
        self.bytes += kept as u64;
        if kept == MAX_LINE && self.buf.last() != Some(&b'\n') {
            self.bytes += self.reader.skip_until(b'\n')? as u64;
        }
        Ok(kept > 0)
    }
}

impl Iterator for RawLines {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if self.error.is_some() {
            return None;
        }
        match self.fill() {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                self.error = Some(e);
                return None;
            }
        }
        // As `str::lines`: the newline and a carriage return before it are not part of the line.
        let mut bytes = self.buf.as_slice();
        if let Some(rest) = bytes.strip_suffix(b"\n") {
            bytes = rest.strip_suffix(b"\r").unwrap_or(rest);
        }
        let line = String::from_utf8_lossy(bytes).into_owned();
        if !line.trim().is_empty() {
            self.non_blank += 1;
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_of_dash_ff_files_is_one_capture() {
        let dir = tempfile::tempdir().unwrap();
        for tid in [4164, 4163, 4200] {
            std::fs::write(dir.path().join(format!("trace.{tid}")), "exit(0) = ?\n").unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let (layout, files) = discover(dir.path()).unwrap();
        assert_eq!(layout, Layout::PerThread);
        assert_eq!(files.iter().map(|f| f.tid).collect::<Vec<_>>(), vec![Some(4163), Some(4164), Some(4200)]);
        let (layout, by_prefix) = discover(&dir.path().join("trace")).unwrap();
        assert_eq!((layout, by_prefix.len()), (Layout::PerThread, 3));
        let (layout, one) = discover(&dir.path().join("trace.4164")).unwrap();
        assert_eq!((layout, one[0].tid), (Layout::Single, Some(4164)));
    }

    #[test]
    fn two_captures_in_one_directory_must_be_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.1"), "").unwrap();
        std::fs::write(dir.path().join("b.2"), "").unwrap();
        let err = discover(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a, b"), "{err}");
    }

    fn lines(path: &Path, limit: u64) -> (Vec<String>, RawLines) {
        let mut raw = RawLines::open(&file(path.to_path_buf()), limit).unwrap();
        let lines = raw.by_ref().collect();
        raw.finish().unwrap();
        (lines, raw)
    }

    #[test]
    fn lines_read_one_at_a_time_split_like_str_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, b"a\r\n\n  \nb\xff\nlast\r").unwrap();
        let (got, raw) = lines(&path, u64::MAX);
        let whole =
            String::from_utf8_lossy(&std::fs::read(&path).unwrap()).lines().map(String::from).collect::<Vec<_>>();
        assert_eq!(got, whole);
        assert_eq!((raw.non_blank, raw.bytes), (3, 15));
    }

    #[test]
    fn a_later_read_stops_where_the_first_ended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        let (_, first) = lines(&path, u64::MAX);
        std::fs::write(&path, "one\ntwo\nthree, written meanwhile\n").unwrap();
        assert_eq!(lines(&path, first.bytes).0, ["one", "two"]);
    }

    #[test]
    fn an_overlong_line_is_cut_and_the_next_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        let long = "x".repeat(MAX_LINE + 10);
        std::fs::write(&path, format!("{long}\nnext\n")).unwrap();
        let (got, raw) = lines(&path, u64::MAX);
        assert_eq!((got[0].len(), got[1].as_str()), (MAX_LINE, "next"));
        assert_eq!(raw.bytes, (MAX_LINE + 10 + 1 + 5) as u64);
    }

    #[test]
    fn missing_paths_and_empty_directories_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(discover(&dir.path().join("nope")), Err(ImportError::NotFound { .. })));
        assert!(matches!(discover(dir.path()), Err(ImportError::NoTraceFiles { .. })));
    }
}
