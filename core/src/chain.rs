//! A writer's own `done` chain, as the writer keeps track of it: the tip it
//! last moved it to, how many results that tip holds, and when a publish
//! rolls them over into `refs/ci/archive/<writer>`.
//!
//! Why roll: a push's connectivity check walks the whole tree of the commit
//! the pushed one builds on (git marks every object reachable from it as
//! already there, one tree read per job directory), on the hub and in the
//! pusher's `pack-objects`. A chain that held all its writer's history would
//! make every complete cost more than the last: measured over `git daemon`,
//! 1.4× a fresh chain's at 10,000 results and 4× at 100,000. So once the
//! tip holds [`ROLL_AT`] results, the next publish also moves them into the
//! writer's archive (how, below): the new tip holds only the
//! new results (and the `triggers/` index, carried over as it is), its
//! parent is the old tip (a fast-forward, as the guard wants), and the
//! archive's new commit adds the old results and `cache/` entries (one per
//! pass, so it grows like the results) to its tree.
//! Readers look in archives too ([`crate::done::tips`]), so nothing moves
//! out of sight. A roll costs one walk of the archive's tree (its parent),
//! once per [`ROLL_AT`] publishes.
//!
//! The archive moves first, in a transaction of its own, and the publish
//! then drops the copied results from the tip: in between a result is in
//! both chains (readers take it once), never in neither, even on a hub that
//! applies only part of a transaction ([`crate::hub::HubError::Partial`]).

use gix::ObjectId;

use crate::archive::{self, Plan, Policy};
use crate::done::{self, Entry};
use crate::hub::{Hub, HubError, RefEdit};
use crate::refs;

/// How many results a chain tip holds before the next publish rolls them
/// into the archive. Measured (`git-ci-bench`, group 5): a complete onto a
/// tip of 10,000 results costs ~7.7 µs of connectivity walk per result, so
/// a tip of at most 1,000 keeps a complete within a few percent of one onto
/// an empty chain, while a roll (a walk of the archive) comes once in a
/// thousand publishes.
pub const ROLL_AT: usize = 1000;

/// One writer's chain as that writer sees it.
#[derive(Clone, Debug)]
pub struct Chain {
    writer: String,
    tip: Option<ObjectId>,
    /// How many results `tip` holds, once counted.
    held: Option<usize>,
    roll_at: usize,
}

/// A publish, written but not yet applied: the ref edits that make it, to
/// go in the caller's transaction with the jobs' own.
#[derive(Debug)]
pub struct Append {
    pub edits: Vec<RefEdit>,
    tip: ObjectId,
    held: usize,
    /// Whether this publish moves the old results into the archive.
    pub rolls: bool,
}

impl Chain {
    /// `writer`'s chain, last seen at `tip`, rolled at [`ROLL_AT`] results.
    pub fn new(writer: impl Into<String>, tip: Option<ObjectId>) -> Chain {
        Chain { writer: writer.into(), tip, held: None, roll_at: ROLL_AT }
    }

    /// Rolls at `n` results instead (at least 1).
    pub fn rolling_at(mut self, n: usize) -> Chain {
        self.roll_at = n.max(1);
        self
    }

    pub fn writer(&self) -> &str {
        &self.writer
    }

    pub fn tip(&self) -> Option<ObjectId> {
        self.tip
    }

    /// The chain moved without us (a lost race, `git ci gc`): start from `tip`.
    pub fn reset(&mut self, tip: Option<ObjectId>) {
        if tip != self.tip {
            (self.tip, self.held) = (tip, None);
        }
    }

    /// Writes the objects of a publish of `entries` onto the tip; when the
    /// tip holds enough results, first copies them into the archive (a
    /// transaction of its own) for the publish to drop.
    pub fn append(&mut self, hub: &dyn Hub, entries: &[&Entry]) -> Result<Append, HubError> {
        let done_ref = refs::done(&self.writer);
        let Some(tip) = self.tip else {
            let new = done::append_refs(hub, None, entries, &[])?;
            return Ok(Append {
                edits: vec![RefEdit::create(done_ref, new)],
                tip: new,
                held: entries.len(),
                rolls: false,
            });
        };
        let held = *self.held.get_or_insert_with(|| done::count(hub, tip));
        if held < self.roll_at {
            let new = done::append_refs(hub, Some(tip), entries, &[])?;
            let edits = vec![RefEdit::update(done_ref, tip, new)];
            return Ok(Append { edits, tip: new, held: held + entries.len(), rolls: false });
        }
        self.roll(hub, tip, entries)
    }

    /// [`Chain::append`] onto a tip whose results all go to the archive.
    fn roll(&self, hub: &dyn Hub, tip: ObjectId, entries: &[&Entry]) -> Result<Append, HubError> {
        let archive_ref = refs::archive(&self.writer);
        let plan = Plan::read(hub, tip, &Policy { max_age: None, keep: Some(0) }, std::time::SystemTime::now())?;
        let moved = plan.cut().count();
        let message =
            format!("git-ci: rolled {moved} results of {} at {tip} into the archive\n", refs::done(&self.writer));
        for attempt in 1.. {
            // Ours to move, but `git ci gc` may have moved it since: read it
            // now (this also fetches it into a remote hub's cache to build on).
            let archive_tip = hub.refresh_ref(&archive_ref)?;
            let archive = plan.write_archive_as(hub, &self.writer, archive_tip, message.clone(), true)?;
            match hub.transact(&[RefEdit::set(&archive_ref, archive_tip, archive)]) {
                Ok(()) => break,
                // gc moved it between our read and our push: read it again.
                Err(e) if e.is_conflict() && attempt < archive::MAX_ATTEMPTS => continue,
                Err(e) => return Err(e),
            }
        }
        let base = plan
            .kept_tree(hub, &["cache"])
            .map_err(|e| hub.local_error(format!("could not roll {}", self.writer), e))?;
        let new = done::append_onto(hub, Some(tip), base, entries, &[])?;
        let edits = vec![RefEdit::update(refs::done(&self.writer), tip, new)];
        Ok(Append { edits, tip: new, held: entries.len(), rolls: true })
    }

    /// The transaction holding `append` went through.
    pub fn applied(&mut self, append: &Append) {
        (self.tip, self.held) = (Some(append.tip), Some(append.held));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::done::Content;
    use crate::hub::LocalHub;
    use crate::id::JobId;
    use crate::model::{JobResult, Status};

    fn entry(n: u32) -> Entry {
        let id = JobId::new(std::time::SystemTime::now(), &n.to_le_bytes());
        let result = JobResult::without_run(&id, Status::Passed, "w", 1, "test".into());
        let log = Content::Bytes(b"log\n".to_vec());
        Entry { id, job_json: b"{}".to_vec(), result, log, files: vec![], cache_key: Some(format!("{n:04x}key")) }
    }

    fn publish(hub: &dyn Hub, chain: &mut Chain, entries: &[Entry]) -> bool {
        let refs: Vec<&Entry> = entries.iter().collect();
        let append = chain.append(hub, &refs).unwrap();
        hub.transact(&append.edits).unwrap();
        chain.applied(&append);
        append.rolls
    }

    fn ids(hub: &dyn Hub, name: &str) -> Vec<JobId> {
        let tip = hub.get(name).unwrap().unwrap();
        let mut ids: Vec<JobId> = done::list(hub, tip, usize::MAX).unwrap().into_iter().map(|(id, _)| id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn a_full_tip_rolls_into_the_archive_on_the_next_publish() {
        let dir = tempfile::tempdir().unwrap();
        gix::init_bare(dir.path()).unwrap();
        let hub = LocalHub::open(dir.path()).unwrap();
        let hub: &dyn Hub = &hub;
        let mut chain = Chain::new("w", None).rolling_at(3);
        let all: Vec<Entry> = (0..8).map(entry).collect();
        let mut rolls = vec![];
        for pair in all.chunks(2) {
            rolls.push(publish(hub, &mut chain, pair));
        }
        // Holds 2, 4 (>= 3: the next one rolls), 2 after the roll, 4.
        assert_eq!(rolls, [false, false, true, false]);
        let ids_of = |r: std::ops::Range<usize>| {
            let mut ids: Vec<JobId> = all[r].iter().map(|e| e.id.clone()).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(hub, &refs::done("w")), ids_of(4..8));
        assert_eq!(ids(hub, &refs::archive("w")), ids_of(0..4));

        let tip = hub.get(&refs::done("w")).unwrap().unwrap();
        let repo = hub.repo();
        let parent = |c: ObjectId| repo.find_commit(c).unwrap().parent_ids().next().map(|p| p.detach());
        let rolled = parent(tip).unwrap();
        assert!(parent(rolled).is_some(), "a roll is a fast-forward of the chain, not a new root");
        let tips = done::tips(hub).unwrap();
        for e in &all {
            assert!(done::find(hub, &tips, &e.id).unwrap().is_some(), "{} is found", e.id);
        }
        assert_eq!(done::cached_pass(hub, &tips, "0000key"), Some(all[0].id.clone()), "found in the archive");
        assert_eq!(done::cached_pass(hub, &tips, "0006key"), Some(all[6].id.clone()), "found in the tip");
        let in_tip = |key: &str| {
            let tree = repo.find_commit(tip).unwrap().tree().unwrap();
            tree.lookup_entry_by_path(format!("cache/{}/{key}", &key[..2])).unwrap().is_some()
        };
        assert!(!in_tip("0000key") && in_tip("0006key"), "the tip keeps only its own passes' cache entries");

        // A chain read afresh counts what its tip holds.
        let mut again = Chain::new("w", Some(tip)).rolling_at(4);
        assert!(publish(hub, &mut again, &[entry(9)]));
        assert_eq!(ids(hub, &refs::archive("w")).len(), 8);
    }
}
