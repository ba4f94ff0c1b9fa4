//! The guard's rules for waiting jobs ([`super::waiting`]).

use std::collections::BTreeSet;

use super::tests::{World, blob, check, commit, create, job, refused, world};
use super::*;
use crate::hub::{Hub, RefEdit};
use crate::model::Job;

/// The waiting tree of `j` on the jobs `on`.
fn waiting(w: &World, j: &Job, on: &[&Job]) -> ObjectId {
    let ids: BTreeSet<JobId> = on.iter().map(|n| n.id.clone()).collect();
    let list = blob(w, &crate::needs::waiting_json(&ids));
    crate::claimed::write_waiting(&w.hub, blob(w, &j.to_json()), list).unwrap()
}

fn queued_at(w: &World, j: &Job, value: ObjectId) {
    let edits = [RefEdit::create(refs::pin(&j.id), commit(w)), RefEdit::create(refs::queue("default", &j.id), value)];
    w.hub.transact(&edits).unwrap();
}

#[test]
fn a_waiting_job_moves_only_forward_for_jobs_that_finished() {
    let w = world();
    let (a, b, d) = (job(), job(), job());
    let a_doc = blob(&w, &a.to_json());
    queued_at(&w, &a, a_doc);
    queued_at(&w, &b, blob(&w, &b.to_json()));
    let both = waiting(&w, &d, &[&a, &b]);
    // Created waiting, with its pin.
    let pin = create(&refs::pin(&d.id), commit(&w));
    check(&w, &[pin.clone(), create(&refs::queue("default", &d.id), both)], false).unwrap();
    queued_at(&w, &d, both);
    let name = refs::queue("default", &d.id);
    let only_b = waiting(&w, &d, &[&b]);
    let moved = Update { old: Some(both), new: Some(only_b), name: name.clone() };
    // a is still queued: d may not stop waiting for it.
    refused(&w, std::slice::from_ref(&moved), false, "has not finished");
    // With a's queue ref deleted in the same push (its publish), it may.
    let a_gone = Update { old: Some(a_doc), new: None, name: refs::queue("default", &a.id) };
    check_push(&w.store, &[a_gone.clone(), moved.clone()], true, &Limits::default()).unwrap();
    // Straight to the bare blob skips b, which has not finished.
    let bare = Update { old: Some(both), new: Some(blob(&w, &d.to_json())), name: name.clone() };
    refused(&w, &[bare], false, "has not finished");
    // A rewritten document, a longer list, a claim: never.
    let other = waiting(&w, &job(), &[&b]);
    refused(&w, &[Update { old: Some(both), new: Some(other), name: name.clone() }], false, "cannot be rewritten");
    let more = waiting(&w, &d, &[&a, &b, &job()]);
    refused(&w, &[Update { old: Some(both), new: Some(more), name: name.clone() }], false, "only stop waiting");
    let claim = blob(&w, &crate::model::Claim::new(&d.id, "w1", 1, std::time::Duration::from_secs(60)).to_json());
    let claimed = crate::claimed::write(&w.hub, blob(&w, &d.to_json()), claim).unwrap();
    let grab = [create(&refs::claim(&d.id), claim), Update { old: Some(both), new: Some(claimed), name }];
    refused(&w, &grab, false, "");
    // An empty list is no waiting tree.
    let empty = crate::claimed::write_waiting(&w.hub, blob(&w, &d.to_json()), blob(&w, b"[]\n")).unwrap();
    let e = job();
    refused(
        &w,
        &[create(&refs::pin(&e.id), commit(&w)), create(&refs::queue("default", &e.id), empty)],
        false,
        "no job",
    );
}
