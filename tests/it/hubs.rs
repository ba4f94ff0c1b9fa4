//! A shared hub: clients submit, worker processes run, over every transport.

use std::path::Path;

use crate::env::TestEnv;

const PIPELINE: &str = r#"
[job.ok]
run = "echo ok $GIT_CI_REF"

[job.bad]
run = "exit 7"
"#;

/// Submits from a clone, runs one `worker --once`, checks what users see.
fn submit_work_and_read(env: &TestEnv, clone: &Path, hub: &str, hub_dir: &Path) {
    let submit = env.ci(clone, &["submit", "--hub", hub]).expect(0);
    let ids: Vec<String> = submit.stdout().lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 2, "one id a line on stdout: {}", submit.stdout());
    let pending = env.ci(clone, &["status", "--hub", hub, "--json"]).expect(0).json();
    assert!(pending.as_array().unwrap().iter().all(|j| j["state"] == "pending"), "{pending}");

    env.ci(clone, &["worker", "--hub", hub, "--once", "--name", "w1"]).expect(0);

    let status = env.ci(clone, &["status", "--hub", hub, "--json"]).expect(0).json();
    for job in status.as_array().unwrap() {
        let want = if job["name"] == "ok" { "passed" } else { "failed" };
        assert_eq!(job["state"], want, "{job}");
        assert_eq!(job["ref"], "refs/heads/main");
        assert!(ids.contains(&job["id"].as_str().unwrap().to_owned()));
        for field in ["id", "name", "state", "queue", "commit", "ref", "attempt"] {
            assert!(!job[field].is_null(), "status --json lacks {field}: {job}");
        }
    }
    let ok_id =
        status.as_array().unwrap().iter().find(|j| j["name"] == "ok").unwrap()["id"].as_str().unwrap().to_owned();
    let log = env.ci(clone, &["log", "--hub", hub, &ok_id]).expect(0);
    assert_eq!(log.stdout(), "ok refs/heads/main\n");
    let show = env.ci(clone, &["show", "--hub", hub, &ok_id, "--json"]).expect(0).json();
    assert_eq!(show["worker"], "w1");

    let refs = env.ci_refs(hub_dir);
    assert_eq!(
        refs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["refs/ci/done/w1"],
        "only the done chain is left"
    );
    let mut published = env.published_ids(hub_dir);
    published.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(published, want);
}

fn clone_of(env: &TestEnv, hub_dir: &Path) -> std::path::PathBuf {
    let project = env.project("project", PIPELINE);
    env.git(&project, &["push", "-q", hub_dir.to_str().unwrap(), "main"]);
    let clone = env.path("clone");
    env.git(env.root.path(), &["clone", "-q", hub_dir.to_str().unwrap(), clone.to_str().unwrap()]);
    clone
}

#[test]
fn a_bare_hub_by_path() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let clone = clone_of(&env, &hub);
    submit_work_and_read(&env, &clone, hub.to_str().unwrap(), &hub);
}

#[test]
fn a_hub_by_file_url() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let clone = clone_of(&env, &hub);
    submit_work_and_read(&env, &clone, &format!("file://{}", hub.display()), &hub);
}

#[test]
fn a_hub_over_git_daemon() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let clone = clone_of(&env, &hub);
    let daemon = env.daemon(env.root.path());
    submit_work_and_read(&env, &clone, &daemon.url("hub.git"), &hub);
}

#[test]
fn the_origin_remote_is_the_default_hub_and_wait_reports_results() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let clone = clone_of(&env, &hub);
    let worker = env.spawn_ci(&clone, &["worker", "--name", "bg", "--poll", "100ms"]);
    let passed = env.ci(&clone, &["submit", "--wait", "--job", "ok"]).expect(0);
    assert!(passed.stderr().contains("1 passed, 0 failed"), "{}", passed.stderr());
    env.ci(&clone, &["submit", "--wait", "--job", "bad"]).expect(1);
    let adhoc = env.ci(&clone, &["submit", "--wait", "--run", "test \"$X\" = 1", "--env", "X=1"]).expect(0);
    assert_eq!(adhoc.stdout().lines().count(), 1);
    worker.signal("TERM");
    let (status, _, stderr) = worker.wait();
    assert!(status.success(), "SIGTERM drains and exits 0: {status:?} {stderr}");
}
