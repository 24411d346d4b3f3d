//! Synthetic events for the classifiers' unit tests.
use observer_common::{
    flags, kind, syscalls, EventHeader, ExecEvent, ExitEvent, FaultEvent, ForkEvent, SignalDeliverEvent,
    SignalGenerateEvent, SyscallEvent,
};

use crate::{
    analysis::{snapshot::StuckSnapshot, Analyzer, Classification, Context, Finding},
    event::Event,
    eventlog::LogHeader,
    preflight::{Limit, Preflight},
    processes::ProcessBook,
};

pub use crate::analysis::Signature;

fn header(kind: u16, flags: u16, tgid: u32, tid: u32) -> EventHeader {
    EventHeader { kind, flags, tid, tgid, _pad: 0, ts_ns: 1_000 }
}

fn comm(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..name.len()].copy_from_slice(name.as_bytes());
    out
}

pub fn syscall(tgid: u32, tid: u32, name: &str, args: [u64; 6], ret: i64) -> Event {
    let sc = syscalls::by_name(name).unwrap();
    let no_return = if sc.bits & observer_common::syscall_bits::NO_RETURN != 0 { flags::NO_RETURN } else { 0 };
    Event::Syscall(SyscallEvent {
        header: header(kind::SYSCALL, no_return, tgid, tid),
        nr: sc.nr,
        nargs: sc.nargs as u32,
        args,
        ret,
        duration_ns: 1000,
        aux: 0,
    })
}

pub fn fork(tgid: u32, tid: u32, child: u32, thread: bool) -> Event {
    Event::Fork(ForkEvent {
        header: header(kind::FORK, if thread { flags::THREAD } else { 0 }, tgid, tid),
        child_tid: child,
        child_tgid: if thread { tgid } else { child },
        parent_comm: comm("prog"),
    })
}

pub fn exec(tgid: u32) -> Event {
    Event::Exec(ExecEvent {
        header: header(kind::EXEC, 0, tgid, tgid),
        old_tid: tgid,
        comm: comm("prog"),
        ..Default::default()
    })
}

pub fn exit(tgid: u32, tid: u32, group_dead: bool) -> Event {
    Event::Exit(ExitEvent {
        header: header(kind::EXIT, if group_dead { flags::GROUP_DEAD } else { 0 }, tgid, tid),
        comm: comm("prog"),
    })
}

pub fn generate(sender_tgid: u32, sender_tid: u32, target: u32, sig: i32, code: i32) -> Event {
    Event::SignalGenerate(SignalGenerateEvent {
        header: header(kind::SIGNAL_GENERATE, 0, sender_tgid, sender_tid),
        sig,
        code,
        target_tid: target,
        sender_comm: comm(if sender_tgid == target { "prog" } else { "sender" }),
        target_comm: comm("prog"),
        ..Default::default()
    })
}

pub fn deliver(tgid: u32, tid: u32, sig: i32, sa_handler: u64) -> Event {
    Event::SignalDeliver(SignalDeliverEvent {
        header: header(kind::SIGNAL_DELIVER, 0, tgid, tid),
        sig,
        sa_handler,
        ..Default::default()
    })
}

pub fn fault(tgid: u32, tid: u32, sig: i32, code: i32, addr: u64) -> Event {
    Event::Fault(FaultEvent { header: header(kind::FAULT, 0, tgid, tid), sig, code, addr })
}

pub fn preflight_with_limit(name: &str, soft: u64) -> Preflight {
    Preflight {
        limits: vec![Limit { name: name.into(), soft: Some(soft), hard: Some(soft), unit: "bytes".into() }],
        ..Default::default()
    }
}

/// Runs every classifier over `events` as if they were a capture of process 10.
pub fn classify(events: &[Event], preflight: Option<Preflight>) -> Classification {
    classify_with(events, preflight, None)
}

/// As `classify`, with a stuck snapshot.
pub fn classify_with(events: &[Event], preflight: Option<Preflight>, stuck: Option<&StuckSnapshot>) -> Classification {
    let header = LogHeader { root_pid: Some(10), command: vec!["prog".into()], ..Default::default() };
    let mut book = ProcessBook::default();
    crate::analysis::seed_book(&mut book, &header);
    let mut analyzer = Analyzer::default();
    for e in events {
        book.observe(e);
        analyzer
            .observe(e, &Context { book: &book, header: &header, preflight: preflight.as_ref(), stuck, failures: &[] });
    }
    analyzer.finish(&Context { book: &book, header: &header, preflight: preflight.as_ref(), stuck, failures: &[] })
}

/// The single finding of `signature`.
pub fn only(c: &Classification, signature: Signature) -> &Finding {
    let found: Vec<&Finding> = c.findings.iter().filter(|f| f.signature == signature).collect();
    assert_eq!(found.len(), 1, "{signature} in {:#?}", c.findings);
    found[0]
}
