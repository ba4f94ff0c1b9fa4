//! `index.html`: what runs now and what finished last, newest first, with
//! links to older days: a row per commit and branch with a chip per job
//! ([`super::commit_rows`]). Rebuilt every time: it shows ages.

use git_ci_core::state::State;
use serde::Serialize;

use super::commit_rows::{CommitRow, commit_rows};
use super::history::DayLink;
use super::{Build, value};
use crate::badge::Badge;
use crate::error::SiteError;
use crate::output::Output;

/// Days linked from the bottom of the index.
const DAYS_LINKED: usize = 7;

#[derive(Serialize)]
struct Counts {
    running: usize,
    pending: usize,
    finished: usize,
    failing_branches: usize,
    workers: usize,
}

#[derive(Serialize)]
struct IndexPage<'a> {
    /// What ages are measured from: the hub's latest activity.
    as_of: String,
    counts: Counts,
    /// Commits with a job pending or running.
    live: Vec<CommitRow<'a>>,
    /// The newest commits whose jobs have all finished.
    recent: Vec<CommitRow<'a>>,
    days: Vec<DayLink>,
    /// The project chooser, on a hub of several projects.
    projects: Vec<super::projects::Choice<'a>>,
}

pub fn render_index(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let rows = &b.data.rows;
    let count = |s: State| rows.iter().filter(|r| r.state == s).count();
    let failing = b
        .groups
        .branches
        .iter()
        .filter(|br| Badge::of_branch(b.groups.latest_by_name(br).values().flatten().copied()) == Badge::Failing)
        .count();
    let (live, recent) = commit_rows(b, b.options.recent);
    let page = IndexPage {
        as_of: git_ci_core::time::rfc3339(b.now()),
        counts: Counts {
            running: count(State::Running),
            pending: count(State::Pending),
            finished: rows.iter().filter(|r| !r.is_live()).count(),
            failing_branches: failing,
            workers: b.data.workers.iter().filter(|w| !w.stale).count(),
        },
        live,
        recent,
        days: b.groups.by_day.keys().rev().take(DAYS_LINKED).map(|d| DayLink::new(d)).collect(),
        projects: super::projects::choices(b, &super::projects::projects(b)),
    };
    out.always("index", |files| files.write("index.html", &b.page("index.html", "", "Jobs", "jobs", value(&page))?))
}
