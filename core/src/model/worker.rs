use std::collections::BTreeMap;

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
}

impl WorkerInfo {
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
        }
    }
}
