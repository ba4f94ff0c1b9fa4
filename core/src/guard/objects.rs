//! Reading what a push brings: blobs under a size limit, chains that move
//! forward, and the results a `done` tip adds.

use std::collections::{HashSet, VecDeque};

use gix::ObjectId;
use gix::objs::{CommitRef, Kind, TreeRef};

use crate::id::JobId;
use crate::model::JobResult;
use crate::validate::{Limits, Store};

/// How many new commits one push may add to a chain before the guard stops
/// looking for the old tip (a worker adds one per complete).
const MAX_NEW_COMMITS: usize = 10_000;

/// A blob's bytes, refused unread when it is not a blob or over `limit`.
pub(super) fn blob(store: &dyn Store, id: ObjectId, what: &str, limit: u64) -> Result<Vec<u8>, String> {
    let size = expect_kind(store, id, Kind::Blob, what)?;
    if size > limit {
        return Err(format!("{what} is {size} bytes, over the {limit}-byte limit"));
    }
    match store.read(&id)? {
        Some((_, data)) => Ok(data),
        None => Err(format!("object {id} is missing")),
    }
}

/// The object's size when it is of `kind`.
pub(super) fn expect_kind(store: &dyn Store, id: ObjectId, kind: Kind, what: &str) -> Result<u64, String> {
    match store.header(&id)? {
        Some((k, size)) if k == kind => Ok(size),
        Some((k, _)) => Err(format!("{what} must be a {kind}, not a {k}")),
        None => Err(format!("object {id} is missing")),
    }
}

/// A chain moves only forward (unless gc): `new` descends from `old`. Walks
/// back only through the commits this push brought, at most
/// [`MAX_NEW_COMMITS`] of them, so never the chain's history.
pub(super) fn chain(
    store: &dyn Store,
    old: Option<ObjectId>,
    new: ObjectId,
    gc: bool,
    what: &str,
) -> Result<(), String> {
    expect_kind(store, new, Kind::Commit, &format!("a {what} chain tip"))?;
    let Some(old) = old else { return Ok(()) };
    if gc || descends(store, new, old)? {
        return Ok(());
    }
    Err(format!(
        "not a fast-forward: {new} does not descend from {old} (only `git ci gc` may rewrite a {what} chain, with -o ci.gc)"
    ))
}

fn descends(store: &dyn Store, new: ObjectId, old: ObjectId) -> Result<bool, String> {
    let mut seen = HashSet::new();
    let mut todo = VecDeque::from([new]);
    while let Some(c) = todo.pop_front() {
        if c == old {
            return Ok(true);
        }
        // A commit the hub already had is history: not walked.
        if !seen.insert(c) || (c != new && !store.is_new(&c)) || seen.len() > MAX_NEW_COMMITS {
            continue;
        }
        let Some((Kind::Commit, data)) = store.read(&c)? else { continue };
        let commit = CommitRef::from_bytes(&data, c.kind()).map_err(|e| format!("commit {c} does not parse: {e}"))?;
        todo.extend(commit.parents());
    }
    Ok(false)
}

/// The job directories `new` adds or changes against `old`, each checked;
/// returns their job ids.
pub(super) fn new_results(
    store: &dyn Store,
    old: Option<ObjectId>,
    new: ObjectId,
    limits: &Limits,
) -> Result<HashSet<JobId>, String> {
    let mut added = HashSet::new();
    let old_results = match old {
        Some(o) => tree_entry(store, commit_tree(store, o)?, "results")?,
        None => None,
    };
    let Some(new_results) = tree_entry(store, commit_tree(store, new)?, "results")? else { return Ok(added) };
    if Some(new_results) == old_results {
        return Ok(added);
    }
    let old_days = old_results.map(|t| entries(store, t)).transpose()?.unwrap_or_default();
    for (day, day_tree) in entries(store, new_results)? {
        let old_day = old_days.iter().find(|(d, _)| *d == day).map(|(_, t)| *t);
        if old_day == Some(day_tree) {
            continue;
        }
        let old_jobs = old_day.map(|t| entries(store, t)).transpose()?.unwrap_or_default();
        for (name, dir) in entries(store, day_tree)? {
            if old_jobs.iter().any(|(n, t)| *n == name && *t == dir) {
                continue;
            }
            added.insert(job_dir(store, &day, &name, dir, limits).map_err(|e| format!("results/{day}/{name}: {e}"))?);
        }
    }
    Ok(added)
}

fn job_dir(store: &dyn Store, day: &str, name: &str, dir: ObjectId, limits: &Limits) -> Result<JobId, String> {
    let id = JobId::parse(name).map_err(|e| e.to_string())?;
    if id.day() != day {
        return Err(format!("job {id} is filed under the wrong day"));
    }
    let files = entries(store, dir)?;
    let file = |n: &str| files.iter().find(|(f, _)| f == n).map(|(_, o)| *o);
    let result = file("result.json").ok_or("result.json is missing")?;
    let bytes = blob(store, result, "result.json", limits.doc_bytes)?;
    let result = JobResult::from_json(&bytes).map_err(|e| format!("result.json {e}"))?;
    if result.id != id {
        return Err(format!("result.json is for job {}", result.id));
    }
    let log = file("log").ok_or("log is missing")?;
    let size = expect_kind(store, log, Kind::Blob, "log")?;
    if size > limits.log_bytes {
        return Err(format!("log is {size} bytes, over the hub's ci.maxLogBytes ({})", limits.log_bytes));
    }
    if let Some(artifacts) = file("artifacts") {
        let total = tree_size(store, artifacts)?;
        if total > limits.artifact_bytes {
            return Err(format!(
                "artifacts are {total} bytes, over the hub's ci.maxArtifactBytes ({})",
                limits.artifact_bytes
            ));
        }
    }
    Ok(id)
}

/// The bytes of every blob under a tree (a job's artifacts: new objects).
fn tree_size(store: &dyn Store, tree: ObjectId) -> Result<u64, String> {
    let mut total = 0;
    let mut todo = vec![tree];
    while let Some(t) = todo.pop() {
        for (_, id, kind) in tree_entries(store, t)? {
            if kind == Kind::Tree {
                todo.push(id);
            } else {
                total += store.header(&id)?.map_or(0, |(_, s)| s);
            }
        }
    }
    Ok(total)
}

fn commit_tree(store: &dyn Store, commit: ObjectId) -> Result<ObjectId, String> {
    match store.read(&commit)? {
        Some((Kind::Commit, data)) => Ok(CommitRef::from_bytes(&data, commit.kind())
            .map_err(|e| format!("commit {commit} does not parse: {e}"))?
            .tree()),
        _ => Err(format!("{commit} is not a commit")),
    }
}

fn tree_entry(store: &dyn Store, tree: ObjectId, name: &str) -> Result<Option<ObjectId>, String> {
    Ok(entries(store, tree)?.into_iter().find(|(n, _)| n == name).map(|(_, id)| id))
}

fn entries(store: &dyn Store, tree: ObjectId) -> Result<Vec<(String, ObjectId)>, String> {
    Ok(tree_entries(store, tree)?.into_iter().map(|(n, id, _)| (n, id)).collect())
}

pub(super) fn tree_entries(store: &dyn Store, tree: ObjectId) -> Result<Vec<(String, ObjectId, Kind)>, String> {
    let Some((Kind::Tree, data)) = store.read(&tree)? else {
        return Err(format!("{tree} is not a tree"));
    };
    let decoded = TreeRef::from_bytes(&data, tree.kind()).map_err(|e| format!("tree {tree} does not parse: {e}"))?;
    Ok(decoded
        .entries
        .iter()
        .map(|e| {
            let kind = if e.mode.is_tree() { Kind::Tree } else { Kind::Blob };
            (e.filename.to_string(), e.oid.to_owned(), kind)
        })
        .collect())
}
