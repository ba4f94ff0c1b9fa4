//! `feed.atom`: when a job broke and when it recovered, per branch and job
//! label (each matrix combination on its own), for any feed reader. A
//! failure after a pass (or a first failure) is news; so is a pass after a
//! failure; a job failing again is not. A skipped job is no news: the
//! failure of what it needed is.

use std::collections::HashMap;

use git_ci_core::model::Status;
use git_ci_core::state::State;
use serde::Serialize;

use crate::error::SiteError;
use crate::model::Row;
use crate::output::Output;
use crate::render::{Build, paths, value};

const ENTRIES: usize = 50;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Broke,
    Recovered,
}

/// Failures and recoveries among `rows` (newest first), newest first.
pub fn changes(rows: &[Row]) -> Vec<(Change, &Row)> {
    let mut last: HashMap<(&str, &str), bool> = HashMap::new();
    let mut out = Vec::new();
    for row in rows.iter().rev() {
        let passed = match row.state {
            State::Finished(Status::Passed) => true,
            State::Finished(Status::Failed | Status::Timeout | Status::Error) => false,
            _ => continue,
        };
        match (last.insert((&row.git_ref, &row.label), passed), passed) {
            (Some(true) | None, false) => out.push((Change::Broke, row)),
            (Some(false), true) => out.push((Change::Recovered, row)),
            _ => {}
        }
    }
    out.reverse();
    out
}

#[derive(Serialize)]
struct Entry {
    id: String,
    kind: &'static str,
    title: String,
    summary: String,
    updated: String,
    href: String,
}

pub fn render_feed(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let entries: Vec<Entry> =
        changes(&b.data.rows).into_iter().take(ENTRIES).map(|(c, row)| entry(b, c, row)).collect();
    let base = b.options.base_url.as_deref().map(|u| format!("{}/", u.trim_end_matches('/'))).unwrap_or_default();
    let ctx = value(serde_json::json!({
        "feed_id": "failures",
        "base": base,
        "version": env!("CARGO_PKG_VERSION"),
        // The newest entry's time, not the build's: an unchanged feed is
        // not rewritten, and readers are not told of news that is not.
        "updated": entries.first().map_or("1970-01-01T00:00:00Z", |e| e.updated.as_str()),
        "entries": serde_json::to_value(&entries).expect("plain data"),
    }));
    out.always("feed", |files| files.write("feed.atom", b.renderer.render("feed.atom", ctx)?.as_bytes()))
}

fn entry(b: &Build, change: Change, row: &Row) -> Entry {
    let name = if row.label.is_empty() { "?" } else { &row.label };
    let (kind, verb) = match change {
        Change::Broke => ("failure", row.state.as_str().to_owned()),
        Change::Recovered => ("recovery", "recovered".to_owned()),
    };
    let subject = b.data.commit(&row.commit).map(|c| c.subject.as_str()).unwrap_or_default();
    let mut summary = format!("{name} {verb} on {} at {}", row.branch(), &row.commit[..row.commit.len().min(10)]);
    if !subject.is_empty() {
        summary.push_str(&format!(" ({subject})"));
    }
    if let Some(reason) = &row.reason {
        summary.push_str(&format!(": {reason}"));
    }
    let updated = if row.finished_at.is_empty() { &row.submitted_at } else { &row.finished_at };
    Entry {
        id: row.id.to_string(),
        kind,
        title: format!("{name} {verb} on {}", row.branch()),
        summary,
        updated: updated.clone(),
        href: paths::job(row.id.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::row::sample;

    #[test]
    fn only_changes_are_news() {
        let st = |s| State::Finished(s);
        // Oldest first here; `changes` takes newest first.
        let mut rows = vec![
            sample("t", "refs/heads/main", st(Status::Passed)),
            sample("t", "refs/heads/main", st(Status::Failed)),
            sample("t", "refs/heads/main", st(Status::Failed)),
            sample("t", "refs/heads/main", st(Status::Cancelled)),
            sample("t", "refs/heads/main", st(Status::Passed)),
            sample("t", "refs/heads/dev", st(Status::Timeout)),
        ];
        rows.reverse();
        let got: Vec<(Change, &str)> = changes(&rows).into_iter().map(|(c, r)| (c, r.git_ref.as_str())).collect();
        assert_eq!(
            got,
            [
                (Change::Broke, "refs/heads/dev"),
                (Change::Recovered, "refs/heads/main"),
                (Change::Broke, "refs/heads/main"),
            ]
        );
    }
}
