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
}

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
    // Only `-ttt` prints a bare number here, and it always has a fraction.
    if token.contains('.') && !whole.is_empty() && whole.len() <= 11 && whole.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = whole.parse().ok()?;
        return Some(Stamp::Epoch(secs.checked_mul(NS_PER_SEC)?.checked_add(frac)?));
    }
    None
}

/// Wall-clock nanoseconds for one file's stamps, in file order. Times of day are placed on a date:
/// they move to the next day whenever the clock goes back by more than twelve hours (midnight
/// passed), and the first day is the one of {mtime's UTC day - 1, that day, + 1} that puts the
/// file's last stamp closest to its modification time (strace writes its last line last).
pub fn to_wall(stamps: &[Option<Stamp>], mtime_ns: Option<i64>) -> Vec<Option<i64>> {
    let mut day_offset = 0i64;
    let mut previous: Option<i64> = None;
    let mut relative: Vec<Option<i64>> = Vec::with_capacity(stamps.len());
    for stamp in stamps {
        relative.push(match stamp {
            Some(Stamp::TimeOfDay(t)) => {
                if previous.is_some_and(|p| *t + DAY_NS / 2 < p) {
                    day_offset = day_offset.saturating_add(DAY_NS);
                }
                previous = Some(*t);
                Some(t.saturating_add(day_offset))
            }
            _ => None,
        });
    }
    let last_time_of_day = relative.iter().rev().find_map(|t| *t);
    let midnight = match (last_time_of_day, mtime_ns) {
        (Some(last), Some(mtime)) => {
            let day = mtime.div_euclid(DAY_NS) * DAY_NS;
            [day - DAY_NS, day, day + DAY_NS]
                .into_iter()
                .min_by_key(|d| d.saturating_add(last).saturating_sub(mtime).unsigned_abs())
                .unwrap_or(day)
        }
        (_, Some(mtime)) => mtime.div_euclid(DAY_NS) * DAY_NS,
        _ => 0,
    };
    stamps
        .iter()
        .zip(relative)
        .map(|(stamp, rel)| match stamp {
            Some(Stamp::Epoch(ns)) => Some(*ns),
            Some(Stamp::TimeOfDay(_)) => rel.map(|r| midnight.saturating_add(r)),
            None => None,
        })
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
        assert_eq!(parse("22:41:07.123456789"), Some(Stamp::TimeOfDay((22 * 3600 + 41 * 60 + 7) * NS_PER_SEC + 123_456_789)));
    }

    #[test]
    fn epoch_seconds_of_dash_ttt() {
        assert_eq!(parse("1795307581.966731"), Some(Stamp::Epoch(1_795_307_581_966_731_000)));
    }

    #[test]
    fn tokens_that_are_not_timestamps() {
        for token in ["5192", "execve(", "25:00:00", "1:2:3", "12:00:00.x", "", "1.2.3", "123456789012.5"] {
            assert_eq!(parse(token), None, "{token}");
        }
    }

    #[test]
    fn time_of_day_is_dated_from_the_mtime_and_crosses_midnight() {
        // 2026-11-22 00:00:05 UTC.
        let mtime = 1_795_305_600 * NS_PER_SEC + 5 * NS_PER_SEC;
        let stamps = [
            parse("23:59:59.000000"),
            None,
            parse("00:00:01.000000"),
        ];
        let wall = to_wall(&stamps, Some(mtime));
        assert_eq!(wall, vec![Some(1_795_305_599 * NS_PER_SEC), None, Some(1_795_305_601 * NS_PER_SEC)]);
    }

    #[test]
    fn durations_of_dash_t() {
        assert_eq!(duration("0.000188"), Some(188_000));
        assert_eq!(duration("2.5"), Some(2_500_000_000));
        assert_eq!(duration("unavailable"), None);
        assert_eq!(duration("99999999999.0"), None);
    }
}
