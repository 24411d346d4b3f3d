//! Flame graphs of the stuck snapshot's sampled threads, as inline SVG: one box per function,
//! as wide as its share of the samples, callers above callees. Samples are folded stacks
//! (`outer;inner;leaf`, outermost first); a plain function name is a stack of one.
use std::collections::BTreeMap;

use super::escape;

#[derive(Default)]
struct Frame {
    samples: u64,
    children: BTreeMap<String, Frame>,
}

impl Frame {
    fn add(&mut self, stack: &[&str], samples: u64) {
        self.samples += samples;
        if let Some((first, rest)) = stack.split_first() {
            self.children.entry(first.to_string()).or_default().add(rest, samples);
        }
    }

    fn depth(&self) -> usize {
        1 + self.children.values().map(Frame::depth).max().unwrap_or(0)
    }
}

const WIDTH: f64 = 1200.0;
const ROW: f64 = 18.0;

/// Warm colours, stable per name, as flame graphs traditionally use.
fn colour(name: &str) -> String {
    let hash = name.bytes().fold(2166136261u32, |h, b| (h ^ u32::from(b)).wrapping_mul(16777619));
    format!("hsl({}, 85%, {}%)", 10 + hash % 40, 55 + (hash >> 8) % 15)
}

fn draw(out: &mut String, name: &str, frame: &Frame, x: f64, depth: usize, per_sample: f64, total: u64) {
    let width = frame.samples as f64 * per_sample;
    if width < 0.5 {
        return;
    }
    let y = depth as f64 * ROW;
    let share = frame.samples as f64 * 100.0 / total as f64;
    let label = escape(name);
    out.push_str(&format!(
        "<g class=\"frame\"><title>{label}: {} samples ({share:.1}%)</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{}\" fill=\"{}\"/>",
        frame.samples,
        ROW - 1.0,
        colour(name)
    ));
    // About 7 px per character at the page's 12 px font.
    let fits = ((width - 6.0) / 7.0).floor() as usize;
    if fits >= 3 {
        let shown: String = if name.chars().count() > fits {
            name.chars().take(fits.saturating_sub(1)).chain(std::iter::once('…')).collect()
        } else {
            name.to_string()
        };
        out.push_str(&format!("<text x=\"{:.1}\" y=\"{:.1}\">{}</text>", x + 3.0, y + ROW - 5.0, escape(&shown)));
    }
    out.push_str("</g>");
    let mut child_x = x;
    for (child_name, child) in &frame.children {
        draw(out, child_name, child, child_x, depth + 1, per_sample, total);
        child_x += child.samples as f64 * per_sample;
    }
}

/// The flame graph of one thread's samples (`(stack, samples)`), titled `root`; empty without samples.
pub fn svg(root: &str, samples: &[(String, u32)]) -> String {
    let mut top = Frame::default();
    for (stack, n) in samples {
        let frames: Vec<&str> = stack.split(';').filter(|f| !f.is_empty()).collect();
        top.add(&frames, u64::from(*n));
    }
    if top.samples == 0 {
        return String::new();
    }
    let height = top.depth() as f64 * ROW;
    let mut out = format!(
        "<svg class=\"flame\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"flame graph of {}\">",
        escape(root)
    );
    draw(&mut out, root, &top, 0.0, 0, WIDTH / top.samples as f64, top.samples);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_as_wide_as_their_samples_and_nest_by_stack() {
        let svg = svg("thread 7 (spin)", &[("main;spin".into(), 75), ("main;tick".into(), 25), ("spin".into(), 0)]);
        assert!(svg.contains("<title>thread 7 (spin): 100 samples (100.0%)</title>"), "{svg}");
        assert!(svg.contains("<title>main: 100 samples (100.0%)</title>"), "{svg}");
        assert!(
            svg.contains(r#"<title>spin: 75 samples (75.0%)</title><rect x="0.0" y="36.0" width="900.0""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<title>tick: 25 samples (25.0%)</title><rect x="900.0" y="36.0" width="300.0""#),
            "{svg}"
        );
        assert_eq!(super::svg("t", &[]), "");
    }

    #[test]
    fn names_are_escaped() {
        assert!(svg("t", &[("a<b>&c".into(), 1)]).contains("a&lt;b&gt;&amp;c"));
    }
}
