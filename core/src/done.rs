//! `refs/ci/done/<writer>`: each writer's chain of finished jobs.
//!
//! The tip's tree holds every job the writer finished, under
//! `results/<YYYYMMDD>/<job-id>/` (`job.json`, `result.json`, `log`,
//! `junit/*.xml`, `artifacts/**`), plus the tree-cache index
//! `cache/<key[..2]>/<key>` naming the job that passed with that definition
//! key (fanned out so that appending never rewrites one huge tree).
//! Finished jobs are never a ref each: every push pays for every ref.

use std::path::PathBuf;

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use crate::hub::{Hub, HubError};
use crate::id::JobId;
use crate::model::{Job, JobResult};

pub use crate::identity::signature;

/// Bytes to store, in memory or in a file (logs can be large).
#[derive(Debug)]
pub enum Content {
    Bytes(Vec<u8>),
    File(PathBuf),
}

/// One finished job, ready to be appended to a chain.
#[derive(Debug)]
pub struct Entry {
    pub id: JobId,
    /// The queued document as it was read (it may be malformed: a poisoned
    /// job is kept as evidence).
    pub job_json: Vec<u8>,
    pub result: JobResult,
    pub log: Content,
    /// Extra files under the job's directory: `junit/0.xml`, `artifacts/a/b`.
    pub files: Vec<(String, Content)>,
    /// Set for a pass that `git ci run` may reuse.
    pub cache_key: Option<String>,
}

pub fn job_dir(id: &JobId) -> String {
    format!("results/{}/{id}", id.day())
}

fn cache_path(key: &str) -> String {
    format!("cache/{}/{key}", &key[..2.min(key.len())])
}

/// Where an archive keeps a cache entry: fanned out twice, because a roll
/// adds a thousand keys spread over every bucket, and a bucket rewritten
/// is a bucket sent; at two levels a roll rewrites a few MB at most,
/// however many passes the archive holds.
pub(crate) fn archived_cache_path(key: &str) -> String {
    let (first, second) = (&key[..2.min(key.len())], &key[2.min(key.len())..4.min(key.len())]);
    format!("cache/{first}/{second}/{key}")
}

/// Writes the entries' objects and a commit on top of `tip`; returns it.
/// Moving the ref is the caller's transaction.
pub fn append(hub: &dyn Hub, tip: Option<ObjectId>, entries: &[Entry]) -> Result<ObjectId, HubError> {
    append_refs(hub, tip, &entries.iter().collect::<Vec<_>>(), &[])
}

/// A blob to put at `path` of the tree besides the results (the hooks'
/// `triggers/` index), named in the commit message as `note`.
pub struct Extra {
    pub path: String,
    pub bytes: Vec<u8>,
    pub note: String,
}

/// [`append`] that also writes `extras`, in the same one commit.
pub fn append_with(
    hub: &dyn Hub,
    tip: Option<ObjectId>,
    entries: &[Entry],
    extras: &[Extra],
) -> Result<ObjectId, HubError> {
    append_refs(hub, tip, &entries.iter().collect::<Vec<_>>(), extras)
}

pub(crate) fn append_refs(
    hub: &dyn Hub,
    tip: Option<ObjectId>,
    entries: &[&Entry],
    extras: &[Extra],
) -> Result<ObjectId, HubError> {
    let base_tree = match tip {
        Some(tip) => tree_id(hub, tip)?,
        None => ObjectId::empty_tree(hub.repo().object_hash()),
    };
    append_onto(hub, tip, base_tree, entries, extras)
}

/// The tree of the commit `commit`.
pub(crate) fn tree_id(hub: &dyn Hub, commit: ObjectId) -> Result<ObjectId, HubError> {
    let err = |e: gix::Error| hub.local_error(format!("could not read the done commit {commit}"), e);
    Ok(hub.repo().find_commit(commit).map_err(err)?.tree_id().map_err(err)?.detach())
}

/// Writes `entries` and `extras` into `base_tree` and commits the result on
/// `parent`: [`append_refs`] when `base_tree` is the parent's own tree.
pub(crate) fn append_onto(
    hub: &dyn Hub,
    parent: Option<ObjectId>,
    base_tree: ObjectId,
    entries: &[&Entry],
    extras: &[Extra],
) -> Result<ObjectId, HubError> {
    let repo = hub.repo();
    let err = |e: gix::Error| hub.local_error("could not write a done commit".into(), e);
    let tree_err = |e: String| hub.local_error("could not write a done tree".into(), e);
    let mut editor = crate::tree_edit::TreeEditor::new(&repo, base_tree).map_err(tree_err)?;
    let mut message = format!("git-ci: {} finished\n\n", entries.len());
    for e in entries {
        let dir = job_dir(&e.id);
        let mut put = |name: &str, content: &Content| -> Result<(), HubError> {
            let id = write(&repo, content).map_err(|m| hub.local_error(format!("could not store {dir}/{name}"), m))?;
            editor.upsert(&format!("{dir}/{name}"), EntryKind::Blob, id).map_err(tree_err)?;
            Ok(())
        };
        put("job.json", &Content::Bytes(e.job_json.clone()))?;
        put("result.json", &Content::Bytes(e.result.to_json()))?;
        put("log", &e.log)?;
        for (name, content) in &e.files {
            put(name, content)?;
        }
        if let Some(key) = &e.cache_key {
            let id = repo.write_blob(e.id.as_str()).map_err(err)?;
            editor.upsert(&cache_path(key), EntryKind::Blob, id.detach()).map_err(tree_err)?;
        }
        message.push_str(&format!("{} {}\n", e.id, e.result.status.as_str()));
    }
    for x in extras {
        let id = repo.write_blob(&x.bytes).map_err(err)?;
        editor.upsert(&x.path, EntryKind::Blob, id.detach()).map_err(tree_err)?;
        message.push_str(&format!("{}\n", x.note));
    }
    let tree = editor.write().map_err(tree_err)?;
    commit(&repo, message, tree, parent).map_err(err)
}

/// A commit by git-ci (see [`signature`]) of `tree` on `parent` (a root
/// commit without one).
pub fn commit(
    repo: &gix::Repository,
    message: String,
    tree: ObjectId,
    parent: Option<ObjectId>,
) -> Result<ObjectId, gix::Error> {
    let sig = signature();
    let mut time = Default::default();
    let sig = sig.to_ref(&mut time);
    Ok(repo.new_commit_as(sig, sig, message, tree, parent)?.id)
}

fn write(repo: &gix::Repository, content: &Content) -> Result<ObjectId, String> {
    match content {
        Content::Bytes(b) => repo.write_blob(b).map(|id| id.detach()).map_err(|e| e.to_string()),
        Content::File(p) => {
            let f = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
            repo.write_blob_stream(std::io::BufReader::new(f)).map(|id| id.detach()).map_err(|e| e.to_string())
        }
    }
}

/// Where a finished job lives: which chain, and its directory's tree.
#[derive(Clone, Debug)]
pub struct Located {
    pub writer: String,
    pub dir: ObjectId,
}

/// Every chain tip (done and archive) known to [`Hub::repo`], as `(writer, commit)`.
pub fn tips(hub: &dyn Hub) -> Result<Vec<(String, ObjectId)>, HubError> {
    let mut out = Vec::new();
    for prefix in [crate::refs::DONE, crate::refs::ARCHIVE] {
        for (name, id) in hub.list(prefix)? {
            out.push((name[prefix.len()..].to_owned(), id));
        }
    }
    Ok(out)
}

fn tree_of(repo: &gix::Repository, commit: ObjectId) -> Option<gix::Tree<'_>> {
    repo.find_commit(commit).ok()?.tree().ok()
}

/// Finds `id` in any of `tips`: one tree lookup per chain. A chain whose
/// commit or trees this repository cannot read is an error, not a chain
/// without the job: "no such job" would send the user looking elsewhere.
pub fn find(hub: &dyn Hub, tips: &[(String, ObjectId)], id: &JobId) -> Result<Option<Located>, HubError> {
    let repo = hub.repo();
    let path = job_dir(id);
    for (writer, tip) in tips {
        let err = |e: &dyn std::fmt::Display| {
            hub.local_error(format!("could not look for job {id} in the chain {writer} (commit {tip})"), e)
        };
        let tree = repo.find_commit(*tip).map_err(|e| err(&e))?.tree().map_err(|e| err(&e))?;
        if let Some(entry) = tree.lookup_entry_by_path(&path).map_err(|e| err(&e))? {
            return Ok(Some(Located { writer: writer.clone(), dir: entry.object_id() }));
        }
    }
    Ok(None)
}

/// A file of a finished job's directory: `None` when the directory holds
/// no such file, an error when it names an object that cannot be read.
pub fn read(hub: &dyn Hub, dir: ObjectId, name: &str) -> Result<Option<Vec<u8>>, HubError> {
    let repo = hub.repo();
    let err = |e: &dyn std::fmt::Display| {
        hub.local_error(format!("could not read {name} of a finished job (directory tree {dir})"), e)
    };
    let tree = repo.find_tree(dir).map_err(|e| err(&e))?;
    let Some(entry) = tree.lookup_entry_by_path(name).map_err(|e| err(&e))? else {
        return Ok(None);
    };
    let object = entry.object().map_err(|e| err(&e))?;
    Ok(Some(object.detach().data))
}

/// The job document of a finished job; `None` when it is absent or is not
/// the job `id` (a `done` tree a guard never saw may hold anything).
pub fn read_job(hub: &dyn Hub, dir: ObjectId, id: &JobId) -> Result<Option<Job>, HubError> {
    Ok(read(hub, dir, "job.json")?.and_then(|b| Job::from_json(&b).ok()).filter(|job| &job.id == id))
}

/// The result of a finished job; `None` when it is absent or malformed
/// (shown as `error`), an error when its object cannot be read: a job that
/// passed must never be shown as anything else for want of a blob.
pub fn read_result(hub: &dyn Hub, dir: ObjectId) -> Result<Option<JobResult>, HubError> {
    Ok(read(hub, dir, "result.json")?.and_then(|b| JobResult::from_json(&b).ok()))
}

/// The job that passed with definition `key`, if any chain records one (in
/// a `done` tip's `cache/`, or an archive's).
pub fn cached_pass(hub: &dyn Hub, tips: &[(String, ObjectId)], key: &str) -> Option<JobId> {
    let repo = hub.repo();
    let paths = [cache_path(key), archived_cache_path(key)];
    tips.iter().find_map(|(_, tip)| {
        let tree = tree_of(&repo, *tip)?;
        let entry =
            paths.iter().find_map(|p| tree.lookup_entry_by_path(p).ok().flatten().filter(|e| e.mode().is_blob()))?;
        JobId::parse(std::str::from_utf8(&entry.object().ok()?.data).ok()?).ok()
    })
}

/// How many job directories the chain tip `tip` holds: one read of the
/// `results` tree and one of each day's.
pub fn count(hub: &dyn Hub, tip: ObjectId) -> usize {
    let repo = hub.repo();
    let Some(results) = tree_of(&repo, tip).and_then(|t| t.lookup_entry_by_path("results").ok()?) else {
        return 0;
    };
    let trees_in = |tree: ObjectId| -> Vec<ObjectId> {
        let Ok(t) = repo.find_tree(tree) else { return vec![] };
        t.decode()
            .map(|d| d.entries.iter().filter(|e| e.mode.is_tree()).map(|e| e.oid.to_owned()).collect())
            .unwrap_or_default()
    };
    trees_in(results.object_id()).into_iter().map(|day| trees_in(day).len()).sum()
}

/// Ids of the jobs a chain holds, newest day first, at most `limit`. A
/// tree of the chain that cannot be read is an error: a listing that left
/// its jobs out would look complete.
pub fn list(hub: &dyn Hub, tip: ObjectId, limit: usize) -> Result<Vec<(JobId, ObjectId)>, HubError> {
    let repo = hub.repo();
    let err = |e: &dyn std::fmt::Display| hub.local_error(format!("could not list the jobs of the chain at {tip}"), e);
    let root = repo.find_commit(tip).map_err(|e| err(&e))?.tree().map_err(|e| err(&e))?;
    let Some(results) = root.lookup_entry_by_path("results").map_err(|e| err(&e))?.filter(|e| e.mode().is_tree())
    else {
        return Ok(vec![]);
    };
    // Subtrees only: a stray file among the days or the jobs is no job.
    let entries = |tree: ObjectId| -> Result<Vec<(String, ObjectId)>, HubError> {
        let t = repo.find_tree(tree).map_err(|e| err(&e))?;
        let decoded = t.decode().map_err(|e| err(&e))?;
        let trees = decoded.entries.iter().filter(|e| e.mode.is_tree());
        let mut v: Vec<_> = trees.map(|e| (e.filename.to_string(), e.oid.to_owned())).collect();
        v.sort_by(|a, b| b.0.cmp(&a.0));
        Ok(v)
    };
    let mut out = Vec::new();
    for (_, day) in entries(results.object_id())? {
        for (name, dir) in entries(day)? {
            if out.len() >= limit {
                return Ok(out);
            }
            if let Ok(id) = JobId::parse(&name) {
                out.push((id, dir));
            }
        }
    }
    Ok(out)
}
