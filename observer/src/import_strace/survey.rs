//! The first read of an import: every file once, a line at a time, keeping only small facts per
//! file — its length and line counts, the lines that are not strace output (the first of them),
//! the span of its times, the tid of its unprefixed lines, the children its clone calls created —
//! from which the later reads place, date and order the lines without holding them.
use super::{
    cursor::{Start, TidsFrom},
    line::{self, Untangle},
    order::{self, Lineage},
    source::{Layout, RawLines, SourceFile},
    stamp::{self, Dating, DayRoller, DaySpan, Moment},
    tids::{MainTid, UNKNOWN_TID},
    unparsed::Unparsed,
    ImportError,
};

/// What the first read learned of one file.
#[derive(Debug)]
pub struct Surveyed {
    pub start: Start,
    /// Its non-blank lines.
    pub lines: usize,
    days: DaySpan,
    /// The earliest and latest `-ttt` time.
    epoch: Option<(i64, i64)>,
    /// The moment of its first timed line.
    first: Option<Moment>,
    pub lineage: Lineage,
    /// Whether its unprefixed lines got the placeholder tid.
    placeholder: bool,
}

impl Surveyed {
    /// When its first timed line happened.
    pub fn first_wall(&self) -> Option<i64> {
        self.start.dating.wall(self.first)
    }

    /// Its earliest and latest wall time.
    fn span(&self) -> Option<(i64, i64)> {
        let dating = &self.start.dating;
        let of_day = self
            .days
            .span
            .and_then(|(lo, hi)| Some((dating.wall(Some(Moment::OfDay(lo)))?, dating.wall(Some(Moment::OfDay(hi)))?)));
        match (of_day, self.epoch) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (one, other) => one.or(other),
        }
    }
}

/// What the first read learned of the input.
pub struct Survey {
    pub layout: Layout,
    pub files: Vec<Surveyed>,
    /// Non-blank lines.
    pub lines: usize,
    /// Whether any line was understood.
    pub any_parsed: bool,
    pub unparsed: Unparsed,
    /// Whether the tid of unprefixed lines is the placeholder.
    pub placeholder_tid: bool,
    /// Whether every line that stands for something that happened has a time.
    pub timed: bool,
}

impl Survey {
    /// The earliest and latest wall time of any line.
    pub fn span(&self) -> Option<(i64, i64)> {
        self.files.iter().filter_map(Surveyed::span).reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
    }
}

/// Reads every file once.
pub fn survey(layout: Layout, files: Vec<SourceFile>) -> Result<Survey, ImportError> {
    let mut unparsed = Unparsed::new(files.iter().map(|f| f.path.clone()).collect());
    let mut survey = Survey {
        layout,
        files: Vec::with_capacity(files.len()),
        lines: 0,
        any_parsed: false,
        unparsed: Unparsed::new(Vec::new()),
        placeholder_tid: false,
        timed: true,
    };
    let mut days = Vec::with_capacity(files.len());
    for (index, file) in files.into_iter().enumerate() {
        let (surveyed, untimed_event) = one_file(layout, index, file, &mut unparsed)?;
        survey.lines += surveyed.lines;
        survey.any_parsed |= surveyed.days.lines > 0;
        survey.timed &= !untimed_event;
        survey.placeholder_tid |= surveyed.placeholder;
        days.push(surveyed.days);
        survey.files.push(surveyed);
    }
    for (file, dating) in survey.files.iter_mut().zip(stamp::date(&days)) {
        file.start.dating = dating;
    }
    survey.unparsed = unparsed;
    Ok(survey)
}

/// Reads one file; also says whether a line standing for something that happened had no time.
fn one_file(
    layout: Layout,
    index: usize,
    file: SourceFile,
    unparsed: &mut Unparsed,
) -> Result<(Surveyed, bool), ImportError> {
    let mut lines = Untangle::new(RawLines::open(&file, u64::MAX)?);
    let mut roller = DayRoller::default();
    let mut days = DaySpan { span: None, lines: 0, mtime: file.mtime_ns };
    let mut epoch: Option<(i64, i64)> = None;
    let mut first = None;
    let mut main = MainTid::default();
    let mut lineage = Lineage::default();
    let mut untimed_event = false;
    let file_tid = file.tid.unwrap_or(UNKNOWN_TID);
    for (number, text) in lines.by_ref() {
        if text.trim().is_empty() {
            continue;
        }
        let Some(line) = line::parse(&text) else {
            unparsed.add(index, number, &text);
            continue;
        };
        days.lines += 1;
        let moment = roller.roll(line.stamp);
        days.widen(moment);
        if let Some(Moment::Wall(ns)) = moment {
            epoch = Some(epoch.map_or((ns, ns), |(lo, hi)| (lo.min(ns), hi.max(ns))));
        }
        first = first.or(moment);
        untimed_event |= moment.is_none() && order::is_event(&line.body);
        match layout {
            Layout::Single => main.observe(&line),
            Layout::PerThread => {
                lineage.tid.get_or_insert(line.pid.unwrap_or(file_tid));
                lineage.children.extend(order::created_child(&line.body));
            }
        }
    }
    let raw = lines.lines();
    raw.finish()?;
    let (tids, placeholder) = match layout {
        Layout::PerThread => (TidsFrom::PerThread(file_tid), file.tid.is_none()),
        Layout::Single => {
            let (main, placeholder) = main.main(file.tid);
            (TidsFrom::Single(main), placeholder)
        }
    };
    let start = Start { file, bytes: raw.bytes, tids, dating: Dating::default() };
    Ok((Surveyed { start, lines: raw.non_blank, days, epoch, first, lineage, placeholder }, untimed_event))
}
