//! Why a pending job waits when nothing holds it up but the fleet: no live
//! worker serves its queue with the labels it requires. A job that requires
//! `gpu=a100` on a hub without one would otherwise sit pending silently.

use std::time::SystemTime;

use crate::hub::{Hub, HubError};
use crate::model::{Job, WorkerInfo};
use crate::refs;

/// The registrations refreshed recently enough to be workers still there.
pub struct LiveWorkers(Vec<WorkerInfo>);

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

    /// The registrations among `registrations` that are live as of `now`
    /// (the report site's build time).
    pub fn new(registrations: impl IntoIterator<Item = WorkerInfo>, now: SystemTime) -> LiveWorkers {
        LiveWorkers(registrations.into_iter().filter(|w| w.seen_lately(now)).collect())
    }

    /// `no live worker serves queue gpu with gpu=a100`, when no live
    /// worker could claim `job`; `None` when one could (it waits its turn).
    pub fn why_unserved(&self, job: &Job) -> Option<String> {
        let spec = &job.spec;
        let able =
            |w: &WorkerInfo| w.serves(&spec.queue) && spec.requires.iter().all(|(k, v)| w.labels.get(k) == Some(v));
        if self.0.iter().any(able) {
            return None;
        }
        let mut why = format!("no live worker serves queue {}", spec.queue);
        if !spec.requires.is_empty() {
            let wanted: Vec<String> = spec.requires.iter().map(|(k, v)| format!("{k}={v}")).collect();
            why.push_str(&format!(" with {}", wanted.join(", ")));
        }
        Some(why)
    }
}
