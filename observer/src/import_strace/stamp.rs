//! strace's timestamps: `-t`/`-tt` time of day (local time of the capturing machine, taken as UTC,
//! dated from the file's modification time), `-ttt` seconds since the epoch; and turning them into
//! wall-clock nanoseconds.

const NS_PER_SEC: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * NS_PER_SEC;

/// A timestamp as printed at the start of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    /// `-t` / `-tt`: nanoseconds since midnight.
    TimeOfDay(i64),
    /// `-ttt`: nanoseconds since the Unix epoch.
    Epoch(i64),
    /// `-r`: nanoseconds since the previous line, which says nothing usable about when.
    Relative(i64),
}

/// Seconds since the epoch below this (1973) are `-r` deltas, not `-ttt` times.
const EPOCH_FLOOR_SECS: i64 = 100_000_000;

/// Digits of a fraction as nanoseconds: `"123456"` is 123_456_000.
fn fraction_ns(digits: &str) -> Option<i64> {
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i64 = digits.parse().ok()?;
    Some(value * 10i64.pow(9 - digits.len() as u32))
}

/// Reads a timestamp token: `22:41:07`, `22:41:07.123456` or `1795307581.966731`.
pub fn parse(token: &str) -> Option<Stamp> {
    let (whole, frac) = match token.split_once('.') {
        Some((w, f)) => (w, fraction_ns(f)?),
        None => (token, 0),
    };
    if whole.contains(':') {
        let mut parts = whole.split(':');
        let mut clock = [0i64; 3];
        for slot in &mut clock {
            let p = parts.next()?;
            if p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = p.parse().ok()?;
        }
        if parts.next().is_some() || clock[0] > 23 || clock[1] > 59 || clock[2] > 60 {
            return None;
        }
        return Some(Stamp::TimeOfDay((clock[0] * 3600 + clock[1] * 60 + clock[2]) * NS_PER_SEC + frac));
    }
    // Only `-ttt` and `-r` print a bare number here, and it always has a fraction.
    if token.contains('.') && !whole.is_empty() && whole.len() <= 11 && whole.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = whole.parse().ok()?;
        let ns = secs.checked_mul(NS_PER_SEC)?.checked_add(frac)?;
        return Some(if secs < EPOCH_FLOOR_SECS { Stamp::Relative(ns) } else { Stamp::Epoch(ns) });
    }
    None
}

/// When a line happened, as far as its own stamp says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// `-ttt`: wall-clock nanoseconds.
    Wall(i64),
    /// `-t`/`-tt`: nanoseconds from the midnight before the file's first time of day.
    OfDay(i64),
}

/// Follows one file's times of day from the midnight before its first one, in file order: a time
/// that goes back by more than twelve hours has passed midnight.
#[derive(Clone, Debug, Default)]
pub struct DayRoller {
    day_offset: i64,
    previous: Option<i64>,
}

impl DayRoller {
    /// The moment of the next stamp of the file; `None` for a `-r` delta or no stamp.
    pub fn roll(&mut self, stamp: Option<Stamp>) -> Option<Moment> {
        match stamp? {
            Stamp::Epoch(ns) => Some(Moment::Wall(ns)),
            Stamp::TimeOfDay(t) => {
                if self.previous.is_some_and(|p| t.saturating_add(DAY_NS / 2) < p) {
                    self.day_offset = self.day_offset.saturating_add(DAY_NS);
                }
                self.previous = Some(t);
                Some(Moment::OfDay(t.saturating_add(self.day_offset)))
            }
            Stamp::Relative(_) => None,
        }
    }
}

/// How far apart two intervals are (0 when they overlap).
fn gap((a0, a1): (i64, i64), (b0, b1): (i64, i64)) -> u64 {
    if a1 < b0 {
        b0.saturating_sub(a1).unsigned_abs()
    } else if b1 < a0 {
        a0.saturating_sub(b1).unsigned_abs()
    } else {
        0
    }
}

/// What dating one file's times of day needs to know of it, from a first read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DaySpan {
    /// The earliest and latest [`Moment::OfDay`], when it has any.
    pub span: Option<(i64, i64)>,
    /// Its understood lines.
    pub lines: usize,
    /// Its modification time, nanoseconds since the epoch.
    pub mtime: Option<i64>,
}

impl DaySpan {
    pub fn widen(&mut self, moment: Option<Moment>) {
        if let Some(Moment::OfDay(t)) = moment {
            self.span = Some(self.span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
        }
    }
}

/// Where one file's times of day fall in wall-clock time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dating {
    midnight: i64,
    shift: i64,
}

impl Dating {
    /// Wall-clock nanoseconds of a moment of the file.
    pub fn wall(&self, moment: Option<Moment>) -> Option<i64> {
        match moment? {
            Moment::Wall(ns) => Some(ns),
            Moment::OfDay(t) => Some(self.midnight.saturating_add(t).saturating_add(self.shift)),
        }
    }
}

/// The dating of each file of one capture, the files being one run. Times of day are dated: the
/// file spanning the longest time is placed on the day (its modification time's UTC day, the day
/// before or after) that puts its last stamp closest to its modification time — strace writes a
/// file's last line last, and a copy keeps at least the day; every other file on the same day, or
/// the one before or after when that makes it overlap the first (it passed midnight alone).
pub fn date(files: &[DaySpan]) -> Vec<Dating> {
    let anchor = (0..files.len()).filter(|&f| files[f].span.is_some()).max_by_key(|&f| {
        let (lo, hi) = files[f].span.unwrap_or_default();
        (hi.saturating_sub(lo), files[f].lines)
    });
    let mtime = anchor.and_then(|f| files[f].mtime).or_else(|| files.iter().find_map(|f| f.mtime));
    let anchor_span = anchor.and_then(|f| files[f].span);
    let midnight = match (anchor_span, mtime) {
        (Some((_, last)), Some(mtime)) => {
            let day = mtime.div_euclid(DAY_NS).saturating_mul(DAY_NS);
            [day, day.saturating_sub(DAY_NS), day.saturating_add(DAY_NS)]
                .into_iter()
                .min_by_key(|d| d.saturating_add(last).saturating_sub(mtime).unsigned_abs())
                .unwrap_or(day)
        }
        (_, Some(mtime)) => mtime.div_euclid(DAY_NS).saturating_mul(DAY_NS),
        _ => 0,
    };
    files
        .iter()
        .map(|file| {
            let shift = match (file.span, anchor_span) {
                (Some((lo, hi)), Some(anchor)) => [0, -DAY_NS, DAY_NS]
                    .into_iter()
                    .min_by_key(|k| gap((lo.saturating_add(*k), hi.saturating_add(*k)), anchor))
                    .unwrap_or(0),
                _ => 0,
            };
            Dating { midnight, shift }
        })
        .collect()
}

/// Wall-clock nanoseconds for the stamps of each file (`(stamps in file order, mtime)`) read
/// whole: what [`DayRoller`], [`date`] and [`Dating::wall`] give a file at a time.
#[cfg(test)]
pub fn to_wall(files: &[(&[Option<Stamp>], Option<i64>)]) -> Vec<Vec<Option<i64>>> {
    let moments: Vec<Vec<Option<Moment>>> = files
        .iter()
        .map(|(stamps, _)| {
            let mut roller = DayRoller::default();
            stamps.iter().map(|s| roller.roll(*s)).collect()
        })
        .collect();
    let spans: Vec<DaySpan> = files
        .iter()
        .zip(&moments)
        .map(|((stamps, mtime), moments)| {
            let mut span = DaySpan { span: None, lines: stamps.len(), mtime: *mtime };
            moments.iter().for_each(|m| span.widen(*m));
            span
        })
        .collect();
    moments
        .iter()
        .zip(date(&spans))
        .map(|(moments, dating)| moments.iter().map(|m| dating.wall(*m)).collect())
        .collect()
}

/// A `-T` duration token: `0.000188` (inside `<...>`), as nanoseconds.
pub fn duration(token: &str) -> Option<u64> {
    let (whole, frac) = token.split_once('.')?;
    if whole.is_empty() || whole.len() > 10 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    Some(secs * NS_PER_SEC as u64 + fraction_ns(frac)? as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_of_day_with_and_without_microseconds() {
        assert_eq!(parse("00:32:31.650787"), Some(Stamp::TimeOfDay((32 * 60 + 31) * NS_PER_SEC + 650_787_000)));
        assert_eq!(parse("22:41:07"), Some(Stamp::TimeOfDay((22 * 3600 + 41 * 60 + 7) * NS_PER_SEC)));
        assert_eq!(
            parse("22:41:07.123456789"),
            Some(Stamp::TimeOfDay((22 * 3600 + 41 * 60 + 7) * NS_PER_SEC + 123_456_789))
        );
    }

    #[test]
    fn epoch_seconds_of_dash_ttt() {
        assert_eq!(parse("1795307581.966731"), Some(Stamp::Epoch(1_795_307_581_966_731_000)));
    }

    #[test]
    fn dash_r_deltas_are_not_times() {
        assert_eq!(parse("0.000123"), Some(Stamp::Relative(123_000)));
        let stamps = [parse("0.000123")];
        assert_eq!(to_wall(&[(&stamps, Some(MIDNIGHT))]), vec![vec![None]]);
    }

    #[test]
    fn tokens_that_are_not_timestamps() {
        for token in ["5192", "execve(", "25:00:00", "1:2:3", "12:00:00.x", "", "1.2.3", "123456789012.5"] {
            assert_eq!(parse(token), None, "{token}");
        }
    }

    const MIDNIGHT: i64 = 1_795_305_600 * NS_PER_SEC; // 2026-11-22 00:00:00 UTC

    #[test]
    fn time_of_day_is_dated_from_the_mtime_and_crosses_midnight() {
        let stamps = [parse("23:59:59.000000"), None, parse("00:00:01.000000")];
        let wall = to_wall(&[(&stamps, Some(MIDNIGHT + 5 * NS_PER_SEC))]);
        assert_eq!(wall, vec![vec![Some(MIDNIGHT - NS_PER_SEC), None, Some(MIDNIGHT + NS_PER_SEC)]]);
    }

    #[test]
    fn a_copy_made_days_later_keeps_the_files_together() {
        // Copied a day and a half later: every file has the copy's mtime.
        let copied = MIDNIGHT + DAY_NS + 11 * 3600 * NS_PER_SEC;
        let main = [parse("22:50:00"), parse("23:10:00")];
        let thread = [parse("23:05:00")];
        let wall = to_wall(&[(&main, Some(copied)), (&thread, Some(copied))]);
        assert_eq!(wall[1][0].unwrap() - wall[0][0].unwrap(), 15 * 60 * NS_PER_SEC, "{wall:?}");
    }

    #[test]
    fn a_thread_that_ran_only_after_midnight_stays_after_the_others() {
        let main = [parse("23:59:00"), parse("00:01:00")];
        let thread = [parse("00:00:30")];
        let mtime = MIDNIGHT + 61 * NS_PER_SEC;
        let wall = to_wall(&[(&main, Some(mtime)), (&thread, Some(MIDNIGHT + 31 * NS_PER_SEC))]);
        assert_eq!(wall[1][0], Some(MIDNIGHT + 30 * NS_PER_SEC));
        assert_eq!(wall[0][0], Some(MIDNIGHT - 60 * NS_PER_SEC));
    }

    #[test]
    fn epoch_stamps_need_no_date() {
        let stamps = [parse("1795307581.966731")];
        assert_eq!(to_wall(&[(&stamps, None)]), vec![vec![Some(1_795_307_581_966_731_000)]]);
    }

    #[test]
    fn durations_of_dash_t() {
        assert_eq!(duration("0.000188"), Some(188_000));
        assert_eq!(duration("2.5"), Some(2_500_000_000));
        assert_eq!(duration("unavailable"), None);
        assert_eq!(duration("99999999999.0"), None);
    }
}
