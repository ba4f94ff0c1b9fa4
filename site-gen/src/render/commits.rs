//! A page per commit: the names of its failing tests first, its pipelines (each drawn as a graph of its jobs
//! when any job needs another, see [`super::pipeline`]), the pass rate of
//! repeated jobs, and every job that ran on it, on any ref.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use git_ci_core::model::Status;
use git_ci_core::state::State;
use serde::Serialize;

use super::failing_tests::{FailingTests, failing_tests};
use super::pipeline::{Graph, Pipeline, pipelines};
use super::verdict::{self, Verdict};
use super::{Build, paths, value, view};
use crate::error::SiteError;
use crate::model::{CommitInfo, Row};
use crate::output::Output;

#[derive(Serialize)]
struct CommitPage<'a> {
    sha: &'a str,
    short: &'a str,
    info: Option<&'a CommitInfo>,
    refs: Vec<RefLink<'a>>,
    /// Only pipelines with something to show beyond the table: a graph,
    /// repeated jobs, a schedule.
    pipelines: Vec<PipelineView<'a>>,
    jobs: Vec<view::JobItem<'a>>,
    /// JUnit failures of its jobs, listed first.
    failing: FailingTests<'a>,
    verdict: Verdict<'a>,
    /// The first parent, and its page when the site has one.
    parent: Option<RefLink<'a>>,
}

#[derive(Serialize)]
struct RefLink<'a> {
    name: &'a str,
    href: String,
}

/// The commit's first parent, linked when it has a page here.
fn parent<'a>(b: &'a Build, sha: &str) -> Option<RefLink<'a>> {
    let parent = b.data.commit(sha).map(|c| c.parent.as_str()).filter(|p| !p.is_empty())?;
    let has_page = b.groups.by_commit.contains_key(parent);
    Some(RefLink {
        name: &parent[..parent.len().min(10)],
        href: if has_page { paths::commit(parent) } else { String::new() },
    })
}

#[derive(Serialize)]
struct PipelineView<'a> {
    branch: &'a str,
    branch_href: Option<String>,
    scheduled: Option<&'a str>,
    /// `3 passed, 1 failed, 1 skipped`.
    tally: String,
    graph: Option<Graph<'a>>,
    repeats: Vec<Repeated<'a>>,
}

/// The runs of one repeated job (`submit --repeat N`).
#[derive(Serialize)]
struct Repeated<'a> {
    label: &'a str,
    runs: usize,
    passed: usize,
    /// Whole percent of runs that passed.
    rate: usize,
    /// Failing runs first, then the others, each in run order.
    items: Vec<view::JobItem<'a>>,
}

pub fn render_commits(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    for (sha, rows) in &b.groups.by_commit {
        let mut key = b.key("commit");
        key.str(sha);
        for row in rows {
            b.key_row(&mut key, row);
        }
        verdict::key(b, sha, rows, &mut key);
        let parent = parent(b, sha);
        key.str(parent.as_ref().map_or("", |p| p.href.as_str()));
        out.unit(&format!("commit/{sha}"), key.finish(), |files| {
            files.write(&paths::commit(sha), &commit_page(b, sha, rows)?)
        })?;
    }
    Ok(())
}

fn commit_page(b: &Build, sha: &str, rows: &[&Row]) -> Result<Vec<u8>, SiteError> {
    let refs: BTreeMap<&str, ()> = rows.iter().filter(|r| !r.git_ref.is_empty()).map(|r| (r.branch(), ())).collect();
    let mut jobs: Vec<&Row> = rows.to_vec();
    jobs.sort_by_key(|r| table_order(r));
    let page = CommitPage {
        sha,
        short: &sha[..10],
        info: b.data.commit(sha),
        refs: refs.keys().map(|name| RefLink { name, href: paths::branch(name) }).collect(),
        pipelines: pipelines(rows).iter().map(|p| pipeline_view(b, p)).filter(PipelineView::worth_showing).collect(),
        jobs: jobs.into_iter().map(|r| b.item(r)).collect(),
        failing: failing_tests(b, rows)?,
        verdict: verdict::verdict(b, sha, rows),
        parent: parent(b, sha),
    };
    let title = match page.info {
        Some(c) => format!("{} {}", page.short, c.subject),
        None => format!("commit {}", page.short),
    };
    b.page("commit.html", "../", &title, "jobs", value(&page))
}

/// By job name and label; a repeated job's failing runs first, then its
/// runs in order; other attempts newest first.
fn table_order(r: &Row) -> (&str, &str, u8, u32, Reverse<&str>) {
    let (rank, index) = match r.repeat {
        Some(rep) => (u8::from(r.rank() != 0), rep.index),
        None => (0, 0),
    };
    (&r.name, r.spec_label(), rank, index, Reverse(r.id.as_str()))
}

fn pipeline_view<'a>(b: &'a Build, p: &Pipeline<'a>) -> PipelineView<'a> {
    let branch = p.rows.first().map_or("", |r| r.branch());
    PipelineView {
        branch,
        branch_href: (!p.git_ref.is_empty()).then(|| paths::branch(branch)),
        scheduled: p.scheduled,
        tally: view::tally(&p.rows),
        graph: p.graph(),
        repeats: repeats(b, &p.rows),
    }
}

impl PipelineView<'_> {
    fn worth_showing(&self) -> bool {
        self.graph.is_some() || !self.repeats.is_empty() || self.scheduled.is_some()
    }
}

fn repeats<'a>(b: &'a Build, rows: &[&'a Row]) -> Vec<Repeated<'a>> {
    let mut by_label: Vec<(&str, Vec<&Row>)> = Vec::new();
    for r in rows.iter().filter(|r| r.repeat.is_some()) {
        match by_label.iter_mut().find(|(l, _)| *l == r.spec_label()) {
            Some((_, runs)) => runs.push(r),
            None => by_label.push((r.spec_label(), vec![r])),
        }
    }
    by_label
        .into_iter()
        .map(|(label, mut runs)| {
            runs.sort_by_key(|r| (r.rank() != 0, r.repeat.map_or(0, |rep| rep.index)));
            let passed = runs.iter().filter(|r| r.state == State::Finished(Status::Passed)).count();
            Repeated {
                label,
                runs: runs.len(),
                passed,
                rate: passed * 100 / runs.len(),
                items: runs.into_iter().map(|r| b.item(r)).collect(),
            }
        })
        .collect()
}
