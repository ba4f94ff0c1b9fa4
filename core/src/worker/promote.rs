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
        // fleet does not push a promotion each and lose all but one; in a
        // crowded one, those out of jobs also take turns at it.
        let newest = snap.queued.iter().map(|q| &q.id).max();
        let own_left = claimable.iter().any(|(_, id)| sharers.rank(&self.cfg.name, id) == 0);
        let rank = newest.map_or(0, |newest| sharers.rank(&self.cfg.name, newest));
        if rank > 0 {
            if own_left {
                return Ok(None);
            }
            if super::pace::crowded(sharers)
                && let Some(wait) = self.promotion_turn(&tips, rank, Instant::now())
            {
                self.rounds.promotion_in = Some(wait);
                return Ok(None);
            }
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

    /// Whether it is this worker's turn to promote, ranked `rank` on the
    /// newest queued job, with none of its own left, in a crowded fleet:
    /// the backlogs `tips` must have stayed as they are for [`RANK_WAIT`]
    /// per worker ranked before it, counted from when it first saw them
    /// so. The first-ranked promotes at once; the others step in one after
    /// another only if it does not (busy with its jobs, gone), rather than
    /// all push a promotion and all but one lose it. `None`: its turn;
    /// else how long until it.
    ///
    /// [`RANK_WAIT`]: super::pace::RANK_WAIT
    fn promotion_turn(&mut self, tips: &HashSet<ObjectId>, rank: usize, now: Instant) -> Option<Duration> {
        let since = match &self.rounds.low_since {
            Some((seen, at)) if seen == tips => *at,
            _ => {
                self.rounds.low_since = Some((tips.clone(), now));
                now
            }
        };
        let turn = since + super::pace::RANK_WAIT.saturating_mul(u32::try_from(rank).unwrap_or(u32::MAX));
        (now < turn).then(|| turn - now)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Workers out of jobs in a crowded fleet promote in turns: the one
    /// ranked `r` on the newest job waits `r` turns from when it first saw
    /// the backlogs as they are, and a backlog that changed starts the
    /// count again.
    #[test]
    fn promotions_go_in_turns_counted_from_when_the_backlog_last_changed() {
        let dir = tempfile::tempdir().unwrap();
        let hub_path = dir.path().join("hub.git");
        gix::init_bare(&hub_path).unwrap();
        let hub: Arc<dyn Hub> = Arc::new(crate::hub::LocalHub::open(&hub_path).unwrap());
        let mut w = Worker::new(hub, Config::new("w".to_owned(), dir.path().join("work")), |_| {});
        let tips: HashSet<ObjectId> = [ObjectId::from_hex(b"1111111111111111111111111111111111111111").unwrap()].into();
        let (turn, start) = (super::super::pace::RANK_WAIT, Instant::now());
        assert_eq!(w.promotion_turn(&tips, 2, start), Some(turn * 2), "ranked third: two turns to wait");
        let later = start + turn;
        assert_eq!(w.promotion_turn(&tips, 1, later), None, "ranked second, a turn later: its turn");
        assert_eq!(w.promotion_turn(&tips, 2, later), Some(turn), "ranked third: one more turn to wait");
        let moved: HashSet<ObjectId> =
            [ObjectId::from_hex(b"2222222222222222222222222222222222222222").unwrap()].into();
        assert_eq!(w.promotion_turn(&moved, 1, later), Some(turn), "a backlog that changed: the turns count again");
    }
}
