//! Wall-clock timestamps as the JSON documents store them (RFC 3339, UTC,
//! milliseconds). Leases are never judged on these: see `queue::LeaseClock`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, formatted as `2026-11-22T04:07:04.123Z`.
pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time before 1970 (a clock set far back) is written as the epoch:
/// the formatter cannot write it, and a document must still be written.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t.max(UNIX_EPOCH)).to_string()
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

/// Parses `30s`, `10m`, `1h 30m`... as `.git-ci.toml` and the flags write them.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?}: {e} (try \"90s\", \"30m\" or \"1h\")"))
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
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_duration("soon").unwrap_err().contains("30m"));
        assert_eq!(human_duration(Duration::from_millis(65_000)), "1m05s");
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
    }
}
