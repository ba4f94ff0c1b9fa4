//! Holding claims: heartbeats that renew every claim we hold (running and
//! finished-but-unpublished jobs), the watch on others' claims that tells
//! when one expired, and cancel requests.

use super::*;

/// How often a worker running jobs looks for cancel requests when no claim
/// round does: every idle poll, but not more than once a second (each look
/// is a fetch; a cancel a second late is still prompt).
pub(super) fn cancel_check_every(cfg: &Config) -> Duration {
    cfg.idle_poll().max(Duration::from_secs(1))
}

/// The clocks of our claims and the claims of others we watch.
pub(super) struct Leases {
    /// Claims of others as first seen unchanged, on our monotonic clock.
    pub(super) watched: HashMap<JobId, (ObjectId, Instant)>,
    /// Claim documents read, by blob (`None`: unreadable).
    pub(super) claim_docs: HashMap<ObjectId, Option<Claim>>,
    pub(super) next_heartbeat: Instant,
    pub(super) next_cancel_check: Instant,
}

impl Leases {
    pub(super) fn new(cfg: &Config) -> Leases {
        Leases {
            watched: HashMap::new(),
            claim_docs: HashMap::new(),
            next_heartbeat: Instant::now() + cfg.lease / 3,
            next_cancel_check: Instant::now() + cancel_check_every(cfg),
        }
    }
}

impl Worker {
    /// Our claims to renew: running jobs', and finished ones' not yet
    /// published.
    pub(super) fn claims_held(&self) -> Vec<(ObjectId, Claim)> {
        let running = self.active.values().filter(|a| !a.stolen).map(|a| (a.claim_blob, a.claim.renewed()));
        let finished = self.publishing.queue.iter().filter(|p| !p.released).filter_map(|p| {
            let claim = p.claim.as_ref()?;
            Some((p.release.claim?, claim.renewed()))
        });
        running.chain(finished).collect()
    }

    /// `blob` holds our renewed `claim` now.
    pub(super) fn renewed(&mut self, claim: Claim, blob: ObjectId) {
        if let Some(a) = self.active.get_mut(&claim.job) {
            a.claim = claim;
            a.claim_blob = blob;
        } else if let Some(p) = self.publishing.queue.iter_mut().find(|p| p.entry.id == claim.job) {
            p.release.claim = Some(blob);
            p.claim = Some(claim);
        }
    }

    pub(super) fn heartbeat(&mut self) {
        let renewals = self.claims_held();
        match queue::heartbeat(&*self.hub, &renewals) {
            Ok(blobs) => {
                self.hub_ok();
                for ((_, claim), blob) in renewals.into_iter().zip(blobs) {
                    self.renewed(claim, blob);
                }
                self.leases.next_heartbeat = Instant::now() + self.cfg.lease / 3;
            }
            Err(e @ HubError::Partial { .. }) => {
                // The renewals that went keep their jobs; the rest are tried
                // again soon, their old claims still being ours.
                for (_, claim) in renewals {
                    let name = refs::claim(&claim.job);
                    let renewed = e.applied().contains(&name).then(|| self.hub.get(&name).ok().flatten()).flatten();
                    if let Some(blob) = renewed {
                        self.renewed(claim, blob);
                    }
                }
                self.hub_failed(e);
                self.leases.next_heartbeat = Instant::now() + self.cfg.lease / 12;
            }
            Err(e) if e.is_conflict() => {
                // Some claim is no longer ours: find which, stop those jobs.
                match self.hub.refresh(&[refs::CLAIMS]).and_then(|()| self.hub.list(refs::CLAIMS)) {
                    Ok(claims) => {
                        let claims: HashMap<String, ObjectId> = claims.into_iter().collect();
                        for (id, a) in self.active.iter_mut() {
                            if claims.get(&refs::claim(id)) != Some(&a.claim_blob) && !a.stolen {
                                a.stolen = true;
                                if let Some(i) = &a.interrupter {
                                    i.send(Interrupt::Stolen);
                                }
                            }
                        }
                        // A finished job's lost claim: its publish will
                        // find it taken (`reconcile`); renew it no more.
                        for p in self.publishing.queue.iter_mut() {
                            if claims.get(&refs::claim(&p.entry.id)) != p.release.claim.as_ref() {
                                p.claim = None;
                            }
                        }
                    }
                    Err(e) => self.hub_failed(e),
                }
            }
            Err(e) => {
                self.hub_failed(e);
                self.leases.next_heartbeat = Instant::now() + self.cfg.lease / 12;
            }
        }
    }

    /// Looks for cancel requests when no claim round does, at most once
    /// per poll interval (on a remote hub each look is a fetch).
    pub(super) fn check_cancels(&mut self) -> Result<(), HubError> {
        if Instant::now() < self.leases.next_cancel_check {
            return Ok(());
        }
        self.leases.next_cancel_check = Instant::now() + cancel_check_every(&self.cfg);
        self.hub.refresh(&[refs::CANCEL])?;
        let cancels = self.hub.list(refs::CANCEL)?;
        let by_id =
            cancels.into_iter().filter_map(|(n, oid)| Some((refs::job_id_under(&n, refs::CANCEL)?, oid))).collect();
        self.notice_cancels(&by_id);
        Ok(())
    }

    pub(super) fn notice_cancels(&mut self, cancels: &HashMap<JobId, ObjectId>) {
        for (id, a) in self.active.iter_mut() {
            if let Some(c) = cancels.get(id).filter(|_| a.cancel_seen.is_none()) {
                a.cancel_seen = Some(*c);
                if let Some(i) = &a.interrupter {
                    i.send(Interrupt::Cancel("cancelled by git ci cancel".into()));
                }
            }
        }
    }

    /// Remembers when each foreign claim was first seen in its current form.
    pub(super) fn track_claims(&mut self, snap: &Snapshot) {
        self.leases.watched.retain(|id, (oid, _)| snap.claims.get(id) == Some(oid));
        for (id, oid) in &snap.claims {
            if !self.active.contains_key(id) {
                self.leases.watched.entry(id.clone()).or_insert((*oid, Instant::now()));
            }
        }
        self.leases.claim_docs.retain(|oid, _| snap.claims.values().any(|c| c == oid));
    }

    /// The claim, if it has sat unchanged for a whole lease on our clock.
    pub(super) fn expired_claim(&mut self, id: &JobId, oid: ObjectId) -> Option<Claim> {
        let (_, since) = self.leases.watched.get(id)?;
        let since = *since;
        let hub = Arc::clone(&self.hub);
        let claim = self.leases.claim_docs.entry(oid).or_insert_with(|| queue::read_claim(&*hub, oid, id)).clone();
        // A claim we cannot read holds no lease worth respecting past ours.
        let lease = claim.as_ref().map_or(self.cfg.lease, Claim::lease);
        if since.elapsed() < lease {
            return None;
        }
        Some(claim.unwrap_or_else(|| Claim::new(id, "unknown", 1, lease)))
    }
}
