//! `git ci complete`: an agent's result, published as a worker publishes
//! one (one transaction: the `done` chain of the agent's name moved, the
//! job's live refs deleted, each expected at the value read, the claim at
//! the agent's token).

use std::path::{Path, PathBuf};

use crate::chain::Chain;
use crate::done::{Content, Entry};
use crate::hub::Hub;
use crate::model::{Artifact, JobResult, Status, TestCounts};
use crate::queue::{self, Release};
use crate::refs;

use super::{AgentError, Held, check_held};

/// What the agent says about the run.
pub struct Completion {
    pub status: Status,
    pub exit_code: Option<i32>,
    /// The whole log (a file), or none.
    pub log: Option<PathBuf>,
    pub junit: Vec<PathBuf>,
    pub artifacts: Vec<PathBuf>,
    /// Why, for `error` and `cancelled`: shown with the result.
    pub reason: Option<String>,
}

/// Publishes the result of the job `held` holds. Fails with
/// [`AgentError::Lost`] when the claim is not the agent's any more: a
/// stale claim never publishes.
pub fn complete(hub: &dyn Hub, held: &Held, done: &Completion) -> Result<JobResult, AgentError> {
    let (claim_blob, claim) = check_held(hub, held)?;
    let queue_ref = refs::queue(&held.queue, &held.id);
    let lost = |why: &str| AgentError::Lost { id: held.id.clone(), why: why.into() };
    let queue_value = hub.get(&queue_ref)?.ok_or_else(|| lost("the job was published meanwhile"))?;
    let job_blob = crate::claimed::resolve(&hub.repo(), queue_value).map_err(AgentError::Input)?.job;
    let job_json = hub.read_blob(job_blob)?;
    let job = crate::validate::job_blob(&job_json, &held.queue, &held.id).map_err(AgentError::Input)?;
    let log = match &done.log {
        Some(p) => std::fs::read(p).map_err(|e| AgentError::Input(format!("--log {}: {e}", p.display())))?,
        None => Vec::new(),
    };
    let (tests, mut files) = junit(&done.junit)?;
    let (artifacts, kept) = artifacts(&done.artifacts)?;
    files.extend(kept);
    let now = std::time::SystemTime::now();
    let started = crate::time::parse_rfc3339(&claim.claimed_at).unwrap_or(now);
    let result = JobResult {
        exit_code: done.exit_code,
        started_at: claim.claimed_at.clone(),
        duration_ms: now.duration_since(started).unwrap_or_default().as_millis() as u64,
        log_sha256: crate::digest::sha256_hex(&log),
        log_bytes: log.len() as u64,
        tests,
        artifacts,
        reason: done.reason.clone(),
        ..JobResult::without_run(&held.id, done.status, &held.worker, claim.attempt, String::new())
    };
    let cache_key = (done.status == Status::Passed && !job.tree.is_empty()).then(|| job.spec.definition_key(&job.tree));
    let entry =
        Entry { id: held.id.clone(), job_json, result: result.clone(), log: Content::Bytes(log), files, cache_key };
    let live = |name: String| -> Result<_, AgentError> {
        hub.refresh(&[&name])?;
        Ok(hub.get(&name)?)
    };
    let release = Release {
        queue_ref,
        queue_value,
        pin: queue::pin_of(hub, &held.id, Some(&job))?,
        claim: Some(claim_blob),
        cancel: live(refs::cancel(&held.id))?,
        log: live(refs::log(&held.id))?,
    };
    publish(hub, held, &entry, &release)?;
    Ok(result)
}

/// Moves the agent's `done` chain; another process publishing under the
/// same name moves it too, so a conflict on the chain alone is read again.
fn publish(hub: &dyn Hub, held: &Held, entry: &Entry, release: &Release) -> Result<(), AgentError> {
    let done = refs::done(&held.worker);
    for attempt in 0.. {
        let mut chain = Chain::new(held.worker.clone(), hub.refresh_ref(&done)?);
        match queue::complete(hub, &mut chain, &[(clone_entry(entry), release.clone())]) {
            Err(e) if e.is_conflict() && e.refname() == done && attempt < 5 => continue,
            Err(e) if e.is_conflict() => {
                check_held(hub, held)?;
                return Err(e.into());
            }
            other => return Ok(other?),
        }
    }
    unreachable!("the loop returns")
}

fn clone_entry(e: &Entry) -> Entry {
    let content = |c: &Content| match c {
        Content::Bytes(b) => Content::Bytes(b.clone()),
        Content::File(p) => Content::File(p.clone()),
    };
    Entry {
        id: e.id.clone(),
        job_json: e.job_json.clone(),
        result: e.result.clone(),
        log: content(&e.log),
        files: e.files.iter().map(|(n, c)| (n.clone(), content(c))).collect(),
        cache_key: e.cache_key.clone(),
    }
}

type Files = Vec<(String, Content)>;

/// JUnit files as `junit/<n>.xml`, and their counts.
fn junit(paths: &[PathBuf]) -> Result<(TestCounts, Files), AgentError> {
    let mut counts = TestCounts::default();
    let mut files = Vec::new();
    for (n, p) in paths.iter().enumerate() {
        let xml = std::fs::read(p).map_err(|e| AgentError::Input(format!("--junit {}: {e}", p.display())))?;
        counts += crate::junit::read(&[(p.display().to_string(), xml.clone())]).counts();
        files.push((format!("junit/{n}.xml"), Content::Bytes(xml)));
    }
    Ok((counts, files))
}

/// Artifact files, each named by its path as given when that is relative
/// and stays below the current directory, else by its file name.
fn artifacts(paths: &[PathBuf]) -> Result<(Vec<Artifact>, Files), AgentError> {
    let mut listed = Vec::new();
    let mut files = Vec::new();
    for p in paths {
        let bytes = std::fs::read(p).map_err(|e| AgentError::Input(format!("--artifact {}: {e}", p.display())))?;
        let name =
            artifact_name(p).ok_or_else(|| AgentError::Input(format!("--artifact {}: no file name", p.display())))?;
        if listed.iter().any(|a: &Artifact| a.path == name) {
            return Err(AgentError::Input(format!("--artifact {name} is given twice")));
        }
        listed.push(Artifact {
            path: name.clone(),
            size: bytes.len() as u64,
            sha256: crate::digest::sha256_hex(&bytes),
        });
        files.push((format!("artifacts/{name}"), Content::File(p.clone())));
    }
    Ok((listed, files))
}

fn artifact_name(p: &Path) -> Option<String> {
    use std::path::Component;
    let plain = p.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let name = if plain {
        p.components().filter(|c| matches!(c, Component::Normal(_))).collect::<PathBuf>()
    } else {
        PathBuf::from(p.file_name()?)
    };
    let name = name.to_str()?.to_owned();
    (!name.is_empty()).then_some(name)
}
