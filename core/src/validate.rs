//! What may be stored under `refs/ci/` (DESIGN.md, "The hub guards itself").
//!
//! One set of rules for everyone: the hub's pre-receive guard applies
//! [`check_push`] to every pushed update before git accepts it, and readers
//! of a hosted hub (no hooks there) apply the per-document checks
//! ([`job_blob`], [`claim_blob`], [`worker_blob`], ...) to what they read.
//!
//! The guard sits in front of every claim, so it reads only what a push
//! changes: the pushed objects (in the push's quarantine) and the tips
//! involved. New results of a `done` chain are found by comparing the old
//! and new tips' `results/<day>/<id>` entries, never by walking history.

use std::collections::{HashSet, VecDeque};
use std::path::Path;

use gix::ObjectId;
use gix::objs::{CommitRef, Kind, TreeRef};

use crate::id::JobId;
use crate::model::{Claim, Job, JobResult, MAX_DOC_BYTES, WorkerInfo};
use crate::refs;

/// The header of a live-log blob (`worker::live_log`): `git-ci-live-log <n>\n`.
const LIVE_LOG_HEADER: &[u8] = b"git-ci-live-log ";
/// A live log holds a 64 KiB tail; masking may lengthen it a little.
const MAX_LIVE_LOG_BYTES: u64 = 2 * 64 * 1024 + 64;
/// Cancel requests are a few fields.
const MAX_CANCEL_BYTES: u64 = 4 * 1024;
/// How many new commits one push may add to a chain before the guard stops
/// looking for the old tip (a worker adds one per complete).
const MAX_NEW_COMMITS: usize = 10_000;

/// The hub's limits (git config `ci.maxLogBytes`, `ci.maxArtifactBytes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Job, claim and worker documents.
    pub doc_bytes: u64,
    /// One job's log in a `done` tree.
    pub log_bytes: u64,
    /// All artifacts of one job together.
    pub artifact_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { doc_bytes: MAX_DOC_BYTES as u64, log_bytes: 64 << 20, artifact_bytes: 512 << 20 }
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
        }
    }
}

/// One pushed ref update: `None` is git's all-zero id (created or deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
    pub name: String,
}

impl Update {
    /// A pre-receive line: `<old> <new> <ref>`.
    pub fn parse_line(line: &str) -> Option<Update> {
        let mut parts = line.splitn(3, ' ');
        let oid = |s: &str| ObjectId::from_hex(s.as_bytes()).ok().filter(|o| !o.is_null());
        let (old, new) = (parts.next()?, parts.next()?);
        let name = parts.next()?.trim_end().to_owned();
        ObjectId::from_hex(old.as_bytes()).ok()?;
        ObjectId::from_hex(new.as_bytes()).ok()?;
        Some(Update { old: oid(old), new: oid(new), name })
    }

    /// Whether the guard has anything to read for it: a deletion or a ref
    /// pushed at the value it has (a lease check) changes nothing it guards.
    pub fn needs_check(&self) -> bool {
        self.name.starts_with(refs::ROOT) && self.new.is_some() && self.new != self.old
    }
}

/// Why an update is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("refused {refname}: {reason}")]
pub struct Refused {
    pub refname: String,
    pub reason: String,
}

/// Where the guard reads objects and the hub's refs.
pub trait Store {
    /// Kind and size, without loading the object.
    fn header(&self, id: &ObjectId) -> Result<Option<(Kind, u64)>, String>;
    fn read(&self, id: &ObjectId) -> Result<Option<(Kind, Vec<u8>)>, String>;
    /// Whether `id` came with this push (it is in the quarantine).
    fn is_new(&self, id: &ObjectId) -> bool;
    /// Whether the hub has a queue ref for `id` now (before the push).
    fn queued(&self, id: &JobId) -> Result<bool, String>;
}

/// Checks every update of one push; the first refusal refuses it all.
/// `gc` is the `ci.gc` push option: `done` and `archive` chains may move
/// backwards.
pub fn check_push(store: &dyn Store, updates: &[Update], gc: bool, limits: &Limits) -> Result<(), Refused> {
    for u in updates.iter().filter(|u| u.needs_check()) {
        check_update(store, updates, u, gc, limits).map_err(|reason| Refused { refname: u.name.clone(), reason })?;
    }
    Ok(())
}

fn check_update(store: &dyn Store, all: &[Update], u: &Update, gc: bool, limits: &Limits) -> Result<(), String> {
    let new = u.new.expect("needs_check: not a deletion");
    let name = u.name.as_str();
    let id_under = |prefix: &str| {
        let rest = &name[prefix.len()..];
        JobId::parse(rest).map_err(|e| format!("not a git-ci ref: {e}"))
    };
    if name.starts_with(refs::QUEUE) {
        let (queue, id) =
            refs::parse_queue_ref(name).ok_or("not a git-ci ref: queue refs are refs/ci/queue/<queue>/<job-id>")?;
        refs::check_component("queue", &queue)?;
        let bytes = blob(store, new, "job", limits.doc_bytes)?;
        job_blob(&bytes, &queue, &id).map(drop)
    } else if name.starts_with(refs::CLAIMS) {
        let id = id_under(refs::CLAIMS)?;
        claim_blob(&blob(store, new, "claim", limits.doc_bytes)?, &id)?;
        let queued_here =
            all.iter().any(|o| o.new.is_some() && refs::parse_queue_ref(&o.name).is_some_and(|(_, i)| i == id));
        if queued_here || store.queued(&id)? { Ok(()) } else { Err(format!("job {id} does not exist (no queue ref)")) }
    } else if name.starts_with(refs::PINS) {
        id_under(refs::PINS)?;
        expect_kind(store, new, Kind::Commit, "a pin").map(drop)
    } else if name.starts_with(refs::CANCEL) {
        let id = id_under(refs::CANCEL)?;
        cancel_blob(&blob(store, new, "cancel request", MAX_CANCEL_BYTES)?, &id)
    } else if name.starts_with(refs::LOGS) {
        id_under(refs::LOGS)?;
        live_log_blob(&blob(store, new, "live log", MAX_LIVE_LOG_BYTES)?)
    } else if let Some(worker) = name.strip_prefix(refs::WORKERS) {
        refs::check_component("worker", worker)?;
        worker_blob(&blob(store, new, "worker document", limits.doc_bytes)?, worker).map(drop)
    } else if let Some(writer) = name.strip_prefix(refs::DONE) {
        refs::check_component("writer", writer)?;
        chain(store, u.old, new, gc, "done")?;
        new_results(store, u.old, new, limits)
    } else if let Some(writer) = name.strip_prefix(refs::ARCHIVE) {
        refs::check_component("writer", writer)?;
        chain(store, u.old, new, gc, "archive")
    } else {
        Err("unknown ref under refs/ci/ (git-ci writes queue, pins, claims, cancel, logs, done, workers, archive)"
            .into())
    }
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

/// A live log tail: the header line, then bytes.
pub fn live_log_blob(bytes: &[u8]) -> Result<(), String> {
    let rest = bytes.strip_prefix(LIVE_LOG_HEADER).ok_or("live log lacks its `git-ci-live-log <n>` header")?;
    let line = rest.split(|&b| b == b'\n').next().filter(|_| rest.contains(&b'\n')).unwrap_or_default();
    match std::str::from_utf8(line).ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(_) => Ok(()),
        None => Err("live log header does not give a byte count".into()),
    }
}

/// A blob's bytes, refused unread when it is not a blob or over `limit`.
fn blob(store: &dyn Store, id: ObjectId, what: &str, limit: u64) -> Result<Vec<u8>, String> {
    let size = expect_kind(store, id, Kind::Blob, what)?;
    if size > limit {
        return Err(format!("{what} is {size} bytes, over the {limit}-byte limit"));
    }
    match store.read(&id)? {
        Some((_, data)) => Ok(data),
        None => Err(format!("object {id} is missing")),
    }
}

/// The object's size when it is of `kind`.
fn expect_kind(store: &dyn Store, id: ObjectId, kind: Kind, what: &str) -> Result<u64, String> {
    match store.header(&id)? {
        Some((k, size)) if k == kind => Ok(size),
        Some((k, _)) => Err(format!("{what} must be a {kind}, not a {k}")),
        None => Err(format!("object {id} is missing")),
    }
}

/// A chain moves only forward (unless gc): `new` descends from `old`. Walks
/// back only through the commits this push brought, at most
/// [`MAX_NEW_COMMITS`] of them, so never the chain's history.
fn chain(store: &dyn Store, old: Option<ObjectId>, new: ObjectId, gc: bool, what: &str) -> Result<(), String> {
    expect_kind(store, new, Kind::Commit, &format!("a {what} chain tip"))?;
    let Some(old) = old else { return Ok(()) };
    if gc || descends(store, new, old)? {
        return Ok(());
    }
    Err(format!(
        "not a fast-forward: {new} does not descend from {old} (only `git ci gc` may rewrite a {what} chain, with -o ci.gc)"
    ))
}

fn descends(store: &dyn Store, new: ObjectId, old: ObjectId) -> Result<bool, String> {
    let mut seen = HashSet::new();
    let mut todo = VecDeque::from([new]);
    while let Some(c) = todo.pop_front() {
        if c == old {
            return Ok(true);
        }
        // A commit the hub already had is history: not walked.
        if !seen.insert(c) || (c != new && !store.is_new(&c)) || seen.len() > MAX_NEW_COMMITS {
            continue;
        }
        let Some((Kind::Commit, data)) = store.read(&c)? else { continue };
        let commit = CommitRef::from_bytes(&data, c.kind()).map_err(|e| format!("commit {c} does not parse: {e}"))?;
        todo.extend(commit.parents());
    }
    Ok(false)
}

/// The job directories `new` adds or changes against `old`, each checked.
fn new_results(store: &dyn Store, old: Option<ObjectId>, new: ObjectId, limits: &Limits) -> Result<(), String> {
    let old_results = match old {
        Some(o) => tree_entry(store, commit_tree(store, o)?, "results")?,
        None => None,
    };
    let Some(new_results) = tree_entry(store, commit_tree(store, new)?, "results")? else { return Ok(()) };
    if Some(new_results) == old_results {
        return Ok(());
    }
    let old_days = old_results.map(|t| entries(store, t)).transpose()?.unwrap_or_default();
    for (day, day_tree) in entries(store, new_results)? {
        let old_day = old_days.iter().find(|(d, _)| *d == day).map(|(_, t)| *t);
        if old_day == Some(day_tree) {
            continue;
        }
        let old_jobs = old_day.map(|t| entries(store, t)).transpose()?.unwrap_or_default();
        for (name, dir) in entries(store, day_tree)? {
            if old_jobs.iter().any(|(n, t)| *n == name && *t == dir) {
                continue;
            }
            job_dir(store, &day, &name, dir, limits).map_err(|e| format!("results/{day}/{name}: {e}"))?;
        }
    }
    Ok(())
}

fn job_dir(store: &dyn Store, day: &str, name: &str, dir: ObjectId, limits: &Limits) -> Result<(), String> {
    let id = JobId::parse(name).map_err(|e| e.to_string())?;
    if id.day() != day {
        return Err(format!("job {id} is filed under the wrong day"));
    }
    let files = entries(store, dir)?;
    let file = |n: &str| files.iter().find(|(f, _)| f == n).map(|(_, o)| *o);
    let result = file("result.json").ok_or("result.json is missing")?;
    let bytes = blob(store, result, "result.json", limits.doc_bytes)?;
    let result = JobResult::from_json(&bytes).map_err(|e| format!("result.json {e}"))?;
    if result.id != id {
        return Err(format!("result.json is for job {}", result.id));
    }
    let log = file("log").ok_or("log is missing")?;
    let size = expect_kind(store, log, Kind::Blob, "log")?;
    if size > limits.log_bytes {
        return Err(format!("log is {size} bytes, over the hub's ci.maxLogBytes ({})", limits.log_bytes));
    }
    if let Some(artifacts) = file("artifacts") {
        let total = tree_size(store, artifacts)?;
        if total > limits.artifact_bytes {
            return Err(format!(
                "artifacts are {total} bytes, over the hub's ci.maxArtifactBytes ({})",
                limits.artifact_bytes
            ));
        }
    }
    Ok(())
}

/// The bytes of every blob under a tree (a job's artifacts: new objects).
fn tree_size(store: &dyn Store, tree: ObjectId) -> Result<u64, String> {
    let mut total = 0;
    let mut todo = vec![tree];
    while let Some(t) = todo.pop() {
        for (_, id, kind) in tree_entries(store, t)? {
            if kind == Kind::Tree {
                todo.push(id);
            } else {
                total += store.header(&id)?.map_or(0, |(_, s)| s);
            }
        }
    }
    Ok(total)
}

fn commit_tree(store: &dyn Store, commit: ObjectId) -> Result<ObjectId, String> {
    match store.read(&commit)? {
        Some((Kind::Commit, data)) => Ok(CommitRef::from_bytes(&data, commit.kind())
            .map_err(|e| format!("commit {commit} does not parse: {e}"))?
            .tree()),
        _ => Err(format!("{commit} is not a commit")),
    }
}

fn tree_entry(store: &dyn Store, tree: ObjectId, name: &str) -> Result<Option<ObjectId>, String> {
    Ok(entries(store, tree)?.into_iter().find(|(n, _)| n == name).map(|(_, id)| id))
}

fn entries(store: &dyn Store, tree: ObjectId) -> Result<Vec<(String, ObjectId)>, String> {
    Ok(tree_entries(store, tree)?.into_iter().map(|(n, id, _)| (n, id)).collect())
}

fn tree_entries(store: &dyn Store, tree: ObjectId) -> Result<Vec<(String, ObjectId, Kind)>, String> {
    let Some((Kind::Tree, data)) = store.read(&tree)? else {
        return Err(format!("{tree} is not a tree"));
    };
    let decoded = TreeRef::from_bytes(&data, tree.kind()).map_err(|e| format!("tree {tree} does not parse: {e}"))?;
    Ok(decoded
        .entries
        .iter()
        .map(|e| {
            let kind = if e.mode.is_tree() { Kind::Tree } else { Kind::Blob };
            (e.filename.to_string(), e.oid.to_owned(), kind)
        })
        .collect())
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

    fn queued(&self, id: &JobId) -> Result<bool, String> {
        let refs = self.repo.references().map_err(|e| e.to_string())?;
        let suffix = format!("/{id}");
        for r in refs.prefixed(refs::QUEUE).map_err(|e| e.to_string())? {
            let r = r.map_err(|e| e.to_string())?;
            if r.name().as_bstr().ends_with(suffix.as_bytes()) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::done::{self, Content, Entry};
    use crate::hub::{Hub, LocalHub, RefEdit};
    use crate::model::{JobSpec, Status};

    struct World {
        _dir: tempfile::TempDir,
        hub: LocalHub,
        store: HubStore,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        gix::init_bare(dir.path()).unwrap();
        let hub = LocalHub::open(dir.path()).unwrap();
        let store = HubStore::open(dir.path(), None).unwrap();
        World { _dir: dir, hub, store }
    }

    fn job() -> Job {
        Job::new(JobSpec::ad_hoc("true"), &"a".repeat(40), &"b".repeat(40), "refs/heads/main", "me")
    }

    fn create(name: &str, new: ObjectId) -> Update {
        Update { old: None, new: Some(new), name: name.into() }
    }

    fn check(w: &World, updates: &[Update], gc: bool) -> Result<(), String> {
        check_push(&w.store, updates, gc, &Limits::default()).map_err(|r| r.to_string())
    }

    fn refused(w: &World, updates: &[Update], gc: bool, why: &str) {
        let e = check(w, updates, gc).expect_err("should be refused");
        assert!(e.contains(&updates.last().unwrap().name) && e.contains(why), "{e}");
    }

    fn blob(w: &World, bytes: &[u8]) -> ObjectId {
        (&w.hub as &dyn Hub).write_blob(bytes).unwrap()
    }

    fn entry(j: &Job, _result: Vec<u8>, log: Vec<u8>, files: Vec<(String, Content)>) -> Entry {
        let mut r = JobResult::without_run(&j.id, Status::Passed, "w1", 1, "x".into());
        r.reason = None;
        Entry { id: j.id.clone(), job_json: j.to_json(), result: r, log: Content::Bytes(log), files, cache_key: None }
    }

    #[test]
    fn job_documents_must_match_their_ref() {
        let w = world();
        let j = job();
        let good = blob(&w, &j.to_json());
        check(&w, &[create(&refs::queue("default", &j.id), good)], false).unwrap();
        refused(&w, &[create(&refs::queue("other", &j.id), good)], false, "queue");
        let other = job();
        refused(&w, &[create(&refs::queue("default", &other.id), good)], false, "id");
        let mut v: serde_json::Value = serde_json::from_slice(&j.to_json()).unwrap();
        v["version"] = 2.into();
        refused(&w, &[create(&refs::queue("default", &j.id), blob(&w, v.to_string().as_bytes()))], false, "version");
        let huge = blob(&w, &vec![b' '; MAX_DOC_BYTES + 1]);
        refused(&w, &[create(&refs::queue("default", &j.id), huge)], false, "limit");
        refused(&w, &[create(&refs::queue("default", &j.id), blob(&w, b"{"))], false, "JSON");
        refused(&w, &[create(&format!("refs/ci/queue/a/b/{}", j.id), good)], false, "not a git-ci ref");
    }

    #[test]
    fn claims_need_their_job() {
        let w = world();
        let j = job();
        let claim = Claim::new(&j.id, "w1", 1, Duration::from_secs(60));
        let c = create(&refs::claim(&j.id), blob(&w, &claim.to_json()));
        refused(&w, std::slice::from_ref(&c), false, "does not exist");
        let q = create(&refs::queue("default", &j.id), blob(&w, &j.to_json()));
        check(&w, &[q.clone(), c.clone()], false).unwrap();
        w.hub.transact(&[RefEdit::create(q.name.clone(), q.new.unwrap())]).unwrap();
        check(&w, std::slice::from_ref(&c), false).unwrap();
        let other = Claim::new(&job().id, "w1", 1, Duration::from_secs(60));
        refused(&w, &[create(&refs::claim(&j.id), blob(&w, &other.to_json()))], false, "not the ref's");
    }

    #[test]
    fn pins_cancels_logs_workers_and_unknown_refs() {
        let w = world();
        let j = job();
        let commit = done::append(&w.hub, None, &[entry(&j, vec![], b"log".to_vec(), vec![])]).unwrap();
        check(&w, &[create(&refs::pin(&j.id), commit)], false).unwrap();
        refused(&w, &[create(&refs::pin(&j.id), blob(&w, b"x"))], false, "must be a commit");
        let cancel = format!("{{\"version\": 1, \"job\": \"{}\", \"by\": \"me\"}}", j.id);
        check(&w, &[create(&refs::cancel(&j.id), blob(&w, cancel.as_bytes()))], false).unwrap();
        refused(&w, &[create(&refs::cancel(&j.id), blob(&w, b"stop"))], false, "JSON");
        check(&w, &[create(&refs::log(&j.id), blob(&w, b"git-ci-live-log 3\nabc"))], false).unwrap();
        refused(&w, &[create(&refs::log(&j.id), blob(&w, b"abc"))], false, "header");
        let info = WorkerInfo::new("w1", Default::default(), vec![], 1, 1000);
        check(&w, &[create(&refs::worker("w1"), blob(&w, &info.to_json()))], false).unwrap();
        refused(&w, &[create(&refs::worker("w2"), blob(&w, &info.to_json()))], false, "names");
        refused(&w, &[create("refs/ci/doctor/x", blob(&w, b"x"))], false, "unknown ref");
        // Deletions, lease checks and refs outside refs/ci/ are not read.
        let gone = Update { old: Some(commit), new: None, name: "refs/ci/anything".into() };
        let same = Update { old: Some(commit), new: Some(commit), name: "refs/ci/other".into() };
        check(&w, &[gone, same, create("refs/heads/main", blob(&w, b"x"))], false).unwrap();
    }

    #[test]
    fn done_chains_move_forward_with_sane_results() {
        let w = world();
        let (a, b) = (job(), job());
        let first = done::append(&w.hub, None, &[entry(&a, vec![], b"log".to_vec(), vec![])]).unwrap();
        let done_ref = refs::done("w1");
        check(&w, &[create(&done_ref, first)], false).unwrap();
        let second = done::append(&w.hub, Some(first), &[entry(&b, vec![], b"log".to_vec(), vec![])]).unwrap();
        let forward = Update { old: Some(first), new: Some(second), name: done_ref.clone() };
        check(&w, &[forward], false).unwrap();
        let back = Update { old: Some(second), new: Some(first), name: done_ref.clone() };
        refused(&w, std::slice::from_ref(&back), false, "fast-forward");
        check(&w, &[back], true).unwrap();

        let big = vec![b'x'; 100];
        let art = vec![("artifacts/a/b".to_owned(), Content::Bytes(big.clone()))];
        let c = job();
        let with_art = done::append(&w.hub, Some(first), &[entry(&c, vec![], big, art)]).unwrap();
        let u = Update { old: Some(first), new: Some(with_art), name: done_ref.clone() };
        check(&w, std::slice::from_ref(&u), false).unwrap();
        let tight = Limits { log_bytes: 10, ..Limits::default() };
        let e = check_push(&w.store, std::slice::from_ref(&u), false, &tight).unwrap_err();
        assert!(e.reason.contains("ci.maxLogBytes") && e.reason.contains(c.id.as_str()), "{e}");
        let tight = Limits { artifact_bytes: 10, ..Limits::default() };
        let e = check_push(&w.store, &[u], false, &tight).unwrap_err();
        assert!(e.reason.contains("ci.maxArtifactBytes"), "{e}");
    }

    #[test]
    fn a_result_that_does_not_parse_is_refused() {
        let w = world();
        let j = job();
        let good = done::append(&w.hub, None, &[entry(&j, vec![], b"log".to_vec(), vec![])]).unwrap();
        let repo = w.hub.repo();
        let tree = repo.find_commit(good).unwrap().tree_id().unwrap().detach();
        let mut editor = repo.edit_tree(tree).unwrap();
        let junk = blob(&w, b"not json");
        editor
            .upsert(format!("{}/result.json", done::job_dir(&j.id)).as_str(), gix::objs::tree::EntryKind::Blob, junk)
            .unwrap();
        let tree = editor.write().unwrap().detach();
        let sig = done::signature();
        let mut time = Default::default();
        let sig = sig.to_ref(&mut time);
        let bad = repo.new_commit_as(sig, sig, "bad", tree, None::<ObjectId>).unwrap().id;
        refused(&w, &[create(&refs::done("w1"), bad)], false, "result.json");
    }

    #[test]
    fn update_lines_parse() {
        let z = "0".repeat(40);
        let a = "a".repeat(40);
        let u = Update::parse_line(&format!("{z} {a} refs/ci/claims/x\n")).unwrap();
        assert_eq!((u.old, u.name.as_str()), (None, "refs/ci/claims/x"));
        assert!(u.needs_check());
        assert!(!Update::parse_line(&format!("{a} {z} refs/ci/claims/x")).unwrap().needs_check());
        assert!(Update::parse_line("garbage").is_none());
    }
}
