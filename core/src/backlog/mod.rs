//! Parked jobs: the pending jobs of a big submission that wait in one ref
//! instead of two refs each (docs/protocol.md, "Parked jobs: the backlog").
//!
//! Every push to a hub is answered with the list of all its refs, so each
//! pending job that is a queue ref and a pin makes every worker's every
//! push slower. A submission of many jobs therefore queues the first
//! [`DEFAULT_AFTER`] of each queue as usual and parks the rest in
//! `refs/ci/backlog/<queue>/<batch>`: a commit whose tree holds their
//! `job.json` blobs at `<bucket:04>/<index:06>-<id>` (in the order claimers
//! take jobs: highest priority first, then oldest, see [`order`]; [`BUCKET`]
//! a bucket so a rewrite rewrites two small trees), whose single
//! parent is the *pin commit* (empty tree, parents = the commits under
//! test) made once, which keeps those commits reachable.
//!
//! A worker short of claimable jobs moves up to [`PROMOTE_AT_MOST`] parked
//! jobs it can run, the first in that order across the backlogs of the
//! queues it serves, into ordinary queue refs (the same blobs) with their
//! pins, and the backlog ref to the tree without them, in one transaction
//! ([`promote_edits`]). Every other change of a parked job (a cancel)
//! rewrites the backlog ref the same way in its own transaction. The
//! backlog ref moves only by compare-and-swap to a strict subset, so two
//! writers of one backlog never both win, and its value never comes back.

use std::collections::{BTreeMap, HashSet};

use gix::ObjectId;
use gix::objs::tree::EntryKind;

use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::model::Job;
use crate::refs;

pub mod order;

pub use order::{head, to_park};

/// The environment variable that sets how many jobs of one queue a
/// submission queues individually before it parks the rest: a number, or
/// `off` (never park).
pub const AFTER_ENV: &str = "GIT_CI_BACKLOG_AFTER";
/// The default of [`AFTER_ENV`]: enough for every worker of a usual fleet
/// to claim at once, few enough that the hub's ref list stays short.
pub const DEFAULT_AFTER: usize = 64;
/// Jobs a bucket (a subtree) of a backlog holds.
pub const BUCKET: usize = 256;
/// Jobs one promotion by a lone claimer moves out of a backlog at most
/// (a fleet moves more: [`Fleet::promotion`]).
pub const PROMOTE_AT_MOST: usize = 32;
/// Jobs one promotion moves at most, however big the fleet: a promotion
/// is one transaction of two refs a job, and every later push advertises
/// what it queued.
pub const PROMOTE_CEILING: usize = 512;
/// Queued jobs a fleet keeps per slot claiming from the queue. Workers
/// share the queue out by rendezvous hashing ([`crate::worker`]'s `share`),
/// so a worker finds one of its own among `n` jobs unless none of them
/// fell to it: with 16 workers, 1 look in 8 at 2 jobs per worker (32
/// jobs), 1 in 60 at 4. A worker without one of its own takes another's,
/// and loses the race for it to its owner as often as not: 16 workers of
/// one slot that refilled the queue 32 jobs at a time lost 0.74 races per
/// claim and drained at two thirds of 4 workers' rate.
pub const QUEUED_PER_SLOT: usize = 8;
/// Queued jobs a fleet keeps at most before promoting more: every push
/// advertises them (two refs each), so a fleet of hundreds of workers
/// shares fewer per worker rather than slow every push down.
pub const QUEUED_CEILING: usize = 4 * PROMOTE_CEILING;

/// How many jobs of a queue one submission queues before parking the
/// rest, from [`AFTER_ENV`]; `None`: parking is off.
pub fn park_after() -> Result<Option<usize>, String> {
    match std::env::var(AFTER_ENV) {
        Err(_) => Ok(Some(DEFAULT_AFTER)),
        Ok(v) if v.trim() == "off" => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| {
            format!("{AFTER_ENV}={v:?} is not a number of jobs or \"off\" (how many jobs of a queue one submission queues before it parks the rest in a backlog)")
        }),
    }
}

/// Where a parked job sits: its backlog ref, that ref's value as read
/// (what a rewrite expects), and its entry's path in the tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Parked {
    pub backlog: String,
    pub tip: ObjectId,
    pub path: String,
}

/// One parked job as its backlog's tree shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub id: JobId,
    pub blob: ObjectId,
}

/// What a backlog commit holds: its pin commit and its jobs, in its order.
#[derive(Clone, Debug)]
pub struct Contents {
    pub pin: ObjectId,
    pub entries: Vec<Entry>,
}

/// The path of the `index`th job of a submission's backlog.
pub fn entry_path(index: usize, id: &JobId) -> String {
    format!("{:04}/{:06}-{id}", index / BUCKET, index)
}

/// The job id of an entry path, when the path has the backlog's shape.
pub fn parse_entry_path(path: &str) -> Option<JobId> {
    let (bucket, name) = path.split_once('/')?;
    let (index, id) = name.split_once('-')?;
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(bucket, 4) || !digits(index, 6) {
        return None;
    }
    JobId::parse(id).ok()
}

/// Reads a backlog commit: its one parent (the pin commit) and every entry
/// of its tree, which must all have the backlog's shape.
pub fn read(repo: &gix::Repository, tip: ObjectId) -> Result<Contents, String> {
    let commit = repo.find_commit(tip).map_err(|e| format!("the backlog {tip} is not a readable commit: {e}"))?;
    let parents: Vec<ObjectId> = commit.parent_ids().map(|p| p.detach()).collect();
    let [pin] = parents[..] else {
        return Err(format!("the backlog commit {tip} has {} parents; it must have one, its pin", parents.len()));
    };
    let tree = commit.tree().map_err(|e| format!("could not read the tree of the backlog {tip}: {e}"))?;
    let mut entries = Vec::new();
    for bucket in tree.decode().map_err(|e| format!("the backlog {tip}'s tree does not decode: {e}"))?.entries.iter() {
        let name = bucket.filename.to_string();
        if !bucket.mode.is_tree() {
            return Err(format!("the backlog {tip} holds {name}, which is not a bucket directory"));
        }
        let sub = repo.find_tree(bucket.oid).map_err(|e| format!("could not read bucket {name} of {tip}: {e}"))?;
        let decoded = sub.decode().map_err(|e| format!("bucket {name} of {tip} does not decode: {e}"))?;
        for e in decoded.entries.iter() {
            let path = format!("{name}/{}", e.filename);
            let id = parse_entry_path(&path)
                .filter(|_| e.mode.is_blob())
                .ok_or_else(|| format!("the backlog {tip} holds {path}, not a job at <bucket>/<index>-<job-id>"))?;
            entries.push(Entry { path, id, blob: e.oid.to_owned() });
        }
    }
    Ok(Contents { pin, entries })
}

/// A unique name for the backlog of these jobs: a digest of their ids.
pub fn batch_id(jobs: &[&Job]) -> String {
    let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    let digest = <sha2::Sha256 as sha2::Digest>::digest(ids.join("\n").as_bytes());
    digest.iter().take(10).map(|b| format!("{b:02x}")).collect()
}

/// Writes the objects of a backlog of `jobs` (all of `queue`, their
/// commits imported already), in the claim order ([`order::sorted`]), and
/// returns the ref creation.
pub fn park(hub: &dyn Hub, queue: &str, jobs: &[&Job]) -> Result<RefEdit, HubError> {
    let jobs = &order::sorted(jobs)[..];
    let repo = hub.repo();
    let err = |e: &dyn std::fmt::Display| hub.local_error(format!("could not write a backlog of queue {queue}"), e);
    let mut commits = Vec::new();
    let mut seen = HashSet::new();
    let mut editor =
        crate::tree_edit::TreeEditor::new(&repo, ObjectId::empty_tree(repo.object_hash())).map_err(|e| err(&e))?;
    for (index, job) in jobs.iter().enumerate() {
        let commit = ObjectId::from_hex(job.commit.as_bytes()).map_err(|e| err(&e))?;
        if seen.insert(commit) {
            commits.push(commit);
        }
        let blob = hub.write_blob(&job.to_json())?;
        editor.upsert(&entry_path(index, &job.id), EntryKind::Blob, blob).map_err(|e| err(&e))?;
    }
    let tree = editor.write().map_err(|e| err(&e))?;
    let empty = repo.write_object(gix::objs::Tree::empty()).map_err(|e| err(&e))?.detach();
    let pin = commit_of(&repo, format!("git-ci backlog pin: the commits of {} jobs\n", jobs.len()), empty, commits)
        .map_err(|e| err(&e))?;
    let tip = commit_of(&repo, format!("git-ci backlog of queue {queue}: {} jobs\n", jobs.len()), tree, [pin])
        .map_err(|e| err(&e))?;
    Ok(RefEdit::create(refs::backlog(queue, &batch_id(jobs)), tip))
}

fn commit_of(
    repo: &gix::Repository,
    message: String,
    tree: ObjectId,
    parents: impl IntoIterator<Item = ObjectId>,
) -> Result<ObjectId, gix::Error> {
    let sig = crate::done::signature();
    let mut time = Default::default();
    let sig = sig.to_ref(&mut time);
    Ok(repo.new_commit_as(sig, sig, message, tree, parents)?.id)
}

/// The edit that takes the entries at `paths` out of the backlog `parked`
/// names (at the value it read): the ref moved to a commit of the rest on
/// the same pin, or deleted when nothing is left.
pub fn without(hub: &dyn Hub, backlog: &str, tip: ObjectId, paths: &HashSet<&str>) -> Result<RefEdit, HubError> {
    let repo = hub.repo();
    let err = |e: &dyn std::fmt::Display| hub.local_error(format!("could not rewrite the backlog {backlog}"), e);
    let contents = read(&repo, tip).map_err(|e| err(&e))?;
    let left: Vec<&Entry> = contents.entries.iter().filter(|e| !paths.contains(e.path.as_str())).collect();
    if left.is_empty() {
        return Ok(RefEdit::delete(backlog.to_owned(), tip));
    }
    let base = repo.find_commit(tip).and_then(|c| Ok(c.tree_id()?.detach())).map_err(|e| err(&e))?;
    let mut editor = crate::tree_edit::TreeEditor::new(&repo, base).map_err(|e| err(&e))?;
    let mut kept_buckets = HashSet::new();
    for e in &left {
        kept_buckets.insert(e.path.split_once('/').map_or("", |(b, _)| b));
    }
    for path in paths {
        let bucket = path.split_once('/').map_or("", |(b, _)| b);
        let whole = if kept_buckets.contains(bucket) { *path } else { bucket };
        editor.remove(whole).map_err(|e| err(&e))?;
    }
    let tree = editor.write().map_err(|e| err(&e))?;
    // A nonce makes every rewrite a new value, even of two writers taking
    // the same jobs out in the same second: `git push` skips the lease of
    // a ref it finds at the value pushed already, so a stale promotion
    // would otherwise "win" a race it lost (and queue a job a cancel had
    // just taken out and published).
    let nonce = format!("{:016x}", fastrand::u64(..));
    let message = format!("git-ci backlog: {} jobs left\n\nrewrite {nonce}\n", left.len());
    let new = commit_of(&repo, message, tree, [contents.pin]).map_err(|e| err(&e))?;
    Ok(RefEdit::update(backlog.to_owned(), tip, new))
}

/// One parked job to move into the queue: its entry and its commit.
#[derive(Clone, Debug)]
pub struct Promotion {
    pub queue: String,
    pub id: JobId,
    pub blob: ObjectId,
    pub commit: ObjectId,
    pub parked: Parked,
}

/// The edits of one promotion: each job's queue ref (its blob) and pin
/// created expected absent, and each backlog they leave rewritten
/// expected at the value read.
pub fn promote_edits(hub: &dyn Hub, jobs: &[Promotion]) -> Result<Vec<RefEdit>, HubError> {
    let mut by_backlog: BTreeMap<(&str, ObjectId), HashSet<&str>> = BTreeMap::new();
    let mut edits = Vec::with_capacity(jobs.len() * 2 + 1);
    for p in jobs {
        by_backlog.entry((p.parked.backlog.as_str(), p.parked.tip)).or_default().insert(p.parked.path.as_str());
        edits.push(RefEdit::create(refs::pin(&p.id), p.commit));
        edits.push(RefEdit::create(refs::queue(&p.queue, &p.id), p.blob));
    }
    for ((backlog, tip), paths) in by_backlog {
        edits.push(without(hub, backlog, tip, &paths)?);
    }
    Ok(edits)
}

/// How few claimable jobs a claimer with `slots` slots must see in a
/// queue before it promotes parked ones: enough to keep every slot of a
/// few claimers busy until the next promotion.
pub fn low_water(slots: usize) -> usize {
    2 * slots + 8
}

/// The claimers sharing a queue, as one of them knows them: how many
/// (itself included) and its own slots (the others are taken to have as
/// many: a registration says, but reading every one costs a fetch).
#[derive(Debug, Clone, Copy)]
pub struct Fleet {
    pub claimers: usize,
    pub slots: usize,
}

impl Fleet {
    /// Below how many claimable queued jobs a claimer promotes:
    /// [`low_water`] for its own slots, or [`QUEUED_PER_SLOT`] for every
    /// slot of the fleet up to [`QUEUED_CEILING`], whichever is more.
    pub fn low_water(self) -> usize {
        low_water(self.slots).max(self.queued_per_slot().min(QUEUED_CEILING))
    }

    /// How many jobs one promotion moves: [`PROMOTE_AT_MOST`], or enough
    /// to give every slot of the fleet [`QUEUED_PER_SLOT`] more, up to
    /// [`PROMOTE_CEILING`].
    pub fn promotion(self) -> usize {
        PROMOTE_AT_MOST.max(self.queued_per_slot()).min(PROMOTE_CEILING)
    }

    fn queued_per_slot(self) -> usize {
        QUEUED_PER_SLOT.saturating_mul(self.claimers.max(1)).saturating_mul(self.slots.max(1))
    }
}

/// Moves up to `want` (at most [`PROMOTE_CEILING`]) parked jobs of `snap`
/// that `can_run` accepts into the queue, the first in the claim order
/// (highest priority, then oldest: [`order::best`]), in one transaction
/// ([`promote_edits`]). Returns how many moved (0: nothing to move), or
/// `None` when another claimer rewrote the backlog first (a lost race
/// costs nothing: the caller reads the hub again).
pub fn promote(
    hub: &dyn Hub,
    snap: &crate::queue::Snapshot,
    want: usize,
    can_run: impl Fn(&Job) -> bool,
) -> Result<Option<usize>, HubError> {
    let chosen = order::best(hub, snap, want.min(PROMOTE_CEILING), can_run);
    if chosen.is_empty() {
        return Ok(Some(0));
    }
    match hub.transact(&promote_edits(hub, &chosen)?) {
        Ok(()) => Ok(Some(chosen.len())),
        Err(e) if e.is_conflict() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::LocalHub;
    use crate::model::JobSpec;
    use crate::queue::{Snapshot, submit_parking_edits};

    fn hub() -> (tempfile::TempDir, LocalHub, String) {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init_bare(dir.path()).unwrap();
        let empty = repo.write_object(gix::objs::Tree::empty()).unwrap().detach();
        let commit = crate::done::commit(&repo, "t".into(), empty, None).unwrap();
        let hub = LocalHub::open(dir.path()).unwrap();
        (dir, hub, commit.to_string())
    }

    fn jobs(commit: &str, n: usize) -> Vec<Job> {
        (0..n)
            .map(|i| Job::new(JobSpec::ad_hoc(&format!("echo {i}")), commit, &"b".repeat(40), "refs/heads/main", "t"))
            .collect()
    }

    /// A lone claimer promotes as before; a fleet keeps enough queued for
    /// every slot to find jobs of its own, up to a ceiling.
    #[test]
    fn promotions_grow_with_the_fleet() {
        let lone = Fleet { claimers: 1, slots: 1 };
        assert_eq!((lone.low_water(), lone.promotion()), (low_water(1), PROMOTE_AT_MOST));
        let sixteen = Fleet { claimers: 16, slots: 1 };
        assert_eq!((sixteen.low_water(), sixteen.promotion()), (16 * QUEUED_PER_SLOT, 16 * QUEUED_PER_SLOT));
        let huge = Fleet { claimers: 1000, slots: 8 };
        assert_eq!((huge.low_water(), huge.promotion()), (QUEUED_CEILING, PROMOTE_CEILING));
        assert_eq!(Fleet { claimers: 0, slots: 0 }.low_water(), low_water(0));
    }

    #[test]
    fn entry_paths_keep_order_and_fan_out() {
        let id = JobId::parse("20261122T040704123-0123456789ab").unwrap();
        assert_eq!(entry_path(3, &id), format!("0000/000003-{id}"));
        assert_eq!(entry_path(BUCKET, &id), format!("0001/000256-{id}"));
        assert_eq!(parse_entry_path(&entry_path(700, &id)), Some(id.clone()));
        for bad in ["0000/x-y", "000/000001-{id}", "0000/000001", &format!("00a0/000001-{id}")] {
            assert_eq!(parse_entry_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_submission_parks_only_what_nothing_waits_for() {
        let (_dir, _hub, commit) = hub();
        let mut jobs = jobs(&commit, 6);
        jobs[4].spec.serve = true;
        jobs[5].needed_by = vec!["x".into()];
        let refs: Vec<&Job> = jobs.iter().collect();
        assert_eq!(to_park(&refs, 2), [false, false, true, true, false, false]);
        jobs[5].needed_by.clear();
        jobs[2].spec.queue = "other".into();
        let refs: Vec<&Job> = jobs.iter().collect();
        // Counted per queue: the first job of `other` is queued.
        assert_eq!(to_park(&refs, 2), [false, false, false, true, false, true]);
    }

    #[test]
    fn promotions_move_the_oldest_and_a_stale_one_loses() {
        let (_dir, hub, commit) = hub();
        let hub: &dyn Hub = &hub;
        let jobs = jobs(&commit, 5);
        hub.transact(&submit_parking_edits(hub, &jobs, Some(1)).unwrap()).unwrap();
        let snap = Snapshot::read(hub, &[]).unwrap();
        assert_eq!((snap.queued.len(), snap.parked(hub).len()), (1, 4));
        assert_eq!(
            snap.parked(hub).iter().map(|q| &q.id).collect::<Vec<_>>(),
            jobs[1..].iter().map(|j| &j.id).collect::<Vec<_>>()
        );
        assert_eq!(promote(hub, &snap, 2, |_| true).unwrap(), Some(2));
        // From the same (now stale) view: the backlog moved, the race is lost.
        assert_eq!(promote(hub, &snap, 2, |_| true).unwrap(), None);
        let snap = Snapshot::read(hub, &[]).unwrap();
        let queued: Vec<&JobId> = snap.queued.iter().map(|q| &q.id).collect();
        assert_eq!(queued, jobs[..3].iter().map(|j| &j.id).collect::<Vec<_>>());
        assert!(hub.get(&refs::pin(&jobs[2].id)).unwrap().is_some());
        // A job it cannot run stays parked; the rest goes, and the backlog with it.
        assert_eq!(promote(hub, &snap, 9, |j| j.id != jobs[3].id).unwrap(), Some(1));
        let snap = Snapshot::read(hub, &[]).unwrap();
        assert_eq!(snap.parked(hub).iter().map(|q| &q.id).collect::<Vec<_>>(), [&jobs[3].id]);
        assert_eq!(promote(hub, &snap, 9, |_| true).unwrap(), Some(1));
        assert!(hub.list(refs::BACKLOG).unwrap().is_empty(), "an emptied backlog is deleted");
    }

    /// Two batches, the older of low priority: promotions take the high
    /// ones first, then the oldest; a batch is stored in the claim order
    /// whatever order it came in, and the best of a mixed submission is
    /// what it queues.
    #[test]
    fn promotions_take_the_highest_priority_first_across_backlogs() {
        let (_dir, hub, commit) = hub();
        let hub: &dyn Hub = &hub;
        let low = jobs(&commit, 5);
        hub.transact(&submit_parking_edits(hub, &low, Some(0)).unwrap()).unwrap();
        let mut high = jobs(&commit, 4);
        for (job, priority) in high.iter_mut().zip([1, 5, 1, 5]) {
            job.spec.priority = priority;
        }
        let high: Vec<Job> = high.into_iter().map(Job::sealed).collect();
        hub.transact(&submit_parking_edits(hub, &high, Some(1)).unwrap()).unwrap();
        let snap = Snapshot::read(hub, &[]).unwrap();
        assert_eq!(snap.queued.iter().map(|q| &q.id).collect::<Vec<_>>(), [&high[1].id], "the first priority 5");
        let order: Vec<JobId> =
            snap.parked(hub).into_iter().map(|q| q.id).filter(|id| high.iter().any(|j| &j.id == id)).collect();
        assert_eq!(
            order,
            [high[3].id.clone(), high[0].id.clone(), high[2].id.clone()],
            "stored highest priority first, then oldest"
        );

        assert_eq!(promote(hub, &snap, 2, |_| true).unwrap(), Some(2));
        let queued = |hub: &dyn Hub| -> HashSet<JobId> {
            Snapshot::read(hub, &[]).unwrap().queued.into_iter().map(|q| q.id).collect()
        };
        assert_eq!(queued(hub), HashSet::from([high[1].id.clone(), high[3].id.clone(), high[0].id.clone()]));
        // What this claimer cannot run is passed over, not taken.
        let snap = Snapshot::read(hub, &[]).unwrap();
        assert_eq!(promote(hub, &snap, 2, |j| j.id != low[0].id).unwrap(), Some(2));
        let now = queued(hub);
        assert!(now.contains(&high[2].id) && now.contains(&low[1].id) && !now.contains(&low[0].id), "{now:?}");
    }
}

#[cfg(test)]
mod remote_tests {
    use super::*;
    use crate::hub::RemoteHub;
    use crate::model::JobSpec;
    use crate::queue::{Snapshot, submit_parking_edits};

    /// Two claimers with their own caches promote from the same view of a
    /// hub behind a URL: one wins, the other's push is a lost race. (Two
    /// rewrites alike to the byte were "up to date" to `git push`, which
    /// then checked no lease: the stale one won too.)
    #[test]
    fn a_promotion_lost_over_a_url_is_a_lost_race() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.git");
        gix::init_bare(&path).unwrap();
        let url = format!("file://{}", path.display());
        let a = RemoteHub::open_at(&url, None, &dir.path().join("a")).unwrap();
        let b = RemoteHub::open_at(&url, None, &dir.path().join("b")).unwrap();
        let (a, b): (&dyn Hub, &dyn Hub) = (&a, &b);
        // The commit under test, in the submitter's cache: its push carries it.
        let repo = a.repo();
        let empty = repo.write_object(gix::objs::Tree::empty()).unwrap().detach();
        let commit = crate::done::commit(&repo, "t".into(), empty, None).unwrap().to_string();
        let jobs: Vec<Job> = (0..6)
            .map(|i| Job::new(JobSpec::ad_hoc(&format!("echo {i}")), &commit, &"b".repeat(40), "refs/heads/main", "t"))
            .collect();
        a.transact(&submit_parking_edits(a, &jobs, Some(1)).unwrap()).unwrap();
        let (seen_a, seen_b) = (Snapshot::read(a, &[]).unwrap(), Snapshot::read(b, &[]).unwrap());
        assert_eq!(promote(a, &seen_a, 2, |_| true).unwrap(), Some(2));
        assert_eq!(promote(b, &seen_b, 2, |_| true).unwrap(), None);
        let again = Snapshot::read(b, &[]).unwrap();
        assert_eq!(promote(b, &again, 2, |_| true).unwrap(), Some(2));

        // A cancel of the oldest parked job, then a promotion of that one
        // job from a view before the cancel: the same tree either way.
        let (seen_a, seen_b) = (Snapshot::read(a, &[]).unwrap(), Snapshot::read(b, &[]).unwrap());
        let oldest = seen_a.parked(a).into_iter().min_by(|x, y| x.id.cmp(&y.id)).unwrap();
        assert_eq!(oldest.id, jobs[5].id);
        crate::queue::cancel_pending(a, &oldest, "me").unwrap();
        assert_eq!(promote(b, &seen_b, 1, |_| true).unwrap(), None, "a cancelled job is never queued");
        let after = Snapshot::read(b, &[]).unwrap();
        assert!(!after.queued.iter().any(|q| q.id == jobs[5].id));
        assert!(after.backlogs.is_empty(), "the cancel took the last parked job");
    }
}
