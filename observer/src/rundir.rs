//! The run directory: where it goes, its fixed file names, and the `latest` link beside it.
use std::{
    io,
    path::{Path, PathBuf},
};

pub const EVENTS: &str = "events.bin";
pub const STDOUT: &str = "stdout.txt";
pub const STDERR: &str = "stderr.txt";
pub const COMMAND: &str = "command.txt";
pub const SUMMARY_TXT: &str = "summary.txt";
pub const SUMMARY_JSON: &str = "summary.json";
pub const DEFAULT_PARENT: &str = "observer-runs";

/// A directory name from a command and a time: `sleep-20261122T004107Z`.
pub fn default_name(command: &str, compact_time: &str) -> String {
    let base = Path::new(command).file_name().map_or_else(|| command.to_string(), |n| n.to_string_lossy().into_owned());
    let clean: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{clean}-{compact_time}")
}

/// Creates the run directory. With `out`, that path exactly (it may exist but must be empty of a
/// previous capture); without, `./observer-runs/<cmd>-<time>/` plus a `latest` symlink.
pub fn create(out: Option<&Path>, command: &str, compact_time: &str) -> io::Result<PathBuf> {
    if let Some(out) = out {
        if out.join(EVENTS).exists() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} already holds a capture; choose another --out", out.display()),
            ));
        }
        std::fs::create_dir_all(out)?;
        return Ok(out.to_path_buf());
    }
    let parent = Path::new(DEFAULT_PARENT);
    std::fs::create_dir_all(parent)?;
    let name = default_name(command, compact_time);
    let mut dir = parent.join(&name);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = parent.join(format!("{name}.{n}"));
    }
    std::fs::create_dir(&dir)?;
    let latest = parent.join("latest");
    let _ = std::fs::remove_file(&latest);
    std::os::unix::fs::symlink(dir.file_name().expect("named"), &latest)?;
    Ok(dir)
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
