//! Wall-clock timestamps as the JSON documents store them (RFC 3339, UTC,
//! milliseconds). Leases are never judged on these: see `queue::LeaseClock`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, formatted as `2026-11-22T04:07:04.123Z`.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time before 1970 (a clock set far back) is written as the epoch, and
/// one after 9999 as the last millisecond of 9999: the formatter cannot
/// write either (it panics on the latter), and a document must still be
/// written.
pub fn rfc3339(t: SystemTime) -> String {
    let latest = UNIX_EPOCH + Duration::from_millis(253_402_300_799_999);
    humantime::format_rfc3339_millis(t.clamp(UNIX_EPOCH, latest)).to_string()
}

/// Parses what [`rfc3339`] wrote; `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// `YYYYMMDDTHHMMSSmmm`, the sortable time prefix of a job id.
pub fn compact(t: SystemTime) -> String {
    rfc3339(t).chars().filter(|c| c.is_ascii_digit() || *c == 'T').collect()
}

pub fn millis_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// The longest duration any setting takes: past any sensible value, and
/// short enough that adding it to a clock reading can never overflow (a
/// `500000000000y` would panic the first `Instant + Duration`).
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 31_557_600);

/// Parses `30s`, `10m`, `1h 30m`... as `.git-ci.toml` and the flags write
/// them, up to [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    parse_duration_at_most(s, "duration", MAX_DURATION)
}

/// [`parse_duration`] for a setting (`what`, as the user wrote its name)
/// that may be at most `max`.
pub fn parse_duration_at_most(s: &str, what: &str, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?}: {e} (try \"90s\", \"30m\" or \"1h\")"))?;
    if d > max {
        return Err(format!("{what} {s:?} is too long: the maximum is {}", humantime::format_duration(max)));
    }
    Ok(d)
}

/// A short human form: `850ms`, `12.3s`, `4m05s`, `2h10m`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_form_sorts_like_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        let c = compact(t);
        assert_eq!(c.len(), 18, "{c}");
        assert!(c.ends_with("123"));
        assert_eq!(&c[8..9], "T");
        assert!(compact(t + Duration::from_millis(1)) > c);
    }

    #[test]
    fn rfc3339_round_trips() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
    }

    #[test]
    fn a_time_before_the_epoch_is_written_as_the_epoch() {
        let t = UNIX_EPOCH - Duration::from_secs(86_400);
        assert_eq!(rfc3339(t), "1970-01-01T00:00:00.000Z");
        assert_eq!(compact(t), "19700101T000000000");
    }

    #[test]
    fn a_time_past_year_9999_is_written_not_panicked_on() {
        let t = UNIX_EPOCH + Duration::from_secs(500_000_000_000 * 31_557_600 / 1000);
        assert_eq!(rfc3339(t), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn absurd_durations_are_refused_with_the_maximum() {
        let e = parse_duration("500000000000y").unwrap_err();
        assert!(e.contains("500000000000y") && e.contains("100years"), "{e}");
        let e = parse_duration_at_most("2d", "--lease", Duration::from_secs(86_400)).unwrap_err();
        assert_eq!(e, "--lease \"2d\" is too long: the maximum is 1day");
        assert_eq!(
            parse_duration_at_most("1d", "--lease", Duration::from_secs(86_400)),
            Ok(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_duration("soon").unwrap_err().contains("30m"));
        assert_eq!(human_duration(Duration::from_millis(65_000)), "1m05s");
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
    }
}
