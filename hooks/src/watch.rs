//! `git ci watch`: the post-receive hook for hubs that run no hooks (GitHub,
//! GitLab, Gitea). Each poll lists the hub's branch and tag heads and hands
//! the ones it has not handled to the same [`trigger`] the hook uses.
//!
//! All that counts lives on the hub: what was queued is in the trigger
//! index, so a restarted watcher or two watchers at once queue nothing
//! twice. The only memory a watcher keeps is which heads it already handled
//! in this process, to skip re-reading their `.git-ci.toml` every poll.
//!
//! Each look also fires the scheduled jobs whose tick came
//! ([`crate::schedule`]), exactly once per tick however many watchers run;
//! [`Watcher::next_tick`] says when to look again for the next one.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use git_ci_core::hub::{Hub, HubError};
use git_ci_core::queue::Snapshot;
use git_ci_core::{JobId, refs};
use gix::ObjectId;

use crate::patterns::RefKind;
use crate::schedule::Scheduler;
use crate::trigger::{self, Deletion, Event, Update};

const HEADS: &str = "refs/heads/";
const TAGS: &str = "refs/tags/";

pub struct Watcher<'h> {
    hub: &'h dyn Hub,
    by: String,
    /// The `project` of the jobs it queues.
    project: String,
    /// Heads handled by this process: ref -> commit.
    handled: HashMap<String, ObjectId>,
    scheduler: Scheduler,
}

impl<'h> Watcher<'h> {
    /// `by` becomes the `submitted_by` of the jobs it queues.
    pub fn new(hub: &'h dyn Hub, by: &str) -> Watcher<'h> {
        let project = git_ci_core::project::of_hub(hub);
        Watcher { hub, by: by.to_owned(), project, handled: HashMap::new(), scheduler: Scheduler::default() }
    }

    /// Records `project` on the jobs it queues, instead of the hub's name.
    pub fn with_project(mut self, project: &str) -> Watcher<'h> {
        self.project = project.to_owned();
        self
    }

    /// One look at the hub: queue what new heads ask for, supersede, and
    /// cancel the pending jobs of heads that are gone.
    pub fn poll(&mut self) -> Result<Vec<Event>, HubError> {
        // Pending jobs are read before the heads are listed: a job whose ref
        // is missing from the later listing was queued while its ref existed,
        // so the ref was deleted since, never created since.
        let pending = self.pending_refs()?;
        self.hub.refresh(&[HEADS, TAGS, refs::SCHEDULE])?;
        let mut heads: HashMap<String, ObjectId> = self.hub.list(HEADS)?.into_iter().collect();
        heads.extend(self.hub.list(TAGS)?);

        let mut updates: Vec<Update> = heads
            .iter()
            .filter(|(name, id)| self.handled.get(*name) != Some(id))
            .map(|(name, id)| Update { refname: name.clone(), old: self.handled.get(name).copied(), new: Some(*id) })
            .collect();
        updates.sort_by(|a, b| a.refname.cmp(&b.refname));
        let mut plan = trigger::plan(&self.hub.repo(), &updates, &self.by, &self.project);
        plan.deleted = deletions(pending, &heads);
        let mut events = trigger::apply(self.hub, &plan)?;
        self.handled = heads;
        let mut branches: Vec<(String, ObjectId)> =
            self.handled.iter().filter(|(r, _)| r.starts_with(HEADS)).map(|(r, c)| (r.clone(), *c)).collect();
        branches.sort();
        events.extend(self.scheduler.run(self.hub, &branches, (&self.by, &self.project), SystemTime::now())?);
        Ok(events)
    }

    /// When the next scheduled tick comes, of the schedules the last look
    /// saw: look again then.
    pub fn next_tick(&self) -> Option<SystemTime> {
        self.scheduler.next_tick()
    }

    /// Unclaimed jobs of branches and tags, by ref.
    fn pending_refs(&self) -> Result<HashMap<String, HashSet<JobId>>, HubError> {
        let snapshot = Snapshot::read(self.hub, &[])?.with_parked(self.hub);
        let mut out: HashMap<String, HashSet<JobId>> = HashMap::new();
        for q in snapshot.unclaimed() {
            let Ok((job, _)) = q.read_job(self.hub) else { continue };
            if RefKind::of(&job.git_ref).is_some() {
                out.entry(job.git_ref).or_default().insert(q.id.clone());
            }
        }
        Ok(out)
    }
}

/// Refs with pending jobs that the hub no longer has. Only jobs a trigger
/// queued are cancelled: a job submitted by hand from a branch that never
/// reached this hub looks the same from here.
fn deletions(pending: HashMap<String, HashSet<JobId>>, heads: &HashMap<String, ObjectId>) -> Vec<Deletion> {
    let mut out: Vec<Deletion> = pending
        .into_iter()
        .filter(|(git_ref, _)| !heads.contains_key(git_ref))
        .map(|(git_ref, ids)| Deletion { git_ref, only: Some(ids), triggered_only: true })
        .collect();
    out.sort_by(|a, b| a.git_ref.cmp(&b.git_ref));
    out
}
