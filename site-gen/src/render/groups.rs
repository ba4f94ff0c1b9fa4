//! The rows grouped the ways pages list them, computed once per build.
//! Every list keeps the rows' order: newest first.

use std::collections::{BTreeMap, HashMap};

use git_ci_core::JobId;
use git_ci_core::model::Status;
use git_ci_core::state::State;

use crate::model::{Data, Row};

pub struct Groups<'a> {
    pub by_id: HashMap<&'a JobId, &'a Row>,
    pub by_commit: HashMap<&'a str, Vec<&'a Row>>,
    /// By branch key ([`Row::branch`]); rows without a ref are left out.
    pub by_branch: HashMap<&'a str, Vec<&'a Row>>,
    /// Branch keys, most recently active first.
    pub branches: Vec<&'a str>,
    /// By day of submission (`YYYYMMDD`, the job id's prefix).
    pub by_day: BTreeMap<&'a str, Vec<&'a Row>>,
    /// Attempts at the same work: one commit, ref and job label (a matrix
    /// combination, a repeat's run: each is work of its own).
    pub by_work: HashMap<(&'a str, &'a str, &'a str), Vec<&'a Row>>,
}

impl<'a> Groups<'a> {
    pub fn new(data: &'a Data) -> Groups<'a> {
        let mut g = Groups {
            by_id: HashMap::with_capacity(data.rows.len()),
            by_commit: HashMap::new(),
            by_branch: HashMap::new(),
            branches: Vec::new(),
            by_day: BTreeMap::new(),
            by_work: HashMap::new(),
        };
        for row in &data.rows {
            g.by_id.insert(&row.id, row);
            if !row.commit.is_empty() {
                g.by_commit.entry(&row.commit).or_default().push(row);
            }
            if !row.git_ref.is_empty() {
                let list = g.by_branch.entry(row.branch()).or_default();
                if list.is_empty() {
                    g.branches.push(row.branch());
                }
                list.push(row);
            }
            g.by_day.entry(row.id.day()).or_default().push(row);
            g.by_work.entry((&row.commit, &row.git_ref, &row.label)).or_default().push(row);
        }
        g
    }

    /// The attempts at `row`'s work (with `row`), newest first.
    pub fn attempts(&self, row: &'a Row) -> &[&'a Row] {
        self.by_work.get(&(row.commit.as_str(), row.git_ref.as_str(), row.label.as_str())).map_or(&[], Vec::as_slice)
    }

    /// The newest passed run of `row`'s job (its label) on its branch, else
    /// on any branch: what a running job's estimate is taken from.
    pub fn last_passed(&self, row: &Row) -> Option<&'a Row> {
        let passed = |r: &&&'a Row| {
            r.label == row.label && r.state == State::Finished(Status::Passed) && r.duration_ms.is_some()
        };
        let on_branch = self.by_branch.get(row.branch()).and_then(|rows| rows.iter().find(passed));
        on_branch.or_else(|| self.by_id.values().filter(passed).max_by_key(|r| &r.id)).copied()
    }

    /// A branch's health by job name: what each name last *finished* as
    /// (see [`latest_by_name`]), so that a push does not hide a red branch
    /// behind "running" until a newer run has passed. A name that never
    /// finished on the branch shows its runs in flight.
    pub fn latest_by_name(&self, branch: &str) -> BTreeMap<&'a str, Vec<&'a Row>> {
        self.health(branch).into_iter().map(|(name, h)| (name, h.runs)).collect()
    }

    /// [`Groups::latest_by_name`] with, for each name, whether a newer run
    /// is in flight ("failing · re-running").
    pub fn health(&self, branch: &str) -> BTreeMap<&'a str, Health<'a>> {
        let rows = self.by_branch.get(branch).map_or(&[][..], Vec::as_slice);
        let mut settled = latest_by_name(rows.iter().copied().filter(|r| !r.is_live()));
        latest_by_name(rows.iter().copied())
            .into_iter()
            .map(|(name, now)| {
                let in_flight = now.iter().any(|r| r.is_live());
                let health = match settled.remove(name) {
                    Some(runs) => Health { runs, rerunning: in_flight },
                    None => Health { runs: now, rerunning: false },
                };
                (name, health)
            })
            .collect()
    }
}

/// What one job name on a branch says about its health.
pub struct Health<'a> {
    /// Its last finished runs (its runs in flight if none finished).
    pub runs: Vec<&'a Row>,
    /// A newer run than `runs` is pending or running.
    pub rerunning: bool,
}

/// What each job name is now among `rows` (newest first), by name: the
/// latest row of each of its labels at the newest commit that ran it. A
/// matrix job is then all its combinations, and a repeated one all its
/// runs, of one commit. Jobs whose document is unreadable have no name,
/// and ad-hoc ones (`submit --run`) are no job of the project: both are
/// left out.
pub fn latest_by_name<'a>(rows: impl Iterator<Item = &'a Row>) -> BTreeMap<&'a str, Vec<&'a Row>> {
    let mut latest: BTreeMap<&str, (&str, Vec<&Row>)> = BTreeMap::new();
    for row in rows.filter(|r| !r.name.is_empty() && !r.ad_hoc) {
        let (commit, runs) = latest.entry(row.name.as_str()).or_insert((&row.commit, Vec::new()));
        if *commit == row.commit && !runs.iter().any(|r| r.label == row.label) {
            runs.push(row);
        }
    }
    latest.into_iter().map(|(name, (_, runs))| (name, runs)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::row::sample;

    #[test]
    fn a_matrix_job_is_all_its_combinations_at_its_newest_commit() {
        let cell = |variant: &str, commit: &str, state| {
            let mut r = sample("test", "refs/heads/main", state);
            r.commit = commit.repeat(40);
            r.variant = variant.into();
            r.label = format!("test ({variant})");
            r
        };
        let (passed, failed) = (State::Finished(Status::Passed), State::Finished(Status::Failed));
        // Newest first: the retry of py=3.12 passed, its first attempt failed.
        let rows = [cell("py=3.12", "b", passed), cell("py=3.11", "b", passed), cell("py=3.12", "b", failed)];
        let old = [cell("py=3.9", "a", failed)];
        let latest = latest_by_name(rows.iter().chain(&old));
        let labels: Vec<&str> = latest["test"].iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["test (py=3.12)", "test (py=3.11)"], "newest per combination, old commits left out");
        assert_eq!(latest["test"][0].state, passed);
    }
}
