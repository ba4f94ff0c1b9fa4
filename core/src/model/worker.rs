//! `worker.json`: a worker's registration under `refs/ci/workers/<name>`
//! (its labels, queues, running jobs, sandbox and which process holds the
//! name), refreshed with its heartbeats; a registration not refreshed for a
//! few intervals means the worker is gone.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{DocError, VERSION, parse_doc, to_json};
use crate::id::JobId;

/// `worker.json`: a worker's registration under `refs/ci/workers/<name>`,
/// refreshed with its heartbeats and removed when it stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkerInfo {
    pub version: u32,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Empty: every queue.
    pub queues: Vec<String>,
    pub jobs: usize,
    pub running: Vec<JobId>,
    pub platform: String,
    pub git_ci_version: String,
    pub started_at: String,
    pub last_seen: String,
    /// How often it refreshes this document; older than a few of these
    /// means the worker is gone.
    pub refresh_ms: u64,
    /// Which process holds the name: its machine, its process id there and
    /// a random id of this run. Documents of older workers lack them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// How it isolates jobs (`git ci worker --sandbox`); absent: jobs run
    /// on the host as the worker's user (and in documents of older workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxInfo>,
    /// Its live instances (`serve = true` jobs still running after they
    /// were published); absent in documents of older workers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceInfo>,
}

/// One live instance a worker runs: a service started by a `serve = true`
/// job, listed by `git ci instances` and linked from the site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceInfo {
    /// The job that started it (its result carries the same `url`).
    pub id: JobId,
    /// The job's name (`preview`).
    pub job: String,
    /// The branch it serves (`refs/heads/main`).
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub commit: String,
    pub url: String,
    /// When it became ready (RFC 3339).
    pub since: String,
    /// The job's project, when the hub serves several (absent: the hub's own).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
}

impl InstanceInfo {
    /// Whether `other` serves the same thing: the same job of the same
    /// project on the same branch, so that the later of the two supersedes
    /// the earlier. Two projects' `main` are different branches.
    pub fn same_place(&self, other: &InstanceInfo) -> bool {
        self.project == other.project && self.git_ref == other.git_ref && self.job == other.job
    }

    /// `main` for `refs/heads/main`.
    pub fn branch(&self) -> &str {
        self.git_ref.strip_prefix("refs/heads/").unwrap_or(&self.git_ref)
    }

    /// The branch as people name it: `libfoo/main` for project libfoo's
    /// main, `main` for the hub's own project.
    pub fn place(&self) -> String {
        if self.project.is_empty() { self.branch().to_owned() } else { format!("{}/{}", self.project, self.branch()) }
    }
}

/// A sandboxed worker's settings, for `git ci doctor` and the site.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxInfo {
    /// `bubblewrap 0.8.0`.
    #[serde(default)]
    pub tool: String,
    /// Whether jobs with `network = true` get the network.
    #[serde(default)]
    pub network: bool,
    /// How `pids_max` and `memory_max` are enforced: `cgroup v2`, `cgroup
    /// v1`, `rlimits` or `none`.
    #[serde(default)]
    pub limits: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_max: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binds: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ro_binds: Vec<String>,
}

impl SandboxInfo {
    /// One line for people: `bubblewrap 0.8.0, no network, limits by cgroup
    /// v1: pids 4096, memory 4G, disk 10G`.
    pub fn summary(&self) -> String {
        let net = if self.network { "network for jobs that ask" } else { "no network" };
        let size = |b: u64| crate::runner::limits::human(b);
        let caps: Vec<String> = [
            self.pids_max.map(|n| format!("pids {n}")),
            self.memory_max.map(|b| format!("memory {}", size(b))),
            self.disk_max.map(|b| format!("disk {}", size(b))),
        ]
        .into_iter()
        .flatten()
        .collect();
        let limits = match (caps.is_empty(), self.memory_max.or(self.pids_max).is_some()) {
            (true, _) => "no limits".to_owned(),
            (false, true) => format!("limits by {}: {}", self.limits, caps.join(", ")),
            (false, false) => format!("limits: {}", caps.join(", ")),
        };
        let tool = if self.tool.is_empty() { "sandboxed" } else { &self.tool };
        format!("{tool}, {net}, {limits}")
    }
}

/// How long after its last refresh a registration refreshed every
/// `refresh` means a worker gone: a few refreshes missed, and never under
/// two minutes, as the clocks of two machines disagree a little.
pub fn gone_after(refresh: Duration) -> Duration {
    (refresh * 5).max(Duration::from_secs(120))
}

/// Whether a worker serving `queues` takes jobs from `queue`: no queues
/// means every queue.
pub fn serves(queues: &[String], queue: &str) -> bool {
    queues.is_empty() || queues.iter().any(|q| q == queue)
}

/// Whether a worker named `name` with `labels` has the label `k=v`: its
/// name counts as the label `name=<name>` ([`super::NAME_LABEL`]) whether
/// or not it lists it.
pub fn has_label(name: &str, labels: &BTreeMap<String, String>, k: &str, v: &str) -> bool {
    labels.get(k).is_some_and(|l| l == v) || (k == super::NAME_LABEL && v == name)
}

impl WorkerInfo {
    /// Whether it serves the job's queue and has every label it requires.
    pub fn can_run(&self, job: &crate::model::Job) -> bool {
        self.serves(&job.spec.queue) && job.spec.requires.iter().all(|(k, v)| has_label(&self.name, &self.labels, k, v))
    }

    /// Refreshed recently enough, as of `now`, to be a worker still there.
    pub fn seen_lately(&self, now: SystemTime) -> bool {
        let Some(seen) = crate::time::parse_rfc3339(&self.last_seen) else {
            return false;
        };
        now.duration_since(seen).unwrap_or_default() <= gone_after(Duration::from_millis(self.refresh_ms))
    }

    /// Whether it takes jobs from `queue`.
    pub fn serves(&self, queue: &str) -> bool {
        serves(&self.queues, queue)
    }

    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    pub fn from_json(bytes: &[u8]) -> Result<WorkerInfo, DocError> {
        parse_doc("worker", bytes)
    }

    pub fn new(
        name: &str,
        labels: BTreeMap<String, String>,
        queues: Vec<String>,
        jobs: usize,
        refresh_ms: u64,
    ) -> Self {
        let now = crate::time::now_rfc3339();
        WorkerInfo {
            version: VERSION,
            name: name.to_owned(),
            labels,
            queues,
            jobs,
            running: vec![],
            platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            git_ci_version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: now.clone(),
            last_seen: now,
            refresh_ms,
            host: None,
            pid: None,
            instance: None,
            sandbox: None,
            instances: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registration_is_live_for_a_few_refreshes_and_serves_its_queues() {
        let mut info = WorkerInfo::new("w", BTreeMap::new(), vec!["linux".into()], 2, 60_000);
        let seen = crate::time::parse_rfc3339(&info.last_seen).expect("it writes RFC 3339");
        assert!(info.seen_lately(seen + Duration::from_secs(300)));
        assert!(!info.seen_lately(seen + Duration::from_secs(301)), "five refreshes of a minute missed");
        info.refresh_ms = 1_000;
        assert!(info.seen_lately(seen + Duration::from_secs(120)), "never under two minutes");
        info.refresh_ms = 60_000;
        assert!(info.serves("linux") && !info.serves("mac"));
        info.queues.clear();
        assert!(info.serves("mac"), "no queues: every queue");
        info.last_seen = "yesterday".into();
        assert!(!info.seen_lately(seen));
    }

    #[test]
    fn registrations_of_older_workers_still_read() {
        let old = br#"{"version": 1, "name": "w", "labels": {}, "queues": [], "jobs": 1, "running": [],
            "platform": "linux-x86_64", "git_ci_version": "0.1.0", "started_at": "2026-11-01T12:00:00Z",
            "last_seen": "2026-11-01T12:00:00Z", "refresh_ms": 20000}"#;
        let info = WorkerInfo::from_json(old).unwrap();
        assert_eq!((info.host, info.pid, info.instance, info.sandbox), (None, None, None, None));
        let mut new = WorkerInfo::new("w", BTreeMap::new(), vec![], 1, 1000);
        new.pid = Some(7);
        let text = String::from_utf8(new.to_json()).unwrap();
        assert!(text.contains("\"pid\": 7") && !text.contains("\"host\"") && !text.contains("sandbox"), "{text}");
        let sandboxed = br#"{"version": 1, "name": "w", "labels": {}, "queues": [], "jobs": 1, "running": [],
            "platform": "linux-x86_64", "git_ci_version": "0.1.0", "started_at": "2026-11-01T12:00:00Z",
            "last_seen": "2026-11-01T12:00:00Z", "refresh_ms": 20000,
            "sandbox": {"tool": "bubblewrap 0.8.0", "limits": "cgroup v1", "pids_max": 64, "disk_max": 1073741824}}"#;
        let info = WorkerInfo::from_json(sandboxed).unwrap().sandbox.unwrap();
        assert_eq!(info.summary(), "bubblewrap 0.8.0, no network, limits by cgroup v1: pids 64, disk 1G");
    }
}
