//! The sampled call chains of a stuck snapshot as `profile.folded` (one line per distinct chain,
//! `pid N (comm);thread N (comm);outermost;...;innermost COUNT`, the folded-stack format inferno,
//! flamegraph.pl and speedscope read) and as `flamegraph.svg`, drawn by inferno.
use std::io;

use crate::{analysis::snapshot::StuckSnapshot, out_dir::OutDir};

pub const FOLDED: &str = "profile.folded";
pub const FLAMEGRAPH: &str = "flamegraph.svg";

/// A frame as one field of a folded line: `;` separates frames and a line ends the record.
fn field(name: &str) -> String {
    name.replace(';', ":").replace(['\n', '\r'], " ")
}

/// The folded lines of every sampled thread, sorted (as the format's readers expect); empty when
/// nothing was sampled.
pub fn folded(snapshot: &StuckSnapshot) -> String {
    let mut lines: Vec<String> = snapshot
        .threads()
        .flat_map(|(p, t)| {
            t.stacks.iter().map(move |stack| {
                let mut fields = vec![
                    field(&format!("pid {} ({})", p.pid, p.comm)),
                    field(&format!("thread {} ({})", t.tid, t.comm)),
                ];
                fields.extend(stack.frames.iter().rev().map(|f| field(f)));
                format!("{} {}", fields.join(";"), stack.count)
            })
        })
        .collect();
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The flame graph of folded lines, as SVG.
pub fn svg(folded: &str) -> io::Result<Vec<u8>> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = "observer: user stacks of the threads spinning when the program stopped".to_string();
    options.count_name = "samples".to_string();
    // The same capture draws the same picture.
    options.deterministic = true;
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut options, folded.lines(), &mut out).map_err(io::Error::other)?;
    Ok(out)
}

/// Writes `profile.folded` and `flamegraph.svg` into `dir` when the snapshot holds samples.
pub fn write(snapshot: &StuckSnapshot, dir: &OutDir) -> io::Result<()> {
    let folded = folded(snapshot);
    if folded.is_empty() {
        return Ok(());
    }
    dir.write(FOLDED, &folded)?;
    dir.write(FLAMEGRAPH, svg(&folded)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::snapshot::{ProcessSnapshot, SampledStack, ThreadSnapshot};

    fn snapshot() -> StuckSnapshot {
        let stack =
            |frames: &[&str], count| SampledStack { frames: frames.iter().map(|f| f.to_string()).collect(), count };
        StuckSnapshot {
            processes: vec![ProcessSnapshot {
                pid: 10,
                comm: "node".into(),
                threads: vec![
                    ThreadSnapshot {
                        tid: 10,
                        comm: "node".into(),
                        stacks: vec![stack(&["JS:*spin [eval]:1", "JS:~run", "main"], 90), stack(&["a;b", "main"], 9)],
                        ..Default::default()
                    },
                    ThreadSnapshot { tid: 11, comm: "idle".into(), ..Default::default() },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn folded_lines_run_from_process_to_innermost_frame_with_their_count() {
        assert_eq!(
            folded(&snapshot()),
            "pid 10 (node);thread 10 (node);main;JS:~run;JS:*spin [eval]:1 90\npid 10 (node);thread 10 (node);main;a:b 9\n"
        );
        assert_eq!(folded(&StuckSnapshot::default()), "");
    }

    #[test]
    fn the_flame_graph_is_an_svg_naming_the_frames() {
        let dir = tempfile::tempdir().unwrap();
        write(&snapshot(), &OutDir::open(dir.path()).unwrap()).unwrap();
        let svg = std::fs::read_to_string(dir.path().join(FLAMEGRAPH)).unwrap();
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{}", &svg[..200.min(svg.len())]);
        assert!(svg.contains("JS:*spin [eval]:1"), "the frame is drawn");
        assert!(svg.contains("99 samples") || svg.contains("(99 samples"), "the total is counted");
        assert_eq!(std::fs::read_to_string(dir.path().join(FOLDED)).unwrap(), folded(&snapshot()));
        // Nothing sampled: no files.
        let empty = tempfile::tempdir().unwrap();
        write(&StuckSnapshot::default(), &OutDir::open(empty.path()).unwrap()).unwrap();
        assert!(!empty.path().join(FOLDED).exists() && !empty.path().join(FLAMEGRAPH).exists());
    }
}
