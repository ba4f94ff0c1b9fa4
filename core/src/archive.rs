//! What one chain tip keeps and what it cuts, and the trees that follow:
//! the tip's tree without the cut results, and an archive's tree with them.
//! Both `gc` (cutting by age or count) and [`crate::chain`] (a worker rolling
//! its chain into its archive) plan with it; neither knows the other.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use crate::hub::{Hub, HubError};
use crate::id::JobId;
use crate::refs;
use crate::tree_edit::TreeEditor;

/// What is kept when neither an age nor a count is given.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How many times a chain is read again after its writer moved it first.
pub const MAX_ATTEMPTS: u32 = 10;

/// Which results a chain keeps: those that either rule keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Keep results that finished less than this long ago.
    pub max_age: Option<Duration>,
    /// Keep the newest N results (by job id: submission order) of each chain.
    pub keep: Option<usize>,
}

impl Policy {
    /// With neither rule given, results of the last [`DEFAULT_MAX_AGE`] are kept.
    pub fn new(max_age: Option<Duration>, keep: Option<usize>) -> Policy {
        match (max_age, keep) {
            (None, None) => Policy { max_age: Some(DEFAULT_MAX_AGE), keep: None },
            _ => Policy { max_age, keep },
        }
    }
}

/// One job directory of a `done` tree.
pub(crate) struct Item {
    day: usize,
    name: String,
    dir: ObjectId,
    keep: bool,
}

/// What one chain tip keeps and cuts.
pub(crate) struct Plan {
    pub(crate) tip: ObjectId,
    tree: ObjectId,
    /// `results/<day>` names and trees.
    days: Vec<(String, ObjectId)>,
    /// Every job directory, newest first.
    jobs: Vec<Item>,
    /// How many results (job directories) the plan keeps.
    pub(crate) kept: usize,
}

impl Plan {
    pub(crate) fn read(hub: &dyn Hub, tip: ObjectId, policy: &Policy, now: SystemTime) -> Result<Plan, HubError> {
        let repo = hub.repo();
        let err = |e: gix::Error| hub.local_error(format!("could not read the done commit {tip}"), e);
        let tree = repo.find_commit(tip).map_err(err)?.tree_id().map_err(err)?.detach();
        let results = repo.find_tree(tree).map_err(err)?.lookup_entry_by_path("results").map_err(err)?;
        let days = match results {
            Some(r) if r.mode().is_tree() => subtrees(&repo, r.object_id()).map_err(err)?,
            _ => vec![],
        };
        let mut jobs = Vec::new();
        for (day, (_, day_tree)) in days.iter().enumerate() {
            for (name, dir, is_tree) in entries(&repo, *day_tree).map_err(err)? {
                // Not a job directory: not ours to judge, never cut.
                jobs.push(Item { day, name, dir, keep: !is_tree });
            }
        }
        jobs.sort_by(|a, b| b.name.cmp(&a.name));
        let cutoff = policy.max_age.map(|age| now.checked_sub(age).unwrap_or(SystemTime::UNIX_EPOCH));
        let mut rank = 0;
        for job in jobs.iter_mut().filter(|j| !j.keep) {
            let Ok(id) = JobId::parse(&job.name) else {
                job.keep = true;
                continue;
            };
            let newest = policy.keep.is_some_and(|n| rank < n);
            rank += 1;
            job.keep = newest || cutoff.is_some_and(|c| finished_at(&repo, &id, job.dir) >= c);
        }
        // Results, that is: other entries are kept but not counted.
        let kept = jobs.iter().filter(|j| j.keep && JobId::parse(&j.name).is_ok()).count();
        Ok(Plan { tip, tree, days, jobs, kept })
    }

    /// Whether anything at all is kept, result or not.
    pub(crate) fn keeps_any(&self) -> bool {
        self.jobs.iter().any(|j| j.keep)
    }

    pub(crate) fn cut(&self) -> impl Iterator<Item = &Item> {
        self.jobs.iter().filter(|j| !j.keep)
    }

    /// Cuts what the archive at `archive` already holds, the very same job
    /// directory: the copy an interrupted roll left (see [`crate::chain`]),
    /// so that a result is not kept in both chains.
    pub(crate) fn cut_archived(&mut self, hub: &dyn Hub, archive: ObjectId) -> Result<(), HubError> {
        let repo = hub.repo();
        let err = |e: gix::Error| hub.local_error(format!("could not read the archive commit {archive}"), e);
        let tree = repo.find_commit(archive).map_err(err)?.tree().map_err(err)?;
        for j in self.jobs.iter_mut().filter(|j| j.keep && JobId::parse(&j.name).is_ok()) {
            let path = format!("results/{}/{}", self.days[j.day].0, j.name);
            if tree.lookup_entry_by_path(&path).map_err(err)?.is_some_and(|e| e.object_id() == j.dir) {
                j.keep = false;
                self.kept -= 1;
            }
        }
        Ok(())
    }

    /// The ids of the results cut, newest first.
    pub(crate) fn cut_ids(&self) -> Vec<JobId> {
        self.cut().filter_map(|j| JobId::parse(&j.name).ok()).collect()
    }

    /// Per day: `(kept, cut)` counts.
    fn by_day(&self) -> HashMap<usize, (usize, usize)> {
        let mut out: HashMap<usize, (usize, usize)> = HashMap::new();
        for j in &self.jobs {
            let e = out.entry(j.day).or_default();
            if j.keep { e.0 += 1 } else { e.1 += 1 }
        }
        out
    }

    /// The new root: the tip's tree without the cut results. Editing the
    /// old tree leaves `cache/`, `triggers/` and every kept day or job
    /// directory the very same tree objects.
    pub(crate) fn write_root(
        &self,
        hub: &dyn Hub,
        writer: &str,
        archive: Option<ObjectId>,
    ) -> Result<ObjectId, HubError> {
        let context = || format!("could not write the new root of done/{writer}");
        let tree = self.kept_tree(hub, &[]).map_err(|e| hub.local_error(context(), e))?;
        let cut = self.cut().count();
        let whereto = archive.map_or("pruned".to_owned(), |a| format!("archived in {} at {a}", refs::archive(writer)));
        let message = format!("git-ci gc: kept {} results, {cut} {whereto}\n\nprevious tip: {}\n", self.kept, self.tip);
        crate::done::commit(&hub.repo(), message, tree, None).map_err(|e| hub.local_error(context(), e))
    }

    /// The tip's tree without the cut results, nor the paths in `drop`.
    pub(crate) fn kept_tree(&self, hub: &dyn Hub, drop: &[&str]) -> Result<ObjectId, String> {
        let repo = hub.repo();
        let mut editor = TreeEditor::new(&repo, self.tree)?;
        for path in drop {
            editor.remove(path)?;
        }
        let by_day = self.by_day();
        for (day, (name, _)) in self.days.iter().enumerate() {
            if by_day.get(&day).is_some_and(|&(kept, _)| kept == 0) {
                editor.remove(&format!("results/{name}"))?;
            }
        }
        for j in self.cut().filter(|j| by_day[&j.day].0 > 0) {
            editor.remove(&format!("results/{}/{}", self.days[j.day].0, j.name))?;
        }
        editor.write()
    }

    /// The archive's next commit: its tree merged with the cut results.
    pub(crate) fn write_archive(
        &self,
        hub: &dyn Hub,
        writer: &str,
        tip: Option<ObjectId>,
    ) -> Result<ObjectId, HubError> {
        let message =
            format!("git-ci gc: archived {} results of {} at {}\n", self.cut().count(), refs::done(writer), self.tip);
        self.write_archive_as(hub, writer, tip, message, false)
    }

    /// [`Plan::write_archive`] with the commit message given; with
    /// `with_cache`, the tip's `cache/` index is merged in too.
    pub(crate) fn write_archive_as(
        &self,
        hub: &dyn Hub,
        writer: &str,
        tip: Option<ObjectId>,
        message: String,
        with_cache: bool,
    ) -> Result<ObjectId, HubError> {
        let repo = hub.repo();
        let context = || format!("could not write the archive of {writer}");
        let err = |e: gix::Error| hub.local_error(context(), e);
        let tree_err = |e: String| hub.local_error(context(), e);
        let base = match tip {
            Some(t) => repo.find_commit(t).map_err(err)?.tree_id().map_err(err)?.detach(),
            None => ObjectId::empty_tree(repo.object_hash()),
        };
        let base_tree = repo.find_tree(base).map_err(err)?;
        let mut editor = TreeEditor::new(&repo, base).map_err(tree_err)?;
        let by_day = self.by_day();
        for (day, (name, tree)) in self.days.iter().enumerate() {
            let path = format!("results/{name}");
            let all_cut = by_day.get(&day).is_some_and(|&(kept, cut)| kept == 0 && cut > 0);
            // A whole day the archive does not hold yet goes in as one tree.
            if all_cut && base_tree.lookup_entry_by_path(&path).map_err(err)?.is_none() {
                editor.upsert(&path, EntryKind::Tree, *tree).map_err(tree_err)?;
                continue;
            }
            for j in self.cut().filter(|j| j.day == day) {
                editor.upsert(&format!("{path}/{}", j.name), EntryKind::Tree, j.dir).map_err(tree_err)?;
            }
        }
        let cache = repo.find_tree(self.tree).map_err(err)?.lookup_entry_by_path("cache").map_err(err)?;
        let buckets = match cache.filter(|c| with_cache && c.mode().is_tree()) {
            Some(c) => subtrees(&repo, c.object_id()).map_err(err)?,
            None => vec![],
        };
        for (_, bucket) in buckets {
            for (key, blob, is_tree) in entries(&repo, bucket).map_err(err)? {
                if !is_tree {
                    editor.upsert(&crate::done::archived_cache_path(&key), EntryKind::Blob, blob).map_err(tree_err)?;
                }
            }
        }
        let tree = editor.write().map_err(tree_err)?;
        crate::done::commit(&repo, message, tree, tip).map_err(err)
    }
}

/// A tree's entries as `(name, id, is a tree)`.
fn entries(repo: &gix::Repository, tree: ObjectId) -> Result<Vec<(String, ObjectId, bool)>, gix::Error> {
    let tree = repo.find_tree(tree)?;
    let decoded = tree.decode()?;
    Ok(decoded.entries.iter().map(|e| (e.filename.to_string(), e.oid.to_owned(), e.mode.is_tree())).collect())
}

/// A tree's subtrees as `(name, id)`.
fn subtrees(repo: &gix::Repository, tree: ObjectId) -> Result<Vec<(String, ObjectId)>, gix::Error> {
    Ok(entries(repo, tree)?.into_iter().filter(|e| e.2).map(|(name, id, _)| (name, id)).collect())
}

/// When the job finished: `result.json`'s `finished_at`, else (a result
/// that does not say) its submission time from the id.
fn finished_at(repo: &gix::Repository, id: &JobId, dir: ObjectId) -> SystemTime {
    let from_result = || -> Option<SystemTime> {
        let entry = repo.find_tree(dir).ok()?.lookup_entry_by_path("result.json").ok()??;
        let doc: serde_json::Value = serde_json::from_slice(&entry.object().ok()?.data).ok()?;
        crate::time::parse_rfc3339(doc.get("finished_at")?.as_str()?)
    };
    from_result().unwrap_or_else(|| submitted_at(id))
}

/// The time prefix of a job id, `YYYYMMDDTHHMMSSmmm`.
fn submitted_at(id: &JobId) -> SystemTime {
    let s = id.as_str();
    let stamp =
        format!("{}-{}-{}T{}:{}:{}.{}Z", &s[..4], &s[4..6], &s[6..8], &s[9..11], &s[11..13], &s[13..15], &s[15..18]);
    crate::time::parse_rfc3339(&stamp).unwrap_or(SystemTime::UNIX_EPOCH)
}
