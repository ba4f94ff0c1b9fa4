//! `api/`: the site as JSON, for scripts that poll a static host the way
//! they would poll a REST API. `api/index.json` lists live and recent jobs,
//! branches and workers; `api/jobs/<id>.json` and `api/branches/<slug>.json`
//! are written with their pages. Paths inside are from the site's top.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Build, paths};
use crate::badge::Badge;
use crate::error::SiteError;
use crate::model::Row;
use crate::model::row::worst;
use crate::output::Output;

/// Finished jobs listed in the index; older ones are in the job files.
const RECENT: usize = 200;

/// A job as lists show it, with the fields of `git ci status --json`.
pub fn summary(b: &Build, row: &Row) -> Value {
    let id = row.id.as_str();
    json!({
        "id": id,
        "name": row.name,
        "label": row.label,
        "state": row.state.as_str(),
        "queue": row.queue,
        "commit": row.commit,
        "ref": row.git_ref,
        "attempt": row.attempt,
        "worker": row.worker,
        "duration_ms": row.duration_ms,
        "submitted_at": row.submitted_at,
        "finished_at": (!row.finished_at.is_empty()).then_some(&row.finished_at),
        "subject": b.data.commit(&row.commit).map(|c| c.subject.as_str()),
        "html": paths::job(id),
        "api": paths::job_api(id),
    })
}

/// Each job name's latest runs: the run that speaks for the name
/// ([`crate::model::row::worst`]), with every run under `runs` when there
/// are several (a matrix job's combinations, a repeated job's runs).
pub fn by_name(b: &Build, latest: &BTreeMap<&str, Vec<&Row>>) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (name, runs) in latest {
        let Some(worst) = worst(runs.iter().copied()) else { continue };
        let mut v = summary(b, worst);
        if runs.len() > 1 {
            v["runs"] = runs.iter().map(|r| summary(b, r)).collect();
        }
        out.insert(name.to_string(), v);
    }
    out
}

pub fn to_bytes(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).expect("plain JSON");
    bytes.push(b'\n');
    bytes
}

pub fn render_api_index(b: &Build, out: &mut Output) -> Result<(), SiteError> {
    let rows = &b.data.rows;
    let live = rows.iter().filter(|r| r.is_live());
    let recent = rows.iter().filter(|r| !r.is_live()).take(RECENT);
    let branches: Vec<Value> = b
        .groups
        .branches
        .iter()
        .map(|br| {
            json!({
                "branch": br,
                "state": Badge::of_branch(b.groups.latest_by_name(br).values().flatten().copied()).word(),
                "html": paths::branch(br),
                "api": paths::branch_api(br),
                "badge": paths::badge(br),
            })
        })
        .collect();
    let workers: Vec<Value> = b
        .data
        .workers
        .iter()
        .map(|w| {
            let d = w.doc.as_ref();
            json!({
                "name": w.name,
                "stale": w.stale,
                "labels": d.map(|d| &d.labels),
                "queues": d.map(|d| &d.queues),
                "running": d.map(|d| &d.running),
                "last_seen": d.map(|d| &d.last_seen),
            })
        })
        .collect();
    let index = json!({
        "version": 1,
        "chains": b.data.chains.iter().map(|(name, tip)| (name.clone(), Value::from(tip.0.to_string()))).collect::<serde_json::Map<_, _>>(),
        "jobs": live.chain(recent).map(|r| summary(b, r)).collect::<Vec<_>>(),
        "branches": branches,
        "workers": workers,
        "feed": "feed.atom",
    });
    out.always("api", |files| files.write("api/index.json", &to_bytes(&index)))
}
