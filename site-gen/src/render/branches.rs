//! Branches: the branch × job matrix of latest states (`branches.html`), a
//! page and an API file per branch (its recent commits × jobs), and badges.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;

use super::{Build, api, paths, value, view};
use crate::badge::{Badge, BadgeContext};
use crate::error::SiteError;
use crate::model::Row;
use crate::output::Output;

/// Commits a branch page lists; older ones are in the day pages.
const COMMITS_PER_BRANCH: usize = 30;

#[derive(Serialize)]
struct MatrixRow<'a> {
    name: &'a str,
    href: String,
    badge: String,
    state: &'static str,
    cells: Vec<Option<view::JobItem<'a>>>,
}

pub fn render_matrix(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let latest: Vec<(&str, BTreeMap<&str, &Row>)> =
        b.groups.branches.iter().map(|br| (*br, b.groups.latest_by_name(br))).collect();
    let names: BTreeSet<&str> = latest.iter().flat_map(|(_, l)| l.keys().copied()).collect();
    let rows: Vec<MatrixRow> = latest
        .iter()
        .map(|(branch, l)| MatrixRow {
            name: branch,
            href: paths::branch(branch),
            badge: paths::badge(branch),
            state: Badge::of_branch(l.values().copied()).word(),
            cells: names.iter().map(|n| l.get(n).map(|r| b.item(r))).collect(),
        })
        .collect();
    let page = value(json!({ "names": names, "branches": value_of(&rows) }));
    out.always("branches", |files| {
        files.write("branches.html", &b.page("branches.html", "", "Branches", "branches", page)?)
    })
}

fn value_of<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("plain data")
}

#[derive(Serialize)]
struct Latest<'a> {
    job: view::JobItem<'a>,
    badge: String,
}

#[derive(Serialize)]
struct CommitRow<'a> {
    href: Option<String>,
    short: &'a str,
    subject: &'a str,
    cells: Vec<Option<view::JobItem<'a>>>,
}

#[derive(Serialize)]
struct BranchPage<'a> {
    name: &'a str,
    git_ref: &'a str,
    badge: String,
    badge_state: &'static str,
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
    let latest = b.groups.latest_by_name(branch);
    let names: Vec<&str> = latest.keys().copied().collect();
    // Commits in order of their newest job; for each, the newest job per name.
    let mut commits: Vec<(&str, BTreeMap<&str, &Row>)> = Vec::new();
    for row in rows {
        match commits.iter_mut().find(|(c, _)| *c == row.commit) {
            Some((_, jobs)) => {
                jobs.entry(row.name.as_str()).or_insert(row);
            }
            None => commits.push((&row.commit, BTreeMap::from([(row.name.as_str(), *row)]))),
        }
        if commits.len() > COMMITS_PER_BRANCH {
            break;
        }
    }
    let more = commits.len() > COMMITS_PER_BRANCH;
    commits.truncate(COMMITS_PER_BRANCH);
    let badge = Badge::of_branch(latest.values().copied());
    let page = BranchPage {
        name: branch,
        git_ref: &rows[0].git_ref,
        badge: paths::badge(branch),
        badge_state: badge.word(),
        api: paths::branch_api(branch),
        latest: latest.values().map(|r| Latest { job: b.item(r), badge: paths::job_badge(branch, &r.name) }).collect(),
        names: names.clone(),
        commits: commits
            .iter()
            .map(|(sha, jobs)| CommitRow {
                href: (!sha.is_empty()).then(|| paths::commit(sha)),
                short: &sha[..sha.len().min(10)],
                subject: b.data.commit(sha).map_or("", |c| c.subject.as_str()),
                cells: names.iter().map(|n| jobs.get(n).map(|r| b.item(r))).collect(),
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
        "html": paths::branch(branch),
        "badge": paths::badge(branch),
        "latest": latest.iter().map(|(n, r)| (n.to_string(), api::summary(b, r))).collect::<serde_json::Map<_, _>>(),
        "commits": commits.iter().map(|(sha, jobs)| json!({
            "commit": sha,
            "subject": b.data.commit(sha).map(|c| c.subject.as_str()),
            "jobs": jobs.iter().map(|(n, r)| (n.to_string(), api::summary(b, r))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
    });
    Ok((html, api::to_bytes(&json)))
}

pub fn render_badges(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    for branch in &b.groups.branches {
        let latest = b.groups.latest_by_name(branch);
        let overall = Badge::of_branch(latest.values().copied());
        let mut key = b.key("badge");
        key.str(branch).str(overall.word());
        for (name, row) in &latest {
            key.str(name).str(Badge::of_job(row).word());
        }
        out.unit(&format!("badge/{branch}"), key.finish(), |files| {
            let title = format!("ci on {branch}: {}", overall.word());
            files.write(&paths::badge(branch), &badge_svg(b, BadgeContext::new("ci", overall, title))?)?;
            for (name, row) in &latest {
                let state = Badge::of_job(row);
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
