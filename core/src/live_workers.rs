//! Why a pending job waits when nothing holds it up but the fleet: no live
//! worker serves its queue with the labels it requires, or the one worker
//! it is aimed at is gone. A job that requires `gpu=a100` on a hub without
//! one would otherwise sit pending silently.

use std::time::{Duration, SystemTime};

use crate::hub::{Hub, HubError};
use crate::model::{Job, WorkerInfo};
use crate::refs;

/// Every registration read, and which of them were refreshed recently
/// enough to be workers still there.
pub struct LiveWorkers {
    live: Vec<WorkerInfo>,
    /// Registrations not refreshed for a few intervals: a worker that
    /// died or lost the hub. Kept to say since when a job's worker is gone.
    gone: Vec<WorkerInfo>,
    now: SystemTime,
}

impl LiveWorkers {
    /// Reads every registration; unreadable ones count as no worker.
    pub fn read(hub: &dyn Hub) -> Result<LiveWorkers, HubError> {
        hub.refresh(&[refs::WORKERS])?;
        let registrations = hub.list(refs::WORKERS)?.into_iter().filter_map(|(refname, blob)| {
            let name = refname.strip_prefix(refs::WORKERS)?;
            let bytes = hub.read_blob(blob).ok()?;
            crate::validate::worker_blob(&bytes, name).ok()
        });
        Ok(LiveWorkers::new(registrations, SystemTime::now()))
    }

    /// Every registration in `registrations`, sorted into live and gone as
    /// of `now` (the report site's build time, or this moment).
    pub fn new(registrations: impl IntoIterator<Item = WorkerInfo>, now: SystemTime) -> LiveWorkers {
        let (live, gone) = registrations.into_iter().partition(|w| w.seen_lately(now));
        LiveWorkers { live, gone, now }
    }

    /// `no live worker serves queue gpu with gpu=a100`, when no live
    /// worker could claim `job`; `None` when one could (it waits its turn).
    /// A job aimed at one worker (`submit --worker w2`) says what became
    /// of that worker.
    pub fn why_unserved(&self, job: &Job) -> Option<String> {
        if self.live.iter().any(|w| w.can_run(job)) {
            return None;
        }
        if let Some(name) = job.spec.aimed_at() {
            return Some(self.why_not_aimed(job, name));
        }
        let spec = &job.spec;
        let mut why = format!("no live worker serves queue {}", spec.queue);
        if !spec.requires.is_empty() {
            let wanted: Vec<String> = spec.requires.iter().map(|(k, v)| format!("{k}={v}")).collect();
            why.push_str(&format!(" with {}", wanted.join(", ")));
        }
        Some(why)
    }

    /// The worker `name` a job is aimed at cannot take it: gone, never
    /// registered, or running but not able to (queue, other labels).
    fn why_not_aimed(&self, job: &Job, name: &str) -> String {
        let aimed = format!("aimed at worker {name}");
        if let Some(w) = self.live.iter().find(|w| w.name == name) {
            let spec = &job.spec;
            if !w.serves(&spec.queue) {
                return format!("{aimed}, which does not serve queue {}", spec.queue);
            }
            let missing: Vec<String> = spec
                .requires
                .iter()
                .filter(|(k, v)| !crate::model::has_label(&w.name, &w.labels, k, v))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            return format!("{aimed}, which lacks the label(s) {}", missing.join(", "));
        }
        match self.gone.iter().find(|w| w.name == name).map(|w| self.unseen_for(w)) {
            Some(Some(age)) => format!("{aimed}, not seen for {}", crate::time::human_duration(age)),
            Some(None) => format!("{aimed}, not seen lately"),
            None => format!("{aimed}, which is not registered on the hub (never started, or stopped)"),
        }
    }

    fn unseen_for(&self, w: &WorkerInfo) -> Option<Duration> {
        let seen = crate::time::parse_rfc3339(&w.last_seen)?;
        self.now.duration_since(seen).ok()
    }
}
