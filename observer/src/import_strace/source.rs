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

/// The lines of a file (invalid UTF-8 replaced, never refused: strace escapes what it prints).
pub fn read_lines(file: &SourceFile) -> Result<Vec<String>, ImportError> {
    let bytes = std::fs::read(&file.path).map_err(|source| ImportError::Read { path: file.path.clone(), source })?;
    Ok(String::from_utf8_lossy(&bytes).lines().map(str::to_string).collect())
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

    #[test]
    fn missing_paths_and_empty_directories_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(discover(&dir.path().join("nope")), Err(ImportError::NotFound { .. })));
        assert!(matches!(discover(dir.path()), Err(ImportError::NoTraceFiles { .. })));
    }
}
