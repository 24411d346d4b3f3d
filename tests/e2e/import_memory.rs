//! `import_memory`: `observer import-strace` streams. A synthetic `strace -ff -tt -T` capture of
//! eight busy threads (calls of every shape strace writes, `<unfinished ...>` / `<... resumed>`
//! pairs, clone3 and exits) is imported at two sizes, ten times apart; the child's peak RSS (the
//! largest `VmHWM` of its own image, read while it runs) stays under a fixed bound and about the same for both. Also: more
//! thread files alive at once than files may be open.
use std::{
    io::{BufWriter, Write},
    path::Path,
    process::{Command, Stdio},
};

use crate::harness::*;

const THREADS: u32 = 8;
const FIRST_TID: u32 = 4000;

/// `HH:MM:SS.uuuuuu` of `us` microseconds after midnight.
fn time_of_day(us: u64) -> String {
    let (s, us) = (us / 1_000_000, us % 1_000_000);
    format!("{:02}:{:02}:{:02}.{us:06}", s / 3600, s / 60 % 60, s % 60)
}

/// Thread `k`'s `-ff` file: a line every 50 µs (the threads' lines interleaved in time), calls
/// until it holds `bytes`. Returns its line count.
fn thread_file(dir: &Path, k: u32, bytes: u64) -> u64 {
    let tid = FIRST_TID + k;
    let mut out = BufWriter::new(std::fs::File::create(dir.join(format!("trace.{tid}"))).unwrap());
    let (mut us, mut lines, mut written) = (10 * 3600 * 1_000_000 + u64::from(k) * 7, 0u64, 0u64);
    let mut put = |text: &str| {
        let line = format!("{} {text}\n", time_of_day(us));
        out.write_all(line.as_bytes()).unwrap();
        us += 50;
        lines += 1;
        written += line.len() as u64;
        written
    };
    if k == 0 {
        put("execve(\"/usr/bin/app\", [\"app\", \"8\"], 0x7ffd127c9168 /* 35 vars */) = 0 <0.000101>");
        put(&format!("set_tid_address(0x7f4ea2a37a10) = {tid} <0.000002>"));
        for child in FIRST_TID + 1..FIRST_TID + THREADS {
            put("mmap(NULL, 8392704, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_STACK, -1, 0) = 0x7f4ea2a37000 <0.000003>");
            put("mprotect(0x7f4ea2a38000, 8388608, PROT_READ|PROT_WRITE) = 0 <0.000003>");
            put("clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f4ea2a36990, parent_tid=0x7f4ea2a36990, exit_signal=0, stack=0x7f4ea2236000, stack_size=0x7fff80, tls=0x7f4ea2a366c0} <unfinished ...>");
            put(&format!("<... clone3 resumed> => {{parent_tid=[{child}]}}, 88) = {child} <0.000028>"));
        }
    }
    for i in 0u64.. {
        let call = match i % 6 {
            0 => "futex(0x7ff4443cd990, FUTEX_WAIT_PRIVATE, 2, NULL <unfinished ...>".to_string(),
            1 => "<... futex resumed>) = 0 <0.000150>".to_string(),
            2 => "read(3</etc/passwd>, \"root:x:0:0:root:/root:/bin/bash\\n\"..., 4096) = 1234 <0.000057>".to_string(),
            3 => "mmap(NULL, 2097152, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f4e9c000000 <0.000010>"
                .to_string(),
            4 => format!("openat(AT_FDCWD, \"/tmp/data.{i}\", O_RDONLY|O_CLOEXEC) = 5</tmp/data.{i}> <0.000012>"),
            _ => format!("write(1</dev/null>, \"progress {i}\\n\", 13) = 13 <0.000004>"),
        };
        if put(&call) >= bytes {
            break;
        }
    }
    put(if k == 0 { "exit_group(0) = ?" } else { "exit(0) = ?" });
    put("+++ exited with 0 +++");
    out.flush().unwrap();
    lines
}

/// A capture of [`THREADS`] threads holding about `bytes` in all; its line count.
fn capture(dir: &Path, bytes: u64) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    (0..THREADS).map(|k| thread_file(dir, k, bytes / u64::from(THREADS))).sum()
}

/// Imports `input` into `out` as a child; its peak resident set in KiB: the largest `VmHWM` of
/// its `/proc/PID/status`, read every few milliseconds while it runs. (Not `ru_maxrss`: at exec
/// the kernel carries the forking process's high-water mark into it, so it would measure the test
/// binary.)
fn import_peak_kib(input: &Path, out: &Path) -> u64 {
    let mut child = Command::new(observer_bin())
        .arg("import-strace")
        .arg(input)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        }) {
            peak = u64::max(peak, hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(status.success(), "import of {} failed: {status}", input.display());
    assert!(peak > 0, "VmHWM of the import was read");
    peak
}

#[test]
fn a_large_dash_ff_capture_imports_in_memory_that_does_not_grow_with_it() {
    const MIB: u64 = 1 << 20;
    // Debug builds read a few MB a second: large enough that holding the input (today's ~5x in
    // debug) would pass the bound many times over, small enough for the suite.
    const LARGE: u64 = 40 * MIB;
    const BOUND_KIB: u64 = 64 * 1024;
    const SPREAD_KIB: u64 = 16 * 1024;
    let root = scratch("import-memory");
    let mut peaks = Vec::new();
    for (name, bytes) in [("small", LARGE / 10), ("large", LARGE)] {
        let input = root.join(name);
        let lines = capture(&input, bytes);
        let out = root.join(format!("{name}-run"));
        let peak = import_peak_kib(&input, &out);
        eprintln!("{name}: {lines} lines, {bytes} bytes, peak RSS {peak} KiB");
        let s = summary(&out);
        assert_eq!(
            (s["lines_read"].parse::<u64>().unwrap(), s["unparsed_lines"].as_str()),
            (lines, "0"),
            "every line read and understood"
        );
        assert_eq!((s["threads_seen"].as_str(), s["processes_seen"].as_str()), ("8", "1"));
        assert_eq!(s["exit"], "code 0");
        peaks.push(peak);
        std::fs::remove_dir_all(&input).unwrap();
    }
    let (small, large) = (peaks[0], peaks[1]);
    assert!(large < BOUND_KIB, "peak RSS {large} KiB for {LARGE} bytes of input, over {BOUND_KIB} KiB");
    assert!(large < small + SPREAD_KIB, "peak RSS grew with the input: {small} KiB -> {large} KiB for 10x the lines");
}

#[test]
fn more_thread_files_alive_at_once_than_files_may_be_open() {
    let root = scratch("import-many-open");
    let input = root.join("many");
    std::fs::create_dir_all(&input).unwrap();
    // 300 threads, all alive from the first second to the fourth.
    let leader = (1..=300)
        .map(|i| format!("10:00:00.{i:06} clone3({{flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, exit_signal=0}}, 88) = {} <0.000010>\n", 1000 + i))
        .collect::<String>();
    std::fs::write(input.join("m.1000"), format!("{leader}10:00:05.000000 exit_group(0) = ?\n")).unwrap();
    for i in 1..=300 {
        let text = format!("10:00:01.{i:06} brk(NULL) = 0x1000 <0.000002>\n10:00:04.{i:06} +++ exited with 0 +++\n");
        std::fs::write(input.join(format!("m.{}", 1000 + i)), text).unwrap();
    }
    let import = |limit: &str, out: &str| {
        Command::new("prlimit")
            .arg(format!("--nofile={limit}"))
            .arg(observer_bin())
            .arg("import-strace")
            .arg(&input)
            .arg("--out")
            .arg(root.join(out))
            .output()
            .unwrap()
    };
    // A soft limit below what is needed, with room under the hard one: raised.
    let raised = import("64:4096", "raised");
    assert!(raised.status.success(), "{}", String::from_utf8_lossy(&raised.stderr));
    assert_eq!(summary(&root.join("raised"))["threads_seen"], "301");
    // No room: a one-line error naming the fix, and nothing written.
    let refused = import("64:64", "refused");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(66), "{stderr}");
    assert!(stderr.contains("too many files open") && stderr.contains("ulimit -n"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(!root.join("refused").exists(), "nothing written");
}
