//! The live instances a worker keeps: services of `serve = true` jobs that
//! were published `passed` and run on ([`super::serve`]). They hold no job
//! slot (`--jobs` counts jobs being run; `--max-instances` counts these),
//! are listed in the worker's registration, and are stopped when:
//!
//! - a newer instance of the same job on the same branch (of the same
//!   project) is up, here or on
//!   another live worker (a later job id: a later submission);
//! - `git ci stop-instance` asks, through `refs/ci/stop/<id>`;
//! - the hub held the branch when the instance started and no longer does;
//! - this worker keeps more than `--max-instances` (the oldest goes);
//! - the worker stops.
//!
//! A service that ends by itself is dropped from the registration.

use std::time::{Duration, Instant};

use super::serve::Service;
use super::*;
use crate::model::InstanceInfo;

/// The live instances, and when to look at the hub for their sake next.
pub(super) struct Instances {
    live: Vec<Service>,
    next_check: Instant,
    every: Duration,
    /// Stopped services still ending (SIGTERM, grace, SIGKILL) off the
    /// coordinator's thread; a stopping worker waits for them.
    ending: Vec<std::thread::JoinHandle<()>>,
}

impl Instances {
    pub(super) fn new(cfg: &Config) -> Instances {
        let every = cfg.poll.clamp(Duration::from_millis(500), Duration::from_secs(30));
        Instances { live: Vec::new(), next_check: Instant::now(), every, ending: Vec::new() }
    }

    /// When the coordinator must wake for them, if it must.
    pub(super) fn next(&self) -> Option<Instant> {
        (!self.live.is_empty()).then_some(self.next_check)
    }

    fn infos(&self) -> Vec<InstanceInfo> {
        self.live.iter().map(|s| s.info.clone()).collect()
    }

    /// Takes `id`'s service out of the live set.
    fn take(&mut self, id: &JobId) -> Option<Service> {
        let at = self.live.iter().position(|s| s.info.id == *id)?;
        Some(self.live.remove(at))
    }
}

impl Worker {
    /// A job's thread handed back a ready service: keep it, unless its run
    /// no longer counts (claim stolen, cancelled, not ours), then stop
    /// older instances of the same job and branch, and the oldest beyond
    /// `--max-instances`.
    pub(super) fn take_service(&mut self, ran: &mut Ran) {
        let Some(service) = ran.service.take() else { return };
        let counts = self.active.get(&ran.entry.id).is_some_and(|a| !a.stolen && a.cancel_seen.is_none());
        if ran.stolen || !counts {
            self.stop_service(service, "its job was cancelled or taken over".into());
            return;
        }
        let older: Vec<JobId> = self
            .instances
            .live
            .iter()
            .filter(|s| s.info.same_place(&service.info) && s.info.id < service.info.id)
            .map(|s| s.info.id.clone())
            .collect();
        self.emit(Event::InstanceUp { id: service.info.id.clone(), url: service.info.url.clone() });
        let new_id = service.info.id.clone();
        self.instances.live.push(service);
        for id in older {
            self.stop_instance(&id, format!("superseded by {new_id}"));
        }
        while self.instances.live.len() > self.cfg.max_instances.max(1) {
            let oldest = self.instances.live[0].info.id.clone();
            self.stop_instance(&oldest, format!("over --max-instances {}", self.cfg.max_instances));
        }
        self.registration.set_instances(self.instances.infos());
    }

    /// Drops the services that ended by themselves; when due, looks at the
    /// hub for stop requests, deleted branches and newer instances elsewhere.
    pub(super) fn instances_housekeeping(&mut self) {
        self.instances.ending.retain(|t| !t.is_finished());
        let ended: Vec<JobId> =
            self.instances.live.iter().filter(|s| s.running.ended()).map(|s| s.info.id.clone()).collect();
        for id in &ended {
            self.stop_instance(id, "the service ended by itself".into());
        }
        if !ended.is_empty() {
            self.registration.set_instances(self.instances.infos());
        }
        if self.instances.live.is_empty() || Instant::now() < self.instances.next_check {
            return;
        }
        self.instances.next_check = Instant::now() + self.instances.every;
        let before = self.instances.live.len();
        if let Err(e) = self.check_instances() {
            self.emit(Event::HubError { error: format!("could not check the live instances: {e}") });
        }
        if self.instances.live.len() != before {
            self.registration.set_instances(self.instances.infos());
        }
    }

    fn check_instances(&mut self) -> Result<(), HubError> {
        let hub = Arc::clone(&self.hub);
        for (id, value) in crate::instances::stop_requests(&*hub)? {
            if self.instances.live.iter().any(|s| s.info.id == id) {
                self.stop_instance(&id, "asked by git ci stop-instance".into());
                // The request is done; one a newer request replaced stays.
                let _ = hub.transact(&[RefEdit::delete(refs::stop(&id), value)]);
            }
        }
        let gone: Vec<JobId> = self
            .instances
            .live
            .iter()
            .filter(|s| s.branch_on_hub && matches!(hub.refresh_ref(&s.info.git_ref), Ok(None)))
            .map(|s| s.info.id.clone())
            .collect();
        for id in gone {
            self.stop_instance(&id, "its branch was deleted".into());
        }
        let elsewhere = crate::instances::LiveInstances::read(&*hub)?;
        let superseded: Vec<(JobId, JobId)> = self
            .instances
            .live
            .iter()
            .filter_map(|s| Some((s.info.id.clone(), elsewhere.newer_than(&s.info, &self.cfg.name)?.id.clone())))
            .collect();
        for (id, by) in superseded {
            self.stop_instance(&id, format!("superseded by {by}"));
        }
        Ok(())
    }

    fn stop_instance(&mut self, id: &JobId, why: String) {
        if let Some(service) = self.instances.take(id) {
            self.stop_service(service, why);
        }
    }

    /// Stops a service (SIGTERM to its group, the grace, SIGKILL), off this
    /// thread; its directory goes once it has ended.
    fn stop_service(&mut self, mut service: Service, why: String) {
        self.emit(Event::InstanceDown { id: service.info.id.clone(), url: service.info.url.clone(), why: why.clone() });
        service.running.interrupter().send(crate::runner::Interrupt::Cancel(why));
        let ending = std::thread::spawn(move || {
            let workdir = service.workdir.take();
            service.running.wait();
            drop(workdir);
        });
        self.instances.ending.push(ending);
    }

    /// The worker stops: so do its instances, before it leaves the hub.
    pub(super) fn stop_all_instances(&mut self) {
        let ids: Vec<JobId> = self.instances.live.iter().map(|s| s.info.id.clone()).collect();
        for id in ids {
            self.stop_instance(&id, "the worker stopped".into());
        }
        for ending in self.instances.ending.drain(..) {
            let _ = ending.join();
        }
    }
}
