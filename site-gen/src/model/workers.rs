//! Worker registrations, `refs/ci/workers/<name>`: read leniently, since
//! the document is young and readers ignore what they do not know.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use git_ci_core::Hub;
use git_ci_core::refs;
use serde::Deserialize;

use crate::error::SiteError;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkerDoc {
    pub version: u32,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub queues: Vec<String>,
    pub jobs: Option<u64>,
    pub running: Vec<String>,
    pub platform: String,
    pub git_ci_version: String,
    pub started_at: String,
    pub last_seen: String,
    pub refresh_ms: Option<u64>,
    /// How it isolates jobs; absent: not at all (or an older worker).
    pub sandbox: Option<git_ci_core::model::SandboxInfo>,
    /// Its live instances (`serve = true` jobs still running).
    pub instances: Vec<git_ci_core::model::InstanceInfo>,
}

#[derive(Clone, Debug)]
pub struct Worker {
    /// The name in the ref, which is what identifies the worker.
    pub name: String,
    /// `None`: the registration could not be read.
    pub doc: Option<WorkerDoc>,
    /// The registration as the core reads it, strictly (what says whether
    /// a worker could run a job); `None` when it does not pass.
    pub info: Option<git_ci_core::model::WorkerInfo>,
    /// Its registration is older than a live worker's can be
    /// ([`git_ci_core::model::gone_after`], the rule `doctor` and
    /// the claim lease follow): offline, probably killed.
    pub stale: bool,
}

/// A registration older than this many refresh periods (and two minutes)
/// is offline, as `git ci doctor` judges it.
pub const STALE_PERIODS: u32 = 5;
/// What to assume when a registration does not say how often it refreshes.
const DEFAULT_REFRESH: Duration = Duration::from_secs(60);

pub fn read(hub: &dyn Hub) -> Result<Vec<Worker>, SiteError> {
    let mut out = Vec::new();
    for (name, blob) in hub.list(refs::WORKERS)? {
        let name = name[refs::WORKERS.len()..].to_owned();
        let bytes = hub.read_blob(blob).ok();
        let doc = bytes
            .as_deref()
            .and_then(|b| serde_json::from_slice::<WorkerDoc>(b).ok())
            .filter(|d| d.version == git_ci_core::model::VERSION);
        let info = bytes.and_then(|b| git_ci_core::validate::worker_blob(&b, &name).ok());
        out.push(Worker { name, doc, info, stale: false });
    }
    Ok(out)
}

/// Marks workers unheard of for [`STALE_PERIODS`] as of `now`.
pub fn mark_stale(workers: &mut [Worker], now: SystemTime) {
    for w in workers {
        w.stale = w.doc.as_ref().is_none_or(|d| is_stale(d, now));
    }
}

fn is_stale(doc: &WorkerDoc, now: SystemTime) -> bool {
    let Some(seen) = git_ci_core::time::parse_rfc3339(&doc.last_seen) else {
        return true;
    };
    let period = doc.refresh_ms.map_or(DEFAULT_REFRESH, Duration::from_millis);
    now.duration_since(seen).unwrap_or_default() > git_ci_core::model::gone_after(period)
}
