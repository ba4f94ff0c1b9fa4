//! The queue protocol (DESIGN.md, "The protocol"): every state change is one
//! atomic ref transaction with a compare-and-swap on every ref it touches.

use std::collections::HashMap;

use gix::ObjectId;

use crate::backlog::{self, Parked};
use crate::chain::{Append, Chain};
use crate::claimed;
use crate::done::{self, Entry};
use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::model::{Claim, Job};
use crate::refs;

/// A job in the queue as its refs show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub id: JobId,
    pub queue: String,
    /// The queue ref's value: the `job.json` blob while pending, the
    /// claimed tree once claimed ([`crate::claimed`]). The expected value
    /// of whatever moves or deletes the ref next.
    pub value: ObjectId,
    /// Where a parked job sits ([`crate::backlog`]): then `value` is its
    /// `job.json` blob and no queue ref exists yet.
    pub parked: Option<Parked>,
}

impl Queued {
    /// The job document, with the guard's checks ([`crate::validate`]): a
    /// hosted hub runs no guard, so every reader applies them itself. The
    /// error says why the document is unusable, and carries its first
    /// bytes (none when it was too big to load).
    pub fn read_job(&self, hub: &dyn Hub) -> Result<(Job, Vec<u8>), (String, Vec<u8>)> {
        let blob = self.job_blob(hub).map_err(|e| (e, Vec::new()))?;
        // Never load a huge blob to find out it is too big.
        let size = hub.repo().find_header(blob).map(|h| h.size()).unwrap_or(0);
        let limit = crate::model::MAX_DOC_BYTES;
        if size > limit as u64 {
            return Err((format!("the job document is {size} bytes, over the {limit}-byte limit"), Vec::new()));
        }
        let bytes = hub.read_blob(blob).map_err(|e| (e.to_string(), Vec::new()))?;
        match crate::validate::job_blob(&bytes, &self.queue, &self.id) {
            Ok(job) => Ok((job, bytes)),
            Err(reason) => {
                let mut raw = bytes;
                raw.truncate(limit);
                Err((format!("the {reason}"), raw))
            }
        }
    }

    /// Whether the job waits for jobs it needs (nobody may claim it yet).
    pub fn is_waiting(&self, hub: &dyn Hub) -> bool {
        claimed::resolve(&hub.repo(), self.value).is_ok_and(|v| v.waiting.is_some())
    }

    /// The `job.json` blob, read out of the claimed tree when claimed.
    pub fn job_blob(&self, hub: &dyn Hub) -> Result<ObjectId, String> {
        claimed::resolve(&hub.repo(), self.value).map(|v| v.job)
    }
}

/// The live refs a worker decides on: queued jobs, claims, cancel requests.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub queued: Vec<Queued>,
    pub claims: HashMap<JobId, ObjectId>,
    pub cancels: HashMap<JobId, ObjectId>,
    /// The backlog refs of these queues ([`crate::backlog`]), whose jobs
    /// are not in `queued`: [`Snapshot::parked`] reads them.
    pub backlogs: Vec<(String, ObjectId)>,
}

impl Snapshot {
    /// Refreshes and reads the refs under the given queues (all when empty).
    pub fn read(hub: &dyn Hub, queues: &[String]) -> Result<Snapshot, HubError> {
        Self::read_with(hub, queues, &[])
    }

    /// The same, refreshing `also` (more prefixes) in the same fetch.
    pub fn read_with(hub: &dyn Hub, queues: &[String], also: &[&str]) -> Result<Snapshot, HubError> {
        let queue_prefixes = Self::queue_prefixes(queues);
        let mut prefixes: Vec<&str> = queue_prefixes.iter().map(String::as_str).collect();
        prefixes.extend([refs::CLAIMS, refs::CANCEL]);
        prefixes.extend(also);
        hub.refresh(&prefixes)?;
        Self::listed(hub, &queue_prefixes)
    }

    /// [`Snapshot::read`], but fetching only when a look at the hub's refs
    /// (`Hub::refresh_if_changed`) shows that something changed since the
    /// last read: for a worker with nothing to do, whose polls then cost
    /// the hub one ref listing each. Returns whether it fetched.
    pub fn read_if_changed(hub: &dyn Hub, queues: &[String]) -> Result<(Snapshot, bool), HubError> {
        let queue_prefixes = Self::queue_prefixes(queues);
        let mut prefixes: Vec<&str> = queue_prefixes.iter().map(String::as_str).collect();
        prefixes.extend([refs::CLAIMS, refs::CANCEL]);
        let fetched = hub.refresh_if_changed(&prefixes)?;
        Ok((Self::listed(hub, &queue_prefixes)?, fetched))
    }

    /// The ref prefixes of `queues` (every queue when empty).
    /// The backlog prefixes of each come with them.
    fn queue_prefixes(queues: &[String]) -> Vec<String> {
        if queues.is_empty() {
            vec![refs::QUEUE.to_owned(), refs::BACKLOG.to_owned()]
        } else {
            queues.iter().flat_map(|q| [refs::queue_prefix(q), refs::backlog_prefix(q)]).collect()
        }
    }

    /// The snapshot [`Hub::repo`] holds now.
    fn listed(hub: &dyn Hub, queue_prefixes: &[String]) -> Result<Snapshot, HubError> {
        // Claims before queue refs: a claim whose job is not queued is then
        // surely finished (a queue ref never comes back), never a claim on a
        // job submitted between the two listings.
        let mut snap = Snapshot {
            claims: by_id(hub.list(refs::CLAIMS)?, refs::CLAIMS),
            cancels: by_id(hub.list(refs::CANCEL)?, refs::CANCEL),
            queued: Vec::new(),
            backlogs: Vec::new(),
        };
        for prefix in queue_prefixes {
            for (name, blob) in hub.list(prefix)? {
                if let Some((queue, id)) = refs::parse_queue_ref(&name) {
                    snap.queued.push(Queued { id, queue, value: blob, parked: None });
                } else if refs::parse_backlog_ref(&name).is_some() {
                    snap.backlogs.push((name, blob));
                }
            }
        }
        Ok(snap)
    }

    /// Every parked job of the snapshot's backlogs, in each one's order
    /// (the claim order: [`backlog`]); a job both parked and queued (promoted between two listings)
    /// is left out as parked. A backlog that cannot be read is skipped: a
    /// hub without the guard may hold anything there.
    pub fn parked(&self, hub: &dyn Hub) -> Vec<Queued> {
        let repo = hub.repo();
        let queued: std::collections::HashSet<&JobId> = self.queued.iter().map(|q| &q.id).collect();
        let mut out = Vec::new();
        for (name, tip) in &self.backlogs {
            let (Some((queue, _)), Ok(contents)) = (refs::parse_backlog_ref(name), backlog::read(&repo, *tip)) else {
                continue;
            };
            for e in contents.entries.into_iter().filter(|e| !queued.contains(&e.id)) {
                let parked = Parked { backlog: name.clone(), tip: *tip, path: e.path };
                out.push(Queued { id: e.id, queue: queue.clone(), value: e.blob, parked: Some(parked) });
            }
        }
        out
    }

    /// Adds the parked jobs to `queued`: for readers, to whom a parked job
    /// is pending like any other.
    pub fn with_parked(mut self, hub: &dyn Hub) -> Snapshot {
        let parked = self.parked(hub);
        self.queued.extend(parked);
        self
    }

    /// The claim on `id`, if there is one that passes the guard's checks.
    pub fn read_claim(&self, hub: &dyn Hub, id: &JobId) -> Option<Claim> {
        read_claim(hub, *self.claims.get(id)?, id)
    }

    /// Queued jobs that nobody holds a claim on.
    pub fn unclaimed(&self) -> impl Iterator<Item = &Queued> {
        self.queued.iter().filter(|q| !self.claims.contains_key(&q.id))
    }
}

/// A claim document, with the guard's checks against the job it claims.
pub fn read_claim(hub: &dyn Hub, blob: ObjectId, id: &JobId) -> Option<Claim> {
    crate::validate::claim_blob(&hub.read_blob(blob).ok()?, id).ok()
}

fn by_id(list: Vec<(String, ObjectId)>, prefix: &str) -> HashMap<JobId, ObjectId> {
    list.into_iter().filter_map(|(name, id)| Some((refs::job_id_under(&name, prefix)?, id))).collect()
}

/// Queues `jobs`, pinning each one's commit, in one transaction: either all
/// are queued or none.
/// A job that needs others of `jobs` is queued waiting for them ([`crate::needs`]).
///
/// Jobs of a queue beyond the first [`backlog::park_after`] that nothing
/// waits for are parked in one backlog ref per queue instead
/// ([`crate::backlog`]), in the same transaction.
pub fn submit(hub: &dyn Hub, jobs: &[Job]) -> Result<(), HubError> {
    let jobs: Vec<&Job> = jobs.iter().collect();
    transact_parking(hub, &jobs, |after| parking_edits(hub, &jobs, after))?;
    Ok(())
}

/// Applies the transaction `edits` makes for a parking threshold: the one
/// of the environment ([`backlog::park_after`]), then, when the hub's
/// guard refused a transaction that parked jobs, the one that parks none.
/// A guard older than backlogs refuses the backlog ref; one that refused
/// the jobs for their content refuses them again. What submits jobs (a
/// `submit`, the post-receive hook, a schedule's tick) goes through here.
/// Returns how many of `jobs` (those `edits` queues) it parked.
pub fn transact_parking(
    hub: &dyn Hub,
    jobs: &[&Job],
    mut edits: impl FnMut(Option<usize>) -> Result<Vec<RefEdit>, HubError>,
) -> Result<usize, HubError> {
    let after = backlog::park_after().map_err(|e| hub.local_error("could not submit".into(), e))?;
    let first = edits(after)?;
    let parks = first.iter().any(|e| e.name.starts_with(refs::BACKLOG));
    match hub.transact(&first) {
        Ok(()) => Ok(after.map_or(0, |n| backlog::to_park(jobs, n).into_iter().filter(|&p| p).count())),
        Err(e) if parks && e.declined_by_hook() => {
            tracing::debug!("the hub refused a backlog ({e}); queuing every job");
            hub.transact(&edits(None)?).map(|()| 0)
        }
        Err(e) => Err(e),
    }
}

/// The objects and edits of [`submit`], parking what a queue has beyond
/// its first `after` jobs (`None`: nothing).
pub fn submit_parking_edits(hub: &dyn Hub, jobs: &[Job], after: Option<usize>) -> Result<Vec<RefEdit>, HubError> {
    parking_edits(hub, &jobs.iter().collect::<Vec<_>>(), after)
}

/// [`submit_parking_edits`] of borrowed jobs: what the hook and the
/// scheduler add to transactions that do more.
pub fn parking_edits(hub: &dyn Hub, jobs: &[&Job], after: Option<usize>) -> Result<Vec<RefEdit>, HubError> {
    let park = after.map(|n| backlog::to_park(jobs, n)).unwrap_or_else(|| vec![false; jobs.len()]);
    let mut queued: Vec<&Job> = Vec::with_capacity(jobs.len());
    let mut by_queue: std::collections::BTreeMap<&str, Vec<&Job>> = std::collections::BTreeMap::new();
    for (job, parked) in jobs.iter().copied().zip(park) {
        match parked {
            true => by_queue.entry(job.spec.queue.as_str()).or_default().push(job),
            false => queued.push(job),
        }
    }
    let mut edits = submit_edits(hub, &queued)?;
    let mut imported: std::collections::HashSet<&str> = queued.iter().map(|j| j.commit.as_str()).collect();
    for (queue, jobs) in by_queue {
        for job in &jobs {
            if imported.insert(job.commit.as_str()) {
                let commit = ObjectId::from_hex(job.commit.as_bytes())
                    .map_err(|e| hub.local_error(format!("job {} has a bad commit", job.id), e))?;
                hub.import_commit(commit)?;
            }
        }
        edits.push(backlog::park(hub, queue, &jobs)?);
    }
    Ok(edits)
}

/// The objects and ref creations that queue `jobs` as one submission:
/// each job's pin and queue ref, the queue ref waiting for the jobs of
/// the submission it needs; none parked.
pub fn submit_edits(hub: &dyn Hub, jobs: &[&Job]) -> Result<Vec<RefEdit>, HubError> {
    let mut edits = Vec::with_capacity(jobs.len() * 2);
    let ids: std::collections::BTreeSet<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
    let mut imported = std::collections::HashSet::new();
    for job in jobs {
        let commit = ObjectId::from_hex(job.commit.as_bytes())
            .map_err(|e| hub.local_error(format!("job {} has a bad commit", job.id), e))?;
        // A pipeline is many jobs of one commit: bring it over once.
        if imported.insert(commit) {
            hub.import_commit(commit)?;
        }
        let blob = hub.write_blob(&job.to_json())?;
        let value = crate::needs::queue_value(hub, job, blob, &ids)?;
        edits.push(RefEdit::create(refs::pin(&job.id), commit));
        edits.push(RefEdit::create(refs::queue(&job.spec.queue, &job.id), value));
    }
    Ok(edits)
}

/// A claim to write: on a fresh job (`steal: None`) or a steal of an
/// expired claim.
pub struct ClaimRequest {
    pub claim: Claim,
    /// The expired claim a steal replaces.
    pub steal: Option<ObjectId>,
    pub queue_ref: String,
    /// The queue ref's value as read ([`Queued::value`]).
    pub queue_value: ObjectId,
    /// The job's `job.json` blob ([`Queued::job_blob`]).
    pub job_blob: ObjectId,
}

/// What a won claim holds: the fencing token and the queue ref's new value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Won {
    /// The claim blob: the fencing token of heartbeats and the publish.
    pub claim: ObjectId,
    /// The queue ref's value after the claim: what the publish expects.
    pub queue_value: ObjectId,
}

/// Claims several jobs in one transaction; returns what each claim holds,
/// in order. One lost race fails them all.
pub fn claim(hub: &dyn Hub, requests: &[ClaimRequest]) -> Result<Vec<Won>, HubError> {
    claim_with(hub, requests, vec![])
}

/// [`claim`] in one transaction with `also` (a publish, see
/// [`complete_edits`]): one push instead of two.
///
/// A fresh claim creates the claim ref and moves the queue ref to the
/// claimed tree, expected at the value read: a job cancelled, published
/// or claimed by someone else since the snapshot fails the claim when the
/// hub applies it ([`crate::claimed`] says why a lease alone cannot). A
/// steal replaces the expired claim it watched; the queue ref, already
/// claimed, stays.
pub fn claim_with(hub: &dyn Hub, requests: &[ClaimRequest], also: Vec<RefEdit>) -> Result<Vec<Won>, HubError> {
    let plan = plan_claims(hub, requests, also)?;
    hub.transact(&plan.edits)?;
    Ok(plan.won)
}

/// The objects of a claim transaction, written, and its edits.
pub struct ClaimPlan {
    pub edits: Vec<RefEdit>,
    /// What each claim holds once the transaction goes through: what a
    /// claimer whose answer was lost looks for on the hub.
    pub won: Vec<Won>,
}

/// Writes the objects of [`claim_with`]'s transaction and returns it, unapplied.
pub fn plan_claims(hub: &dyn Hub, requests: &[ClaimRequest], also: Vec<RefEdit>) -> Result<ClaimPlan, HubError> {
    let mut edits = also;
    let mut won = Vec::with_capacity(requests.len());
    for r in requests {
        let blob = hub.write_blob(&r.claim.to_json())?;
        edits.push(RefEdit::set(refs::claim(&r.claim.job), r.steal, blob));
        let queue_value = match r.steal {
            Some(_) => r.queue_value,
            None => {
                let tree = claimed::write(hub, r.job_blob, blob)?;
                edits.push(RefEdit::update(r.queue_ref.clone(), r.queue_value, tree));
                tree
            }
        };
        won.push(Won { claim: blob, queue_value });
    }
    Ok(ClaimPlan { edits, won })
}

/// Renews claims: `(old blob, renewed claim)`. Returns the new blobs.
pub fn heartbeat(hub: &dyn Hub, renewals: &[(ObjectId, Claim)]) -> Result<Vec<ObjectId>, HubError> {
    let mut edits = Vec::with_capacity(renewals.len());
    let mut ids = Vec::with_capacity(renewals.len());
    for (old, claim) in renewals {
        let blob = hub.write_blob(&claim.to_json())?;
        edits.push(RefEdit::update(refs::claim(&claim.job), *old, blob));
        ids.push(blob);
    }
    hub.transact(&edits)?;
    Ok(ids)
}

/// The live refs a finished job gives up, with the values they must hold.
#[derive(Clone, Debug)]
pub struct Release {
    pub queue_ref: String,
    /// The queue ref's value now ([`Queued::value`]).
    pub queue_value: ObjectId,
    pub pin: Option<ObjectId>,
    pub claim: Option<ObjectId>,
    pub cancel: Option<ObjectId>,
    /// The live log tail (`refs/ci/logs/<id>`), if one was pushed.
    pub log: Option<ObjectId>,
}

impl Release {
    fn edits(&self, id: &JobId) -> impl Iterator<Item = RefEdit> {
        [
            Some(RefEdit::delete(self.queue_ref.clone(), self.queue_value)),
            self.pin.map(|p| RefEdit::delete(refs::pin(id), p)),
            self.claim.map(|c| RefEdit::delete(refs::claim(id), c)),
            self.cancel.map(|c| RefEdit::delete(refs::cancel(id), c)),
            self.log.map(|l| RefEdit::delete(refs::log(id), l)),
        ]
        .into_iter()
        .flatten()
    }
}

/// Publishes finished jobs: moves the writer's `done` chain to a commit that
/// adds them (rolling its older results into the archive when due, see
/// [`crate::chain`]) and deletes every live ref they held, in one
/// transaction; `chain` follows on success. Deleting the queue ref is the
/// finish token, so a job can be published by exactly one transaction.
pub fn complete(hub: &dyn Hub, chain: &mut Chain, finished: &[(Entry, Release)]) -> Result<(), HubError> {
    let refs: Vec<(&Entry, Option<&Release>)> = finished.iter().map(|(e, r)| (e, Some(r))).collect();
    complete_refs(hub, chain, &refs)
}

pub(crate) fn complete_refs(
    hub: &dyn Hub,
    chain: &mut Chain,
    finished: &[(&Entry, Option<&Release>)],
) -> Result<(), HubError> {
    let (append, edits) = complete_edits(hub, chain, finished)?;
    hub.transact(&edits)?;
    chain.applied(&append);
    Ok(())
}

/// Writes the objects of a publish of `finished` and returns the edits of
/// its transaction; [`Chain::applied`] once it went through. A job without
/// a release gave up its live refs already (in a publish the hub applied
/// only in part): it holds the finish token, only its result is missing.
pub fn complete_edits(
    hub: &dyn Hub,
    chain: &mut Chain,
    finished: &[(&Entry, Option<&Release>)],
) -> Result<(Append, Vec<RefEdit>), HubError> {
    // The jobs waiting for these move on in the same transaction.
    let ended: Vec<crate::needs::Ended> = finished.iter().filter_map(|(e, _)| crate::needs::Ended::of(e)).collect();
    let follow = crate::needs::follow_ups(hub, chain.writer(), &ended)?;
    let mut entries: Vec<&Entry> = finished.iter().map(|(e, _)| *e).collect();
    entries.extend(follow.skipped.iter().map(|s| &s.entry));
    let append = chain.append(hub, &entries)?;
    let mut edits = append.edits.clone();
    for (entry, release) in finished {
        edits.extend(release.iter().flat_map(|r| r.edits(&entry.id)));
    }
    edits.extend(follow.skipped.iter().flat_map(crate::needs::Skip::ref_edits));
    edits.extend(follow.edits);
    Ok((append, edits))
}

/// The pin of a job whose document could not be read: ask the hub.
pub fn pin_of(hub: &dyn Hub, id: &JobId, job: Option<&Job>) -> Result<Option<ObjectId>, HubError> {
    if let Some(c) = job.and_then(|j| ObjectId::from_hex(j.commit.as_bytes()).ok()) {
        return Ok(Some(c));
    }
    hub.refresh_ref(&refs::pin(id))
}

/// Cancels a pending job: published as `cancelled` in `done/_hub`. Racing a
/// worker's claim is safe: the claim moves the queue ref and the cancel
/// deletes it, both expected at the job blob, so whichever the hub applies
/// first wins and the other learns it lost (a conflict: read again).
///
/// A parked job is cancelled the same way: its backlog ref is rewritten
/// without it, expected at the value read, in the publishing transaction;
/// a promotion (or another cancel) of the same backlog meanwhile fails it.
pub fn cancel_pending(hub: &dyn Hub, queued: &Queued, by: &str) -> Result<(), HubError> {
    if let Some(parked) = &queued.parked {
        return cancel_parked(hub, queued, parked, by);
    }
    let value = claimed::resolve(&hub.repo(), queued.value)
        .map_err(|e| hub.local_error(format!("could not cancel {}", queued.id), e))?;
    let blob = value.job;
    // Pending: the bare blob, or waiting for the jobs it needs.
    if value.first_claim.is_some() {
        return Err(HubError::Conflict {
            refname: refs::queue(&queued.queue, &queued.id),
            detail: "a worker claimed the job".into(),
            also: vec![],
        });
    }
    let job_json = hub.read_blob(blob)?;
    let job = crate::validate::job_blob(&job_json, &queued.queue, &queued.id).ok();
    let pin = pin_of(hub, &queued.id, job.as_ref())?;
    let entry = cancelled_entry(&queued.id, job.as_ref(), job_json, by);
    let release = Release {
        queue_ref: refs::queue(&queued.queue, &queued.id),
        queue_value: queued.value,
        pin,
        claim: None,
        cancel: None,
        log: None,
    };
    let mut chain = Chain::new(refs::HUB_WRITER, hub.refresh_ref(&refs::done(refs::HUB_WRITER))?);
    match complete_refs(hub, &mut chain, &[(&entry, Some(&release))]) {
        // The hub took the release and not the result: the job is ours to
        // publish, and only its result is left (see `HubError::Partial`).
        Err(e) if e.applied().contains(&release.queue_ref) && !e.applied().contains(&refs::done(refs::HUB_WRITER)) => {
            complete_refs(hub, &mut chain, &[(&entry, None)])
        }
        other => other,
    }
}

/// The result of a job cancelled before it started.
fn cancelled_entry(id: &JobId, job: Option<&Job>, job_json: Vec<u8>, by: &str) -> Entry {
    let result = crate::model::JobResult::without_run(
        id,
        crate::model::Status::Cancelled,
        refs::HUB_WRITER,
        job.map_or(1, |j| j.attempt),
        format!("cancelled by {by} before it started"),
    );
    let log = format!("[git-ci] {}\n", result.reason.as_deref().unwrap_or_default());
    Entry {
        id: id.clone(),
        job_json,
        result,
        log: done::Content::Bytes(log.into_bytes()),
        files: vec![],
        cache_key: None,
    }
}

/// [`cancel_pending`] of a parked job: published `cancelled` in `done/_hub`
/// and taken out of its backlog, in one transaction.
fn cancel_parked(hub: &dyn Hub, queued: &Queued, parked: &Parked, by: &str) -> Result<(), HubError> {
    let job_json = hub.read_blob(queued.value)?;
    let job = crate::validate::job_blob(&job_json, &queued.queue, &queued.id).ok();
    let entry = cancelled_entry(&queued.id, job.as_ref(), job_json, by);
    let paths = std::collections::HashSet::from([parked.path.as_str()]);
    let leave = backlog::without(hub, &parked.backlog, parked.tip, &paths)?;
    let mut chain = Chain::new(refs::HUB_WRITER, hub.refresh_ref(&refs::done(refs::HUB_WRITER))?);
    let (append, mut edits) = complete_edits(hub, &mut chain, &[(&entry, None)])?;
    edits.push(leave);
    hub.transact(&edits)?;
    chain.applied(&append);
    Ok(())
}

/// Asks the worker running `id` to stop it: `refs/ci/cancel/<id>`.
pub fn request_cancel(hub: &dyn Hub, id: &JobId, by: &str) -> Result<(), HubError> {
    let note = format!(
        "{{\"version\": 1, \"job\": \"{id}\", \"by\": {}, \"at\": \"{}\"}}\n",
        serde_json::Value::from(by),
        crate::time::now_rfc3339()
    );
    let blob = hub.write_blob(note.as_bytes())?;
    match hub.transact(&[RefEdit::create(refs::cancel(id), blob)]) {
        // Already requested: that is what the user wants.
        Err(e) if e.is_conflict() => Ok(()),
        other => other,
    }
}
