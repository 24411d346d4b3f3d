//! The lines an import could not read, as `import.txt` lists them: the first [`LISTED`] in file
//! and line order, each cut to a readable length, and a count of all — bounded however many there
//! are.
use std::{collections::BinaryHeap, path::PathBuf};

/// Unreadable lines listed one by one; the rest are counted.
pub const LISTED: usize = 1000;

/// Characters of a line kept for its listing.
const SHOWN_CHARS: usize = 160;

/// `text` as a listing shows it: its end trimmed, cut to [`SHOWN_CHARS`] characters with `...`
/// after a cut. Cutting again changes nothing.
pub fn clip(text: &str) -> String {
    let text = text.trim_end();
    if text.chars().count() > SHOWN_CHARS {
        text.chars().take(SHOWN_CHARS).collect::<String>() + "..."
    } else {
        text.to_string()
    }
}

/// One listed line: its place (the file's rank in path order, the line number, the order it was
/// met in) and its clipped text.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    place: (usize, usize, u64),
    file: usize,
    text: String,
}

/// The unreadable lines of one import's files.
pub struct Unparsed {
    paths: Vec<PathBuf>,
    /// Per file, its rank when the paths are sorted.
    rank: Vec<usize>,
    /// The [`LISTED`] first, the last on top.
    kept: BinaryHeap<Entry>,
    total: usize,
    /// The first one met, for an import that read nothing at all.
    first: Option<(PathBuf, usize, String)>,
}

impl Unparsed {
    /// For the lines of `paths` (the files by index).
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let mut by_path: Vec<usize> = (0..paths.len()).collect();
        by_path.sort_by(|&a, &b| paths[a].cmp(&paths[b]));
        let mut rank = vec![0; paths.len()];
        for (r, &file) in by_path.iter().enumerate() {
            rank[file] = r;
        }
        Self { paths, rank, kept: BinaryHeap::new(), total: 0, first: None }
    }

    /// Line `line` (from 1) of file `file` could not be read.
    pub fn add(&mut self, file: usize, line: usize, text: &str) {
        let rank = self.rank.get(file).copied().unwrap_or(usize::MAX);
        let entry = Entry { place: (rank, line, self.total as u64), file, text: clip(text) };
        if self.first.is_none() {
            self.first = Some((self.path(file), line, entry.text.clone()));
        }
        self.total += 1;
        if self.kept.len() < LISTED {
            self.kept.push(entry);
        } else if self.kept.peek().is_some_and(|last| entry.place < last.place) {
            self.kept.pop();
            self.kept.push(entry);
        }
    }

    fn path(&self, file: usize) -> PathBuf {
        self.paths.get(file).cloned().unwrap_or_default()
    }

    /// How many lines could not be read.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The first line met that could not be read.
    pub fn first(&self) -> Option<&(PathBuf, usize, String)> {
        self.first.as_ref()
    }

    /// The listed lines in file and line order: file, line number, clipped text.
    pub fn listed(&self) -> Vec<(PathBuf, usize, String)> {
        let mut kept: Vec<&Entry> = self.kept.iter().collect();
        kept.sort_by_key(|e| e.place);
        kept.into_iter().map(|e| (self.path(e.file), e.place.1, e.text.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_lines_by_path_and_number_are_kept_and_the_rest_counted() {
        // Files in tid order; `t.100` sorts before `t.99` as a path.
        let mut u = Unparsed::new(vec!["t.99".into(), "t.100".into()]);
        for line in (1..=LISTED + 5).rev() {
            u.add(0, line, "x");
        }
        u.add(1, 7, "y");
        u.add(1, 3, "z");
        let listed = u.listed();
        assert_eq!((u.total(), listed.len()), (LISTED + 7, LISTED));
        assert_eq!(listed[0], (PathBuf::from("t.100"), 3, "z".to_string()));
        assert_eq!(listed[1], (PathBuf::from("t.100"), 7, "y".to_string()));
        assert_eq!(listed[2], (PathBuf::from("t.99"), 1, "x".to_string()));
        assert_eq!(listed.last().unwrap().1, LISTED - 2);
        assert_eq!(u.first().unwrap().1, LISTED + 5, "the first met, not the first listed");
    }

    #[test]
    fn lines_are_clipped_once_and_for_all() {
        let long = format!("{}   {}", "a".repeat(158), "b".repeat(10));
        let clipped = clip(&long);
        assert_eq!(clipped, format!("{}  ...", "a".repeat(158)));
        assert_eq!(clip(&clipped), clipped);
        assert_eq!(clip("short  \t"), "short");
    }
}
