//! What a document under `refs/ci/` must be (DESIGN.md, "The hub guards
//! itself"), and where the guard reads the hub's objects.
//!
//! One set of rules for everyone: readers of a hosted hub (no hooks there)
//! apply these per-document checks ([`job_blob`], [`claim_blob`],
//! [`worker_blob`], ...) to what they read, and the hub's pre-receive guard
//! ([`crate::guard`]) applies them to every pushed update, with the rules
//! of what one push may change on top.

use std::path::Path;
use std::time::Duration;

use gix::ObjectId;
use gix::objs::Kind;

use crate::id::JobId;
use crate::model::{Claim, Job, MAX_DOC_BYTES, WorkerInfo};
use crate::refs;

/// The header of a live-log blob (`worker::live_log`): `git-ci-live-log <n>\n`.
const LIVE_LOG_HEADER: &[u8] = b"git-ci-live-log ";

/// The hub's limits (git config `ci.maxLogBytes`, `ci.maxArtifactBytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Job, claim and worker documents.
    pub doc_bytes: u64,
    /// One job's log in a `done` tree.
    pub log_bytes: u64,
    /// All artifacts of one job together.
    pub artifact_bytes: u64,
    /// The longest lease a claim may take (`ci.maxLease`): a claim is
    /// stolen only after its lease, so a huge one holds a job for good.
    pub lease: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            doc_bytes: MAX_DOC_BYTES as u64,
            log_bytes: 64 << 20,
            artifact_bytes: 512 << 20,
            lease: Claim::MAX_LEASE,
        }
    }
}

impl Limits {
    /// The defaults, overridden by the repository's git config.
    pub fn from_config(config: &gix::config::Snapshot<'_>) -> Limits {
        let d = Limits::default();
        let get = |key: &str, default: u64| config.integer(key).and_then(|v| u64::try_from(v).ok()).unwrap_or(default);
        Limits {
            doc_bytes: d.doc_bytes,
            log_bytes: get("ci.maxLogBytes", d.log_bytes),
            artifact_bytes: get("ci.maxArtifactBytes", d.artifact_bytes),
            lease: config
                .string("ci.maxLease")
                .and_then(|v| humantime::parse_duration(&v.to_string()).ok())
                .unwrap_or(d.lease),
        }
    }
}

/// Where the guard reads objects and the hub's refs.
pub trait Store {
    /// Kind and size, without loading the object.
    fn header(&self, id: &ObjectId) -> Result<Option<(Kind, u64)>, String>;
    fn read(&self, id: &ObjectId) -> Result<Option<(Kind, Vec<u8>)>, String>;
    /// Whether `id` came with this push (it is in the quarantine).
    fn is_new(&self, id: &ObjectId) -> bool;
    /// Whether the hub has the ref `name` now (before the push).
    fn has_ref(&self, name: &str) -> Result<bool, String> {
        Ok(self.ref_value(name)?.is_some())
    }
    /// The value of the ref `name` on the hub now (before the push).
    fn ref_value(&self, name: &str) -> Result<Option<ObjectId>, String>;
    /// The value of job `id`'s queue ref on the hub now, whatever its queue.
    fn queue_value(&self, id: &JobId) -> Result<Option<ObjectId>, String>;
}

/// A queued job document, checked against its ref.
pub fn job_blob(bytes: &[u8], queue: &str, id: &JobId) -> Result<Job, String> {
    let job = Job::from_json(bytes).map_err(|e| format!("job document {e}"))?;
    if &job.id != id {
        return Err(format!("the job document's id is {}, not the ref's {id}", job.id));
    }
    if job.spec.queue != queue {
        return Err(format!("the job document's queue is {:?}, not the ref's {queue:?}", job.spec.queue));
    }
    Ok(job)
}

/// A claim document, checked against its ref.
pub fn claim_blob(bytes: &[u8], id: &JobId) -> Result<Claim, String> {
    let claim = Claim::from_json(bytes).map_err(|e| format!("claim document {e}"))?;
    if &claim.job != id {
        return Err(format!("the claim is for job {}, not the ref's {id}", claim.job));
    }
    refs::check_component("worker", &claim.worker)?;
    Ok(claim)
}

/// A worker registration, checked against its ref.
pub fn worker_blob(bytes: &[u8], name: &str) -> Result<WorkerInfo, String> {
    let info = WorkerInfo::from_json(bytes).map_err(|e| format!("worker document {e}"))?;
    if info.name != name {
        return Err(format!("the worker document names {:?}, not the ref's {name:?}", info.name));
    }
    Ok(info)
}

/// A request to stop a live instance: `{"version": 1, "job": <id>, ...}`.
pub fn stop_blob(bytes: &[u8], id: &JobId) -> Result<(), String> {
    let req: crate::instances::StopRequest =
        serde_json::from_slice(bytes).map_err(|e| format!("stop request is not a stop request: {e}"))?;
    if req.version != 1 || req.job != *id {
        return Err(format!("a stop request must be version 1 and name its ref's job {id}"));
    }
    Ok(())
}

/// A cancel request: `{"version": 1, "job": <id>, ...}`.
pub fn cancel_blob(bytes: &[u8], id: &JobId) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("cancel request is not valid JSON: {e}"))?;
    if v.get("version").and_then(serde_json::Value::as_u64) != Some(1) {
        return Err("cancel request lacks \"version\": 1".into());
    }
    match v.get("job").and_then(serde_json::Value::as_str) {
        Some(j) if j == id.as_str() => Ok(()),
        other => Err(format!("cancel request is for job {other:?}, not the ref's {id}")),
    }
}

/// A live log tail: the header line (a byte count, then the count of lines
/// before the tail from newer workers), then bytes.
pub fn live_log_blob(bytes: &[u8]) -> Result<(), String> {
    let rest = bytes.strip_prefix(LIVE_LOG_HEADER).ok_or("live log lacks its `git-ci-live-log <n>` header")?;
    let line = rest.split(|&b| b == b'\n').next().filter(|_| rest.contains(&b'\n')).unwrap_or_default();
    let counts = std::str::from_utf8(line).ok().and_then(|s| {
        let mut n = s.splitn(2, ' ');
        let bytes = n.next()?.parse::<u64>().ok()?;
        n.next().map_or(Some(bytes), |lines| lines.parse::<u64>().ok().map(|_| bytes))
    });
    match counts {
        Some(_) => Ok(()),
        None => Err("live log header does not give a byte count (and a line count)".into()),
    }
}

/// The hub's object database with the push's quarantine in front of it
/// (gix does not read `GIT_OBJECT_DIRECTORY`, which git points at the
/// quarantine for a pre-receive hook, so it is opened on its own).
pub struct HubStore {
    pub repo: gix::Repository,
    quarantine: Option<gix::odb::Handle>,
}

impl HubStore {
    /// The hub at `hub`, and the quarantine directory when there is one.
    pub fn open(hub: &Path, quarantine: Option<&Path>) -> Result<HubStore, String> {
        // Isolated: the hub's own configuration only (where `git ci hooks
        // install` and the guard's switch and limits live), no environment,
        // no global or system files to read on every claim.
        let repo = gix::open_opts(hub, gix::open::Options::isolated())
            .map_err(|e| format!("could not open the hub {}: {e}", hub.display()))?;
        let quarantine = match quarantine {
            Some(q) => Some(
                gix::odb::at(q, repo.object_hash())
                    .map_err(|e| format!("could not open the push's objects {}: {e}", q.display()))?,
            ),
            None => None,
        };
        Ok(HubStore { repo, quarantine })
    }
}

impl Store for HubStore {
    fn header(&self, id: &ObjectId) -> Result<Option<(Kind, u64)>, String> {
        use gix::objs::FindHeader;
        if let Some(q) = &self.quarantine
            && let Some(h) = q.try_header(id).map_err(|e| e.to_string())?
        {
            return Ok(Some((h.kind, h.size)));
        }
        Ok(self.repo.objects.try_header(id).map_err(|e| e.to_string())?.map(|h| (h.kind, h.size)))
    }

    fn read(&self, id: &ObjectId) -> Result<Option<(Kind, Vec<u8>)>, String> {
        use gix::objs::Find;
        let mut buf = Vec::new();
        if let Some(q) = &self.quarantine
            && let Some(d) = q.try_find(id, &mut buf).map_err(|e| e.to_string())?
        {
            return Ok(Some((d.kind, d.data.to_vec())));
        }
        let found = self.repo.objects.try_find(id, &mut buf).map_err(|e| e.to_string())?;
        Ok(found.map(|d| (d.kind, d.data.to_vec())))
    }

    fn is_new(&self, id: &ObjectId) -> bool {
        use gix::objs::Exists;
        match &self.quarantine {
            Some(q) => q.exists(id),
            // No quarantine (a check outside a hook): nothing is history.
            None => true,
        }
    }

    fn ref_value(&self, name: &str) -> Result<Option<ObjectId>, String> {
        // A direct lookup, not a listing: a listing fails on a loose ref
        // another push deletes while it is read (false refusals in claim
        // storms), where a lookup just finds the ref or not.
        match self.repo.try_find_reference(name) {
            Ok(found) => Ok(found.and_then(|r| r.try_id().map(|id| id.detach()))),
            Err(e) => Err(format!("could not read {name}: {e}")),
        }
    }

    fn queue_value(&self, id: &JobId) -> Result<Option<ObjectId>, String> {
        let refs = self.repo.references().map_err(|e| e.to_string())?;
        let suffix = format!("/{id}");
        // A ref that vanishes while listed is another job's finishing: skipped.
        for r in refs.prefixed(refs::QUEUE).map_err(|e| e.to_string())?.flatten() {
            if r.name().as_bstr().ends_with(suffix.as_bytes()) {
                return Ok(r.try_id().map(|id| id.detach()));
            }
        }
        Ok(None)
    }
}
