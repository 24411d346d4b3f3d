//! One line of strace output, taken apart: the pid prefix (`[pid N] ` or `N  `), the timestamp,
//! and the body — a complete call, the `<unfinished ...>` or `<... resumed>` half of one, a signal
//! or exit line, or one of strace's own notes.
use super::{
    lifecycle::{self, Lifecycle},
    scan::closing_paren,
    stamp::{self, Stamp},
    value,
};
use crate::decode::errno_by_name;

/// A syscall's result as printed after `= `.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    /// The raw return value (`-errno` for a failure, restart codes included).
    Value(i64),
    /// `= ?`: the call never returned to the program (exit, exit_group, or the thread died).
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// `name(args) = ret <duration>`
    Call {
        name: String,
        args: String,
        ret: Ret,
        duration: Option<u64>,
    },
    /// `name(args <unfinished ...>`
    Unfinished {
        name: String,
        args: String,
    },
    /// `<... name resumed>args) = ret <duration>`
    Resumed {
        name: String,
        args: String,
        ret: Ret,
        duration: Option<u64>,
    },
    Lifecycle(Lifecycle),
    /// `strace: Process N attached`.
    Attached(u32),
    /// Another line of strace's own (`strace: ...`, a `-k` stack frame): nothing happened.
    Note,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub pid: Option<u32>,
    pub stamp: Option<Stamp>,
    pub body: Body,
}

/// `[pid  123] rest` or `123  rest`: the pid and the rest.
fn split_pid(text: &str) -> (Option<u32>, &str) {
    if let Some(rest) = text.strip_prefix("[pid") {
        if let Some((pid, rest)) = rest.split_once(']') {
            if let Ok(pid) = pid.trim().parse() {
                return (Some(pid), rest.trim_start());
            }
        }
        return (None, text);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && text[digits..].starts_with([' ', '\t']) {
        if let Ok(pid) = text[..digits].parse() {
            return (Some(pid), text[digits..].trim_start());
        }
    }
    (None, text)
}

fn is_name(name: &str) -> bool {
    name == "???"
        || (!name.is_empty()
            && !name.as_bytes()[0].is_ascii_digit()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// `= 0x7f00 <0.000012>` after a call's closing parenthesis: the result and the `-T` duration.
fn result(after: &str) -> Option<(Ret, Option<u64>)> {
    let mut text = after.trim().strip_prefix('=')?.trim();
    let mut duration = None;
    if let Some(open) = text.rfind(" <") {
        if let Some(inner) = text[open + 2..].strip_suffix('>') {
            if inner == "unavailable" || stamp::duration(inner).is_some() {
                duration = stamp::duration(inner);
                text = text[..open].trim_end();
            }
        }
    }
    let mut words = text.split_whitespace();
    let first = words.next()?;
    // `-1 ENOMEM (Cannot allocate memory)`, or `-1 (errno 41)` for an errno without a name.
    let errno = match words.next() {
        Some("(errno") => words.next().and_then(|n| n.trim_end_matches(')').parse().ok()),
        Some(name) => errno_by_name(name),
        None => None,
    };
    let ret = match (first, errno) {
        ("?", Some(errno)) => Ret::Value(-i64::from(errno)),
        ("?", None) => Ret::Unknown,
        (number, errno) => {
            let value = value::int(number)?;
            match errno {
                Some(errno) if value < 0 => Ret::Value(-i64::from(errno)),
                _ => Ret::Value(value),
            }
        }
    };
    Some((ret, duration))
}

/// The body of a line after its prefix and timestamp.
fn body(text: &str) -> Option<Body> {
    if text.starts_with("+++ ") || text.starts_with("--- ") {
        return lifecycle::parse(text).map(Body::Lifecycle);
    }
    if let Some(note) = text.strip_prefix("strace: ") {
        let attached =
            note.strip_prefix("Process ").and_then(|r| r.strip_suffix(" attached")).and_then(|p| p.parse().ok());
        return Some(attached.map_or(Body::Note, Body::Attached));
    }
    if text.starts_with("> ") {
        return Some(Body::Note);
    }
    if let Some(rest) = text.strip_prefix("<... ") {
        let (name, rest) = rest.split_once(" resumed>")?;
        if !is_name(name) {
            return None;
        }
        let close = closing_paren(rest)?;
        let (ret, duration) = result(&rest[close + 1..])?;
        return Some(Body::Resumed { name: name.into(), args: rest[..close].trim().into(), ret, duration });
    }
    let (name, rest) = text.split_once('(')?;
    if !is_name(name) {
        return None;
    }
    if let Some(close) = closing_paren(rest) {
        if let Some((ret, duration)) = result(&rest[close + 1..]) {
            return Some(Body::Call { name: name.into(), args: rest[..close].trim().into(), ret, duration });
        }
    }
    let args = rest.trim_end().strip_suffix("<unfinished ...>")?;
    Some(Body::Unfinished { name: name.into(), args: args.trim().into() })
}

/// Takes one line apart; `None` when it is not strace output this importer understands.
pub fn parse(text: &str) -> Option<Line> {
    let (pid, rest) = split_pid(text.trim_end_matches(['\r', '\n']).trim_start());
    let (stamp, rest) = match rest.split_once(' ') {
        Some((token, after)) => match stamp::parse(token) {
            Some(stamp) => (Some(stamp), after.trim_start()),
            None => (None, rest),
        },
        None => (None, rest),
    };
    // `-i`: the instruction pointer, `[00007f2b32827000] `.
    let rest = match rest.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((ip, after)) if !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b'?') => after,
        _ => rest,
    };
    Some(Line { pid, stamp, body: body(rest.trim_end())? })
}

/// stderr output of `strace -f` interleaves strace's notes into the middle of a line
/// (`exit(0strace: Process 28031 attached`), the rest of the line following on the next one
/// (`)  = ?`, ` <unfinished ...>`, ` => {parent_tid=[28028]}, 88) = 28028`). Splits the note off
/// and joins the line back together; each piece keeps the number of the line it started on (from
/// 1). Reads one line ahead.
pub struct Untangle<I> {
    lines: I,
    /// The line after the one read last, once read.
    ahead: Option<String>,
    /// The number of the line read last.
    number: usize,
    /// The second piece of a line split in two.
    queued: Option<(usize, String)>,
}

impl<I: Iterator<Item = String>> Untangle<I> {
    pub fn new(lines: I) -> Self {
        Self { lines, ahead: None, number: 0, queued: None }
    }

    /// The lines being untangled, to ask what reading them met once they are all read.
    pub fn lines(&mut self) -> &mut I {
        &mut self.lines
    }

    fn read(&mut self) -> Option<String> {
        let line = self.ahead.take().or_else(|| self.lines.next())?;
        self.number += 1;
        Some(line)
    }
}

impl<I: Iterator<Item = String>> Iterator for Untangle<I> {
    type Item = (usize, String);

    fn next(&mut self) -> Option<(usize, String)> {
        if let Some(piece) = self.queued.take() {
            return Some(piece);
        }
        let line = self.read()?;
        let number = self.number;
        let Some(at) = line.find("strace: Process ").filter(|&at| at > 0 && !line[..at].trim().is_empty()) else {
            return Some((number, line));
        };
        let head = &line[..at];
        if self.ahead.is_none() {
            self.ahead = self.lines.next();
        }
        let joined = self
            .ahead
            .as_ref()
            .filter(|next| parse(next).is_none())
            .map(|next| format!("{head}{next}"))
            .filter(|joined| parse(joined).is_some());
        let rest = match joined {
            Some(joined) => {
                self.ahead = None;
                self.number += 1;
                joined
            }
            None => head.to_string(),
        };
        self.queued = Some((number, rest));
        Some((number, line[at..].to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &str, ret: Ret, duration: Option<u64>) -> Body {
        Body::Call { name: name.into(), args: args.into(), ret, duration }
    }

    #[test]
    fn a_plain_call_without_prefix_or_time() {
        let line =
            parse("mprotect(0x7ff4423cb000, 8388608, PROT_READ|PROT_WRITE) = -1 ENOMEM (Cannot allocate memory)")
                .unwrap();
        assert_eq!(line.pid, None);
        assert_eq!(line.stamp, None);
        assert_eq!(line.body, call("mprotect", "0x7ff4423cb000, 8388608, PROT_READ|PROT_WRITE", Ret::Value(-12), None));
    }

    #[test]
    fn dash_tt_and_dash_t_capital_give_time_and_duration() {
        let line = parse("00:32:31.650982 brk(NULL)               = 0x557529c95000 <0.000002>").unwrap();
        assert_eq!(line.stamp, Some(Stamp::TimeOfDay(1_951_650_982_000)));
        assert_eq!(line.body, call("brk", "NULL", Ret::Value(0x5575_29c9_5000), Some(2_000)));
    }

    #[test]
    fn dash_ttt_gives_epoch_seconds() {
        let line = parse("5205  1795307581.971534 kill(5205, SIGTERM) = 0").unwrap();
        assert_eq!((line.pid, line.stamp), (Some(5205), Some(Stamp::Epoch(1_795_307_581_971_534_000))));
        assert_eq!(line.body, call("kill", "5205, SIGTERM", Ret::Value(0), None));
    }

    #[test]
    fn dash_i_instruction_pointers_and_dash_r_deltas_are_skipped() {
        let line = parse("[pid 7] 00:32:31.650982 [00007f2b32827000] brk(NULL) = 0x1000").unwrap();
        assert_eq!((line.pid, line.body), (Some(7), call("brk", "NULL", Ret::Value(0x1000), None)));
        let line = parse("     0.000123 brk(NULL) = 0x1000").unwrap();
        assert_eq!(line.stamp, Some(Stamp::Relative(123_000)));
    }

    #[test]
    fn pid_prefixes_of_both_forms() {
        assert_eq!(parse("[pid  5346] 00:33:04.738692 close(0)    = 0 <0.000057>").unwrap().pid, Some(5346));
        assert_eq!(parse("[pid 123] exit(0) = ?").unwrap().pid, Some(123));
        let line = parse("5192  00:33:01.950880 brk(NULL)         = 0x558e64e52000 <0.000002>").unwrap();
        assert_eq!(line.pid, Some(5192));
    }

    #[test]
    fn dash_y_decorations_stay_in_the_arguments_and_results() {
        let line = parse("5205  read(3</etc/passwd>, \"root:x:0:0\"..., 832) = 832").unwrap();
        assert_eq!(line.body, call("read", "3</etc/passwd>, \"root:x:0:0\"..., 832", Ret::Value(832), None));
        let open = parse("openat(AT_FDCWD, \"/etc/hostname\", O_RDONLY) = 3</etc/hostname> <0.000010>").unwrap();
        assert_eq!(open.body, call("openat", "AT_FDCWD, \"/etc/hostname\", O_RDONLY", Ret::Value(3), Some(10_000)));
    }

    #[test]
    fn unfinished_and_resumed_halves() {
        let first = parse("5192  00:33:01.954059 clone3({flags=CLONE_VM|CLONE_THREAD, exit_signal=0} <unfinished ...>")
            .unwrap();
        assert_eq!(
            first.body,
            Body::Unfinished { name: "clone3".into(), args: "{flags=CLONE_VM|CLONE_THREAD, exit_signal=0}".into() }
        );
        let second =
            parse("5192  00:33:01.954092 <... clone3 resumed> => {parent_tid=[5194]}, 88) = 5194 <0.000028>").unwrap();
        assert_eq!(
            second.body,
            Body::Resumed {
                name: "clone3".into(),
                args: "=> {parent_tid=[5194]}, 88".into(),
                ret: Ret::Value(5194),
                duration: Some(28_000)
            }
        );
        let wait = parse("5205  wait4(-1,  <unfinished ...>").unwrap();
        assert_eq!(wait.body, Body::Unfinished { name: "wait4".into(), args: "-1,".into() });
        let exit = parse("5193  <... exit resumed>) = ?").unwrap();
        assert_eq!(
            exit.body,
            Body::Resumed { name: "exit".into(), args: "".into(), ret: Ret::Unknown, duration: None }
        );
    }

    #[test]
    fn restart_codes_after_a_question_mark_are_errors() {
        let line = parse("<... rt_sigsuspend resumed>) = ? ERESTARTNOHAND (To be restarted if no handler) <0.016268>")
            .unwrap();
        assert_eq!(
            line.body,
            Body::Resumed {
                name: "rt_sigsuspend".into(),
                args: "".into(),
                ret: Ret::Value(-514),
                duration: Some(16_268_000)
            }
        );
    }

    #[test]
    fn an_errno_without_a_name_keeps_its_number() {
        assert_eq!(parse("read(3, ...) = -1 (errno 41)").unwrap().body, call("read", "3, ...", Ret::Value(-41), None));
    }

    #[test]
    fn exit_group_never_returns() {
        assert_eq!(parse("exit_group(1)           = ?").unwrap().body, call("exit_group", "1", Ret::Unknown, None));
    }

    #[test]
    fn signal_and_exit_lines() {
        let line = parse("5242  --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=0x10} ---").unwrap();
        assert!(matches!(line.body, Body::Lifecycle(Lifecycle::Signal(_))));
        assert_eq!(parse("00:32:31.658921 +++ exited with 1 +++").unwrap().body, Body::Lifecycle(Lifecycle::Exited(1)));
        assert_eq!(parse("5242  +++ killed by SIGSEGV +++").unwrap().body, Body::Lifecycle(Lifecycle::Killed(11)));
    }

    #[test]
    fn strace_notes_are_understood() {
        assert_eq!(parse("strace: Process 5346 attached").unwrap().body, Body::Attached(5346));
        assert_eq!(parse("strace: Process 5346 detached").unwrap().body, Body::Note);
        assert_eq!(parse(" > /usr/lib/x86_64-linux-gnu/libc.so.6(__clone+0x44) [0x1234]").unwrap().body, Body::Note);
    }

    #[test]
    fn lines_that_are_not_strace_output() {
        for text in [
            "hello world",
            "created 4 threads, 1 failed",
            "mmap(NULL, 8192",
            "42(x) = 1",
            "",
            "open(\"x\") = banana",
            "[pid x] exit(0) = ?",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn a_note_in_the_middle_of_a_line_is_split_off_and_the_line_rejoined() {
        let lines: Vec<String> = [
            "00:33:04.736222 rt_sigsuspend([], 8strace: Process 5346 attached",
            " <unfinished ...>",
            "[pid 28030] exit(0strace: Process 28031 attached",
            ")                     = ?",
            "clone3({flags=CLONE_VM|CLONE_THREAD, tls=0x7f295bb5a6c0}strace: Process 28028 attached",
            " => {parent_tid=[28028]}, 88) = 28028",
            "write(1, \"x\", 1strace: Process 9 attached",
            "[pid 9] exit(0) = ?",
        ]
        .map(String::from)
        .to_vec();
        let out: Vec<(usize, String)> = Untangle::new(lines.into_iter()).collect();
        let expected = [
            (1, "strace: Process 5346 attached"),
            (1, "00:33:04.736222 rt_sigsuspend([], 8 <unfinished ...>"),
            (3, "strace: Process 28031 attached"),
            (3, "[pid 28030] exit(0)                     = ?"),
            (5, "strace: Process 28028 attached"),
            (5, "clone3({flags=CLONE_VM|CLONE_THREAD, tls=0x7f295bb5a6c0} => {parent_tid=[28028]}, 88) = 28028"),
            (7, "strace: Process 9 attached"),
            (7, "write(1, \"x\", 1"),
            (8, "[pid 9] exit(0) = ?"),
        ];
        assert_eq!(out, expected.map(|(n, t)| (n, t.to_string())).to_vec());
        assert!(parse(&out[5].1).is_some());
    }
}
