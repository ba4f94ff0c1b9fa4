//! `git ci retry` of a job others needed: the jobs skipped because of it
//! run again with it, waiting for its new run.

use std::collections::BTreeMap;

use crate::hub::{Hub, HubError};
use crate::id::JobId;
use crate::model::{Job, Need, Status};
use crate::state::{Board, JobView};

/// Why a retry cannot be queued.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(
        "{id} ({label}) needs {need}, which {state}: retry {need_id} instead (what was skipped because of it runs again with it)"
    )]
    NeedNotPassed { id: JobId, label: String, need: String, need_id: JobId, state: String },
}

/// New runs of `olds` (finished jobs), each with every job that was
/// skipped because of it and can now run: its needs passed or run again
/// here. Returns `(new job, the job it runs again)`, in submission order.
pub fn again(hub: &dyn Hub, board: &Board, olds: &[Job], by: &str) -> Result<Vec<(Job, JobId)>, RetryError> {
    let mut olds: Vec<&Job> = olds.iter().collect();
    olds.sort_by(|a, b| a.id.cmp(&b.id));
    let Some(first) = olds.first() else { return Ok(vec![]) };
    // Dependants are submitted with or after the jobs they need.
    let later: Vec<JobView> =
        if olds.iter().any(|j| !j.needed_by.is_empty()) { board.finished_after(hub, &first.id)? } else { vec![] };
    let status_of = |id: &JobId| -> Result<Option<Status>, HubError> {
        if let Some(v) = later.iter().find(|v| &v.id == id) {
            return Ok(v.result.as_ref().map(|r| r.status));
        }
        Ok(board.view(hub, id)?.and_then(|v| v.result.map(|r| r.status)))
    };
    let mut renewed: BTreeMap<JobId, Need> = BTreeMap::new();
    let mut out = Vec::new();
    for old in olds {
        for need in old.needs.iter().filter(|n| !renewed.contains_key(&n.id)) {
            let status = status_of(&need.id)?;
            if status != Some(Status::Passed) {
                return Err(RetryError::NeedNotPassed {
                    id: old.id.clone(),
                    label: old.label(),
                    need: need.label.clone(),
                    need_id: need.id.clone(),
                    state: status.map_or("has not finished".into(), |s| format!("ended {}", s.as_str())),
                });
            }
        }
        let job = renew(old, &renewed, by);
        renewed.insert(old.id.clone(), Need { id: job.id.clone(), label: job.label() });
        out.push((job, old.id.clone()));
    }
    for view in &later {
        let (Some(job), Some(result)) = (&view.job, &view.result) else { continue };
        if result.status != Status::Skipped || renewed.contains_key(&job.id) {
            continue;
        }
        if !job.needs.iter().any(|n| renewed.contains_key(&n.id)) {
            continue;
        }
        let mut runnable = true;
        for need in job.needs.iter().filter(|n| !renewed.contains_key(&n.id)) {
            runnable &= status_of(&need.id)? == Some(Status::Passed);
        }
        if runnable {
            let new = renew(job, &renewed, by);
            renewed.insert(job.id.clone(), Need { id: new.id.clone(), label: new.label() });
            out.push((new, job.id.clone()));
        }
    }
    Ok(out)
}

/// A new run of `old`, needing the new runs of what runs again.
fn renew(old: &Job, renewed: &BTreeMap<JobId, Need>, by: &str) -> Job {
    let mut job = Job::unsealed(old.spec.clone(), &old.commit, &old.tree, &old.git_ref, by);
    job.needs = old.needs.iter().map(|n| renewed.get(&n.id).cloned().unwrap_or_else(|| n.clone())).collect();
    job.needed_by = old.needed_by.clone();
    job.repeat = old.repeat;
    job.config_from = old.config_from.clone();
    job.project = old.project.clone();
    job.sealed()
}
