//! The values a queue ref holds: a pending job's `job.json` blob; once a
//! worker claimed it, a tree `{claim.json, job.json}`; and, for a job that
//! waits on others (`needs`), a tree `{job.json, waiting.json}` naming the
//! jobs it still waits for ([`crate::needs`]).
//!
//! Why the queue ref moves on a claim: `git push` never sends a ref that it
//! leaves unchanged, so a lease on an unchanged queue ref is checked only
//! against the advertisement, never when the hub applies the push. A claim
//! that merely "verified" the queue ref could therefore win after a cancel
//! or a publish had deleted it, and run a finished or cancelled job. Moving
//! the queue ref from the job blob to the claimed tree makes "claimed",
//! "cancelled" and "finished" exclusive at the moment the hub applies each
//! transaction: a cancel deletes the ref expected at the job blob, a claim
//! moves it expected at the job blob, a publish deletes it expected at its
//! current value, and each of these changes the ref, so git checks each.
//!
//! The tree keeps the job blob itself (readers find the document in it) and
//! the first claim's blob, whose random nonce makes every claimed value
//! unique: the ref never returns to a value it held (no ABA).

use gix::ObjectId;
use gix::objs::tree::{Entry, EntryKind};
use gix::objs::{Kind, TreeRef};

use std::collections::BTreeSet;

use crate::hub::{Hub, HubError};
use crate::id::JobId;

/// The job document's name in a claimed tree.
pub const JOB_ENTRY: &str = "job.json";
/// The first claim's name in a claimed tree.
pub const CLAIM_ENTRY: &str = "claim.json";
/// The list of the jobs a waiting job still waits for, in a waiting tree.
pub const WAITING_ENTRY: &str = "waiting.json";

/// What a queue ref's value says about its job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueValue {
    /// The `job.json` blob.
    pub job: ObjectId,
    /// The claim that first took the job, when the ref holds the claimed tree.
    pub first_claim: Option<ObjectId>,
    /// The `waiting.json` blob, when the job waits on jobs it needs.
    pub waiting: Option<ObjectId>,
}

/// Writes the claimed tree of a job whose document is `job` and whose first
/// claim is `claim`.
pub fn write(hub: &dyn Hub, job: ObjectId, claim: ObjectId) -> Result<ObjectId, HubError> {
    // Entries sorted by name, as git requires: "claim.json" < "job.json".
    write_tree(hub, [(CLAIM_ENTRY, claim), (JOB_ENTRY, job)])
}

/// Writes the waiting tree of a job whose document is `job`, waiting on
/// the jobs listed in the blob `waiting`.
pub fn write_waiting(hub: &dyn Hub, job: ObjectId, waiting: ObjectId) -> Result<ObjectId, HubError> {
    // Sorted by name: "job.json" < "waiting.json".
    write_tree(hub, [(JOB_ENTRY, job), (WAITING_ENTRY, waiting)])
}

fn write_tree(hub: &dyn Hub, sorted: [(&str, ObjectId); 2]) -> Result<ObjectId, HubError> {
    let entries = sorted
        .into_iter()
        .map(|(name, oid)| Entry { mode: EntryKind::Blob.into(), filename: name.into(), oid })
        .collect();
    hub.repo()
        .write_object(&gix::objs::Tree { entries })
        .map(|id| id.detach())
        .map_err(|e| hub.local_error("could not write a queue entry".into(), e))
}

/// Reads the value of a queue ref: a blob is a pending job's document
/// itself; a tree is a claimed job's.
pub fn resolve(repo: &gix::Repository, value: ObjectId) -> Result<QueueValue, String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("could not read the queue entry {value}: {e}");
    // The header alone for a pending job: the worker reads its document
    // apart, and only once.
    match repo.find_header(value).map_err(|e| unreadable(&e))?.kind() {
        Kind::Blob => Ok(QueueValue { job: value, first_claim: None, waiting: None }),
        Kind::Tree => parse_tree(&repo.find_object(value).map_err(|e| unreadable(&e))?.data, value.kind()),
        other => Err(format!("the queue entry {value} is a {other}, not a job document or a claimed tree")),
    }
}

/// The id `bytes` have as a blob: a job document's queue value while pending.
pub fn blob_id(repo: &gix::Repository, bytes: &[u8]) -> ObjectId {
    gix::objs::compute_hash(repo.object_hash(), Kind::Blob, bytes).expect("hashing in memory does not fail")
}

/// A claimed or waiting tree's two blobs; anything else in it is refused,
/// so that a queue ref cannot carry more than git-ci put there.
pub fn parse_tree(bytes: &[u8], hash: gix::hash::Kind) -> Result<QueueValue, String> {
    let tree = TreeRef::from_bytes(bytes, hash).map_err(|e| format!("the queue entry tree does not decode: {e}"))?;
    let (mut job, mut claim, mut waiting) = (None, None, None);
    for entry in &tree.entries {
        if !entry.mode.is_blob() {
            return Err(format!("the queue entry tree holds {}, which is not a file", entry.filename));
        }
        match entry.filename.to_string().as_str() {
            JOB_ENTRY => job = Some(entry.oid.to_owned()),
            CLAIM_ENTRY => claim = Some(entry.oid.to_owned()),
            WAITING_ENTRY => waiting = Some(entry.oid.to_owned()),
            other => {
                return Err(format!(
                    "the queue entry tree holds {other:?}; only {JOB_ENTRY} with {CLAIM_ENTRY} or {WAITING_ENTRY}"
                ));
            }
        }
    }
    match (job, claim, waiting) {
        (Some(job), Some(claim), None) => Ok(QueueValue { job, first_claim: Some(claim), waiting: None }),
        (Some(job), None, Some(waiting)) => Ok(QueueValue { job, first_claim: None, waiting: Some(waiting) }),
        _ => Err(format!("the queue entry tree must hold {JOB_ENTRY} and one of {CLAIM_ENTRY} or {WAITING_ENTRY}")),
    }
}

/// `waiting.json`: the ids a job still waits for, sorted.
pub fn waiting_json(ids: &BTreeSet<JobId>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&ids.iter().map(JobId::as_str).collect::<Vec<_>>()).expect("strings serialize");
    bytes.push(b'\n');
    bytes
}

/// Reads `waiting.json`; an empty or malformed list is an error (a job
/// waiting for nothing would never move).
pub fn parse_waiting(bytes: &[u8]) -> Result<BTreeSet<JobId>, String> {
    let ids: Vec<String> =
        serde_json::from_slice(bytes).map_err(|e| format!("waiting.json is not a list of job ids: {e}"))?;
    let ids: BTreeSet<JobId> =
        ids.iter().map(|s| JobId::parse(s).map_err(|e| format!("waiting.json: {e}"))).collect::<Result<_, _>>()?;
    if ids.is_empty() {
        return Err("waiting.json lists no job".into());
    }
    Ok(ids)
}

/// The ids a queue ref's job still waits for; `None` when it waits for
/// nothing (pending, claimed) or its list cannot be read.
pub fn waiting_list(hub: &dyn Hub, value: ObjectId) -> Option<BTreeSet<JobId>> {
    let list = resolve(&hub.repo(), value).ok()?.waiting?;
    parse_waiting(&hub.read_blob(list).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_tree_reads_back_its_job_and_claim() {
        let dir = tempfile::tempdir().unwrap();
        gix::init_bare(dir.path()).unwrap();
        let hub = crate::hub::LocalHub::open(dir.path()).unwrap();
        let hub: &dyn Hub = &hub;
        let job = hub.write_blob(b"{\"job\": 1}").unwrap();
        let claim = hub.write_blob(b"{\"claim\": 1}").unwrap();
        let tree = write(hub, job, claim).unwrap();
        let repo = hub.repo();
        assert_eq!(resolve(&repo, tree).unwrap(), QueueValue { job, first_claim: Some(claim), waiting: None });
        assert_eq!(resolve(&repo, job).unwrap(), QueueValue { job, first_claim: None, waiting: None });
        let waiting = write_waiting(hub, job, claim).unwrap();
        assert_eq!(resolve(&repo, waiting).unwrap(), QueueValue { job, first_claim: None, waiting: Some(claim) });
    }

    #[test]
    fn a_tree_with_anything_else_is_not_a_claimed_entry() {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init_bare(dir.path()).unwrap();
        let blob = repo.write_blob(b"x").unwrap().detach();
        let tree = gix::objs::Tree {
            entries: vec![
                Entry { mode: EntryKind::Blob.into(), filename: "extra".into(), oid: blob },
                Entry { mode: EntryKind::Blob.into(), filename: JOB_ENTRY.into(), oid: blob },
            ],
        };
        let id = repo.write_object(&tree).unwrap().detach();
        let err = resolve(&repo, id).unwrap_err();
        assert!(err.contains("\"extra\""), "{err}");
        let only_job = gix::objs::Tree {
            entries: vec![Entry { mode: EntryKind::Blob.into(), filename: JOB_ENTRY.into(), oid: blob }],
        };
        let id = repo.write_object(&only_job).unwrap().detach();
        assert!(resolve(&repo, id).unwrap_err().contains("must hold"));
    }

    #[test]
    fn waiting_lists_round_trip_and_refuse_nonsense() {
        let ids: BTreeSet<JobId> = ["20261202T030000000-aaaaaaaaaaaa", "20261202T030000001-bbbbbbbbbbbb"]
            .iter()
            .map(|s| JobId::parse(s).unwrap())
            .collect();
        assert_eq!(parse_waiting(&waiting_json(&ids)).unwrap(), ids);
        assert!(parse_waiting(b"[]").unwrap_err().contains("no job"));
        assert!(parse_waiting(b"[\"x\"]").unwrap_err().contains("not a job id"));
        assert!(parse_waiting(b"{}").is_err());
    }
}
