//! A worker hears every stop request, as a terminal or a service manager
//! sends it, and holds its name alone (issue 14, item 4).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use crate::env::{TestEnv, free_port, wait_until};

fn state(env: &TestEnv, repo: &Path, hub: &str, id: &str) -> serde_json::Value {
    env.ci(repo, &["show", "--hub", hub, id, "--json"]).expect(0).json()["state"].clone()
}

fn workers(env: &TestEnv, hub: &Path) -> Vec<String> {
    env.ci_refs(hub).into_iter().map(|(n, _)| n).filter(|n| n.starts_with("refs/ci/workers/")).collect()
}

/// Ctrl-C at a terminal reaches git and git-ci (one process group), and
/// git passes its copy on to git-ci: one keypress, two SIGINTs. It must
/// drain (the job passes), not cancel.
#[test]
fn one_ctrl_c_at_git_ci_worker_lets_the_running_job_finish() {
    let env = TestEnv::new();
    let started = env.path("started");
    let (repo, hub) = env.project_on_hub(&format!("[job.slow]\nrun = \"touch {}; sleep 2\"\n", started.display()));
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let mut cmd = env.git_ci_cmd(&repo, &["worker", "--hub", &hub, "--name", "w"]);
    cmd.process_group(0);
    let worker = env.spawn(cmd);
    wait_until(Duration::from_secs(20), "the job to start", || started.exists());
    worker.signal_group("INT");
    // How far apart the terminal's SIGINT and git's copy of it arrive is
    // up to the scheduler (copies that land before git-ci's signal thread
    // wakes merge into one): a loaded machine spreads them out, as here.
    std::thread::sleep(Duration::from_millis(200));
    worker.signal_group("INT");
    let (_, _, stderr) = worker.wait_within(Duration::from_secs(30));
    assert_eq!(state(&env, &repo, &hub, &id), "passed", "{stderr}");
    assert!(!stderr.contains("cancelled"), "{stderr}");
}

/// Before it ever reached its hub, a worker waits in a backoff: a single
/// SIGTERM (what systemd sends) must end it, at once.
#[test]
fn a_worker_whose_hub_is_down_stops_on_the_first_sigterm() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.a]\nrun = \"true\"\n");
    let hub = format!("git://127.0.0.1:{}/hub.git", free_port());
    let worker = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w"]);
    wait_until(Duration::from_secs(20), "a failed try", || worker.stderr().matches("unreachable").count() >= 2);
    worker.signal("TERM");
    let (status, _, stderr) = worker.wait_within(Duration::from_secs(5));
    assert!(status.success(), "{status:?}: {stderr}");
}

/// A process-group SIGTERM kills a registration push the hub has applied
/// but not yet answered (its post-receive hook is slow): the worker's idea
/// of its registration is then stale, and leaving must still remove it.
#[test]
fn a_busy_worker_stopped_with_its_group_removes_its_registration() {
    let env = TestEnv::new();
    let release = env.path("release");
    let (repo, hub) = env.project_on_hub(&format!(
        "[job.slow]\nrun = \"for i in $(seq 600); do test -f {} && break; sleep 0.05; done\"\n",
        release.display()
    ));
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let mark = env.path("registered-running");
    let hook = format!(
        "#!/bin/sh\nwhile read old new ref; do\n  case \"$ref\" in refs/ci/workers/*)\n    \
         if git cat-file -p \"$new\" | grep -q {id}; then touch {}; sleep 3; fi;;\n  esac\ndone\n",
        mark.display()
    );
    let hook_path = Path::new(&hub).join("hooks/post-receive");
    std::fs::write(&hook_path, hook).unwrap();
    std::process::Command::new("chmod").arg("+x").arg(&hook_path).status().unwrap();
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");

    let mut cmd = env.ci_cmd(&repo, &["worker", "--hub", &url, "--name", "w", "--lease", "6s"]);
    cmd.process_group(0);
    let worker = env.spawn(cmd);
    wait_until(Duration::from_secs(30), "the registration to list the job", || mark.exists());
    worker.signal_group("TERM");
    wait_until(Duration::from_secs(20), "the worker to drain", || worker.stderr().contains("stopping"));
    std::fs::write(&release, "").unwrap();
    let (status, _, stderr) = worker.wait_within(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(state(&env, &repo, &hub, &id), "passed", "{stderr}");
    assert_eq!(workers(&env, Path::new(&hub)), Vec::<String>::new(), "{stderr}");
}

/// Workers started on one machine without a name get one each.
#[test]
fn two_workers_without_a_name_take_two_names() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.a]\nrun = \"true\"\n");
    let a = env.spawn_ci(&repo, &["worker", "--hub", &hub]);
    let b = env.spawn_ci(&repo, &["worker", "--hub", &hub]);
    wait_until(Duration::from_secs(20), "two registrations", || workers(&env, Path::new(&hub)).len() == 2);
    for w in [a, b] {
        w.signal("TERM");
        let (status, _, stderr) = w.wait_within(Duration::from_secs(20));
        assert!(status.success(), "{stderr}");
    }
}

/// A name another live process holds is refused with exit 2 naming it:
/// on this machine (its lock), or seen on the hub (here through another
/// cache directory, as from another machine).
#[test]
fn a_name_another_live_worker_holds_is_refused() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.a]\nrun = \"true\"\n");
    let first = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w"]);
    wait_until(Duration::from_secs(20), "the first to register", || !workers(&env, Path::new(&hub)).is_empty());
    let pid = format!("pid {}", first.id());

    let here = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w"]);
    let (status, _, stderr) = here.wait_within(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&pid) && stderr.contains("\"w\""), "{stderr}");

    let mut elsewhere = env.ci_cmd(&repo, &["worker", "--hub", &hub, "--name", "w"]);
    elsewhere.env("GIT_CI_CACHE_DIR", env.path("other-cache"));
    let elsewhere = env.spawn(elsewhere);
    let (status, _, stderr) = elsewhere.wait_within(Duration::from_secs(20));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&pid) && stderr.contains("on the hub"), "{stderr}");

    first.signal("TERM");
    assert!(first.wait_within(Duration::from_secs(20)).0.success());
    // Gone, the name is free again.
    env.ci(&repo, &["worker", "--hub", &hub, "--name", "w", "--once"]).expect(0);
}
