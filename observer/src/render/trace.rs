//! One event as one strace-like line, and which thread's log it belongs to. Used by the per-thread
//! trace files and by `replay --format text`, so both always read the same.
use observer_common::flags;

use crate::{
    clock::time_of_day,
    decode::{escape, escape_controls, format_call, si_code_name, signal_name},
    event::{c_str, Event},
    processes::ProcessBook,
};

fn signame(sig: i32) -> String {
    signal_name(sig).map_or_else(|| sig.to_string(), str::to_string)
}

/// The decoded text of an event, without timestamp: `mmap(...) = 0x...`, `--- SIGKILL {...} ---`.
/// `book` must already have observed the event.
pub fn describe(event: &Event, book: &ProcessBook) -> String {
    match event {
        Event::Syscall(e) => format_call(e),
        Event::Fork(e) => {
            let what = if e.header.flags & flags::THREAD != 0 { "thread" } else { "process" };
            format!("+++ created {what} {} +++", e.child_tid)
        }
        Event::Exec(e) => format!("+++ exec {} as {} +++", escape(&c_str(&e.filename)), escape(&c_str(&e.comm))),
        Event::Exit(e) => {
            let group = e.header.flags & flags::GROUP_DEAD != 0;
            match book.process(e.header.tgid).and_then(|p| p.exit.as_ref()).filter(|_| group) {
                Some(exit) => format!(
                    "+++ exited, process {} ended: {} +++",
                    e.header.tgid,
                    crate::processes::describe_exit(exit)
                ),
                None => "+++ thread exited +++".to_string(),
            }
        }
        Event::SignalGenerate(e) => {
            let code = si_code_name(e.sig, e.code);
            // SIGCHLD's sender is the child whose state changed: worth naming whatever the code.
            let from = if matches!(e.code, 0 | -1 | -6) || e.sig == libc::SIGCHLD {
                format!(", si_pid={} ({})", e.header.tgid, escape(&c_str(&e.sender_comm)))
            } else {
                String::new()
            };
            let outcome = match e.result {
                0 => "",
                1 => " (ignored)",
                2 => " (already pending)",
                _ => " (not delivered)",
            };
            format!("--- {} {{si_code={code}{from}}} ---{outcome}", signame(e.sig))
        }
        Event::Fault(e) => {
            format!(
                "--- {} {{si_code={}, si_addr={:#x}}} (fault) ---",
                signame(e.sig),
                si_code_name(e.sig, e.code),
                e.addr
            )
        }
        Event::CgroupAttach(e) => {
            format!("+++ moved to cgroup {} (hierarchy {}) +++", c_str(&e.path), e.root)
        }
        Event::SignalDeliver(e) => {
            let handler = match e.sa_handler {
                0 => "SIG_DFL".to_string(),
                1 => "SIG_IGN".to_string(),
                h => format!("{h:#x}"),
            };
            format!(
                "--- {} delivered {{si_code={}}} handler={handler} ---",
                signame(e.sig),
                si_code_name(e.sig, e.code)
            )
        }
    }
}

/// The thread whose log an event goes to: a generated signal goes to its target's log.
pub fn owner_tid(event: &Event) -> u32 {
    match event {
        Event::SignalGenerate(e) => e.target_tid,
        other => other.header().tid,
    }
}

/// When an event happened, as `22:41:07.123456`, or `??:??:??.??????` when its source did not say.
pub fn when(event: &Event, boot_to_wall_ns: i64) -> String {
    if event.header().flags & flags::UNKNOWN_TIME != 0 {
        "??:??:??.??????".into()
    } else {
        time_of_day(event.header().ts_ns as i64 + boot_to_wall_ns)
    }
}

/// A whole trace line: `22:41:07.123456 mmap(...) = 0x7f... <0.000012>`. Whatever a program
/// named (paths, command names) is escaped: one event is always one line.
pub fn trace_line(event: &Event, book: &ProcessBook, boot_to_wall_ns: i64) -> String {
    let when = when(event, boot_to_wall_ns);
    let described = describe(event, book);
    let text = escape_controls(&described);
    match event {
        Event::Syscall(e) if e.header.flags & (flags::NO_RETURN | flags::UNFINISHED | flags::UNKNOWN_DURATION) == 0 => {
            format!("{when} {text} <{}.{:06}>", e.duration_ns / 1_000_000_000, e.duration_ns % 1_000_000_000 / 1000)
        }
        _ => format!("{when} {text}"),
    }
}
