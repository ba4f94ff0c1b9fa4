//! A page per job name and branch (`runs/<branch>/<name>.html`): its last
//! runs with a bar for each one's duration, its pass rate, its median
//! duration, and a **flaky** mark on a run that failed where a later run on
//! the same tree passed. Results are keyed by tree, so "the same code
//! failed, then passed" is a fact here, not a guess from commit messages.

use std::collections::{BTreeMap, HashSet};

use git_ci_core::model::Status;
use git_ci_core::state::State;
use serde::Serialize;

use super::{Build, paths, value, view};
use crate::error::SiteError;
use crate::model::Row;
use crate::output::Output;

/// Runs a page lists, newest first.
const RUNS_SHOWN: usize = 50;

#[derive(Serialize)]
struct RunRow<'a> {
    job: view::JobItem<'a>,
    /// Milliseconds, for the bar (`None`: it has not finished, or never ran).
    ms: Option<u64>,
    /// It failed on a tree where a later run passed.
    flaky: bool,
}

#[derive(Serialize)]
struct RunsPage<'a> {
    name: &'a str,
    branch: &'a str,
    branch_href: String,
    runs: Vec<RunRow<'a>>,
    /// Longest duration shown: the bars' full length.
    max_ms: u64,
    /// `12 of 14 passed (86%)` over the finished runs shown.
    pass_rate: String,
    median: Option<String>,
    flaky: usize,
}

/// The runs of each job name on `rows` (a branch's, newest first), for
/// the pages: named jobs of the project only (not ad-hoc ones).
fn by_name<'a>(rows: &[&'a Row]) -> BTreeMap<&'a str, Vec<&'a Row>> {
    let mut out: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in rows.iter().filter(|r| !r.name.is_empty() && !r.ad_hoc) {
        let runs = out.entry(row.name.as_str()).or_default();
        if runs.len() < RUNS_SHOWN {
            runs.push(row);
        }
    }
    out
}

pub fn render_runs(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    for branch in &b.groups.branches {
        for (name, runs) in by_name(&b.groups.by_branch[branch]) {
            let mut key = b.key("runs");
            key.str(branch).str(name);
            for row in &runs {
                b.key_row(&mut key, row);
            }
            let path = paths::runs(branch, name);
            out.unit(&format!("runs/{branch}/{name}"), key.finish(), |files| {
                let title = format!("{name} on {branch}");
                let html =
                    b.page("runs.html", "../../", &title, "branches", value(runs_page(b, branch, name, &runs)))?;
                files.write(&path, &html)
            })?;
        }
    }
    Ok(())
}

fn runs_page<'a>(b: &'a Build<'a>, branch: &'a str, name: &'a str, runs: &[&'a Row]) -> RunsPage<'a> {
    let flaky = flaky_runs(runs);
    let ms = |r: &Row| r.duration_ms.filter(|_| !r.is_live() && r.state != State::Finished(Status::Skipped));
    let rows: Vec<RunRow> =
        runs.iter().map(|r| RunRow { job: b.item(r), ms: ms(r), flaky: flaky.contains(r.id.as_str()) }).collect();
    let judged: Vec<&&Row> = runs.iter().filter(|r| judged(r)).collect();
    let passed = judged.iter().filter(|r| r.state == State::Finished(Status::Passed)).count();
    let pass_rate = match judged.len() {
        0 => "no finished run yet".to_owned(),
        n => format!("{passed} of {n} passed ({}%)", passed * 100 / n),
    };
    let mut passed_ms: Vec<u64> =
        runs.iter().filter(|r| r.state == State::Finished(Status::Passed)).filter_map(|r| r.duration_ms).collect();
    passed_ms.sort_unstable();
    RunsPage {
        name,
        branch,
        branch_href: paths::branch(branch),
        max_ms: rows.iter().filter_map(|r| r.ms).max().unwrap_or(0).max(1),
        runs: rows,
        pass_rate,
        median: passed_ms.get(passed_ms.len() / 2).map(|ms| view::duration(*ms)),
        flaky: flaky.len(),
    }
}

/// A run that says something of the code: it passed or it failed (not one
/// that waits, runs, was skipped or cancelled).
fn judged(r: &Row) -> bool {
    matches!(r.state, State::Finished(Status::Passed | Status::Failed | Status::Timeout | Status::Error))
}

/// The failed runs (newest first in `runs`) followed by a pass of the same
/// label on the same tree: the code did not change, the outcome did.
fn flaky_runs<'a>(runs: &[&'a Row]) -> HashSet<&'a str> {
    let mut passed_later: HashSet<(&str, &str)> = HashSet::new();
    let mut flaky = HashSet::new();
    for r in runs.iter().filter(|r| !r.tree.is_empty()) {
        let work = (r.tree.as_str(), r.label.as_str());
        match r.state {
            State::Finished(Status::Passed) => {
                passed_later.insert(work);
            }
            State::Finished(Status::Failed | Status::Timeout) if passed_later.contains(&work) => {
                flaky.insert(r.id.as_str());
            }
            _ => {}
        }
    }
    flaky
}

#[cfg(test)]
mod tests {
    use git_ci_core::model::Status;
    use git_ci_core::state::State;

    use super::flaky_runs;
    use crate::model::row::sample;

    #[test]
    fn a_failure_is_flaky_when_a_later_run_on_its_tree_passed() {
        let run = |tree: &str, status| {
            let mut r = sample("test", "refs/heads/main", State::Finished(status));
            r.tree = tree.repeat(40);
            r
        };
        // Newest first: a pass on tree a, the failure before it on a; a
        // failure on b that no later run passed; a pass before it on b.
        let rows =
            [run("a", Status::Passed), run("a", Status::Failed), run("b", Status::Failed), run("b", Status::Passed)];
        let runs: Vec<_> = rows.iter().collect();
        let flaky = flaky_runs(&runs);
        assert!(flaky.contains(rows[1].id.as_str()));
        assert!(!flaky.contains(rows[2].id.as_str()), "a failure no later run on its tree passed is not marked");
        assert_eq!(flaky.len(), 1);
    }
}
