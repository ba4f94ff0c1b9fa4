//! Firing against a real bare repository, in-process, at chosen times.

use std::time::SystemTime;

use git_ci_core::hub::{Hub, LocalHub, RefEdit};
use git_ci_core::time::parse_rfc3339;
use gix::ObjectId;
use gix::objs::tree::EntryKind;

use super::*;

const PIPELINE: &str = r#"
[job.build]
run = "make"

[job.nightly]
schedule = "0 3 * * *"
needs = ["build"]
matrix = { db = ["sqlite", "postgres"] }
run = "long"

[job.hourly]
schedule = "0 * * * *"
branches = ["release/*"]
run = "true"
"#;

fn hub() -> (tempfile::TempDir, LocalHub) {
    let dir = tempfile::tempdir().unwrap();
    gix::init_bare(dir.path()).unwrap();
    let hub = LocalHub::open(dir.path()).unwrap();
    (dir, hub)
}

/// A branch whose tip holds `.git-ci.toml` with `text`.
fn branch(hub: &LocalHub, name: &str, text: &str) -> ObjectId {
    let repo = hub.repo();
    let blob = repo.write_blob(text).unwrap().detach();
    let mut editor = repo.edit_tree(ObjectId::empty_tree(repo.object_hash())).unwrap();
    editor.upsert(".git-ci.toml", EntryKind::Blob, blob).unwrap();
    let tree = editor.write().unwrap().detach();
    let sig = git_ci_core::done::signature();
    let mut time = Default::default();
    let sig = sig.to_ref(&mut time);
    let commit = repo.new_commit_as(sig, sig, name, tree, None::<ObjectId>).unwrap().id;
    (hub as &dyn Hub).transact(&[RefEdit::create(format!("refs/heads/{name}"), commit)]).unwrap();
    commit
}

fn at(s: &str) -> SystemTime {
    parse_rfc3339(s).unwrap()
}

fn heads(hub: &LocalHub) -> Vec<(String, ObjectId)> {
    (hub as &dyn Hub).list("refs/heads/").unwrap()
}

fn run(hub: &LocalHub, now: &str) -> Vec<Event> {
    Scheduler::default().run(hub, &heads(hub), ("test", ""), at(now)).unwrap()
}

fn queued(events: &[Event]) -> Vec<Job> {
    events
        .iter()
        .flat_map(|e| match e {
            Event::Scheduled { jobs, .. } => jobs.clone(),
            _ => vec![],
        })
        .collect()
}

fn queue_refs(hub: &LocalHub) -> usize {
    (hub as &dyn Hub).list(refs::QUEUE).unwrap().len()
}

fn marker(hub: &LocalHub, job: &str, branch: &str) -> Marker {
    let h: &dyn Hub = hub;
    let blob = h.get(&refs::schedule(job, branch)).unwrap().expect("a marker");
    serde_json::from_slice(&h.read_blob(blob).unwrap()).unwrap()
}

#[test]
fn a_schedule_is_armed_then_fires_once_per_tick() {
    let (_dir, hub) = hub();
    std::fs::write(hub.repo().git_dir().join("HEAD"), "ref: refs/heads/main\n").unwrap();
    branch(&hub, "main", PIPELINE);
    branch(&hub, "feature", PIPELINE);
    let armed = run(&hub, "2026-11-22T14:00:00Z");
    assert!(queued(&armed).is_empty(), "{armed:?}");
    let [Event::ScheduleArmed { name, git_ref, next }] = armed.as_slice() else { panic!("{armed:?}") };
    assert_eq!(
        (name.as_str(), git_ref.as_str()),
        ("nightly", "refs/heads/main"),
        "main is HEAD; hourly is for release/*"
    );
    assert_eq!(next.as_deref(), Some("2026-11-23T03:00:00.000Z"));
    assert_eq!(marker(&hub, "nightly", "main").tick, "2026-11-22T03:00:00.000Z");
    assert!(run(&hub, "2026-11-23T02:59:59Z").is_empty());

    let fired = run(&hub, "2026-11-23T03:00:00Z");
    let jobs = queued(&fired);
    let labels: Vec<String> = jobs.iter().map(Job::label).collect();
    assert_eq!(labels, ["build", "nightly (db=sqlite)", "nightly (db=postgres)"]);
    assert!(jobs.iter().all(|j| j.scheduled.as_deref() == Some("2026-11-23T03:00:00.000Z")));
    assert!(jobs[1..].iter().all(|j| j.needs[0].id == jobs[0].id));
    assert_eq!(queue_refs(&hub), 3);
    let m = marker(&hub, "nightly", "main");
    assert_eq!((m.tick.as_str(), m.jobs), ("2026-11-23T03:00:00.000Z", 3));
    assert!(run(&hub, "2026-11-23T09:00:00Z").is_empty(), "the tick is handled");
    assert_eq!(queue_refs(&hub), 3);
}

#[test]
fn racing_schedulers_fire_a_tick_once() {
    let (dir, hub) = hub();
    branch(&hub, "release/1", PIPELINE);
    run(&hub, "2026-11-22T14:30:00Z");
    let path = dir.path().to_path_buf();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let hub = LocalHub::open(&path).unwrap();
                queued(&run(&hub, "2026-11-22T15:00:01Z")).len()
            })
        })
        .collect();
    let fired: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(fired, 1);
    assert_eq!(queue_refs(&hub), 1);
}

#[test]
fn a_missed_tick_fires_once_and_older_ones_never() {
    let (_dir, hub) = hub();
    branch(&hub, "release/1", PIPELINE);
    run(&hub, "2026-11-22T14:30:00Z");
    // Down from 14:30 to 18:10: only 18:00 is queued.
    let jobs = queued(&run(&hub, "2026-11-22T18:10:00Z"));
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].scheduled.as_deref(), Some("2026-11-22T18:00:00.000Z"));
    // A watcher whose clock is behind sees ticks older than the marker.
    assert!(run(&hub, "2026-11-22T17:00:00Z").is_empty());
    assert_eq!(queue_refs(&hub), 1);
}

#[test]
fn an_unreadable_marker_is_armed_again_not_fired() {
    let (_dir, hub) = hub();
    branch(&hub, "release/1", PIPELINE);
    let h: &dyn Hub = &hub;
    let junk = h.write_blob(b"not json").unwrap();
    h.transact(&[RefEdit::create(refs::schedule("hourly", "release/1"), junk)]).unwrap();
    let events = run(&hub, "2026-11-22T18:10:00Z");
    assert!(matches!(events.as_slice(), [Event::ScheduleArmed { .. }]), "{events:?}");
    assert_eq!(marker(&hub, "hourly", "release/1").tick, "2026-11-22T18:00:00.000Z");
}

#[test]
fn the_next_tick_is_the_earliest_of_every_schedule() {
    let (_dir, hub) = hub();
    std::fs::write(hub.repo().git_dir().join("HEAD"), "ref: refs/heads/main\n").unwrap();
    branch(&hub, "main", PIPELINE);
    let mut s = Scheduler::default();
    s.run(&hub, &heads(&hub), ("test", ""), at("2026-11-22T14:30:00Z")).unwrap();
    assert_eq!(s.next_tick().map(git_ci_core::time::rfc3339).as_deref(), Some("2026-11-23T03:00:00.000Z"));
    branch(&hub, "release/2", PIPELINE);
    s.run(&hub, &heads(&hub), ("test", ""), at("2026-11-22T14:30:00Z")).unwrap();
    assert_eq!(s.next_tick().map(git_ci_core::time::rfc3339).as_deref(), Some("2026-11-22T15:00:00.000Z"));
}
