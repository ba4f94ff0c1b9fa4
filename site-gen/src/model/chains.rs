//! What a `done` chain gained and lost between the tip rendered last time
//! and its tip now: a diff of two trees that skips every day whose subtree
//! did not change, so one new result costs two small tree reads.

use std::collections::BTreeMap;

use git_ci_core::JobId;
use gix::ObjectId;

use crate::error::SiteError;

#[derive(Debug, Default)]
pub struct ChainDiff {
    /// New or changed job directories.
    pub added: Vec<(JobId, ObjectId)>,
    pub removed: Vec<JobId>,
    /// The old tip could not be read (a rewritten chain): forget every job
    /// this chain had and take `added` as all it has.
    pub reset: bool,
}

pub fn diff(repo: &gix::Repository, old: Option<ObjectId>, new: Option<ObjectId>) -> Result<ChainDiff, SiteError> {
    let mut out = ChainDiff::default();
    let old_days = match old.map(|o| days(repo, o)) {
        Some(Ok(d)) => d,
        Some(Err(_)) => {
            out.reset = true;
            BTreeMap::new()
        }
        None => BTreeMap::new(),
    };
    let new_days = match new {
        Some(n) => days(repo, n)?,
        None => BTreeMap::new(),
    };
    for (day, tree) in &new_days {
        let before = old_days.get(day);
        if before == Some(tree) {
            continue;
        }
        let old_jobs = match before {
            Some(t) => entries(repo, *t)?,
            None => BTreeMap::new(),
        };
        let new_jobs = entries(repo, *tree)?;
        for (name, dir) in &new_jobs {
            if old_jobs.get(name) != Some(dir)
                && let Ok(id) = JobId::parse(name)
            {
                out.added.push((id, *dir));
            }
        }
        out.removed.extend(old_jobs.keys().filter(|n| !new_jobs.contains_key(*n)).filter_map(|n| JobId::parse(n).ok()));
    }
    for (day, tree) in &old_days {
        if !new_days.contains_key(day) {
            out.removed.extend(entries(repo, *tree)?.keys().filter_map(|n| JobId::parse(n).ok()));
        }
    }
    Ok(out)
}

/// `results/<day>` subtrees of a chain tip.
fn days(repo: &gix::Repository, tip: ObjectId) -> Result<BTreeMap<String, ObjectId>, SiteError> {
    let what = || format!("the done commit {tip}");
    let commit = repo.find_commit(tip).map_err(|e| SiteError::object(what(), e))?;
    let tree = commit.tree().map_err(|e| SiteError::object(what(), e))?;
    match tree.find_entry("results") {
        Some(e) if e.mode().is_tree() => entries(repo, e.oid().to_owned()),
        _ => Ok(BTreeMap::new()),
    }
}

/// The subtrees of a tree, by name.
fn entries(repo: &gix::Repository, tree: ObjectId) -> Result<BTreeMap<String, ObjectId>, SiteError> {
    let t = repo.find_tree(tree).map_err(|e| SiteError::object(format!("tree {tree}"), e))?;
    let decoded = t.decode().map_err(|e| SiteError::object(format!("tree {tree}"), e))?;
    Ok(decoded
        .entries
        .iter()
        .filter(|e| e.mode.is_tree())
        .map(|e| (e.filename.to_string(), e.oid.to_owned()))
        .collect())
}
