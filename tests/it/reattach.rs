//! Waiting survives the hub going away, and `git ci wait ID...` picks up
//! jobs queued earlier, with the exit codes of `submit --wait` (issue 17,
//! item 7).

use std::time::{Duration, Instant};

use crate::env::{TestEnv, wait_until};

#[test]
fn submit_wait_outlives_a_three_second_hub_outage_and_ends_with_the_jobs_code() {
    let env = TestEnv::new();
    let release = env.path("release");
    let script = format!("for i in $(seq 600); do test -f {} && exit 0; sleep 0.05; done; exit 9", release.display());
    let (repo, hub) = env.project_on_hub(&format!("[job.slow]\nrun = \"{script}\"\n"));
    let daemon = env.daemon(env.root.path());
    let (port, url) = (daemon.port(), daemon.url("hub.git"));
    let waiter = env.spawn_ci(&repo, &["submit", "--hub", &url, "--wait"]);
    wait_until(Duration::from_secs(30), "the job id", || waiter.stdout().trim().len() > 10);
    // The worker reads the hub's path, so the job goes on while the daemon
    // the waiter talks to is down.
    let worker = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w", "--once"]);
    wait_until(Duration::from_secs(30), "the waiter to see the job run", || waiter.stderr().contains("running"));
    drop(daemon);
    let down = Instant::now();
    std::fs::write(&release, "").unwrap();
    let (status, _, err) = worker.wait_within(Duration::from_secs(30));
    assert!(status.success(), "the worker: {err}");
    wait_until(Duration::from_secs(10), "the waiter to notice", || waiter.stderr().contains("is not answering"));
    std::thread::sleep(Duration::from_secs(3).saturating_sub(down.elapsed()));
    let _back = env.daemon_on(env.root.path(), port);
    let (status, _, err) = waiter.wait_within(Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "the job passed, so does the waiter:\n{err}");
    assert_eq!(err.matches("is not answering").count(), 1, "said once while away:\n{err}");
    assert!(err.contains(&format!("hub {url} is back")), "{err}");
    assert!(err.contains("passed") && err.contains("1 passed, 0 failed"), "{err}");
}

#[test]
fn git_ci_wait_reattaches_with_the_exit_codes_of_submit_wait() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.noop]\nrun = \"true\"\n");
    let submit = |script: &str| {
        let out = env.ci(&repo, &["submit", "--hub", &hub, "--run", script]).expect(0).stdout();
        out.trim().to_owned()
    };
    let (good, bad) = (submit("true"), submit("exit 1"));
    // A wait started while the jobs are pending follows them to the end.
    let early = env.spawn_ci(&repo, &["wait", "--hub", &hub, &good]);
    wait_until(Duration::from_secs(30), "the waiter to see the job pending", || early.stderr().contains("pending"));
    env.ci(&repo, &["worker", "--hub", &hub, "--name", "w", "--once"]).expect(0);
    let (status, _, err) = early.wait_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{err}");

    env.ci(&repo, &["wait", "--hub", &hub, &good]).expect(0);
    let failed = env.ci(&repo, &["wait", "--hub", &hub, &bad]).expect(1);
    assert!(failed.stderr().contains("0 passed, 1 failed"), "{}", failed.stderr());
    env.ci(&repo, &["wait", "--hub", &hub, &good, &bad, &good]).expect(1);

    let unknown = "20261122T040704123-0123456789ab";
    let missing = env.ci(&repo, &["wait", "--hub", &hub, &good, unknown]).expect(2);
    missing.assert_clean_error();
    assert!(missing.stderr().contains(&format!("no job {unknown} on the hub")), "{}", missing.stderr());
    env.ci(&repo, &["wait", "--hub", &hub, "not-an-id"]).expect(2).assert_clean_error();
    let gone = format!("git://127.0.0.1:{}/hub.git", crate::env::free_port());
    env.ci(&repo, &["wait", "--hub", &gone, &good]).expect(3).assert_clean_error();
}
