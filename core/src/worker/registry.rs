//! The worker's registration, `refs/ci/workers/<name>`: who is there, with
//! which labels and queues, running what, last seen when, and which
//! process holds the name ([`Owner`]).

use std::time::{Duration, Instant};

use gix::ObjectId;

use super::Config;
use super::owner::Owner;
use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::model::WorkerInfo;
use crate::refs;

pub struct Registration {
    name: String,
    info: WorkerInfo,
    owner: Owner,
    current: Option<ObjectId>,
    every: Duration,
    next: Instant,
    /// [`Config::register`]: off, every method is a no-op.
    enabled: bool,
}

/// Why a worker may not start under its name.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("another worker runs as {name:?} on the hub ({holder})")]
    Taken { name: String, holder: String },
    #[error(transparent)]
    Hub(#[from] HubError),
}

/// When a worker that does not register would refresh: not in its life.
const NEVER: Duration = Duration::from_secs(365 * 86_400);

impl Registration {
    pub fn new(cfg: &Config) -> Registration {
        let every = (cfg.lease / 3).clamp(Duration::from_secs(1), Duration::from_secs(60));
        let mut info =
            WorkerInfo::new(&cfg.name, cfg.labels.clone(), cfg.queues.clone(), cfg.jobs, every.as_millis() as u64);
        info.sandbox = cfg.isolation.info();
        let owner = Owner::this_process();
        owner.mark(&mut info);
        let next = if cfg.register { Instant::now() } else { Instant::now() + NEVER };
        Registration { name: refs::worker(&cfg.name), info, owner, current: None, every, next, enabled: cfg.register }
    }

    pub fn due(&self) -> bool {
        self.enabled && Instant::now() >= self.next
    }

    /// The running jobs changed: refresh shortly, coalescing a burst of
    /// changes. A busy worker changes its running set with every job; each
    /// refresh is a push, and the list is only for people to read (claims
    /// say who runs what), so changes are coalesced over a quarter of the
    /// refresh period, 2 to 15 s.
    pub fn soon(&mut self) {
        if !self.enabled {
            return;
        }
        let within = (self.every / 4).clamp(Duration::from_secs(2), Duration::from_secs(15));
        self.next = self.next.min(Instant::now() + within);
    }

    /// The live instances changed: list them at the next refresh, soon.
    pub fn set_instances(&mut self, instances: Vec<crate::model::InstanceInfo>) {
        self.info.instances = instances;
        self.soon();
    }

    pub fn next(&self) -> Instant {
        self.next
    }

    /// Registers at start-up: the name must be free, or held by no other
    /// live process. Each write is a compare-and-swap against what was
    /// read, so of two workers starting together under one name, one
    /// finds the other's document.
    pub fn take(&mut self, hub: &dyn Hub) -> Result<(), NameError> {
        if !self.enabled {
            return Ok(());
        }
        for _ in 0..3 {
            let current = hub.refresh_ref(&self.name)?;
            if let Some(info) = current.and_then(|oid| self.read(hub, oid))
                && let Some(holder) = self.owner.other_holder(&info, std::time::SystemTime::now())
            {
                return Err(NameError::Taken { name: self.info.name.clone(), holder });
            }
            self.current = current;
            match self.write(hub, vec![]) {
                Err(e) if e.is_conflict() => continue,
                other => return other.map_err(NameError::Hub),
            }
        }
        Err(NameError::Hub(self.lost_race()))
    }

    /// Writes a fresh document; on a lost race (a registration left by an
    /// earlier run of this worker) takes the ref over.
    pub fn refresh(&mut self, hub: &dyn Hub, running: Vec<JobId>) -> Result<(), HubError> {
        if !self.enabled {
            return Ok(());
        }
        for _ in 0..3 {
            match self.write(hub, running.clone()) {
                Err(e) if e.is_conflict() => self.current = hub.refresh_ref(&self.name)?,
                other => return other,
            }
        }
        Err(self.lost_race())
    }

    fn write(&mut self, hub: &dyn Hub, running: Vec<JobId>) -> Result<(), HubError> {
        self.next = Instant::now() + self.every;
        self.info.running = running;
        self.info.last_seen = crate::time::now_rfc3339();
        let blob = hub.write_blob(&self.info.to_json())?;
        hub.transact(&[RefEdit::set(self.name.clone(), self.current, blob)])?;
        self.current = Some(blob);
        Ok(())
    }

    fn lost_race(&self) -> HubError {
        HubError::Conflict { refname: self.name.clone(), detail: "another worker uses this name".into(), also: vec![] }
    }

    fn read(&self, hub: &dyn Hub, oid: ObjectId) -> Option<WorkerInfo> {
        let bytes = hub.read_blob(oid).ok()?;
        crate::validate::worker_blob(&bytes, &self.info.name).ok()
    }

    /// Removes the registration. The value we last wrote may not be the
    /// hub's: a refresh whose push was cut off (a signal to the process
    /// group kills git too) may have been applied all the same. So a
    /// delete that fails is tried again against what the hub holds, as
    /// long as that is a document of this run; another's is left alone.
    pub fn remove(&mut self, hub: &dyn Hub) -> Result<(), HubError> {
        if !self.enabled {
            return Ok(());
        }
        let mut expected = self.current.take();
        let mut last = None;
        for attempt in 0..4u32 {
            if let Some(oid) = expected {
                match hub.transact(&[RefEdit::delete(self.name.clone(), oid)]) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.is_conflict() => {}
                    Err(e @ HubError::Unreachable { .. }) => {
                        last = Some(e);
                        std::thread::sleep(Duration::from_millis(250 << attempt));
                    }
                    Err(e) => return Err(e),
                }
            }
            expected = match hub.refresh_ref(&self.name) {
                Ok(oid) => oid.filter(|oid| self.read(hub, *oid).is_some_and(|info| self.owner.wrote(&info))),
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            if expected.is_none() {
                return Ok(());
            }
        }
        Err(last.unwrap_or_else(|| self.lost_race()))
    }
}
