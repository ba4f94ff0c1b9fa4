//! The worker's registration, `refs/ci/workers/<name>`: who is there, with
//! which labels and queues, running what, last seen when.

use std::time::{Duration, Instant};

use gix::ObjectId;

use super::Config;
use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::model::WorkerInfo;
use crate::refs;

pub struct Registration {
    name: String,
    info: WorkerInfo,
    current: Option<ObjectId>,
    every: Duration,
    next: Instant,
}

impl Registration {
    pub fn new(cfg: &Config) -> Registration {
        let every = (cfg.lease / 3).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let info =
            WorkerInfo::new(&cfg.name, cfg.labels.clone(), cfg.queues.clone(), cfg.jobs, every.as_millis() as u64);
        Registration { name: refs::worker(&cfg.name), info, current: None, every, next: Instant::now() }
    }

    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// The running jobs changed: refresh shortly, coalescing a burst of
    /// changes. A busy worker changes its running set with every job; each
    /// refresh is a push, and the list is only for people to read (claims
    /// say who runs what), so changes are coalesced over a quarter of the
    /// refresh period, 2 to 15 s.
    pub fn soon(&mut self) {
        let within = (self.every / 4).clamp(Duration::from_secs(2), Duration::from_secs(15));
        self.next = self.next.min(Instant::now() + within);
    }

    pub fn next(&self) -> Instant {
        self.next
    }

    /// Writes a fresh document; on a lost race (a registration left by an
    /// earlier run of this worker) takes the ref over.
    pub fn refresh(&mut self, hub: &dyn Hub, running: Vec<JobId>) -> Result<(), HubError> {
        self.next = Instant::now() + self.every;
        self.info.running = running;
        self.info.last_seen = crate::time::now_rfc3339();
        let blob = hub.write_blob(&self.info.to_json())?;
        for _ in 0..3 {
            match hub.transact(&[RefEdit::set(self.name.clone(), self.current, blob)]) {
                Ok(()) => {
                    self.current = Some(blob);
                    return Ok(());
                }
                Err(e) if e.is_conflict() => self.current = hub.refresh_ref(&self.name)?,
                Err(e) => return Err(e),
            }
        }
        Err(HubError::Conflict {
            refname: self.name.clone(),
            detail: "another worker uses this name".into(),
            also: vec![],
        })
    }

    /// Removes the registration; a worker that cannot reach the hub leaves
    /// it to age (`last_seen` tells).
    pub fn remove(&mut self, hub: &dyn Hub) {
        if let Some(current) = self.current.take() {
            let _ = hub.transact(&[RefEdit::delete(self.name.clone(), current)]);
        }
    }
}
