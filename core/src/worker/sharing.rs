//! Claiming beside other workers: which candidate jobs this worker picks
//! (its own share first, see [`super::share`]), when another's job is its
//! to take, and who the others are (their claims and registrations).

use super::claim::Candidate;
use super::pace::*;
use super::*;

impl Worker {
    /// Highest priority first, then oldest first; with contention, the
    /// jobs other claimers leave to us first (see [`share`]), and others'
    /// only from a `fresh` snapshot.
    pub(super) fn pick(
        &mut self,
        mut candidates: Vec<Candidate>,
        free: usize,
        sharers: &Sharers,
        fresh: bool,
    ) -> Vec<Candidate> {
        candidates.sort_by(|a, b| b.job.spec.priority.cmp(&a.job.spec.priority).then(a.queued.id.cmp(&b.queued.id)));
        // Ours oldest first, from anywhere in the queue; others' (once ours
        // run out) newest first, the farthest from where their owners take
        // theirs, and only from a fresh snapshot.
        let depth = share::Depth { own: candidates.len(), others: if fresh { candidates.len() } else { 0 } };
        let queue: Vec<(i32, &JobId)> = candidates.iter().map(|c| (c.job.spec.priority, &c.queued.id)).collect();
        let (overdue, held_back) = match fresh {
            true => {
                let front = claim_window(self.rounds.spread, sharers.rivals(), free, queue.len());
                self.waits(&queue, front, sharers)
            }
            false => Default::default(),
        };
        let chosen = share::choose(&queue, depth, free, sharers, &self.cfg.name, &overdue, &held_back);
        let mut slots: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
        chosen.into_iter().filter_map(|i| slots[i].take()).collect()
    }

    /// Of others' jobs in a fresh snapshot's `queue`, those overdue and
    /// those to leave alone yet. A job this worker ranks `r`-th on is left
    /// to the workers ranked before it for [`RANK_WAIT`] each (`r` − 1
    /// turns), counted from when this worker first saw it with none of its
    /// own left: the second-ranked helps the first at once, the others one
    /// after another, so that workers out of jobs of their own do not all
    /// race for the same few. A job at the front (its first `front` jobs)
    /// for [`stuck_after`] is overdue, anyone's (its first worker is not
    /// taking it), again one rank after another.
    pub(super) fn waits(
        &mut self,
        queue: &[(i32, &JobId)],
        front: usize,
        sharers: &Sharers,
    ) -> (HashSet<JobId>, HashSet<JobId>) {
        let now = Instant::now();
        let theirs: Vec<(usize, &JobId, usize)> = queue
            .iter()
            .enumerate()
            .map(|(i, (_, id))| (i, *id, sharers.rank(&self.cfg.name, id)))
            .filter(|&(_, _, rank)| rank > 0)
            .collect();
        let ids: HashSet<&JobId> = theirs.iter().map(|&(_, id, _)| id).collect();
        let at_front: HashSet<&JobId> = theirs.iter().filter(|&&(i, _, _)| i < front).map(|&(_, id, _)| id).collect();
        let rounds = &mut self.rounds;
        // The turns count from when this worker ran out of jobs of its own:
        // before, it helped no one, and all jobs left at the end of a
        // drain were seen long ago.
        if theirs.len() < queue.len() {
            rounds.seen_since.clear();
        }
        rounds.seen_since.retain(|id, _| ids.contains(id));
        rounds.front_since.retain(|id, _| at_front.contains(id));
        let stuck = stuck_after(&self.cfg);
        // In a crowded fleet, each other worker's next jobs (its first two
        // in the claim order): it takes them at its next claims, from a
        // snapshot maybe seconds old, so a helper racing it for those
        // mostly loses (at the end of a drain, where owners have one or two
        // left, nearly always), and a job helped with is a race its owner
        // loses later: a push and a fetch for nothing each time. While a
        // promotion is awaited (`rounds.promotion_in`), the others' jobs
        // are theirs alone.
        let leave = match (crowded(sharers), rounds.promotion_in.is_some()) {
            (false, _) => 0,
            (true, false) => OWNERS_NEXT,
            (true, true) => usize::MAX,
        };
        let mut ahead: HashMap<&str, usize> = HashMap::new();
        let owners_next: HashSet<&JobId> = queue
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| {
                let n = ahead.entry(sharers.owner(id)).or_default();
                *n += 1;
                *n <= leave
            })
            .collect();
        let (mut overdue, mut held_back) = (HashSet::new(), HashSet::new());
        for (i, id, rank) in theirs {
            let seen = now - *rounds.seen_since.entry(id.clone()).or_insert(now);
            let at_front = (i < front).then(|| now - *rounds.front_since.entry(id.clone()).or_insert(now));
            let turn = RANK_WAIT.saturating_mul(u32::try_from(rank - 1).unwrap_or(u32::MAX));
            // Overdue in turn too: rank by rank, not all workers at once.
            if at_front.is_some_and(|waited| waited >= stuck + turn) {
                overdue.insert(id.clone());
            } else if seen < turn || owners_next.contains(id) {
                held_back.insert(id.clone());
            }
        }
        (overdue, held_back)
    }

    /// Whether every job of `left` is another worker's (by `sharers`)
    /// that runs a job now, by the claims of `snap`: a worker busy with a
    /// job comes back for its next one.
    pub(super) fn owners_all_running(&self, snap: &Snapshot, left: &[JobId], sharers: &Sharers) -> bool {
        let running: HashSet<&str> = snap
            .claims
            .values()
            .filter_map(|oid| self.leases.claim_docs.get(oid)?.as_ref())
            .map(|claim| claim.worker.as_str())
            .collect();
        left.iter().all(|id| {
            let owner = sharers.owner(id);
            owner != self.cfg.name && running.contains(owner)
        })
    }

    /// Reads the other workers' registrations: at the first claim round,
    /// again a second later or after a lost race, then after a lost race
    /// at most every [`REGISTRATIONS_EVERY`]. A worker that has not claimed
    /// yet is named by no claim, and workers starting together would
    /// otherwise all claim the oldest jobs; they also register together,
    /// so the first read may miss some. `fetched`: the registrations came
    /// with the snapshot just read ([`Worker::sharers_due`] said to fetch
    /// them with it), else they are fetched here.
    pub(super) fn meet_sharers(&mut self, fetched: bool) {
        if !self.sharers_due() {
            return;
        }
        self.peers.reads += 1;
        self.peers.read_at = Some(Instant::now());
        self.peers.unsure = false;
        // Only a preference rides on it: a hub that cannot say is no error.
        let listed = match fetched {
            true => self.hub.list(refs::WORKERS),
            false => self.hub.refresh(&[refs::WORKERS]).and_then(|()| self.hub.list(refs::WORKERS)),
        };
        let Ok(registrations) = listed else {
            return;
        };
        let now = std::time::SystemTime::now();
        for (refname, blob) in registrations {
            let name = &refname[refs::WORKERS.len()..];
            let Some(info) = self.hub.read_blob(blob).ok().and_then(|b| crate::validate::worker_blob(&b, name).ok())
            else {
                continue;
            };
            let shares_a_queue = self.cfg.queues.is_empty() || self.cfg.queues.iter().any(|q| info.serves(q));
            if info.name != self.cfg.name && info.seen_lately(now) && shares_a_queue {
                self.peers.seen.insert(info.name, Instant::now());
            }
        }
    }

    /// Whether [`Worker::meet_sharers`] is to read the registrations now.
    pub(super) fn sharers_due(&self) -> bool {
        match self.peers.reads {
            0 => true,
            // Workers starting together register over a second or so:
            // the first read may miss the last of them.
            1 => self.peers.unsure || self.peers.read_at.is_some_and(|at| at.elapsed() >= Duration::from_secs(1)),
            _ => self.peers.unsure && self.peers.read_at.is_none_or(|at| at.elapsed() >= REGISTRATIONS_EVERY),
        }
    }

    /// The workers claiming beside us: those named by the claims of this
    /// snapshot that are not ours, and those seen so in the last
    /// [`SHARERS_KEPT_FOR`] (a snapshot reused for a while is missing the
    /// claims made since, and a worker between jobs holds none).
    pub(super) fn sharers(&mut self, snap: &Snapshot, read_at: Instant) -> Sharers {
        let hub = Arc::clone(&self.hub);
        for (id, oid) in &snap.claims {
            if self.active.contains_key(id) {
                continue;
            }
            let claim = self.leases.claim_docs.entry(*oid).or_insert_with(|| queue::read_claim(&*hub, *oid, id));
            if let Some(claim) = claim
                && claim.worker != self.cfg.name
            {
                let seen = self.peers.seen.entry(claim.worker.clone()).or_insert(read_at);
                *seen = (*seen).max(read_at);
            }
        }
        self.peers.seen.retain(|_, seen| seen.elapsed() < SHARERS_KEPT_FOR);
        Sharers::new(&self.cfg.name, self.peers.seen.keys().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn worker(dir: &std::path::Path) -> Worker {
        let hub_path = dir.join("hub.git");
        gix::init_bare(&hub_path).unwrap();
        let hub: Arc<dyn Hub> = Arc::new(crate::hub::LocalHub::open(&hub_path).unwrap());
        Worker::new(hub, Config::new("w0".to_owned(), dir.join("work")), |_| {})
    }

    fn ids(n: usize) -> Vec<JobId> {
        (0..n).map(|i| JobId::new(UNIX_EPOCH + Duration::from_secs(1_796_000_000), &i.to_le_bytes())).collect()
    }

    /// The jobs `w0` ranks second on (others' it would help with at once),
    /// and which of them `waits` holds back.
    fn second_ranked_held(names: usize) -> (Vec<(JobId, bool, usize)>, Sharers) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = worker(dir.path());
        let others: Vec<String> = (1..names).map(|i| format!("w{i}")).collect();
        let sharers = Sharers::new("w0", others.iter().map(String::as_str));
        let jobs = ids(200);
        let queue: Vec<(i32, &JobId)> = jobs.iter().map(|id| (0, id)).collect();
        let (_, held) = w.waits(&queue, queue.len(), &sharers);
        // Where each job stands among its owner's, in the claim order.
        let mut ahead: HashMap<&str, usize> = HashMap::new();
        let seconds = jobs
            .iter()
            .map(|id| {
                let n = ahead.entry(sharers.owner(id)).or_default();
                *n += 1;
                (id.clone(), held.contains(id), *n)
            })
            .filter(|(id, _, _)| sharers.rank("w0", id) == 1)
            .collect();
        (seconds, sharers)
    }

    /// In a crowded fleet a helper leaves each owner its next two jobs,
    /// which it would mostly lose the race for, and helps with the rest at
    /// once; in a small fleet it helps with any of them at once.
    #[test]
    fn a_crowded_fleet_leaves_each_worker_its_next_jobs() {
        let (seconds, sharers) = second_ranked_held(CROWDED_AFTER + 2);
        assert!(crowded(&sharers));
        assert!(seconds.iter().any(|(_, _, nth)| *nth <= OWNERS_NEXT), "no owner's next job to check");
        assert!(seconds.iter().any(|(_, _, nth)| *nth > OWNERS_NEXT), "no later job to check");
        for (id, held, nth) in &seconds {
            assert_eq!(*held, *nth <= OWNERS_NEXT, "{id}, its owner's job {nth}");
        }
        let (seconds, sharers) = second_ranked_held(4);
        assert!(!crowded(&sharers));
        assert!(seconds.iter().all(|(_, held, _)| !held), "a small fleet held some back: {seconds:?}");
    }

    /// A `once` worker leaves the jobs it holds back to their owners only
    /// while each of those owners runs a job (a claim of theirs is in the
    /// snapshot): an owner that runs nothing may be gone.
    #[test]
    fn a_job_is_left_to_its_owner_only_while_the_owner_runs_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = worker(dir.path());
        let sharers = Sharers::new("w0", ["w1", "w2"]);
        let jobs = ids(30);
        let of = |name: &str| jobs.iter().find(|id| sharers.owner(id) == name).unwrap().clone();
        let (w1_job, w2_job) = (of("w1"), of("w2"));
        let mut snap = Snapshot { queued: vec![], claims: HashMap::new(), cancels: HashMap::new(), backlogs: vec![] };
        let running = ids(31).pop().unwrap();
        let claim_oid = ObjectId::from_hex(b"3333333333333333333333333333333333333333").unwrap();
        snap.claims.insert(running.clone(), claim_oid);
        w.leases.claim_docs.insert(claim_oid, Some(Claim::new(&running, "w1", 1, Duration::from_secs(60))));
        assert!(w.owners_all_running(&snap, std::slice::from_ref(&w1_job), &sharers), "w1 runs a job");
        assert!(!w.owners_all_running(&snap, &[w1_job, w2_job], &sharers), "w2 runs none: maybe gone");
        let own = of("w0");
        assert!(!w.owners_all_running(&snap, &[own], &sharers), "our own job is never left");
    }
}
