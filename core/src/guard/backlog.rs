//! The guard's rules for backlog refs (`refs/ci/backlog/<queue>/<batch>`,
//! [`crate::backlog`]): parked jobs leave a backlog only into the queue or
//! into a result, in the push that takes them out.

use std::collections::{BTreeMap, HashSet};

use gix::ObjectId;
use gix::objs::{CommitRef, Kind};

use super::Push;
use super::objects::{blob, expect_kind, tree_entries};
use crate::id::JobId;
use crate::refs;
use crate::validate::{Store, job_blob};

/// Jobs one backlog may hold: more is not a submission git-ci makes.
const MAX_PARKED: usize = 1_000_000;

/// A backlog commit as the guard reads it: its pin and, per bucket, the
/// bucket's tree (to skip buckets a rewrite left alone) and its entries.
struct Backlog {
    pin: ObjectId,
    buckets: BTreeMap<String, ObjectId>,
}

fn read(store: &dyn Store, tip: ObjectId) -> Result<Backlog, String> {
    let Some((Kind::Commit, data)) = store.read(&tip)? else {
        return Err(format!("a backlog must be a commit; {tip} is not one"));
    };
    let commit = CommitRef::from_bytes(&data, tip.kind()).map_err(|e| format!("commit {tip} does not parse: {e}"))?;
    let parents: Vec<ObjectId> = commit.parents().collect();
    let [pin] = parents[..] else {
        return Err(format!("a backlog commit has one parent, its pin commit; {tip} has {}", parents.len()));
    };
    let mut buckets = BTreeMap::new();
    for (name, id, kind) in tree_entries(store, commit.tree())? {
        if kind != Kind::Tree || name.len() != 4 || !name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("a backlog's tree holds only bucket directories (0000, 0001, ...), not {name}"));
        }
        buckets.insert(name, id);
    }
    Ok(Backlog { pin, buckets })
}

/// The entries of one bucket: `path -> (job id, blob)`.
fn bucket(store: &dyn Store, name: &str, tree: ObjectId) -> Result<BTreeMap<String, (JobId, ObjectId)>, String> {
    let mut out = BTreeMap::new();
    for (entry, id, kind) in tree_entries(store, tree)? {
        let path = format!("{name}/{entry}");
        let job = crate::backlog::parse_entry_path(&path)
            .filter(|_| kind == Kind::Blob)
            .ok_or_else(|| format!("a backlog holds jobs at <bucket>/<index>-<job-id>, not {path}"))?;
        out.insert(path, (job, id));
    }
    Ok(out)
}

impl Push<'_> {
    /// A backlog created, rewritten or deleted.
    pub(super) fn backlog(&self, name: &str, old: Option<ObjectId>, new: Option<ObjectId>) -> Result<(), String> {
        let (queue, _) = refs::parse_backlog_ref(name)
            .ok_or("not a git-ci ref: backlog refs are refs/ci/backlog/<queue>/<batch> (a hex digest)")?;
        refs::check_component("queue", &queue)?;
        match (old, new) {
            (None, Some(new)) => self.parked(&queue, new),
            (Some(old), new) => self.unparked(&queue, old, new),
            (None, None) => Ok(()),
        }
    }

    /// A new backlog: sound job documents of its queue that wait for
    /// nothing and that nothing waits for, whose commits its pin keeps.
    fn parked(&self, queue: &str, tip: ObjectId) -> Result<(), String> {
        let backlog = read(self.store, tip)?;
        let pin = self.commit_parents(backlog.pin)?;
        let mut count = 0;
        for (name, tree) in &backlog.buckets {
            for (path, (id, doc)) in bucket(self.store, name, *tree)? {
                count += 1;
                if count > MAX_PARKED {
                    return Err(format!("a backlog holds at most {MAX_PARKED} jobs"));
                }
                let job = job_blob(&blob(self.store, doc, "job", self.limits.doc_bytes)?, queue, &id)
                    .map_err(|e| format!("{path}: {e}"))?;
                if !job.needs.is_empty() || !job.needed_by.is_empty() {
                    return Err(format!("{path}: a job with needs, or that others need, is queued, never parked"));
                }
                let commit = ObjectId::from_hex(job.commit.as_bytes()).map_err(|e| format!("{path}: {e}"))?;
                if !pin.contains(&commit) {
                    return Err(format!(
                        "{path}: its commit {commit} is not a parent of the backlog's pin commit {}, which must keep it",
                        backlog.pin
                    ));
                }
            }
        }
        if count == 0 {
            return Err("a backlog holds at least one job (an empty one is deleted)".into());
        }
        Ok(())
    }

    /// A backlog rewritten to fewer jobs, or deleted: every job it loses
    /// is queued (its queue ref created at the same blob) or published in
    /// this push.
    fn unparked(&self, queue: &str, old: ObjectId, new: Option<ObjectId>) -> Result<(), String> {
        let before = read(self.store, old)?;
        let after = match new {
            Some(new) => read(self.store, new)?,
            None => Backlog { pin: before.pin, buckets: BTreeMap::new() },
        };
        if after.pin != before.pin {
            return Err("a backlog keeps its pin commit: a rewrite only takes jobs out".into());
        }
        for name in after.buckets.keys() {
            if !before.buckets.contains_key(name) {
                return Err(format!("a backlog is never added to (bucket {name} is new): submit new jobs apart"));
            }
        }
        // Every kept entry must have been in the old tree, at the same blob.
        for (name, tree) in &after.buckets {
            if before.buckets.get(name) == Some(tree) {
                continue;
            }
            let was = bucket(self.store, name, before.buckets[name])?;
            for (path, value) in bucket(self.store, name, *tree)? {
                if was.get(&path) != Some(&value) {
                    return Err(format!("a backlog is never added to or rewritten ({path} is new)"));
                }
            }
        }
        let mut removed = 0;
        for (name, tree) in &before.buckets {
            let kept = match after.buckets.get(name) {
                Some(t) if t == tree => continue,
                Some(t) => bucket(self.store, name, *t)?,
                None => BTreeMap::new(),
            };
            for (path, (id, doc)) in bucket(self.store, name, *tree)? {
                if kept.get(&path) == Some(&(id.clone(), doc)) {
                    continue;
                }
                removed += 1;
                self.left_backlog(queue, &id, doc).map_err(|e| format!("{path}: {e}"))?;
            }
        }
        if removed == 0 && new.is_some() {
            return Err("a backlog moves only to fewer jobs".into());
        }
        Ok(())
    }

    /// A job taken out of a backlog: queued in this push at the same
    /// document, or published in it.
    fn left_backlog(&self, queue: &str, id: &JobId, doc: ObjectId) -> Result<(), String> {
        if self.published.contains(id) {
            return Ok(());
        }
        let queue_ref = refs::queue(queue, id);
        if self.all.iter().any(|u| u.name == queue_ref && u.old.is_none() && u.new == Some(doc)) {
            return Ok(());
        }
        Err(format!(
            "job {id} leaves the backlog without being queued at {queue_ref} (at the same job.json) or published in the same push"
        ))
    }

    /// The parents of a pin commit.
    fn commit_parents(&self, pin: ObjectId) -> Result<HashSet<ObjectId>, String> {
        expect_kind(self.store, pin, Kind::Commit, "a backlog's pin")?;
        let Some((_, data)) = self.store.read(&pin)? else { return Err(format!("object {pin} is missing")) };
        let commit =
            CommitRef::from_bytes(&data, pin.kind()).map_err(|e| format!("commit {pin} does not parse: {e}"))?;
        Ok(commit.parents().collect())
    }
}
