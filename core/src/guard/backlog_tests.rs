//! The guard's rules for backlogs, on edits made by git-ci's own code.

use std::collections::HashSet;

use super::tests::{World, blob, check, commit, create, refused, world};
use super::*;
use crate::backlog::{self, Promotion};
use crate::hub::{Hub, RefEdit};
use crate::model::{Job, JobSpec};

fn updates(w: &World, edits: &[RefEdit]) -> Vec<Update> {
    let on_hub = |name: &str| (&w.hub as &dyn Hub).get(name).unwrap();
    edits
        .iter()
        .map(|e| Update { old: e.expected.or_else(|| on_hub(&e.name)), new: e.new, name: e.name.clone() })
        .collect()
}

fn jobs(w: &World, n: usize) -> Vec<Job> {
    let c = commit(w).to_string();
    (0..n)
        .map(|i| Job::new(JobSpec::ad_hoc(&format!("echo {i}")), &c, &"b".repeat(40), "refs/heads/main", "me"))
        .collect()
}

/// Three jobs parked on the hub (no guard): the backlog ref and its value.
fn parked_on_hub(w: &World) -> (Vec<Job>, String, ObjectId) {
    let jobs = jobs(w, 3);
    let edits = crate::queue::submit_parking_edits(&w.hub, &jobs, Some(0)).unwrap();
    assert_eq!(edits.len(), 1, "all three parked: {edits:?}");
    check(w, &updates(w, &edits), false).expect("a submission's backlog is accepted");
    w.hub.transact(&edits).unwrap();
    (jobs, edits[0].name.clone(), edits[0].new.unwrap())
}

fn promotion(w: &World, backlog: &str, tip: ObjectId, index: usize, job: &Job) -> Promotion {
    let parked = backlog::Parked { backlog: backlog.into(), tip, path: backlog::entry_path(index, &job.id) };
    let blob = crate::claimed::blob_id(&w.hub.repo(), &job.to_json());
    Promotion { queue: "default".into(), id: job.id.clone(), blob, commit: job.commit.parse().unwrap(), parked }
}

#[test]
fn a_job_dropped_from_a_backlog_unqueued_and_unpublished_is_refused() {
    let w = world();
    let (jobs, name, tip) = parked_on_hub(&w);
    let path = backlog::entry_path(1, &jobs[1].id);
    let drop = backlog::without(&w.hub, &name, tip, &HashSet::from([path.as_str()])).unwrap();
    refused(&w, &updates(&w, &[drop]), false, "leaves the backlog without being queued");
    // Deleting the whole backlog is the same fault, for each job.
    refused(&w, &[Update { old: Some(tip), new: None, name: name.clone() }], false, "leaves the backlog");
}

#[test]
fn a_promotion_is_accepted_and_must_queue_the_same_document() {
    let w = world();
    let (jobs, name, tip) = parked_on_hub(&w);
    let edits = backlog::promote_edits(&w.hub, &[promotion(&w, &name, tip, 0, &jobs[0])]).unwrap();
    check(&w, &updates(&w, &edits), false).expect("a promotion is accepted");
    // All of it: the backlog is deleted.
    let all: Vec<Promotion> = jobs.iter().enumerate().map(|(i, j)| promotion(&w, &name, tip, i, j)).collect();
    let edits = backlog::promote_edits(&w.hub, &all).unwrap();
    assert!(edits.iter().any(|e| e.name == name && e.new.is_none()), "{edits:?}");
    check(&w, &updates(&w, &edits), false).expect("a promotion of every job is accepted");
    // A job queued at another document than the one parked is not a promotion.
    let mut forged = promotion(&w, &name, tip, 0, &jobs[0]);
    forged.blob = blob(&w, &jobs[1].to_json());
    let mut edits = backlog::promote_edits(&w.hub, &[forged]).unwrap();
    edits.rotate_left(2); // the backlog's rewrite last: the update at fault
    refused(&w, &updates(&w, &edits), false, "leaves the backlog without being queued");
}

#[test]
fn a_forged_job_in_a_new_backlog_is_refused() {
    let w = world();
    let mut jobs = jobs(&w, 2);
    // A job of another queue, parked under this one's backlog.
    jobs[1].spec.queue = "gpu".into();
    let bad = backlog::park(&w.hub, "default", &jobs.iter().collect::<Vec<_>>()).unwrap();
    refused(&w, &updates(&w, &[bad]), false, "queue is \"gpu\"");
    // A job that waits for another is never parked.
    let mut jobs = self::jobs(&w, 1);
    jobs[0].needed_by = vec!["x".into()];
    let bad = backlog::park(&w.hub, "default", &jobs.iter().collect::<Vec<_>>()).unwrap();
    refused(&w, &updates(&w, &[bad]), false, "never parked");
    // A pin that does not keep the jobs' commits.
    let jobs = self::jobs(&w, 1);
    let sound = backlog::park(&w.hub, "default", &[&jobs[0]]).unwrap();
    check(&w, &updates(&w, std::slice::from_ref(&sound)), false).expect("a sound backlog is accepted");
    let repo = w.hub.repo();
    let tree = repo.find_commit(sound.new.unwrap()).unwrap().tree_id().unwrap().detach();
    let empty = repo.write_object(gix::objs::Tree::empty()).unwrap().detach();
    let pin = crate::done::commit(&repo, "pin".into(), empty, None).unwrap();
    let forged = crate::done::commit(&repo, "forged".into(), tree, Some(pin)).unwrap();
    refused(&w, &[create(&sound.name, forged)], false, "is not a parent of the backlog's pin");
}

#[test]
fn a_backlog_never_grows() {
    let w = world();
    let (_, name, tip) = parked_on_hub(&w);
    let more = jobs(&w, 4);
    let bigger = backlog::park(&w.hub, "default", &more.iter().collect::<Vec<_>>()).unwrap();
    // Another pin is refused as such; the same pin with more jobs too.
    refused(&w, &[Update { old: Some(tip), new: bigger.new, name: name.clone() }], false, "keeps its pin");
    let repo = w.hub.repo();
    let tree = repo.find_commit(bigger.new.unwrap()).unwrap().tree_id().unwrap().detach();
    let pin = backlog::read(&repo, tip).unwrap().pin;
    let grown = crate::done::commit(&repo, "grown".into(), tree, Some(pin)).unwrap();
    refused(&w, &[Update { old: Some(tip), new: Some(grown), name }], false, "never added to");
}

/// A promotion by priority takes jobs out of two backlogs in one push,
/// not the first of either in the order they were submitted: accepted,
/// each backlog rewritten to a strict subset of itself.
#[test]
fn a_promotion_out_of_two_backlogs_at_once_is_accepted() {
    let w = world();
    let (low, low_name, low_tip) = parked_on_hub(&w);
    let mut high = jobs(&w, 3);
    for (job, priority) in high.iter_mut().zip([1, 9, 1]) {
        job.spec.priority = priority;
    }
    let high: Vec<Job> = high.into_iter().map(Job::sealed).collect();
    let edits = crate::queue::submit_parking_edits(&w.hub, &high, Some(0)).unwrap();
    check(&w, &updates(&w, &edits), false).expect("a backlog stored highest priority first is accepted");
    w.hub.transact(&edits).unwrap();
    let (high_name, high_tip) = (edits[0].name.clone(), edits[0].new.unwrap());
    // Stored highest priority first: high[1], then high[0] and high[2].
    let picks = [
        promotion(&w, &high_name, high_tip, 0, &high[1]),
        promotion(&w, &high_name, high_tip, 2, &high[2]),
        promotion(&w, &low_name, low_tip, 1, &low[1]),
    ];
    let edits = backlog::promote_edits(&w.hub, &picks).unwrap();
    assert_eq!(edits.iter().filter(|e| e.name.starts_with(refs::BACKLOG) && e.new.is_some()).count(), 2);
    check(&w, &updates(&w, &edits), false).expect("a promotion out of two backlogs is accepted");
}
