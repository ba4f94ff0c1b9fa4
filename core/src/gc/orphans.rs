//! Cancel requests left behind by a race.
//!
//! `git ci cancel` of a running job writes `refs/ci/cancel/<id>`, and the
//! job's publish deletes it, but only if the worker saw it before
//! publishing: a cancel made just as the job finishes outlives it. Nothing
//! reads such a ref again, and every fetch and push pays for every ref, so
//! `doctor` reports them and `gc` removes them.

use gix::ObjectId;

use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::queue::Snapshot;
use crate::refs;

/// The cancel requests whose job is not queued (so finished: a queue ref
/// never comes back), oldest job first. [`Snapshot::read`] lists cancels
/// before queue refs, so a job queued at that listing is never taken for
/// finished.
pub fn cancels(snapshot: &Snapshot) -> Vec<(JobId, ObjectId)> {
    let mut out: Vec<(JobId, ObjectId)> = snapshot
        .cancels
        .iter()
        .filter(|(id, _)| !snapshot.queued.iter().any(|q| &q.id == *id))
        .map(|(id, blob)| (id.clone(), *blob))
        .collect();
    out.sort();
    out
}

/// Deletes the orphan cancel requests, each against the value read, in one
/// transaction; returns the jobs they were for.
pub fn remove_cancels(hub: &dyn Hub) -> Result<Vec<JobId>, HubError> {
    let orphans = cancels(&Snapshot::read(hub, &[])?);
    if orphans.is_empty() {
        return Ok(vec![]);
    }
    let edits: Vec<RefEdit> = orphans.iter().map(|(id, blob)| RefEdit::delete(refs::cancel(id), *blob)).collect();
    hub.transact(&edits)?;
    Ok(orphans.into_iter().map(|(id, _)| id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::LocalHub;

    #[test]
    fn only_cancels_of_jobs_no_longer_queued_are_orphans_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        gix::init_bare(dir.path()).unwrap();
        let hub = LocalHub::open(dir.path()).unwrap();
        let hub: &dyn Hub = &hub;
        let running = JobId::parse("20261122T040704123-0123456789ab").unwrap();
        let finished = JobId::parse("20261122T040704124-0123456789ab").unwrap();
        let blob = hub.write_blob(b"{}").unwrap();
        hub.transact(&[
            RefEdit::create(refs::queue("default", &running), blob),
            RefEdit::create(refs::cancel(&running), blob),
            RefEdit::create(refs::cancel(&finished), blob),
        ])
        .unwrap();

        let found = cancels(&Snapshot::read(hub, &[]).unwrap());
        assert_eq!(found, [(finished.clone(), blob)]);
        assert_eq!(remove_cancels(hub).unwrap(), std::slice::from_ref(&finished));
        assert_eq!(hub.get(&refs::cancel(&finished)).unwrap(), None, "removed");
        assert_eq!(hub.get(&refs::cancel(&running)).unwrap(), Some(blob), "a running job's cancel stays");
        assert!(remove_cancels(hub).unwrap().is_empty(), "nothing left to remove");
    }
}
