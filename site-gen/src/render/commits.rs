//! A page per commit: every job that ran on it, on any ref.

use std::collections::BTreeMap;

use serde::Serialize;

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
    jobs: Vec<view::JobItem<'a>>,
}

#[derive(Serialize)]
struct RefLink<'a> {
    name: &'a str,
    href: String,
}

pub fn render_commits(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    for (sha, rows) in &b.groups.by_commit {
        let mut key = b.key("commit");
        key.str(sha);
        for row in rows {
            b.key_row(&mut key, row);
        }
        out.unit(&format!("commit/{sha}"), key.finish(), |files| {
            files.write(&paths::commit(sha), &commit_page(b, sha, rows)?)
        })?;
    }
    Ok(())
}

fn commit_page(b: &Build, sha: &str, rows: &[&Row]) -> Result<Vec<u8>, SiteError> {
    let refs: BTreeMap<&str, ()> = rows.iter().filter(|r| !r.git_ref.is_empty()).map(|r| (r.branch(), ())).collect();
    let mut jobs: Vec<&Row> = rows.to_vec();
    // By job name, and newest attempt first within a name.
    jobs.sort_by(|a, b| a.name.cmp(&b.name).then(b.id.cmp(&a.id)));
    let page = CommitPage {
        sha,
        short: &sha[..10],
        info: b.data.commit(sha),
        refs: refs.keys().map(|name| RefLink { name, href: paths::branch(name) }).collect(),
        jobs: jobs.into_iter().map(|r| b.item(r)).collect(),
    };
    let title = match page.info {
        Some(c) => format!("{} {}", page.short, c.subject),
        None => format!("commit {}", page.short),
    };
    b.page("commit.html", "../", &title, "jobs", value(&page))
}
