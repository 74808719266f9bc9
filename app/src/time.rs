//! Wall-clock time and human-friendly ages, on the server and in the browser alike.

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    #[cfg(all(target_arch = "wasm32", feature = "hydrate"))]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(all(target_arch = "wasm32", feature = "hydrate")))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A compact age such as `just now`, `42s`, `5m`, `3h`, `2d`.
pub fn format_age(elapsed_ms: i64) -> String {
    let secs = elapsed_ms.max(0) / 1000;
    match secs {
        0..5 => "just now".to_string(),
        5..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// The time of day (`HH:MM:SS`, UTC) of an RFC 3339 timestamp; the input when it has none.
pub fn format_clock(ts: &str) -> String {
    match ts.split_once('T') {
        Some((_, time)) if time.len() >= 8 => time[..8].to_string(),
        _ => ts.to_string(),
    }
}

/// The day and minute (`YYYY-MM-DD HH:MM`, UTC) of an RFC 3339 timestamp; the input when it
/// is shorter.
pub fn format_minute(ts: &str) -> String {
    match ts.get(..16) {
        Some(head) if head.as_bytes()[10] == b'T' => head.replacen('T', " ", 1),
        _ => ts.to_string(),
    }
}

/// Milliseconds since the Unix epoch of an RFC 3339 UTC instant as Factory writes them
/// (`2026-11-22T05:01:08.123Z`, fraction optional). `None` for anything else.
pub fn parse_rfc3339_ms(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !ts.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = &ts[19..ts.len() - 1];
    let ms = match frac.strip_prefix('.') {
        None if frac.is_empty() => 0,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) => {
            let padded = format!("{digits:0<3}");
            padded[..3].parse::<i64>().ok()?
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + s * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::{format_age, format_minute, parse_rfc3339_ms};

    #[test]
    fn minutes_drop_seconds_and_the_t() {
        assert_eq!(
            format_minute("2026-11-22T05:01:08.123Z"),
            "2026-11-22 05:01"
        );
        assert_eq!(format_minute("yesterday"), "yesterday");
    }

    #[test]
    fn parses_factory_timestamps() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T05:01:08.123Z"),
            Some(1_795_323_668_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2000-02-29T12:00:00.000Z"),
            Some(951_825_600_000)
        );
        assert_eq!(parse_rfc3339_ms("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(parse_rfc3339_ms("2026-11-22T05:01:08.12xZ"), None);
    }

    #[test]
    fn ages_use_the_largest_whole_unit() {
        assert_eq!(format_age(-5_000), "just now");
        assert_eq!(format_age(4_999), "just now");
        assert_eq!(format_age(42_000), "42s");
        assert_eq!(format_age(5 * 60_000 + 59_000), "5m");
        assert_eq!(format_age(3 * 3_600_000), "3h");
        assert_eq!(format_age(50 * 3_600_000), "2d");
    }
}
