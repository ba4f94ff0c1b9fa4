//! A worker's settings ([`Config`]), what it reports ([`Event`]) and what
//! its owner may tell it ([`Control`]): the worker's interface, apart from
//! its loop.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::id::JobId;
use crate::model::{Job, JobResult};

/// `git ci worker --poll`'s default: how soon a worker that saw work looks
/// again. A look that finds nothing new is one ref listing on the hub.
pub const DEFAULT_POLL: Duration = Duration::from_millis(200);
/// `--poll-max`'s default: an idle worker costs the hub one request every
/// 2 s, as the fixed poll did before polls adapted.
pub const DEFAULT_POLL_MAX: Duration = Duration::from_secs(2);

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
    /// How often a remote hub is looked at while there is work and for a
    /// while after the queue emptied (a local hub's changes wake the
    /// worker at once).
    pub poll: Duration,
    /// An idle worker doubles its poll interval after each look that finds
    /// nothing, up to this, and goes back to `poll` when it finds work: a
    /// large fleet then costs a hosted hub few reads. At or below `poll`,
    /// the interval is fixed.
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
    /// The sandbox jobs run in, and which jobs get `secrets`.
    pub isolation: crate::isolation::Isolation,
    /// Where others reach a live instance (`serve = true`): `{port}` is
    /// replaced by its port (`--public-url`).
    pub public_url: String,
    /// The most live instances this worker keeps; starting one more stops
    /// the oldest (`--max-instances`).
    pub max_instances: usize,
    /// A `jobs` budget shared with the workers of other hubs in this
    /// process ([`super::budget`]); `None`: this worker's own `jobs`.
    pub seat: Option<super::budget::Seat>,
    /// Past this many bytes in `work_dir`, remove this hub's least
    /// recently used caches ([`super::clean::Shrink`]).
    pub cache_max_size: Option<u64>,
    /// Whether the worker registers on the hub (`refs/ci/workers/<name>`).
    /// Off for `git ci run` in a clone that is its own hub: no one else
    /// looks there for workers, and the registration and its removal were
    /// two ref transactions of every run.
    pub register: bool,
}

impl Config {
    /// A worker with the documented defaults: every queue, one job at a
    /// time, 60 s leases, polls every 200 ms after work and backing off to
    /// every 2 s when idle, 16 MiB logs.
    pub fn new(name: impl Into<String>, work_dir: PathBuf) -> Config {
        Config {
            name: name.into(),
            queues: vec![],
            labels: Self::default_labels(),
            jobs: 1,
            once: false,
            poll: DEFAULT_POLL,
            poll_max: DEFAULT_POLL_MAX,
            lease: Duration::from_secs(60),
            work_dir,
            log_cap: 16 << 20,
            kill_grace: Duration::from_secs(10),
            only: None,
            secrets: vec![],
            require_signed: None,
            log_interval: Duration::from_secs(3),
            roll_at: crate::chain::ROLL_AT,
            isolation: Default::default(),
            public_url: "http://127.0.0.1:{port}".into(),
            max_instances: 16,
            seat: None,
            cache_max_size: None,
            register: true,
        }
    }

    pub fn default_labels() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("os".to_owned(), std::env::consts::OS.to_owned()),
            ("arch".to_owned(), std::env::consts::ARCH.to_owned()),
        ])
    }

    /// The poll interval of an idle worker: `poll_max`, or `poll` when
    /// that is longer.
    pub fn idle_poll(&self) -> Duration {
        self.poll_max.max(self.poll)
    }

    pub(super) fn serves(&self, queue: &str) -> bool {
        crate::model::serves(&self.queues, queue)
    }

    pub(super) fn can_run(&self, job: &Job) -> bool {
        job.spec.requires.iter().all(|(k, v)| crate::model::has_label(&self.name, &self.labels, k, v))
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
    /// `cache_max_size` was passed: caches least recently used were removed.
    Cleaned {
        freed: super::clean::Freed,
    },
    HubError {
        error: String,
    },
    Draining,
    /// A `serve = true` job's service answers at `url` and keeps running.
    InstanceUp {
        id: JobId,
        url: String,
    },
    /// A live instance was stopped (superseded, asked, its branch deleted,
    /// the worker stopping) or ended by itself.
    InstanceDown {
        id: JobId,
        url: String,
        why: String,
    },
    /// Processes of jobs whose git-ci had died (killed with SIGKILL, say)
    /// were still running on this machine: they were killed.
    StraysKilled {
        strays: Vec<crate::runner::strays::Stray>,
    },
}

/// Sent from signal handlers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Stop claiming, finish and publish running jobs, exit.
    Drain,
    /// Cancel running jobs, publish them as cancelled, exit.
    CancelAll,
}
