//! Planning and applying against a real bare repository, in-process.

use git_ci_core::hub::{Hub, LocalHub};
use gix::ObjectId;
use gix::objs::tree::EntryKind;

use git_ci_core::Job;

use super::{Event, Update, apply, plan};

const PIPELINE: &str = "[job.a]\nrun = \"true\"\n\n[job.b]\nrun = \"true\"\nsupersede = false\n";

fn hub() -> (tempfile::TempDir, LocalHub) {
    let dir = tempfile::tempdir().unwrap();
    gix::init_bare(dir.path()).unwrap();
    let hub = LocalHub::open(dir.path()).unwrap();
    (dir, hub)
}

/// A commit holding `.git-ci.toml` with `text` (and `salt`, to make it new).
fn commit(hub: &LocalHub, text: &str, salt: &str) -> ObjectId {
    let repo = hub.repo();
    let blob = repo.write_blob(text).unwrap().detach();
    let salt = repo.write_blob(salt).unwrap().detach();
    let mut editor = repo.edit_tree(ObjectId::empty_tree(repo.object_hash())).unwrap();
    editor.upsert(".git-ci.toml", EntryKind::Blob, blob).unwrap();
    editor.upsert("salt", EntryKind::Blob, salt).unwrap();
    let tree = editor.write().unwrap().detach();
    let sig = git_ci_core::done::signature();
    let mut time = Default::default();
    let sig = sig.to_ref(&mut time);
    repo.new_commit_as(sig, sig, "test", tree, None::<ObjectId>).unwrap().id
}

fn push(git_ref: &str, new: ObjectId) -> Update {
    Update { refname: git_ref.into(), old: None, new: Some(new) }
}

fn trigger(hub: &LocalHub, updates: &[Update]) -> Vec<Event> {
    apply(hub, &plan(&hub.repo(), updates, "test", "")).unwrap()
}

fn count(events: &[Event], what: fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| what(e)).count()
}

fn live_refs(hub: &LocalHub) -> Vec<(String, ObjectId)> {
    let h: &dyn Hub = hub;
    [h.list("refs/ci/queue/").unwrap(), h.list("refs/ci/pins/").unwrap()].concat()
}

#[test]
fn the_same_update_twice_queues_once() {
    let (_dir, hub) = hub();
    let c = commit(&hub, PIPELINE, "1");
    let first = trigger(&hub, &[push("refs/heads/main", c)]);
    assert_eq!(count(&first, |e| matches!(e, Event::Queued(_))), 2, "{first:?}");
    let refs = live_refs(&hub);
    let second = trigger(&hub, &[push("refs/heads/main", c)]);
    assert_eq!(count(&second, |e| matches!(e, Event::AlreadyQueued { .. })), 2, "{second:?}");
    assert_eq!(live_refs(&hub), refs);
    let other_branch = trigger(&hub, &[push("refs/heads/other", c)]);
    assert_eq!(count(&other_branch, |e| matches!(e, Event::Queued(_))), 2, "the ref is part of the key");
}

#[test]
fn racing_triggers_queue_each_job_once() {
    let (dir, hub) = hub();
    let c = commit(&hub, PIPELINE, "1");
    let path = dir.path().to_path_buf();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let hub = LocalHub::open(&path).unwrap();
                trigger(&hub, &[push("refs/heads/main", c)])
            })
        })
        .collect();
    let queued: usize = threads.into_iter().map(|t| count(&t.join().unwrap(), |e| matches!(e, Event::Queued(_)))).sum();
    assert_eq!(queued, 2);
    assert_eq!(live_refs(&hub).len(), 4, "two queue refs and two pins");
}

#[test]
fn a_newer_push_supersedes_unless_the_job_says_not_to() {
    let (_dir, hub) = hub();
    let old = commit(&hub, PIPELINE, "1");
    trigger(&hub, &[push("refs/heads/main", old)]);
    let new = commit(&hub, PIPELINE, "2");
    let events = trigger(&hub, &[push("refs/heads/main", new)]);
    let cancelled: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Cancelled { name, reason, .. } => Some((name.as_str(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(cancelled, [("a", format!("superseded by {new}"))]);
    assert_eq!(live_refs(&hub).len(), 6, "a at new, b at old and new: queue refs and pins");
    let gone = trigger(&hub, &[Update { refname: "refs/heads/main".into(), old: Some(new), new: None }]);
    assert_eq!(count(&gone, |e| matches!(e, Event::Cancelled { .. })), 3);
    assert!(live_refs(&hub).is_empty());
}

#[test]
fn a_broken_file_is_recorded_once_and_said_every_time() {
    let (_dir, hub) = hub();
    let c = commit(&hub, "[job.a]\nrun = 1\n", "1");
    for round in 0..2 {
        let events = trigger(&hub, &[push("refs/heads/main", c)]);
        let [Event::BadPipeline { message, recorded, .. }] = events.as_slice() else { panic!("{events:?}") };
        assert!(message.contains(".git-ci.toml:2:7"), "{message}");
        assert_eq!(recorded.is_some(), round == 0);
    }
    assert!(live_refs(&hub).is_empty());
    let h: &dyn Hub = &hub;
    assert!(h.get("refs/ci/done/_hub").unwrap().is_some());
}

#[test]
fn refs_other_than_branches_and_tags_trigger_nothing() {
    let (_dir, hub) = hub();
    let c = commit(&hub, PIPELINE, "1");
    let p = plan(&hub.repo(), &[push("refs/ci/queue/default/x", c), push("refs/notes/ci", c)], "test", "");
    assert!(p.is_empty());
    let tag = trigger(&hub, &[push("refs/tags/v1", c)]);
    assert!(tag.is_empty(), "no job asks for tags: {tag:?}");
}

#[test]
fn post_receive_lines_parse() {
    let z = "0".repeat(40);
    let a = "a".repeat(40);
    let u = Update::parse_line(&format!("{z} {a} refs/heads/main\n")).unwrap();
    assert_eq!((u.old, u.new.map(|n| n.to_string())), (None, Some(a.clone())));
    let d = Update::parse_line(&format!("{a} {z} refs/heads/gone")).unwrap();
    assert_eq!((d.new, d.refname.as_str()), (None, "refs/heads/gone"));
    assert!(Update::parse_line("garbage").is_none());
    assert!(Update::parse_line(&format!("{a} {a}")).is_none());
}

const GRAPH: &str = r#"
[job.build]
run = "make"
branches = ["release/*"]

[job.test]
needs = ["build"]
matrix = { python = ["3.11", "3.12"] }
run = "true"

[job.nightly]
schedule = "0 3 * * *"
run = "long"

[job.weekly]
schedule = "0 3 * * 0"
branches = ["main"]
run = "true"
"#;

#[test]
fn a_push_queues_the_expansion_with_its_needs_once() {
    let (_dir, hub) = hub();
    let c = commit(&hub, GRAPH, "1");
    let events = trigger(&hub, &[push("refs/heads/main", c)]);
    let mut queued: Vec<Job> = events
        .iter()
        .filter_map(|e| match e {
            Event::Queued(job) => Some((**job).clone()),
            _ => None,
        })
        .collect();
    queued.sort_by_key(Job::label);
    let labels: Vec<String> = queued.iter().map(Job::label).collect();
    // build comes with test, though its own branches leave main out; the
    // scheduled-only nightly does not come at all.
    assert_eq!(labels, ["build", "test (python=3.11)", "test (python=3.12)", "weekly"], "{events:?}");
    assert!(queued[1..3].iter().all(|t| t.needs.len() == 1 && t.needs[0].id == queued[0].id));
    assert_eq!(queued[0].needed_by, ["test"]);
    assert_eq!(live_refs(&hub).len(), 8);
    let again = trigger(&hub, &[push("refs/heads/main", c)]);
    assert_eq!(count(&again, |e| matches!(e, Event::AlreadyQueued { .. })), 4, "{again:?}");
    assert_eq!(live_refs(&hub).len(), 8);
    let other = trigger(&hub, &[push("refs/heads/feature", c)]);
    assert_eq!(count(&other, |e| matches!(e, Event::Queued(_))), 3, "weekly is for main only: {other:?}");
}

#[test]
fn a_batch_queued_in_part_before_is_not_queued_again() {
    let (_dir, hub) = hub();
    let c = commit(&hub, GRAPH, "1");
    let mut p = plan(&hub.repo(), &[push("refs/heads/main", c)], "test", "");
    let all = p.wanted.clone();
    p.wanted.truncate(1);
    apply(&hub, &p).unwrap();
    p.wanted = all;
    let events = apply(&hub, &p).unwrap();
    assert_eq!(count(&events, |e| matches!(e, Event::Queued(_))), 0, "{events:?}");
    assert_eq!(live_refs(&hub).len(), 2);
}

/// Jobs submitted by hand and parked in a backlog are superseded like
/// queued ones: published `cancelled`, their backlog rewritten away.
#[test]
fn a_newer_push_supersedes_parked_jobs_too() {
    let (_dir, hub) = hub();
    let old = commit(&hub, PIPELINE, "1");
    let jobs: Vec<Job> = (0..4)
        .map(|i| {
            let mut spec = git_ci_core::model::JobSpec::ad_hoc("true");
            spec.name = "a".into();
            spec.env.insert("N".into(), i.to_string());
            Job::new(spec, &old.to_string(), &"b".repeat(40), "refs/heads/main", "me")
        })
        .collect();
    let h: &dyn Hub = &hub;
    h.transact(&git_ci_core::queue::submit_parking_edits(h, &jobs, Some(1)).unwrap()).unwrap();
    assert_eq!(h.list(git_ci_core::refs::BACKLOG).unwrap().len(), 1);
    let new = commit(&hub, PIPELINE, "2");
    let events = trigger(&hub, &[push("refs/heads/main", new)]);
    assert_eq!(count(&events, |e| matches!(e, Event::Cancelled { .. })), 4, "{events:?}");
    assert!(h.list(git_ci_core::refs::BACKLOG).unwrap().is_empty(), "the backlog is gone");
    assert_eq!(live_refs(&hub).len(), 4, "a and b at new: queue refs and pins");
    let board = git_ci_core::state::Board::read(h).unwrap();
    for job in &jobs {
        let view = board.view(h, &job.id).unwrap().expect("published");
        assert_eq!(view.state.as_str(), "cancelled", "{}", job.id);
    }
}
