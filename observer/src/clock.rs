//! Turning the kernel's CLOCK_BOOTTIME stamps into wall-clock time, and the few time formats the
//! run directory uses (UTC throughout, so a capture reads the same anywhere).

/// Nanoseconds since the Unix epoch minus CLOCK_BOOTTIME nanoseconds, now.
pub fn boot_to_wall_offset_ns() -> i64 {
    let read = |clock| {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: valid clock id and timespec pointer.
        unsafe { libc::clock_gettime(clock, &mut ts) };
        ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    };
    let boot = read(libc::CLOCK_BOOTTIME);
    let wall = read(libc::CLOCK_REALTIME);
    wall - boot
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_wall_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-22T00:41:07.123456Z`
pub fn rfc3339(wall_ns: i64) -> String {
    let secs = wall_ns.div_euclid(1_000_000_000);
    let micros = wall_ns.rem_euclid(1_000_000_000) / 1000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Nanoseconds since the Unix epoch of an [`rfc3339`] time (`2026-11-22T00:41:07.123456Z`; any
/// number of fraction digits, `Z` only, as observer writes them).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 || fraction.len() > 9 {
        return None;
    }
    let nanos =
        if fraction.is_empty() { 0 } else { fraction.parse::<i64>().ok()? * 10_i64.pow(9 - fraction.len() as u32) };
    // Days from civil (Howard Hinnant's algorithm), the inverse of `civil_from_days`.
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) * 1_000_000_000) + nanos)
}

/// `20261122T004107Z`, for directory names.
pub fn compact_utc(wall_ns: i64) -> String {
    let secs = wall_ns.div_euclid(1_000_000_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!("{y:04}{mo:02}{d:02}T{:02}{:02}{:02}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// `22:41:07.123456`, strace's `-tt` (in UTC).
pub fn time_of_day(wall_ns: i64) -> String {
    let secs = wall_ns.div_euclid(1_000_000_000);
    let micros = wall_ns.rem_euclid(1_000_000_000) / 1000;
    let sod = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}.{micros:06}", sod / 3600, sod % 3600 / 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        // 2026-11-22 00:41:07.123456 UTC
        let ns = 1_795_308_067_123_456_000;
        assert_eq!(rfc3339(ns), "2026-11-22T00:41:07.123456Z");
        assert_eq!(compact_utc(ns), "20261122T004107Z");
        assert_eq!(time_of_day(ns), "00:41:07.123456");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn parses_what_it_formats() {
        for ns in [1_795_308_067_123_456_000, 0, 951_782_400_000_000_000, 4_102_444_799_999_999_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ns)), Some(ns));
        }
        assert_eq!(parse_rfc3339("2026-11-22T00:41:07Z"), Some(1_795_308_067_000_000_000));
        assert_eq!(parse_rfc3339("2026-11-22 00:41:07"), None);
        assert_eq!(parse_rfc3339("2026-13-22T00:41:07Z"), None);
    }

    #[test]
    fn boot_offset_is_close_to_now_minus_uptime() {
        let offset = boot_to_wall_offset_ns();
        assert!(offset > 0 && offset < now_wall_ns());
    }
}
