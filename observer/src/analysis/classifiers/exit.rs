//! `exit-nonzero`: the command exited with a non-zero code and no other finding explains it.
use crate::{
    analysis::{Classifier, Context, Finding, Severity, Signature},
    event::Event,
    processes::ProcessExit,
};

pub struct ExitNonzero;

impl Classifier for ExitNonzero {
    fn observe(&mut self, _: &Event, _: &Context<'_>) {}

    fn finish(&mut self, cx: &Context<'_>, earlier: &[Finding]) -> Vec<Finding> {
        let Some(pid) = cx.header.root_pid else { return vec![] };
        let Some(ProcessExit::Code(code)) = cx.book.process(pid).and_then(|p| p.exit.clone()) else {
            return vec![];
        };
        if code == 0 || earlier.iter().any(|f| f.severity > Severity::Info) {
            return vec![];
        }
        vec![Finding {
            cause: None,
            id: String::new(),
            caused_by: Vec::new(),
            workload: None,
            processes: Vec::new(),
            signature: Signature::ExitNonzero,
            severity: Severity::Info,
            pid,
            tid: pid,
            summary: format!(
                "the command ({}) exited with code {code} and the capture shows no failure that explains it",
                cx.book.comm(pid)
            ),
            evidence: vec![],
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;

    #[test]
    fn a_nonzero_exit_is_reported_only_when_nothing_else_explains_it() {
        let quit = |code| vec![syscall(10, 10, "exit_group", [code, 0, 0, 0, 0, 0], 0), exit(10, 10, true)];
        let c = classify(&quit(3), None);
        assert!(only(&c, Signature::ExitNonzero).summary.contains("exited with code 3"));
        assert!(classify(&quit(0), None).findings.is_empty());
        let mut explained = vec![
            syscall(10, 10, "mmap", [0, 8392704, 0, 0x20022, u64::MAX, 0], 0x7f00_0000_0000),
            syscall(10, 10, "mprotect", [0x7f00_0000_1000, 8388608, 3, 0, 0, 0], -12),
        ];
        explained.extend(quit(1));
        let c = classify(&explained, None);
        assert!(c.has(Signature::PthreadStackMprotectEnomem) && !c.has(Signature::ExitNonzero));
    }
}
