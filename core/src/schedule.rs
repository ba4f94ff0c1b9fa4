//! `schedule = "0 3 * * *"`: 5-field cron expressions, in UTC.
//!
//! The fields are minute, hour, day of month, month and day of week, as in
//! crontab(5): `*`, lists (`1,15`), ranges (`1-5`), steps (`*/10`), month
//! and weekday names (`jan`, `mon-fri`), Sunday as `0` or `7`, and the
//! `@hourly` `@daily` `@weekly` `@monthly` `@yearly` nicknames. When both
//! the day of month and the day of week are restricted, either one
//! matching is enough (as cron does). Times are UTC: a hub's watchers may
//! sit in different time zones, and a tick must be the same instant for
//! all of them.
//!
//! Parsing and the calendar arithmetic are croner's; this module gives its
//! errors the field they are about, because the person reading them is
//! looking at one line of `.git-ci.toml`.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Zoned;
use jiff::tz::TimeZone;

/// The fields in order, as an error names them.
const FIELDS: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];

/// What a valid field looks like, per field.
const EXAMPLES: [&str; 5] = [
    "0-59, like \"30\" or \"*/15\"",
    "0-23, like \"3\" or \"9-17\"",
    "1-31, like \"1\" or \"1,15\"",
    "1-12 or jan-dec, like \"*/3\"",
    "0-7 or sun-sat, like \"1-5\" or \"mon-fri\"",
];

const FORMAT: &str = "minute hour day-of-month month day-of-week, in UTC, like \"0 3 * * *\" (every day at 03:00)";

/// A parsed cron expression.
#[derive(Clone)]
pub struct Schedule {
    pub text: String,
    cron: Cron,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.text).finish()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build()
}

impl Schedule {
    /// Parses a 5-field cron expression (minute hour day-of-month month
    /// day-of-week, UTC). The error names the field at fault.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let trimmed = text.trim();
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if !trimmed.starts_with('@') && fields.len() != 5 {
            return Err(format!(
                "schedule {text:?} has {} field{}, a cron expression has 5: {FORMAT}",
                fields.len(),
                if fields.len() == 1 { "" } else { "s" }
            ));
        }
        match parser().parse(trimmed) {
            Ok(cron) => Ok(Schedule { text: text.to_owned(), cron }),
            Err(e) => Err(explain(text, &fields, &e.to_string())),
        }
    }

    /// The latest tick at or before `t`; `None` when there is none (a
    /// time before the schedule could ever have fired).
    pub fn latest_tick_at_or_before(&self, t: SystemTime) -> Option<SystemTime> {
        let at = zoned(t)?;
        self.cron.find_previous_occurrence(&at, true).ok().and_then(|z| system_time(&z))
    }

    /// The first tick strictly after `t`; `None` when the schedule never
    /// fires again (`0 0 30 2 *`, February 30th).
    pub fn next_tick_after(&self, t: SystemTime) -> Option<SystemTime> {
        let at = zoned(t)?;
        self.cron.find_next_occurrence(&at, false).ok().and_then(|z| system_time(&z))
    }
}

impl FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Schedule, String> {
        Schedule::parse(s)
    }
}

/// Finds the field croner refused by trying each alone among `*`s, so the
/// message can say "the hour field "25"" instead of croner's internals.
fn explain(text: &str, fields: &[&str], cause: &str) -> String {
    if fields.len() == 5 {
        for (i, field) in fields.iter().enumerate() {
            let mut alone = ["*"; 5];
            alone[i] = field;
            if parser().parse(&alone.join(" ")).is_err() {
                return format!(
                    "schedule {text:?}: the {} field {field:?} is not valid: use {} ({FORMAT})",
                    FIELDS[i], EXAMPLES[i]
                );
            }
        }
    }
    let cause = cause.trim_end_matches('.');
    format!(
        "schedule {text:?} is not a valid cron expression ({cause}): {FORMAT}; or @hourly, @daily, @weekly, @monthly"
    )
}

/// `t` in UTC, to the second: a tick is a whole minute, and croner's
/// search steps whole seconds.
fn zoned(t: SystemTime) -> Option<Zoned> {
    let secs = i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    let ts = jiff::Timestamp::from_second(secs).ok()?;
    Some(ts.to_zoned(TimeZone::UTC))
}

fn system_time(z: &Zoned) -> Option<SystemTime> {
    let secs = u64::try_from(z.timestamp().as_second()).ok()?;
    Some(UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_rfc3339, rfc3339};

    fn at(s: &str) -> SystemTime {
        parse_rfc3339(s).unwrap()
    }

    fn show(t: Option<SystemTime>) -> String {
        t.map(rfc3339).unwrap_or_default()
    }

    #[test]
    fn ticks_before_and_after() {
        let s = Schedule::parse("0 3 * * *").unwrap();
        assert_eq!(show(s.latest_tick_at_or_before(at("2026-11-22T14:00:00Z"))), "2026-11-22T03:00:00.000Z");
        assert_eq!(show(s.latest_tick_at_or_before(at("2026-11-22T02:59:59.999Z"))), "2026-11-21T03:00:00.000Z");
        assert_eq!(show(s.latest_tick_at_or_before(at("2026-11-22T03:00:00Z"))), "2026-11-22T03:00:00.000Z");
        assert_eq!(show(s.latest_tick_at_or_before(at("2026-11-22T03:00:00.500Z"))), "2026-11-22T03:00:00.000Z");
        assert_eq!(show(s.next_tick_after(at("2026-11-22T03:00:00Z"))), "2026-11-23T03:00:00.000Z");
        assert_eq!(show(s.next_tick_after(at("2026-11-22T02:59:59Z"))), "2026-11-22T03:00:00.000Z");
        let every = Schedule::parse("* * * * *").unwrap();
        assert_eq!(show(every.next_tick_after(at("2026-11-22T14:00:59.900Z"))), "2026-11-22T14:01:00.000Z");
        assert_eq!(show(every.latest_tick_at_or_before(at("2026-11-22T14:00:59.900Z"))), "2026-11-22T14:00:00.000Z");
    }

    #[test]
    fn weekdays_months_and_either_day_as_cron_reads_them() {
        // 2026-11-22 is a Sunday.
        let weekdays = Schedule::parse("30 9 * * mon-fri").unwrap();
        assert_eq!(show(weekdays.next_tick_after(at("2026-11-21T12:00:00Z"))), "2026-11-23T09:30:00.000Z");
        let sunday = Schedule::parse("0 0 * * 7").unwrap();
        assert_eq!(show(sunday.next_tick_after(at("2026-11-20T00:00:00Z"))), "2026-11-22T00:00:00.000Z");
        let quarterly = Schedule::parse("0 0 1 */3 *").unwrap();
        assert_eq!(show(quarterly.next_tick_after(at("2026-11-22T00:00:00Z"))), "2027-01-01T00:00:00.000Z");
        // The 1st or any Monday.
        let either = Schedule::parse("0 0 1 * 1").unwrap();
        assert_eq!(show(either.next_tick_after(at("2026-11-22T00:00:00Z"))), "2026-11-23T00:00:00.000Z");
        let daily = Schedule::parse("@daily").unwrap();
        assert_eq!(show(daily.next_tick_after(at("2026-11-22T00:00:00Z"))), "2026-11-23T00:00:00.000Z");
    }

    #[test]
    fn a_date_that_never_comes_has_no_tick() {
        let never = Schedule::parse("0 0 30 2 *").unwrap();
        assert_eq!(never.next_tick_after(at("2026-11-22T00:00:00Z")), None);
    }

    #[test]
    fn errors_name_the_field_and_show_an_example() {
        let cases = [
            ("0 3 * *", "has 4 fields, a cron expression has 5"),
            ("0 0 3 * * *", "has 6 fields"),
            ("", "has 0 fields"),
            ("61 * * * *", "the minute field \"61\""),
            ("0 25 * * *", "the hour field \"25\""),
            ("0 0 32 * *", "the day of month field \"32\""),
            ("0 0 * 13 *", "the month field \"13\""),
            ("0 0 * * 8", "the day of week field \"8\""),
            ("0 0 * * funday", "the day of week field"),
            ("x * * * *", "the minute field \"x\""),
            ("*/0 * * * *", "the minute field"),
            ("@sometimes", "not a valid cron expression"),
        ];
        for (text, needle) in cases {
            let e = Schedule::parse(text).expect_err(text);
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.contains("like \"0 3 * * *\""), "{text:?} gives an example: {e}");
        }
    }

    #[test]
    fn pipeline_errors_carry_the_line_of_the_schedule() {
        let text = "[job.a]\nrun = \"x\"\n\nschedule = \"0 25 * * *\"\n";
        let e = crate::pipeline::Pipeline::parse(text, ".git-ci.toml").unwrap_err();
        assert_eq!((e.line, e.column), (4, 12), "{e}");
        let shown = e.to_string();
        assert!(shown.starts_with(".git-ci.toml:4:12: schedule \"0 25 * * *\": the hour field \"25\""), "{shown}");
        let e = crate::pipeline::Pipeline::parse("[job.a]\nrun = \"x\"\nschedule = \"daily\"\n", "f").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.to_string().contains("has 1 field, a cron expression has 5"), "{e}");
    }
}
