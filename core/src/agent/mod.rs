//! Plumbing for agents that are not git-ci workers (`git ci claim`,
//! `heartbeat`, `append-log`, `complete`): each step of a worker's life as
//! one call, on the same transactions as workers ([`crate::queue`]), so the
//! same compare-and-swap rules hold and the hub's guard takes the writes.
//!
//! Between calls an agent holds its claim by the claim blob's object id,
//! the fencing token every later step expects the claim ref at: a step
//! taken after the claim was stolen, cancelled or published fails its
//! compare-and-swap. The CLI keeps the token in a file ([`Held`]).

mod complete;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use gix::ObjectId;

use crate::claimed;
use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::model::{Claim, Job, has_label};
use crate::queue::{self, ClaimRequest, Queued, Snapshot};
use crate::refs;

pub use complete::{Completion, complete};

/// Wall-clock slack before an agent takes over an expired claim: it has no
/// monotonic view of the lease as a worker has, and clocks disagree a little.
pub const STEAL_SLACK: Duration = Duration::from_secs(30);

/// How many claims a `claim` tries before it says nothing is claimable:
/// each try that loses a race moves on to the next job.
const TRIES: usize = 8;

/// Who claims, from where, for how long.
pub struct Claimer<'a> {
    pub name: &'a str,
    pub queue: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub lease: Duration,
}

/// A claim an agent holds: what it runs and the token its next step expects.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Held {
    pub id: JobId,
    pub queue: String,
    pub worker: String,
    pub attempt: u32,
    /// The claim blob on the hub: the fencing token.
    pub token: String,
    pub lease_expires_at: String,
}

impl Held {
    fn of(claim: &Claim, queue: &str, blob: ObjectId) -> Held {
        Held {
            id: claim.job.clone(),
            queue: queue.to_owned(),
            worker: claim.worker.clone(),
            attempt: claim.attempt,
            token: blob.to_string(),
            lease_expires_at: claim.lease_expires_at.clone(),
        }
    }

    pub fn token(&self) -> Result<ObjectId, AgentError> {
        ObjectId::from_hex(self.token.as_bytes()).map_err(|_| AgentError::BadToken(self.token.clone()))
    }
}

/// A job claimed by [`claim`].
pub struct Claimed {
    pub job: Job,
    pub held: Held,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The claim is not ours any more: it was stolen after the lease ran
    /// out, or the job was cancelled or published.
    #[error("the claim on job {id} is lost: {why}")]
    Lost { id: JobId, why: String },
    #[error("{0:?} is not a claim token (a 40-hex-digit object id)")]
    BadToken(String),
    #[error("{0}")]
    Input(String),
}

/// Claims the first job of `queue` (highest priority, then oldest) that
/// `who` can run, or an expired claim's job; `None` when there is none.
pub fn claim(hub: &dyn Hub, who: &Claimer<'_>) -> Result<Option<Claimed>, AgentError> {
    let mut tried = 0;
    loop {
        let snap = Snapshot::read(hub, &[who.queue.to_owned()])?;
        let candidates = candidates(hub, &snap, who);
        // Nothing queued it can take, or a parked job it can run more
        // urgent than all of them: move some parked jobs it can run into
        // the queue ([`crate::backlog`]), the most urgent first, and read
        // again.
        let runnable = |job: &Job| job.spec.requires.iter().all(|(k, v)| has_label(who.name, who.labels, k, v));
        let best = candidates.iter().filter(|c| c.3.is_none()).map(|c| c.1.spec.priority).max();
        let outranked = |best: i32| {
            let head = |(name, tip): &(String, ObjectId)| crate::backlog::head(hub, name, *tip);
            snap.backlogs.iter().filter_map(head).any(|job| runnable(&job) && job.spec.priority > best)
        };
        if !snap.backlogs.is_empty() && tried < TRIES && best.is_none_or(outranked) {
            tried += 1;
            if crate::backlog::promote(hub, &snap, crate::backlog::low_water(1), runnable)? != Some(0) {
                continue;
            }
        }
        if candidates.is_empty() {
            return Ok(None);
        }
        for (q, job, json, steal) in candidates {
            tried += 1;
            let attempt = steal.as_ref().map_or(job.attempt, |(_, old)| old.attempt + 1);
            let request = ClaimRequest {
                claim: Claim::new(&q.id, who.name, attempt, who.lease),
                steal: steal.map(|(oid, _)| oid),
                queue_ref: refs::queue(&q.queue, &q.id),
                queue_value: q.value,
                job_blob: claimed::blob_id(&hub.repo(), &json),
            };
            match queue::claim(hub, std::slice::from_ref(&request)) {
                Ok(won) => {
                    let held = Held::of(&request.claim, &q.queue, won[0].claim);
                    let mut job = job;
                    job.attempt = attempt;
                    return Ok(Some(Claimed { job, held }));
                }
                // Another claimer took it first: the next one.
                Err(e) if e.is_conflict() && tried < TRIES => continue,
                Err(e) if e.is_conflict() => return Ok(None),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

type Candidate = (Queued, Job, Vec<u8>, Option<(ObjectId, Claim)>);

/// Jobs `who` may claim, in the order a worker takes them. Jobs waiting
/// for their needs and unreadable documents are left to workers (which
/// publish the latter as errors).
fn candidates(hub: &dyn Hub, snap: &Snapshot, who: &Claimer<'_>) -> Vec<Candidate> {
    let now = SystemTime::now();
    let mut out: Vec<Candidate> = Vec::new();
    for q in &snap.queued {
        let Ok((job, json)) = q.read_job(hub) else { continue };
        if !job.spec.requires.iter().all(|(k, v)| has_label(who.name, who.labels, k, v)) {
            continue;
        }
        let steal = match snap.claims.get(&q.id) {
            // A pending job's queue ref is its bare document; a waiting or
            // half-published one is not for claiming.
            None => match claimed::resolve(&hub.repo(), q.value) {
                Ok(v) if v.waiting.is_none() && v.first_claim.is_none() => None,
                _ => continue,
            },
            Some(blob) => match queue::read_claim(hub, *blob, &q.id) {
                Some(c) if expired(&c, now) && c.attempt < job.spec.max_attempts => Some((*blob, c)),
                _ => continue,
            },
        };
        out.push((q.clone(), job, json, steal));
    }
    out.sort_by(|a, b| b.1.spec.priority.cmp(&a.1.spec.priority).then(a.0.id.cmp(&b.0.id)));
    out
}

fn expired(c: &Claim, now: SystemTime) -> bool {
    crate::time::parse_rfc3339(&c.lease_expires_at).is_some_and(|t| t + STEAL_SLACK < now)
}

/// The claim ref's value, checked against `held`: ours, or why not.
pub fn check_held(hub: &dyn Hub, held: &Held) -> Result<(ObjectId, Claim), AgentError> {
    let token = held.token()?;
    let name = refs::claim(&held.id);
    let lost = |why: String| AgentError::Lost { id: held.id.clone(), why };
    hub.refresh(&[&name, &refs::queue(&held.queue, &held.id)])?;
    match hub.get(&name)? {
        Some(blob) if blob == token => {
            let claim = queue::read_claim(hub, blob, &held.id)
                .ok_or_else(|| lost(format!("its claim document {blob} does not read")))?;
            Ok((blob, claim))
        }
        Some(other) => Err(lost(match queue::read_claim(hub, other, &held.id) {
            Some(c) if c.worker != held.worker || c.attempt != held.attempt => {
                format!("{} took it over as attempt {} (the lease ran out without a heartbeat)", c.worker, c.attempt)
            }
            _ => "the claim on the hub is not the one this agent holds (renewed elsewhere?)".into(),
        })),
        None if hub.get(&refs::queue(&held.queue, &held.id))?.is_none() => {
            Err(lost("the job was published (finished, or cancelled)".into()))
        }
        None => Err(lost("its claim is gone from the hub".into())),
    }
}

/// Renews the lease of `held`; returns the renewed hold and whether a
/// cancel was requested (the agent should stop and complete the job as
/// `cancelled`).
pub fn heartbeat(hub: &dyn Hub, held: &Held) -> Result<(Held, bool), AgentError> {
    let (blob, claim) = check_held(hub, held)?;
    let renewed = claim.renewed();
    let new = match queue::heartbeat(hub, &[(blob, renewed.clone())]) {
        Ok(new) => new[0],
        Err(e) if e.is_conflict() => {
            return Err(AgentError::Lost { id: held.id.clone(), why: "another claimer replaced it just now".into() });
        }
        Err(e) => return Err(e.into()),
    };
    let cancel = refs::cancel(&held.id);
    hub.refresh(&[&cancel])?;
    let cancelled = hub.get(&cancel)?.is_some();
    Ok((Held::of(&renewed, &held.queue, new), cancelled))
}

/// Pushes the tail of `log` (the whole log so far, a file) as the job's
/// live log (`refs/ci/logs/<id>`), as workers do while a job runs.
pub fn push_log(hub: &dyn Hub, held: &Held, log: &std::path::Path) -> Result<(), AgentError> {
    check_held(hub, held)?;
    let size = std::fs::metadata(log).map_err(|e| AgentError::Input(format!("{}: {e}", log.display())))?.len();
    let tail = tail_blob(log, size).map_err(|e| AgentError::Input(format!("could not read {}: {e}", log.display())))?;
    let name = refs::log(&held.id);
    for _ in 0..3 {
        hub.refresh(&[&name])?;
        let previous = hub.get(&name)?;
        let blob = hub.write_blob(&tail)?;
        match hub.transact(&[RefEdit::set(name.clone(), previous, blob)]) {
            Err(e) if e.is_conflict() => continue,
            other => return Ok(other?),
        }
    }
    Ok(())
}

/// How much of the log the live log holds, as workers push it
/// (`worker::live_log`, which `git ci log --follow` reads).
const LIVE_TAIL: u64 = 64 * 1024;

/// The live-log blob: `git-ci-live-log <bytes so far>` and the tail.
fn tail_blob(path: &std::path::Path, size: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let start = size.saturating_sub(LIVE_TAIL);
    f.seek(SeekFrom::Start(start))?;
    let mut blob = format!("git-ci-live-log {size}\n").into_bytes();
    f.take(size - start).read_to_end(&mut blob)?;
    Ok(blob)
}

/// Writes the files of the job's commit into `dir` (created if missing,
/// which must be empty), fetching the commit through its pin first.
pub fn checkout(hub: &dyn Hub, job: &Job, dir: &std::path::Path) -> Result<(), AgentError> {
    let commit = ObjectId::from_hex(job.commit.as_bytes()).map_err(|e| AgentError::Input(e.to_string()))?;
    if !hub.repo().has_object(commit) {
        hub.refresh_ref(&refs::pin(&job.id))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| AgentError::Input(format!("could not create {}: {e}", dir.display())))?;
    crate::checkout::checkout(&hub.repo(), commit, dir).map_err(|e| AgentError::Input(e.to_string()))
}

#[cfg(test)]
mod tests;
