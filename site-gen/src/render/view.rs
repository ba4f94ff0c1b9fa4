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
    /// `test (python=3.11, db=postgres) #3`, `?` when unreadable.
    pub label: &'a str,
    /// `python=3.11, db=postgres`, or `""`.
    pub variant: &'a str,
    /// `run 3 of 10` for one run of a repeated job.
    pub repeat: Option<String>,
    /// The cron tick a scheduled run was queued for.
    pub scheduled: Option<&'a str>,
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
            label: if row.label.is_empty() { "?" } else { &row.label },
            variant: &row.variant,
            repeat: row.repeat.map(|r| format!("run {} of {}", r.index, r.count)),
            scheduled: row.scheduled.as_deref(),
            queue: &row.queue,
            branch: row.branch(),
            branch_href: (!row.git_ref.is_empty()).then(|| paths::branch(row.branch())),
            commit: &row.commit,
            commit_short: &row.commit[..row.commit.len().min(10)],
            commit_href: has_commit.then(|| paths::commit(&row.commit)),
            subject: commit.map_or("", |c| c.subject.as_str()),
            worker: &row.worker,
            attempt: row.attempt,
            duration: item_duration(row, now),
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

/// A finished job's duration; a running one's time so far, on live lists.
fn item_duration(row: &Row, now: Option<SystemTime>) -> String {
    match (row.state, now) {
        // A skipped job never ran: no duration, not "0s".
        (State::Finished(Status::Skipped), _) => String::new(),
        (State::Running, Some(now)) => since(&row.started_at, now).map(so_far).unwrap_or_default(),
        _ => row.duration_ms.map(duration).unwrap_or_default(),
    }
}

/// A time still growing, short (it sits in a narrow column): `<1m…`,
/// `4m…`. The site's clock counts whole minutes, so seconds would lie.
pub fn so_far(d: Duration) -> String {
    if d.as_secs() < 60 { "<1m…".to_owned() } else { format!("{}…", minutes(d)) }
}

/// A running job's time so far and what the last passed run of the same
/// job took: `running for 3m · the last passed run took 5m: about 2m left`.
#[derive(Serialize)]
pub struct Progress {
    pub elapsed: String,
    /// What the last passed run took, and the page of that run.
    pub last: Option<String>,
    pub last_href: Option<String>,
    /// `about 2m left`, or `1m over the last passed run`.
    pub estimate: Option<String>,
    /// Percent of the last run's time gone by, for a bar (at most 100).
    pub percent: Option<u64>,
}

impl Progress {
    pub fn new(row: &Row, last: Option<&Row>, now: SystemTime) -> Progress {
        let elapsed = since(&row.started_at, now);
        let took = last.and_then(|l| l.duration_ms).map(Duration::from_millis);
        let estimate = took.zip(elapsed).map(|(took, gone)| match took.checked_sub(gone) {
            Some(left) if left >= Duration::from_secs(60) => format!("about {} left", minutes(left)),
            Some(_) => "less than a minute left".to_owned(),
            None => format!("{} over the last passed run", minutes(gone - took)),
        });
        Progress {
            elapsed: elapsed.map(minutes).unwrap_or_default(),
            last: took.map(git_ci_core::time::human_duration),
            last_href: last.map(|l| paths::job(l.id.as_str())),
            estimate,
            percent: took.zip(elapsed).map(|(t, g)| (g.as_millis() * 100 / t.as_millis().max(1)).min(100) as u64),
        }
    }
}

/// How long ago `stamp` was, as of `now`.
fn since(stamp: &str, now: SystemTime) -> Option<Duration> {
    git_ci_core::time::parse_rfc3339(stamp).map(|t| now.duration_since(t).unwrap_or_default())
}

/// `under a minute`, `4m`, `1h 5m`: a site's clock counts whole minutes.
pub fn minutes(d: Duration) -> String {
    let m = d.as_secs() / 60;
    match m {
        0 => "under a minute".to_owned(),
        1..=59 => format!("{m}m"),
        _ if m.is_multiple_of(60) => format!("{}h", m / 60),
        _ => format!("{}h {}m", m / 60, m % 60),
    }
}

/// Several runs of one job name shown as one (a matrix job's
/// combinations, a repeated job's runs, in a branch's matrix): the state
/// of the run that asks most for attention, which it links to.
#[derive(Serialize)]
pub struct Cell<'a> {
    pub name: &'a str,
    pub state: &'static str,
    pub icon: &'static str,
    pub href: String,
    pub commit_short: &'a str,
    /// `test: 3 passed, 1 failed`, for a tooltip.
    pub title: String,
    /// `3 passed, 1 failed` when there are several runs, else `""`.
    pub tally: String,
    /// How many runs it stands for.
    pub runs: usize,
    /// A newer run than the one shown is in flight (a branch's health).
    pub rerunning: bool,
}

impl<'a> Cell<'a> {
    /// `None` for no runs.
    pub fn new(runs: &[&'a Row]) -> Option<Cell<'a>> {
        let worst = crate::model::row::worst(runs.iter().copied())?;
        let tally = if runs.len() > 1 { tally(runs) } else { String::new() };
        let name = if worst.name.is_empty() { "?" } else { worst.name.as_str() };
        let what = if tally.is_empty() { worst.state.as_str().to_owned() } else { tally.clone() };
        Some(Cell {
            name,
            state: worst.state.as_str(),
            icon: icon(worst.state),
            href: paths::job(worst.id.as_str()),
            commit_short: &worst.commit[..worst.commit.len().min(10)],
            title: format!("{name}: {what}"),
            tally,
            runs: runs.len(),
            rerunning: false,
        })
    }
}

/// `3 passed, 1 failed`: how many runs ended each way, the states that
/// ask most for attention last (where the eye ends).
pub fn tally(runs: &[&Row]) -> String {
    let mut counts: Vec<(u8, &str, usize)> = Vec::new();
    for r in runs {
        match counts.iter_mut().find(|(_, s, _)| *s == r.state.as_str()) {
            Some(c) => c.2 += 1,
            None => counts.push((r.rank(), r.state.as_str(), 1)),
        }
    }
    counts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    counts.iter().map(|(_, s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ")
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

    #[test]
    fn a_cell_speaks_for_its_worst_run() {
        use crate::model::row::sample;
        let st = State::Finished;
        let rows = [
            sample("test", "main", st(Status::Passed)),
            sample("test", "main", st(Status::Failed)),
            sample("test", "main", st(Status::Passed)),
        ];
        let runs: Vec<&Row> = rows.iter().collect();
        let cell = Cell::new(&runs).unwrap();
        assert_eq!((cell.state, cell.icon), ("failed", "✗"));
        assert_eq!(cell.href, paths::job(rows[1].id.as_str()), "links the failure");
        assert_eq!(cell.title, "test: 2 passed, 1 failed");
        assert_eq!(Cell::new(&runs[..1]).unwrap().title, "test: passed");
        assert!(Cell::new(&[]).is_none());
    }
}
