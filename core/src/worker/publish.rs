//! Publishing finished jobs: one transaction for everything finished (or
//! riding in a claim push), and sorting out what the hub says when it lost:
//! a race (reconcile), a part applied, a refusal (see [`super::unpublishable`]).

use super::*;

/// How long a finished job's publish waits on a remote hub for others
/// running beside it to finish and share its push (a push costs ~50–100 ms;
/// a local hub's transaction ~0.2 ms, so there it does not wait).
pub(super) const PUBLISH_LINGER: Duration = Duration::from_millis(50);

/// The longest a result whose objects could not be written waits before
/// it is tried again.
const UNWRITABLE_WAIT_MAX: Duration = Duration::from_secs(60);

/// Finished jobs on their way to the hub.
pub(super) struct Publishing {
    /// In the order they finished, but for a retried one put back in front.
    pub(super) queue: Vec<Unpublished>,
    /// How many of `queue`, from the front, the publish being pushed holds.
    pub(super) in_flight: usize,
    /// The hub's guard refused a publish of several jobs: publish them one
    /// at a time until none is left, to learn which one it refuses.
    pub(super) alone: bool,
    /// How long a result may wait for others to share its publish.
    pub(super) linger: Duration,
}

impl Publishing {
    pub(super) fn new(linger: Duration) -> Publishing {
        Publishing { queue: Vec::new(), in_flight: 0, alone: false, linger }
    }
}

/// A finished job waiting for its publishing transaction.
pub(super) struct Unpublished {
    pub(super) job: Option<Job>,
    pub(super) entry: Entry,
    pub(super) release: Release,
    /// The hub applied the release in a publish it took only in part: the
    /// job's live refs are gone (so it is ours to publish, no one else's),
    /// its result is still to go.
    pub(super) released: bool,
    /// When it was ready to publish.
    pub(super) at: Instant,
    /// The hub's guard refused its result once: it is now the `error`
    /// result that fits ([`unpublishable`]).
    pub(super) refused: bool,
    /// Our claim on it, renewed by heartbeats until it is published: a
    /// publish held up past the lease must not let another worker run the
    /// job again. `None` for a job we did not claim (published unrun), or
    /// whose claim we lost.
    pub(super) claim: Option<Claim>,
    /// Its objects could not be written (a full cache disk) this many
    /// times in a row; it waits until `retry_at`, behind the others.
    pub(super) unwritable: u32,
    pub(super) retry_at: Option<Instant>,
    pub(super) _workdir: Option<tempfile::TempDir>,
}

impl Worker {
    pub(super) fn ran(&mut self, mut ran: Ran) {
        self.take_service(&mut ran);
        let id = ran.entry.id.clone();
        let Some(active) = self.active.remove(&id) else {
            return;
        };
        let live_tail = self.live_logs.take(&id);
        self.registration.soon();
        if ran.stolen || active.stolen {
            self.drop_live_log(&id, live_tail);
            self.emit(Event::Stolen { id });
            return;
        }
        let cancel = active.cancel_seen.filter(|c| !c.is_null());
        let release = Release {
            queue_ref: refs::queue(&active.job.spec.queue, &id),
            queue_value: active.queue_value,
            pin: ObjectId::from_hex(active.job.commit.as_bytes()).ok(),
            claim: Some(active.claim_blob),
            cancel,
            log: live_tail,
        };
        let workdir = ran.workdir;
        self.publishing.queue.push(Unpublished {
            claim: Some(active.claim),
            job: Some(active.job),
            entry: ran.entry,
            release,
            released: false,
            at: Instant::now(),
            refused: false,
            unwritable: 0,
            retry_at: None,
            _workdir: workdir,
        });
    }

    /// One transaction for everything finished; returns whether to go again at once.
    pub(super) fn publish(&mut self) -> bool {
        self.publish_and(None)
    }

    /// The last publish of a `once` worker that found nothing more to
    /// claim: it carries the registration's removal too, the push the
    /// worker would make as it leaves (16 workers leaving a drained queue
    /// made 16 pushes while the last jobs' claims waited behind them).
    /// Not with live instances: those are stopped before the registration
    /// that lists them goes (docs/instances.md).
    pub(super) fn publish_leaving(&mut self) -> bool {
        let leaving = self.cfg.once && self.active.is_empty() && self.instances.next().is_none();
        self.publish_and(self.registration.removal().filter(|_| leaving))
    }

    fn publish_and(&mut self, also: Option<RefEdit>) -> bool {
        let riding = also.is_some();
        match self.publish_edits() {
            Ok((append, mut edits)) => match self.hub.transact({
                edits.extend(also);
                &edits
            }) {
                Ok(()) => {
                    self.on_published(&append);
                    if riding {
                        self.registration.rode_out();
                    }
                    false
                }
                Err(e) => self.publish_failed(e, &append),
            },
            // Already dealt with, result by result (`unwritable`): no
            // backoff of the whole worker, whose claims may go on.
            Err(HubError::Local { .. }) => self.publish_due(),
            Err(e) => {
                self.hub_failed(e);
                false
            }
        }
    }

    /// Whether a publish has a result to carry now.
    pub(super) fn publish_due(&self) -> bool {
        let now = Instant::now();
        self.publishing.queue.iter().any(|p| p.retry_at.is_none_or(|t| t <= now))
    }

    /// The objects and ref edits that publish everything finished.
    pub(super) fn publish_edits(&mut self) -> Result<(Append, Vec<RefEdit>), HubError> {
        let now = Instant::now();
        // Results waiting out a failure go behind the others (a stable sort).
        self.publishing.queue.sort_by_key(|p| p.retry_at.is_some_and(|t| t > now));
        let due = self.publishing.queue.iter().take_while(|p| p.retry_at.is_none_or(|t| t <= now)).count();
        self.publishing.in_flight = if self.publishing.alone { due.min(1) } else { due };
        let finished: Vec<(&Entry, Option<&Release>)> = self.publishing.queue[..self.publishing.in_flight]
            .iter()
            .map(|p| (&p.entry, (!p.released).then_some(&p.release)))
            .collect();
        let edits = queue::complete_edits(&*self.hub, &mut self.chain, &finished);
        if let Err(e @ HubError::Local { .. }) = &edits {
            self.unwritable(e);
        }
        edits
    }

    /// A publish whose objects could not be written (a full cache disk):
    /// of several results, each goes alone next, to find which; one alone
    /// waits, with a backoff of its own, while the others and the claims
    /// go on. It is kept, not turned into an error: space may come back,
    /// and its claim stays ours by heartbeat meanwhile.
    fn unwritable(&mut self, e: &HubError) {
        if self.publishing.in_flight > 1 {
            self.publishing.alone = true;
            return;
        }
        let Some(p) = self.publishing.queue.first_mut().filter(|_| self.publishing.in_flight == 1) else { return };
        p.unwritable += 1;
        let wait = Duration::from_secs(1 << p.unwritable.min(6)).min(UNWRITABLE_WAIT_MAX);
        p.retry_at = Some(Instant::now() + wait);
        let error = format!("{e}; publishing {} again in {}", p.entry.id, crate::time::human_duration(wait));
        self.emit(Event::HubError { error });
    }

    /// The transaction holding `append` and everything finished went through.
    pub(super) fn on_published(&mut self, append: &Append) {
        self.hub_ok();
        self.chain.applied(append);
        let done: Vec<Unpublished> = self.publishing.queue.drain(..self.publishing.in_flight).collect();
        self.publishing.in_flight = 0;
        self.publishing.alone &= !self.publishing.queue.is_empty();
        for p in done {
            self.published(p);
        }
    }

    /// A publish of `append` failed with `e`; returns whether to go again at once.
    pub(super) fn publish_failed(&mut self, e: HubError, append: &Append) -> bool {
        match e {
            e @ HubError::Partial { .. } => {
                self.published_in_part(append, e.applied());
                self.hub_failed(e);
                false
            }
            e if e.is_conflict() => match self.reconcile() {
                Ok(()) => true,
                Err(e) => {
                    self.hub_failed(e);
                    false
                }
            },
            e if e.declined_by_hook() => self.publish_refused(e),
            e => {
                self.hub_failed(e);
                false
            }
        }
    }

    /// The hub's guard refused a publish: a reason no retry changes. Of
    /// several jobs, each goes alone next, to find the one it refuses;
    /// that one is published as the `error` that fits, and if even that is
    /// refused, given up (its claim expires: the hub will not take its
    /// results from anyone). Returns whether to go again at once.
    pub(super) fn publish_refused(&mut self, e: HubError) -> bool {
        if self.publishing.in_flight > 1 {
            self.publishing.alone = true;
            return true;
        }
        let p = self.publishing.queue.remove(0);
        let id = p.entry.id.clone();
        if p.refused {
            self.emit(Event::HubError { error: format!("gave up publishing {id}: {e}") });
            self.publishing.alone &= !self.publishing.queue.is_empty();
            return !self.publishing.queue.is_empty();
        }
        self.emit(Event::HubError { error: format!("{e}; publishing {id} as an error instead") });
        let entry = unpublishable::fitting_error(p.entry, e.message());
        self.publishing.queue.insert(0, Unpublished { entry, refused: true, ..p });
        true
    }

    /// Whether to hold back a publish a moment for more results to join it:
    /// on a remote hub every publish is a push, and jobs claimed together
    /// tend to end together.
    pub(super) fn lingering(&self) -> bool {
        let oldest = self.publishing.queue.iter().map(|p| p.at).min();
        !self.active.is_empty() && !self.draining && oldest.is_some_and(|at| at.elapsed() < self.publishing.linger)
    }

    /// A publish the hub took only in part. Its `done` ref is the one that
    /// can be skipped (the only one with new objects to check): the jobs
    /// whose queue ref went are then released, and the next publish
    /// carries their results alone. Had the `done` ref moved, its jobs are
    /// published (a job whose release did not go is simply written again).
    pub(super) fn published_in_part(&mut self, append: &Append, applied: &[String]) {
        let moved = append.edits.iter().all(|e| applied.contains(&e.name));
        if moved {
            self.chain.applied(append);
        }
        for mut p in std::mem::take(&mut self.publishing.queue) {
            p.released |= applied.contains(&p.release.queue_ref);
            if moved && p.released {
                self.published(p);
            } else {
                self.publishing.queue.push(p);
            }
        }
    }

    pub(super) fn published(&mut self, p: Unpublished) {
        if p.entry.result.attempt > 1 {
            // An earlier attempt's worker may have left its live log (it
            // was cut off, or pushed it before it learnt of the steal).
            let id = &p.entry.id;
            if let Ok(Some(left)) = self.hub.refresh_ref(&refs::log(id)) {
                self.drop_live_log(id, Some(left));
            }
        }
        self.summary.published += 1;
        if p.entry.result.status == Status::Passed {
            self.summary.passed += 1;
        }
        self.emit(Event::Published { job: p.job.map(Box::new), result: Box::new(p.entry.result) });
    }

    /// Deletes the live log `blob` at `id`'s log ref, if still there: best
    /// effort, a leftover log tail is harmless and `git ci doctor` lists it.
    pub(super) fn drop_live_log(&self, id: &JobId, blob: Option<ObjectId>) {
        if let Some(blob) = blob {
            let _ = self.hub.transact(&[crate::hub::RefEdit::delete(refs::log(id), blob)]);
        }
    }

    /// After a lost publish: find out, job by job, what the hub now says.
    pub(super) fn reconcile(&mut self) -> Result<(), HubError> {
        let tip = self.hub.refresh_ref(&refs::done(&self.cfg.name))?;
        let snap = Snapshot::read(&*self.hub, &self.cfg.queues)?;
        self.chain.reset(tip);
        let tips: Vec<(String, ObjectId)> = tip.map(|t| (self.cfg.name.clone(), t)).into_iter().collect();
        for mut p in std::mem::take(&mut self.publishing.queue) {
            let id = p.entry.id.clone();
            let queued = snap.queued.iter().any(|q| q.id == id && q.value == p.release.queue_value);
            if matches!(done::find(&*self.hub, &tips, &id), Ok(Some(_))) {
                // Our earlier push went through; its reply was lost.
                self.published(p);
            } else if p.released {
                // We hold its finish token: publish it, whatever moved.
                self.publishing.queue.push(p);
            } else if !queued {
                self.emit(Event::Overtaken { id: id.clone() });
                if let Some(c) = p.release.claim.filter(|c| snap.claims.get(&id) == Some(c)) {
                    let _ = self.hub.transact(&[crate::hub::RefEdit::delete(refs::claim(&id), c)]);
                }
                self.drop_live_log(&id, p.release.log);
            } else if p.release.claim.is_some() && snap.claims.get(&id) != p.release.claim.as_ref() {
                self.drop_live_log(&id, p.release.log);
                self.emit(Event::Stolen { id });
            } else {
                // Still ours: the refs the publish does not own may have
                // moved (a cancel request came; a pin went missing, which
                // would otherwise fail every publish).
                p.release.cancel = snap.cancels.get(&id).copied();
                p.release.pin = self.hub.refresh_ref(&refs::pin(&id))?;
                self.publishing.queue.push(p);
            }
        }
        Ok(())
    }
}
