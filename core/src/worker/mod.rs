//! The worker: claims jobs it can run, runs up to `jobs` at once, keeps its
//! claims alive, and publishes results, batching claims and completes into
//! single transactions where it can.
//!
//! One coordinating thread owns all protocol state; each job runs on its
//! own thread and reports back through the same channel as ref-change
//! notifications and shutdown requests, so the coordinator sleeps until
//! something happens (no poll delay on a local hub).

mod backoff;
mod cache;
mod execute;
mod live_log;
mod mask;
mod outputs;
mod owner;
mod registry;
mod share;
mod stop;
mod trust;
mod unpublishable;

pub use live_log::parse as parse_live_log;
pub use owner::hostname;
pub use registry::NameError;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use gix::ObjectId;

use crate::chain::{Append, Chain};
use crate::done::{self, Content, Entry};
use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::model::{Claim, Job, JobResult, Status};
use crate::queue::{self, ClaimRequest, Queued, Release, Snapshot};
use crate::refs;
use crate::runner::{Interrupt, Interrupter};
use backoff::Backoff;
use execute::{Assignment, Ran};
use share::Sharers;

#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    /// Queues served; empty serves every queue.
    pub queues: Vec<String>,
    /// `os` and `arch` are always there; jobs' `requires` must be a subset.
    pub labels: BTreeMap<String, String>,
    pub jobs: usize,
    /// Exit once nothing this worker can run is pending or running.
    pub once: bool,
    pub poll: Duration,
    /// An idle worker doubles its poll interval after each look that finds
    /// nothing, up to this, and goes back to `poll` when it finds work: a
    /// large fleet then costs a hosted hub few reads. `poll` (the default)
    /// keeps the interval fixed.
    pub poll_max: Duration,
    pub lease: Duration,
    pub work_dir: PathBuf,
    pub log_cap: u64,
    pub kill_grace: Duration,
    /// Only these jobs (for `git ci run`).
    pub only: Option<HashSet<JobId>>,
    /// Variables given to every job whose values are masked in logs.
    pub secrets: Vec<(String, String)>,
    /// An ssh allowed-signers file: run only commits signed by one of them.
    pub require_signed: Option<PathBuf>,
    /// How often a running job's log tail is pushed to `refs/ci/logs/<id>`.
    pub log_interval: Duration,
    /// How many results our `done` tip holds before a publish rolls them
    /// into `refs/ci/archive/<name>` ([`crate::chain`]).
    pub roll_at: usize,
}

impl Config {
    /// A worker with the documented defaults: every queue, one job at a
    /// time, 60 s leases, 2 s polls, 16 MiB logs.
    pub fn new(name: impl Into<String>, work_dir: PathBuf) -> Config {
        Config {
            name: name.into(),
            queues: vec![],
            labels: Self::default_labels(),
            jobs: 1,
            once: false,
            poll: Duration::from_secs(2),
            poll_max: Duration::from_secs(2),
            lease: Duration::from_secs(60),
            work_dir,
            log_cap: 16 << 20,
            kill_grace: Duration::from_secs(10),
            only: None,
            secrets: vec![],
            require_signed: None,
            log_interval: Duration::from_secs(3),
            roll_at: crate::chain::ROLL_AT,
        }
    }

    pub fn default_labels() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("os".to_owned(), std::env::consts::OS.to_owned()),
            ("arch".to_owned(), std::env::consts::ARCH.to_owned()),
        ])
    }

    fn serves(&self, queue: &str) -> bool {
        crate::model::serves(&self.queues, queue)
    }

    fn can_run(&self, job: &Job) -> bool {
        job.spec.requires.iter().all(|(k, v)| self.labels.get(k) == Some(v))
    }
}

/// What the worker tells its user about; rendering is the caller's job.
#[derive(Clone, Debug)]
pub enum Event {
    Claimed {
        job: Box<Job>,
        attempt: u32,
    },
    Published {
        job: Option<Box<Job>>,
        result: Box<JobResult>,
    },
    /// Another worker claimed it first; we moved on.
    LostRace {
        id: JobId,
    },
    /// Our claim was stolen (we were too slow to heartbeat): the run was
    /// stopped and its result dropped.
    Stolen {
        id: JobId,
    },
    /// Someone else published the job first (a cancel while we ran it).
    Overtaken {
        id: JobId,
    },
    HubUnreachable {
        error: String,
        retry_in: Duration,
    },
    /// The hub refused us (credentials, rights, a hook): told once, with
    /// what to fix; no claims until a try every few minutes goes through.
    HubRefused {
        error: String,
        fix: String,
        retry_in: Duration,
    },
    /// Stopped before these results could be published; their claims
    /// lapse and other workers run the jobs again.
    Unpublished {
        ids: Vec<JobId>,
    },
    HubBack,
    HubError {
        error: String,
    },
    Draining,
}

/// Sent from signal handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Stop claiming, finish and publish running jobs, exit.
    Drain,
    /// Cancel running jobs, publish them as cancelled, exit.
    CancelAll,
}

enum Wake {
    RefsChanged,
    Started(JobId, Interrupter, PathBuf),
    Ran(Box<Ran>),
    Control(Control),
}

#[derive(Clone)]
pub struct Controller(Sender<Wake>);

impl Controller {
    pub fn send(&self, c: Control) {
        let _ = self.0.send(Wake::Control(c));
    }
}

/// What a worker did, returned when it exits.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub published: usize,
    pub passed: usize,
    pub lost_races: usize,
    pub claims: usize,
}

struct Active {
    job: Job,
    /// The queue ref's value since our claim: what our publish expects.
    queue_value: ObjectId,
    claim: Claim,
    claim_blob: ObjectId,
    interrupter: Option<Interrupter>,
    log_path: Option<PathBuf>,
    cancel_seen: Option<ObjectId>,
    stolen: bool,
}

/// A queued document: the job and its bytes, or why it is unusable and its bytes.
type JobDoc = Result<(Job, Vec<u8>), (String, Vec<u8>)>;

/// A finished job waiting for its publishing transaction.
struct Pending {
    job: Option<Job>,
    entry: Entry,
    release: Release,
    /// The hub applied the release in a publish it took only in part: the
    /// job's live refs are gone (so it is ours to publish, no one else's),
    /// its result is still to go.
    released: bool,
    /// When it was ready to publish.
    at: Instant,
    /// The hub's guard refused its result once: it is now the `error`
    /// result that fits ([`unpublishable`]).
    refused: bool,
    /// Our claim on it, renewed by heartbeats until it is published: a
    /// publish held up past the lease must not let another worker run the
    /// job again. `None` for a job we did not claim (published unrun), or
    /// whose claim we lost.
    claim: Option<Claim>,
    _workdir: Option<tempfile::TempDir>,
}

pub struct Worker {
    hub: Arc<dyn Hub>,
    cfg: Arc<Config>,
    on_event: Box<dyn Fn(&Event) + Send + Sync>,
    tx: Sender<Wake>,
    rx: Receiver<Wake>,
    active: HashMap<JobId, Active>,
    to_publish: Vec<Pending>,
    /// How many of `to_publish`, from the front, the publish being pushed
    /// holds.
    publishing: usize,
    /// The hub's guard refused a publish of several jobs: publish them one
    /// at a time until none is left, to learn which one it refuses.
    publish_alone: bool,
    /// How long a result may wait for others to share its publish.
    publish_linger: Duration,
    /// The last claim round left eligible jobs unclaimed: the next one is
    /// likely to claim, so publishing rides along with it.
    queue_busy: bool,
    /// Our `done` chain, read once at start and then moved only by us (and gc).
    chain: Chain,
    /// Claims of others as first seen unchanged, on our monotonic clock.
    watched_claims: HashMap<JobId, (ObjectId, Instant)>,
    claim_docs: HashMap<ObjectId, Option<Claim>>,
    /// Other workers last seen claiming, by name: see [`Worker::sharers`].
    sharers_seen: HashMap<String, Instant>,
    /// How often and when last the other workers' registrations were
    /// read, and whether a lost race since says we do not know them all.
    registration_reads: u32,
    registrations_read: Instant,
    sharers_unsure: bool,
    /// Others' jobs at the front of the queue, by when first seen there.
    front_since: HashMap<JobId, Instant>,
    /// Keyed by the ref's job id too: a document is checked against its ref.
    job_docs: HashMap<(JobId, ObjectId), JobDoc>,
    /// How many of the first eligible jobs we pick among; grows with lost races.
    spread: usize,
    /// The unclaimed rest of the last snapshot, for the next round.
    leftover: Option<Leftover>,
    /// The poll interval now: `cfg.poll`, stretched while idle.
    idle_poll: Duration,
    draining: bool,
    /// Asked to stop a second time: cancel, and do not wait on the hub.
    hurry: bool,
    /// Connected and registered ([`Worker::connect`]).
    started: bool,
    /// The hub's refusal was told since it last answered.
    refusal_told: bool,
    backoff: Backoff,
    next_heartbeat: Instant,
    next_cancel_check: Instant,
    registration: registry::Registration,
    live_logs: live_log::LiveLogs,
    masker: mask::Masker,
    summary: Summary,
}

impl Worker {
    pub fn new(hub: Arc<dyn Hub>, cfg: Config, on_event: impl Fn(&Event) + Send + Sync + 'static) -> Worker {
        let (tx, rx) = mpsc::channel();
        let chain = Chain::new(cfg.name.clone(), None).rolling_at(cfg.roll_at);
        let publish_linger = if hub.watch_path().is_some() { Duration::ZERO } else { PUBLISH_LINGER };
        Worker {
            hub,
            next_heartbeat: Instant::now() + cfg.lease / 3,
            next_cancel_check: Instant::now() + cancel_check_every(&cfg),
            idle_poll: cfg.poll,
            registration: registry::Registration::new(&cfg),
            live_logs: live_log::LiveLogs::new(cfg.log_interval),
            masker: mask::Masker::new(cfg.secrets.iter().map(|(_, v)| v.as_str())),
            cfg: Arc::new(cfg),
            on_event: Box::new(on_event),
            tx,
            rx,
            active: HashMap::new(),
            to_publish: Vec::new(),
            publishing: 0,
            publish_alone: false,
            publish_linger,
            queue_busy: false,
            chain,
            watched_claims: HashMap::new(),
            claim_docs: HashMap::new(),
            sharers_seen: HashMap::new(),
            registration_reads: 0,
            registrations_read: Instant::now(),
            sharers_unsure: false,
            front_since: HashMap::new(),
            job_docs: HashMap::new(),
            spread: 1,
            leftover: None,
            draining: false,
            hurry: false,
            started: false,
            refusal_told: false,
            backoff: Backoff::default(),
            summary: Summary::default(),
        }
    }

    pub fn controller(&self) -> Controller {
        Controller(self.tx.clone())
    }

    fn emit(&self, e: Event) {
        (self.on_event)(&e);
    }

    /// Runs until drained, or with `once` until nothing is left to do.
    pub fn run(mut self) -> Summary {
        match self.connect() {
            Ok(true) => {}
            Ok(false) => return self.summary,
            Err(e) => {
                self.emit(Event::HubError { error: e.to_string() });
                return self.summary;
            }
        }
        let _watcher = self.hub.watch_path().and_then(|p| watch(&p, self.tx.clone()));
        loop {
            while let Ok(wake) = self.rx.try_recv() {
                self.handle(wake);
            }
            let mut busy = false;
            let free = self.cfg.jobs.saturating_sub(self.active.len());
            let lingering = self.lingering();
            // While the queue is busy, a claim round publishes what is
            // finished too, in the claim's own transaction: one push a round,
            // not two. Else the result goes at once, without waiting for a
            // look at the queue first.
            let claiming = free > 0 && !self.draining && !lingering;
            let combine = claiming && self.queue_busy;
            if !combine && !lingering && !self.to_publish.is_empty() && self.backoff.ready() {
                busy |= self.publish();
            }
            let holding = !self.active.is_empty() || self.to_publish.iter().any(|p| p.claim.is_some());
            if holding && Instant::now() >= self.next_heartbeat && self.backoff.ready() {
                self.heartbeat();
            }
            self.housekeeping();
            let idle = self.active.is_empty() && self.to_publish.is_empty();
            if self.draining && idle || self.leaving() {
                break;
            }
            let mut found_work = false;
            if claiming && self.backoff.ready() {
                match self.claim_round(free) {
                    Ok(round) => {
                        found_work = round.eligible > 0;
                        busy |= round.retry_now;
                    }
                    Err(e) => self.hub_failed(e),
                }
            } else if !self.active.is_empty() && self.backoff.ready() {
                // No claim round to see cancel requests in: look for them alone.
                if let Err(e) = self.check_cancels() {
                    self.hub_failed(e);
                }
            }
            self.idle_poll = next_idle_poll(self.idle_poll, &self.cfg, found_work || !self.active.is_empty());
            if self.cfg.once && idle && !found_work && self.backoff.ready() {
                break;
            }
            if busy {
                continue;
            }
            let wait = self.next_wake();
            match self.rx.recv_timeout(wait) {
                Ok(wake) => self.handle(wake),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if let Err(e) = self.registration.remove(&*self.hub) {
            self.emit(Event::HubError { error: format!("could not remove the worker's registration: {e}") });
        }
        self.summary
    }

    /// The registration and live logs, when due; failures only delay them.
    fn housekeeping(&mut self) {
        if !self.backoff.ready() {
            return;
        }
        if self.registration.due() {
            let running = self.active.keys().cloned().collect();
            if let Err(e) = self.registration.refresh(&*self.hub, running) {
                self.emit(Event::HubError { error: format!("could not refresh the worker's registration: {e}") });
            }
        }
        if !self.active.is_empty() && self.live_logs.due() {
            let logs: Vec<(JobId, &std::path::Path)> = self
                .active
                .iter()
                .filter(|(_, a)| !a.stolen)
                .filter_map(|(id, a)| Some((id.clone(), a.log_path.as_deref()?)))
                .collect();
            if let Err(e) = self.live_logs.publish(&*self.hub, &logs, &self.masker) {
                self.emit(Event::HubError { error: format!("could not push live logs: {e}") });
            }
        }
    }

    fn next_wake(&self) -> Duration {
        let now = Instant::now();
        let mut wait = self.idle_poll.min(self.registration.next().saturating_duration_since(now));
        if !self.active.is_empty() {
            wait = wait.min(self.next_heartbeat.saturating_duration_since(now));
            wait = wait.min(self.live_logs.next().saturating_duration_since(now));
        }
        if let Some(oldest) = self.to_publish.iter().map(|p| p.at).min().filter(|_| self.lingering()) {
            wait = wait.min((oldest + self.publish_linger).saturating_duration_since(now));
        }
        if let Some(r) = self.backoff.remaining() {
            wait = wait.max(r).min(self.cfg.poll.max(r));
        }
        wait
    }

    fn handle(&mut self, wake: Wake) {
        match wake {
            Wake::RefsChanged => {}
            Wake::Started(id, interrupter, log_path) => {
                if let Some(a) = self.active.get_mut(&id) {
                    a.log_path = Some(log_path);
                    if a.stolen {
                        interrupter.send(Interrupt::Stolen);
                    } else if a.cancel_seen.is_some() {
                        interrupter.send(Interrupt::Cancel("cancelled by git ci cancel".into()));
                    }
                    a.interrupter = Some(interrupter);
                }
            }
            Wake::Ran(ran) => self.ran(*ran),
            Wake::Control(Control::Drain) => {
                self.draining = true;
                self.emit(Event::Draining);
            }
            Wake::Control(Control::CancelAll) => {
                self.draining = true;
                self.hurry = true;
                for a in self.active.values_mut() {
                    a.cancel_seen.get_or_insert(ObjectId::null(gix::hash::Kind::Sha1));
                    if let Some(i) = &a.interrupter {
                        i.send(Interrupt::Cancel("the worker was stopped".into()));
                    }
                }
            }
        }
    }

    fn ran(&mut self, ran: Ran) {
        let id = ran.entry.id.clone();
        let Some(active) = self.active.remove(&id) else {
            return;
        };
        let live_tail = self.live_logs.take(&id);
        self.registration.soon();
        if ran.stolen || active.stolen {
            self.drop_live_log(&id, live_tail);
            self.emit(Event::Stolen { id });
            return;
        }
        let cancel = active.cancel_seen.filter(|c| !c.is_null());
        let release = Release {
            queue_ref: refs::queue(&active.job.spec.queue, &id),
            queue_value: active.queue_value,
            pin: ObjectId::from_hex(active.job.commit.as_bytes()).ok(),
            claim: Some(active.claim_blob),
            cancel,
            log: live_tail,
        };
        let workdir = ran.workdir;
        self.to_publish.push(Pending {
            claim: Some(active.claim),
            job: Some(active.job),
            entry: ran.entry,
            release,
            released: false,
            at: Instant::now(),
            refused: false,
            _workdir: workdir,
        });
    }

    /// One transaction for everything finished; returns whether to go again at once.
    fn publish(&mut self) -> bool {
        match self.publish_edits() {
            Ok((append, edits)) => match self.hub.transact(&edits) {
                Ok(()) => {
                    self.on_published(&append);
                    false
                }
                Err(e) => self.publish_failed(e, &append),
            },
            Err(e) => {
                self.hub_failed(e);
                false
            }
        }
    }

    /// The objects and ref edits that publish everything finished.
    fn publish_edits(&mut self) -> Result<(Append, Vec<RefEdit>), HubError> {
        self.publishing = if self.publish_alone { 1 } else { self.to_publish.len() };
        let finished: Vec<(&Entry, Option<&Release>)> = self.to_publish[..self.publishing]
            .iter()
            .map(|p| (&p.entry, (!p.released).then_some(&p.release)))
            .collect();
        queue::complete_edits(&*self.hub, &mut self.chain, &finished)
    }

    /// The transaction holding `append` and everything finished went through.
    fn on_published(&mut self, append: &Append) {
        self.hub_ok();
        self.chain.applied(append);
        let done: Vec<Pending> = self.to_publish.drain(..self.publishing).collect();
        self.publishing = 0;
        self.publish_alone &= !self.to_publish.is_empty();
        for p in done {
            self.published(p);
        }
    }

    /// A publish of `append` failed with `e`; returns whether to go again at once.
    fn publish_failed(&mut self, e: HubError, append: &Append) -> bool {
        match e {
            e @ HubError::Partial { .. } => {
                self.published_in_part(append, e.applied());
                self.hub_failed(e);
                false
            }
            e if e.is_conflict() => match self.reconcile() {
                Ok(()) => true,
                Err(e) => {
                    self.hub_failed(e);
                    false
                }
            },
            e if e.declined_by_hook() => self.publish_refused(e),
            e => {
                self.hub_failed(e);
                false
            }
        }
    }

    /// The hub's guard refused a publish: a reason no retry changes. Of
    /// several jobs, each goes alone next, to find the one it refuses;
    /// that one is published as the `error` that fits, and if even that is
    /// refused, given up (its claim expires: the hub will not take its
    /// results from anyone). Returns whether to go again at once.
    fn publish_refused(&mut self, e: HubError) -> bool {
        if self.publishing > 1 {
            self.publish_alone = true;
            return true;
        }
        let p = self.to_publish.remove(0);
        let id = p.entry.id.clone();
        if p.refused {
            self.emit(Event::HubError { error: format!("gave up publishing {id}: {e}") });
            self.publish_alone &= !self.to_publish.is_empty();
            return !self.to_publish.is_empty();
        }
        self.emit(Event::HubError { error: format!("{e}; publishing {id} as an error instead") });
        let entry = unpublishable::fitting_error(p.entry, e.message());
        self.to_publish.insert(0, Pending { entry, refused: true, ..p });
        true
    }

    /// Whether to hold back a publish a moment for more results to join it:
    /// on a remote hub every publish is a push, and jobs claimed together
    /// tend to end together.
    fn lingering(&self) -> bool {
        let oldest = self.to_publish.iter().map(|p| p.at).min();
        !self.active.is_empty() && !self.draining && oldest.is_some_and(|at| at.elapsed() < self.publish_linger)
    }

    /// A publish the hub took only in part. Its `done` ref is the one that
    /// can be skipped (the only one with new objects to check): the jobs
    /// whose queue ref went are then released, and the next publish
    /// carries their results alone. Had the `done` ref moved, its jobs are
    /// published (a job whose release did not go is simply written again).
    fn published_in_part(&mut self, append: &Append, applied: &[String]) {
        let moved = append.edits.iter().all(|e| applied.contains(&e.name));
        if moved {
            self.chain.applied(append);
        }
        for mut p in std::mem::take(&mut self.to_publish) {
            p.released |= applied.contains(&p.release.queue_ref);
            if moved && p.released {
                self.published(p);
            } else {
                self.to_publish.push(p);
            }
        }
    }

    fn published(&mut self, p: Pending) {
        if p.entry.result.attempt > 1 {
            // An earlier attempt's worker may have left its live log (it
            // was cut off, or pushed it before it learnt of the steal).
            let id = &p.entry.id;
            if let Ok(Some(left)) = self.hub.refresh_ref(&refs::log(id)) {
                self.drop_live_log(id, Some(left));
            }
        }
        self.summary.published += 1;
        if p.entry.result.status == Status::Passed {
            self.summary.passed += 1;
        }
        self.emit(Event::Published { job: p.job.map(Box::new), result: Box::new(p.entry.result) });
    }

    /// Deletes the live log `blob` at `id`'s log ref, if still there: best
    /// effort, a leftover log tail is harmless and `git ci doctor` lists it.
    fn drop_live_log(&self, id: &JobId, blob: Option<ObjectId>) {
        if let Some(blob) = blob {
            let _ = self.hub.transact(&[crate::hub::RefEdit::delete(refs::log(id), blob)]);
        }
    }

    /// After a lost publish: find out, job by job, what the hub now says.
    fn reconcile(&mut self) -> Result<(), HubError> {
        let tip = self.hub.refresh_ref(&refs::done(&self.cfg.name))?;
        let snap = Snapshot::read(&*self.hub, &self.cfg.queues)?;
        self.chain.reset(tip);
        let tips: Vec<(String, ObjectId)> = tip.map(|t| (self.cfg.name.clone(), t)).into_iter().collect();
        for mut p in std::mem::take(&mut self.to_publish) {
            let id = p.entry.id.clone();
            let queued = snap.queued.iter().any(|q| q.id == id && q.value == p.release.queue_value);
            if matches!(done::find(&*self.hub, &tips, &id), Ok(Some(_))) {
                // Our earlier push went through; its reply was lost.
                self.published(p);
            } else if p.released {
                // We hold its finish token: publish it, whatever moved.
                self.to_publish.push(p);
            } else if !queued {
                self.emit(Event::Overtaken { id: id.clone() });
                if let Some(c) = p.release.claim.filter(|c| snap.claims.get(&id) == Some(c)) {
                    let _ = self.hub.transact(&[crate::hub::RefEdit::delete(refs::claim(&id), c)]);
                }
                self.drop_live_log(&id, p.release.log);
            } else if p.release.claim.is_some() && snap.claims.get(&id) != p.release.claim.as_ref() {
                self.drop_live_log(&id, p.release.log);
                self.emit(Event::Stolen { id });
            } else {
                // Still ours: the refs the publish does not own may have
                // moved (a cancel request came; a pin went missing, which
                // would otherwise fail every publish).
                p.release.cancel = snap.cancels.get(&id).copied();
                p.release.pin = self.hub.refresh_ref(&refs::pin(&id))?;
                self.to_publish.push(p);
            }
        }
        Ok(())
    }

    /// Our claims to renew: running jobs', and finished ones' not yet
    /// published.
    fn claims_held(&self) -> Vec<(ObjectId, Claim)> {
        let running = self.active.values().filter(|a| !a.stolen).map(|a| (a.claim_blob, a.claim.renewed()));
        let finished = self.to_publish.iter().filter(|p| !p.released).filter_map(|p| {
            let claim = p.claim.as_ref()?;
            Some((p.release.claim?, claim.renewed()))
        });
        running.chain(finished).collect()
    }

    /// `blob` holds our renewed `claim` now.
    fn renewed(&mut self, claim: Claim, blob: ObjectId) {
        if let Some(a) = self.active.get_mut(&claim.job) {
            a.claim = claim;
            a.claim_blob = blob;
        } else if let Some(p) = self.to_publish.iter_mut().find(|p| p.entry.id == claim.job) {
            p.release.claim = Some(blob);
            p.claim = Some(claim);
        }
    }

    fn heartbeat(&mut self) {
        let renewals = self.claims_held();
        match queue::heartbeat(&*self.hub, &renewals) {
            Ok(blobs) => {
                self.hub_ok();
                for ((_, claim), blob) in renewals.into_iter().zip(blobs) {
                    self.renewed(claim, blob);
                }
                self.next_heartbeat = Instant::now() + self.cfg.lease / 3;
            }
            Err(e @ HubError::Partial { .. }) => {
                // The renewals that went keep their jobs; the rest are tried
                // again soon, their old claims still being ours.
                for (_, claim) in renewals {
                    let name = refs::claim(&claim.job);
                    let renewed = e.applied().contains(&name).then(|| self.hub.get(&name).ok().flatten()).flatten();
                    if let Some(blob) = renewed {
                        self.renewed(claim, blob);
                    }
                }
                self.hub_failed(e);
                self.next_heartbeat = Instant::now() + self.cfg.lease / 12;
            }
            Err(e) if e.is_conflict() => {
                // Some claim is no longer ours: find which, stop those jobs.
                match self.hub.refresh(&[refs::CLAIMS]).and_then(|()| self.hub.list(refs::CLAIMS)) {
                    Ok(claims) => {
                        let claims: HashMap<String, ObjectId> = claims.into_iter().collect();
                        for (id, a) in self.active.iter_mut() {
                            if claims.get(&refs::claim(id)) != Some(&a.claim_blob) && !a.stolen {
                                a.stolen = true;
                                if let Some(i) = &a.interrupter {
                                    i.send(Interrupt::Stolen);
                                }
                            }
                        }
                        // A finished job's lost claim: its publish will
                        // find it taken (`reconcile`); renew it no more.
                        for p in self.to_publish.iter_mut() {
                            if claims.get(&refs::claim(&p.entry.id)) != p.release.claim.as_ref() {
                                p.claim = None;
                            }
                        }
                    }
                    Err(e) => self.hub_failed(e),
                }
            }
            Err(e) => {
                self.hub_failed(e);
                self.next_heartbeat = Instant::now() + self.cfg.lease / 12;
            }
        }
    }
}

/// How long a finished job's publish waits on a remote hub for others
/// running beside it to finish and share its push (a push costs ~50–100 ms;
/// a local hub's transaction ~0.2 ms, so there it does not wait).
const PUBLISH_LINGER: Duration = Duration::from_millis(50);

/// What one look at the queue found.
struct Round {
    eligible: usize,
    retry_now: bool,
}

/// A job we may claim: fresh, or a steal of a claim expired on our clock.
#[derive(Clone)]
struct Candidate {
    queued: Queued,
    job: Job,
    json: Vec<u8>,
    steal: Option<(ObjectId, Claim)>,
}

/// The poll interval after a look at the queue: back to `cfg.poll` when
/// busy, doubled (up to `cfg.poll_max`) when idle.
fn next_idle_poll(current: Duration, cfg: &Config, busy: bool) -> Duration {
    if busy { cfg.poll } else { (current * 2).clamp(cfg.poll, cfg.poll_max.max(cfg.poll)) }
}

/// How often a worker running jobs looks for cancel requests when no claim
/// round does: every poll, but not more than once a second (each look is a
/// fetch; a cancel a second late is still prompt).
fn cancel_check_every(cfg: &Config) -> Duration {
    cfg.poll.max(Duration::from_secs(1))
}

/// How many times a claim batch that lost one job to another worker is
/// pushed again at once without it (and with its publish), before the
/// worker reads the hub afresh.
const BATCH_RETRIES: usize = 3;

/// How many of the first eligible jobs a claim of `free` may take other
/// workers' jobs from (its own are looked for deeper: see `Worker::pick`):
/// a batch per worker claiming (us and `rivals`), widened by `spread` after
/// lost races. The window scales with the batch: a batch of claims is one
/// atomic transaction, lost whole if any of its jobs is taken.
fn claim_window(spread: usize, rivals: usize, free: usize, candidates: usize) -> usize {
    (spread.max(rivals + 1) * free).clamp(1, candidates.max(1))
}

/// How long a worker seen claiming is counted among those sharing the
/// queue after its last claim was seen: longer than a snapshot is reused
/// and than a worker sits between jobs, short enough that a worker gone
/// leaves its share of the queue to the others soon (they would take it
/// anyway, newest first: see [`share`]).
const SHARERS_KEPT_FOR: Duration = Duration::from_secs(30);

/// How long another worker's job may sit unclaimed at the front of the
/// queue before any worker takes it as its own: two polls, time for its
/// first worker to have looked, and at least 2 s. A worker busy with long
/// jobs, gone, or unable to run the job (labels) then holds it up no more.
fn stuck_after(cfg: &Config) -> Duration {
    (cfg.poll * 2).max(Duration::from_secs(2))
}

/// How often a worker that lost a race may read every registration again
/// to learn who else claims: a fetch of every worker's document, cheap for
/// a few workers, not for a thousand (docs/scale.md).
const REGISTRATIONS_EVERY: Duration = Duration::from_secs(60);

/// How long the unclaimed rest of a snapshot may be claimed from without
/// reading the hub again. A claim is a compare-and-swap (claim absent, job
/// still queued), so a stale view costs at worst a lost race; over git
/// daemon it saves a fetch per round, on a local hub a listing of every
/// queue ref.
const REUSE_SNAPSHOT_FOR: Duration = Duration::from_secs(1);

/// A claim round's snapshot, carried to its batch.
struct Batch {
    snap: Snapshot,
    /// Jobs of the snapshot not to claim: ours already, or lost to others.
    taken: HashSet<JobId>,
    read_at: Instant,
    /// How many jobs of the snapshot we could have claimed.
    eligible: usize,
}

/// The rest of the last snapshot, for the next claim round.
struct Leftover {
    read_at: Instant,
    snap: Snapshot,
    /// Jobs this worker claimed since, or lost to others: they are in the
    /// snapshot still.
    taken: HashSet<JobId>,
}

impl Worker {
    fn claim_round(&mut self, free: usize) -> Result<Round, HubError> {
        self.meet_sharers();
        if let Some(left) = self.leftover.take().filter(|l| l.read_at.elapsed() < REUSE_SNAPSHOT_FOR) {
            let round = self.claim_from(left.snap, left.taken, left.read_at, free, false)?;
            if round.eligible > 0 {
                return Ok(round);
            }
        }
        let read_at = Instant::now();
        let snap = Snapshot::read(&*self.hub, &self.cfg.queues)?;
        self.claim_from(snap, HashSet::new(), read_at, free, true)
    }

    /// One claim round on `snap`. A `fresh` snapshot was just read: it also
    /// tells of cancels and foreign claims (the lease clock for steals);
    /// an older one is used for plain claims only.
    fn claim_from(
        &mut self,
        snap: Snapshot,
        taken: HashSet<JobId>,
        read_at: Instant,
        free: usize,
        fresh: bool,
    ) -> Result<Round, HubError> {
        if fresh {
            self.hub_ok();
            // The snapshot holds the cancel requests too: no separate look
            // at them until a poll interval from now.
            self.next_cancel_check = Instant::now() + cancel_check_every(&self.cfg);
            self.notice_cancels(&snap.cancels);
            self.track_claims(&snap);
            let queued: HashSet<(&JobId, ObjectId)> = snap.queued.iter().map(|q| (&q.id, q.value)).collect();
            self.job_docs.retain(|(id, blob), _| queued.contains(&(id, *blob)));
        }
        let mut candidates = Vec::new();
        let mut retry_now = false;
        let mine: Vec<&Queued> = snap
            .queued
            .iter()
            .filter(|q| self.cfg.serves(&q.queue) && !self.active.contains_key(&q.id) && !taken.contains(&q.id))
            .filter(|q| fresh || !snap.claims.contains_key(&q.id))
            .collect();
        for q in mine {
            if self.cfg.only.as_ref().is_some_and(|only| !only.contains(&q.id)) {
                continue;
            }
            if self.to_publish.iter().any(|p| p.entry.id == q.id) {
                continue;
            }
            let doc = self.job_doc(q);
            let (job, json) = match doc {
                Ok(ok) => ok,
                Err(_) if !fresh => continue,
                Err((reason, raw)) => {
                    self.poisoned(q, &snap, reason, raw)?;
                    retry_now = true;
                    continue;
                }
            };
            if !self.cfg.can_run(&job) {
                continue;
            }
            let steal = match snap.claims.get(&q.id) {
                None => None,
                Some(c) => match self.expired_claim(&q.id, *c) {
                    Some(claim) if claim.attempt >= job.spec.max_attempts => {
                        self.exhausted(q, &job, json, *c, &claim);
                        retry_now = true;
                        continue;
                    }
                    Some(claim) => Some((*c, claim)),
                    None => continue,
                },
            };
            candidates.push(Candidate { queued: q.clone(), job, json, steal });
        }
        let eligible = candidates.len();
        self.queue_busy = eligible > free;
        if eligible == 0 {
            // Nothing to claim with it: publish alone (after an old
            // snapshot, a fresh one is read first).
            if fresh && !self.to_publish.is_empty() {
                retry_now |= self.publish();
            }
            return Ok(Round { eligible, retry_now });
        }
        let sharers = self.sharers(&snap, read_at);
        let picked = self.pick(candidates, free, &sharers, fresh);
        if picked.is_empty() {
            // An old snapshot with none of our jobs left: the others' it
            // shows are likely taken since. Read afresh before helping out.
            return Ok(Round { eligible: 0, retry_now: false });
        }
        let batch = Batch { snap, taken, read_at, eligible };
        self.claim_batch(picked, batch)
    }

    /// Claims `picked` in one push that also publishes what is finished.
    /// A job of the batch taken by another worker meanwhile fails the
    /// whole push; the porcelain says which, so the rest is pushed again
    /// at once without it, a few times, before the publish goes alone.
    fn claim_batch(&mut self, mut picked: Vec<Candidate>, mut batch: Batch) -> Result<Round, HubError> {
        let eligible = batch.eligible;
        let publishing = match self.to_publish.is_empty() {
            true => None,
            // A publish that cannot even be written (a full disk) must not
            // stop the claims: they go alone, the publish is tried again.
            false => self.publish_edits().map_err(|e| self.emit(Event::HubError { error: e.to_string() })).ok(),
        };
        let (append, also) = publishing.unzip();
        let also = also.unwrap_or_default();
        let publish_refs: HashSet<&str> = also.iter().map(|e| e.name.as_str()).collect();
        let mut lost_here = 0;
        for attempt in 0.. {
            let requests = self.claim_requests(&picked);
            let e = match queue::claim_with(&*self.hub, &requests, also.clone()) {
                Ok(won) => {
                    if let Some(append) = &append {
                        self.on_published(append);
                    }
                    self.spread = (self.spread.saturating_sub(1)).max(1);
                    let claimed = picked.len();
                    for ((c, req), won) in picked.into_iter().zip(requests).zip(won) {
                        batch.taken.insert(c.queued.id.clone());
                        self.start(c, req.claim, won);
                    }
                    if eligible > claimed + lost_here {
                        let Batch { snap, taken, read_at, .. } = batch;
                        self.leftover = Some(Leftover { read_at, snap, taken });
                    }
                    return Ok(Round { eligible, retry_now: true });
                }
                Err(e) => e,
            };
            match e {
                e @ HubError::Partial { .. } => {
                    if let Some(append) = &append {
                        self.published_in_part(append, e.applied());
                    }
                    // The claims that went are ours: run those jobs.
                    for (c, req) in picked.into_iter().zip(requests) {
                        let name = refs::claim(&c.queued.id);
                        if e.applied().contains(&name)
                            && let Some(claim) = self.hub.get(&name)?
                            && let Some(queue_value) = self.hub.get(&req.queue_ref)?
                        {
                            self.start(c, req.claim, queue::Won { claim, queue_value });
                        }
                    }
                    self.hub_failed(e);
                    return Ok(Round { eligible, retry_now: false });
                }
                e @ HubError::Conflict { .. } if publish_refs.contains(e.refname()) => {
                    // The publish lost (a cancel overtook a job, gc moved the
                    // chain), so nothing was claimed either: sort the
                    // publish out; the claim is tried again after.
                    let append = append.expect("publish refs come with a publish");
                    self.publish_failed(e, &append);
                    return Ok(Round { eligible, retry_now: true });
                }
                e if e.is_conflict() => {
                    self.sharers_unsure = true;
                    self.summary.lost_races += 1;
                    self.spread = (self.spread * 2).min(16);
                    // Every job of the batch the hub said was taken.
                    let lost: Vec<JobId> = e
                        .lost()
                        .into_iter()
                        .filter_map(|r| {
                            refs::job_id_under(r, refs::CLAIMS).or_else(|| refs::parse_queue_ref(r).map(|(_, id)| id))
                        })
                        .collect();
                    for id in &lost {
                        self.emit(Event::LostRace { id: id.clone() });
                        picked.retain(|c| &c.queued.id != id);
                        // Not ours to claim again from this snapshot.
                        batch.taken.insert(id.clone());
                        lost_here += 1;
                    }
                    if lost.is_empty() || picked.is_empty() || attempt == BATCH_RETRIES {
                        if append.is_some() {
                            // The claim lost, so nothing was published either.
                            self.publish();
                        }
                        return Ok(Round { eligible, retry_now: true });
                    }
                }
                e if e.declined_by_hook() && append.is_some() => {
                    // The guard refused the push, maybe for the publish it
                    // carried: the publish alone says (and a publish it
                    // refuses for good ends, see `publish_refused`).
                    self.publish();
                    return Ok(Round { eligible, retry_now: true });
                }
                e => {
                    // The answer may be lost with the push applied (a
                    // connection cut after the hub took it): our claims,
                    // unique by their nonce, tell.
                    if let Some(round) = self.claimed_unanswered(&picked, &requests, append.as_ref(), eligible) {
                        return Ok(round);
                    }
                    return Err(e);
                }
            }
        }
        unreachable!("the loop returns")
    }

    /// After a claim push whose outcome is unknown, reads the claims back:
    /// if they are ours the whole transaction went (it is atomic), so its
    /// jobs run and its publish is done. `None` when it did not go, or the
    /// hub cannot be read either.
    fn claimed_unanswered(
        &mut self,
        picked: &[Candidate],
        requests: &[ClaimRequest],
        append: Option<&Append>,
        eligible: usize,
    ) -> Option<Round> {
        let first = refs::claim(&requests.first()?.claim.job);
        self.hub.refresh(&[refs::CLAIMS]).ok()?;
        let ours =
            self.hub.get(&first).ok()?? == crate::claimed::blob_id(&self.hub.repo(), &requests[0].claim.to_json());
        if !ours {
            return None;
        }
        if let Some(append) = append {
            self.on_published(append);
        }
        for (c, req) in picked.iter().zip(requests) {
            let claim = crate::claimed::blob_id(&self.hub.repo(), &req.claim.to_json());
            let queue_value = match req.steal {
                Some(_) => req.queue_value,
                None => crate::claimed::write(&*self.hub, req.job_blob, claim).ok()?,
            };
            self.start(c.clone(), req.claim.clone(), queue::Won { claim, queue_value });
        }
        Some(Round { eligible, retry_now: true })
    }

    /// A claim of each of `picked`: a fresh one, or a steal of an expired claim.
    fn claim_requests(&self, picked: &[Candidate]) -> Vec<ClaimRequest> {
        let repo = self.hub.repo();
        picked
            .iter()
            .map(|c| {
                let attempt = c.steal.as_ref().map_or(c.job.attempt, |(_, old)| old.attempt + 1);
                ClaimRequest {
                    claim: Claim::new(&c.queued.id, &self.cfg.name, attempt, self.cfg.lease),
                    steal: c.steal.as_ref().map(|(oid, _)| *oid),
                    queue_ref: refs::queue(&c.queued.queue, &c.queued.id),
                    queue_value: c.queued.value,
                    job_blob: crate::claimed::blob_id(&repo, &c.json),
                }
            })
            .collect()
    }

    /// Highest priority first, then oldest first; with contention, the
    /// jobs other claimers leave to us first (see [`share`]), and others'
    /// only from a `fresh` snapshot.
    fn pick(&mut self, mut candidates: Vec<Candidate>, free: usize, sharers: &Sharers, fresh: bool) -> Vec<Candidate> {
        candidates.sort_by(|a, b| b.job.spec.priority.cmp(&a.job.spec.priority).then(a.queued.id.cmp(&b.queued.id)));
        // Others' jobs from a batch per worker; ours from four times as
        // deep, so that a batch is ours even when the snapshot is old.
        let window = claim_window(self.spread, sharers.rivals(), free, candidates.len());
        let depth = share::Depth { own: 4 * window, others: if fresh { window } else { 0 } };
        let queue: Vec<(i32, &JobId)> = candidates.iter().map(|c| (c.job.spec.priority, &c.queued.id)).collect();
        // `claim_window` is never past the candidates.
        let overdue = if fresh { self.overdue(&queue[..window], sharers) } else { HashSet::new() };
        let chosen = share::choose(&queue, depth, free, sharers, &self.cfg.name, &overdue);
        let mut slots: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
        chosen.into_iter().filter_map(|i| slots[i].take()).collect()
    }

    /// Others' jobs at the `front` of a fresh snapshot that have sat there
    /// unclaimed for [`stuck_after`]: their first worker is not taking them.
    fn overdue(&mut self, front: &[(i32, &JobId)], sharers: &Sharers) -> HashSet<JobId> {
        let now = Instant::now();
        let theirs: HashSet<&JobId> =
            front.iter().map(|(_, id)| *id).filter(|id| sharers.rank(&self.cfg.name, id) > 0).collect();
        self.front_since.retain(|id, _| theirs.contains(id));
        for id in theirs {
            self.front_since.entry(id.clone()).or_insert(now);
        }
        let after = stuck_after(&self.cfg);
        self.front_since.iter().filter(|(_, since)| now - **since >= after).map(|(id, _)| id.clone()).collect()
    }

    /// Reads the other workers' registrations, at the first claim round and
    /// after a lost race (the first at once, then at most every
    /// [`REGISTRATIONS_EVERY`]): a worker that has not claimed yet is named
    /// by no claim, and workers starting together would otherwise all claim
    /// the oldest jobs; they also register together, so the first read may
    /// miss some.
    fn meet_sharers(&mut self) {
        let due = match self.registration_reads {
            0 => true,
            1 => self.sharers_unsure,
            _ => self.sharers_unsure && self.registrations_read.elapsed() >= REGISTRATIONS_EVERY,
        };
        if !due {
            return;
        }
        self.registration_reads += 1;
        self.registrations_read = Instant::now();
        self.sharers_unsure = false;
        // Only a preference rides on it: a hub that cannot say is no error.
        let Ok(registrations) = self.hub.refresh(&[refs::WORKERS]).and_then(|()| self.hub.list(refs::WORKERS)) else {
            return;
        };
        let now = std::time::SystemTime::now();
        for (refname, blob) in registrations {
            let name = &refname[refs::WORKERS.len()..];
            let Some(info) = self.hub.read_blob(blob).ok().and_then(|b| crate::validate::worker_blob(&b, name).ok())
            else {
                continue;
            };
            let shares_a_queue = self.cfg.queues.is_empty() || self.cfg.queues.iter().any(|q| info.serves(q));
            if info.name != self.cfg.name && info.seen_lately(now) && shares_a_queue {
                self.sharers_seen.insert(info.name, Instant::now());
            }
        }
    }

    /// The workers claiming beside us: those named by the claims of this
    /// snapshot that are not ours, and those seen so in the last
    /// [`SHARERS_KEPT_FOR`] (a snapshot reused for a while is missing the
    /// claims made since, and a worker between jobs holds none).
    fn sharers(&mut self, snap: &Snapshot, read_at: Instant) -> Sharers {
        let hub = Arc::clone(&self.hub);
        for (id, oid) in &snap.claims {
            if self.active.contains_key(id) {
                continue;
            }
            let claim = self.claim_docs.entry(*oid).or_insert_with(|| queue::read_claim(&*hub, *oid, id));
            if let Some(claim) = claim
                && claim.worker != self.cfg.name
            {
                let seen = self.sharers_seen.entry(claim.worker.clone()).or_insert(read_at);
                *seen = (*seen).max(read_at);
            }
        }
        self.sharers_seen.retain(|_, seen| seen.elapsed() < SHARERS_KEPT_FOR);
        Sharers::new(&self.cfg.name, self.sharers_seen.keys().map(String::as_str))
    }

    fn start(&mut self, c: Candidate, claim: Claim, won: queue::Won) {
        self.summary.claims += 1;
        self.registration.soon();
        let id = c.queued.id.clone();
        let mut job = c.job;
        job.attempt = claim.attempt;
        self.emit(Event::Claimed { job: Box::new(job.clone()), attempt: claim.attempt });
        let cache_key = (!job.tree.is_empty()).then(|| job.spec.definition_key(&job.tree));
        self.active.insert(
            id.clone(),
            Active {
                job: job.clone(),
                queue_value: won.queue_value,
                claim: claim.clone(),
                claim_blob: won.claim,
                interrupter: None,
                log_path: None,
                cancel_seen: None,
                stolen: false,
            },
        );
        let assignment = Assignment { job, job_json: c.json, attempt: claim.attempt, cache_key };
        let (started_tx, done_tx) = (self.tx.clone(), self.tx.clone());
        execute::spawn(
            Arc::clone(&self.hub),
            Arc::clone(&self.cfg),
            assignment,
            move |i, log| {
                let _ = started_tx.send(Wake::Started(id, i, log));
            },
            move |ran| {
                let _ = done_tx.send(Wake::Ran(Box::new(ran)));
            },
        );
        self.next_heartbeat = self.next_heartbeat.min(Instant::now() + self.cfg.lease / 3);
    }

    /// Looks for cancel requests when no claim round does, at most once
    /// per poll interval (on a remote hub each look is a fetch).
    fn check_cancels(&mut self) -> Result<(), HubError> {
        if Instant::now() < self.next_cancel_check {
            return Ok(());
        }
        self.next_cancel_check = Instant::now() + cancel_check_every(&self.cfg);
        self.hub.refresh(&[refs::CANCEL])?;
        let cancels = self.hub.list(refs::CANCEL)?;
        let by_id =
            cancels.into_iter().filter_map(|(n, oid)| Some((refs::job_id_under(&n, refs::CANCEL)?, oid))).collect();
        self.notice_cancels(&by_id);
        Ok(())
    }

    fn notice_cancels(&mut self, cancels: &HashMap<JobId, ObjectId>) {
        for (id, a) in self.active.iter_mut() {
            if let Some(c) = cancels.get(id).filter(|_| a.cancel_seen.is_none()) {
                a.cancel_seen = Some(*c);
                if let Some(i) = &a.interrupter {
                    i.send(Interrupt::Cancel("cancelled by git ci cancel".into()));
                }
            }
        }
    }

    /// Remembers when each foreign claim was first seen in its current form.
    fn track_claims(&mut self, snap: &Snapshot) {
        self.watched_claims.retain(|id, (oid, _)| snap.claims.get(id) == Some(oid));
        for (id, oid) in &snap.claims {
            if !self.active.contains_key(id) {
                self.watched_claims.entry(id.clone()).or_insert((*oid, Instant::now()));
            }
        }
        self.claim_docs.retain(|oid, _| snap.claims.values().any(|c| c == oid));
    }

    /// The claim, if it has sat unchanged for a whole lease on our clock.
    fn expired_claim(&mut self, id: &JobId, oid: ObjectId) -> Option<Claim> {
        let (_, since) = self.watched_claims.get(id)?;
        let since = *since;
        let hub = Arc::clone(&self.hub);
        let claim = self.claim_docs.entry(oid).or_insert_with(|| queue::read_claim(&*hub, oid, id)).clone();
        // A claim we cannot read holds no lease worth respecting past ours.
        let lease = claim.as_ref().map_or(self.cfg.lease, Claim::lease);
        if since.elapsed() < lease {
            return None;
        }
        Some(claim.unwrap_or_else(|| Claim::new(id, "unknown", 1, lease)))
    }

    fn job_doc(&mut self, q: &Queued) -> JobDoc {
        let hub = Arc::clone(&self.hub);
        self.job_docs.entry((q.id.clone(), q.value)).or_insert_with(|| q.read_job(&*hub)).clone()
    }

    /// A job whose document is unusable is published as `error` unrun.
    fn poisoned(&mut self, q: &Queued, snap: &Snapshot, reason: String, raw: Vec<u8>) -> Result<(), HubError> {
        if self.to_publish.iter().any(|p| p.entry.id == q.id) {
            return Ok(());
        }
        let pin = queue::pin_of(&*self.hub, &q.id, None)?;
        let release = Release {
            queue_ref: refs::queue(&q.queue, &q.id),
            queue_value: q.value,
            pin,
            claim: snap.claims.get(&q.id).copied(),
            cancel: snap.cancels.get(&q.id).copied(),
            log: None,
        };
        let result = JobResult::without_run(&q.id, Status::Error, &self.cfg.name, 1, reason);
        self.queue_unrun(None, q.id.clone(), raw, result, release);
        Ok(())
    }

    /// A job whose claims expired `max_attempts` times is published as `error`.
    fn exhausted(&mut self, q: &Queued, job: &Job, json: Vec<u8>, claim_blob: ObjectId, claim: &Claim) {
        let reason = format!(
            "gave up after {} attempts: each worker that claimed it stopped heartbeating (last: {}); \
             the job may kill workers or outlive its lease",
            claim.attempt, claim.worker
        );
        let result = JobResult::without_run(&q.id, Status::Error, &self.cfg.name, claim.attempt, reason);
        let release = Release {
            queue_ref: refs::queue(&q.queue, &q.id),
            queue_value: q.value,
            pin: ObjectId::from_hex(job.commit.as_bytes()).ok(),
            claim: Some(claim_blob),
            cancel: None,
            log: None,
        };
        self.queue_unrun(Some(job.clone()), q.id.clone(), json, result, release);
    }

    fn queue_unrun(&mut self, job: Option<Job>, id: JobId, json: Vec<u8>, result: JobResult, release: Release) {
        let log = format!("[git-ci] {}\n", result.reason.as_deref().unwrap_or(""));
        let entry =
            Entry { id, job_json: json, result, log: Content::Bytes(log.into_bytes()), files: vec![], cache_key: None };
        let at = Instant::now();
        let (released, refused, claim, _workdir) = (false, false, None, None);
        self.to_publish.push(Pending { job, entry, release, released, at, refused, claim, _workdir });
    }
}

/// Wakes the worker when the hub's refs change on disk.
fn watch(git_dir: &std::path::Path, tx: Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    crate::ref_watch::watch(git_dir, move || {
        let _ = tx.send(Wake::RefsChanged);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::JobSpec;

    /// A bare hub holding one commit of the empty tree: (hub, commit, tree).
    pub(super) fn hub_with_a_commit(dir: &std::path::Path) -> (std::path::PathBuf, String, String) {
        let hub = dir.join("hub.git");
        gix::init_bare(&hub).unwrap();
        let git = || {
            let who = [("GIT_AUTHOR_NAME", "t"), ("GIT_COMMITTER_NAME", "t")];
            let mails = [("GIT_AUTHOR_EMAIL", "t@t"), ("GIT_COMMITTER_EMAIL", "t@t")];
            who.into_iter().chain(mails).fold(crate::git::Git::new(&hub).unwrap(), |g, (k, v)| g.env(k, v))
        };
        let text = |out: Vec<u8>| String::from_utf8(out).unwrap().trim().to_owned();
        // No index yet: the empty tree.
        let tree = text(git().arg("write-tree").env("GIT_INDEX_FILE", dir.join("index")).run().unwrap());
        let commit = text(git().args(["commit-tree", &tree, "-m", "t"]).run().unwrap());
        (hub, commit, tree)
    }

    /// Sharing the queue out must not starve a job whose first worker will
    /// never take it: here one that needs a label only the other worker
    /// has. That worker keeps finding jobs of its own; the job is still
    /// run once it has sat at the front for a while, not after the rest.
    #[test]
    fn a_job_its_first_worker_cannot_run_is_not_left_behind_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let (hub_path, commit, tree) = hub_with_a_commit(dir.path());
        let hub: Arc<dyn Hub> = Arc::new(crate::hub::LocalHub::open(&hub_path).unwrap());
        let sharers = Sharers::new("a", ["b"]);
        let gpu_job = (0..)
            .map(|i| {
                let mut spec = JobSpec::ad_hoc("true");
                spec.requires.insert("gpu".into(), "yes".into());
                spec.env.insert("N".into(), format!("{i}"));
                Job::new(spec, &commit, &tree, "refs/heads/main", "t")
            })
            .find(|job| sharers.owner(&job.id) == "a")
            .unwrap();
        let others: Vec<Job> = (0..40)
            .map(|i| {
                let mut spec = JobSpec::ad_hoc("sleep 0.2");
                spec.env.insert("N".into(), format!("{i}"));
                Job::new(spec, &commit, &tree, "refs/heads/main", "t")
            })
            .collect();
        queue::submit(&*hub, std::slice::from_ref(&gpu_job)).unwrap();
        queue::submit(&*hub, &others).unwrap();

        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let threads: Vec<_> = [("a", None), ("b", Some("yes"))]
            .into_iter()
            .map(|(name, gpu)| {
                let mut cfg = Config::new(name.to_owned(), dir.path().join(name));
                cfg.once = true;
                cfg.poll = Duration::from_millis(100);
                if let Some(v) = gpu {
                    cfg.labels.insert("gpu".into(), v.into());
                }
                let order = Arc::clone(&order);
                let worker = Worker::new(Arc::clone(&hub), cfg, move |e| {
                    if let Event::Published { result, .. } = e {
                        order.lock().unwrap().push(result.id.clone());
                    }
                });
                std::thread::spawn(move || worker.run())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order.len(), 41, "every job published once: {order:?}");
        let at = order.iter().position(|id| *id == gpu_job.id).expect("the gpu job ran");
        assert!(order.len() - at > 8, "the gpu job ran {at}th of {}, behind nearly all the others", order.len());
    }

    #[test]
    fn the_claim_window_grows_with_rivals_and_lost_races() {
        assert_eq!(claim_window(1, 0, 1, 100), 1, "alone: oldest first");
        assert_eq!(claim_window(1, 3, 4, 100), 16, "four workers of four slots: a batch each");
        assert_eq!(claim_window(4, 1, 2, 100), 8, "lost races widen it further");
        assert_eq!(claim_window(1, 15, 1, 5), 5, "never past the candidates");
    }

    #[test]
    fn an_idle_worker_stretches_its_poll_and_snaps_back_on_work() {
        let secs = Duration::from_secs;
        let cfg = Config { poll: secs(2), poll_max: secs(30), ..Config::new("w".to_owned(), PathBuf::from("/tmp")) };
        let mut poll = cfg.poll;
        let mut seen = Vec::new();
        for _ in 0..6 {
            poll = next_idle_poll(poll, &cfg, false);
            seen.push(poll.as_secs());
        }
        assert_eq!(seen, [4, 8, 16, 30, 30, 30]);
        assert_eq!(next_idle_poll(poll, &cfg, true), secs(2));
        let fixed = Config { poll_max: secs(1), ..cfg };
        assert_eq!(next_idle_poll(secs(2), &fixed, false), secs(2), "poll_max below poll keeps it fixed");
    }
}
