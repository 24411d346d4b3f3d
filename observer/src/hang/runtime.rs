//! Recognising a live process's runtime — Go, CPython, JVM, Node/V8, OCaml, Rust or glibc C —
//! from its executable (ELF sections, symbols, the `.comment` the compiler left) and the
//! libraries it has mapped, with a version where the files say it.
use object::{Object, ObjectSection, ObjectSymbol};

use crate::{analysis::runtime::Runtime, proc::maps::Mapping};

/// What a process was recognised as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recognised {
    pub runtime: Runtime,
    /// `go1.19.8`, `python3.11`, `java-17-openjdk-amd64`; empty when the files do not say.
    pub version: String,
}

/// The file name of a mapping: `libjvm.so` for `/usr/lib/jvm/.../libjvm.so`.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// What the mapped libraries alone say (a runtime that lives in a shared library).
fn from_libraries(maps: &[Mapping]) -> Option<Recognised> {
    let paths = || maps.iter().filter_map(|m| m.path.as_deref());
    if let Some(jvm) = paths().find(|p| file_name(p) == "libjvm.so") {
        // /usr/lib/jvm/<release>/lib/server/libjvm.so
        let release = jvm.split('/').skip_while(|part| *part != "jvm").nth(1).unwrap_or_default();
        return Some(Recognised { runtime: Runtime::Jvm, version: release.to_string() });
    }
    if paths().any(|p| file_name(p).starts_with("libnode.so")) {
        return Some(Recognised { runtime: Runtime::Node, version: String::new() });
    }
    if let Some(lib) = paths().map(file_name).find(|f| f.starts_with("libpython")) {
        let version = lib.trim_start_matches("lib").split(".so").next().unwrap_or_default();
        return Some(Recognised { runtime: Runtime::Cpython, version: version.to_string() });
    }
    None
}

/// The Go version in `.go.buildinfo`: a 14-byte magic, pointer size, flags; with flag 2 (Go
/// 1.18+) the version follows at offset 32 as a varint length and the bytes.
fn go_version(buildinfo: &[u8]) -> Option<String> {
    if !buildinfo.starts_with(b"\xff Go buildinf:") || buildinfo.get(15)? & 2 == 0 {
        return None;
    }
    let (mut len, mut shift, mut at) = (0usize, 0, 32);
    loop {
        let byte = *buildinfo.get(at)?;
        at += 1;
        len |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
    std::str::from_utf8(buildinfo.get(at..at + len)?).ok().map(str::to_string)
}

fn any_named<'data, S: ObjectSymbol<'data>>(mut symbols: impl Iterator<Item = S>, names: &[&str]) -> bool {
    symbols.any(|s| s.name().is_ok_and(|n| names.contains(&n)))
}

/// What the executable itself says.
fn from_executable(file: &object::File<'_>, exe_name: &str) -> Option<Recognised> {
    let found = |runtime, version: &str| Some(Recognised { runtime, version: version.to_string() });
    if let Some(section) = file.section_by_name(".go.buildinfo") {
        let version = section.data().ok().and_then(go_version).unwrap_or_default();
        return found(Runtime::Go, &version);
    }
    if file.section_by_name(".gopclntab").is_some() {
        return found(Runtime::Go, "");
    }
    // Exported symbols first: they are few, and enough for node and python.
    const NODE: &[&str] = &["napi_module_register"];
    const PYTHON: &[&str] = &["Py_BytesMain", "Py_Main", "_PyEval_EvalFrameDefault"];
    const OCAML: &[&str] = &["caml_main", "caml_startup", "caml_program"];
    const GO: &[&str] = &["runtime.main"];
    let python_version = || if exe_name.starts_with("python") { exe_name.to_string() } else { String::new() };
    if any_named(file.dynamic_symbols(), NODE) {
        return found(Runtime::Node, "");
    }
    if any_named(file.dynamic_symbols(), PYTHON) {
        return found(Runtime::Cpython, &python_version());
    }
    for (runtime, names) in [(Runtime::Ocaml, OCAML), (Runtime::Go, GO), (Runtime::Cpython, PYTHON)] {
        if any_named(file.symbols(), names) {
            let version = if runtime == Runtime::Cpython { python_version() } else { String::new() };
            return found(runtime, &version);
        }
    }
    let comment = file.section_by_name(".comment").and_then(|s| s.data().ok()).unwrap_or_default();
    let comment = String::from_utf8_lossy(comment);
    if let Some(rustc) = comment.split('\0').find_map(|c| c.strip_prefix("rustc version ")) {
        return found(Runtime::Rust, rustc.split_whitespace().next().unwrap_or_default());
    }
    None
}

/// The runtime of process `pid`, whose mappings are `maps`. Unknown when its executable cannot
/// be read (gone, or a kernel thread) and nothing mapped says.
pub fn recognise(pid: u32, maps: &[Mapping]) -> Recognised {
    if let Some(found) = from_libraries(maps) {
        return found;
    }
    let exe_name = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let from_exe = std::fs::File::open(format!("/proc/{pid}/exe")).ok().and_then(|f| {
        // SAFETY: the mapping is read only here; a file truncated meanwhile makes object report an
        // error or reads zeros, as the kernel then maps them.
        let data = unsafe { memmap2::Mmap::map(&f) }.ok()?;
        let file = object::File::parse(&*data).ok()?;
        from_executable(&file, &exe_name)
    });
    if let Some(found) = from_exe {
        return found;
    }
    let runtime = if maps.iter().filter_map(|m| m.path.as_deref()).any(|p| file_name(p).starts_with("libc.so")) {
        Runtime::C
    } else {
        Runtime::Unknown
    };
    Recognised { runtime, version: String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc::maps::mappings;

    #[test]
    fn this_test_binary_is_rust() {
        let me = std::process::id();
        let found = recognise(me, &mappings(me));
        assert_eq!(found.runtime, Runtime::Rust, "{found:?}");
        assert!(found.version.starts_with("1."), "{found:?}");
    }

    #[test]
    fn a_c_program_is_glibc_c_and_a_gone_process_is_unknown() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let pid = child.id();
        // Wait until the exec has replaced this binary's image and the loader has mapped libc.
        let mut found = Recognised::default();
        for _ in 0..200 {
            found = recognise(pid, &mappings(pid));
            if found.runtime == Runtime::C {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(found.runtime, Runtime::C, "{found:?}");
        assert_eq!(recognise(u32::MAX - 1, &[]).runtime, Runtime::Unknown);
    }

    fn mapped(path: &str) -> Mapping {
        Mapping { start: 0, end: 1, executable: true, file_offset: 0, path: Some(path.into()) }
    }

    #[test]
    fn runtimes_in_shared_libraries_are_recognised_by_them() {
        let jvm = from_libraries(&[mapped("/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so")]).unwrap();
        assert_eq!(jvm, Recognised { runtime: Runtime::Jvm, version: "java-17-openjdk-amd64".into() });
        let python = from_libraries(&[mapped("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0")]).unwrap();
        assert_eq!(python, Recognised { runtime: Runtime::Cpython, version: "python3.11".into() });
        assert_eq!(from_libraries(&[mapped("/usr/lib/libnode.so.108")]).unwrap().runtime, Runtime::Node);
        assert_eq!(from_libraries(&[mapped("/usr/lib/x86_64-linux-gnu/libc.so.6")]), None);
    }

    #[test]
    fn the_go_version_is_read_from_buildinfo() {
        let mut info = b"\xff Go buildinf:".to_vec();
        info.extend([8, 2]);
        info.resize(32, 0);
        info.push(8);
        info.extend(b"go1.19.8");
        assert_eq!(go_version(&info).as_deref(), Some("go1.19.8"));
        info[15] = 0;
        assert_eq!(go_version(&info), None, "pre-1.18 layout: pointers, not read");
        assert_eq!(go_version(b"short"), None);
    }
}
