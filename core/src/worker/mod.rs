//! The worker: claims jobs it can run, runs up to `jobs` at once, keeps its
//! claims alive, and publishes results, batching claims and completes into
//! single transactions where it can.
//!
//! One coordinating thread owns all protocol state; each job runs on its
//! own thread and reports back through the same channel as ref-change
//! notifications and shutdown requests, so the coordinator sleeps until
//! something happens (no poll delay on a local hub).

pub mod backoff;
mod budget;
mod cache;
mod claim;
mod clean;
mod config;
mod execute;
mod instances;
mod lease;
mod live_log;
mod mask;
mod needed;
mod outputs;
mod owner;
mod pace;
mod promote;
mod publish;
mod registry;
mod serve;
mod share;
mod sharing;
mod stop;
mod trust;
mod unpublishable;
mod unrun;

pub use budget::{Budget, Seat};
pub use clean::{Freed, clean, human_bytes, leftover_checkouts};
pub use config::{Config, Control, DEFAULT_POLL, DEFAULT_POLL_MAX, Event};
pub use live_log::{LiveTail, parse as parse_live_log, read as read_live_log};
pub use owner::hostname;
pub use registry::NameError;

use std::collections::{HashMap, HashSet};
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
use execute::{Assignment, Ran};
use lease::cancel_check_every;
use publish::PUBLISH_LINGER;
use share::Sharers;

/// How long a worker runs before it watches a local hub's refs (inotify).
/// Closing an inotify instance makes the process's exit wait out a kernel
/// grace period, 12–15 ms measured here, which `git ci run` of a quick job
/// paid for a watch it never needed; a worker that lives longer watches
/// from this moment on, and looks at the hub once when it starts to.
const WATCH_AFTER: Duration = Duration::from_millis(100);

/// How often a worker looks for jobs of dead git-ci processes on its
/// machine: a scan of every process's environment, a few milliseconds.
const STRAY_SWEEP_EVERY: Duration = Duration::from_secs(60);

enum Wake {
    RefsChanged,
    Started(JobId, Interrupter, PathBuf),
    Ran(Box<Ran>),
    Control(Control),
    /// A slot of a shared budget freed: only wakes the loop.
    SlotFree,
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

pub struct Worker {
    hub: Arc<dyn Hub>,
    cfg: Arc<Config>,
    on_event: Box<dyn Fn(&Event) + Send + Sync>,
    tx: Sender<Wake>,
    rx: Receiver<Wake>,
    active: HashMap<JobId, Active>,
    /// Our `done` chain, read once at start and then moved only by us (and gc).
    chain: Chain,
    /// What claim rounds carry from one to the next ([`claim`]).
    rounds: claim::Rounds,
    /// The other workers claiming from this queue ([`share`]).
    peers: share::Peers,
    /// Heartbeats, others' claims watched for expiry, cancel requests ([`lease`]).
    leases: lease::Leases,
    /// Finished jobs and the publish under way ([`publish`]).
    publishing: publish::Publishing,
    /// Whether we are connected, and how the hub answers lately ([`stop`]).
    health: stop::Health,
    draining: bool,
    /// Asked to stop a second time: cancel, and do not wait on the hub.
    hurry: bool,
    registration: registry::Registration,
    /// Services of `serve = true` jobs, running on ([`instances`]).
    instances: instances::Instances,
    live_logs: live_log::LiveLogs,
    masker: mask::Masker,
    summary: Summary,
    /// `--cache-max-size` ([`clean`]).
    shrink: clean::Shrink,
    /// When to look for jobs of dead git-ci processes next
    /// ([`crate::runner::strays`]); now, at start.
    next_stray_sweep: Instant,
    /// The look under way, on its own thread.
    stray_sweep: Option<std::thread::JoinHandle<Vec<crate::runner::strays::Stray>>>,
}

impl Worker {
    pub fn new(hub: Arc<dyn Hub>, cfg: Config, on_event: impl Fn(&Event) + Send + Sync + 'static) -> Worker {
        let (tx, rx) = mpsc::channel();
        let chain = Chain::new(cfg.name.clone(), None).rolling_at(cfg.roll_at);
        let publish_linger = if hub.watch_path().is_some() { Duration::ZERO } else { PUBLISH_LINGER };
        Worker {
            hub,
            leases: lease::Leases::new(&cfg),
            rounds: claim::Rounds::new(&cfg),
            registration: registry::Registration::new(&cfg),
            instances: instances::Instances::new(&cfg),
            live_logs: live_log::LiveLogs::new(cfg.log_interval),
            masker: mask::Masker::new(cfg.secrets.iter().map(|(_, v)| v.as_str())),
            shrink: clean::Shrink::new(cfg.cache_max_size),
            next_stray_sweep: Instant::now(),
            stray_sweep: None,
            cfg: Arc::new(cfg),
            on_event: Box::new(on_event),
            tx,
            rx,
            active: HashMap::new(),
            publishing: publish::Publishing::new(publish_linger),
            chain,
            peers: share::Peers::default(),
            health: stop::Health::default(),
            draining: false,
            hurry: false,
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
        // A local hub's refs are watched once the worker has run for
        // WATCH_AFTER (see there); until then the loop wakes by then.
        let mut _watcher = None;
        let mut watch_due = self.hub.watch_path().map(|_| Instant::now() + WATCH_AFTER);
        if let Some(seat) = &self.cfg.seat {
            let tx = self.tx.clone();
            seat.on_free(move || {
                let _ = tx.send(Wake::SlotFree);
            });
        }
        loop {
            if watch_due.is_some_and(|due| Instant::now() >= due) {
                watch_due = None;
                _watcher = self.hub.watch_path().and_then(|p| watch(&p, self.tx.clone()));
                // A cancel request made before the watch began: one look.
                self.leases.next_cancel_check = Instant::now();
            }
            while let Ok(wake) = self.rx.try_recv() {
                self.handle(wake);
            }
            let mut busy = false;
            let mut free = self.cfg.jobs.saturating_sub(self.active.len());
            let lingering = self.lingering();
            // A budget shared with other hubs: it may let us claim fewer.
            let mut refused = false;
            if let Some(seat) = &self.cfg.seat {
                let want = if !self.draining && !lingering && self.health.backoff.ready() { free } else { 0 };
                free = seat.take(self.active.len(), want);
                refused = want > 0 && free == 0;
            }
            // While the queue is busy, a claim round publishes what is
            // finished too, in the claim's own transaction: one push a round,
            // not two. Else the result goes at once, without waiting for a
            // look at the queue first; but for a `once` worker with nothing
            // running on a remote hub, whose publish may then carry its
            // leaving (`publish_leaving`), a push saved.
            let claiming = free > 0 && !self.draining && !lingering;
            let leaving_soon = self.cfg.once && self.active.is_empty() && self.hub.watch_path().is_none();
            let combine = claiming && (self.rounds.busy || leaving_soon);
            if !combine && !lingering && self.publish_due() && self.health.backoff.ready() {
                busy |= self.publish();
            }
            let holding = !self.active.is_empty() || self.publishing.queue.iter().any(|p| p.claim.is_some());
            if holding && Instant::now() >= self.leases.next_heartbeat && self.health.backoff.ready() {
                self.heartbeat();
            }
            // A claim push to come carries a registration refresh that is
            // due: while the queue is busy, the next one is at most a job
            // away (a 1-slot worker is here mostly while its job runs).
            let claims_to_come = self.rounds.busy && !self.draining && !lingering;
            self.housekeeping(claims_to_come && self.registration.may_ride());
            let idle = self.active.is_empty() && self.publishing.queue.is_empty();
            if self.draining && idle || self.leaving() {
                break;
            }
            let mut found_work = false;
            if claiming && self.health.backoff.ready() {
                match self.claim_round(free) {
                    Ok(round) => {
                        found_work = round.eligible > 0;
                        busy |= round.retry_now;
                    }
                    Err(e) => self.hub_failed(e),
                }
                if let Some(seat) = &self.cfg.seat {
                    seat.settle(self.active.len());
                }
            } else if !self.active.is_empty() && self.health.backoff.ready() {
                // No claim round to see cancel requests in: look for them alone.
                if let Err(e) = self.check_cancels() {
                    self.hub_failed(e);
                }
            }
            // Refused a slot: our turn comes, so neither exit nor stretch the poll.
            found_work |= refused;
            self.rounds.saw_work(&self.cfg, found_work || !self.active.is_empty());
            if self.cfg.once && idle && !found_work && self.health.backoff.ready() {
                break;
            }
            if busy {
                continue;
            }
            let mut wait = self.next_wake();
            if let Some(due) = watch_due {
                wait = wait.min(due.saturating_duration_since(Instant::now()));
            }
            match self.rx.recv_timeout(wait) {
                Ok(wake) => self.handle(wake),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.stop_all_instances();
        // A short look: what it killed is told before the worker ends.
        self.report_strays();
        if let Some(seat) = &self.cfg.seat {
            seat.leave();
        }
        if let Err(e) = self.registration.remove(&*self.hub) {
            self.emit(Event::HubError { error: format!("could not remove the worker's registration: {e}") });
        }
        self.summary
    }

    /// The registration and live logs, when due; failures only delay them.
    fn housekeeping(&mut self, registration_rides: bool) {
        if self.shrink.due(self.summary.published) {
            self.shrink_caches();
        }
        if self.stray_sweep.as_ref().is_some_and(|t| t.is_finished()) {
            self.report_strays();
        }
        if self.stray_sweep.is_none() && Instant::now() >= self.next_stray_sweep {
            self.next_stray_sweep = Instant::now() + STRAY_SWEEP_EVERY;
            // Off the loop: the scan reads every process's environment,
            // and the first one comes as `git ci run` starts its job.
            self.stray_sweep = Some(std::thread::spawn(crate::runner::strays::kill_strays));
        }
        if !self.health.backoff.ready() {
            return;
        }
        self.instances_housekeeping();
        if self.registration.due() && !registration_rides {
            self.refresh_registration();
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

    fn refresh_registration(&mut self) {
        let running = self.active.keys().cloned().collect();
        if let Err(e) = self.registration.refresh(&*self.hub, running) {
            self.emit(Event::HubError { error: format!("could not refresh the worker's registration: {e}") });
        }
    }

    /// Waits for the sweep under way, if any, and tells what it killed.
    fn report_strays(&mut self) {
        let Some(sweep) = self.stray_sweep.take() else { return };
        if let Ok(strays) = sweep.join()
            && !strays.is_empty()
        {
            self.emit(Event::StraysKilled { strays });
        }
    }

    /// Over `cache_max_size`: this hub's caches least recently used go,
    /// none of a job we hold (its run moves them in and out).
    fn shrink_caches(&mut self) {
        let busy = self.active.values().map(|a| a.job.spec.name.clone()).collect();
        let hub_caches = self.cfg.work_dir.join("cache").join(self.hub.cache_key());
        let freed = self.shrink.run(&self.cfg.work_dir, &hub_caches, &busy, self.summary.published);
        if freed.dirs() > 0 || !freed.failed.is_empty() {
            self.emit(Event::Cleaned { freed });
        }
    }

    fn next_wake(&self) -> Duration {
        let now = Instant::now();
        // While claims go, a refresh that is due waits for one to carry it.
        let refresh = if self.rounds.busy { self.registration.alone_by() } else { self.registration.next() };
        let mut wait = self.rounds.idle_poll.min(refresh.saturating_duration_since(now));
        if let Some(check) = self.instances.next() {
            wait = wait.min(check.saturating_duration_since(now));
        }
        if !self.active.is_empty() {
            wait = wait.min(self.leases.next_heartbeat.saturating_duration_since(now));
            wait = wait.min(self.live_logs.next().saturating_duration_since(now));
        }
        if let Some(oldest) = self.publishing.queue.iter().map(|p| p.at).min().filter(|_| self.lingering()) {
            wait = wait.min((oldest + self.publishing.linger).saturating_duration_since(now));
        }
        if let Some(retry) = self.publishing.queue.iter().filter_map(|p| p.retry_at).min() {
            wait = wait.min(retry.saturating_duration_since(now));
        }
        if let Some(r) = self.health.backoff.remaining() {
            wait = wait.max(r).min(self.cfg.idle_poll().max(r));
        }
        wait
    }

    fn handle(&mut self, wake: Wake) {
        match wake {
            // Only a local hub's watcher sends it, where a look at the
            // cancel requests is a listing of a few refs: a `git ci cancel`
            // of a running job is seen at once, not at the next poll.
            Wake::RefsChanged => self.leases.next_cancel_check = Instant::now(),
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
            Wake::SlotFree => {}
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
}

/// Wakes the worker when the hub's refs change on disk.
fn watch(git_dir: &std::path::Path, tx: Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    crate::ref_watch::watch(git_dir, move || {
        let _ = tx.send(Wake::RefsChanged);
    })
}

#[cfg(test)]
mod tests {
    use super::pace::claim_window;
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
                // Fixed 100 ms polls: the gpu job is overdue after 2 s
                // (two idle polls, at least 2 s), a quarter of the run.
                cfg.poll = Duration::from_millis(100);
                cfg.poll_max = cfg.poll;
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

    /// A backlog whose oldest jobs need a gpu: the worker without one
    /// promotes and runs the jobs behind them, the gpu worker the rest, and
    /// the backlog ends empty with every job published once.
    #[test]
    fn parked_jobs_are_promoted_by_workers_that_can_run_them() {
        let dir = tempfile::tempdir().unwrap();
        let (hub_path, commit, tree) = hub_with_a_commit(dir.path());
        let hub: Arc<dyn Hub> = Arc::new(crate::hub::LocalHub::open(&hub_path).unwrap());
        let jobs: Vec<Job> = (0..60)
            .map(|i| {
                let mut spec = JobSpec::ad_hoc("true");
                if i < 25 {
                    spec.requires.insert("gpu".into(), "yes".into());
                }
                spec.env.insert("N".into(), format!("{i}"));
                Job::new(spec, &commit, &tree, "refs/heads/main", "t")
            })
            .collect();
        hub.transact(&queue::submit_parking_edits(&*hub, &jobs, Some(0)).unwrap()).unwrap();
        let published = Arc::new(std::sync::Mutex::new(Vec::new()));
        let threads: Vec<_> = [("plain", None), ("gpu", Some("yes"))]
            .into_iter()
            .map(|(name, gpu)| {
                let mut cfg = Config::new(name.to_owned(), dir.path().join(name));
                cfg.once = true;
                cfg.poll = Duration::from_millis(50);
                cfg.poll_max = cfg.poll;
                if let Some(v) = gpu {
                    cfg.labels.insert("gpu".into(), v.into());
                }
                let published = Arc::clone(&published);
                let worker = Worker::new(Arc::clone(&hub), cfg, move |e| {
                    if let Event::Published { result, .. } = e {
                        published.lock().unwrap().push((result.id.clone(), result.worker.clone()));
                    }
                });
                std::thread::spawn(move || worker.run())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let published = published.lock().unwrap();
        let ids: HashSet<&JobId> = published.iter().map(|(id, _)| id).collect();
        assert_eq!((published.len(), ids.len()), (60, 60), "every job published once: {published:?}");
        for (id, worker) in published.iter() {
            let needs_gpu = jobs.iter().position(|j| &j.id == id).unwrap() < 25;
            assert!(!needs_gpu || worker == "gpu", "{id} needs a gpu, ran on {worker}");
        }
        assert!(published.iter().any(|(_, w)| w == "plain"), "the plain worker ran none");
        for prefix in [refs::QUEUE, refs::BACKLOG, refs::PINS, refs::CLAIMS] {
            assert!(hub.list(prefix).unwrap().is_empty(), "{prefix} left behind");
        }
    }

    #[test]
    fn the_claim_window_grows_with_rivals_and_lost_races() {
        assert_eq!(claim_window(1, 0, 1, 100), 1, "alone: oldest first");
        assert_eq!(claim_window(1, 3, 4, 100), 16, "four workers of four slots: a batch each");
        assert_eq!(claim_window(4, 1, 2, 100), 8, "lost races widen it further");
        assert_eq!(claim_window(1, 15, 1, 5), 5, "never past the candidates");
    }
}
