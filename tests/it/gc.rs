//! `git ci gc`: done chains cut into archives, jobs still found, the guard
//! letting gc (and only gc) rewrite a chain, and workers publishing while
//! gc runs losing nothing.

use crate::env::TestEnv;
use std::collections::HashMap;
use std::path::Path;
use std::process::Child;

/// Job ids in the results of `refname`'s tree.
fn results(env: &TestEnv, hub: &Path, refname: &str) -> Vec<String> {
    let listing = env.git(hub, &["ls-tree", "-r", "--name-only", refname, "--", "results"]);
    let mut ids: Vec<String> = listing
        .lines()
        .filter(|l| l.ends_with("/result.json"))
        .map(|l| l.split('/').nth(2).unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn commits(env: &TestEnv, hub: &Path, refname: &str) -> usize {
    env.git(hub, &["rev-list", "--count", refname]).parse().unwrap()
}

fn has_ref(env: &TestEnv, hub: &Path, refname: &str) -> bool {
    env.ci_refs(hub).iter().any(|(n, _)| n == refname)
}

const FOUR: &str = "[job.a]\nrun = \"echo job-a\"\n[job.b]\nrun = \"echo job-b\"\n[job.c]\nrun = \"echo job-c\"\n[job.d]\nrun = \"echo job-d\"\n";

/// A project whose four jobs worker `w1` ran: `(project, hub, sorted ids)`.
fn four_finished_by_w1(env: &TestEnv) -> (std::path::PathBuf, String, Vec<String>) {
    let (project, hub) = env.project_on_hub(FOUR);
    let mut ids: Vec<String> =
        env.ci(&project, &["submit", "--hub", &hub]).expect(0).stdout().lines().map(str::to_owned).collect();
    ids.sort();
    env.ci(&project, &["worker", "--hub", &hub, "--once", "--name", "w1"]).expect(0);
    (project, hub, ids)
}

#[test]
fn archived_jobs_are_still_found_and_done_keeps_only_the_kept() {
    let env = TestEnv::new();
    let (project, hub_s, ids) = four_finished_by_w1(&env);
    let hub = Path::new(&hub_s);
    let site = env.path("site");
    let build_site =
        || env.ci(&project, &["site", "build", "--hub", &hub_s, "--out", site.to_str().unwrap()]).expect(0);
    build_site();

    let out = env.ci(&project, &["gc", "--hub", &hub_s, "--keep", "2"]).expect(0).stdout();
    assert!(out.contains("done/w1: kept 2, archived 2"), "{out}");
    assert!(out.contains("total: kept 2, archived 2, in 1 of 1 chains"), "{out}");
    assert_eq!(results(&env, hub, "refs/ci/done/w1"), ids[2..], "the newest two stay");
    assert_eq!(results(&env, hub, "refs/ci/archive/w1"), ids[..2]);
    assert_eq!(commits(&env, hub, "refs/ci/done/w1"), 1, "a new root");
    let packed = std::fs::read_to_string(hub.join("packed-refs")).unwrap_or_default();
    assert!(packed.contains("refs/ci/done/w1"), "the hub's refs were packed: {packed}");

    // Readers find archived jobs like any other.
    let status = env.ci(&project, &["status", "--hub", &hub_s, "--json"]).expect(0).json();
    let states: HashMap<String, String> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j["id"].as_str().unwrap().to_owned(), j["state"].as_str().unwrap().to_owned()))
        .collect();
    for id in &ids {
        assert_eq!(states.get(id).map(String::as_str), Some("passed"), "{id} in {status}");
    }
    let old = &ids[0];
    let show = env.ci(&project, &["show", "--hub", &hub_s, old, "--json"]).expect(0).json();
    assert_eq!(show["state"], "passed", "{show}");
    let log = env.ci(&project, &["log", "--hub", &hub_s, old]).expect(0).stdout();
    let name = show["name"].as_str().unwrap();
    assert!(log.contains(&format!("job-{name}")), "{log}");

    // Everything older than now: the archive grows by one commit.
    let out = env.ci(&project, &["gc", "--hub", &hub_s, "--older-than", "0s"]).expect(0).stdout();
    assert!(out.contains("done/w1: kept 0, archived 2"), "{out}");
    assert!(results(&env, hub, "refs/ci/done/w1").is_empty());
    assert_eq!(results(&env, hub, "refs/ci/archive/w1"), ids);
    assert_eq!(commits(&env, hub, "refs/ci/archive/w1"), 2, "a fast-forward");
    let again = env.ci(&project, &["gc", "--hub", &hub_s, "--older-than", "0s"]).expect(0).stdout();
    assert!(again.contains("done/w1: kept 0, nothing to cut"), "{again}");
    let status = env.ci(&project, &["status", "--hub", &hub_s, "--json"]).expect(0).json();
    assert_eq!(status.as_array().unwrap().len(), 4, "{status}");
    // The site, rebuilt from where it left off, still has every job.
    build_site();
    for id in &ids {
        assert!(site.join(format!("api/jobs/{id}.json")).is_file(), "{id} on the site");
    }
}

#[test]
fn a_hub_that_takes_no_push_options_still_takes_gc() {
    let env = TestEnv::new();
    let (project, hub_s, _) = four_finished_by_w1(&env);
    // No hooks, so receive.advertisePushOptions is unset: gc pushes without -o.
    let url = format!("file://{hub_s}");
    let run = env.ci(&project, &["gc", "--hub", &url, "--keep", "1"]).expect(0);
    assert!(run.stdout().contains("done/w1: kept 1, archived 3"), "{}", run.stdout());
    assert!(run.stderr().contains("packed the refs of"), "a file:// hub is on this machine: {}", run.stderr());
    assert_eq!(results(&env, Path::new(&hub_s), "refs/ci/archive/w1").len(), 3);
}

#[test]
fn prune_drops_the_cut_history_and_a_dry_run_changes_nothing() {
    let env = TestEnv::new();
    let (project, hub_s, ids) = four_finished_by_w1(&env);
    let hub = Path::new(&hub_s);
    let before = env.ci_refs(hub);

    let dry = env.ci(&project, &["gc", "--hub", &hub_s, "--keep", "1", "--prune", "--dry-run", "--json"]).expect(0);
    let report = dry.json();
    assert_eq!((report["kept"].as_u64(), report["cut"].as_u64()), (Some(1), Some(3)), "{report}");
    assert_eq!(report["chains"][0]["ids"].as_array().unwrap().len(), 3);
    assert_eq!(env.ci_refs(hub), before, "a dry run moves nothing");

    let run = env.ci(&project, &["gc", "--hub", &hub_s, "--keep", "1", "--prune"]).expect(0);
    assert!(run.stdout().contains("done/w1: kept 1, pruned 3"), "{}", run.stdout());
    assert!(run.stderr().contains("git gc --prune=now"), "{}", run.stderr());
    assert!(env.ci_refs(hub).iter().all(|(n, _)| !n.starts_with("refs/ci/archive/")), "no archive");
    assert_eq!(results(&env, hub, "refs/ci/done/w1"), ids[3..]);
    let gone = env.ci(&project, &["show", "--hub", &hub_s, &ids[0]]);
    assert_ne!(gone.code(), 0, "a pruned job is gone");
    env.ci(&project, &["show", "--hub", &hub_s, &ids[3]]).expect(0);
}

#[test]
fn a_passed_job_is_still_skipped_after_gc() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.hello]\nrun = \"echo hello\"\n");
    env.ci(&repo, &["run"]).expect(0);
    // The hub is the repository itself, for gc as for run.
    let out = env.ci(&repo, &["gc", "--older-than", "0s"]).expect(0).stdout();
    assert!(out.contains("kept 0, archived 1"), "{out}");
    let again = env.ci(&repo, &["run"]).expect(0);
    assert!(again.stderr().contains("skipped  hello"), "the cache/ index survived: {}", again.stderr());
}

/// Jobs through a guarded hub over git daemon: queued by the hook (which
/// records triggers), run by a worker, one cancelled by the hub writer.
#[test]
fn the_guard_lets_gc_through_and_still_refuses_other_rewrites() {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let project = env.project("p", "[job.a]\nrun = \"echo a\"\n[job.b]\nrun = \"echo b\"\n");
    let push = env.git_output(&project, &["push", &url, "main"]);
    assert!(String::from_utf8_lossy(&push.stderr).contains("git-ci: queued a"), "{push:?}");
    env.ci(&project, &["worker", "--hub", &url, "--once", "--name", "w1"]).expect(0);
    let pending = env.ci(&project, &["submit", "--hub", &url, "--run", "true"]).expect(0).stdout().trim().to_owned();
    env.ci(&project, &["cancel", "--hub", &url, &pending]).expect(0);
    let triggers = env.git(&hub, &["rev-parse", "refs/ci/done/_hub:triggers"]);
    let old_tip = env.git(&hub, &["rev-parse", "refs/ci/done/w1"]);

    let run = env.ci(&project, &["gc", "--hub", &url, "--older-than", "0s"]).expect(0);
    let out = run.stdout();
    assert!(out.contains("done/w1: kept 0, archived 2") && out.contains("done/_hub: kept 0, archived 1"), "{out}");
    assert!(run.stderr().contains("cannot be packed from here"), "{}", run.stderr());
    assert_eq!(env.git(&hub, &["rev-parse", "refs/ci/done/_hub:triggers"]), triggers, "the same trigger index");
    assert_eq!(results(&env, &hub, "refs/ci/archive/_hub"), vec![pending.clone()]);

    // The trigger index still says main's jobs were queued: nothing again.
    let watch = env.ci(&project, &["watch", "--hub", &url, "--once"]).expect(0);
    assert!(watch.stderr().contains("queued before"), "{}", watch.stderr());
    assert!(env.ci_refs(&hub).iter().all(|(n, _)| !n.starts_with("refs/ci/queue/")), "nothing queued twice");
    let status = env.ci(&project, &["status", "--hub", &url, "--json"]).expect(0).json();
    assert_eq!(status.as_array().unwrap().len(), 3, "{status}");

    // A worker publishes on top of the new root, through the guard.
    let next = env.ci(&project, &["submit", "--hub", &url, "--run", "true"]).expect(0).stdout().trim().to_owned();
    env.ci(&project, &["worker", "--hub", &url, "--once", "--name", "w1"]).expect(0);
    assert_eq!(results(&env, &hub, "refs/ci/done/w1"), vec![next]);
    assert_eq!(commits(&env, &hub, "refs/ci/done/w1"), 2);

    // Without -o ci.gc, moving a done chain backwards is refused.
    let spec = format!("{old_tip}:refs/ci/done/w1");
    let back = env.git_output(&hub, &["push", "--porcelain", "--force", &url, &spec]);
    let stderr = String::from_utf8_lossy(&back.stderr);
    assert!(!back.status.success() && stderr.contains("not a fast-forward"), "{stderr}");
    assert_ne!(env.git(&hub, &["rev-parse", "refs/ci/done/w1"]), old_tip);
}

/// Workers complete jobs while gc cuts their chains again and again: every
/// job ends up published exactly once across done and archive chains.
/// `extra` goes to each worker.
fn race(env: &TestEnv, hub: &Path, hub_arg: &str, jobs: usize, extra: &[&str]) {
    let pipeline: String = (0..jobs).map(|i| format!("[job.j{i:02}]\nrun = \"echo {i}\"\n")).collect();
    let project = env.project("project", &pipeline);
    let mut ids: Vec<String> =
        env.ci(&project, &["submit", "--hub", hub_arg]).expect(0).stdout().lines().map(str::to_owned).collect();
    ids.sort();
    let mut workers: Vec<Child> = (0..2)
        .map(|i| {
            let name = format!("w{i}");
            let mut args = vec!["worker", "--hub", hub_arg, "--once", "--name", &name, "--poll", "100ms"];
            args.extend_from_slice(extra);
            env.ci_cmd(&project, &args).stdout(std::process::Stdio::null()).spawn().unwrap()
        })
        .collect();
    let (mut runs, mut retries) = (0, 0);
    while running(&mut workers) {
        let report = env.ci(&project, &["gc", "--hub", hub_arg, "--keep", "1", "--json"]).expect(0).json();
        runs += 1;
        retries +=
            report["chains"].as_array().unwrap().iter().map(|c| c["attempts"].as_u64().unwrap() - 1).sum::<u64>();
    }
    env.ci(&project, &["gc", "--hub", hub_arg, "--keep", "1"]).expect(0);
    eprintln!("{runs} gc runs during the race, {retries} lost races retried");

    let mut published = env.published_ids(hub);
    published.sort();
    assert_eq!(published, ids, "every job published exactly once, none lost");
    let live: Vec<_> = env
        .ci_refs(hub)
        .into_iter()
        .filter(|(n, _)| !n.starts_with("refs/ci/done/") && !n.starts_with("refs/ci/archive/"))
        .filter(|(n, _)| !n.starts_with("refs/ci/workers/"))
        .collect();
    assert!(live.is_empty(), "leftover refs: {live:?}");
    for w in ["w0", "w1"] {
        let done = format!("refs/ci/done/{w}");
        if has_ref(env, hub, &done) {
            assert!(results(env, hub, &done).len() <= 1, "the final gc kept one");
        }
    }
}

/// Whether any worker still runs; each one that ended must have succeeded.
fn running(workers: &mut Vec<Child>) -> bool {
    workers.retain_mut(|w| match w.try_wait().unwrap() {
        Some(status) => {
            assert!(status.success(), "a worker failed");
            false
        }
        None => true,
    });
    !workers.is_empty()
}

#[test]
fn workers_racing_gc_on_a_local_hub_lose_nothing() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    race(&env, &hub, hub.to_str().unwrap(), 30, &[]);
}

#[test]
fn workers_racing_gc_through_a_guarded_daemon_lose_nothing() {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    // Rolling every two results: the workers' rolls and gc race for the
    // archives as well as the done chains.
    race(&env, &hub, &url, 16, &["--roll-at", "2", "--jobs", "2"]);
}

#[test]
fn a_cancel_request_that_outlived_its_job_is_reported_by_doctor_and_removed_by_gc() {
    let env = TestEnv::new();
    let (_project, hub, ids) = four_finished_by_w1(&env);
    let hub_path = Path::new(&hub);
    // `git ci cancel` just as the job finished: its publish did not see it.
    let note = format!("{{\"version\": 1, \"job\": \"{}\", \"by\": \"me\", \"at\": \"2026-11-01T12:00:00Z\"}}", ids[0]);
    let file = env.path("cancel.json");
    std::fs::write(&file, note).unwrap();
    let blob = env.git(hub_path, &["hash-object", "-w", file.to_str().unwrap()]);
    let cancel = format!("refs/ci/cancel/{}", ids[0]);
    env.git(hub_path, &["update-ref", &cancel, &blob]);

    let doctor = env.ci(env.root.path(), &["doctor", "--hub", &hub]).expect(1).stdout();
    let finding = format!("FIX   1 cancel request(s) left over from jobs that finished first: {}", ids[0]);
    assert!(doctor.contains(&finding), "{doctor}");
    assert!(doctor.contains(&format!("fix: `git ci gc --hub {hub}` removes them")), "{doctor}");

    let dry = env.ci(env.root.path(), &["gc", "--hub", &hub, "--dry-run"]).expect(0);
    assert!(dry.stderr().contains("would remove 1 cancel request(s)"), "{}", dry.stderr());
    assert!(has_ref(&env, hub_path, &cancel), "a dry run changes nothing");
    let gc = env.ci(env.root.path(), &["gc", "--hub", &hub]).expect(0);
    assert!(gc.stderr().contains("removed 1 cancel request(s) left over from finished jobs"), "{}", gc.stderr());
    assert!(!has_ref(&env, hub_path, &cancel), "{:?}", env.ci_refs(hub_path));
    let doctor = env.ci(env.root.path(), &["doctor", "--hub", &hub]).stdout();
    assert!(!doctor.contains("cancel request"), "{doctor}");
}
