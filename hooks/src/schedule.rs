//! `schedule = "0 3 * * *"`: queuing a job at each cron tick, for `git ci
//! watch`.
//!
//! A scheduled job runs on the tip of each branch its `branches` patterns
//! match, or of the hub's default branch (its `HEAD`) when it has none, as
//! defined by `.git-ci.toml` at that tip. Each (job, branch) has a marker
//! ref, `refs/ci/schedule/<job>/<branch>`, holding the last tick handled.
//! Firing a tick is one transaction: the marker moved, by compare-and-swap,
//! from the value read to the new tick, with the pins and queue refs of the
//! job's whole expansion (matrix, needs), those of a queue beyond its first
//! few parked in a backlog as a `submit`'s are. Of two watchers, or a watcher
//! restarted mid-tick, one wins; the other's transaction fails, it reads the
//! marker again, finds the tick handled and does nothing. So each tick is
//! queued exactly once, whatever runs.
//!
//! A watcher that was down for ticks queues only the latest when it comes
//! back, once; a tick at or before the marker is never fired. A (job,
//! branch) without a marker is armed: the marker is set at the latest tick
//! and nothing is queued, so that adding a nightly job at 14:00 does not run
//! it at once for 03:00.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use git_ci_core::hub::{Hub, HubError, RefEdit};
use git_ci_core::model::JobSpec;
use git_ci_core::pipeline::Pipeline;
use git_ci_core::schedule::Schedule;
use git_ci_core::{Job, refs};
use gix::ObjectId;
use serde::{Deserialize, Serialize};

use crate::patterns::{self, RefKind};
use crate::trigger::{Event, queue_edits};

/// Lost races tolerated for one (job, branch) in one look: each means
/// another watcher moved the marker, and the next read sees it handled.
const ATTEMPTS: u32 = 8;

/// What a marker holds (under 1 KiB, as the hub's guard requires).
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    version: u32,
    /// The last tick handled (RFC 3339, UTC).
    tick: String,
    /// The commit queued at that tick; `None` when the marker was armed.
    #[serde(default)]
    commit: Option<String>,
    /// How many jobs that tick queued.
    #[serde(default)]
    jobs: usize,
    by: String,
}

/// One scheduled job on one branch, as the branch's tip defines it.
struct Target {
    job: String,
    git_ref: String,
    commit: ObjectId,
    tree: ObjectId,
    schedule: Schedule,
    pipeline: Arc<Pipeline>,
}

/// The schedules a watcher follows, between two looks.
#[derive(Default)]
pub struct Scheduler {
    /// `.git-ci.toml` by commit (`None`: none, or broken): tips rarely move.
    pipelines: HashMap<ObjectId, Option<Arc<Pipeline>>>,
    next: Option<SystemTime>,
}

impl Scheduler {
    /// The earliest tick after the last look, of every schedule it saw.
    pub fn next_tick(&self) -> Option<SystemTime> {
        self.next
    }

    /// Fires what is due at `now` for the branch `heads` (`refs/heads/*`,
    /// whose commits the hub's repository holds). The markers must have
    /// been refreshed with the heads ([`refs::SCHEDULE`]).
    pub fn run(
        &mut self,
        hub: &dyn Hub,
        heads: &[(String, ObjectId)],
        (by, project): (&str, &str),
        now: SystemTime,
    ) -> Result<Vec<Event>, HubError> {
        let targets = self.targets(hub, heads)?;
        self.next = targets.iter().filter_map(|t| t.schedule.next_tick_after(now)).min();
        let mut events = Vec::new();
        for t in &targets {
            events.extend(fire(hub, t, (by, project), now)?);
        }
        Ok(events)
    }

    fn targets(&mut self, hub: &dyn Hub, heads: &[(String, ObjectId)]) -> Result<Vec<Target>, HubError> {
        let repo = hub.repo();
        self.pipelines.retain(|commit, _| heads.iter().any(|(_, c)| c == commit));
        let mut default = None;
        let mut out = Vec::new();
        for (git_ref, tip) in heads {
            let Some(branch) = git_ref.strip_prefix("refs/heads/") else { continue };
            let Some((commit, tree)) = peel(&repo, *tip) else { continue };
            let pipeline = self
                .pipelines
                .entry(*tip)
                .or_insert_with(|| Pipeline::at_commit(&repo, commit).ok().flatten().map(Arc::new))
                .clone();
            let Some(pipeline) = pipeline else { continue };
            for (name, job) in &pipeline.jobs {
                let Some(schedule) = job.schedule.as_deref().and_then(|s| Schedule::parse(s).ok()) else { continue };
                let runs_here = match &job.branches {
                    Some(_) => patterns::triggers(job, RefKind::Branch(branch)).unwrap_or(false),
                    None => {
                        if default.is_none() {
                            default = Some(hub.default_branch()?);
                        }
                        default.as_ref().is_some_and(|d| d.as_deref() == Some(git_ref.as_str()))
                    }
                };
                if runs_here {
                    let (job, git_ref, pipeline) = (name.clone(), git_ref.clone(), pipeline.clone());
                    out.push(Target { job, git_ref, commit, tree, schedule, pipeline });
                }
            }
        }
        Ok(out)
    }
}

fn peel(repo: &gix::Repository, tip: ObjectId) -> Option<(ObjectId, ObjectId)> {
    let commit = repo.find_commit(tip).ok()?;
    Some((commit.id, commit.tree_id().ok()?.detach()))
}

/// What a marker says about a tick.
enum Decision {
    /// The tick is handled: nothing to do.
    Handled,
    /// No marker (or one that cannot be read): set it, queue nothing.
    Arm,
    /// Queue the tick.
    Fire,
}

fn decide(hub: &dyn Hub, marker: Option<ObjectId>, due: SystemTime) -> Decision {
    let Some(value) = marker else { return Decision::Arm };
    let tick = hub
        .read_blob(value)
        .ok()
        .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
        .and_then(|m| git_ci_core::time::parse_rfc3339(&m.tick));
    match tick {
        None => Decision::Arm,
        Some(t) if t >= due => Decision::Handled,
        Some(_) => Decision::Fire,
    }
}

/// Handles the latest tick of `t` at or before `now`, once.
fn fire(hub: &dyn Hub, t: &Target, (by, project): (&str, &str), now: SystemTime) -> Result<Vec<Event>, HubError> {
    let Some(due) = t.schedule.latest_tick_at_or_before(now) else { return Ok(vec![]) };
    let tick = git_ci_core::time::rfc3339(due);
    let branch = t.git_ref.strip_prefix("refs/heads/").unwrap_or(&t.git_ref);
    let marker_ref = refs::schedule(&t.job, branch);
    let mut marker = (hub as &dyn Hub).get(&marker_ref)?;
    let mut attempt = 0;
    loop {
        let (jobs, event) = match decide(hub, marker, due) {
            Decision::Handled => return Ok(vec![]),
            Decision::Arm => {
                let next = t.schedule.next_tick_after(now).map(git_ci_core::time::rfc3339);
                (vec![], Event::ScheduleArmed { name: t.job.clone(), git_ref: t.git_ref.clone(), next })
            }
            Decision::Fire => match expand(t, (by, project), &tick) {
                Ok(jobs) => (jobs.clone(), Event::Scheduled { git_ref: t.git_ref.clone(), tick: tick.clone(), jobs }),
                // Said once for the tick, which is spent: the same file
                // will not expand better at the next look.
                Err(message) => (vec![], Event::Unreadable { git_ref: t.git_ref.clone(), message }),
            },
        };
        let doc = Marker {
            version: 1,
            tick: tick.clone(),
            commit: (!jobs.is_empty()).then(|| t.commit.to_string()),
            jobs: jobs.len(),
            by: by.to_owned(),
        };
        let blob = hub.write_blob(&serde_json::to_vec(&doc).expect("a marker serializes"))?;
        let marker_edit = RefEdit::set(marker_ref.clone(), marker, blob);
        let jobs: Vec<&Job> = jobs.iter().collect();
        let edits = |after| Ok([vec![marker_edit.clone()], queue_edits(hub, &jobs, after)?].concat());
        match git_ci_core::queue::transact_parking(hub, &jobs, edits) {
            Ok(0) => return Ok(vec![event]),
            Ok(count) => return Ok(vec![event, Event::Parked { count }]),
            Err(e) if e.is_conflict() && attempt + 1 < ATTEMPTS => {
                attempt += 1;
                tracing::debug!("schedule of {} on {}: lost a race ({e}); reading the marker again", t.job, t.git_ref);
                std::thread::sleep(Duration::from_millis(fastrand::u64(1..=(4 << attempt.min(6)))));
                marker = hub.refresh_ref(&marker_ref)?;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The job's documents for `tick`: the job with what it needs, each matrix
/// entry one job, all marked with the tick.
fn expand(t: &Target, (by, project): (&str, &str), tick: &str) -> Result<Vec<Job>, String> {
    let bind = |spec: JobSpec| {
        let mut job = Job::unsealed(spec, &t.commit.to_string(), &t.tree.to_string(), &t.git_ref, by);
        job.scheduled = Some(tick.to_owned());
        job.project = project.to_owned();
        job
    };
    t.pipeline.jobs(std::slice::from_ref(&t.job), 1, &bind).map_err(|e| format!("schedule of {}: {e}", t.job))
}

#[cfg(test)]
mod tests;
