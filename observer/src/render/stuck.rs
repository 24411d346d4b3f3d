//! `stuck.txt` and `stuck.json`: the stuck snapshot as text, one line per process, thread, blocked
//! call, fd, futex, child wait, frame and sampled chain, and as JSON.
use std::io;

use crate::{
    analysis::{
        runtime::Runtime,
        snapshot::{StuckSnapshot, STUCK_JSON, STUCK_TXT},
    },
    decode::escape_controls,
    out_dir::OutDir,
};

/// Appends one line; names, paths, socket peers and runtime output come from the programs, so
/// control characters in them are escaped.
fn line(out: &mut String, text: String) {
    out.push_str(&escape_controls(&text));
    out.push('\n');
}

/// Sampled call chains listed per thread (all of them are in stuck.json and profile.folded).
const STACKS_SHOWN: usize = 5;

/// The snapshot as `stuck.txt` reads.
pub fn text(snapshot: &StuckSnapshot) -> String {
    let mut out = format!(
        "taken_at: {}\nreason: {}\ncpu_window_s: {:.3}\nsyscalls_in_window: {}\n",
        snapshot.taken_at, snapshot.reason, snapshot.window_s, snapshot.syscalls_in_window
    );
    for p in &snapshot.processes {
        out.push('\n');
        line(
            &mut out,
            format!(
                "process {} ({}) state {} ppid {} threads {} maps_lines {} rss_kb {}{}",
                p.pid,
                p.comm,
                p.state,
                p.ppid,
                p.threads.len(),
                p.maps_lines,
                p.rss_kb,
                if p.children.is_empty() { String::new() } else { format!(" children {:?}", p.children) }
            ),
        );
        if p.runtime != Runtime::Unknown {
            let version = if p.runtime_version.is_empty() { String::new() } else { format!(" {}", p.runtime_version) };
            line(&mut out, format!("  runtime: {}{version}", p.runtime));
        }
        if !p.jit_names.is_empty() {
            line(&mut out, format!("  jit names: {}", p.jit_names));
        }
        if !p.runtime_dump.is_empty() {
            line(&mut out, format!("  runtime dump: {}", p.runtime_dump));
        }
        for t in &p.threads {
            line(
                &mut out,
                format!(
                    "  thread {} ({}) state {} wchan {} cpu {:.0}% (user {:.3}s sys {:.3}s)",
                    t.tid,
                    t.comm,
                    t.state,
                    if t.wchan.is_empty() { "-" } else { &t.wchan },
                    t.cpu_share * 100.0,
                    t.cpu_user_s,
                    t.cpu_system_s
                ),
            );
            if let Some(c) = &t.syscall {
                let age = c.blocked_s.map_or("for an unknown time".to_string(), |s| format!("for {s:.3}s"));
                line(&mut out, format!("    in {} {age} ({})", c.text, c.source));
            }
            for f in &t.fds {
                line(
                    &mut out,
                    format!(
                        "    fd {} -> {} [{}]{}",
                        f.fd,
                        f.target,
                        f.kind,
                        if f.note.is_empty() { String::new() } else { format!(": {}", f.note) }
                    ),
                );
            }
            if let Some(f) = &t.futex {
                let who = match (f.owner_tid, f.joining_tid) {
                    (Some(o), _) => format!("mutex owned by thread {o}"),
                    (None, Some(j)) => format!("joining thread {j}"),
                    _ => "owner unknown".into(),
                };
                let word = f.word.map_or("unreadable".to_string(), |w| w.to_string());
                line(&mut out, format!("    futex {:#x} {} word {word}: {who}", f.addr, f.op));
            }
            if let Some(w) = &t.child_wait {
                line(&mut out, format!("    waits for {}", w.waits_for));
                for c in &w.children {
                    line(&mut out, format!("      child {} ({}) state {}", c.pid, c.comm, c.state));
                }
            }
            if !t.activity.is_empty() {
                line(&mut out, format!("    runtime says: {}", t.activity));
            }
            for frame in &t.user_frames {
                line(&mut out, format!("    at {frame}"));
            }
            for (function, n) in &t.samples {
                line(&mut out, format!("    sampled {n} x {function}"));
            }
            for stack in t.stacks.iter().take(STACKS_SHOWN) {
                let chain: Vec<&str> = stack.frames.iter().rev().map(String::as_str).collect();
                line(&mut out, format!("    chain {} x {}", stack.count, chain.join(" -> ")));
            }
        }
    }
    out
}

/// Writes `stuck.txt` and `stuck.json` into `dir`, and the flame graph of its samples.
pub fn write(snapshot: &StuckSnapshot, dir: &OutDir) -> io::Result<()> {
    dir.write(STUCK_TXT, text(snapshot))?;
    dir.write(STUCK_JSON, crate::rundir::json_text(snapshot).map_err(io::Error::other)?)?;
    super::flame::write(snapshot, dir)
}
