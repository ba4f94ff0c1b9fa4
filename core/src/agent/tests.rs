use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::*;
use crate::hub::LocalHub;
use crate::model::{JobSpec, Status};

/// A bare hub with one commit (of the empty tree) and `n` jobs queued on it.
fn hub_with_jobs(dir: &std::path::Path, n: usize) -> (Arc<dyn Hub>, Vec<JobId>) {
    hub_with_parked_jobs(dir, n, None)
}

/// The same, parking the jobs beyond the first `after` ([`crate::backlog`]).
fn hub_with_parked_jobs(dir: &std::path::Path, n: usize, after: Option<usize>) -> (Arc<dyn Hub>, Vec<JobId>) {
    let path = dir.join("hub.git");
    gix::init_bare(&path).unwrap();
    let git = || {
        let who = [("GIT_AUTHOR_NAME", "t"), ("GIT_COMMITTER_NAME", "t")];
        let mails = [("GIT_AUTHOR_EMAIL", "t@t"), ("GIT_COMMITTER_EMAIL", "t@t")];
        who.into_iter().chain(mails).fold(crate::git::Git::new(&path).unwrap(), |g, (k, v)| g.env(k, v))
    };
    let text = |out: Vec<u8>| String::from_utf8(out).unwrap().trim().to_owned();
    let tree = text(git().arg("write-tree").env("GIT_INDEX_FILE", dir.join("index")).run().unwrap());
    let commit = text(git().args(["commit-tree", &tree, "-m", "t"]).run().unwrap());
    let hub: Arc<dyn Hub> = Arc::new(LocalHub::open(&path).unwrap());
    let jobs: Vec<Job> = (0..n)
        .map(|i| {
            let mut spec = JobSpec::ad_hoc("true");
            spec.env.insert("N".into(), i.to_string());
            Job::new(spec, &commit, &tree, "refs/heads/main", "t")
        })
        .collect();
    match after {
        None => queue::submit(&*hub, &jobs).unwrap(),
        Some(_) => hub.transact(&queue::submit_parking_edits(&*hub, &jobs, after).unwrap()).unwrap(),
    }
    (hub, jobs.into_iter().map(|j| j.id).collect())
}

fn passed() -> Completion {
    Completion { status: Status::Passed, exit_code: Some(0), log: None, junit: vec![], artifacts: vec![], reason: None }
}

/// Agents racing for one queue: every job is claimed by one of them and
/// published once, and nothing is left on the hub.
#[test]
fn agents_racing_for_a_queue_publish_every_job_once() {
    agents_race(None);
}

/// The same with all but 3 of the jobs parked: the agents promote them as
/// they go, racing each other's promotions and claims.
#[test]
fn agents_racing_for_a_parked_queue_publish_every_job_once() {
    agents_race(Some(3));
}

fn agents_race(after: Option<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let (hub, ids) = hub_with_parked_jobs(dir.path(), 30, after);
    if after.is_some() {
        assert_eq!(hub.list(refs::QUEUE).unwrap().len(), 3);
        assert_eq!(hub.list(refs::BACKLOG).unwrap().len(), 1);
    }
    let labels = BTreeMap::new();
    let done: Vec<Vec<JobId>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|a| {
                let (hub, labels) = (Arc::clone(&hub), &labels);
                s.spawn(move || {
                    let name = format!("agent-{a}");
                    let who = Claimer { name: &name, queue: "default", labels, lease: Duration::from_secs(60) };
                    let mut mine = Vec::new();
                    while let Some(c) = claim(&*hub, &who).unwrap() {
                        let (held, _) = heartbeat(&*hub, &c.held).unwrap();
                        complete(&*hub, &held, &passed()).unwrap();
                        mine.push(c.job.id);
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut count: HashMap<&JobId, usize> = HashMap::new();
    for id in done.iter().flatten() {
        *count.entry(id).or_default() += 1;
    }
    assert_eq!(count.len(), ids.len(), "every job claimed and completed");
    assert!(count.values().all(|&n| n == 1), "{count:?}");
    let board = crate::state::Board::read(&*hub).unwrap();
    for id in &ids {
        let view = board.view(&*hub, id).unwrap().unwrap();
        assert_eq!(view.result.map(|r| r.status), Some(Status::Passed), "{id}");
    }
    for prefix in [refs::QUEUE, refs::BACKLOG, refs::CLAIMS, refs::PINS, refs::LOGS] {
        assert!(hub.list(prefix).unwrap().is_empty(), "{prefix} left behind");
    }
}

/// A claim taken over after its lease (as a worker steals one) leaves the
/// agent nothing: its heartbeat, log and result are refused, and the
/// thief's publish goes through.
#[test]
fn a_stale_claim_cannot_heartbeat_or_publish() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, ids) = hub_with_jobs(dir.path(), 1);
    let labels = BTreeMap::new();
    let who = Claimer { name: "slow", queue: "default", labels: &labels, lease: Duration::from_secs(1) };
    let held = claim(&*hub, &who).unwrap().expect("a job").held;
    assert!(claim(&*hub, &who).unwrap().is_none(), "a claimed job is not claimable");
    // A worker steals it, its lease run out on the worker's clock.
    let snap = Snapshot::read(&*hub, &[]).unwrap();
    let q = &snap.queued[0];
    let steal = ClaimRequest {
        claim: Claim::new(&ids[0], "thief", 2, Duration::from_secs(60)),
        steal: Some(held.token().unwrap()),
        queue_ref: refs::queue("default", &ids[0]),
        queue_value: q.value,
        job_blob: q.job_blob(&*hub).unwrap(),
    };
    let won = queue::claim(&*hub, std::slice::from_ref(&steal)).unwrap();
    let lost = |r: Result<(), AgentError>| match r {
        Err(AgentError::Lost { why, .. }) => why,
        other => panic!("{other:?}"),
    };
    assert!(lost(heartbeat(&*hub, &held).map(drop)).contains("thief took it over as attempt 2"));
    let log = dir.path().join("log");
    std::fs::write(&log, "late\n").unwrap();
    lost(push_log(&*hub, &held, &log));
    lost(complete(&*hub, &held, &passed()).map(drop));
    let thief = Held::of(&steal.claim, "default", won[0].claim);
    let result = complete(&*hub, &thief, &passed()).unwrap();
    assert_eq!((result.worker.as_str(), result.attempt), ("thief", 2));
    assert!(lost(complete(&*hub, &held, &passed()).map(drop)).contains("published"));
}

/// A job parked behind a queue of lower-priority ones it can claim is
/// promoted and claimed first: `git ci claim` keeps to the claim order
/// across the queue and its backlogs, as a worker does.
#[test]
fn a_parked_job_that_outranks_the_queue_is_claimed_first() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, low) = hub_with_jobs(dir.path(), 3);
    let snap = Snapshot::read(&*hub, &[]).unwrap();
    let (like, _) = snap.queued[0].read_job(&*hub).unwrap();
    let urgent: Vec<Job> = (0..2)
        .map(|i| {
            let mut spec = JobSpec::ad_hoc("true");
            spec.priority = 5;
            spec.env.insert("URGENT".into(), i.to_string());
            Job::new(spec, &like.commit, &like.tree, "refs/heads/main", "t")
        })
        .collect();
    // Parked whole: the queue holds the three low-priority jobs.
    hub.transact(&queue::submit_parking_edits(&*hub, &urgent, Some(0)).unwrap()).unwrap();
    assert_eq!(hub.list(refs::QUEUE).unwrap().len(), 3);
    assert_eq!(hub.list(refs::BACKLOG).unwrap().len(), 1);
    let labels = BTreeMap::new();
    let who = Claimer { name: "agent", queue: "default", labels: &labels, lease: Duration::from_secs(60) };
    let mut order = Vec::new();
    while let Some(c) = claim(&*hub, &who).unwrap() {
        complete(&*hub, &c.held, &passed()).unwrap();
        order.push(c.job.id);
    }
    let urgent: Vec<JobId> = urgent.into_iter().map(|j| j.id).collect();
    assert_eq!(order.len(), 5, "{order:?}");
    assert_eq!(order[..2], urgent[..], "the urgent parked jobs first: {order:?}");
    assert!(low.iter().all(|id| order[2..].contains(id)), "{order:?}");
}
