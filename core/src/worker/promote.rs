//! A claim round that finds few jobs it could claim and parked ones
//! behind them ([`crate::backlog`]) moves some into the queue first.

use super::claim::Round;
use super::*;

impl Worker {
    /// Promotes up to [`crate::backlog::PROMOTE_AT_MOST`] parked jobs this
    /// worker can run when a `fresh` snapshot shows fewer than
    /// [`crate::backlog::low_water`] it could claim (`claimable`); `Some`:
    /// the round to return, the queue to be read again at once.
    pub(super) fn promote_if_low(
        &mut self,
        snap: &Snapshot,
        claimable: usize,
        fresh: bool,
    ) -> Result<Option<Round>, HubError> {
        if !fresh {
            return Ok(None);
        }
        let tips: HashSet<ObjectId> = snap.backlogs.iter().map(|(_, tip)| *tip).collect();
        self.rounds.unrunnable_backlogs.retain(|t| tips.contains(t));
        let unread = tips.iter().any(|tip| !self.rounds.unrunnable_backlogs.contains(tip));
        if !unread || claimable >= crate::backlog::low_water(self.cfg.jobs) {
            return Ok(None);
        }
        // With work left, one worker refills the queue: the one the newest
        // queued job ranks first among those claiming (all of them see
        // about the same queue). The others promote only once they run
        // dry, so a fleet does not push a promotion each and lose all but
        // one (or the first-ranked worker is gone or busy).
        let newest = snap.queued.iter().map(|q| &q.id).max();
        if let Some(newest) = newest.filter(|_| claimable > 0) {
            let sharers = self.sharers(snap, Instant::now());
            if sharers.rank(&self.cfg.name, newest) > 0 {
                return Ok(None);
            }
        }
        let cfg = &self.cfg;
        let runnable = |job: &Job| {
            cfg.serves(&job.spec.queue)
                && cfg.can_run(job)
                && cfg.only.as_ref().is_none_or(|only| only.contains(&job.id))
        };
        match crate::backlog::promote(&*self.hub, snap, crate::backlog::PROMOTE_AT_MOST, runnable) {
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
}
