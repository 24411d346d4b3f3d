//! A process's memory mappings (/proc/<pid>/maps, on procfs): address ranges, whether they hold
//! code, and the file or pseudo-file behind each, named as the kernel names it.
use procfs::process::{MMPermissions, MMapPath, MemoryMap, Process};

/// One line of /proc/<pid>/maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub executable: bool,
    pub file_offset: u64,
    /// The file, or `[stack]`, `[vdso]` and the like; `None` for anonymous memory.
    pub path: Option<String>,
}

impl Mapping {
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// The pseudo-path text procfs parsed out of the maps line, back as the kernel wrote it.
fn path_text(path: &MMapPath) -> Option<String> {
    Some(match path {
        MMapPath::Path(p) => p.to_string_lossy().into_owned(),
        MMapPath::Heap => "[heap]".into(),
        MMapPath::Stack => "[stack]".into(),
        MMapPath::TStack(tid) => format!("[stack:{tid}]"),
        MMapPath::Vdso => "[vdso]".into(),
        MMapPath::Vvar => "[vvar]".into(),
        MMapPath::Vsyscall => "[vsyscall]".into(),
        MMapPath::Rollup => "[rollup]".into(),
        MMapPath::Vsys(key) => format!("/SYSV{key:08x}"),
        MMapPath::Other(name) => format!("[{name}]"),
        MMapPath::Anonymous => return None,
    })
}

impl From<&MemoryMap> for Mapping {
    fn from(m: &MemoryMap) -> Self {
        Mapping {
            start: m.address.0,
            end: m.address.1,
            executable: m.perms.contains(MMPermissions::EXECUTE),
            file_offset: m.offset,
            path: path_text(&m.pathname),
        }
    }
}

/// The mappings of process `pid`, in address order; empty when it is gone or unreadable.
pub fn mappings(pid: u32) -> Vec<Mapping> {
    let Ok(pid) = i32::try_from(pid) else { return Vec::new() };
    Process::new(pid).and_then(|p| p.maps()).map(|maps| maps.iter().map(Mapping::from).collect()).unwrap_or_default()
}

/// The mapping holding `addr`.
pub fn mapping_of(maps: &[Mapping], addr: u64) -> Option<&Mapping> {
    maps.iter().find(|m| m.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_its_code_executable_and_its_stack_named() {
        let maps = mappings(std::process::id());
        let code = mapping_of(&maps, this_process_has_its_code_executable_and_its_stack_named as *const () as u64);
        assert!(code.is_some_and(|m| m.executable && m.path.is_some()), "{code:?}");
        assert!(maps.iter().any(|m| m.path.as_deref() == Some("[stack]")));
        assert!(mappings(u32::MAX - 1).is_empty());
    }

    #[test]
    fn pseudo_paths_read_back_as_the_kernel_wrote_them() {
        for text in ["[heap]", "[stack]", "[vdso]", "[stack:42]", "[anon:rust heap]", "/usr/lib/libc.so.6"] {
            assert_eq!(path_text(&MMapPath::from(text).unwrap()).as_deref(), Some(text));
        }
        assert_eq!(path_text(&MMapPath::from("").unwrap()), None);
    }
}
