//! Waiting on the hub without going deaf: every wait of the worker (for a
//! hub down at start-up, a backoff, a publish that keeps failing) ends on
//! a stop request, and a worker told twice to stop leaves what it cannot
//! publish instead of holding the stop for a hub that does not answer.
//! Also how the hub's failures are told: an outage on every retry, a
//! refusal once, with what to fix, retried only every few minutes.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use gix::ObjectId;

use super::backoff::Backoff;
use super::registry::NameError;
use super::{Event, Worker};
use crate::hub::HubError;

/// Whether the worker is on the hub, and how the hub answered lately.
#[derive(Default)]
pub(super) struct Health {
    /// Connected and registered ([`Worker::connect`]).
    pub(super) connected: bool,
    /// The hub's refusal was told since it last answered.
    pub(super) refusal_told: bool,
    pub(super) backoff: Backoff,
}

impl Worker {
    /// Connects: takes the worker's name on the hub, waiting for a hub
    /// that does not answer yet, and picks up its `done` chain. `Ok(false)` when
    /// asked to stop first; an error when the name is another live
    /// worker's. [`Worker::run`] does it when it was not done before.
    pub fn connect(&mut self) -> Result<bool, NameError> {
        if self.health.connected {
            return Ok(true);
        }
        loop {
            match self.registration.take(&*self.hub) {
                Ok(()) => break,
                Err(NameError::Hub(e)) => self.hub_failed(e),
                Err(taken) => return Err(taken),
            }
            if !self.sleep_unless_stopped(self.health.backoff.remaining().unwrap_or_default()) {
                return Ok(false);
            }
        }
        // Our `done` chain as this machine last saw it, without asking the
        // hub: only this worker moves it (and `git ci gc`, rarely), so the
        // copy is mostly right, and when it is not (a new cache, a chain
        // compacted since) the first publish loses its compare-and-swap
        // and reads the chain then (`Worker::reconcile`). Asking cost
        // every worker a fetch as it started: 16 workers starting together
        // on a busy hub paid 16.
        let tip: Option<ObjectId> = self.hub.get(&crate::refs::done(&self.cfg.name))?;
        self.hub_ok();
        self.chain.reset(tip);
        self.health.connected = true;
        Ok(true)
    }

    /// Waits `d`, handling what arrives meanwhile; `false` when a stop
    /// request came (nothing runs yet: there is nothing to drain).
    fn sleep_unless_stopped(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            match self.rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
                Ok(wake) => {
                    self.handle(wake);
                    if self.draining {
                        return false;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return true,
                Err(RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// After a second stop request, once nothing runs and the hub has just
    /// failed: the results still unpublished are left (their claims lapse
    /// and other workers run those jobs again), said in one event.
    pub(super) fn leaving(&mut self) -> bool {
        let stuck = self.hurry && self.draining && self.active.is_empty() && !self.publishing.queue.is_empty();
        if !stuck || self.health.backoff.ready() {
            return false;
        }
        let ids = self.publishing.queue.iter().map(|p| p.entry.id.clone()).collect();
        self.emit(Event::Unpublished { ids });
        true
    }

    pub(super) fn hub_failed(&mut self, e: HubError) {
        if e.is_refusal() {
            let retry_in = self.health.backoff.refused();
            if !self.health.refusal_told {
                self.health.refusal_told = true;
                let fix = match &e {
                    HubError::Denied { cause, .. } => cause.fix().to_owned(),
                    _ => "the hub's hooks or permissions refused the push: see what it said, give this user push \
                          rights to refs/ci/* on the hub, or fix the hook"
                        .to_owned(),
                };
                self.emit(Event::HubRefused { error: e.to_string(), fix, retry_in });
            }
            return;
        }
        let retry_in = self.health.backoff.fail();
        match e {
            HubError::Unreachable { .. } => self.emit(Event::HubUnreachable { error: e.to_string(), retry_in }),
            other => self.emit(Event::HubError { error: other.to_string() }),
        }
    }

    pub(super) fn hub_ok(&mut self) {
        if self.health.backoff.succeed() {
            self.health.refusal_told = false;
            self.emit(Event::HubBack);
        }
    }
}
