//! `schedule = "0 3 * * *"`: 5-field cron expressions, in UTC.

/// A parsed cron expression.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub text: String,
}

impl Schedule {
    /// Parses a 5-field cron expression (minute hour day-of-month month day-of-week).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        if text.split_whitespace().count() != 5 {
            return Err(format!(
                "schedule {text:?} is not a 5-field cron expression (minute hour day month weekday, UTC), like \"0 3 * * *\""
            ));
        }
        Ok(Schedule { text: text.to_owned() })
    }
}
