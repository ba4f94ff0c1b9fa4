//! Smart-HTTP hubs: lighttpd running `git http-backend`, as an operator
//! serves git over HTTP. Everything a user does over `git daemon` works
//! the same way here, the guard included (it runs under the CGI).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use git_ci_testkit::http::{HttpHub, lighttpd_binary};

use crate::env::{TestEnv, counts, missing, wait_until};

/// lighttpd serving the test's root, or `None` (the test then returns; on
/// CI it fails instead). The CGIs get the test's hermetic git settings.
fn http_hub(env: &TestEnv) -> Option<HttpHub> {
    if lighttpd_binary().is_none() {
        missing("lighttpd, for smart-HTTP hubs (Debian: lighttpd)");
        return None;
    }
    let exec_path = env.git(env.root.path(), &["--exec-path"]);
    let cgi_env: Vec<(String, String)> = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("HOME", env.path("home").display().to_string()),
        ("GIT_CONFIG_GLOBAL", "/dev/null".to_owned()),
        ("GIT_CONFIG_NOSYSTEM", "1".to_owned()),
        ("GIT_CI_CACHE_DIR", env.path("hub-cache").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Some(
        HttpHub::start(&env.path("lighttpd"), env.root.path(), Path::new(&exec_path), &cgi_env)
            .expect("lighttpd starts"),
    )
}

#[test]
fn a_guarded_smart_http_hub_takes_pushes_jobs_waits_logs_and_cancels() {
    let env = TestEnv::new();
    let Some(http) = http_hub(&env) else { return };
    let hub = env.guarded_hub("hub.git");
    let url = http.url("hub.git");
    let project = env.project("p", "[job.test]\nrun = \"echo said-over-http\"\n");
    // The post-receive hook, run by http-backend, queues the branch's job.
    env.git(&project, &["push", "-q", &url, "main"]);
    let queued = env.ci(&project, &["status", "--hub", &url, "--json"]).expect(0).json();
    assert_eq!(queued.as_array().map(Vec::len), Some(1), "the hook queued one job: {queued}");
    let test_id = queued[0]["id"].as_str().unwrap().to_owned();
    let worker = env.spawn_ci(&project, &["worker", "--hub", &url, "--name", "w1", "--poll", "100ms"]);
    // The job's own exit decides `submit --wait`'s.
    let failed = env.ci(&project, &["submit", "--hub", &url, "--run", "exit 7", "--wait", "-q"]);
    assert_eq!(failed.code(), 1, "a failed job: exit 1; {}", failed.stderr());
    env.ci(&project, &["submit", "--hub", &url, "--run", "true", "--wait", "-q"]).expect(0);
    // A job no worker can take, cancelled while it waits.
    let stuck = env.ci(&project, &["submit", "--hub", &url, "--run", "true", "--require", "gpu=a100"]).expect(0);
    let stuck = stuck.stdout().trim().to_owned();
    env.ci(&project, &["cancel", "--hub", &url, &stuck]).expect(0);
    wait_until(Duration::from_secs(60), "the hook's job to pass", || {
        let shown = env.ci(&project, &["show", "--hub", &url, "--json", &test_id]).expect(0).json();
        shown["state"] == "passed"
    });
    let log = env.ci(&project, &["log", "--hub", &url, &test_id]).expect(0).stdout();
    assert!(log.contains("said-over-http"), "{log}");
    let cancelled = env.ci(&project, &["show", "--hub", &url, "--json", &stuck]).expect(0).json();
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    worker.signal("TERM");
    let (status, _, stderr) = worker.wait_within(Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("refused"), "the guard refused a push of the protocol: {stderr}");
    assert!(http.requests() > 10, "the work went over HTTP: {} requests", http.requests());
    let live: Vec<_> = env
        .ci_refs(&hub)
        .into_iter()
        .filter(|(n, _)| ["queue/", "pins/", "claims/"].iter().any(|p| n.starts_with(&format!("refs/ci/{p}"))))
        .collect();
    assert!(live.is_empty(), "leftover refs: {live:?}");
}

/// Three workers of two slots and a stream of cancels over one smart-HTTP
/// hub with the guard: every job runs once at most, none after a cancel
/// that came before its claim, each is published once, none is lost.
#[test]
fn racing_workers_and_cancels_over_smart_http_run_and_publish_every_job_once() {
    const JOBS: usize = 48;
    let env = TestEnv::new();
    let Some(http) = http_hub(&env) else { return };
    let hub = env.guarded_hub("hub.git");
    let url = http.url("hub.git");
    let runs = env.path("runs.txt");
    let script = format!("echo $GIT_CI_JOB_ID >> {}", runs.display());
    let pipeline: String = (0..JOBS).map(|i| format!("[job.j{i:02}]\nrun = \"{script}\"\n")).collect();
    let project = env.project("p", &pipeline);
    env.git(&project, &["push", "-q", &url, "main"]);
    let status = env.ci(&project, &["status", "--hub", &url, "--json", "--limit", "1000"]).expect(0).json();
    let ids: Vec<String> = status.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), JOBS);
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let name = format!("h{i}");
            let args = ["worker", "--hub", &url, "--once", "--name", &name, "--jobs", "2", "--poll", "100ms"];
            // A lease no run outlives: a steal after a lease is a legitimate second run.
            env.spawn_ci(&project, &[&args[..], &["--lease", "10m"]].concat())
        })
        .collect();
    // Cancels of every fourth job, racing the claims.
    for id in ids.iter().step_by(4) {
        env.ci(&project, &["cancel", "--hub", &url, id]).expect(0);
    }
    for w in workers {
        let (status, _, stderr) = w.wait_within(Duration::from_secs(240));
        assert!(status.success(), "{stderr}");
        assert!(!stderr.contains("refused"), "the guard refused a push of the protocol: {stderr}");
    }
    let ran = counts(&runs);
    let mut cancelled_unrun = 0;
    let mut published: HashMap<String, usize> = HashMap::new();
    for id in env.published_ids(&hub) {
        *published.entry(id).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(published.get(id), Some(&1), "{id} published {:?} times", published.get(id));
        let shown = env.ci(&project, &["show", "--hub", &url, "--json", id]).expect(0).json();
        let reason = shown["reason"].as_str().unwrap_or_default();
        match shown["state"].as_str().unwrap() {
            "passed" => assert_eq!(ran.get(id), Some(&1), "{id} passed: it ran once"),
            "cancelled" if reason.contains("before it started") => {
                assert_eq!(ran.get(id), None, "{id} was cancelled before it started, yet it ran");
                cancelled_unrun += 1;
            }
            "cancelled" => assert!(ran.get(id).copied().unwrap_or(0) <= 1, "{id} ran twice"),
            other => panic!("{id} ended {other}: {shown}"),
        }
    }
    assert_eq!(published.len(), JOBS, "no job lost, none invented");
    assert!(cancelled_unrun > 0, "no cancel came before its job's claim: the race was not run");
    let kept = ["refs/ci/done/", "refs/ci/workers/", "refs/ci/cancel/"];
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !kept.iter().any(|k| n.starts_with(k))).collect();
    assert!(live.is_empty(), "leftover refs: {live:?}");
}
