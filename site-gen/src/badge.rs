//! Shields-style status badges: what a branch (or one job on it) looks
//! like now, for READMEs. Drawn by the `badge.svg` template; this module
//! decides the words and colours and measures the text.

use git_ci_core::model::Status;
use git_ci_core::state::State;
use serde::Serialize;

use crate::model::Row;
use crate::model::row::worst;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Badge {
    Passing,
    Failing,
    Running,
    Pending,
    Cancelled,
    /// Never ran because a job it needs did not pass.
    Skipped,
    Timeout,
    Error,
    Unknown,
}

impl Badge {
    pub fn word(self) -> &'static str {
        match self {
            Badge::Passing => "passing",
            Badge::Failing => "failing",
            Badge::Running => "running",
            Badge::Pending => "pending",
            Badge::Cancelled => "cancelled",
            Badge::Skipped => "skipped",
            Badge::Timeout => "timeout",
            Badge::Error => "error",
            Badge::Unknown => "unknown",
        }
    }

    fn colour(self) -> &'static str {
        match self {
            Badge::Passing => "#2e9e44",
            Badge::Failing | Badge::Error => "#d73a3a",
            Badge::Timeout => "#e8710a",
            Badge::Running => "#1f78c8",
            Badge::Pending | Badge::Cancelled | Badge::Skipped | Badge::Unknown => "#8a8a8a",
        }
    }

    /// One job's latest run.
    pub fn of_job(row: &Row) -> Badge {
        match row.state {
            State::Pending => Badge::Pending,
            State::Running => Badge::Running,
            State::Finished(Status::Passed) => Badge::Passing,
            State::Finished(Status::Failed) => Badge::Failing,
            State::Finished(Status::Timeout) => Badge::Timeout,
            State::Finished(Status::Cancelled) => Badge::Cancelled,
            State::Finished(Status::Skipped) => Badge::Skipped,
            State::Finished(Status::Error) => Badge::Error,
        }
    }

    /// A job name's latest runs (a matrix job's combinations, a repeated
    /// job's runs): the one that asks most for attention ([`worst`]).
    pub fn of_runs<'a>(runs: impl IntoIterator<Item = &'a Row>) -> Badge {
        worst(runs).map_or(Badge::Unknown, Badge::of_job)
    }

    /// A branch, from the latest run of each of its jobs: failing if any
    /// failed (that is news even while others run), else running while any
    /// runs, else passing if any passed and the rest were cancelled or
    /// skipped. A skipped job never makes a branch fail: it is the
    /// consequence of a failure that already does.
    pub fn of_branch<'a>(latest: impl IntoIterator<Item = &'a Row>) -> Badge {
        let badges: Vec<Badge> = latest.into_iter().map(Badge::of_job).collect();
        let any = |b: &[Badge]| badges.iter().any(|x| b.contains(x));
        if any(&[Badge::Failing, Badge::Timeout, Badge::Error]) {
            Badge::Failing
        } else if any(&[Badge::Running, Badge::Pending]) {
            Badge::Running
        } else if any(&[Badge::Passing]) {
            Badge::Passing
        } else if any(&[Badge::Cancelled]) {
            Badge::Cancelled
        } else if any(&[Badge::Skipped]) {
            Badge::Skipped
        } else {
            Badge::Unknown
        }
    }
}

/// What `badge.svg` is rendered with.
#[derive(Serialize)]
pub struct BadgeContext<'a> {
    pub label: &'a str,
    pub message: &'static str,
    pub colour: &'static str,
    pub title: String,
    pub label_width: u32,
    pub message_width: u32,
    pub width: u32,
    /// Text centres, in tenths of a pixel (the template scales by 0.1 for
    /// crisp text, as shields.io does).
    pub label_x: u32,
    pub message_x: u32,
}

impl<'a> BadgeContext<'a> {
    pub fn new(label: &'a str, badge: Badge, title: String) -> BadgeContext<'a> {
        let message = badge.word();
        let label_width = text_width(label) + 10;
        let message_width = text_width(message) + 10;
        BadgeContext {
            label,
            message,
            colour: badge.colour(),
            title,
            label_width,
            message_width,
            width: label_width + message_width,
            label_x: label_width * 5,
            message_x: label_width * 10 + message_width * 5,
        }
    }
}

/// Approximate width in pixels of `s` in 11px Verdana, the badges' font.
fn text_width(s: &str) -> u32 {
    let tenths: u32 = s
        .chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '!' | '|' | '\'' => 32,
            'f' | 't' | 'r' | ' ' | '(' | ')' | '[' | ']' | '-' | '/' => 45,
            'm' | 'w' | 'M' | 'W' | '@' | '%' => 100,
            c if c.is_ascii_uppercase() => 75,
            c if c.is_ascii() => 65,
            _ => 85,
        })
        .sum();
    tenths.div_ceil(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_wins_then_running_then_passing() {
        use crate::model::row::sample;
        let (passed, failed) = (State::Finished(Status::Passed), State::Finished(Status::Failed));
        let rows = [sample("a", "main", passed), sample("b", "main", State::Running), sample("c", "main", failed)];
        assert_eq!(Badge::of_branch(&rows), Badge::Failing);
        assert_eq!(Badge::of_branch(&rows[..2]), Badge::Running);
        assert_eq!(Badge::of_branch(&rows[..1]), Badge::Passing);
        let cancelled = sample("d", "main", State::Finished(Status::Cancelled));
        assert_eq!(Badge::of_branch([&rows[0], &cancelled]), Badge::Passing);
        assert_eq!(Badge::of_branch([&cancelled]), Badge::Cancelled);
        assert_eq!(Badge::of_branch([]), Badge::Unknown);
    }

    #[test]
    fn a_skipped_job_never_paints_a_branch_red() {
        use crate::model::row::sample;
        let st = State::Finished;
        let (passed, skipped) =
            (sample("build", "main", st(Status::Passed)), sample("deploy", "main", st(Status::Skipped)));
        assert_eq!(Badge::of_job(&skipped), Badge::Skipped);
        assert_eq!(Badge::of_branch([&passed, &skipped]), Badge::Passing);
        assert_eq!(Badge::of_branch([&skipped]), Badge::Skipped);
        let failed = sample("test", "main", st(Status::Failed));
        assert_eq!(Badge::of_branch([&passed, &failed, &skipped]), Badge::Failing, "the failed need is the news");
        assert_eq!(Badge::of_runs([&passed, &failed]), Badge::Failing, "a matrix job fails if a combination failed");
        assert_eq!(Badge::of_runs([&skipped, &passed]), Badge::Passing);
    }

    #[test]
    fn widths_grow_with_text() {
        let short = BadgeContext::new("ci", Badge::Passing, String::new());
        let long = BadgeContext::new("integration-tests", Badge::Passing, String::new());
        assert!(long.width > short.width + 50);
        assert_eq!(short.width, short.label_width + short.message_width);
    }
}
