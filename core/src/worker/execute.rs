//! One claimed job on its own thread: fetch the commit, check it out into
//! a fresh directory, run the script, collect its outputs, and hand back
//! what to publish.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gix::ObjectId;

use super::{Config, cache, mask::Masker, needed, outputs, serve, trust};
use crate::done::{Content, Entry};
use crate::hub::Hub;
use crate::model::{Job, JobResult, Status, VERSION};
use crate::runner::{self, Interrupter, Outcome, RunSpec};

/// A job that ran (or failed to start), waiting to be published.
pub struct Ran {
    pub entry: Entry,
    pub stolen: bool,
    /// Holds the checkout, the log and kept outputs until the result is
    /// published (none for a job whose thread crashed).
    pub workdir: Option<tempfile::TempDir>,
    /// A `serve = true` job's service, running on ([`serve`]).
    pub service: Option<serve::Service>,
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
    std::thread::spawn(move || {
        let (id, attempt, job_json) = (a.job.id.clone(), a.attempt, a.job_json.clone());
        // A panic here must still end in a result: else the coordinator
        // waits for this job forever, heartbeating its claim, one slot down.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(&*hub, &cfg, a, on_started)))
            .unwrap_or_else(|panic| crashed(&cfg, id, attempt, job_json, &runner::panic_message(&*panic)));
        on_done(ran)
    });
}

/// Stops the script if its job thread panics: no one would wait for it.
struct StopOnPanic(Interrupter);

impl Drop for StopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.send(runner::Interrupt::Cancel("git-ci crashed while running the job".into()));
        }
    }
}

/// The `error` result of a job whose thread panicked.
fn crashed(cfg: &Config, id: crate::id::JobId, attempt: u32, job_json: Vec<u8>, panic: &str) -> Ran {
    let reason = format!("git-ci crashed while running the job (a bug; please report it): {panic}");
    let log = format!("[git-ci] {reason}\n").into_bytes();
    let mut result = JobResult::without_run(&id, Status::Error, &cfg.name, attempt, reason);
    result.log_sha256 = crate::digest::sha256_hex(&log);
    result.log_bytes = log.len() as u64;
    let entry = Entry { id, job_json, result, log: Content::Bytes(log), files: vec![], cache_key: None };
    Ran { entry, stolen: false, workdir: None, service: None }
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
    let mut placed = Vec::new();
    let mut live = None;
    let outcome = prepare(hub, cfg, &mut a.job, workdir.path()).and_then(|checkout| {
        placed = needed::place_artifacts(hub, &a.job, &checkout)?;
        let caches = cache::Caches::new(cfg, hub, &a.job);
        caches.restore(&checkout);
        let mut run = spec(cfg, &a.job, &checkout, &log_path, &masker);
        let port = if a.job.spec.serve { Some(serve::expose(cfg, &a.job, &mut run)?) } else { None };
        let env = run.env.clone();
        let running = runner::start(run).map_err(|e| e.to_string())?;
        let _stop = StopOnPanic(running.interrupter());
        on_started(running.interrupter(), log_path.clone());
        let outcome = match &port {
            None => running.wait(),
            Some(port) => match serve::await_ready(&a.job, running, &checkout, port, &env) {
                serve::Readiness::Ready(running, outcome) => {
                    live = Some((running, port.clone()));
                    outcome
                }
                serve::Readiness::Ended(outcome) => outcome,
            },
        };
        collected = outputs::collect(&a.job, &checkout, workdir.path(), &masker);
        // A running service's checkout is its own until it stops.
        if live.is_none() {
            caches.save(&checkout);
        }
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
    placed.append(&mut collected.notes);
    if !cfg.secrets.is_empty() && !cfg.isolation.secrets_for(&a.job.git_ref) {
        let names: Vec<&str> = cfg.secrets.iter().map(|(k, _)| k.as_str()).collect();
        placed.push(format!(
            "ran without the worker's secrets ({}): {} matches none of --env-refs {}",
            names.join(", "),
            a.job.git_ref,
            cfg.isolation.secret_refs.join(",")
        ));
    }
    let log = match &live {
        None => seal_log(&log_path, &placed, &masker, &mut result),
        Some((_, port)) => {
            result.url = Some(port.url.clone());
            placed.push(format!("the service is ready at {}; it keeps running", port.url));
            serve::seal_log_so_far(&log_path, workdir.path(), |path| seal_log(path, &placed, &masker, &mut result))
        }
    };
    result.tests = collected.tests;
    result.artifacts = std::mem::take(&mut collected.artifacts);
    let cache_key = a.cache_key.filter(|_| result.status == Status::Passed);
    let entry = Entry { id: a.job.id.clone(), job_json: a.job_json, result, log, files: collected.files, cache_key };
    match live {
        None => Ran { entry, stolen, workdir: Some(workdir), service: None },
        Some((running, port)) => {
            let service = serve::Service::new(hub, &a.job, *running, workdir, port.url);
            Ran { entry, stolen, workdir: None, service: Some(service) }
        }
    }
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
            result.log_sha256 = crate::digest::sha256_hex(&bytes);
            result.log_bytes = bytes.len() as u64;
            return Content::File(path.to_path_buf());
        }
        Err(e) => {
            fail_on_log(result, &format!("could not read the job's log {}: {e}", path.display()));
            masker.mask(format!("[git-ci] {}\n", result.reason.as_deref().unwrap_or_default()).as_bytes())
        }
    };
    result.log_sha256 = crate::digest::sha256_hex(&log);
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
        job.spec = trust::spec_from_commit(hub, commit, job)?;
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
    // A matrix job's values, over the file's `env`: they are what sets
    // this job apart from its siblings.
    env.extend(job.spec.matrix.iter().map(|(k, v)| (k.to_owned(), v.to_owned())));
    if cfg.isolation.secrets_for(&job.git_ref) {
        env.extend(cfg.secrets.iter().cloned());
    }
    if let Some(r) = job.repeat {
        env.push(("GIT_CI_REPEAT".into(), r.index.to_string()));
    }
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
        executor: cfg.isolation.executor(),
        network: job.spec.network,
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
        url: None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::model::JobSpec;

    #[test]
    fn a_job_thread_that_panics_still_ends_in_an_error_result_and_stops_its_script() {
        let dir = tempfile::tempdir().unwrap();
        let (hub_path, commit, tree) = super::super::tests::hub_with_a_commit(dir.path());
        let hub: Arc<dyn Hub> = Arc::new(crate::hub::LocalHub::open(&hub_path).unwrap());
        let pid_file = dir.path().join("script.pid");
        let script = format!("echo $$ > {}; sleep 30", pid_file.display());
        let job = Job::new(JobSpec::ad_hoc(&script), &commit, &tree, "refs/heads/main", "t");
        let cfg = Arc::new(Config::new("w".to_owned(), dir.path().join("work")));
        let a = Assignment { job_json: job.to_json(), job, attempt: 1, cache_key: None };
        let (tx, rx) = mpsc::channel();
        let started = pid_file.clone();
        let on_started = move |_: Interrupter, _: PathBuf| {
            let until = std::time::Instant::now() + Duration::from_secs(20);
            while !started.exists() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("boom while starting")
        };
        spawn(hub, cfg, a, on_started, move |ran| tx.send(ran).unwrap());
        let ran = rx.recv_timeout(Duration::from_secs(30)).expect("the job thread reports despite its panic");
        let result = &ran.entry.result;
        assert_eq!(result.status, Status::Error);
        assert!(result.reason.as_deref().unwrap_or_default().contains("boom while starting"), "{result:?}");
        // The script started before the panic, and is stopped, not left running.
        assert!(pid_file.exists(), "the script ran");
        let alive = || {
            let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
        };
        let until = std::time::Instant::now() + Duration::from_secs(20);
        while alive() {
            assert!(std::time::Instant::now() < until, "the script outlived its crashed job thread");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
