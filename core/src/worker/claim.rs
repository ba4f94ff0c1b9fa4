//! Claim rounds: reading the queue, picking the jobs this worker should
//! take (shared out with the others, see [`super::share`]), claiming them
//! in one push that also carries the publish, and starting them.

use super::pace::*;
use super::*;

/// What claim rounds carry from one to the next.
pub(super) struct Rounds {
    /// The last claim round left eligible jobs unclaimed: the next one is
    /// likely to claim, so publishing rides along with it.
    pub(super) busy: bool,
    /// How many of the first eligible jobs we pick among; grows with lost races.
    pub(super) spread: usize,
    /// The unclaimed rest of the last snapshot, for the next round.
    pub(super) leftover: Option<Leftover>,
    /// Others' jobs at the front of the queue, by when first seen there.
    pub(super) front_since: HashMap<JobId, Instant>,
    /// Others' jobs anywhere in the queue, by when first seen there since
    /// this worker ran out of its own.
    pub(super) seen_since: HashMap<JobId, Instant>,
    /// Keyed by the ref's job id too: a document is checked against its ref.
    pub(super) job_docs: HashMap<(JobId, ObjectId), JobDoc>,
    /// The poll interval now: `cfg.poll`, stretched while idle.
    pub(super) idle_poll: Duration,
    /// Since when the looks at the queue found nothing this worker could
    /// claim; `None` while they find work or it runs some. A quiet worker
    /// looks at the hub's refs before it fetches ([`Snapshot::read_if_changed`]).
    pub(super) quiet_since: Option<Instant>,
    /// Backlogs (by value) that held no job this worker can run when it
    /// last looked: not read again until they change.
    pub(super) unrunnable_backlogs: HashSet<ObjectId>,
    /// The priority of the job heading each backlog (by value), when this
    /// worker can run it: whether parked work outranks the queue's.
    pub(super) backlog_heads: HashMap<ObjectId, Option<i32>>,
    /// The backlogs a promotion waits on, and since when they have stood
    /// so ([`Worker::promotion_turn`]).
    pub(super) low_since: Option<(HashSet<ObjectId>, Instant)>,
    /// This round left a promotion to workers ranked before this one, and
    /// how long until its own turn: until then it takes none of the
    /// others' jobs, and looks again only then.
    pub(super) promotion_in: Option<Duration>,
    /// The next look at the queue, when a round said (`saw_work` takes it).
    pub(super) look_again: Option<Duration>,
}

impl Rounds {
    pub(super) fn new(cfg: &Config) -> Rounds {
        Rounds {
            busy: false,
            spread: 1,
            leftover: None,
            front_since: HashMap::new(),
            seen_since: HashMap::new(),
            job_docs: HashMap::new(),
            idle_poll: cfg.poll,
            quiet_since: None,
            unrunnable_backlogs: HashSet::new(),
            backlog_heads: HashMap::new(),
            low_since: None,
            promotion_in: None,
            look_again: None,
        }
    }

    /// After a turn of the loop that saw work (jobs to claim, or running)
    /// or not: the next poll interval.
    pub(super) fn saw_work(&mut self, cfg: &Config, work: bool) {
        self.quiet_since = if work { None } else { Some(self.quiet_since.unwrap_or_else(Instant::now)) };
        self.idle_poll = next_idle_poll(self.idle_poll, cfg, self.quiet_since.map(|t| t.elapsed()));
        if let Some(wait) = self.look_again.take().filter(|_| work) {
            self.idle_poll = wait.clamp(cfg.poll, cfg.idle_poll());
        }
    }
}

/// A queued document: the job and its bytes, or why it is unusable and its bytes.
pub(super) type JobDoc = Result<(Job, Vec<u8>), (String, Vec<u8>)>;

/// What one look at the queue found.
pub(super) struct Round {
    pub(super) eligible: usize,
    pub(super) retry_now: bool,
}

/// A job we may claim: fresh, or a steal of a claim expired on our clock.
#[derive(Clone)]
pub(super) struct Candidate {
    pub(super) queued: Queued,
    pub(super) job: Job,
    pub(super) json: Vec<u8>,
    pub(super) steal: Option<(ObjectId, Claim)>,
}

/// A claim round's snapshot, carried to its batch.
pub(super) struct Batch {
    pub(super) snap: Snapshot,
    /// Jobs of the snapshot not to claim: ours already, or lost to others.
    pub(super) taken: HashSet<JobId>,
    pub(super) read_at: Instant,
    /// How many jobs of the snapshot we could have claimed.
    pub(super) eligible: usize,
}

/// The rest of the last snapshot, for the next claim round.
pub(super) struct Leftover {
    pub(super) read_at: Instant,
    pub(super) snap: Snapshot,
    /// Jobs this worker claimed since, or lost to others: they are in the
    /// snapshot still.
    pub(super) taken: HashSet<JobId>,
}

impl Worker {
    pub(super) fn claim_round(&mut self, free: usize) -> Result<Round, HubError> {
        let reuse_for = reuse_snapshot_for(&*self.hub, &self.cfg);
        // A read of the registrations that is due (a worker starting, or
        // one that lost a race to a worker it did not know) comes first.
        let fresh_due = self.sharers_due();
        if let Some(left) = self.rounds.leftover.take().filter(|l| l.read_at.elapsed() < reuse_for && !fresh_due) {
            let round = self.claim_from(left.snap, left.taken, left.read_at, free, false)?;
            if round.eligible > 0 {
                return Ok(round);
            }
        }
        let read_at = Instant::now();
        // While there is work, something surely changed: fetch at once.
        // Else a look at the refs first, which an idle hub answers cheaply.
        // The registrations, when due, come in the same fetch.
        let meet = fresh_due && self.rounds.quiet_since.is_none();
        let snap = match self.rounds.quiet_since {
            None => Snapshot::read_with(&*self.hub, &self.cfg.queues, if meet { &[refs::WORKERS] } else { &[] })?,
            Some(_) => Snapshot::read_if_changed(&*self.hub, &self.cfg.queues)?.0,
        };
        self.meet_sharers(meet);
        self.claim_from(snap, HashSet::new(), read_at, free, true)
    }

    /// One claim round on `snap`. A `fresh` snapshot was just read: it also
    /// tells of cancels and foreign claims (the lease clock for steals);
    /// an older one is used for plain claims only.
    pub(super) fn claim_from(
        &mut self,
        snap: Snapshot,
        taken: HashSet<JobId>,
        read_at: Instant,
        free: usize,
        fresh: bool,
    ) -> Result<Round, HubError> {
        if fresh {
            self.hub_ok();
            // The snapshot holds the cancel requests too: no separate look
            // at them until a poll interval from now.
            self.leases.next_cancel_check = Instant::now() + cancel_check_every(&self.cfg);
            self.notice_cancels(&snap.cancels);
            self.track_claims(&snap);
            let queued: HashSet<(&JobId, ObjectId)> = snap.queued.iter().map(|q| (&q.id, q.value)).collect();
            self.rounds.job_docs.retain(|(id, blob), _| queued.contains(&(id, *blob)));
        }
        let mut candidates = Vec::new();
        let mut retry_now = false;
        let mine: Vec<&Queued> = snap
            .queued
            .iter()
            .filter(|q| self.cfg.serves(&q.queue) && !self.active.contains_key(&q.id) && !taken.contains(&q.id))
            .filter(|q| fresh || !snap.claims.contains_key(&q.id))
            .collect();
        for q in mine {
            if self.cfg.only.as_ref().is_some_and(|only| !only.contains(&q.id)) {
                continue;
            }
            if self.publishing.queue.iter().any(|p| p.entry.id == q.id) {
                continue;
            }
            let doc = self.job_doc(q);
            let (job, json) = match doc {
                Ok(ok) => ok,
                Err(_) if !fresh => continue,
                Err((reason, raw)) => {
                    self.poisoned(q, &snap, reason, raw)?;
                    retry_now = true;
                    continue;
                }
            };
            if !self.cfg.can_run(&job) {
                continue;
            }
            // A job waiting for the jobs it needs is not claimable: its
            // queue ref holds the waiting tree, not its blob.
            if !job.needs.is_empty() && q.is_waiting(&*self.hub) {
                continue;
            }
            let steal = match snap.claims.get(&q.id) {
                None => None,
                Some(c) => match self.expired_claim(&q.id, *c) {
                    Some(claim) if claim.attempt >= job.spec.max_attempts => {
                        self.exhausted(q, &job, json, *c, &claim);
                        retry_now = true;
                        continue;
                    }
                    Some(claim) => Some((*c, claim)),
                    None => continue,
                },
            };
            candidates.push(Candidate { queued: q.clone(), job, json, steal });
        }
        let claimable: Vec<(i32, &JobId)> =
            candidates.iter().filter(|c| c.steal.is_none()).map(|c| (c.job.spec.priority, &c.queued.id)).collect();
        // Who claims beside us: for whether to promote, and what to pick.
        let sharers = self.sharers(&snap, read_at);
        self.rounds.promotion_in = None;
        if let Some(round) = self.promote_if_low(&snap, &claimable, &sharers, fresh)? {
            return Ok(round);
        }
        let eligible = candidates.len();
        self.rounds.busy = eligible > free;
        if eligible == 0 {
            // Nothing to claim with it: publish alone (after an old
            // snapshot, a fresh one is read first).
            if fresh && self.publish_due() {
                retry_now |= self.publish_leaving();
            }
            return Ok(Round { eligible, retry_now });
        }
        // What a `once` worker may leave to others, should it pick none.
        let left_ids: Vec<JobId> = match self.cfg.once {
            true => candidates.iter().map(|c| c.queued.id.clone()).collect(),
            false => Vec::new(),
        };
        let picked = self.pick(candidates, free, &sharers, fresh);
        if picked.is_empty() && !fresh {
            // An old snapshot with none of our jobs left: the others' it
            // shows are likely taken since. Read afresh, at once, before
            // helping out (a poll's wait here was a fifth of a second idle
            // every time a worker's share of a snapshot ran out).
            return Ok(Round { eligible: 0, retry_now: true });
        }
        if picked.is_empty() {
            // Nothing to take now: the rest is left to the workers ranked
            // before us for a while. What is finished goes at once, alone,
            // rather than wait for a claim that is not coming; the next look
            // comes a turn later, or when this worker's turn to promote
            // comes if it waits for another's promotion. A `once` worker
            // stays for it only then, or if a job it left is a worker's
            // that runs nothing now (gone since, maybe, and then the job is
            // this one's when its turn comes); else their workers are there
            // to take them, and it leaves.
            self.rounds.busy = false;
            let awaiting = self.rounds.promotion_in;
            if self.cfg.once && awaiting.is_none() && self.owners_all_running(&snap, &left_ids, &sharers) {
                if self.publish_due() {
                    retry_now |= self.publish_leaving();
                }
                return Ok(Round { eligible: 0, retry_now });
            }
            if self.publish_due() {
                retry_now |= self.publish();
            }
            self.rounds.look_again = Some(awaiting.unwrap_or(RANK_WAIT));
            return Ok(Round { eligible, retry_now });
        }
        let batch = Batch { snap, taken, read_at, eligible };
        self.claim_batch(picked, batch)
    }

    /// Claims `picked` in one push that also publishes what is finished.
    /// A job of the batch taken by another worker meanwhile fails the
    /// whole push; the porcelain says which, so the rest is pushed again
    /// at once without it, a few times, before the publish goes alone.
    /// A registration refresh that is due rides along (see
    /// [`registry::Registration::ride`]).
    pub(super) fn claim_batch(&mut self, picked: Vec<Candidate>, batch: Batch) -> Result<Round, HubError> {
        let running = self.active.keys().chain(picked.iter().map(|c| &c.queued.id)).cloned().collect();
        // A document that cannot be written: the refresh goes alone later.
        let ride = self.registration.ride(&*self.hub, running).ok().flatten();
        let round = self.claim_pushes(picked, batch, ride);
        // Unless the push went (`rode(true)` then), the refresh stays due.
        self.registration.rode(false);
        round
    }

    fn claim_pushes(
        &mut self,
        mut picked: Vec<Candidate>,
        mut batch: Batch,
        ride: Option<RefEdit>,
    ) -> Result<Round, HubError> {
        let eligible = batch.eligible;
        // A publish that cannot even be written (a full disk) must not stop
        // the claims: they go alone (`publish_edits` deals with it).
        let publishing = match self.publish_due() {
            false => None,
            true => self.publish_edits().ok(),
        };
        let (append, also) = publishing.unzip();
        let mut also = also.unwrap_or_default();
        let publish_refs: HashSet<String> = also.iter().map(|e| e.name.clone()).collect();
        also.extend(ride);
        let mut lost_here = 0;
        for attempt in 0.. {
            let requests = self.claim_requests(&picked);
            let plan = queue::plan_claims(&*self.hub, &requests, also.clone())?;
            let e = match self.hub.transact(&plan.edits) {
                Ok(()) => {
                    self.registration.rode(true);
                    let won = plan.won;
                    if let Some(append) = &append {
                        self.on_published(append);
                    }
                    self.rounds.spread = (self.rounds.spread.saturating_sub(1)).max(1);
                    let claimed = picked.len();
                    for ((c, req), won) in picked.into_iter().zip(requests).zip(won) {
                        batch.taken.insert(c.queued.id.clone());
                        self.start(c, req.claim, won);
                    }
                    if eligible > claimed + lost_here {
                        let Batch { snap, taken, read_at, .. } = batch;
                        self.rounds.leftover = Some(Leftover { read_at, snap, taken });
                    }
                    return Ok(Round { eligible, retry_now: true });
                }
                Err(e) => e,
            };
            match e {
                e @ HubError::Partial { .. } => {
                    let registered = e.applied().iter().any(|r| r == self.registration.refname());
                    self.registration.rode(registered);
                    if let Some(append) = &append {
                        self.published_in_part(append, e.applied());
                    }
                    // The claims that went are ours: run those jobs.
                    for (c, req) in picked.into_iter().zip(requests) {
                        let name = refs::claim(&c.queued.id);
                        if e.applied().contains(&name)
                            && let Some(claim) = self.hub.get(&name)?
                            && let Some(queue_value) = self.hub.get(&req.queue_ref)?
                        {
                            self.start(c, req.claim, queue::Won { claim, queue_value });
                        }
                    }
                    self.hub_failed(e);
                    return Ok(Round { eligible, retry_now: false });
                }
                e @ HubError::Conflict { .. } if e.lost().contains(&self.registration.refname()) => {
                    // Only a process under our name moves it: the refresh
                    // alone sorts that out (`Registration::refresh`), and
                    // the claim goes next round without it.
                    self.registration.rode(false);
                    self.refresh_registration();
                    return Ok(Round { eligible, retry_now: true });
                }
                e @ HubError::Conflict { .. } if publish_refs.contains(e.refname()) => {
                    // The publish lost (a cancel overtook a job, gc moved the
                    // chain), so nothing was claimed either: sort the
                    // publish out; the claim is tried again after.
                    let append = append.expect("publish refs come with a publish");
                    self.publish_failed(e, &append);
                    return Ok(Round { eligible, retry_now: true });
                }
                e if e.is_conflict() => {
                    self.peers.unsure = true;
                    self.summary.lost_races += 1;
                    self.rounds.spread = (self.rounds.spread * 2).min(16);
                    // Every job of the batch the hub said was taken.
                    let lost: Vec<JobId> = e
                        .lost()
                        .into_iter()
                        .filter_map(|r| {
                            refs::job_id_under(r, refs::CLAIMS).or_else(|| refs::parse_queue_ref(r).map(|(_, id)| id))
                        })
                        .collect();
                    for id in &lost {
                        self.emit(Event::LostRace { id: id.clone() });
                        picked.retain(|c| &c.queued.id != id);
                        // Not ours to claim again from this snapshot.
                        batch.taken.insert(id.clone());
                        lost_here += 1;
                    }
                    if lost.is_empty() || picked.is_empty() || attempt == BATCH_RETRIES {
                        // The claim lost, so nothing was published either.
                        // With jobs left in the snapshot, the publish rides
                        // on the next claim from it, at once: still one
                        // push a job. Else it goes alone.
                        let publish_lost = e.lost().iter().any(|r| publish_refs.contains(*r));
                        let left = eligible > lost_here && !lost.is_empty() && !publish_lost;
                        if left {
                            let Batch { snap, taken, read_at, .. } = batch;
                            self.rounds.leftover = Some(Leftover { read_at, snap, taken });
                        } else if append.is_some() {
                            self.publish();
                        }
                        return Ok(Round { eligible, retry_now: true });
                    }
                }
                e if e.declined_by_hook() && append.is_some() => {
                    // The guard refused the push, maybe for the publish it
                    // carried: the publish alone says (and a publish it
                    // refuses for good ends, see `publish_refused`).
                    self.publish();
                    return Ok(Round { eligible, retry_now: true });
                }
                e => {
                    // The answer may be lost with the push applied (a
                    // connection cut after the hub took it): our claims,
                    // unique by their nonce, tell.
                    if let Some(round) =
                        self.claimed_unanswered(&picked, &requests, &plan.won, append.as_ref(), eligible)
                    {
                        return Ok(round);
                    }
                    return Err(e);
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// After a claim push whose outcome is unknown, reads the claims back:
    /// if they are ours the whole transaction went (it is atomic), so its
    /// jobs run and its publish is done. `None` when it did not go, or the
    /// hub cannot be read either.
    pub(super) fn claimed_unanswered(
        &mut self,
        picked: &[Candidate],
        requests: &[ClaimRequest],
        won: &[queue::Won],
        append: Option<&Append>,
        eligible: usize,
    ) -> Option<Round> {
        let first = refs::claim(&requests.first()?.claim.job);
        self.hub.refresh(&[refs::CLAIMS]).ok()?;
        if self.hub.get(&first).ok()?? != won.first()?.claim {
            return None;
        }
        self.registration.rode(true);
        if let Some(append) = append {
            self.on_published(append);
        }
        for ((c, req), won) in picked.iter().zip(requests).zip(won) {
            self.start(c.clone(), req.claim.clone(), *won);
        }
        Some(Round { eligible, retry_now: true })
    }

    /// A claim of each of `picked`: a fresh one, or a steal of an expired claim.
    pub(super) fn claim_requests(&self, picked: &[Candidate]) -> Vec<ClaimRequest> {
        let repo = self.hub.repo();
        picked
            .iter()
            .map(|c| {
                let attempt = c.steal.as_ref().map_or(c.job.attempt, |(_, old)| old.attempt + 1);
                ClaimRequest {
                    claim: Claim::new(&c.queued.id, &self.cfg.name, attempt, self.cfg.lease),
                    steal: c.steal.as_ref().map(|(oid, _)| *oid),
                    queue_ref: refs::queue(&c.queued.queue, &c.queued.id),
                    queue_value: c.queued.value,
                    job_blob: crate::claimed::blob_id(&repo, &c.json),
                }
            })
            .collect()
    }

    pub(super) fn start(&mut self, c: Candidate, claim: Claim, won: queue::Won) {
        self.summary.claims += 1;
        self.registration.soon();
        let id = c.queued.id.clone();
        let mut job = c.job;
        job.attempt = claim.attempt;
        self.emit(Event::Claimed { job: Box::new(job.clone()), attempt: claim.attempt });
        let cache_key = (!job.tree.is_empty()).then(|| job.spec.definition_key(&job.tree));
        self.active.insert(
            id.clone(),
            Active {
                job: job.clone(),
                queue_value: won.queue_value,
                claim: claim.clone(),
                claim_blob: won.claim,
                interrupter: None,
                log_path: None,
                cancel_seen: None,
                stolen: false,
            },
        );
        let assignment = Assignment { job, job_json: c.json, attempt: claim.attempt, cache_key };
        let (started_tx, done_tx) = (self.tx.clone(), self.tx.clone());
        execute::spawn(
            Arc::clone(&self.hub),
            Arc::clone(&self.cfg),
            assignment,
            move |i, log| {
                let _ = started_tx.send(Wake::Started(id, i, log));
            },
            move |ran| {
                let _ = done_tx.send(Wake::Ran(Box::new(ran)));
            },
        );
        // The first claim held starts the heartbeat clock afresh: the clock
        // of an idle worker ran out long ago, and renewed this claim at
        // once, a transaction (over the network, a push) for nothing.
        let renew_at = Instant::now() + self.cfg.lease / 3;
        let held_before = self.active.len() > 1 || self.publishing.queue.iter().any(|p| p.claim.is_some());
        self.leases.next_heartbeat = if held_before { self.leases.next_heartbeat.min(renew_at) } else { renew_at };
        // So does the first job running for the cancel clock: a cancel
        // request for a job can only come after its claim (a pending job's
        // cancel publishes it, and the claim fails), so a look now would
        // find none. Jobs shorter than a look's interval cost none.
        if self.active.len() == 1 {
            self.leases.next_cancel_check = Instant::now() + cancel_check_every(&self.cfg);
        }
    }
}
