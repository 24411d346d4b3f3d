//! What an event log costs: for each `events.bin` given, its size per record, the CPU time to read
//! it, and the CPU time to write its records again as version 2 (to a scratch file). A measurement
//! for docs/event-log.md, not a test:
//!
//! ```sh
//! cargo run --release --example eventlog_cost -- RUN_DIR/events.bin [...]
//! ```
use std::{path::Path, time::Instant};

use observer::{
    event::Event,
    eventlog::{EventLogReader, EventLogWriter},
};

/// CPU time of this thread, seconds.
fn cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// The best of three: other work on the machine only ever adds time.
fn best_of_three(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let start = cpu_s();
            f();
            cpu_s() - start
        })
        .fold(f64::MAX, f64::min)
}

fn main() -> anyhow::Result<()> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(!paths.is_empty(), "usage: eventlog_cost EVENTS.BIN...");
    let scratch = tempfile_path();
    for path in paths {
        let path = Path::new(&path);
        let size = std::fs::metadata(path)?.len();
        let mut reader = EventLogReader::open(path)?;
        let (version, header) = (reader.version(), reader.header().clone());
        let mut events: Vec<Event> = Vec::new();
        while let Some(event) = reader.next_event()? {
            events.push(event);
        }
        let n = events.len().max(1) as f64;
        let read_s = best_of_three(|| {
            let mut reader = EventLogReader::open(path).expect("opened once already");
            while reader.next_event().expect("read once already").is_some() {}
        });
        let mut written = 0;
        let write_s = best_of_three(|| {
            let file = std::fs::File::create(&scratch).expect("scratch file");
            let mut writer = EventLogWriter::new(file, &header).expect("scratch file");
            let now = Instant::now();
            for event in &events {
                writer.append(event, now).expect("scratch file");
            }
            writer.finish().expect("scratch file");
            written = std::fs::metadata(&scratch).map_or(0, |m| m.len());
        });
        let _ = std::fs::remove_file(&scratch);
        println!(
            "{}: version {version}, {} records, {:.2} B a record; read {:.1} ns a record; as version 2 {:.2} B a \
             record, written in {:.1} ns a record (CPU time, best of 3)",
            path.display(),
            events.len(),
            size as f64 / n,
            read_s * 1e9 / n,
            written as f64 / n,
            write_s * 1e9 / n,
        );
    }
    Ok(())
}

fn tempfile_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("eventlog_cost.{}.bin", std::process::id()))
}
