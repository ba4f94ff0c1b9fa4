//! A claim round that finds few jobs it could claim and parked ones
//! behind them ([`crate::backlog`]), or parked ones of a higher priority
//! than any it could claim, moves some into the queue first.

use super::claim::Round;
use super::*;

impl Worker {
    /// Promotes parked jobs this worker can run, the first in the claim
    /// order, as many as the fleet claiming beside it needs
    /// ([`crate::backlog::Fleet`]), when a `fresh` snapshot shows fewer
    /// than its low water that it could claim (`claimable`: their
    /// priorities and ids), or a backlog headed by a job of a higher
    /// priority than all of them; `Some`:
    /// the round to return, the queue to be read again at once. Of an
    /// older snapshot, only says whether to read afresh first.
    pub(super) fn promote_if_low(
        &mut self,
        snap: &Snapshot,
        claimable: &[(i32, &JobId)],
        sharers: &Sharers,
        fresh: bool,
    ) -> Result<Option<Round>, HubError> {
        let best = claimable.iter().map(|(priority, _)| *priority).max();
        let tips: HashSet<ObjectId> = snap.backlogs.iter().map(|(_, tip)| *tip).collect();
        if fresh {
            self.rounds.unrunnable_backlogs.retain(|t| tips.contains(t));
            self.rounds.backlog_heads.retain(|t, _| tips.contains(t));
        }
        let unread = tips.iter().any(|tip| !self.rounds.unrunnable_backlogs.contains(tip));
        if !fresh {
            // An older view (the rest of the last snapshot) with parked
            // work more urgent than any it shows: read afresh, and promote,
            // before claiming from it.
            let outranked = unread && self.parked_outranks(snap, best);
            return Ok(outranked.then_some(Round { eligible: 0, retry_now: false }));
        }
        // Enough queued for the whole fleet claiming beside us, so that
        // each finds jobs of its own (see `crate::backlog::QUEUED_PER_SLOT`).
        let fleet = crate::backlog::Fleet { claimers: sharers.rivals() + 1, slots: self.cfg.jobs };
        let low = claimable.len() < fleet.low_water();
        if !unread || (!low && !self.parked_outranks(snap, best)) {
            return Ok(None);
        }
        // One worker refills the queue: the one the newest queued job
        // ranks first among those claiming (all of them see about the same
        // queue). The others promote only once none of the jobs is theirs
        // (their first worker gone or busy): rather than take another's
        // and race its owner for it, they make jobs of their own. So a
        // fleet does not push a promotion each and lose all but one.
        let newest = snap.queued.iter().map(|q| &q.id).max();
        let own_left = claimable.iter().any(|(_, id)| sharers.rank(&self.cfg.name, id) == 0);
        if own_left && newest.is_some_and(|newest| sharers.rank(&self.cfg.name, newest) > 0) {
            return Ok(None);
        }
        let runnable = |job: &Job| self.can_promote(job);
        match crate::backlog::promote(&*self.hub, snap, fleet.promotion(), runnable) {
            // Nothing here this worker can run: not read again until it changes.
            Ok(Some(0)) => self.rounds.unrunnable_backlogs.extend(tips),
            // Moved, or lost the race to another promotion: read again.
            Ok(moved) => return Ok(Some(Round { eligible: moved.unwrap_or(1), retry_now: true })),
            // The hub would not take this promotion: claim what is queued,
            // and leave these backlogs until they change (another worker's
            // promotion, a cancel), rather than wait out a backoff with
            // jobs to run.
            Err(e) if e.is_refusal() => {
                tracing::debug!("the hub refused a promotion: {e}");
                self.rounds.unrunnable_backlogs.extend(tips);
            }
            Err(e) => return Err(e),
        }
        Ok(None)
    }

    fn can_promote(&self, job: &Job) -> bool {
        let cfg = &self.cfg;
        cfg.serves(&job.spec.queue) && cfg.can_run(job) && cfg.only.as_ref().is_none_or(|only| only.contains(&job.id))
    }

    /// Whether a backlog of `snap` is headed by a job this worker can run
    /// of a priority above `best`, the highest it could claim. A backlog
    /// holds its jobs in the claim order, so its head is its most urgent;
    /// one document read per backlog value, remembered.
    fn parked_outranks(&mut self, snap: &Snapshot, best: Option<i32>) -> bool {
        let Some(best) = best else { return true };
        for (name, tip) in &snap.backlogs {
            let head = match self.rounds.backlog_heads.get(tip) {
                Some(head) => *head,
                None => {
                    let job = crate::backlog::head(&*self.hub, name, *tip).filter(|j| self.can_promote(j));
                    let head = job.map(|j| j.spec.priority);
                    self.rounds.backlog_heads.insert(*tip, head);
                    head
                }
            };
            if head.is_some_and(|p| p > best) {
                return true;
            }
        }
        false
    }
}
