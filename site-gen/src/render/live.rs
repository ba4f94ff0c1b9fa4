//! The live views: `queue.html` (pending and running jobs, their ages and
//! claims) and `workers.html` (registrations, what each runs, who went
//! quiet). Rebuilt every time.

use git_ci_core::live_workers::LiveWorkers;
use git_ci_core::state::State;
use git_ci_core::{Claim, Job, JobId};
use serde::Serialize;
use std::collections::HashSet;

use super::{Build, paths, value, view};
use crate::error::SiteError;
use crate::model::objects;
use crate::model::{Row, Source};
use crate::output::Output;

#[derive(Serialize)]
struct QueueRow<'a> {
    job: view::JobItem<'a>,
    lease_until: Option<String>,
    /// Why a pending job waits: `waiting for build`, `no live worker
    /// serves queue gpu with gpu=a100`, `waits its turn`.
    waits: Option<String>,
}

pub fn render_queue(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let repo = b.repo();
    let live = LiveWorkers::new(b.data.workers.iter().filter_map(|w| w.info.clone()), b.now());
    let mut jobs: Vec<QueueRow> = Vec::new();
    for row in b.data.rows.iter().filter(|r| r.is_live()) {
        let (claim, job) = match &row.source {
            Source::Live { claim, job, .. } => (
                claim.and_then(|c| objects::blob(&repo, c.0).ok()).and_then(|c| Claim::from_json(&c).ok()),
                objects::blob(&repo, job.0).ok().and_then(|j| Job::from_json(&j).ok()),
            ),
            Source::Done { .. } => (None, None),
        };
        let waits = (row.state == State::Pending).then(|| why_waiting(b, row, job.as_ref(), &live));
        jobs.push(QueueRow { job: b.live_item(row), lease_until: claim.map(|c| c.lease_expires_at), waits });
    }
    // Running first, then the longest waiting first: the queue's order.
    jobs.reverse();
    jobs.sort_by_key(|q| q.job.state != "running");
    let running = jobs.iter().filter(|q| q.job.state == "running").count();
    let page = serde_json::json!({
        "now": git_ci_core::time::rfc3339(b.now()),
        "running": running,
        "pending": jobs.len() - running,
        "jobs": serde_json::to_value(&jobs).expect("plain data"),
    });
    out.always("queue", |files| files.write("queue.html", &b.page("queue.html", "", "Queue", "queue", value(page))?))
}

/// Why `row`, pending, is not running: the jobs of its pipeline it waits
/// for, else no live worker able to run it (as `git ci show` says), else
/// parked in a backlog, else its turn in the queue.
fn why_waiting(b: &Build, row: &Row, job: Option<&Job>, live: &LiveWorkers) -> String {
    let unfinished: Vec<&str> = row
        .needs
        .iter()
        .filter(|n| b.groups.by_id.get(&n.id).is_none_or(|r| r.is_live()))
        .map(|n| n.label.as_str())
        .collect();
    if !unfinished.is_empty() {
        return format!("waiting for {}", unfinished.join(", "));
    }
    match job.and_then(|j| live.why_unserved(j)) {
        Some(why) => why,
        None if job.is_none() => "its job document is unreadable".to_owned(),
        None if row.parked => {
            format!("parked in backlog: a worker of queue {} queues it when the queue runs low", row.queue)
        }
        None => format!("waits its turn: a live worker serves queue {}", row.queue),
    }
}

#[derive(Serialize)]
struct WorkerRow<'a> {
    name: &'a str,
    readable: bool,
    stale: bool,
    labels: Vec<(&'a str, &'a str)>,
    queues: &'a [String],
    slots: Option<u64>,
    running: Vec<RunningJob>,
    last_seen: &'a str,
    age: String,
    platform: &'a str,
    version: &'a str,
    /// The sandbox's summary; empty: jobs run on the host as the worker.
    sandbox: String,
}

#[derive(Serialize)]
struct RunningJob {
    label: String,
    href: Option<String>,
    /// How long it has run, when the site knows the job.
    elapsed: Option<String>,
}

pub fn render_workers(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let known: HashSet<&str> = b.data.rows.iter().map(|r| r.id.as_str()).collect();
    let workers: Vec<WorkerRow> = b
        .data
        .workers
        .iter()
        .map(|w| {
            let doc = w.doc.as_ref();
            let running = doc.map_or(&[][..], |d| &d.running[..]);
            WorkerRow {
                name: &w.name,
                readable: doc.is_some(),
                stale: w.stale,
                labels: doc
                    .map(|d| d.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
                    .unwrap_or_default(),
                queues: doc.map_or(&[][..], |d| &d.queues[..]),
                slots: doc.and_then(|d| d.jobs),
                running: running.iter().map(|id| running_job(id, &known, b)).collect(),
                last_seen: doc.map_or("", |d| d.last_seen.as_str()),
                age: doc.map(|d| view::age(&d.last_seen, b.now())).unwrap_or_default(),
                platform: doc.map_or("", |d| d.platform.as_str()),
                version: doc.map_or("", |d| d.git_ci_version.as_str()),
                sandbox: doc.and_then(|d| d.sandbox.as_ref()).map(|s| s.summary()).unwrap_or_default(),
            }
        })
        .collect();
    let page = serde_json::json!({
        "now": git_ci_core::time::rfc3339(b.now()),
        "stale_periods": crate::model::STALE_PERIODS,
        "workers": serde_json::to_value(&workers).expect("plain data"),
        "stopped": stopped(b),
    });
    out.always("workers", |files| {
        files.write("workers.html", &b.page("workers.html", "", "Workers", "workers", value(page))?)
    })
}

/// Workers that ran jobs but hold no registration: they stopped cleanly
/// (a worker removes its registration on the way out). Each with its last
/// result, newest first.
fn stopped(b: &Build) -> serde_json::Value {
    let registered: HashSet<&str> = b.data.workers.iter().map(|w| w.name.as_str()).collect();
    let mut last: Vec<(&str, &str)> = Vec::new();
    for row in b.data.rows.iter().filter(|r| !r.is_live() && !r.worker.is_empty()) {
        if !registered.contains(row.worker.as_str()) && !last.iter().any(|(w, _)| *w == row.worker) {
            last.push((&row.worker, &row.finished_at));
        }
    }
    last.sort_by(|a, b| b.1.cmp(a.1));
    let rows = last
        .iter()
        .map(|(name, at)| serde_json::json!({ "name": name, "last_result": at, "age": view::age(at, b.now()) }));
    serde_json::Value::Array(rows.collect())
}

/// A job a worker says it runs: a link when the site has its page. Only a
/// checked job id ever becomes a link.
fn running_job(id: &str, known: &HashSet<&str>, b: &Build) -> RunningJob {
    let row = JobId::parse(id).ok().and_then(|id| b.groups.by_id.get(&id).copied());
    let label = match row.map(|r| r.label.as_str()) {
        Some(n) if !n.is_empty() => format!("{n} ({})", &id[19..]),
        _ => id.chars().take(64).collect(),
    };
    let elapsed = row.filter(|r| r.is_live()).and_then(|r| git_ci_core::time::parse_rfc3339(&r.started_at));
    let elapsed = elapsed.map(|t| view::minutes(b.now().duration_since(t).unwrap_or_default()));
    RunningJob { label, href: known.contains(id).then(|| paths::job(id)), elapsed }
}
