//! Many workers, one hub: every job runs at least once, is published
//! exactly once, and nothing is left behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::env::TestEnv;

/// A project of `jobs` jobs that each append their id to the returned file.
pub(crate) fn counting_project(env: &TestEnv, jobs: usize) -> (PathBuf, PathBuf) {
    let runs = env.path("runs.txt");
    let pipeline: String =
        (0..jobs).map(|i| format!("[job.j{i:02}]\nrun = \"echo $GIT_CI_JOB_ID >> {}\"\n", runs.display())).collect();
    (env.project("project", &pipeline), runs)
}

/// Starts `workers` worker processes named `<prefix><n>` with `--once` and
/// `extra`, and waits for them all to succeed.
fn drain(env: &TestEnv, project: &Path, hub: &str, workers: usize, prefix: &str, extra: &[&str]) {
    let spawned: Vec<_> = (0..workers)
        .map(|i| {
            let name = format!("{prefix}{i}");
            let mut args = vec!["worker", "--hub", hub, "--once", "--name", &name];
            args.extend_from_slice(extra);
            env.ci_cmd(project, &args).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for w in spawned {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Every job of `ids` ran at least once (by `runs`), is published exactly
/// once in the hub's done and archive chains, and no live ref is left.
pub(crate) fn assert_each_published_once(env: &TestEnv, hub: &Path, ids: &[String], runs: &Path) {
    let ran = std::fs::read_to_string(runs).unwrap();
    let mut run_counts: HashMap<&str, usize> = HashMap::new();
    for line in ran.lines() {
        *run_counts.entry(line).or_default() += 1;
    }
    for id in ids {
        assert!(run_counts.get(id.as_str()).copied().unwrap_or(0) >= 1, "job {id} never ran");
    }
    let published = env.published_ids(hub);
    let mut pub_counts: HashMap<&str, usize> = HashMap::new();
    for id in &published {
        *pub_counts.entry(id).or_default() += 1;
    }
    assert_eq!(pub_counts.len(), ids.len(), "every job published");
    assert!(pub_counts.values().all(|&n| n == 1), "published twice: {pub_counts:?}");
    let live: Vec<_> = env
        .ci_refs(hub)
        .into_iter()
        .filter(|(n, _)| !n.starts_with("refs/ci/done/") && !n.starts_with("refs/ci/archive/"))
        .collect();
    assert!(live.is_empty(), "leftover refs: {live:?}");
}

fn submit(env: &TestEnv, project: &Path, hub: &str) -> Vec<String> {
    env.ci(project, &["submit", "--hub", hub]).expect(0).stdout().lines().map(str::to_owned).collect()
}

#[test]
fn four_workers_over_git_daemon_publish_every_job_once() {
    const WORKERS: usize = 4;
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let (project, runs) = counting_project(&env, 60);
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let ids = submit(&env, &project, &url);
    assert_eq!(ids.len(), 60);
    drain(&env, &project, &url, WORKERS, "w", &["--jobs", "2"]);
    assert_each_published_once(&env, &hub, &ids, &runs);
    assert!(env.ci_refs(&hub).len() <= WORKERS, "refs stay about as many as the workers");
}

#[test]
fn workers_racing_on_a_local_hub_publish_every_job_once() {
    let env = TestEnv::new();
    let (project, runs) = counting_project(&env, 40);
    let hub = project.join(".git");
    let ids = submit(&env, &project, hub.to_str().unwrap());
    drain(&env, &project, hub.to_str().unwrap(), 3, "l", &[]);
    assert_each_published_once(&env, &hub, &ids, &runs);
}

/// Workers that roll their done chains into their archives every few
/// results (as they do every 1,000 by default), racing each other through
/// the hub's guard: the rolls are fast-forwards the guard takes, and every
/// job is still published exactly once, in a done tip or an archive.
#[test]
fn workers_rolling_their_chains_through_a_guarded_daemon_publish_every_job_once() {
    const ROLL_AT: usize = 3;
    const JOBS_EACH: usize = 2;
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let (project, runs) = counting_project(&env, 40);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let ids = submit(&env, &project, &url);
    let extra = ["--jobs", &JOBS_EACH.to_string(), "--roll-at", &ROLL_AT.to_string(), "--poll", "100ms"];
    drain(&env, &project, &url, 3, "r", &extra.iter().map(|s| s.as_ref()).collect::<Vec<&str>>());
    assert_each_published_once(&env, &hub, &ids, &runs);

    let mut rolls = 0;
    for (name, _) in env.ci_refs(&hub).into_iter().filter(|(n, _)| n.starts_with("refs/ci/done/")) {
        let held = env.git(&hub, &["ls-tree", "-r", "--name-only", &name, "--", "results"]);
        let held = held.lines().filter(|l| l.ends_with("/result.json")).count();
        // A tip one short of the mark takes one more batch, then rolls.
        assert!(held < ROLL_AT + JOBS_EACH, "{name} holds {held} results");
        let archive = name.replace("/done/", "/archive/");
        if env.ci_refs(&hub).iter().any(|(n, _)| *n == archive) {
            let log = env.git(&hub, &["log", "--format=%s", &archive]);
            rolls += log.lines().filter(|s| s.starts_with("git-ci: rolled")).count();
        }
    }
    assert!(rolls >= 3, "40 jobs over 3 workers rolling at {ROLL_AT}: {rolls} rolls");
    let status = env.ci(&project, &["status", "--hub", &url, "--json", "--limit", "100"]).expect(0).json();
    let passed = status.as_array().unwrap().iter().filter(|j| j["state"] == "passed").count();
    assert_eq!(passed, ids.len(), "status finds archived jobs: {status}");
}
