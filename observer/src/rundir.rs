//! The run directory: where it goes, its fixed file names, and the `latest` link beside it.
use std::{
    io,
    path::{Path, PathBuf},
};

use crate::out_dir::{Access, OutDir};

pub const EVENTS: &str = "events.bin";
pub const STDOUT: &str = "stdout.txt";
pub const STDERR: &str = "stderr.txt";
pub const COMMAND: &str = "command.txt";
pub const SUMMARY_TXT: &str = "summary.txt";
pub const SUMMARY_JSON: &str = "summary.json";
pub const DEFAULT_PARENT: &str = "observer-runs";
/// The link in [`DEFAULT_PARENT`] to the newest default run directory.
pub const LATEST: &str = "latest";

/// A directory name from a command and a time: `sleep-20261122T004107Z`.
pub fn default_name(command: &str, compact_time: &str) -> String {
    let base = Path::new(command).file_name().map_or_else(|| command.to_string(), |n| n.to_string_lossy().into_owned());
    let clean: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{clean}-{compact_time}")
}

/// Where a run directory goes.
#[derive(Clone, Debug)]
pub enum Place {
    /// `./observer-runs/<label>-<time>/`, with `./observer-runs/latest` pointing at it.
    Default { label: String, access: Access },
    /// `--out DIR`: that path exactly, claimed (see [`OutDir::claim`]).
    Exactly { path: PathBuf, access: Access },
    /// A new directory of this name inside an open one (`repeat`'s attempts).
    Inside(OutDir, String),
}

impl Place {
    /// `--out DIR` when given, else the default place named after `label`.
    pub fn out_or_default(out: Option<&Path>, label: impl Into<String>, access: Access) -> Place {
        match out {
            Some(out) => Place::Exactly { path: out.to_path_buf(), access },
            None => Place::Default { label: label.into(), access },
        }
    }

    /// The path an error in creating it is about.
    pub fn path(&self) -> PathBuf {
        match self {
            Place::Default { .. } => PathBuf::from(DEFAULT_PARENT),
            Place::Exactly { path, .. } => path.clone(),
            Place::Inside(parent, name) => parent.join(name),
        }
    }
}

/// Creates the run directory at `place`; `compact_time` names a default one.
pub fn create(place: &Place, compact_time: &str) -> io::Result<OutDir> {
    match place {
        Place::Exactly { path, access } => OutDir::claim(path, *access),
        Place::Inside(parent, name) => parent.create_dir(name),
        Place::Default { label, access } => {
            let parent = OutDir::open_or_create(Path::new(DEFAULT_PARENT), *access)?;
            let dir = parent.create_unique_dir(&default_name(label, compact_time))?;
            let name = dir.path().file_name().expect("named").to_string_lossy().into_owned();
            // A `latest` that is not a link (a directory someone made) stays; the run goes on.
            if let Err(e) = parent.replace_link(LATEST, &name) {
                eprintln!(
                    "observer: {} not updated ({e}): it is not a link observer made; the run directory is {}",
                    parent.join(LATEST).display(),
                    dir.path().display()
                );
            }
            Ok(dir)
        }
    }
}

/// A value as the JSON files of a run directory hold it: pretty-printed, ending with a newline.
pub fn json_text<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

/// Quotes a command line for display the way a shell would need it; an argument with control
/// characters (a newline, an escape sequence) in bash's `$'...'` form, so it stays on one line.
pub fn shell_join(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
                a.clone()
            } else if a.chars().any(char::is_control) {
                format!("$'{}'", crate::decode::escape(a).replace('\'', r"\'"))
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_use_the_program_base_name() {
        assert_eq!(default_name("/usr/bin/sleep", "20261122T004107Z"), "sleep-20261122T004107Z");
        assert_eq!(default_name("my prog", "T"), "my_prog-T");
    }

    #[test]
    fn shell_join_quotes_only_what_needs_it() {
        assert_eq!(shell_join(&["sh".into(), "-c".into(), "echo 'hi'".into()]), r"sh -c 'echo '\''hi'\'''");
        assert_eq!(shell_join(&["a\n'b\x1b".into()]), r"$'a\n\'b\33'");
    }
}
