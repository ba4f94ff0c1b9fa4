//! git-ci-core workers on threads of this process, reporting the jobs they
//! publish on a channel.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use git_ci_core::hub::Hub;
use git_ci_core::worker::{Config, Control, Controller, Event, Summary, Worker};
use git_ci_core::{JobId, Status};

use crate::fixture::Res;

/// A job published by a worker: its id and whether it passed.
pub type Published = (JobId, Status);

pub fn config(name: &str, work_dir: PathBuf, poll: Duration, once: bool) -> Config {
    // The rest as `git ci worker`'s defaults, so that a new setting needs
    // no edit here.
    Config {
        jobs: 1,
        once,
        poll,
        poll_max: poll,
        lease: Duration::from_secs(60),
        log_cap: 1 << 20,
        kill_grace: Duration::from_secs(1),
        // `git ci worker`'s default; a no-op job ends long before.
        log_interval: Duration::from_secs(3),
        ..Config::new(name.to_owned(), work_dir)
    }
}

pub struct Spawned {
    controller: Controller,
    thread: JoinHandle<Summary>,
}

/// Events that say something went wrong or was contended, kept for the
/// report: a benchmark that silently retried is measuring something else.
#[derive(Clone, Default)]
pub struct Incidents(Arc<Mutex<Vec<String>>>);

impl Incidents {
    fn record(&self, worker: &str, e: &Event) {
        let what = match e {
            Event::HubUnreachable { error, .. } => format!("hub unreachable: {error}"),
            Event::HubError { error } => format!("hub error: {error}"),
            Event::Stolen { id } => format!("claim on {id} stolen"),
            Event::Overtaken { id } => format!("{id} published by someone else"),
            _ => return,
        };
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("{worker}: {what}"));
        }
    }

    pub fn take(&self) -> Vec<String> {
        self.0.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }
}

pub fn spawn(hub: Arc<dyn Hub>, cfg: Config, published: Sender<Published>, incidents: &Incidents) -> Res<Spawned> {
    let name = cfg.name.clone();
    let (who, incidents) = (name.clone(), incidents.clone());
    let worker = Worker::new(hub, cfg, move |e| {
        incidents.record(&who, e);
        if let Event::Published { result, .. } = e {
            let _ = published.send((result.id.clone(), result.status));
        }
    });
    let controller = worker.controller();
    let thread = std::thread::Builder::new().name(name).spawn(move || worker.run())?;
    Ok(Spawned { controller, thread })
}

/// Tells every worker to drain, then waits for them all.
pub fn stop(spawned: Vec<Spawned>) -> Res<Vec<Summary>> {
    for s in &spawned {
        s.controller.send(Control::Drain);
    }
    join(spawned)
}

pub fn join(spawned: Vec<Spawned>) -> Res<Vec<Summary>> {
    spawned.into_iter().map(|s| s.thread.join().map_err(|_| "a worker thread panicked".into())).collect()
}

/// Waits until `want` was published, skipping others; a failed job or the
/// deadline is an error (the benchmark would measure something else).
pub fn wait_for(rx: &Receiver<Published>, want: &JobId, deadline: Instant) -> Res<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((id, status)) if id == *want => return check_passed(&id, status),
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return Err(format!("job {want} was not published in time").into()),
            Err(RecvTimeoutError::Disconnected) => return Err("the workers stopped".into()),
        }
    }
}

/// Waits for up to `count` publications; returns how many came before the
/// deadline or before every worker was gone.
pub fn wait_count(rx: &Receiver<Published>, count: usize, deadline: Instant) -> Res<usize> {
    for got in 0..count {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((id, status)) => check_passed(&id, status)?,
            Err(_) => return Ok(got),
        }
    }
    Ok(count)
}

fn check_passed(id: &JobId, status: Status) -> Res<()> {
    if status == Status::Passed {
        Ok(())
    } else {
        Err(format!("job {id} ended {}: a no-op job must pass", status.as_str()).into())
    }
}
