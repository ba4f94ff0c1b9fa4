//! `needs` on the hub: a job that must wait for others of its submission.
//!
//! No ref per edge and no scheduler. A waiting job is one queue ref whose
//! value is a tree `{job.json, waiting.json}` ([`crate::claimed`]), where
//! `waiting.json` lists the ids of the jobs it still waits for. Workers
//! claim only a queue ref that holds the bare `job.json` blob, so a waiting
//! job cannot be claimed.
//!
//! Whoever publishes a job that others wait for moves them on **in the
//! same transaction** ([`follow_ups`]), each with a compare-and-swap on the
//! waiting job's queue ref:
//! - a pass takes the job off each dependant's list: the queue ref moves to
//!   a shorter list, or to the bare `job.json` blob when none is left (now
//!   claimable);
//! - any other end (failed, timeout, cancelled, error, skipped) publishes
//!   each dependant, and theirs in turn, as `skipped`, with a reason that
//!   names the job at fault, and deletes their refs.
//!
//! Two publishers of two needs of one job both expect its queue ref at the
//! list they read; the hub applies one, the other's push fails as a lost
//! race and is made again from a fresh read. A claim and a skip of one job
//! expect its queue ref at different values (the blob; the list), so they
//! cannot both win. The list only shrinks, so a value never comes back.

mod retry;

pub use retry::{RetryError, again};

use std::collections::{BTreeMap, BTreeSet};

use gix::ObjectId;

use crate::claimed;
use crate::done::{Content, Entry};
use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::model::{Job, JobResult, Status};
use crate::refs;

/// The most jobs one job may wait for (a pipeline's submission limit).
pub const MAX_WAITING: usize = Job::MAX_NEEDS;

pub use crate::claimed::{parse_waiting, waiting_json};

/// The value a job is queued at: its blob, or the waiting tree when it
/// needs jobs queued in the same submission (`queued_with`). A need not
/// queued with it (a pass a retry reuses) is not waited for.
pub fn queue_value(
    hub: &dyn Hub,
    job: &Job,
    blob: ObjectId,
    queued_with: &BTreeSet<JobId>,
) -> Result<ObjectId, HubError> {
    let waiting: BTreeSet<JobId> =
        job.needs.iter().map(|n| n.id.clone()).filter(|id| queued_with.contains(id)).collect();
    if waiting.is_empty() {
        return Ok(blob);
    }
    let list = hub.write_blob(&waiting_json(&waiting))?;
    claimed::write_waiting(hub, blob, list)
}

/// How a job others may wait for ended.
#[derive(Clone, Debug)]
pub struct Ended {
    pub id: JobId,
    pub status: Status,
    /// Its label, for the reasons of the jobs it makes skip.
    pub label: String,
}

impl Ended {
    /// The end of a finished entry whose job others need; `None` when none
    /// does (nothing to move on, and no need to read the queue).
    pub fn of(entry: &Entry) -> Option<Ended> {
        let job: Job = serde_json::from_slice(&entry.job_json).ok()?;
        (!job.needed_by.is_empty()).then(|| Ended {
            id: entry.id.clone(),
            status: entry.result.status,
            label: job.label(),
        })
    }
}

/// What finished jobs do to the jobs waiting for them: queue ref moves and
/// `skipped` results, for the same transaction as the publish.
#[derive(Debug, Default)]
pub struct FollowUps {
    pub edits: Vec<RefEdit>,
    pub skipped: Vec<Skip>,
}

/// A waiting job published as `skipped`: its result, and the refs its
/// publish deletes (each expected at the value read).
#[derive(Debug)]
pub struct Skip {
    pub entry: Entry,
    pub queue_ref: String,
    pub queue_value: ObjectId,
    pub pin: Option<ObjectId>,
}

impl Skip {
    /// The deletions of its publish: its queue ref and its pin.
    pub fn ref_edits(&self) -> Vec<RefEdit> {
        let mut edits = vec![RefEdit::delete(self.queue_ref.clone(), self.queue_value)];
        edits.extend(self.pin.map(|p| RefEdit::delete(refs::pin(&self.entry.id), p)));
        edits
    }
}

impl FollowUps {
    /// Leaves out the jobs `gone` (published otherwise in the same
    /// transaction, e.g. cancelled with their need).
    pub fn without(mut self, gone: &BTreeSet<JobId>) -> FollowUps {
        self.skipped.retain(|s| !gone.contains(&s.entry.id));
        self.edits.retain(|e| !refs::parse_queue_ref(&e.name).is_some_and(|(_, id)| gone.contains(&id)));
        self
    }
}

/// A waiting job as its queue ref shows it.
struct Waiter {
    id: JobId,
    queue_ref: String,
    value: ObjectId,
    job_blob: ObjectId,
    waiting: BTreeSet<JobId>,
}

/// The follow-ups of `ended`, from the hub's queue as of now; `writer`
/// signs the `skipped` results.
pub fn follow_ups(hub: &dyn Hub, writer: &str, ended: &[Ended]) -> Result<FollowUps, HubError> {
    if ended.is_empty() {
        return Ok(FollowUps::default());
    }
    let waiters = waiters(hub)?;
    let mut outcome: BTreeMap<JobId, Result<(), String>> = BTreeMap::new();
    for e in ended {
        let verdict = match e.status {
            Status::Passed => Ok(()),
            Status::Skipped => Err(format!("{} was skipped", e.label)),
            other => Err(format!("{} {}", e.label, ended_as(other))),
        };
        outcome.insert(e.id.clone(), verdict);
    }
    // Skips spread: a job waiting for a skipped job is skipped too, with
    // the first cause named.
    let mut skipped: BTreeMap<JobId, String> = BTreeMap::new();
    loop {
        let before = skipped.len();
        for w in &waiters {
            if skipped.contains_key(&w.id) {
                continue;
            }
            let cause = w.waiting.iter().find_map(|id| match (outcome.get(id), skipped.get(id)) {
                (Some(Err(cause)), _) => Some(cause.clone()),
                (_, Some(cause)) => Some(cause.clone()),
                _ => None,
            });
            if let Some(cause) = cause {
                skipped.insert(w.id.clone(), cause);
            }
        }
        if skipped.len() == before {
            break;
        }
    }
    let mut follow = FollowUps::default();
    for w in &waiters {
        if let Some(cause) = skipped.get(&w.id) {
            follow.skipped.push(skip(hub, writer, w, cause)?);
            continue;
        }
        let left: BTreeSet<JobId> =
            w.waiting.iter().filter(|id| !matches!(outcome.get(*id), Some(Ok(())))).cloned().collect();
        if left.len() == w.waiting.len() {
            continue;
        }
        let new = if left.is_empty() {
            w.job_blob
        } else {
            claimed::write_waiting(hub, w.job_blob, hub.write_blob(&waiting_json(&left))?)?
        };
        follow.edits.push(RefEdit::update(w.queue_ref.clone(), w.value, new));
    }
    Ok(follow)
}

fn ended_as(status: Status) -> &'static str {
    match status {
        Status::Failed => "failed",
        Status::Timeout => "timed out",
        Status::Cancelled => "was cancelled",
        Status::Error => "ended in an error",
        Status::Skipped => "was skipped",
        Status::Passed => "passed",
    }
}

/// Every waiting job on the hub, in every queue: a dependant may wait in
/// another queue than the job it needs.
fn waiters(hub: &dyn Hub) -> Result<Vec<Waiter>, HubError> {
    hub.refresh(&[refs::QUEUE])?;
    let repo = hub.repo();
    let mut out = Vec::new();
    for (name, value) in hub.list(refs::QUEUE)? {
        let Some((_, id)) = refs::parse_queue_ref(&name) else { continue };
        // A blob (pending or claimed the old way) is the common case: one
        // header read, no more.
        let Ok(claimed::QueueValue { job, waiting: Some(list), .. }) = claimed::resolve(&repo, value) else {
            continue;
        };
        let Ok(waiting) = hub.read_blob(list).map_err(|e| e.to_string()).and_then(|b| parse_waiting(&b)) else {
            continue;
        };
        out.push(Waiter { id, queue_ref: name, value, job_blob: job, waiting });
    }
    Ok(out)
}

/// The `skipped` result of a waiting job, and the refs it gives up.
fn skip(hub: &dyn Hub, writer: &str, w: &Waiter, cause: &str) -> Result<Skip, HubError> {
    let job_json = hub.read_blob(w.job_blob)?;
    let job = Job::from_json(&job_json).ok();
    // The state says "skipped"; the reason names the job at fault.
    let result =
        JobResult::without_run(&w.id, Status::Skipped, writer, job.as_ref().map_or(1, |j| j.attempt), cause.to_owned());
    let pin = match job.as_ref().and_then(|j| ObjectId::from_hex(j.commit.as_bytes()).ok()) {
        Some(pin) => Some(pin),
        None => hub.refresh_ref(&refs::pin(&w.id))?,
    };
    let entry = Entry {
        id: w.id.clone(),
        job_json,
        result,
        log: Content::Bytes(format!("[git-ci] skipped: {cause}\n").into_bytes()),
        files: vec![],
        cache_key: None,
    };
    Ok(Skip { entry, queue_ref: w.queue_ref.clone(), queue_value: w.value, pin })
}
