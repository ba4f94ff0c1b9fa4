//! A result that cannot be published as it is ends as an `error` that can,
//! instead of holding its claim and the worker forever.

use std::time::Duration;

use crate::env::{TestEnv, wait_until};

/// The state and reason `show --json` gives a job.
fn outcome(env: &TestEnv, project: &std::path::Path, url: &str, id: &str) -> (String, String) {
    let shown = env.ci(project, &["show", "--hub", url, "--json", id]).json();
    let field = |k: &str| shown[k].as_str().unwrap_or_default().to_owned();
    (field("state"), field("reason"))
}

#[test]
fn a_result_the_guard_refuses_is_published_once_as_an_error_and_the_worker_goes_on() {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    env.git(&hub, &["config", "ci.maxLogBytes", "4000"]);
    let pipeline = "[job.big]\nrun = \"seq 1 5000\"\n\n[job.small]\nrun = \"echo small\"\n";
    let project = env.project("p", pipeline);
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    // The hub's hook queued both jobs on the push: big, then small.
    let status = env.ci(&project, &["status", "--hub", &url, "--json"]).expect(0).json();
    let id_of = |name: &str| {
        let job = status.as_array().unwrap().iter().find(|j| j["name"] == name).expect("queued by the hook");
        job["id"].as_str().unwrap().to_owned()
    };
    let ids = [id_of("big"), id_of("small")];
    // `--once` ends only when nothing is left to run or publish.
    let worker = env.spawn_ci(&project, &["worker", "--hub", &url, "--once", "--poll", "100ms"]);
    wait_until(Duration::from_secs(90), "the worker to finish", || {
        ids.iter().all(|id| !matches!(outcome(&env, &project, &url, id).0.as_str(), "pending" | "running"))
            && !env.ci_refs(&hub).iter().any(|(n, _)| n.starts_with("refs/ci/claims/"))
    });
    let (status, _, stderr) = worker.wait();
    assert!(status.success(), "{stderr}");
    let (state, reason) = outcome(&env, &project, &url, &ids[0]);
    assert_eq!(state, "error", "{reason}");
    assert!(reason.contains("refused") && reason.contains("ci.maxLogBytes"), "{reason}");
    let log = env.ci(&project, &["log", "--hub", &url, &ids[0]]).expect(0).stdout();
    assert!(log.contains("\n1\n") || log.starts_with("[git-ci]"), "head kept: {log}");
    assert!(log.trim_end().ends_with("5000"), "tail kept: {}", &log[log.len().saturating_sub(200)..]);
    assert_eq!(outcome(&env, &project, &url, &ids[1]).0, "passed", "the other job was published");
    assert_eq!(env.published_ids(&hub).len(), 2, "each published once");
}

#[test]
fn a_job_whose_pin_went_missing_still_ends() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let project = env.project("p", "[job.hello]\nrun = \"echo hello\"\n");
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let id = env.ci(&project, &["submit", "--hub", &url]).expect(0).stdout().trim().to_owned();
    env.git(&hub, &["update-ref", "-d", &format!("refs/ci/pins/{id}")]);
    let worker = env.spawn_ci(&project, &["worker", "--hub", &url, "--once", "--poll", "100ms"]);
    wait_until(Duration::from_secs(60), "the job to be published", || {
        !matches!(outcome(&env, &project, &url, &id).0.as_str(), "pending" | "running")
    });
    let (status, _, stderr) = worker.wait();
    assert!(status.success(), "{stderr}");
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !n.starts_with("refs/ci/done/")).collect();
    assert!(live.is_empty(), "nothing left behind: {live:?}");
    assert_eq!(env.published_ids(&hub), [id]);
}

/// The worker's cache disk fills up while it writes a big result: that
/// result waits, with a backoff of its own, while the worker goes on
/// claiming and publishing others; once there is room again it is
/// published too.
#[test]
fn a_result_that_cannot_be_written_waits_without_holding_the_others() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let project = env.project("p", "");
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let url = format!("file://{}", hub.display());
    // ~8 MB of log that does not compress: far over the cache's disk.
    let big = env.ci(&project, &["submit", "--hub", &url, "--run", "head -c 6000000 /dev/urandom | base64"]);
    let big = big.expect(0).stdout().trim().to_owned();
    let small =
        env.ci(&project, &["submit", "--hub", &url, "--run", "echo small"]).expect(0).stdout().trim().to_owned();
    let cache = env.path("small-cache");
    let disk = crate::full_disk::SmallDisk::mount_sized(&cache, "3M");
    let mut cmd = env.ci_cmd(&project, &["worker", "--hub", &url, "--poll", "100ms", "--work-dir"]);
    cmd.arg(env.path("work")).env("GIT_CI_CACHE_DIR", &cache);
    let worker = env.spawn(cmd);
    wait_until(Duration::from_secs(60), "the small job to be published beside the stuck one", || {
        outcome(&env, &project, &url, &small).0 == "passed"
    });
    assert_eq!(outcome(&env, &project, &url, &big).0, "running", "its claim is kept:\n{}", worker.stderr());
    assert!(worker.stderr().contains("publishing"), "said why it waits:\n{}", worker.stderr());
    disk.grow("64M");
    wait_until(Duration::from_secs(90), "the big job to be published once there is room", || {
        outcome(&env, &project, &url, &big).0 == "passed"
    });
    assert_eq!(env.published_ids(&hub).len(), 2, "each published once");
}
