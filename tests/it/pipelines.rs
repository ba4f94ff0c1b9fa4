//! Pipelines on a real hub: `needs` order jobs, carry artifacts, skip
//! dependants of a failure in the publishing transaction, and a retry runs
//! the failure and what it skipped again. Real workers over `git daemon`,
//! on a hub whose guard checks every push.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use crate::env::{TestEnv, wait_until};

/// `(event, label, job id, nanoseconds)` lines a pipeline's scripts append.
struct Event {
    what: String,
    id: String,
    at: u128,
}

fn events(log: &Path) -> Vec<Event> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Event { what: f[0].to_owned(), id: f[1].to_owned(), at: f[2].parse().unwrap() }
        })
        .collect()
}

/// A script that records its start and end in `log` around `body`.
fn recorded(log: &Path, body: &str) -> String {
    let log = log.display();
    format!(
        "echo start $GIT_CI_JOB_ID $(date +%s%N) >> {log}; {body}; rc=$?; echo end $GIT_CI_JOB_ID $(date +%s%N) >> {log}; exit $rc"
    )
}

/// Every job of `ids` as `show --json` sees it.
fn shown(env: &TestEnv, dir: &Path, hub: &str, ids: &[String]) -> Vec<serde_json::Value> {
    ids.iter().map(|id| env.ci(dir, &["show", "--hub", hub, "--json", id]).expect(0).json()).collect()
}

/// No job started before every job it needs had ended, and each ran once.
fn assert_order(events: &[Event], jobs: &[serde_json::Value]) {
    let mut starts: HashMap<&str, Vec<u128>> = HashMap::new();
    let mut ends: HashMap<&str, u128> = HashMap::new();
    for e in events {
        match e.what.as_str() {
            "start" => starts.entry(&e.id).or_default().push(e.at),
            _ => {
                ends.insert(&e.id, e.at);
            }
        }
    }
    for job in jobs {
        let id = job["id"].as_str().unwrap();
        if job["state"] == "skipped" {
            assert!(!starts.contains_key(id), "skipped job {id} ran");
            continue;
        }
        let started = &starts[id];
        assert_eq!(started.len(), 1, "{id} ran {} times", started.len());
        for need in job["needs"].as_array().into_iter().flatten() {
            let need_id = need["id"].as_str().unwrap();
            let ended = ends.get(need_id).unwrap_or_else(|| panic!("{id} ran, but its need {need_id} never ended"));
            assert!(started[0] > *ended, "{id} started before its need {need_id} ended");
        }
    }
}

/// A hub holding `project`'s `main`, its guard installed after the push
/// (whose post-receive hook would queue the pipeline once more).
fn guarded_hub_with(env: &TestEnv, project: &Path) -> std::path::PathBuf {
    let hub = env.bare_hub("hub.git");
    env.git(project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    env.ci(env.root.path(), &["hooks", "install", "--hub", hub.to_str().unwrap()]).expect(0);
    hub
}

#[test]
fn a_pipeline_runs_in_order_with_artifacts_skips_and_retries() {
    let env = TestEnv::new();
    let log = env.path("events.log");
    let stamps = env.path("stamps.txt");
    let fail = env.path("fail-3.12-postgres");
    let pipeline = format!(
        r#"
[job.build]
run = '''{build}'''
artifacts = ["dist/**"]

[job.test]
needs = ["build"]
matrix = {{ python = ["3.11", "3.12"], db = ["sqlite", "postgres"] }}
run = '''{test}'''

[job.deploy]
needs = ["test"]
run = '''{deploy}'''
"#,
        build = recorded(&log, "mkdir -p dist/sub && echo $GIT_CI_JOB_ID > dist/sub/stamp && sleep 0.3"),
        test = recorded(
            &log,
            &format!(
                "cat dist/sub/stamp >> {stamps} && test ! -e {fail}-$python-$db",
                stamps = stamps.display(),
                fail = env.path("fail").display()
            )
        ),
        deploy = recorded(&log, "true"),
    );
    let project = env.project("p", &pipeline);
    guarded_hub_with(&env, &project);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let _workers: Vec<_> = (0..3)
        .map(|i| {
            let name = format!("w{i}");
            env.spawn_ci(&project, &["worker", "--hub", &url, "--poll", "100ms", "--name", &name])
        })
        .collect();

    // All pass: in order, with build's artifacts in every test checkout.
    let ids: Vec<String> =
        env.ci(&project, &["submit", "--hub", &url, "--wait"]).expect(0).stdout().lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 6, "build, 4 tests, deploy");
    let jobs = shown(&env, &project, &url, &ids);
    assert_order(&events(&log), &jobs);
    let build_id = &ids[0];
    assert_eq!(std::fs::read_to_string(&stamps).unwrap(), format!("{build_id}\n").repeat(4));
    let labels: Vec<&str> = jobs.iter().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(labels, ["build", "test", "test", "test", "test", "deploy"]);
    assert_eq!(jobs[4]["matrix"], serde_json::json!({"python": "3.12", "db": "postgres"}));
    assert_eq!(jobs[5]["needs"].as_array().unwrap().len(), 4);

    // One cell fails: deploy is skipped, saying which, and never runs.
    std::fs::write(&fail, "").unwrap();
    std::fs::remove_file(&log).unwrap();
    let run = env.ci(&project, &["submit", "--hub", &url, "--wait"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let ids: Vec<String> = run.stdout().lines().map(str::to_owned).collect();
    let jobs = shown(&env, &project, &url, &ids);
    let states: Vec<&str> = jobs.iter().map(|j| j["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["passed", "passed", "passed", "passed", "failed", "skipped"]);
    let reason = jobs[5]["reason"].as_str().unwrap();
    assert_eq!(reason, "test (python=3.12, db=postgres) failed");
    assert_order(&events(&log), &jobs);

    // A retry of the cell runs it, then deploy, once each.
    std::fs::remove_file(&fail).unwrap();
    let run = env.ci(&project, &["retry", "--hub", &url, "--wait", &ids[4]]).expect(0);
    let again: Vec<String> = run.stdout().lines().map(str::to_owned).collect();
    assert_eq!(again.len(), 2, "the cell and deploy: {}", run.stderr());
    let jobs = shown(&env, &project, &url, &again);
    assert_eq!(jobs[0]["matrix"]["db"], "postgres");
    assert_eq!(jobs[1]["name"], "deploy");
    let deploy_needs: Vec<&str> =
        jobs[1]["needs"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(deploy_needs, [&ids[1], &ids[2], &ids[3], &again[0]], "the passes kept, the cell replaced");
    assert_order(&events(&log), &jobs);
    assert!(jobs.iter().all(|j| j["state"] == "passed"));
}

/// 30 pipelines of 5 jobs (a → b, c → d → e) on 4 workers: every job runs
/// exactly once, after its needs, and is published exactly once.
#[test]
fn racing_workers_run_every_pipeline_in_order_exactly_once() {
    const PIPELINES: usize = 30;
    let env = TestEnv::new();
    let log = env.path("events.log");
    let job = |needs: &str| format!("needs = [{needs}]\nrun = '''{}'''\n", recorded(&log, "true"));
    let pipeline = format!(
        "[job.a]\n{}\n[job.b]\n{}\n[job.c]\n{}\n[job.d]\n{}\n[job.e]\n{}",
        job(""),
        job("\"a\""),
        job("\"a\""),
        job("\"b\", \"c\""),
        job("\"d\"")
    );
    let project = env.project("p", &pipeline);
    let hub = guarded_hub_with(&env, &project);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let name = format!("w{i}");
            env.spawn_ci(&project, &["worker", "--hub", &url, "--poll", "100ms", "--jobs", "2", "--name", &name])
        })
        .collect();
    // Submitted while the workers run, from two threads at once.
    let ids: Vec<String> = std::thread::scope(|s| {
        let submitters: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut ids = Vec::new();
                    for _ in 0..PIPELINES / 2 {
                        let out = env.ci(&project, &["submit", "--hub", &url]).expect(0).stdout();
                        ids.extend(out.lines().map(str::to_owned));
                    }
                    ids
                })
            })
            .collect();
        submitters.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(ids.len(), PIPELINES * 5);
    let hub_dir = hub.clone();
    wait_until(Duration::from_secs(240), "every job to be published", || {
        env.published_ids(&hub_dir).len() >= ids.len()
    });
    let published = env.published_ids(&hub);
    let mut once: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &published {
        *once.entry(id).or_default() += 1;
    }
    assert!(once.values().all(|n| *n == 1), "published more than once: {once:?}");
    let extra: Vec<serde_json::Value> = once
        .keys()
        .filter(|id| !ids.iter().any(|i| i == *id))
        .map(|id| env.ci(&project, &["show", "--hub", &url, "--json", id]).json())
        .collect();
    assert_eq!(once.len(), ids.len(), "every job published, nothing else: {extra:#?}");
    let jobs = shown(&env, &project, &url, &ids);
    let not_passed: Vec<_> = jobs.iter().filter(|j| j["state"] != "passed").collect();
    assert!(not_passed.is_empty(), "all passed, but: {not_passed:#?}");
    assert_order(&events(&log), &jobs);
    // Nothing left behind: no queue ref, pin or claim.
    let live: Vec<String> = env
        .ci_refs(&hub)
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| ["queue/", "pins/", "claims/"].iter().any(|p| n.starts_with(&format!("refs/ci/{p}"))))
        .collect();
    assert!(live.is_empty(), "{live:?}");
    drop(workers);
}

/// Before any worker runs: what each job waits for is said, and a cancel
/// of the first job skips the rest in the same transaction, saying why.
#[test]
fn waiting_jobs_say_what_they_wait_for_and_a_cancel_skips_them() {
    let env = TestEnv::new();
    let pipeline = "[job.build]\nrun = \"true\"\n\n[job.test]\nneeds = [\"build\"]\nmatrix = { v = [\"1\", \"2\"] }\nrun = \"true\"\n\n[job.deploy]\nneeds = [\"test\"]\nrun = \"true\"\n";
    let (repo, hub) = env.project_on_hub(pipeline);
    let ids: Vec<String> =
        env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 4);
    let status = env.ci(&repo, &["status", "--hub", &hub]).expect(0).stdout();
    let line = |id: &str| status.lines().find(|l| l.starts_with(id)).unwrap().to_owned();
    assert!(!line(&ids[0]).contains("waits for"), "{status}");
    assert!(line(&ids[1]).contains("waits for build"), "{status}");
    assert!(line(&ids[3]).contains("waits for test (v=1) and 1 more"), "{status}");
    let deploy = env.ci(&repo, &["show", "--hub", &hub, "--json", &ids[3]]).expect(0).json();
    assert_eq!(deploy["state"], "pending");
    assert_eq!(deploy["waiting_for"], serde_json::json!([ids[1], ids[2]]));
    env.ci(&repo, &["cancel", "--hub", &hub, &ids[0]]).expect(0);
    let jobs = shown(&env, &repo, &hub, &ids);
    let states: Vec<&str> = jobs.iter().map(|j| j["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["cancelled", "skipped", "skipped", "skipped"]);
    assert!(jobs[1..].iter().all(|j| j["reason"] == "build was cancelled"), "{jobs:?}");
    // Nothing left to claim or to wait.
    let live: Vec<_> =
        env.ci_refs(Path::new(&hub)).into_iter().filter(|(n, _)| n.starts_with("refs/ci/queue/")).collect();
    assert!(live.is_empty(), "{live:?}");
}
