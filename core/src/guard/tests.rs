use std::time::Duration;

use super::*;
use crate::done::{self, Content, Entry};
use crate::hub::{Hub, LocalHub, RefEdit};
use crate::model::{Claim, Job, JobResult, MAX_DOC_BYTES, WorkerInfo};
use crate::model::{JobSpec, Status};
use crate::validate::HubStore;

pub(super) struct World {
    _dir: tempfile::TempDir,
    pub(super) hub: LocalHub,
    pub(super) store: HubStore,
}

pub(super) fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    gix::init_bare(dir.path()).unwrap();
    let hub = LocalHub::open(dir.path()).unwrap();
    let store = HubStore::open(dir.path(), None).unwrap();
    World { _dir: dir, hub, store }
}

pub(super) fn job() -> Job {
    Job::new(JobSpec::ad_hoc("true"), &"a".repeat(40), &"b".repeat(40), "refs/heads/main", "me")
}

pub(super) fn create(name: &str, new: ObjectId) -> Update {
    Update { old: None, new: Some(new), name: name.into() }
}

pub(super) fn check(w: &World, updates: &[Update], gc: bool) -> Result<(), String> {
    check_push(&w.store, updates, gc, &Limits::default()).map_err(|r| r.to_string())
}

/// The push is refused, naming its last update (the one at fault) and `why`.
pub(super) fn refused(w: &World, updates: &[Update], gc: bool, why: &str) {
    let e = check(w, updates, gc).expect_err("should be refused");
    assert!(e.contains(&updates.last().unwrap().name) && e.contains(why), "{e}");
}

pub(super) fn blob(w: &World, bytes: &[u8]) -> ObjectId {
    (&w.hub as &dyn Hub).write_blob(bytes).unwrap()
}

/// A commit to pin: any commit will do.
pub(super) fn commit(w: &World) -> ObjectId {
    done::append(&w.hub, None, &[entry(&job(), vec![], b"log".to_vec(), vec![])]).unwrap()
}

/// The pin, then the queue ref, of a job whose document is `doc`.
fn submit(w: &World, j: &Job, queue: &str, doc: ObjectId) -> Vec<Update> {
    vec![create(&refs::pin(&j.id), commit(w)), create(&refs::queue(queue, &j.id), doc)]
}

/// `j` queued on the hub itself.
fn queue_on_hub(w: &World, j: &Job) -> ObjectId {
    let doc = blob(w, &j.to_json());
    let edits = [RefEdit::create(refs::pin(&j.id), commit(w)), RefEdit::create(refs::queue("default", &j.id), doc)];
    w.hub.transact(&edits).unwrap();
    doc
}

/// The updates of a fresh claim of `j`, queued at `doc`: the claim ref
/// created, the queue ref moved to the claimed tree.
fn claim_of(w: &World, j: &Job, doc: ObjectId, lease: Duration) -> (ObjectId, Vec<Update>) {
    let mut claim = Claim::new(&j.id, "w1", 1, lease);
    // As a claim document may say, whatever `Claim::new` allows.
    claim.lease_ms = lease.as_millis() as u64;
    let claim = blob(w, &claim.to_json());
    let tree = crate::claimed::write(&w.hub, doc, claim).unwrap();
    let queue = Update { old: Some(doc), new: Some(tree), name: refs::queue("default", &j.id) };
    (tree, vec![queue, create(&refs::claim(&j.id), claim)])
}

fn entry(j: &Job, _result: Vec<u8>, log: Vec<u8>, files: Vec<(String, Content)>) -> Entry {
    let mut r = JobResult::without_run(&j.id, Status::Passed, "w1", 1, "x".into());
    r.reason = None;
    Entry { id: j.id.clone(), job_json: j.to_json(), result: r, log: Content::Bytes(log), files, cache_key: None }
}

#[test]
fn job_documents_must_match_their_ref() {
    let w = world();
    let j = job();
    let good = blob(&w, &j.to_json());
    check(&w, &submit(&w, &j, "default", good), false).unwrap();
    refused(&w, &submit(&w, &j, "other", good), false, "queue");
    let other = job();
    refused(&w, &submit(&w, &other, "default", good), false, "id");
    let mut v: serde_json::Value = serde_json::from_slice(&j.to_json()).unwrap();
    v["version"] = 2.into();
    refused(&w, &submit(&w, &j, "default", blob(&w, v.to_string().as_bytes())), false, "version");
    let huge = blob(&w, &vec![b' '; MAX_DOC_BYTES + 1]);
    refused(&w, &submit(&w, &j, "default", huge), false, "limit");
    refused(&w, &submit(&w, &j, "default", blob(&w, b"{")), false, "JSON");
    refused(&w, &[create(&format!("refs/ci/queue/a/b/{}", j.id), good)], false, "not a git-ci ref");
    refused(&w, &[create(&refs::queue("default", &j.id), good)], false, "without its pin");
}

#[test]
fn a_claim_moves_its_queue_ref_to_the_claimed_form_of_the_same_job() {
    let w = world();
    let j = job();
    let doc = queue_on_hub(&w, &j);
    let lease = Duration::from_secs(60);
    let (tree, claim) = claim_of(&w, &j, doc, lease);
    check(&w, &claim, false).unwrap();
    // The old protocol: a claim beside an unchanged queue ref.
    refused(&w, &claim[1..], false, "must move the job's queue ref");
    // The queue ref moved without its claim, or with another one.
    refused(&w, &claim[..1], false, "moves only with the claim it names");
    let (_, another) = claim_of(&w, &j, doc, lease);
    refused(&w, &[another[1].clone(), claim[0].clone()], false, "moves only with the claim it names");
    // A rewrite of the job document, as a blob or inside a claimed tree.
    let rewritten = Update { old: Some(doc), new: Some(blob(&w, &job().to_json())), name: claim[0].name.clone() };
    refused(&w, &[claim[1].clone(), rewritten], false, "a claimed queue entry must be a tree");
    let other_doc = blob(&w, &job().to_json());
    let (_, other) = claim_of(&w, &j, other_doc, lease);
    let swapped = Update { old: Some(doc), ..other[0].clone() };
    refused(&w, &[other[1].clone(), swapped], false, "cannot be rewritten");
    // A claim of another job's document, or with a lease over the hub's.
    let wrong = Claim::new(&job().id, "w1", 1, lease);
    refused(&w, &[create(&refs::claim(&j.id), blob(&w, &wrong.to_json()))], false, "not the ref's");
    let (_, long) = claim_of(&w, &j, doc, Duration::from_secs(48 * 3600));
    refused(&w, &[long[0].clone(), long[1].clone()], false, "ci.maxLease");
    // A steal or heartbeat replaces a claim: the queue ref stays.
    let old = claim[1].new.unwrap();
    let renewed = blob(&w, &Claim::new(&j.id, "w2", 2, lease).to_json());
    check(&w, &[Update { old: Some(old), new: Some(renewed), name: refs::claim(&j.id) }], false).unwrap();
    assert_ne!(tree, doc);
}

#[test]
fn queue_refs_go_only_with_their_result_and_chains_only_by_gc() {
    let w = world();
    let j = job();
    let doc = queue_on_hub(&w, &j);
    let dequeue = Update { old: Some(doc), new: None, name: refs::queue("default", &j.id) };
    refused(&w, std::slice::from_ref(&dequeue), false, "deleted only by the push that publishes its job");
    check(&w, std::slice::from_ref(&dequeue), true).unwrap();
    // Published by a done chain of the same push: in any order.
    let tip = done::append(&w.hub, None, &[entry(&j, vec![], b"log".to_vec(), vec![])]).unwrap();
    check(&w, &[dequeue.clone(), create(&refs::done("w1"), tip)], false).unwrap();
    // Another job's result does not free this one's queue ref.
    let other = done::append(&w.hub, None, &[entry(&job(), vec![], b"log".to_vec(), vec![])]).unwrap();
    refused(&w, &[create(&refs::done("w1"), other), dequeue], false, "deleted only by the push");
    let gone = Update { old: Some(tip), new: None, name: refs::done("w1") };
    refused(&w, std::slice::from_ref(&gone), false, "only by `git ci gc`");
    check(&w, &[gone], true).unwrap();
}

#[test]
fn pins_cancels_logs_workers_and_unknown_refs() {
    let w = world();
    let j = job();
    let commit = done::append(&w.hub, None, &[entry(&j, vec![], b"log".to_vec(), vec![])]).unwrap();
    check(&w, &[create(&refs::pin(&j.id), commit)], false).unwrap();
    refused(&w, &[create(&refs::pin(&j.id), blob(&w, b"x"))], false, "must be a commit");
    let cancel = format!("{{\"version\": 1, \"job\": \"{}\", \"by\": \"me\"}}", j.id);
    check(&w, &[create(&refs::cancel(&j.id), blob(&w, cancel.as_bytes()))], false).unwrap();
    refused(&w, &[create(&refs::cancel(&j.id), blob(&w, b"stop"))], false, "JSON");
    check(&w, &[create(&refs::log(&j.id), blob(&w, b"git-ci-live-log 3\nabc"))], false).unwrap();
    refused(&w, &[create(&refs::log(&j.id), blob(&w, b"abc"))], false, "header");
    let info = WorkerInfo::new("w1", Default::default(), vec![], 1, 1000);
    check(&w, &[create(&refs::worker("w1"), blob(&w, &info.to_json()))], false).unwrap();
    refused(&w, &[create(&refs::worker("w2"), blob(&w, &info.to_json()))], false, "names");
    refused(&w, &[create("refs/ci/doctor/x", blob(&w, b"x"))], false, "unknown ref");
    check(&w, &[create(&refs::schedule("nightly", "release/1.0"), blob(&w, b"{}"))], false).unwrap();
    refused(&w, &[create(&refs::schedule("nightly", "main"), blob(&w, &[b' '; 1025]))], false, "1024-byte limit");
    refused(&w, &[create(&refs::schedule("nightly", "main"), commit)], false, "must be a blob");
    refused(&w, &[create("refs/ci/schedule/nightly", blob(&w, b"{}"))], false, "refs/ci/schedule/<job>/<branch>");
    let stop = format!("{{\"version\": 1, \"job\": \"{}\", \"by\": \"me\", \"at\": \"now\"}}", j.id);
    check(&w, &[create(&refs::stop(&j.id), blob(&w, stop.as_bytes()))], false).unwrap();
    let other = job();
    refused(&w, &[create(&refs::stop(&other.id), blob(&w, stop.as_bytes()))], false, "name its ref's job");
    refused(&w, &[create(&refs::stop(&j.id), blob(&w, b"stop"))], false, "not a stop request");
    refused(&w, &[create("refs/ci/stop/nonsense", blob(&w, stop.as_bytes()))], false, "");
    // Deletions, lease checks and refs outside refs/ci/ are not read.
    let gone = Update { old: Some(commit), new: None, name: "refs/ci/anything".into() };
    let same = Update { old: Some(commit), new: Some(commit), name: "refs/ci/other".into() };
    check(&w, &[gone, same, create("refs/heads/main", blob(&w, b"x"))], false).unwrap();
}

#[test]
fn done_chains_move_forward_with_sane_results() {
    let w = world();
    let (a, b) = (job(), job());
    let first = done::append(&w.hub, None, &[entry(&a, vec![], b"log".to_vec(), vec![])]).unwrap();
    let done_ref = refs::done("w1");
    check(&w, &[create(&done_ref, first)], false).unwrap();
    let second = done::append(&w.hub, Some(first), &[entry(&b, vec![], b"log".to_vec(), vec![])]).unwrap();
    let forward = Update { old: Some(first), new: Some(second), name: done_ref.clone() };
    check(&w, &[forward], false).unwrap();
    let back = Update { old: Some(second), new: Some(first), name: done_ref.clone() };
    refused(&w, std::slice::from_ref(&back), false, "fast-forward");
    check(&w, &[back], true).unwrap();

    let big = vec![b'x'; 100];
    let art = vec![("artifacts/a/b".to_owned(), Content::Bytes(big.clone()))];
    let c = job();
    let with_art = done::append(&w.hub, Some(first), &[entry(&c, vec![], big, art)]).unwrap();
    let u = Update { old: Some(first), new: Some(with_art), name: done_ref.clone() };
    check(&w, std::slice::from_ref(&u), false).unwrap();
    let tight = Limits { log_bytes: 10, ..Limits::default() };
    let e = check_push(&w.store, std::slice::from_ref(&u), false, &tight).unwrap_err();
    assert!(e.reason.contains("ci.maxLogBytes") && e.reason.contains(c.id.as_str()), "{e}");
    let tight = Limits { artifact_bytes: 10, ..Limits::default() };
    let e = check_push(&w.store, &[u], false, &tight).unwrap_err();
    assert!(e.reason.contains("ci.maxArtifactBytes"), "{e}");
}

#[test]
fn a_result_that_does_not_parse_is_refused() {
    let w = world();
    let j = job();
    let good = done::append(&w.hub, None, &[entry(&j, vec![], b"log".to_vec(), vec![])]).unwrap();
    let repo = w.hub.repo();
    let tree = repo.find_commit(good).unwrap().tree_id().unwrap().detach();
    let mut editor = repo.edit_tree(tree).unwrap();
    let junk = blob(&w, b"not json");
    editor
        .upsert(format!("{}/result.json", done::job_dir(&j.id)).as_str(), gix::objs::tree::EntryKind::Blob, junk)
        .unwrap();
    let tree = editor.write().unwrap().detach();
    let sig = done::signature();
    let mut time = Default::default();
    let sig = sig.to_ref(&mut time);
    let bad = repo.new_commit_as(sig, sig, "bad", tree, None::<ObjectId>).unwrap().id;
    refused(&w, &[create(&refs::done("w1"), bad)], false, "result.json");
}

#[test]
fn update_lines_parse() {
    let z = "0".repeat(40);
    let a = "a".repeat(40);
    let u = Update::parse_line(&format!("{z} {a} refs/ci/claims/x\n")).unwrap();
    assert_eq!((u.old, u.name.as_str()), (None, "refs/ci/claims/x"));
    assert!(u.needs_check());
    assert!(!Update::parse_line(&format!("{a} {z} refs/ci/claims/x")).unwrap().needs_check());
    assert!(Update::parse_line("garbage").is_none());
}

/// git applies an atomic push in part when one ref fails a check made
/// before the transaction, and the worker pushes the rest again: a claim
/// whose queue move, or whose claim ref, went in the first part passes.
#[test]
fn the_rest_of_a_claim_the_hub_applied_in_part_passes() {
    let w = world();
    let lease = Duration::from_secs(60);
    for first_part in [0, 1] {
        let j = job();
        let doc = queue_on_hub(&w, &j);
        let (_, claim) = claim_of(&w, &j, doc, lease);
        let applied = &claim[first_part];
        let edit = match applied.old {
            Some(old) => RefEdit::update(applied.name.clone(), old, applied.new.unwrap()),
            None => RefEdit::create(applied.name.clone(), applied.new.unwrap()),
        };
        w.hub.transact(&[edit]).unwrap();
        check(&w, &[claim[1 - first_part].clone()], false).unwrap();
    }
    // Not another claim's rest.
    let j = job();
    let doc = queue_on_hub(&w, &j);
    let (_, mine) = claim_of(&w, &j, doc, lease);
    let (_, theirs) = claim_of(&w, &j, doc, lease);
    w.hub.transact(&[RefEdit::create(theirs[1].name.clone(), theirs[1].new.unwrap())]).unwrap();
    refused(&w, &[mine[0].clone()], false, "moves only with the claim it names");
}
