//! What a commit page says first: the commit's verdict, and for each job
//! that is red on it, since which commit of its branch it has been red,
//! found by walking the branch's history back to the last pass (what `git
//! bisect` would narrow down, read off the results the hub already has).

use git_ci_core::model::Status;
use git_ci_core::state::State;
use serde::Serialize;

use super::groups::latest_by_name;
use super::{Build, paths, view};
use crate::badge::Badge;
use crate::digest::Key;
use crate::model::Row;
use crate::model::row::worst;

/// Runs of a job looked at, at most, to find where its failures began.
const WALK: usize = 500;

#[derive(Serialize)]
pub struct Verdict<'a> {
    /// `passing`, `failing`, `running`...
    pub word: &'static str,
    pub red: Vec<Red<'a>>,
}

/// A job that is red on the commit.
#[derive(Serialize)]
pub struct Red<'a> {
    pub job: view::JobItem<'a>,
    /// The job's label without a repeat's run number: it stands for all runs.
    pub label: &'a str,
    /// The oldest commit of the run of failures this one belongs to.
    pub since: Option<Since<'a>>,
}

#[derive(Serialize)]
pub struct Since<'a> {
    pub short: &'a str,
    pub href: String,
    pub subject: &'a str,
    /// The failures began on this very commit.
    pub here: bool,
    /// A passing run came before them (else: failing as far back as known).
    pub passed_before: bool,
}

/// The verdict of a commit from its jobs (`rows`), by job name and branch.
pub fn verdict<'a>(b: &'a Build<'a>, sha: &str, rows: &[&'a Row]) -> Verdict<'a> {
    let latest = latest_by_name(rows.iter().copied());
    let word = Badge::of_branch(latest.values().flatten().copied()).word();
    let mut red = Vec::new();
    for runs in latest.values() {
        let Some(w) = worst(runs.iter().copied()).filter(|r| r.rank() == 0) else { continue };
        red.push(Red { job: b.item(w), label: w.spec_label(), since: since(b, sha, w) });
    }
    Verdict { word, red }
}

/// What the verdict depends on beyond the commit's own rows: where each
/// red job's failures began.
pub fn key(b: &Build, sha: &str, rows: &[&Row], k: &mut Key) {
    for runs in latest_by_name(rows.iter().copied()).values() {
        if let Some(w) = worst(runs.iter().copied()).filter(|r| r.rank() == 0)
            && let Some(s) = since(b, sha, w)
        {
            k.str(s.short).u64(u64::from(s.passed_before));
        }
    }
}

/// Walks `red`'s branch back from `sha`: the oldest commit with a failing
/// run of the same label before a passing one.
fn since<'a>(b: &'a Build<'a>, sha: &str, red: &Row) -> Option<Since<'a>> {
    let history = b.groups.by_branch.get(red.branch())?;
    let start = history.iter().position(|r| r.commit == sha)?;
    let mut oldest: &Row = history[start];
    let mut passed_before = false;
    for r in history[start..].iter().filter(|r| r.label == red.label && !r.is_live()).take(WALK) {
        match r.state {
            State::Finished(Status::Passed) => {
                passed_before = true;
                break;
            }
            State::Finished(Status::Failed | Status::Timeout | Status::Error) => oldest = r,
            _ => {}
        }
    }
    let commit = oldest.commit.as_str();
    Some(Since {
        short: &commit[..commit.len().min(10)],
        href: paths::commit(commit),
        subject: b.data.commit(commit).map_or("", |c| c.subject.as_str()),
        here: commit == sha,
        passed_before,
    })
}
