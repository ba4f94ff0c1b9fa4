//! Rows as templates see them, and the small formatting helpers templates
//! use as filters. Templates get ready-made text and links: no logic there
//! that a user overriding a template would have to repeat.

use std::time::{Duration, SystemTime};

use git_ci_core::model::{Status, TestCounts};
use git_ci_core::state::State;
use serde::Serialize;

use super::paths;
use crate::model::{CommitInfo, Row};

#[derive(Serialize)]
pub struct JobItem<'a> {
    pub id: &'a str,
    pub short_id: &'a str,
    pub href: String,
    pub state: &'static str,
    pub icon: &'static str,
    /// `?` when the job document is unreadable.
    pub name: &'a str,
    pub queue: &'a str,
    pub branch: &'a str,
    pub branch_href: Option<String>,
    pub commit: &'a str,
    pub commit_short: &'a str,
    pub commit_href: Option<String>,
    pub subject: &'a str,
    pub worker: &'a str,
    pub attempt: u32,
    pub duration: String,
    pub submitted_at: &'a str,
    pub started_at: &'a str,
    pub finished_at: &'a str,
    /// Only on live pages (index, queue), which are rebuilt every time.
    pub age: Option<String>,
    pub tests: Option<TestCounts>,
    pub reason: Option<&'a str>,
    pub malformed: bool,
}

impl<'a> JobItem<'a> {
    pub fn new(row: &'a Row, commit: Option<&'a CommitInfo>, now: Option<SystemTime>) -> JobItem<'a> {
        let id = row.id.as_str();
        let has_commit = !row.commit.is_empty();
        JobItem {
            id,
            short_id: row.id.short(),
            href: paths::job(id),
            state: row.state.as_str(),
            icon: icon(row.state),
            name: if row.name.is_empty() { "?" } else { &row.name },
            queue: &row.queue,
            branch: row.branch(),
            branch_href: (!row.git_ref.is_empty()).then(|| paths::branch(row.branch())),
            commit: &row.commit,
            commit_short: &row.commit[..row.commit.len().min(10)],
            commit_href: has_commit.then(|| paths::commit(&row.commit)),
            subject: commit.map_or("", |c| c.subject.as_str()),
            worker: &row.worker,
            attempt: row.attempt,
            duration: row.duration_ms.map(duration).unwrap_or_default(),
            submitted_at: &row.submitted_at,
            started_at: &row.started_at,
            finished_at: &row.finished_at,
            age: now.map(|now| age(&row.submitted_at, now)),
            tests: row.tests,
            reason: row.reason.as_deref(),
            malformed: row.malformed,
        }
    }
}

pub fn icon(state: State) -> &'static str {
    match state {
        State::Pending => "○",
        State::Running => "●",
        State::Finished(Status::Passed) => "✓",
        State::Finished(Status::Failed) => "✗",
        State::Finished(Status::Timeout) => "⏱",
        State::Finished(Status::Cancelled) => "⊘",
        State::Finished(Status::Error) => "!",
        State::Finished(Status::Skipped) => "↷",
    }
}

/// `2026-11-22 04:07:04 UTC` from an RFC 3339 stamp; the stamp as is if
/// it is not one.
pub fn when(stamp: &str) -> String {
    // The shape git-ci writes (UTC, milliseconds) needs no parsing.
    let b = stamp.as_bytes();
    let utc = b.len() == 24 && b[10] == b'T' && b[19] == b'.' && b[23] == b'Z';
    if utc && stamp.bytes().enumerate().all(|(i, c)| c.is_ascii_digit() || matches!(i, 4 | 7 | 10 | 13 | 16 | 19 | 23))
    {
        return format!("{} {} UTC", &stamp[..10], &stamp[11..19]);
    }
    match git_ci_core::time::parse_rfc3339(stamp) {
        Some(t) => {
            let s = git_ci_core::time::rfc3339(t);
            format!("{} {} UTC", &s[..10], &s[11..19])
        }
        None => stamp.to_owned(),
    }
}

pub fn duration(ms: u64) -> String {
    git_ci_core::time::human_duration(Duration::from_millis(ms))
}

/// `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// How long before `now` the stamp was: `40s`, `5m`, `3h`, `2d`.
pub fn age(stamp: &str, now: SystemTime) -> String {
    let Some(t) = git_ci_core::time::parse_rfc3339(stamp) else {
        return String::new();
    };
    let secs = now.duration_since(t).map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(when("2026-11-22T04:07:04.123Z"), "2026-11-22 04:07:04 UTC");
        assert_eq!(when("<b>"), "<b>");
        assert_eq!(when("2026-11-22T04:07:04Z"), "2026-11-22 04:07:04 UTC");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        let t = git_ci_core::time::parse_rfc3339("2026-11-22T04:07:04.123Z").unwrap();
        assert_eq!(age("2026-11-22T04:07:04.123Z", t + Duration::from_secs(7200)), "2h");
    }
}
