//! One claimed job on its own thread: fetch the commit, check it out into
//! a fresh directory, run the script, and hand back what to publish.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use gix::ObjectId;

use crate::done::{Content, Entry};
use crate::hub::Hub;
use crate::model::{Job, JobResult, Status, TestCounts, VERSION};
use crate::runner::{self, Interrupter, Outcome, RunSpec};

use super::{Config, cache};

/// A job that ran (or failed to start), waiting to be published.
pub struct Ran {
    pub entry: Entry,
    pub stolen: bool,
    /// Holds the checkout and the log until the result is published.
    pub workdir: tempfile::TempDir,
}

/// Everything a job thread needs, moved onto it.
pub struct Assignment {
    pub job: Job,
    pub job_json: Vec<u8>,
    pub attempt: u32,
    pub cache_key: Option<String>,
}

/// Starts the job; the interrupter reaches it once its script runs.
pub fn spawn(
    hub: Arc<dyn Hub>,
    cfg: Arc<Config>,
    a: Assignment,
    on_started: impl FnOnce(Interrupter) + Send + 'static,
    on_done: impl FnOnce(Ran) + Send + 'static,
) {
    std::thread::spawn(move || on_done(execute(&*hub, &cfg, a, on_started)));
}

fn execute(hub: &dyn Hub, cfg: &Config, a: Assignment, on_started: impl FnOnce(Interrupter)) -> Ran {
    let jobs_dir = cfg.work_dir.join("jobs");
    let workdir = std::fs::create_dir_all(&jobs_dir)
        .and_then(|()| tempfile::Builder::new().prefix(&format!("{}-", a.job.id)).tempdir_in(&jobs_dir))
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory can be created");
    let outcome = prepare(hub, &a.job, workdir.path()).and_then(|checkout| {
        let caches = cache::Caches::new(cfg, hub, &a.job);
        caches.restore(&checkout);
        let running = runner::start(spec(cfg, &a.job, &checkout, workdir.path())).map_err(|e| e.to_string())?;
        on_started(running.interrupter());
        let outcome = running.wait();
        caches.save(&checkout);
        Ok(outcome)
    });
    let (result, stolen) = match outcome {
        Ok(o) => (result_of(cfg, &a, &o), o.stolen),
        Err(reason) => {
            let _ = std::fs::write(workdir.path().join("log"), format!("[git-ci] {reason}\n"));
            (JobResult::without_run(&a.job.id, Status::Error, &cfg.name, a.attempt, reason), false)
        }
    };
    let cache_key = a.cache_key.filter(|_| result.status == Status::Passed);
    let entry = Entry {
        id: a.job.id.clone(),
        job_json: a.job_json,
        result,
        log: Content::File(workdir.path().join("log")),
        files: vec![],
        cache_key,
    };
    Ran { entry, stolen, workdir }
}

/// Makes the commit available and writes it out; the error is the reason
/// the job could not run.
fn prepare(hub: &dyn Hub, job: &Job, workdir: &Path) -> Result<std::path::PathBuf, String> {
    let commit = ObjectId::from_hex(job.commit.as_bytes()).map_err(|e| format!("bad commit id: {e}"))?;
    let pin = crate::refs::pin(&job.id);
    let mut delay = Duration::from_millis(250);
    for attempt in 0.. {
        if hub.repo().has_object(commit) {
            break;
        }
        match hub.refresh_ref(&pin) {
            Ok(_) if hub.repo().has_object(commit) => break,
            Ok(_) => {
                return Err(format!("the hub has no commit {} (pin {pin} is gone)", job.commit));
            }
            Err(e) if attempt >= 6 => {
                return Err(format!("could not fetch commit {}: {e}", job.commit));
            }
            Err(_) => std::thread::sleep(delay),
        }
        delay = (delay * 2).min(Duration::from_secs(8));
    }
    let checkout = workdir.join("checkout");
    std::fs::create_dir(&checkout).map_err(|e| format!("could not create {}: {e}", checkout.display()))?;
    crate::checkout::checkout(&hub.repo(), commit, &checkout).map_err(|e| e.to_string())?;
    Ok(checkout)
}

fn spec(cfg: &Config, job: &Job, checkout: &Path, workdir: &Path) -> RunSpec {
    let mut env: Vec<(String, String)> = job.spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
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
        log_path: workdir.join("log"),
        log_cap: cfg.log_cap,
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
        tests: TestCounts::default(),
        artifacts: vec![],
        reason: o.reason.clone(),
    }
}
