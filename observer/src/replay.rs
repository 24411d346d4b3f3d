//! `observer replay`: the events of a capture, filtered, as trace lines or JSON lines.
use std::io::Write;

use observer_common::{flags, syscalls};
use serde_json::{json, Value};

use crate::{
    decode::{errno_name, is_error_return},
    event::{c_str, returned, Event},
    processes::ProcessBook,
    render,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// A point in time: seconds from the first event, or a UTC time of day.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeBound {
    FromStart(f64),
    TimeOfDay(f64),
}

impl std::str::FromStr for TimeBound {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{s}` is not a time: give seconds from the first event (2.5) or a UTC time of day (22:41:07.5)")
        };
        if s.contains(':') {
            let parts: Vec<&str> = s.split(':').collect();
            if parts.len() != 3 {
                return Err(bad());
            }
            let h: f64 = parts[0].parse().map_err(|_| bad())?;
            let m: f64 = parts[1].parse().map_err(|_| bad())?;
            let sec: f64 = parts[2].parse().map_err(|_| bad())?;
            Ok(TimeBound::TimeOfDay(h * 3600.0 + m * 60.0 + sec))
        } else {
            s.parse().map(TimeBound::FromStart).map_err(|_| bad())
        }
    }
}

/// Which events to print.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub tid: Option<u32>,
    pub pid: Option<u32>,
    /// Syscall numbers; when set, only syscall records of these.
    pub syscalls: Option<Vec<u32>>,
    pub failed: bool,
    pub since: Option<TimeBound>,
    pub until: Option<TimeBound>,
}

/// Resolves `mmap,mprotect` to syscall numbers, naming the valid ones on a typo.
pub fn parse_syscalls(list: &str) -> Result<Vec<u32>, String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(|name| {
            syscalls::by_name(name.trim()).map(|s| s.nr).ok_or_else(|| {
                let valid: Vec<&str> = syscalls::WATCHED.iter().map(|s| s.name).collect();
                format!("unknown syscall `{name}`; observer records: {}", valid.join(", "))
            })
        })
        .collect()
}

impl Filter {
    fn seconds(bound: TimeBound, wall_ns: i64, first_ts: u64, ts: u64) -> (f64, f64) {
        match bound {
            TimeBound::FromStart(s) => (s, (ts.saturating_sub(first_ts)) as f64 / 1e9),
            TimeBound::TimeOfDay(s) => (s, wall_ns.rem_euclid(86_400_000_000_000) as f64 / 1e9),
        }
    }

    pub fn matches(&self, event: &Event, book: &ProcessBook, boot_to_wall_ns: i64, first_ts: u64) -> bool {
        let h = event.header();
        let tid = render::owner_tid(event);
        if self.tid.is_some_and(|t| t != tid && t != h.tid) {
            return false;
        }
        if let Some(pid) = self.pid {
            let owner_pid = book.tgid_of(tid).unwrap_or(h.tgid);
            if pid != owner_pid && pid != h.tgid {
                return false;
            }
        }
        let syscall = match event {
            Event::Syscall(e) => Some(e),
            _ => None,
        };
        if let Some(wanted) = &self.syscalls {
            if !syscall.is_some_and(|e| wanted.contains(&e.nr)) {
                return false;
            }
        }
        if self.failed {
            let failed = syscall.is_some_and(|e| returned(e) && is_error_return(e.ret).is_some());
            if !failed {
                return false;
            }
        }
        let wall = h.ts_ns as i64 + boot_to_wall_ns;
        if let Some(since) = self.since {
            let (bound, at) = Self::seconds(since, wall, first_ts, h.ts_ns);
            if at < bound {
                return false;
            }
        }
        if let Some(until) = self.until {
            let (bound, at) = Self::seconds(until, wall, first_ts, h.ts_ns);
            if at > bound {
                return false;
            }
        }
        true
    }
}

/// One event as a JSON object (one line of `--format json`).
pub fn to_json(event: &Event, book: &ProcessBook, boot_to_wall_ns: i64) -> Value {
    let h = event.header();
    let mut v = json!({
        "ts_ns": h.ts_ns,
        "time": render::when(event, boot_to_wall_ns),
        "kind": event.kind_name(),
        "tid": h.tid,
        "pid": h.tgid,
    });
    let extra = match event {
        Event::Syscall(e) => {
            let name = crate::decode::syscall_label(e.nr);
            let finished = returned(e);
            json!({
                "syscall": name,
                "args": e.args[..e.nargs.min(6) as usize].to_vec(),
                "ret": if finished { json!(e.ret) } else { Value::Null },
                "errno": if finished { is_error_return(e.ret).and_then(errno_name).map_or(Value::Null, |n| json!(n)) } else { Value::Null },
                "duration_ns": e.duration_ns,
                "unfinished": e.header.flags & flags::UNFINISHED != 0,
            })
        }
        Event::Fork(f) => {
            json!({"child_tid": f.child_tid, "child_pid": f.child_tgid, "thread": f.header.flags & flags::THREAD != 0})
        }
        Event::Exec(x) => json!({"filename": c_str(&x.filename), "comm": c_str(&x.comm), "old_tid": x.old_tid}),
        Event::Exit(x) => json!({"comm": c_str(&x.comm), "group_dead": x.header.flags & flags::GROUP_DEAD != 0}),
        Event::SignalGenerate(g) => json!({
            "sig": g.sig, "code": g.code, "target_tid": g.target_tid, "group": g.group != 0, "result": g.result,
            "sender_comm": c_str(&g.sender_comm), "target_comm": c_str(&g.target_comm),
        }),
        Event::SignalDeliver(d) => {
            json!({"sig": d.sig, "code": d.code, "sa_handler": d.sa_handler, "sa_flags": d.sa_flags})
        }
        Event::Fault(f) => json!({"sig": f.sig, "code": f.code, "addr": f.addr}),
        Event::CgroupAttach(c) => {
            json!({"hierarchy": c.root, "level": c.level, "cgroup_id": c.id, "path": c_str(&c.path)})
        }
    };
    if let (Value::Object(base), Value::Object(more)) = (&mut v, extra) {
        base.extend(more);
        base.insert("text".into(), json!(render::describe(event, book)));
    }
    v
}

/// Writes one event in the chosen format.
pub fn write_event(
    out: &mut impl Write,
    format: Format,
    event: &Event,
    book: &ProcessBook,
    boot_to_wall_ns: i64,
) -> std::io::Result<()> {
    match format {
        Format::Text => {
            writeln!(out, "{} {}", render::owner_tid(event), render::trace_line(event, book, boot_to_wall_ns))
        }
        Format::Json => writeln!(out, "{}", to_json(event, book, boot_to_wall_ns)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_offsets_or_times_of_day() {
        assert_eq!("2.5".parse::<TimeBound>(), Ok(TimeBound::FromStart(2.5)));
        assert_eq!("01:00:02.5".parse::<TimeBound>(), Ok(TimeBound::TimeOfDay(3602.5)));
        assert!("yesterday".parse::<TimeBound>().is_err());
    }

    #[test]
    fn syscall_names_resolve_and_typos_list_the_valid_names() {
        assert_eq!(parse_syscalls("mmap,mprotect"), Ok(vec![9, 10]));
        let err = parse_syscalls("mmapp").unwrap_err();
        assert!(err.starts_with("unknown syscall `mmapp`; observer records: mmap, munmap"), "{err}");
    }
}
