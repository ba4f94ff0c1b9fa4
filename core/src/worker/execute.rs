//! One claimed job on its own thread: fetch the commit, check it out into
//! a fresh directory, run the script, collect its outputs, and hand back
//! what to publish.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gix::ObjectId;

use super::{Config, cache, mask::Masker, outputs, trust};
use crate::done::{Content, Entry};
use crate::hub::Hub;
use crate::model::{Job, JobResult, Status, VERSION};
use crate::runner::{self, Interrupter, Outcome, RunSpec};

/// A job that ran (or failed to start), waiting to be published.
pub struct Ran {
    pub entry: Entry,
    pub stolen: bool,
    /// Holds the checkout, the log and kept outputs until the result is published.
    pub workdir: tempfile::TempDir,
}

/// Everything a job thread needs, moved onto it.
pub struct Assignment {
    pub job: Job,
    pub job_json: Vec<u8>,
    pub attempt: u32,
    pub cache_key: Option<String>,
}

/// Starts the job; `on_started` gets its interrupter and log file once its
/// script runs.
pub fn spawn(
    hub: Arc<dyn Hub>,
    cfg: Arc<Config>,
    a: Assignment,
    on_started: impl FnOnce(Interrupter, PathBuf) + Send + 'static,
    on_done: impl FnOnce(Ran) + Send + 'static,
) {
    std::thread::spawn(move || on_done(execute(&*hub, &cfg, a, on_started)));
}

fn execute(hub: &dyn Hub, cfg: &Config, mut a: Assignment, on_started: impl FnOnce(Interrupter, PathBuf)) -> Ran {
    let jobs_dir = cfg.work_dir.join("jobs");
    let workdir = std::fs::create_dir_all(&jobs_dir)
        .and_then(|()| tempfile::Builder::new().prefix(&format!("{}-", a.job.id)).tempdir_in(&jobs_dir))
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory can be created");
    let log_path = workdir.path().join("log");
    let masker = Masker::new(cfg.secrets.iter().map(|(_, v)| v.as_str()));
    let mut collected = outputs::Outputs::default();
    let outcome = prepare(hub, cfg, &mut a.job, workdir.path()).and_then(|checkout| {
        let caches = cache::Caches::new(cfg, hub, &a.job);
        caches.restore(&checkout);
        let running = runner::start(spec(cfg, &a.job, &checkout, &log_path, &masker)).map_err(|e| e.to_string())?;
        on_started(running.interrupter(), log_path.clone());
        let outcome = running.wait();
        collected = outputs::collect(&a.job, &checkout, workdir.path(), &masker);
        caches.save(&checkout);
        Ok(outcome)
    });
    let (mut result, stolen) = match outcome {
        Ok(o) => (result_of(cfg, &a, &o), o.stolen),
        Err(reason) => {
            let _ = std::fs::write(&log_path, format!("[git-ci] {reason}\n"));
            (JobResult::without_run(&a.job.id, Status::Error, &cfg.name, a.attempt, reason), false)
        }
    };
    if cfg.require_signed.is_some() {
        // Record the definition that ran: the signed commit's, not the queue's.
        a.job_json = a.job.to_json();
    }
    let log = seal_log(&log_path, &collected.notes, &masker, &mut result);
    result.tests = collected.tests;
    result.artifacts = std::mem::take(&mut collected.artifacts);
    let cache_key = a.cache_key.filter(|_| result.status == Status::Passed);
    let entry = Entry { id: a.job.id.clone(), job_json: a.job_json, result, log, files: collected.files, cache_key };
    Ran { entry, stolen, workdir }
}

/// Appends git-ci's notes and makes `result` describe the log exactly as
/// it is stored (the job's output was masked as it was written); returns
/// the log to publish. A log that cannot be written whole makes the job an
/// `error`.
fn seal_log(path: &Path, notes: &[String], masker: &Masker, result: &mut JobResult) -> Content {
    let notes: String = notes.iter().map(|n| format!("[git-ci] {n}\n")).collect();
    let appended =
        if notes.is_empty() { Ok(()) } else { crate::runner::log::append(path, &masker.mask(notes.as_bytes())) };
    if let Err(e) = appended {
        fail_on_log(result, &e.to_string());
    }
    result.reason = result.reason.take().map(|r| masker.mask_str(&r));
    let log = match std::fs::read(path) {
        Ok(bytes) => {
            result.log_sha256 = crate::runner::log::sha256_hex(&bytes);
            result.log_bytes = bytes.len() as u64;
            return Content::File(path.to_path_buf());
        }
        Err(e) => {
            fail_on_log(result, &format!("could not read the job's log {}: {e}", path.display()));
            masker.mask(format!("[git-ci] {}\n", result.reason.as_deref().unwrap_or_default()).as_bytes())
        }
    };
    result.log_sha256 = crate::runner::log::sha256_hex(&log);
    result.log_bytes = log.len() as u64;
    result.log_truncated = false;
    Content::Bytes(log)
}

/// The job is an `error` for want of its log; the first such reason stays.
fn fail_on_log(result: &mut JobResult, why: &str) {
    if result.status != Status::Error || result.reason.is_none() {
        result.status = Status::Error;
        result.reason = Some(format!("{why}. It looks like {}", crate::runner::log::WRITE_FAILED_HINT));
    }
}

/// Makes the commit available, checks trust, writes it out; the error is
/// the reason the job could not run.
fn prepare(hub: &dyn Hub, cfg: &Config, job: &mut Job, workdir: &Path) -> Result<PathBuf, String> {
    let commit = ObjectId::from_hex(job.commit.as_bytes()).map_err(|e| format!("bad commit id: {e}"))?;
    fetch_commit(hub, job, commit)?;
    if let Some(signers) = &cfg.require_signed {
        trust::verify(hub, commit, signers)?;
        job.spec = trust::spec_from_commit(hub, commit, &job.spec.name)?;
    }
    let checkout = workdir.join("checkout");
    std::fs::create_dir(&checkout).map_err(|e| format!("could not create {}: {e}", checkout.display()))?;
    crate::checkout::checkout(&hub.repo(), commit, &checkout).map_err(|e| e.to_string())?;
    Ok(checkout)
}

/// Fetches the pinned commit, retrying a while if the hub is unreachable.
fn fetch_commit(hub: &dyn Hub, job: &Job, commit: ObjectId) -> Result<(), String> {
    let pin = crate::refs::pin(&job.id);
    let mut delay = Duration::from_millis(250);
    for attempt in 0.. {
        if hub.repo().has_object(commit) {
            return Ok(());
        }
        match hub.refresh_ref(&pin) {
            Ok(_) if hub.repo().has_object(commit) => return Ok(()),
            Ok(_) => return Err(format!("the hub has no commit {} (pin {pin} is gone)", job.commit)),
            Err(e) if attempt >= 6 => return Err(format!("could not fetch commit {}: {e}", job.commit)),
            Err(_) => std::thread::sleep(delay),
        }
        delay = (delay * 2).min(Duration::from_secs(8));
    }
    unreachable!("the loop returns")
}

fn spec(cfg: &Config, job: &Job, checkout: &Path, log_path: &Path, masker: &Masker) -> RunSpec {
    let mut env: Vec<(String, String)> = job.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    env.extend(cfg.secrets.iter().cloned());
    env.extend([
        ("CI".into(), "true".into()),
        ("GIT_CI".into(), "true".into()),
        ("GIT_CI_JOB_ID".into(), job.id.to_string()),
        ("GIT_CI_JOB".into(), job.spec.name.clone()),
        ("GIT_CI_COMMIT".into(), job.commit.clone()),
        ("GIT_CI_REF".into(), job.git_ref.clone()),
        ("GIT_CI_ATTEMPT".into(), job.attempt.to_string()),
        ("GIT_CI_WORKER".into(), cfg.name.clone()),
    ]);
    RunSpec {
        script: job.spec.run.clone(),
        dir: checkout.to_path_buf(),
        env,
        timeout: Duration::from_secs(job.spec.timeout),
        kill_grace: cfg.kill_grace,
        log_path: log_path.to_path_buf(),
        log_cap: cfg.log_cap,
        masker: masker.clone(),
    }
}

fn result_of(cfg: &Config, a: &Assignment, o: &Outcome) -> JobResult {
    let finished = o.started_at + o.duration;
    JobResult {
        version: VERSION,
        id: a.job.id.clone(),
        status: o.status,
        exit_code: o.exit_code,
        started_at: crate::time::rfc3339(o.started_at),
        finished_at: crate::time::rfc3339(finished),
        duration_ms: o.duration.as_millis() as u64,
        worker: cfg.name.clone(),
        attempt: a.attempt,
        log_sha256: o.log.sha256.clone(),
        log_bytes: o.log.bytes,
        log_truncated: o.log.truncated,
        tests: Default::default(),
        artifacts: vec![],
        reason: o.reason.clone(),
    }
}
