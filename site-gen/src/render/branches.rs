//! Branches: the branch × job matrix of latest states (`branches.html`), a
//! page and an API file per branch (its recent commits × jobs), and badges.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use serde_json::json;

use super::groups::{Health, latest_by_name};
use super::{Build, api, paths, value, view};
use crate::badge::{Badge, BadgeContext};
use crate::error::SiteError;
use crate::model::Row;
use crate::model::row::worst;
use crate::output::Output;

/// Commits a branch page lists; older ones are in the day pages.
const COMMITS_PER_BRANCH: usize = 30;

#[derive(Serialize)]
struct MatrixRow<'a> {
    name: &'a str,
    href: String,
    badge: String,
    state: &'static str,
    /// Some job of the branch has a newer run in flight than its state.
    rerunning: bool,
    cells: Vec<Option<view::Cell<'a>>>,
    /// The URLs of the branch's live instances, on workers still there.
    live: Vec<&'a str>,
}

pub fn render_matrix(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let page = matrix(b, &b.groups.branches);
    out.always("branches", |files| {
        files.write("branches.html", &b.page("branches.html", "", "Branches", "branches", page)?)
    })
}

/// The branch × job matrix of `branches` (keys of [`super::groups::Groups`]):
/// the page value `{names, branches}`.
pub(super) fn matrix(b: &Build, branches: &[&str]) -> minijinja::Value {
    let health: Vec<(&str, BTreeMap<&str, Health>)> = branches.iter().map(|br| (*br, b.groups.health(br))).collect();
    let names: BTreeSet<&str> = health.iter().flat_map(|(_, l)| l.keys().copied()).collect();
    let rows: Vec<MatrixRow> = health
        .iter()
        .map(|(branch, l)| MatrixRow {
            name: branch,
            href: paths::branch(branch),
            badge: paths::badge(branch),
            state: Badge::of_branch(l.values().flat_map(|h| h.runs.iter().copied())).word(),
            rerunning: l.values().any(|h| h.rerunning),
            cells: names.iter().map(|n| l.get(n).and_then(cell)).collect(),
            live: live_instances(b, branch),
        })
        .collect();
    value(json!({ "names": names, "branches": value_of(&rows) }))
}

/// Where `branch`'s live instances answer, as the registrations of
/// workers not gone list them.
fn live_instances<'a>(b: &'a Build, branch: &str) -> Vec<&'a str> {
    let docs = b.data.workers.iter().filter(|w| !w.stale).filter_map(|w| w.doc.as_ref());
    docs.flat_map(|d| &d.instances).filter(|i| i.branch() == branch).map(|i| i.url.as_str()).collect()
}

/// A job name's cell: its health, marked when a newer run is in flight.
fn cell<'a>(h: &Health<'a>) -> Option<view::Cell<'a>> {
    let mut cell = view::Cell::new(&h.runs)?;
    cell.rerunning = h.rerunning;
    if h.rerunning {
        cell.title.push_str(" · re-running");
    }
    Some(cell)
}

fn value_of<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("plain data")
}

#[derive(Serialize)]
struct Latest<'a> {
    /// The run that speaks for the name ([`crate::model::row::worst`]).
    job: view::JobItem<'a>,
    /// `3 passed, 1 failed` for a matrix or repeated job, else `""`.
    tally: String,
    badge: String,
    /// A newer run than `job` is in flight.
    rerunning: bool,
    /// The page of the name's runs on the branch.
    runs_href: String,
}

#[derive(Serialize)]
struct CommitRow<'a> {
    href: Option<String>,
    short: &'a str,
    subject: &'a str,
    cells: Vec<Option<view::Cell<'a>>>,
}

#[derive(Serialize)]
struct BranchPage<'a> {
    name: &'a str,
    git_ref: &'a str,
    badge: String,
    badge_state: &'static str,
    rerunning: bool,
    api: String,
    latest: Vec<Latest<'a>>,
    names: Vec<&'a str>,
    commits: Vec<CommitRow<'a>>,
    more: bool,
}

pub fn render_branch_pages(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    for branch in &b.groups.branches {
        let rows = &b.groups.by_branch[branch];
        let mut key = b.key("branch");
        key.str(branch);
        for row in rows {
            b.key_row(&mut key, row);
        }
        out.unit(&format!("branch/{branch}"), key.finish(), |files| {
            let (html, json) = branch_page(b, branch, rows)?;
            files.write(&paths::branch(branch), &html)?;
            files.write(&paths::branch_api(branch), &json)
        })?;
    }
    Ok(())
}

fn branch_page(b: &Build, branch: &str, rows: &[&Row]) -> Result<(Vec<u8>, Vec<u8>), SiteError> {
    let health = b.groups.health(branch);
    let latest: BTreeMap<&str, Vec<&Row>> = health.iter().map(|(n, h)| (*n, h.runs.clone())).collect();
    let names: Vec<&str> = latest.keys().copied().collect();
    // Commits in order of their newest job; for each, the newest job per
    // label, gathered by name.
    let mut order: Vec<&str> = Vec::new();
    let mut by_commit: HashMap<&str, Vec<&Row>> = HashMap::new();
    let mut more = false;
    for row in rows {
        if !by_commit.contains_key(row.commit.as_str()) {
            if order.len() == COMMITS_PER_BRANCH {
                more = true;
                break;
            }
            order.push(&row.commit);
        }
        by_commit.entry(&row.commit).or_default().push(row);
    }
    let commits: Vec<(&str, BTreeMap<&str, Vec<&Row>>)> =
        order.iter().map(|c| (*c, latest_by_name(by_commit[c].iter().copied()))).collect();
    let badge = Badge::of_branch(latest.values().flatten().copied());
    let page = BranchPage {
        name: branch,
        git_ref: &rows[0].git_ref,
        badge: paths::badge(branch),
        badge_state: badge.word(),
        rerunning: health.values().any(|h| h.rerunning),
        api: paths::branch_api(branch),
        latest: health
            .iter()
            .filter_map(|(name, h)| {
                let worst = worst(h.runs.iter().copied())?;
                let tally = if h.runs.len() > 1 { view::tally(&h.runs) } else { String::new() };
                let badge = paths::job_badge(branch, name);
                let runs_href = paths::runs(branch, name);
                Some(Latest { job: b.item(worst), tally, badge, rerunning: h.rerunning, runs_href })
            })
            .collect(),
        names: names.clone(),
        commits: commits
            .iter()
            .map(|(sha, jobs)| CommitRow {
                href: (!sha.is_empty()).then(|| paths::commit(sha)),
                short: &sha[..sha.len().min(10)],
                subject: b.data.commit(sha).map_or("", |c| c.subject.as_str()),
                cells: names.iter().map(|n| jobs.get(n).and_then(|runs| view::Cell::new(runs))).collect(),
            })
            .collect(),
        more,
    };
    let html = b.page("branch.html", "../", &format!("branch {branch}"), "branches", value(&page))?;
    let json = json!({
        "version": 1,
        "branch": branch,
        "ref": page.git_ref,
        "state": badge.word(),
        "rerunning": page.rerunning,
        "html": paths::branch(branch),
        "badge": paths::badge(branch),
        "latest": api::by_name(b, &latest),
        "commits": commits.iter().map(|(sha, jobs)| json!({
            "commit": sha,
            "subject": b.data.commit(sha).map(|c| c.subject.as_str()),
            "jobs": api::by_name(b, jobs),
        })).collect::<Vec<_>>(),
    });
    Ok((html, api::to_bytes(&json)))
}

pub fn render_badges(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    for branch in &b.groups.branches {
        let latest = b.groups.latest_by_name(branch);
        let overall = Badge::of_branch(latest.values().flatten().copied());
        let mut key = b.key("badge");
        key.str(branch).str(overall.word());
        for (name, runs) in &latest {
            key.str(name).str(Badge::of_runs(runs.iter().copied()).word());
        }
        out.unit(&format!("badge/{branch}"), key.finish(), |files| {
            let title = format!("ci on {branch}: {}", overall.word());
            files.write(&paths::badge(branch), &badge_svg(b, BadgeContext::new("ci", overall, title))?)?;
            for (name, runs) in &latest {
                let state = Badge::of_runs(runs.iter().copied());
                let title = format!("{name} on {branch}: {}", state.word());
                files.write(&paths::job_badge(branch, name), &badge_svg(b, BadgeContext::new(name, state, title))?)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

fn badge_svg(b: &Build, ctx: BadgeContext) -> Result<Vec<u8>, SiteError> {
    Ok(b.renderer.render("badge.svg", value(&ctx))?.into_bytes())
}
