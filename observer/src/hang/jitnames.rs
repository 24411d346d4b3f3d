//! Names of JIT-compiled code that runtimes write for profilers: perf maps
//! (`/tmp/perf-PID.map`, text lines `START SIZE NAME`) and jitdump files (`jit-PID.dump`, binary
//! code-load records, found because the runtime keeps them mapped). Later entries win, as code is
//! moved and its space reused.
use std::path::{Path, PathBuf};

/// One named range of JIT code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JitSymbol {
    pub start: u64,
    pub size: u64,
    pub name: String,
}

/// Every name a process wrote, and where they came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JitNames {
    symbols: Vec<JitSymbol>,
    /// The files read, for the record.
    pub sources: Vec<PathBuf>,
}

impl JitNames {
    /// The name covering `addr` and the offset into it; the last written wins.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        self.symbols
            .iter()
            .rev()
            .find(|s| s.start <= addr && addr - s.start < s.size.max(1))
            .map(|s| (s.name.as_str(), addr - s.start))
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// The names of process `pid`: its perf map (looked for through its own root, for processes
    /// in another mount namespace, then in this /tmp) and every jitdump file it has mapped.
    /// `mapped_files` are the paths of its mappings.
    pub fn of_process<'a>(pid: u32, mapped_files: impl IntoIterator<Item = &'a str>) -> JitNames {
        let mut names = JitNames::default();
        // Read through the process's own root (another mount namespace has another /tmp), named
        // as the process sees it.
        let seen_as = PathBuf::from(format!("/tmp/perf-{pid}.map"));
        let perf_map = [PathBuf::from(format!("/proc/{pid}/root{}", seen_as.display())), seen_as.clone()]
            .into_iter()
            .find(|p| p.is_file());
        if let Some(path) = perf_map {
            if let Ok(text) = std::fs::read(&path) {
                names.symbols.extend(parse_perf_map(&String::from_utf8_lossy(&text)));
                names.sources.push(seen_as);
            }
        }
        let mut dumps: Vec<&str> = mapped_files.into_iter().filter(|p| is_jitdump_name(p)).collect();
        dumps.sort_unstable();
        dumps.dedup();
        for dump in dumps {
            let path = Path::new(dump);
            // Through the process's root: the path is as the process sees it.
            let seen = PathBuf::from(format!("/proc/{pid}/root{dump}"));
            let data = std::fs::read(&seen).or_else(|_| std::fs::read(path));
            if let Ok(data) = data {
                names.symbols.extend(parse_jitdump(&data));
                names.sources.push(path.to_path_buf());
            }
        }
        names
    }
}

/// `jit-1234.dump`, wherever it lives.
fn is_jitdump_name(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_prefix("jit-")
        .and_then(|rest| rest.strip_suffix(".dump"))
        .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

fn hex(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")).unwrap_or(text);
    u64::from_str_radix(digits, 16).ok()
}

/// Lines `START SIZE NAME`: start and size in hex (with or without `0x`), the name the rest of
/// the line (it may hold spaces). Lines that do not parse are skipped: a runtime may be writing
/// the last one right now.
pub fn parse_perf_map(text: &str) -> Vec<JitSymbol> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.trim_start().splitn(3, ' ');
            let start = hex(fields.next()?)?;
            let size = hex(fields.next()?)?;
            let name = fields.next()?.trim();
            (!name.is_empty()).then(|| JitSymbol { start, size, name: name.to_string() })
        })
        .collect()
}

/// The jitdump format (linux tools/perf/Documentation/jitdump-specification.txt): a header
/// starting with the magic `JiTD` and its own size, then records `id u32, total_size u32,
/// timestamp u64` + body. Only code loads (`id 0`: pid u32, tid u32, vma u64, code_addr u64,
/// code_size u64, code_index u64, NUL-terminated name, code) and code moves (`id 1`: pid, tid, vma,
/// old_code_addr, new_code_addr, code_size, code_index) name anything. A cut tail is ignored.
pub fn parse_jitdump(data: &[u8]) -> Vec<JitSymbol> {
    const MAGIC: u32 = 0x4A69_5444;
    const CODE_LOAD: u32 = 0;
    const CODE_MOVE: u32 = 1;
    let u32_at = |at: usize| data.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    let u64_at = |at: usize| data.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    // The magic is written in the producer's byte order; only little-endian dumps are read.
    if u32_at(0) != Some(MAGIC) {
        return Vec::new();
    }
    let Some(header_size) = u32_at(8) else { return Vec::new() };
    let mut at = header_size as usize;
    let mut out: Vec<JitSymbol> = Vec::new();
    let mut by_index: std::collections::HashMap<u64, String> = Default::default();
    while let (Some(id), Some(size)) = (u32_at(at), u32_at(at + 4)) {
        let size = size as usize;
        if size < 16 || at + size > data.len() {
            break;
        }
        let body = at + 16;
        match id {
            CODE_LOAD => {
                let (Some(addr), Some(code_size), Some(index)) =
                    (u64_at(body + 16), u64_at(body + 24), u64_at(body + 32))
                else {
                    break;
                };
                let name_at = body + 40;
                let name_end = data[name_at..at + size].iter().position(|&b| b == 0).map_or(at + size, |n| name_at + n);
                let name = String::from_utf8_lossy(&data[name_at..name_end]).into_owned();
                by_index.insert(index, name.clone());
                out.push(JitSymbol { start: addr, size: code_size, name });
            }
            CODE_MOVE => {
                let (Some(new_addr), Some(code_size), Some(index)) =
                    (u64_at(body + 24), u64_at(body + 32), u64_at(body + 40))
                else {
                    break;
                };
                if let Some(name) = by_index.get(&index) {
                    out.push(JitSymbol { start: new_addr, size: code_size, name: name.clone() });
                }
            }
            _ => {}
        }
        at += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_map_lines_are_start_size_and_a_name_with_spaces() {
        let text = "7f5d88005c80 1c0 JS:*spinForeverInJs [eval]:1\n\
                    0x7f5d88006000 0x40 LazyCompile:~main file.js:3\n\
                    garbage line\n\
                    7f5d88007000 zz bad size\n\
                    7f5d88008000 10\n\
                    7f5d88005d00 20 Builtin:ArgumentsAdaptor";
        let symbols = parse_perf_map(text);
        assert_eq!(symbols.len(), 3, "{symbols:?}");
        assert_eq!(
            symbols[0],
            JitSymbol { start: 0x7f5d_8800_5c80, size: 0x1c0, name: "JS:*spinForeverInJs [eval]:1".into() }
        );
        assert_eq!(symbols[1].start, 0x7f5d_8800_6000);
        let names = JitNames { symbols, sources: vec![] };
        assert_eq!(names.lookup(0x7f5d_8800_5d44), Some(("JS:*spinForeverInJs [eval]:1", 0xc4)));
        // The later entry covering the same address wins (code moved or replaced).
        assert_eq!(names.lookup(0x7f5d_8800_5d10), Some(("Builtin:ArgumentsAdaptor", 0x10)));
        assert_eq!(names.lookup(0x7f5d_8800_5e40), None, "one past the end");
        assert_eq!(names.lookup(0x10), None);
    }

    fn record(id: u32, body: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend(id.to_le_bytes());
        r.extend((16 + body.len() as u32).to_le_bytes());
        r.extend(7u64.to_le_bytes());
        r.extend(body);
        r
    }

    fn words(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn jitdump_code_loads_and_moves_are_named() {
        let mut data = Vec::new();
        data.extend(0x4A69_5444u32.to_le_bytes());
        data.extend(1u32.to_le_bytes());
        data.extend(40u32.to_le_bytes());
        data.resize(40, 0);
        let mut load = vec![];
        load.extend(42u32.to_le_bytes());
        load.extend(43u32.to_le_bytes());
        load.extend(words(&[0x1000, 0x1000, 0x80, 5]));
        load.extend(b"Interpreter::loop\0");
        load.extend([0x90; 0x80]);
        data.extend(record(0, &load));
        // An unknown record (debug info) is skipped by its size.
        data.extend(record(2, &[1, 2, 3, 4]));
        let mut moved = vec![];
        moved.extend(42u32.to_le_bytes());
        moved.extend(43u32.to_le_bytes());
        moved.extend(words(&[0x3000, 0x1000, 0x3000, 0x80, 5]));
        data.extend(record(1, &moved));
        // A record cut short at the end.
        data.extend(&record(0, &load)[..30]);
        let symbols = parse_jitdump(&data);
        assert_eq!(
            symbols,
            vec![
                JitSymbol { start: 0x1000, size: 0x80, name: "Interpreter::loop".into() },
                JitSymbol { start: 0x3000, size: 0x80, name: "Interpreter::loop".into() },
            ]
        );
        assert!(parse_jitdump(b"not a dump").is_empty());
    }

    #[test]
    fn jitdump_files_are_recognised_by_name() {
        assert!(is_jitdump_name("/home/u/.debug/jit/x/jit-1234.dump"));
        assert!(is_jitdump_name("jit-1.dump"));
        assert!(!is_jitdump_name("/tmp/jit-.dump") && !is_jitdump_name("/tmp/perf-12.map"));
    }

    #[test]
    fn a_process_without_maps_has_no_names() {
        let names = JitNames::of_process(u32::MAX - 1, []);
        assert!(names.is_empty() && names.sources.is_empty());
    }
}
