//! Workers under faults: dead workers, poisoned jobs, timeouts, cancels.

use std::process::Command;
use std::time::Duration;

use crate::env::{Bg, TestEnv, wait_until};

fn state_of(env: &TestEnv, repo: &std::path::Path, hub: &str, id: &str) -> serde_json::Value {
    env.ci(repo, &["show", "--hub", hub, id, "--json"]).expect(0).json()
}

fn terminate(worker: Bg) {
    worker.signal("TERM");
    let (status, _, stderr) = worker.wait();
    assert!(status.success(), "a worker exits 0 on SIGTERM: {stderr}");
}

#[test]
fn a_killed_workers_job_is_stolen_after_its_lease_and_published_once() {
    let env = TestEnv::new();
    let pids = env.path("pids");
    let script = format!(
        "echo $$ >> {}; if [ \\\"$GIT_CI_ATTEMPT\\\" = 1 ]; then sleep 20; fi; echo attempt $GIT_CI_ATTEMPT",
        pids.display()
    );
    let repo = env.project("p", &format!("[job.slow]\nrun = \"{script}\"\n"));
    let hub = env.bare_hub("hub.git");
    env.git(&repo, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let hub_s = hub.to_str().unwrap();
    let id = env.ci(&repo, &["submit", "--hub", hub_s]).expect(0).stdout().trim().to_owned();

    let first = env.spawn_ci(&repo, &["worker", "--hub", hub_s, "--name", "doomed", "--lease", "2s"]);
    wait_until(Duration::from_secs(20), "the first attempt to start", || pids.exists());
    first.signal("KILL");
    first.wait();

    let second = env.spawn_ci(&repo, &["worker", "--hub", hub_s, "--name", "heir", "--lease", "2s", "--poll", "100ms"]);
    wait_until(Duration::from_secs(30), "the job to be stolen and finished", || {
        state_of(&env, &repo, hub_s, &id)["state"] == "passed"
    });
    terminate(second);
    let show = state_of(&env, &repo, hub_s, &id);
    assert_eq!(show["attempt"], 2, "{show}");
    assert_eq!(show["worker"], "heir");
    assert_eq!(env.published_ids(&hub), std::slice::from_ref(&id));
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !n.starts_with("refs/ci/done/")).collect();
    assert_eq!(live.len(), 1, "only the dead worker's registration is left: {live:?}");
    assert_eq!(live[0].0, "refs/ci/workers/doomed");
    // The first attempt's job lost its worker and ends by itself; never
    // signal a group by a remembered id (pids wrap: it may be anyone's now).
}

#[test]
fn a_malformed_job_is_published_as_error_and_the_worker_goes_on() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.fine]\nrun = \"true\"\n");
    let hub = env.bare_hub("hub.git");
    env.git(&repo, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let hub_s = hub.to_str().unwrap();
    let huge = "x".repeat(100 << 20);
    let poisons = [
        ("20261122T000000000-000000000001", "this is { not json".to_owned(), "not valid JSON"),
        ("20261122T000000000-000000000002", r#"{"version": 2, "id": "x"}"#.to_owned(), "version 2"),
        ("20261122T000000000-000000000003", r#"{"version": 1}"#.to_owned(), "missing field"),
        ("20261122T000000000-000000000004", huge, "over the 65536-byte limit"),
    ];
    for (id, doc, _) in &poisons {
        let file = env.path(id);
        std::fs::write(&file, doc).unwrap();
        let blob = env.git(&hub, &["hash-object", "-w", file.to_str().unwrap()]);
        env.git(&hub, &["update-ref", &format!("refs/ci/queue/default/{id}"), &blob]);
    }
    let good = env.ci(&repo, &["submit", "--hub", hub_s]).expect(0).stdout().trim().to_owned();
    // A well-formed job copied under another job's ref: a hub without the
    // guard takes it, the worker must not.
    let copy = "20261122T000000000-000000000005";
    let good_blob = env.git(&hub, &["rev-parse", &format!("refs/ci/queue/default/{good}")]);
    env.git(&hub, &["update-ref", &format!("refs/ci/queue/default/{copy}"), &good_blob]);

    env.ci(&repo, &["worker", "--hub", hub_s, "--once", "--name", "w"]).expect(0);
    let copied = state_of(&env, &repo, hub_s, copy);
    assert_eq!(copied["state"], "error", "{copied}");
    assert!(copied["reason"].as_str().unwrap().contains("not the ref's"), "{copied}");
    for (id, _, why) in &poisons {
        let bad = state_of(&env, &repo, hub_s, id);
        assert_eq!(bad["state"], "error", "{bad}");
        assert!(bad["reason"].as_str().unwrap().contains(why), "{why}: {bad}");
    }
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

    let worker = env.spawn_ci(&repo, &["worker", "--hub", hub_s, "--name", "w", "--jobs", "1"]);
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

#[test]
fn a_paused_worker_whose_job_was_stolen_publishes_nothing() {
    let env = TestEnv::new();
    let attempts = env.path("attempts");
    let script = format!(
        "echo $GIT_CI_ATTEMPT >> {}; if [ $GIT_CI_ATTEMPT = 1 ]; then for i in $(seq 100); do sleep 0.1; done; fi",
        attempts.display()
    );
    let (repo, hub) = env.project_on_hub(&format!("[job.slow]\nrun = \"{script}\"\n"));
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let paused = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "sleepy", "--lease", "2s"]);
    wait_until(Duration::from_secs(20), "the first attempt", || attempts.exists());
    paused.signal("STOP");
    let heir = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "heir", "--lease", "2s", "--poll", "100ms"]);
    wait_until(Duration::from_secs(30), "the steal", || state_of(&env, &repo, &hub, &id)["state"] == "passed");
    paused.signal("CONT");
    wait_until(Duration::from_secs(20), "the paused worker to notice", || paused.stderr().contains("taken over"));
    terminate(paused);
    terminate(heir);
    let doc = state_of(&env, &repo, &hub, &id);
    assert_eq!((doc["worker"].as_str(), doc["attempt"].as_u64()), (Some("heir"), Some(2)), "{doc}");
    assert_eq!(env.published_ids(std::path::Path::new(&hub)), [id], "published once");
}

#[test]
fn a_job_whose_claims_keep_expiring_ends_as_error() {
    let env = TestEnv::new();
    let started = env.path("started");
    let (repo, hub) = env
        .project_on_hub(&format!("[job.killer]\nrun = \"touch {}; sleep 30\"\nmax_attempts = 1\n", started.display()));
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let victim = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "victim", "--lease", "1s"]);
    wait_until(Duration::from_secs(20), "the job to start", || started.exists());
    victim.signal("KILL");
    victim.wait();
    let judge = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "judge", "--lease", "1s", "--poll", "100ms"]);
    wait_until(Duration::from_secs(30), "the verdict", || state_of(&env, &repo, &hub, &id)["state"] == "error");
    terminate(judge);
    let doc = state_of(&env, &repo, &hub, &id);
    assert!(doc["reason"].as_str().unwrap().contains("gave up after 1 attempts"), "{doc}");
}

#[test]
fn a_hub_outage_mid_job_loses_nothing() {
    let env = TestEnv::new();
    let (started, release) = (env.path("started"), env.path("release"));
    let script = format!(
        "touch {}; for i in $(seq 600); do test -f {} && break; sleep 0.05; done; echo done",
        started.display(),
        release.display()
    );
    let (repo, hub) = env.project_on_hub(&format!("[job.outage]\nrun = \"{script}\"\n"));
    let daemon = env.daemon(env.root.path());
    let (port, url) = (daemon.port(), daemon.url("hub.git"));
    let id = env.ci(&repo, &["submit", "--hub", &url]).expect(0).stdout().trim().to_owned();
    let worker = env.spawn_ci(&repo, &["worker", "--hub", &url, "--name", "w", "--poll", "100ms", "--lease", "3s"]);
    wait_until(Duration::from_secs(20), "the job to start", || started.exists());
    drop(daemon);
    std::fs::write(&release, "").unwrap();
    wait_until(Duration::from_secs(30), "the worker to say it waits", || worker.stderr().contains("unreachable"));
    let _back = env.daemon_on(env.root.path(), port);
    wait_until(Duration::from_secs(60), "the result", || state_of(&env, &repo, &hub, &id)["state"] == "passed");
    terminate(worker);
    assert_eq!(env.published_ids(std::path::Path::new(&hub)), [id]);
}

#[test]
fn a_flood_of_output_is_capped_head_and_tail() {
    let env = TestEnv::new();
    let script = "echo FIRST; yes x | head -c 300000000; echo; echo LAST";
    let (repo, hub) = env.project_on_hub(&format!("[job.flood]\nrun = \"{script}\"\n"));
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--log-cap", "1"]).expect(0);
    let doc = state_of(&env, &repo, &hub, &id);
    assert_eq!(doc["state"], "passed", "{doc}");
    assert_eq!(doc["log_truncated"], true);
    assert!(doc["log_bytes"].as_u64().unwrap() < 1_100_000, "{doc}");
    let log = env.ci(&repo, &["log", "--hub", &hub, &id]).expect(0).stdout();
    assert!(log.starts_with("FIRST\nx\nx\n"), "head kept");
    assert!(log.ends_with("x\nx\n\nLAST\n"), "tail kept");
    assert!(log.contains("log truncated"), "a visible marker");
}

#[test]
fn signed_mode_runs_only_signed_commits_as_they_define_their_jobs() {
    let env = TestEnv::new();
    let key = env.path("key");
    env.git(env.root.path(), &["version"]);
    let keygen = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status().unwrap();
    assert!(keygen.success());
    let public = std::fs::read_to_string(env.path("key.pub")).unwrap();
    let signers = env.path("allowed_signers");
    std::fs::write(&signers, format!("committer@example.com namespaces=\"git\" {public}")).unwrap();

    let (repo, hub) = env.project_on_hub("[job.build]\nrun = \"echo built\"\n");
    let key_s = key.to_str().unwrap();
    let sign = ["-c", "gpg.format=ssh", "-c", &format!("user.signingkey={key_s}")];
    let mut args: Vec<&str> = sign.to_vec();
    args.extend(["commit", "-q", "-S", "--allow-empty", "-m", "signed"]);
    env.git(&repo, &args);
    let signed = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let forged = env.ci(&repo, &["submit", "--hub", &hub, "--run", "echo evil"]).expect(0).stdout().trim().to_owned();
    // A definition from a file of someone's work tree, not the signed one.
    std::fs::write(repo.join("other.toml"), "[job.build]\nrun = \"echo evil\"\n").unwrap();
    let elsewhere =
        env.ci(&repo, &["submit", "--hub", &hub, "--config", "other.toml"]).expect(0).stdout().trim().to_owned();
    env.git(&repo, &["commit", "-q", "--allow-empty", "-m", "unsigned"]);
    let unsigned = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();

    let signers_s = signers.to_str().unwrap();
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--require-signed", "--allowed-signers", signers_s]).expect(0);
    let signed_doc = state_of(&env, &repo, &hub, &signed);
    assert_eq!(signed_doc["state"], "passed", "{signed_doc}");
    let forged_doc = state_of(&env, &repo, &hub, &forged);
    assert_eq!(forged_doc["state"], "error");
    assert!(forged_doc["reason"].as_str().unwrap().contains("defines no job \"adhoc\""), "{forged_doc}");
    let elsewhere_doc = state_of(&env, &repo, &hub, &elsewhere);
    assert_eq!(elsewhere_doc["state"], "error");
    assert!(elsewhere_doc["reason"].as_str().unwrap().contains("defined by path:other.toml"), "{elsewhere_doc}");
    let unsigned_doc = state_of(&env, &repo, &hub, &unsigned);
    assert_eq!(unsigned_doc["state"], "error");
    assert!(unsigned_doc["reason"].as_str().unwrap().contains("not signed by an allowed signer"), "{unsigned_doc}");
}

/// git applies an `--atomic` push only in part when some of its refs fail
/// a check made before the transaction: a connectivity check that raced
/// another push's ref deletion (seen with many workers on one git daemon),
/// or, as here, a hidden ref. The job's queue, pin and claim refs went; its
/// result did not. The worker must finish that publish, not drop the job.
#[test]
fn a_publish_the_hub_applied_only_in_part_is_finished_later() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.one]\nrun = \"echo one\"\n");
    let hub = env.bare_hub("hub.git");
    env.git(&repo, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    env.git(&hub, &["config", "receive.hideRefs", "refs/ci/done/w1"]);
    let id = env.ci(&repo, &["submit", "--hub", &url]).expect(0).stdout().trim().to_owned();
    let queue_ref = format!("refs/ci/queue/default/{id}");

    let worker = env.spawn_ci(&repo, &["worker", "--hub", &url, "--name", "w1", "--poll", "100ms"]);
    wait_until(Duration::from_secs(30), "the job's refs to go in a partial publish", || {
        !env.ci_refs(&hub).iter().any(|(n, _)| *n == queue_ref)
    });
    assert!(env.published_ids(&hub).is_empty(), "the hidden done ref took no result");
    env.git(&hub, &["config", "--unset", "receive.hideRefs"]);
    wait_until(Duration::from_secs(60), "the worker to publish the result after all", || {
        !env.published_ids(&hub).is_empty()
    });
    terminate(worker);
    assert_eq!(env.published_ids(&hub), std::slice::from_ref(&id), "published once");
    assert_eq!(state_of(&env, &repo, &url, &id)["state"], "passed");
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !n.starts_with("refs/ci/done/")).collect();
    assert!(live.iter().all(|(n, _)| n.starts_with("refs/ci/workers/")), "leftover refs: {live:?}");
}
