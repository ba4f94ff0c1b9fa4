//! Pending and running jobs: the queue refs, their claims and log tails.

use std::collections::HashMap;

use git_ci_core::queue::Snapshot;
use git_ci_core::{Hub, JobId, refs};

use super::row::Row;
use crate::error::SiteError;

/// Live jobs that are not `finished` already (a job both finished and
/// still queued is finished: DESIGN.md).
pub fn read(hub: &dyn Hub, snapshot: &Snapshot, finished: &HashMap<JobId, Row>) -> Result<Vec<Row>, SiteError> {
    let logs: HashMap<JobId, _> = hub
        .list(refs::LOGS)?
        .into_iter()
        .filter_map(|(name, id)| Some((refs::job_id_under(&name, refs::LOGS)?, id)))
        .collect();
    let mut out = Vec::new();
    for q in &snapshot.queued {
        if finished.contains_key(&q.id) {
            continue;
        }
        // An entry that vanished since the listing: the job just finished.
        let Ok(blob) = q.job_blob(hub) else { continue };
        let Ok(job_json) = hub.read_blob(blob) else { continue };
        let claim = snapshot.claims.get(&q.id).map(|blob| {
            let doc = git_ci_core::queue::read_claim(hub, *blob, &q.id);
            (*blob, doc)
        });
        let mut row = Row::live(q.id.clone(), (blob, &job_json), claim, logs.get(&q.id).copied());
        if row.queue.is_empty() {
            row.queue = q.queue.clone();
        }
        row.parked = q.parked.is_some();
        out.push(row);
    }
    Ok(out)
}
