//! Workers under faults: dead workers, poisoned jobs, timeouts, cancels.

use std::process::{Child, Command};
use std::time::Duration;

use crate::env::{TestEnv, wait_until};

fn state_of(env: &TestEnv, repo: &std::path::Path, hub: &str, id: &str) -> serde_json::Value {
    env.ci(repo, &["show", "--hub", hub, id, "--json"]).expect(0).json()
}

fn terminate(mut child: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    assert!(child.wait().unwrap().success(), "a worker exits 0 on SIGTERM");
}

#[test]
fn a_killed_workers_job_is_stolen_after_its_lease_and_published_once() {
    let env = TestEnv::new();
    let pids = env.path("pids");
    let script = format!(
        "echo $$ >> {}; if [ \\\"$GIT_CI_ATTEMPT\\\" = 1 ]; then sleep 60; fi; echo attempt $GIT_CI_ATTEMPT",
        pids.display()
    );
    let repo = env.project("p", &format!("[job.slow]\nrun = \"{script}\"\n"));
    let hub = env.bare_hub("hub.git");
    env.git(&repo, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let hub_s = hub.to_str().unwrap();
    let id = env.ci(&repo, &["submit", "--hub", hub_s]).expect(0).stdout().trim().to_owned();

    let mut first =
        env.ci_cmd(&repo, &["worker", "--hub", hub_s, "--name", "doomed", "--lease", "2s"]).spawn().unwrap();
    wait_until(Duration::from_secs(20), "the first attempt to start", || pids.exists());
    first.kill().unwrap();
    first.wait().unwrap();

    let second = env
        .ci_cmd(&repo, &["worker", "--hub", hub_s, "--name", "heir", "--lease", "2s", "--poll", "100ms"])
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the job to be stolen and finished", || {
        state_of(&env, &repo, hub_s, &id)["state"] == "passed"
    });
    terminate(second);
    let show = state_of(&env, &repo, hub_s, &id);
    assert_eq!(show["attempt"], 2, "{show}");
    assert_eq!(show["worker"], "heir");
    assert_eq!(env.published_ids(&hub), [id.clone()]);
    assert!(env.ci_refs(&hub).iter().all(|(n, _)| n.starts_with("refs/ci/done/")), "{:?}", env.ci_refs(&hub));
    // The orphaned first attempt (its worker died with -9) is still ours to clean up.
    for pid in std::fs::read_to_string(&pids).unwrap().lines() {
        let _ = Command::new("kill").arg("-KILL").arg(format!("-{pid}")).status();
    }
}

#[test]
fn a_malformed_job_is_published_as_error_and_the_worker_goes_on() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.fine]\nrun = \"true\"\n");
    let hub = env.bare_hub("hub.git");
    env.git(&repo, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let hub_s = hub.to_str().unwrap();
    let poison = "20261122T000000000-0123456789ab";
    let garbage = env.path("garbage");
    std::fs::write(&garbage, "this is { not json").unwrap();
    let blob = env.git(&hub, &["hash-object", "-w", garbage.to_str().unwrap()]);
    env.git(&hub, &["update-ref", &format!("refs/ci/queue/default/{poison}"), &blob]);
    let good = env.ci(&repo, &["submit", "--hub", hub_s]).expect(0).stdout().trim().to_owned();

    env.ci(&repo, &["worker", "--hub", hub_s, "--once", "--name", "w"]).expect(0);
    let bad = state_of(&env, &repo, hub_s, poison);
    assert_eq!(bad["state"], "error", "{bad}");
    assert!(bad["reason"].as_str().unwrap().contains("not valid JSON"), "{bad}");
    assert_eq!(state_of(&env, &repo, hub_s, &good)["state"], "passed");
    assert!(env.ci_refs(&hub).iter().all(|(n, _)| n.starts_with("refs/ci/done/")));
}

#[test]
fn a_job_past_its_timeout_is_killed_with_its_children() {
    let env = TestEnv::new();
    let marker = env.path("grandchild.pid");
    let script = format!("sh -c 'trap \\\"\\\" TERM; sleep 30' & echo $! > {}; sleep 30", marker.display());
    let repo = env.project("p", &format!("[job.hang]\nrun = \"{script}\"\ntimeout = \"1s\"\n"));
    env.ci(&repo, &["run"]).expect(1);
    let status = env.ci(&repo, &["status", "--json"]).expect(0).json();
    assert_eq!(status[0]["state"], "timeout");
    let pid = std::fs::read_to_string(&marker).unwrap().trim().to_owned();
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z")).unwrap_or(false);
    assert!(!alive, "grandchild {pid} survived the timeout");
}

#[test]
fn cancel_stops_pending_and_running_jobs() {
    let env = TestEnv::new();
    let started = env.path("started");
    let repo = env.project(
        "p",
        &format!(
            "[job.long]\nrun = \"touch {}; sleep 60\"\n\n[job.later]\nrun = \"true\"\npriority = -1\n",
            started.display()
        ),
    );
    let hub = env.bare_hub("hub.git");
    env.git(&repo, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let hub_s = hub.to_str().unwrap();
    let ids: Vec<String> =
        env.ci(&repo, &["submit", "--hub", hub_s]).expect(0).stdout().lines().map(str::to_owned).collect();
    let (later, long) = (&ids[0], &ids[1]);

    let worker = env.ci_cmd(&repo, &["worker", "--hub", hub_s, "--name", "w", "--jobs", "1"]).spawn().unwrap();
    wait_until(Duration::from_secs(20), "the long job to start", || started.exists());
    env.ci(&repo, &["cancel", "--hub", hub_s, later]).expect(0);
    assert_eq!(state_of(&env, &repo, hub_s, later)["state"], "cancelled");
    let asked = env.ci(&repo, &["cancel", "--hub", hub_s, long]).expect(0);
    assert!(asked.stderr().contains("asked w to stop it"), "{}", asked.stderr());
    wait_until(Duration::from_secs(20), "the running job to be cancelled", || {
        state_of(&env, &repo, hub_s, long)["state"] == "cancelled"
    });
    terminate(worker);
    let mut published = env.published_ids(&hub);
    published.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(published, want);
    assert!(env.ci_refs(&hub).iter().all(|(n, _)| n.starts_with("refs/ci/done/")), "{:?}", env.ci_refs(&hub));
}
