//! The index's rows: one per commit and branch, with a chip per job name,
//! instead of one per job (issue 17, "beyond the peers"). Built in one
//! pass over the rows (a hash map from commit and branch to its row), so
//! the index costs O(jobs) however long the history.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use git_ci_core::state::State;
use serde::Serialize;

use super::{Build, paths, view};
use crate::model::Row;
use crate::model::row::worst;

/// A commit's jobs on one branch, or a job of its own (an ad-hoc run, a
/// job whose document does not parse, one without a commit).
#[derive(Serialize)]
pub struct CommitRow<'a> {
    /// The state of the job that asks most for attention.
    pub state: &'static str,
    pub icon: &'static str,
    pub commit: &'a str,
    pub commit_short: &'a str,
    pub commit_href: Option<String>,
    pub branch: &'a str,
    pub branch_href: Option<String>,
    pub subject: &'a str,
    pub author: &'a str,
    /// `git ci submit --run`: a row of its own, never a commit's pipeline.
    pub ad_hoc: bool,
    /// One per job name, by name: a matrix job's combinations and a
    /// repeated job's runs as one chip, each job's latest attempt.
    pub chips: Vec<view::Cell<'a>>,
    /// The sum of every run's duration (a running one's so far).
    pub total: String,
    /// From the first start to the last end (to now while any runs).
    pub wall: String,
    /// Since the newest job of the row was submitted.
    pub age: String,
    pub live: bool,
}

/// The rows of the index: those with a job pending or running (all of
/// them), then at most `recent` whose jobs have all finished; each list
/// newest first, by its newest job.
pub fn commit_rows<'a>(b: &'a Build<'a>, recent: usize) -> (Vec<CommitRow<'a>>, Vec<CommitRow<'a>>) {
    let groups = group(&b.data.rows);
    let (live, done): (Vec<_>, Vec<_>) = groups.into_iter().partition(|g| g.iter().any(|r| r.is_live()));
    let row = |g: Vec<&'a Row>| commit_row(b, g);
    (live.into_iter().map(row).collect(), done.into_iter().take(recent).map(row).collect())
}

/// The rows (newest first) by commit and branch, in the order of each
/// group's newest job. Ad-hoc, malformed and commit-less jobs stand alone.
fn group(rows: &[Row]) -> Vec<Vec<&Row>> {
    let mut at: HashMap<(&str, &str), usize> = HashMap::new();
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for row in rows {
        let alone = row.ad_hoc || row.malformed || row.commit.is_empty() || row.name.is_empty();
        if alone {
            groups.push(vec![row]);
            continue;
        }
        match at.get(&(row.commit.as_str(), row.branch())) {
            Some(&i) => groups[i].push(row),
            None => {
                at.insert((&row.commit, row.branch()), groups.len());
                groups.push(vec![row]);
            }
        }
    }
    groups
}

fn commit_row<'a>(b: &'a Build<'a>, rows: Vec<&'a Row>) -> CommitRow<'a> {
    let first = rows[0];
    let info = b.data.commit(&first.commit);
    let latest = latest_attempts(&rows);
    let worst = worst(latest.iter().copied()).unwrap_or(first);
    let live = rows.iter().any(|r| r.is_live());
    let (total, wall) = times(&rows, b.now());
    let show = |d: Duration| if live { view::so_far(d) } else { view::duration(d.as_millis() as u64) };
    CommitRow {
        state: worst.state.as_str(),
        icon: view::icon(worst.state),
        commit: &first.commit,
        commit_short: &first.commit[..first.commit.len().min(10)],
        commit_href: (!first.commit.is_empty()).then(|| paths::commit(&first.commit)),
        branch: first.branch(),
        branch_href: (!first.git_ref.is_empty()).then(|| paths::branch(first.branch())),
        subject: info.map_or("", |c| c.subject.as_str()),
        author: info.map_or("", |c| c.author.as_str()),
        ad_hoc: first.ad_hoc,
        chips: chips(&latest),
        total: total.map(show).unwrap_or_default(),
        wall: wall.map(show).unwrap_or_default(),
        age: view::age(&first.submitted_at, b.now()),
        live,
    }
}

/// The newest run of each label (rows are newest first): a job run again
/// counts as its latest attempt only.
fn latest_attempts<'a>(rows: &[&'a Row]) -> Vec<&'a Row> {
    let mut seen = HashSet::with_capacity(rows.len());
    rows.iter().copied().filter(|r| seen.insert(r.label.as_str())).collect()
}

/// A chip per job name, as the branch matrix shows a cell per name.
fn chips<'a>(latest: &[&'a Row]) -> Vec<view::Cell<'a>> {
    let mut by_name: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in latest {
        by_name.entry(r.name.as_str()).or_default().push(r);
    }
    by_name.values().filter_map(|runs| view::Cell::new(runs)).collect()
}

/// The sum of every run's duration (a running job's time so far), and
/// the wall time from the first start to the last end, or to `now` while
/// a job runs. `None` where nothing has started.
fn times(rows: &[&Row], now: SystemTime) -> (Option<Duration>, Option<Duration>) {
    let parse = git_ci_core::time::parse_rfc3339;
    let mut sum: Option<Duration> = None;
    for r in rows {
        let took = match r.state {
            State::Running => parse(&r.started_at).map(|t| now.duration_since(t).unwrap_or_default()),
            _ => r.duration_ms.map(Duration::from_millis),
        };
        if let Some(t) = took {
            sum = Some(sum.unwrap_or_default() + t);
        }
    }
    // Stamps of git-ci's one shape sort as their times: two parses a row.
    let first = rows.iter().map(|r| r.started_at.as_str()).filter(|s| !s.is_empty()).min();
    let running = rows.iter().any(|r| r.state == State::Running);
    let last = rows.iter().map(|r| r.finished_at.as_str()).filter(|s| !s.is_empty()).max();
    let end = if running { Some(now) } else { last.and_then(parse) };
    let wall = first.and_then(parse).zip(end).map(|(from, to)| to.duration_since(from).unwrap_or_default());
    (sum, wall)
}

#[cfg(test)]
mod tests {
    use git_ci_core::model::Status;

    use super::*;
    use crate::model::row::sample;

    fn at(commit: &str, name: &str, label: &str, state: State) -> Row {
        let mut r = sample(name, "refs/heads/main", state);
        r.commit = commit.repeat(40);
        r.label = label.into();
        r
    }

    #[test]
    fn jobs_group_by_commit_and_branch_and_ad_hoc_ones_stand_alone() {
        let passed = State::Finished(Status::Passed);
        let mut adhoc = at("a", "adhoc", "adhoc", passed);
        adhoc.ad_hoc = true;
        let mut other_branch = at("a", "test", "test", passed);
        other_branch.git_ref = "refs/heads/dev".into();
        let rows = [at("b", "test", "test", passed), at("a", "test", "test", passed), adhoc, other_branch];
        let rows: Vec<Row> = rows.into_iter().chain([at("b", "build", "build", passed)]).collect();
        let groups = group(&rows);
        let sizes: Vec<(usize, &str)> = groups.iter().map(|g| (g.len(), g[0].name.as_str())).collect();
        assert_eq!(sizes, [(2, "test"), (1, "test"), (1, "adhoc"), (1, "test")], "in the order of newest jobs");
    }

    #[test]
    fn a_chip_is_a_name_at_its_latest_attempts_with_every_combination() {
        let (passed, failed) = (State::Finished(Status::Passed), State::Finished(Status::Failed));
        // Newest first: py=3.12 failed, then passed when run again.
        let rows = [
            at("a", "test", "test (py=3.12)", passed),
            at("a", "test", "test (py=3.11)", passed),
            at("a", "test", "test (py=3.12)", failed),
            at("a", "build", "build", failed),
        ];
        let refs: Vec<&Row> = rows.iter().collect();
        let latest = latest_attempts(&refs);
        assert_eq!(latest.len(), 3, "the old py=3.12 attempt is left out");
        let chips = chips(&latest);
        let seen: Vec<(&str, &str, &str)> = chips.iter().map(|c| (c.name, c.state, c.tally.as_str())).collect();
        assert_eq!(seen, [("build", "failed", ""), ("test", "passed", "2 passed")]);
    }

    #[test]
    fn total_time_sums_runs_and_wall_time_spans_first_start_to_last_end() {
        let passed = State::Finished(Status::Passed);
        let mut a = at("a", "build", "build", passed);
        (a.started_at, a.finished_at, a.duration_ms) =
            ("2026-11-22T04:00:00.000Z".into(), "2026-11-22T04:01:00.000Z".into(), Some(60_000));
        let mut b = at("a", "test", "test", passed);
        (b.started_at, b.finished_at, b.duration_ms) =
            ("2026-11-22T04:00:30.000Z".into(), "2026-11-22T04:02:30.000Z".into(), Some(120_000));
        let now = git_ci_core::time::parse_rfc3339("2026-11-22T05:00:00.000Z").unwrap();
        let (sum, wall) = times(&[&a, &b], now);
        assert_eq!((sum, wall), (Some(Duration::from_secs(180)), Some(Duration::from_secs(150))));
        b.state = State::Running;
        let (sum, wall) = times(&[&a, &b], now);
        assert_eq!(wall, Some(Duration::from_secs(3600)), "to now while a job runs");
        assert_eq!(sum, Some(Duration::from_secs(60 + 3570)));
    }
}
