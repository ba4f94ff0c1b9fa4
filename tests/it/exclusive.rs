//! "Claimed", "cancelled" and "finished" are exclusive at the moment the
//! hub applies each push (docs/protocol.md): a cancelled job never starts,
//! a finished one never runs again. The races are widened with a hub whose
//! pre-receive hook sleeps, so that a push is decided on refs that other
//! pushes change while it waits.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::env::{TestEnv, counts, wait_until};

/// A `pre-receive` hook that sleeps `secs` before letting any push in.
fn slow_pre_receive(hub: &Path, name: &str, secs: &str) {
    hook(hub, name, &format!("#!/bin/sh\ncat >/dev/null\nsleep {secs}\n"));
}

/// Installs the executable `script` as the hub's hook `name`.
fn hook(hub: &Path, name: &str, script: &str) {
    let hook = hub.join("hooks").join(name);
    std::fs::write(&hook, script).unwrap();
    let mut perms = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap();
}

#[test]
fn a_cancel_racing_a_claim_never_lets_the_cancelled_job_run() {
    const ROUNDS: usize = 50;
    const THREADS: usize = 5;
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    slow_pre_receive(&hub, "pre-receive", "0.3");
    let runs = env.path("runs.txt");
    let project = env.project("p", "");
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let _worker = env.spawn_ci(&project, &["worker", "--hub", &url, "--poll", "100ms", "--jobs", "2"]);
    let script = format!("echo $GIT_CI_JOB_ID >> {}", runs.display());
    // Rounds on several threads at once, so that submits, cancels and
    // claims overlap in every order.
    let ids: Vec<String> = std::thread::scope(|s| {
        let rounds: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    let mut ids = Vec::new();
                    for _ in 0..ROUNDS / THREADS {
                        let id = env.ci(&project, &["submit", "--hub", &url, "--run", &script]).expect(0).stdout();
                        let id = id.trim().to_owned();
                        env.ci(&project, &["cancel", "--hub", &url, &id]).expect(0);
                        ids.push(id);
                    }
                    ids
                })
            })
            .collect();
        rounds.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    assert_eq!(ids.len(), ROUNDS);
    let mut states = HashMap::new();
    wait_until(Duration::from_secs(120), "every job to finish", || {
        let status = env.ci(&project, &["status", "--hub", &url, "--json", "--limit", "1000"]).expect(0).json();
        states = status.as_array().unwrap().iter().map(|j| (j["id"].as_str().unwrap().to_owned(), j.clone())).collect();
        ids.iter().all(|id| states.get(id).is_some_and(|j| !matches!(j["state"].as_str(), Some("pending" | "running"))))
    });
    let ran = counts(&runs);
    let (mut cancelled_unrun, mut cancelled_running) = (0, 0);
    for id in &ids {
        let job = &states[id];
        let shown = env.ci(&project, &["show", "--hub", &url, "--json", id]).json();
        let reason = shown["reason"].as_str().unwrap_or_default().to_owned();
        match job["state"].as_str().unwrap() {
            "cancelled" if reason.contains("before it started") => {
                assert_eq!(ran.get(id), None, "{id} was cancelled before it started, yet it ran");
                cancelled_unrun += 1;
            }
            // Claimed first: the cancel asked its worker to stop it.
            "cancelled" => cancelled_running += 1,
            "passed" => assert_eq!(ran.get(id), Some(&1), "{id} passed: it ran once"),
            other => panic!("{id} ended {other}: {shown}"),
        }
    }
    assert_eq!(ran.values().filter(|&&n| n > 1).count(), 0, "a job ran twice: {ran:?}");
    assert!(cancelled_unrun > 0, "no cancel won a race ({cancelled_running} came after a claim)");
    // A cancel request that came as its job finished stays behind until
    // `git ci gc` (doctor reports it); nothing else may.
    let kept = ["refs/ci/done/", "refs/ci/workers/", "refs/ci/cancel/"];
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !kept.iter().any(|k| n.starts_with(k))).collect();
    assert!(live.is_empty(), "leftover refs: {live:?}");
}

/// Eight workers of two slots on a guarded hub whose pushes each wait a
/// moment: each job runs exactly once (no job is claimed again from a stale
/// view after it finished), is published exactly once, and the guard
/// refuses none of the protocol's own pushes.
#[test]
fn a_storm_of_eight_workers_runs_every_job_exactly_once() {
    const JOBS: usize = 300;
    const WORKERS: usize = 8;
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    // Run by the guard before its own checks (hooks install keeps it).
    slow_pre_receive(&hub, "pre-receive.pre-git-ci", "0.2");
    let runs = env.path("runs.txt");
    let project = env.project("p", "");
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let script = format!("echo $GIT_CI_JOB_ID >> {}", runs.display());
    let ids = submit_many(&env, &project, &url, &script, JOBS);
    assert_eq!(ids.len(), JOBS);
    let workers = spawn_workers(&env, &project, &url, "s", WORKERS, &["--jobs", "2", "--poll", "100ms"]);
    let mut refusals = Vec::new();
    for stderr in wait_for_workers(workers) {
        refusals.extend(stderr.lines().filter(|l| l.contains("refused")).map(str::to_owned));
    }
    let ran = counts(&runs);
    for id in &ids {
        assert_eq!(ran.get(id), Some(&1), "{id} ran {:?} times", ran.get(id));
    }
    assert_eq!(ran.len(), JOBS, "runs = jobs exactly");
    let published = counts_of(env.published_ids(&hub));
    assert_eq!(published.len(), JOBS, "every job published");
    assert!(published.values().all(|&n| n == 1), "published twice: {published:?}");
    assert!(refusals.is_empty(), "the guard refused the protocol's own pushes: {refusals:?}");
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !n.starts_with("refs/ci/done/")).collect();
    assert!(live.is_empty(), "leftover refs: {live:?}");
}

/// `n` workers `<prefix>0..` of `url` with `--once` and `extra`, their
/// stderr piped. Their lease is one no run of a test outlives, even on a
/// loaded machine: a steal after a lease is a legitimate second run.
fn spawn_workers(
    env: &TestEnv,
    project: &Path,
    url: &str,
    prefix: &str,
    n: usize,
    extra: &[&str],
) -> Vec<std::process::Child> {
    (0..n)
        .map(|i| {
            let name = format!("{prefix}{i}");
            let args = [&["worker", "--hub", url, "--once", "--name", &name, "--lease", "10m"][..], extra].concat();
            env.ci_cmd(project, &args).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect()
}

/// Waits for each worker; each must exit 0. Returns their stderr.
fn wait_for_workers(workers: Vec<std::process::Child>) -> Vec<String> {
    workers
        .into_iter()
        .map(|w| {
            let out = w.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(out.status.success(), "{stderr}");
            stderr
        })
        .collect()
}

/// `jobs` jobs running `script`, defined in the project's `.git-ci.toml`
/// and queued in one push by the hub's post-receive hook.
fn submit_many(env: &TestEnv, project: &Path, url: &str, script: &str, jobs: usize) -> Vec<String> {
    let pipeline: String = (0..jobs).map(|i| format!("[job.j{i:03}]\nrun = \"{script}\"\n")).collect();
    std::fs::write(project.join(".git-ci.toml"), pipeline).unwrap();
    env.git(project, &["commit", "-qam", "many jobs"]);
    env.git(project, &["push", "-q", url, "main"]);
    let status = env.ci(project, &["status", "--hub", url, "--json", "--limit", "100000"]).expect(0).json();
    status.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect()
}

fn counts_of(ids: Vec<String>) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for id in ids {
        *out.entry(id).or_default() += 1;
    }
    out
}

/// A claim push that the hub applied but whose answer was lost (the
/// connection cut right after the refs moved, as a proxy or a smart-HTTP
/// server can): the worker recognises its own claim by its nonce and runs
/// the job as the same attempt, instead of waiting out its lease and
/// spending an attempt.
#[test]
fn a_claim_whose_answer_was_lost_is_recognised() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let marker = env.path("cut");
    // git runs this hook once the refs of a push are committed, before it
    // answers: the first claim's push then loses its answer.
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = committed ] || exit 0\n\
         grep -q ' refs/ci/claims/' || exit 0\n\
         [ -e {m} ] && exit 0\ntouch {m}\nkill -9 $PPID\n",
        m = marker.display()
    );
    hook(&hub, "reference-transaction", &script);
    let project = env.project("p", "[job.hello]\nrun = \"echo hello\"\n");
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let id = env.ci(&project, &["submit", "--hub", &url]).expect(0).stdout().trim().to_owned();
    let worker = env.spawn_ci(&project, &["worker", "--hub", &url, "--lease", "10m", "--poll", "100ms"]);
    // Well under the lease: a worker that did not know its claim would wait it out.
    wait_until(Duration::from_secs(60), "the job to be published", || {
        let shown = env.ci(&project, &["show", "--hub", &url, "--json", &id]).json();
        !matches!(shown["state"].as_str(), Some("pending" | "running"))
    });
    assert!(marker.exists(), "the hook cut a claim's answer:\n{}", worker.stderr());
    let shown = env.ci(&project, &["show", "--hub", &url, "--json", &id]).expect(0).json();
    assert_eq!((shown["state"].as_str(), shown["attempt"].as_u64()), (Some("passed"), Some(1)), "{shown}");
}

/// Issue 18's cycle of a one-slot worker over the network: the push that
/// publishes a finished job also claims the next one. Four such workers
/// with the default settings drain a guarded hub whose pushes each wait a
/// moment, while jobs are cancelled under them: every job ends once, a
/// job cancelled before it started never runs, none runs twice (so none
/// after it finished), each is published exactly once, none is lost, and
/// most claims rode on a publish.
#[test]
fn one_slot_workers_that_publish_as_they_claim_lose_and_repeat_nothing() {
    const JOBS: usize = 120;
    const WORKERS: usize = 4;
    const CANCELS: usize = 24;
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    slow_pre_receive(&hub, "pre-receive.pre-git-ci", "0.05");
    // Counts the hub's transactions that both claim a job (create a claim)
    // and publish one (move a done chain).
    let combined = env.path("combined.txt");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = committed ] || exit 0\nin=$(cat)\n\
         echo \"$in\" | grep -q '^0\\{{40\\}} .* refs/ci/claims/' || exit 0\n\
         echo \"$in\" | grep -q ' refs/ci/done/' || exit 0\necho x >> {}\n",
        combined.display()
    );
    hook(&hub, "reference-transaction", &script);
    let runs = env.path("runs.txt");
    let project = env.project("p", "");
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let script = format!("echo $GIT_CI_JOB_ID >> {}", runs.display());
    let ids = submit_many(&env, &project, &url, &script, JOBS);
    assert_eq!(ids.len(), JOBS);
    let workers = spawn_workers(&env, &project, &url, "n", WORKERS, &[]);
    // Cancels from the back of the queue while the front is drained:
    // some meet pending jobs, some running ones, some finished ones.
    let cancelled: Vec<&String> = ids.iter().rev().step_by(JOBS / CANCELS).collect();
    for id in &cancelled {
        env.ci(&project, &["cancel", "--hub", &url, id]);
    }
    for stderr in wait_for_workers(workers) {
        assert!(!stderr.contains("refused"), "the guard refused the protocol's own pushes: {stderr}");
    }
    let status = env.ci(&project, &["status", "--hub", &url, "--json", "--limit", "100000"]).expect(0).json();
    let states: HashMap<String, serde_json::Value> =
        status.as_array().unwrap().iter().map(|j| (j["id"].as_str().unwrap().to_owned(), j.clone())).collect();
    let ran = counts(&runs);
    let mut unrun = 0;
    for id in &ids {
        let runs_of = ran.get(id).copied().unwrap_or(0);
        assert!(runs_of <= 1, "{id} ran {runs_of} times");
        match states[id]["state"].as_str().unwrap() {
            "passed" => assert_eq!(runs_of, 1, "{id} passed: it ran once"),
            "cancelled" => {
                let shown = env.ci(&project, &["show", "--hub", &url, "--json", id]).json();
                if shown["reason"].as_str().unwrap_or_default().contains("before it started") {
                    assert_eq!(runs_of, 0, "{id} was cancelled before it started, yet it ran");
                    unrun += 1;
                }
            }
            other => panic!("{id} ended {other}"),
        }
    }
    assert!(unrun > 0, "no cancel met a pending job: the race was not run");
    let published = counts_of(env.published_ids(&hub));
    assert_eq!(published.len(), JOBS, "every job published");
    assert!(published.values().all(|&n| n == 1), "published twice: {published:?}");
    let kept = ["refs/ci/done/", "refs/ci/workers/", "refs/ci/cancel/"];
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !kept.iter().any(|k| n.starts_with(k))).collect();
    assert!(live.is_empty(), "leftover refs: {live:?}");
    let combined = std::fs::read_to_string(&combined).unwrap_or_default().lines().count();
    assert!(combined >= JOBS / 3, "only {combined} of {JOBS} claims rode on a publish");
}
