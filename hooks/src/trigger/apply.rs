//! Doing a [`Plan`] on the hub: one transaction, re-decided after every lost
//! race.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use git_ci_core::done::{self, Content, Entry};
use git_ci_core::hub::{Hub, HubError, RefEdit};
use git_ci_core::model::{JobResult, Status};
use git_ci_core::queue::{self, Queued, Snapshot};
use git_ci_core::{Job, JobId, needs, refs};
use gix::ObjectId;

use super::{Broken, Event, Plan, Wanted};
use crate::index::{self, Index};

/// Lost races tolerated before giving up: each one means another trigger or
/// a cancel moved `_hub` (or a worker took a job we meant to cancel) between
/// our read and our write, and the next read sees it.
const ATTEMPTS: u32 = 12;

/// Applies `plan`; returns what happened, notes first.
pub fn apply(hub: &dyn Hub, plan: &Plan) -> Result<Vec<Event>, HubError> {
    if plan.wanted.is_empty() && plan.broken.is_empty() && plan.deleted.is_empty() {
        return Ok(plan.notes.clone());
    }
    let mut attempt = 0;
    loop {
        match try_apply(hub, plan) {
            Err(e) if e.is_conflict() && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                tracing::debug!("trigger lost a race ({e}); deciding again");
                // Jitter, so that two watchers that collided do not collide again.
                std::thread::sleep(Duration::from_millis(fastrand::u64(1..=(4 << attempt.min(6)))));
            }
            other => return other,
        }
    }
}

/// A pending job to publish as `cancelled`.
struct Cancel {
    queued: Queued,
    job: Job,
    job_json: Vec<u8>,
    reason: String,
}

fn try_apply(hub: &dyn Hub, plan: &Plan) -> Result<Vec<Event>, HubError> {
    let writer = refs::done(refs::HUB_WRITER);
    let tip = hub.refresh_ref(&writer)?;
    let repo = hub.repo();
    let index = Index::at(hub, &repo, tip)?;
    let mut events = plan.notes.clone();
    let (fresh, broken) = unseen(plan, &index, &mut events);
    // Only the transaction that queues the newer run supersedes: a push
    // of a commit whose jobs were queued before changes nothing.
    let needs_snapshot = !plan.deleted.is_empty() || fresh.iter().any(|w| w.supersede);
    let cancels = if needs_snapshot { find_cancels(hub, plan, &fresh, &index)? } else { Vec::new() };
    if fresh.is_empty() && broken.is_empty() && cancels.is_empty() {
        return Ok(events);
    }
    // What waited for a cancelled job is skipped in the same transaction.
    let ended: Vec<needs::Ended> = cancels
        .iter()
        .filter(|c| !c.job.needed_by.is_empty())
        .map(|c| needs::Ended { id: c.queued.id.clone(), status: Status::Cancelled, label: c.job.label() })
        .collect();
    let gone: BTreeSet<JobId> = cancels.iter().map(|c| c.queued.id.clone()).collect();
    let follow = needs::follow_ups(hub, refs::HUB_WRITER, &ended)?.without(&gone);
    let skip_edits: Vec<RefEdit> = follow.skipped.iter().flat_map(needs::Skip::ref_edits).collect();
    let skipped: Vec<Entry> = follow.skipped.into_iter().map(|s| s.entry).collect();
    let new_tip = write_commit(hub, tip, &fresh, &broken, &cancels, skipped)?;
    let mut edits = vec![RefEdit::set(writer, tip, new_tip)];
    edits.extend(cancel_edits(hub, &cancels)?);
    edits.extend(skip_edits);
    edits.extend(follow.edits);
    // The new jobs park beyond the first few of a queue, as a `submit`'s.
    let jobs: Vec<&Job> = fresh.iter().map(|w| &w.job).collect();
    let parked =
        queue::transact_parking(hub, &jobs, |after| Ok([edits.clone(), queue_edits(hub, &jobs, after)?].concat()))?;

    events.extend(broken.into_iter().map(|b| bad_pipeline(b, true)));
    events.extend(cancels.into_iter().map(|c| Event::Cancelled {
        id: c.queued.id,
        name: c.job.spec.name,
        git_ref: c.job.git_ref,
        reason: c.reason,
    }));
    events.extend(fresh.into_iter().map(|w| Event::Queued(Box::new(w.job.clone()))));
    if parked > 0 {
        events.push(Event::Parked { count: parked });
    }
    Ok(events)
}

/// What the index does not know yet; what it knows becomes events.
fn unseen<'p>(plan: &'p Plan, index: &Index<'_>, events: &mut Vec<Event>) -> (Vec<&'p Wanted>, Vec<&'p Broken>) {
    // A batch whose jobs were queued before, even in part (by an older
    // git-ci that indexed fewer of them), is not queued again: its fresh
    // jobs would need ids that no queued job has.
    let queued_before: HashSet<&str> =
        plan.wanted.iter().filter(|w| index.get(&w.key).is_some()).map(|w| w.batch.as_str()).collect();
    let mut fresh = Vec::new();
    for w in &plan.wanted {
        if !queued_before.contains(w.batch.as_str()) {
            fresh.push(w);
            continue;
        }
        let id = index.get(&w.key).unwrap_or_default();
        events.push(Event::AlreadyQueued { name: w.job.label(), git_ref: w.job.git_ref.clone(), id });
    }
    let (broken, reported): (Vec<&Broken>, Vec<&Broken>) =
        plan.broken.iter().partition(|b| index.get(&b.key).is_none());
    // Said again to whoever pushes it again, recorded once.
    events.extend(reported.into_iter().map(|b| bad_pipeline(b, false)));
    (fresh, broken)
}

/// Queue refs and pins deleted for the cancelled jobs.
fn cancel_edits(hub: &dyn Hub, cancels: &[Cancel]) -> Result<Vec<RefEdit>, HubError> {
    let mut edits = Vec::new();
    // A parked job leaves its backlog instead: one rewrite per backlog.
    let mut backlogs: std::collections::BTreeMap<(&str, ObjectId), HashSet<&str>> = Default::default();
    for c in cancels {
        if let Some(p) = &c.queued.parked {
            backlogs.entry((p.backlog.as_str(), p.tip)).or_default().insert(p.path.as_str());
            continue;
        }
        edits.push(RefEdit::delete(refs::queue(&c.queued.queue, &c.queued.id), c.queued.value));
        if let Some(pin) = queue::pin_of(hub, &c.queued.id, Some(&c.job))? {
            edits.push(RefEdit::delete(refs::pin(&c.queued.id), pin));
        }
    }
    for ((backlog, tip), paths) in backlogs {
        edits.push(git_ci_core::backlog::without(hub, backlog, tip, &paths)?);
    }
    Ok(edits)
}

/// The refs that queue `jobs` (one submission: a job waits for those of
/// them it needs), created: pins and queue refs, and those of a queue
/// beyond its first `after` parked in a backlog ([`queue::parking_edits`]).
/// The hook and the scheduler queue through here, in a transaction of
/// [`queue::transact_parking`], as `queue::submit` does.
pub(crate) fn queue_edits(hub: &dyn Hub, jobs: &[&Job], after: Option<usize>) -> Result<Vec<RefEdit>, HubError> {
    queue::parking_edits(hub, jobs, after)
}

fn bad_pipeline(b: &Broken, recorded: bool) -> Event {
    Event::BadPipeline {
        git_ref: b.job.git_ref.clone(),
        commit: b.job.commit.clone(),
        message: b.message.clone(),
        recorded: recorded.then(|| b.job.id.clone()),
    }
}

/// Pending (unclaimed) jobs that this plan cancels: older runs of a job the
/// plan queues again on the same branch, and jobs of deleted refs. Running
/// jobs are left to finish.
fn find_cancels(hub: &dyn Hub, plan: &Plan, fresh: &[&Wanted], index: &Index<'_>) -> Result<Vec<Cancel>, HubError> {
    let superseding: HashMap<(&str, &str, &str), &Job> = fresh
        .iter()
        .filter(|w| w.supersede)
        .map(|w| ((project_of(plan, &w.job), w.job.git_ref.as_str(), w.job.spec.name.as_str()), &w.job))
        .collect();
    // Parked jobs too: a newer push supersedes them as well.
    let snapshot = Snapshot::read(hub, &[])?.with_parked(hub);
    let mut out = Vec::new();
    for queued in snapshot.unclaimed() {
        // A job we cannot read is not ours to judge: workers publish it as
        // an error when they meet it.
        let Ok((job, job_json)) = queued.read_job(hub) else { continue };
        let Some(reason) = cancel_reason(&job, &queued.id, plan, &superseding, index) else { continue };
        out.push(Cancel { queued: queued.clone(), job, job_json, reason });
    }
    Ok(out)
}

/// A job's project, jobs recorded without one being the hub's own.
fn project_of<'a>(plan: &'a Plan, job: &'a Job) -> &'a str {
    if job.project.is_empty() { &plan.project } else { &job.project }
}

fn cancel_reason(
    job: &Job,
    id: &JobId,
    plan: &Plan,
    superseding: &HashMap<(&str, &str, &str), &Job>,
    index: &Index<'_>,
) -> Option<String> {
    if let Some(newer) = superseding.get(&(project_of(plan, job), job.git_ref.as_str(), job.spec.name.as_str())) {
        // The same commit pushed again (or submitted by hand) is not older.
        return (newer.commit != job.commit).then(|| format!("superseded by {}", newer.commit));
    }
    // Another project's branch of the same name is not the one deleted.
    if project_of(plan, job) != plan.project {
        return None;
    }
    let deletion = plan.deleted.iter().find(|d| d.git_ref == job.git_ref)?;
    if deletion.only.as_ref().is_some_and(|only| !only.contains(id)) {
        return None;
    }
    if deletion.triggered_only {
        let commit = ObjectId::from_hex(job.commit.as_bytes()).ok()?;
        let key = index::key(&commit, &job.git_ref, &job.label());
        if index.get(&key).as_deref() != Some(id.as_str()) {
            return None;
        }
    }
    Some(format!("{} was deleted", job.git_ref))
}

/// The new `_hub` tip: the results of the cancelled jobs and broken
/// configurations, and an index entry for everything queued or recorded.
fn write_commit(
    hub: &dyn Hub,
    tip: Option<ObjectId>,
    fresh: &[&Wanted],
    broken: &[&Broken],
    cancels: &[Cancel],
    skipped: Vec<Entry>,
) -> Result<ObjectId, HubError> {
    let mut entries: Vec<Entry> =
        cancels.iter().map(cancel_entry).chain(broken.iter().map(|b| broken_entry(b))).collect();
    entries.extend(skipped);
    let indexed = fresh.iter().map(|w| (&w.key, &w.job.id)).chain(broken.iter().map(|b| (&b.key, &b.job.id)));
    let extras: Vec<done::Extra> = indexed
        .map(|(key, id)| done::Extra {
            path: index::path(key),
            bytes: id.as_str().as_bytes().to_vec(),
            note: format!("trigger {id}"),
        })
        .collect();
    done::append_with(hub, tip, &entries, &extras)
}

fn cancel_entry(c: &Cancel) -> Entry {
    let result =
        JobResult::without_run(&c.queued.id, Status::Cancelled, refs::HUB_WRITER, c.job.attempt, c.reason.clone());
    Entry {
        id: c.queued.id.clone(),
        job_json: c.job_json.clone(),
        result,
        log: Content::Bytes(format!("[git-ci] cancelled before it started: {}\n", c.reason).into_bytes()),
        files: vec![],
        cache_key: None,
    }
}

fn broken_entry(b: &Broken) -> Entry {
    let result = JobResult::without_run(&b.job.id, Status::Error, refs::HUB_WRITER, 1, b.message.clone());
    Entry {
        id: b.job.id.clone(),
        job_json: b.job.to_json(),
        result,
        log: Content::Bytes(format!("[git-ci] {}\n", b.message).into_bytes()),
        files: vec![],
        cache_key: None,
    }
}
