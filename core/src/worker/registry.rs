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
    /// The document a claim push carries ([`Registration::ride`]), until
    /// its answer.
    riding: Option<ObjectId>,
    every: Duration,
    next: Instant,
    /// [`Config::register`]: off, every method is a no-op.
    enabled: bool,
    /// Removed by a publish of the worker leaving ([`Registration::rode_out`]).
    left: bool,
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
        Registration {
            name: refs::worker(&cfg.name),
            info,
            owner,
            current: None,
            riding: None,
            every,
            next,
            enabled: cfg.register,
            left: false,
        }
    }

    pub fn due(&self) -> bool {
        self.enabled && Instant::now() >= self.next
    }

    /// Whether a refresh that is due may wait for a claim push to carry it
    /// ([`Registration::ride`]): for up to half a refresh period, well
    /// inside the time after which others count the worker gone.
    pub fn may_ride(&self) -> bool {
        Instant::now() < self.alone_by()
    }

    /// When a refresh waiting for a claim push goes alone.
    pub fn alone_by(&self) -> Instant {
        self.next + self.every / 2
    }

    /// The ref's name, to tell its conflicts from the claims'.
    pub fn refname(&self) -> &str {
        &self.name
    }

    /// When due, the refresh as an edit for a claim push to carry: a busy
    /// worker refreshed every few seconds (see [`Registration::soon`]),
    /// each time a push of its own, which in a fleet of 16 one-slot workers
    /// was about one push in four. [`Registration::rode`] tells how it went.
    pub fn ride(&mut self, hub: &dyn Hub, running: Vec<JobId>) -> Result<Option<RefEdit>, HubError> {
        if !self.due() {
            return Ok(None);
        }
        self.info.running = running;
        self.info.last_seen = crate::time::now_rfc3339();
        let blob = hub.write_blob(&self.info.to_json())?;
        self.riding = Some(blob);
        Ok(Some(RefEdit::set(self.name.clone(), self.current, blob)))
    }

    /// The push carrying [`Registration::ride`]'s edit `went` through or
    /// not; if not, the refresh stays due.
    pub fn rode(&mut self, went: bool) {
        if let Some(blob) = self.riding.take()
            && went
        {
            self.left = false;
            self.current = Some(blob);
            self.next = Instant::now() + self.every;
        }
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
    ///
    /// The first write expects what the cache holds, so that a worker
    /// starting on a hub it has not seen, or after its own earlier run,
    /// registers in one push: if the hub holds that value, the document
    /// checked is the hub's; if not, the write fails and the hub is read.
    pub fn take(&mut self, hub: &dyn Hub) -> Result<(), NameError> {
        if !self.enabled {
            return Ok(());
        }
        let cached = hub.get(&self.name)?;
        let held = cached
            .and_then(|oid| self.read(hub, oid))
            .and_then(|info| self.owner.other_holder(&info, std::time::SystemTime::now()));
        if held.is_none() {
            self.current = cached;
            match self.write(hub, vec![]) {
                Err(e) if e.is_conflict() => {}
                other => return other.map_err(NameError::Hub),
            }
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
        // Written again after a publish removed it (a worker that stayed).
        self.left = false;
        Ok(())
    }

    fn lost_race(&self) -> HubError {
        HubError::Conflict { refname: self.name.clone(), detail: "another worker uses this name".into(), also: vec![] }
    }

    fn read(&self, hub: &dyn Hub, oid: ObjectId) -> Option<WorkerInfo> {
        let bytes = hub.read_blob(oid).ok()?;
        crate::validate::worker_blob(&bytes, &self.info.name).ok()
    }

    /// The registration's removal, for the last publish of a worker about
    /// to leave to carry ([`Registration::rode_out`] tells how it went).
    pub fn removal(&self) -> Option<RefEdit> {
        let current = self.current.filter(|_| self.enabled && !self.left)?;
        Some(RefEdit::delete(self.name.clone(), current))
    }

    /// The push carrying [`Registration::removal`] went through: nothing
    /// is left to remove.
    pub fn rode_out(&mut self) {
        self.left = true;
        self.current = None;
    }

    /// Removes the registration. The value we last wrote may not be the
    /// hub's: a refresh whose push was cut off (a signal to the process
    /// group kills git too) may have been applied all the same. So a
    /// delete that fails is tried again against what the hub holds, as
    /// long as that is a document of this run; another's is left alone.
    pub fn remove(&mut self, hub: &dyn Hub) -> Result<(), HubError> {
        if !self.enabled || self.left {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker `w` registered on a new local hub (the directory kept alive).
    fn registered() -> (tempfile::TempDir, crate::hub::LocalHub, Registration) {
        let dir = tempfile::tempdir().unwrap();
        gix::init_bare(dir.path().join("hub.git")).unwrap();
        let hub = crate::hub::LocalHub::open(&dir.path().join("hub.git")).unwrap();
        let mut reg = Registration::new(&Config::new("w", dir.path().join("work")));
        reg.take(&hub).unwrap();
        (dir, hub, reg)
    }

    /// A refresh that is due rides on a claim push: it is an edit of our
    /// ref from what we last wrote, done once the push went and due still
    /// when it did not; it may wait for a push for half a period only.
    #[test]
    fn a_due_refresh_rides_on_a_claim_push_or_stays_due() {
        let (_dir, local, mut reg) = registered();
        let hub: &dyn Hub = &local;
        let written = hub.get(reg.refname()).unwrap();
        assert!(!reg.due() && reg.ride(hub, vec![]).unwrap().is_none(), "just registered: nothing to carry");

        reg.next = Instant::now();
        assert!(reg.may_ride());
        let edit = reg.ride(hub, vec![]).unwrap().expect("due: an edit to carry");
        assert_eq!((edit.name.as_str(), edit.expected), (reg.refname(), written));
        reg.rode(false);
        assert!(reg.due(), "the push did not go: still due");

        let edit = reg.ride(hub, vec![]).unwrap().unwrap();
        hub.transact(std::slice::from_ref(&edit)).unwrap();
        reg.rode(true);
        assert!(!reg.due());
        assert_eq!(reg.current, edit.new, "the next refresh expects what the push wrote");

        reg.next = Instant::now() - reg.every;
        assert!(!reg.may_ride(), "due for half a period: it goes alone");
    }

    /// A leaving worker's last publish carries the removal: once it went,
    /// leaving removes nothing more (no request); a worker that stays and
    /// writes its registration again removes it as it leaves.
    #[test]
    fn a_removal_that_rode_a_publish_is_not_made_again() {
        let (_dir, local, mut reg) = registered();
        let hub: &dyn Hub = &local;
        let edit = reg.removal().expect("registered: a removal to carry");
        assert_eq!((edit.expected, edit.new), (hub.get(reg.refname()).unwrap(), None));
        hub.transact(std::slice::from_ref(&edit)).unwrap();
        reg.rode_out();
        assert!(reg.removal().is_none());
        reg.remove(hub).unwrap();
        assert_eq!(hub.get(reg.refname()).unwrap(), None);

        reg.refresh(hub, vec![]).unwrap();
        assert!(hub.get(reg.refname()).unwrap().is_some(), "written again");
        reg.remove(hub).unwrap();
        assert_eq!(hub.get(reg.refname()).unwrap(), None, "removed as it left");
    }
}
