//! Agents in any language (issue 20 item 3): the plumbing commands
//! `claim`, `heartbeat`, `append-log` and `complete`, and the Python agent
//! of examples/agent.py beside a normal worker.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::env::{TestEnv, wait_until};
use crate::race::{assert_each_published_once, counting_project};

fn show(env: &TestEnv, dir: &Path, hub: &str, id: &str) -> serde_json::Value {
    env.ci(dir, &["show", "--hub", hub, id, "--json"]).expect(0).json()
}

/// `python3 examples/agent.py ARGS` with the built git-ci first on PATH.
fn python_agent(env: &TestEnv, dir: &Path, args: &[&str]) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/agent.py");
    let bin = Path::new(env!("CARGO_BIN_EXE_git-ci")).parent().unwrap().to_path_buf();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path))).unwrap();
    let mut cmd = Command::new("python3");
    env.hermetic(&mut cmd);
    cmd.env("PATH", path).current_dir(dir).arg(script).args(args);
    cmd
}

fn have_python() -> bool {
    Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn the_python_agent_beside_a_worker_over_git_daemon_loses_and_doubles_nothing() {
    const JOBS: usize = 24;
    if !have_python() {
        return crate::env::missing("python3");
    }
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let (project, runs) = counting_project(&env, JOBS);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let ids: Vec<String> =
        env.ci(&project, &["submit", "--hub", &url]).expect(0).stdout().lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), JOBS);
    let agent = env.spawn(python_agent(&env, &project, &["--hub", &url, "--name", "py1", "--idle-exit", "3"]));
    wait_until(Duration::from_secs(60), "the agent publishes a job", || {
        env.published_ids(&hub).len() >= 2 || !agent.stderr().is_empty()
    });
    assert!(agent.stderr().is_empty(), "{}", agent.stderr());
    let worker = env.spawn_ci(&project, &["worker", "--hub", &url, "--name", "w1", "--once", "--poll", "100ms"]);
    let (w, _, werr) = worker.wait_within(Duration::from_secs(120));
    assert!(w.success(), "{werr}");
    let (a, out, err) = agent.wait_within(Duration::from_secs(60));
    assert!(a.success() && err.is_empty(), "{out}\n{err}");
    assert_each_published_once(&env, &hub, &ids, &runs);
    let ran = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(ran.lines().count(), JOBS, "each job ran exactly once: {ran}");
    let by = |who: &str| ids.iter().filter(|id| show(&env, &project, &url, id)["worker"] == who).count();
    let (by_agent, by_worker) = (by("py1"), by("w1"));
    assert_eq!(by_agent + by_worker, JOBS);
    assert!(by_agent >= 2, "the agent ran {by_agent}, the worker {by_worker}");
    assert_eq!(out.lines().filter(|l| l.ends_with(": passed")).count(), by_agent, "{out}");
}

/// The lease, the live log, a steal, and a stale claim that cannot publish,
/// on a hub with the guard installed.
#[test]
fn a_claim_is_held_by_heartbeats_and_once_stolen_cannot_publish() {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    let (project, _) = counting_project(&env, 1);
    let id = env.ci(&project, &["submit", "--hub", hub_s]).expect(0).stdout().trim().to_owned();
    let checkout = env.path("co");
    let args = ["claim", "--hub", hub_s, "--queue", "default", "--name", "lab-1", "--lease", "2s", "--json"];
    let claimed = env.ci(&project, &[&args[..], &["--checkout", checkout.to_str().unwrap()]].concat()).expect(0).json();
    assert_eq!(claimed["id"], id.as_str());
    assert_eq!(claimed["job"]["name"], "j00");
    assert_eq!(claimed["attempt"], 1);
    assert!(checkout.join(".git-ci.toml").is_file(), "the commit is checked out");
    let token = claimed["token"].as_str().unwrap().to_owned();
    env.ci(&project, &args).expect(4);

    // Heartbeats hold it past several leases while a worker looks on.
    let worker = env.spawn_ci(&project, &["worker", "--hub", hub_s, "--name", "w1", "--poll", "100ms"]);
    let mut last = token.clone();
    for _ in 0..10 {
        let beat = env.ci(&project, &["heartbeat", &id, "--json"]).expect(0).json();
        assert_eq!(beat["cancel_requested"], false);
        assert_ne!(beat["token"], last.as_str(), "each renewal is a new token");
        last = beat["token"].as_str().unwrap().to_owned();
        std::thread::sleep(Duration::from_millis(500));
    }
    let doc = show(&env, &project, hub_s, &id);
    assert_eq!((doc["state"].as_str(), doc["claim"]["worker"].as_str()), (Some("running"), Some("lab-1")), "{doc}");
    let log = env.ci_cmd(&project, &["append-log", &id]).stdin(std::process::Stdio::piped()).spawn().unwrap();
    feed(log, b"flashing the board\n");
    let live = env.git(&hub, &["cat-file", "blob", &format!("refs/ci/logs/{id}")]);
    assert_eq!(live, "git-ci-live-log 19\nflashing the board", "the live log, as workers write it");

    // No heartbeat for a lease: the worker takes it over and runs it.
    wait_until(Duration::from_secs(30), "the worker steals the job", || {
        show(&env, &project, hub_s, &id)["state"] == "passed"
    });
    let doc = show(&env, &project, hub_s, &id);
    assert_eq!((doc["worker"].as_str(), doc["attempt"].as_u64()), (Some("w1"), Some(2)), "{doc}");
    let late = env.ci(&project, &["complete", &id, "--status", "passed"]).expect(5);
    assert!(late.stderr().contains(&format!("the claim on job {id} is lost")), "{}", late.stderr());
    let beat = env.ci(&project, &["heartbeat", &id, "--token", &last, "--hub", hub_s]).expect(5);
    assert!(beat.stderr().contains("is lost"), "{}", beat.stderr());
    assert_eq!(env.published_ids(&hub), [id.as_str()], "published once, by the worker");
    worker.signal("TERM");
    worker.wait_within(Duration::from_secs(20));
}

fn feed(mut child: std::process::Child, bytes: &[u8]) {
    use std::io::Write;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn an_agent_publishes_its_log_junit_and_artifacts() {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    let (project, _) = counting_project(&env, 1);
    let id = env.ci(&project, &["submit", "--hub", hub_s]).expect(0).stdout().trim().to_owned();
    env.ci(&project, &["claim", "--hub", hub_s, "--queue", "default", "--name", "lab-2"]).expect(0);
    for chunk in [&b"line one\n"[..], b"line two\n"] {
        feed(env.ci_cmd(&project, &["append-log", &id]).stdin(std::process::Stdio::piped()).spawn().unwrap(), chunk);
    }
    std::fs::create_dir_all(project.join("out")).unwrap();
    std::fs::write(project.join("out/fw.bin"), b"firmware").unwrap();
    let junit = r#"<testsuite><testcase name="a"/><testcase name="b"><failure/></testcase></testsuite>"#;
    std::fs::write(project.join("report.xml"), junit).unwrap();
    let done = env.ci(
        &project,
        &[
            "complete",
            &id,
            "--status",
            "failed",
            "--exit-code",
            "3",
            "--junit",
            "report.xml",
            "--artifact",
            "out/fw.bin",
        ],
    );
    assert_eq!(done.expect(0).stdout().trim(), format!("{id} failed"));
    let doc = show(&env, &project, hub_s, &id);
    assert_eq!((doc["state"].as_str(), doc["exit_code"].as_i64()), (Some("failed"), Some(3)), "{doc}");
    assert_eq!(doc["worker"], "lab-2");
    assert_eq!(doc["tests"], serde_json::json!({"total": 2, "passed": 1, "failed": 1, "skipped": 0}));
    assert_eq!(doc["artifacts"][0]["path"], "out/fw.bin");
    let log = env.ci(&project, &["log", "--hub", hub_s, &id]).expect(0).stdout();
    assert!(log.contains("line one\nline two\n"), "{log}");
    let fetched = env.path("fw.bin");
    env.ci(&project, &["artifact", "--hub", hub_s, &id, "out/fw.bin", "-o", fetched.to_str().unwrap()]).expect(0);
    assert_eq!(std::fs::read(&fetched).unwrap(), b"firmware");
    let again = env.ci(&project, &["complete", &id, "--status", "passed"]).expect(2);
    assert!(again.stderr().contains("holds no claim on job"), "{}", again.stderr());
    assert!(env.ci_refs(&hub).iter().all(|(n, _)| n.starts_with("refs/ci/done/")), "{:?}", env.ci_refs(&hub));
}
