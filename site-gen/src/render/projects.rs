//! Projects, on a hub that serves several repositories: the chooser
//! (`projects.html`, and a list on the index), each project's branch × job
//! matrix (`projects/<project>.html`), and branches grouped by name across
//! projects, as runbot shows them: one row per branch name, one column per
//! project. A hub of one project has none of these pages.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::{Build, paths, value};
use crate::badge::Badge;
use crate::error::SiteError;
use crate::output::Output;
use crate::slug::slug;

/// One project: its branch keys (most recently active first).
pub struct Project<'a> {
    pub name: &'a str,
    /// `(branch key, plain branch name)`.
    pub branches: Vec<(&'a str, &'a str)>,
}

/// The projects of the rows, by name; empty when there are fewer than two
/// (branch keys are then plain branch names, see `Row::branch`).
pub fn projects<'a>(b: &Build<'a>) -> Vec<Project<'a>> {
    let mut by_name: BTreeMap<&str, Project> = BTreeMap::new();
    for key in &b.groups.branches {
        let row = b.groups.by_branch[key][0];
        if row.branch_key.is_empty() && !row.project.is_empty() {
            return vec![]; // keys are plain: one project
        }
        let p = by_name.entry(row.project.as_str()).or_insert(Project { name: &row.project, branches: vec![] });
        p.branches.push((*key, row.plain_branch()));
    }
    if by_name.len() < 2 {
        return vec![];
    }
    by_name.into_values().collect()
}

pub fn page_path(project: &str) -> String {
    // `""`: the jobs recorded before projects, the hub's own.
    format!("projects/{}.html", slug(if project.is_empty() { "_hub" } else { project }))
}

/// What the index and the chooser list for a project.
#[derive(Serialize)]
pub struct Choice<'a> {
    name: &'a str,
    href: String,
    /// `failing` when one of its branches fails.
    state: &'static str,
    branches: usize,
}

pub fn choices<'a>(b: &Build<'a>, projects: &[Project<'a>]) -> Vec<Choice<'a>> {
    projects
        .iter()
        .map(|p| Choice {
            name: display(p.name),
            href: page_path(p.name),
            state: overall(p.branches.iter().map(|(key, _)| branch_state(b, key))).word(),
            branches: p.branches.len(),
        })
        .collect()
}

fn branch_state(b: &Build, key: &str) -> Badge {
    Badge::of_branch(b.groups.latest_by_name(key).values().flatten().copied())
}

/// Failing if any is, else passing if any is, else the first state.
fn overall(states: impl Iterator<Item = Badge>) -> Badge {
    let states: Vec<Badge> = states.collect();
    [Badge::Failing, Badge::Passing]
        .into_iter()
        .find(|s| states.contains(s))
        .or(states.first().copied())
        .unwrap_or(Badge::Unknown)
}

#[derive(Serialize)]
struct ByName<'a> {
    name: &'a str,
    /// One per project, in the order of the columns.
    cells: Vec<Option<NameCell>>,
}

#[derive(Serialize)]
struct NameCell {
    href: String,
    badge: String,
    state: &'static str,
}

pub fn render_projects(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let projects = projects(b);
    if projects.is_empty() {
        return Ok(());
    }
    for p in &projects {
        let keys: Vec<&str> = p.branches.iter().map(|(k, _)| *k).collect();
        let matrix = super::branches::matrix(b, &keys);
        let title = format!("Branches of {}", display(p.name));
        let page = value(json!({ "project": display(p.name), "matrix": matrix }));
        out.always(&format!("project/{}", p.name), |files| {
            files.write(&page_path(p.name), &b.page("project.html", "../", &title, "branches", page)?)
        })?;
    }
    let page = value(json!({
        "projects": choices(b, &projects),
        "columns": projects.iter().map(|p| display(p.name)).collect::<Vec<_>>(),
        "by_name": by_name(b, &projects),
    }));
    out.always("projects", |files| {
        files.write("projects.html", &b.page("projects.html", "", "Projects", "branches", page)?)
    })
}

/// The project's name as shown; `""` is the hub's own.
fn display(name: &str) -> &str {
    if name.is_empty() { "(the hub's own)" } else { name }
}

/// Branch names across projects, most recently active first.
fn by_name<'a>(b: &Build<'a>, projects: &[Project<'a>]) -> Vec<ByName<'a>> {
    let mut names: Vec<&str> = Vec::new();
    for key in &b.groups.branches {
        let plain = b.groups.by_branch[key][0].plain_branch();
        if !names.contains(&plain) {
            names.push(plain);
        }
    }
    names
        .into_iter()
        .map(|name| ByName {
            name,
            cells: projects
                .iter()
                .map(|p| {
                    let (key, _) = p.branches.iter().find(|(_, plain)| *plain == name)?;
                    Some(NameCell {
                        href: paths::branch(key),
                        badge: paths::badge(key),
                        state: branch_state(b, key).word(),
                    })
                })
                .collect(),
        })
        .collect()
}
