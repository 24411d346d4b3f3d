//! Finding (or mounting) tracefs and checking that every tracepoint field the kernel programs read
//! sits at the offset they were built for.
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use observer_common::{
    maps::tracepoints,
    syscalls::WATCHED,
    tracepoint_fields::{Field, FIXED},
};

use super::{error::LayoutMismatch, CaptureError};

pub const TRACEFS: &str = "/sys/kernel/tracing";
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// The tracefs root, mounting it when it is absent and we are allowed to.
pub fn ensure_mounted() -> Result<PathBuf, CaptureError> {
    for root in [TRACEFS, DEBUGFS_TRACING] {
        if Path::new(root).join("events").is_dir() {
            return Ok(PathBuf::from(root));
        }
    }
    let path = PathBuf::from(TRACEFS);
    let status = std::process::Command::new("mount")
        .args(["-t", "tracefs", "nodev", TRACEFS])
        .stderr(std::process::Stdio::piped())
        .output();
    match status {
        Ok(out) if out.status.success() && path.join("events").is_dir() => Ok(path),
        // SAFETY: geteuid has no preconditions.
        Ok(_) if unsafe { libc::geteuid() } != 0 => Err(CaptureError::TracefsMissing { path }),
        Ok(out) => {
            Err(CaptureError::TracefsMount { path, reason: String::from_utf8_lossy(&out.stderr).trim().to_string() })
        }
        Err(e) => Err(CaptureError::TracefsMount { path, reason: e.to_string() }),
    }
}

/// One `field:` line of a format file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatField {
    pub name: String,
    pub offset: usize,
    pub size: usize,
}

/// Parses the `field:` lines of a tracepoint `format` file.
pub fn parse_format(text: &str) -> Vec<FormatField> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let decl = line.strip_prefix("field:")?;
            let mut parts = decl.split(';').map(str::trim);
            let declaration = parts.next()?;
            let mut offset = None;
            let mut size = None;
            for part in parts {
                if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.parse().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.parse().ok();
                }
            }
            // "unsigned long addr" / "char comm[16]" / "__data_loc char[] filename": the name is
            // the last word, without any array suffix.
            let name = declaration.rsplit(' ').next()?.split('[').next()?.to_string();
            Some(FormatField { name, offset: offset?, size: size? })
        })
        .collect()
}

fn read_format(root: &Path, category: &str, event: &str) -> Result<Vec<FormatField>, CaptureError> {
    let path = root.join("events").join(category).join(event).join("format");
    std::fs::read_to_string(&path)
        .map(|t| parse_format(&t))
        .map_err(|_| CaptureError::TracepointMissing { category: category.into(), event: event.into() })
}

/// A field the kernel side reads: where it must be.
struct Want<'a> {
    category: &'a str,
    event: &'a str,
    name: &'a str,
    offset: usize,
    size: usize,
}

impl<'a> From<&'a Field> for Want<'a> {
    fn from(f: &'a Field) -> Self {
        Want { category: f.category, event: f.event, name: f.name, offset: f.offset, size: f.size }
    }
}

fn check_field(fields: &[FormatField], want: &Want<'_>) -> Result<(), CaptureError> {
    let found = fields.iter().find(|f| f.name == want.name);
    match found {
        Some(f) if f.offset == want.offset && f.size == want.size => Ok(()),
        _ => Err(CaptureError::LayoutMismatch(Box::new(LayoutMismatch {
            category: want.category.into(),
            event: want.event.into(),
            field: want.name.into(),
            expected_offset: want.offset,
            expected_size: want.size,
            found_offset: found.map_or("(missing)".into(), |f| f.offset.to_string()),
            found_size: found.map_or("(missing)".into(), |f| f.size.to_string()),
        }))),
    }
}

/// Where a `sys_enter_*` record's first argument sits (only for the message naming a missing one).
const FIRST_ARGUMENT: usize = 16;

/// Syscall arguments: every field of a `sys_enter_*` record after `__syscall_nr`.
fn arguments(fields: &[FormatField]) -> impl Iterator<Item = &FormatField> {
    fields.iter().filter(|f| f.name != "__syscall_nr" && !f.name.starts_with("common_"))
}

/// Checks every field read by the kernel side against this kernel's format files.
/// Returns the number of fields checked.
pub fn verify_layout(root: &Path) -> Result<usize, CaptureError> {
    let mut checked = 0;
    let mut cache: HashMap<(&str, &str), Vec<FormatField>> = HashMap::new();
    for field in FIXED {
        let key = (field.category, field.event);
        let fields = match cache.entry(key) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(read_format(root, field.category, field.event)?),
        };
        check_field(fields, &Want::from(field))?;
        checked += 1;
    }
    // Syscalls are caught by the raw sys_enter/sys_exit tracepoints, whose arguments are the saved
    // registers; what the format files still tell is that each watched call exists on this
    // kernel with at least the arguments observer records.
    read_format(root, tracepoints::RAW_SYSCALLS, tracepoints::SYS_ENTER)?;
    read_format(root, tracepoints::RAW_SYSCALLS, tracepoints::SYS_EXIT)?;
    for sc in WATCHED {
        let enter = format!("sys_enter_{}", sc.name);
        let fields = read_format(root, "syscalls", &enter)?;
        let found = arguments(&fields).count();
        if found < sc.nargs as usize {
            return Err(CaptureError::LayoutMismatch(Box::new(LayoutMismatch {
                category: "syscalls".into(),
                event: enter,
                field: format!("argument {}", found + 1),
                expected_offset: FIRST_ARGUMENT + 8 * found,
                expected_size: 8,
                found_offset: "(missing)".into(),
                found_size: "(missing)".into(),
            })));
        }
        checked += 1;
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MMAP_ENTER: &str = "name: sys_enter_mmap
ID: 174
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;
\tfield:unsigned long addr;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned long len;\toffset:24;\tsize:8;\tsigned:0;
\tfield:char comm[16];\toffset:32;\tsize:16;\tsigned:0;

print fmt: \"addr: 0x%08lx\"
";

    #[test]
    fn format_fields_are_parsed_with_names_offsets_and_sizes() {
        let fields = parse_format(MMAP_ENTER);
        assert_eq!(fields.len(), 6);
        assert_eq!(fields[2], FormatField { name: "__syscall_nr".into(), offset: 8, size: 4 });
        assert_eq!(fields[4], FormatField { name: "len".into(), offset: 24, size: 8 });
        assert_eq!(fields[5], FormatField { name: "comm".into(), offset: 32, size: 16 });
    }

    #[test]
    fn a_moved_field_is_reported_with_both_offsets() {
        let fields = parse_format(MMAP_ENTER);
        let want = Want { category: "syscalls", event: "sys_enter_mmap", name: "len", offset: 32, size: 8 };
        let err = check_field(&fields, &want).unwrap_err().to_string();
        assert!(err.contains("offset 24 size 8") && err.contains("offset 32 size 8"), "{err}");
    }

    #[test]
    fn this_kernels_layout_matches_when_tracefs_is_available() {
        let root = Path::new(TRACEFS);
        if !root.join("events/syscalls").is_dir() {
            eprintln!("skipped: tracefs not mounted at {TRACEFS}");
            return;
        }
        let checked = verify_layout(root).unwrap();
        assert_eq!(checked, FIXED.len() + WATCHED.len(), "every field and syscall is checked");
    }
}
