//! What a worker does besides running scripts: outputs, secrets, labels,
//! parallel slots, signals, live logs, registration, trust.

use std::time::Duration;

use crate::env::{TestEnv, wait_until};

fn show(env: &TestEnv, repo: &std::path::Path, hub: &str, id: &str) -> serde_json::Value {
    env.ci(repo, &["show", "--hub", hub, id, "--json"]).expect(0).json()
}

#[test]
fn artifacts_and_junit_are_published_and_fetched_back() {
    let env = TestEnv::new();
    let junit = r#"<testsuite name="s"><testcase name="a"/><testcase name="b"><failure message="no"/></testcase><testcase name="c"><skipped/></testcase></testsuite>"#;
    let script = format!(
        "mkdir -p out; echo payload > out/app.bin; ln -s /etc/passwd out/leak; printf '%s' '{junit}' > report.xml"
    );
    let pipeline = format!(
        "[job.build]\nrun = \"\"\"{script}\"\"\"\nartifacts = [\"out/*\", \"../outside\"]\njunit = [\"report.xml\"]\n"
    );
    let (repo, hub) = env.project_on_hub(&pipeline);
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w"]).expect(0);
    let doc = show(&env, &repo, &hub, &id);
    assert_eq!(doc["state"], "passed", "{doc}");
    assert_eq!(doc["tests"], serde_json::json!({"total": 3, "passed": 1, "failed": 1, "skipped": 1}));
    let artifacts = doc["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 1, "the symlink out of the checkout is refused: {doc}");
    assert_eq!(artifacts[0]["path"], "out/app.bin");
    assert_eq!(artifacts[0]["size"], 8);

    let fetched = env.path("app.bin");
    env.ci(&repo, &["artifact", "--hub", &hub, &id, "out/app.bin", "-o", fetched.to_str().unwrap()]).expect(0);
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), "payload\n");
    let missing = env.ci(&repo, &["artifact", "--hub", &hub, &id, "nope"]).expect(2);
    assert!(missing.stderr().contains("out/app.bin"), "lists what exists: {}", missing.stderr());

    let log = env.ci(&repo, &["log", "--hub", &hub, &id]).expect(0).stdout();
    assert!(log.contains("refused") && log.contains("outside the checkout"), "{log}");

    let merged = env.path("all.xml");
    env.ci(&repo, &["junit", "--hub", &hub, &id, "-o", merged.to_str().unwrap()]).expect(0);
    let xml = std::fs::read_to_string(&merged).unwrap();
    assert!(
        xml.contains("<testsuites>") && xml.contains("name=\"build ") && xml.matches("<testcase").count() == 3,
        "{xml}"
    );
}

#[test]
fn secrets_from_an_env_file_reach_the_job_masked() {
    let env = TestEnv::new();
    let (repo, hub) =
        env.project_on_hub("[job.leaky]\nrun = \"echo token=$API_TOKEN; test $API_TOKEN = s3cr3t-value\"\n");
    let secrets = env.path("secrets.env");
    std::fs::write(&secrets, "# deploy key\nAPI_TOKEN=s3cr3t-value\n").unwrap();
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--env-file", secrets.to_str().unwrap()]).expect(0);
    assert_eq!(show(&env, &repo, &hub, &id)["state"], "passed");
    let log = env.ci(&repo, &["log", "--hub", &hub, &id]).expect(0).stdout();
    assert_eq!(log, "token=***\n");
}

#[test]
fn workers_claim_only_jobs_their_labels_and_queues_satisfy() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub(
        "[job.gpu]\nrun = \"true\"\nrequires = { gpu = \"yes\" }\n\n[job.fast]\nrun = \"true\"\nqueue = \"fast\"\n",
    );
    let ids: Vec<String> =
        env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().lines().map(str::to_owned).collect();
    let (fast, gpu) = (&ids[0], &ids[1]);
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--queue", "default"]).expect(0);
    assert_eq!(show(&env, &repo, &hub, gpu)["state"], "pending", "no gpu label");
    assert_eq!(show(&env, &repo, &hub, fast)["state"], "pending", "queue not served");
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--label", "gpu=yes", "--queue", "default"]).expect(0);
    assert_eq!(show(&env, &repo, &hub, gpu)["state"], "passed");
    assert_eq!(show(&env, &repo, &hub, fast)["state"], "pending");
    env.ci(&repo, &["worker", "--hub", &hub, "--once"]).expect(0);
    assert_eq!(show(&env, &repo, &hub, fast)["state"], "passed");
}

#[test]
fn jobs_2_runs_two_jobs_at_once_in_separate_checkouts() {
    let env = TestEnv::new();
    let dir = env.path("meet");
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    // Each job waits for the other: this only passes when both run at once.
    let pipeline = format!(
        "[job.a]\nrun = \"touch {d}/a; touch mine-a; for i in $(seq 100); do test -f {d}/b && test ! -f mine-b && exit 0; sleep 0.1; done; exit 1\"\n\
         [job.b]\nrun = \"touch {d}/b; touch mine-b; for i in $(seq 100); do test -f {d}/a && test ! -f mine-a && exit 0; sleep 0.1; done; exit 1\"\n"
    );
    let (repo, hub) = env.project_on_hub(&pipeline);
    let ids = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout();
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--jobs", "2"]).expect(0);
    for id in ids.lines() {
        assert_eq!(show(&env, &repo, &hub, id)["state"], "passed", "{id}");
    }
}

#[test]
fn sigterm_finishes_running_jobs_and_a_second_signal_cancels_them() {
    let env = TestEnv::new();
    let started = env.path("started");
    let release = env.path("release");
    let pipeline = format!(
        "[job.slow]\nrun = \"touch {s}; for i in $(seq 600); do test -f {r} && break; sleep 0.05; done; echo released\"\n",
        s = started.display(),
        r = release.display()
    );
    let (repo, hub) = env.project_on_hub(&pipeline);
    let first = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let worker = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w"]);
    wait_until(Duration::from_secs(20), "the job to start", || started.exists());
    worker.signal("TERM");
    wait_until(Duration::from_secs(20), "the worker to drain", || worker.stderr().contains("stopping"));
    // Draining: the worker claims nothing new while it finishes.
    let second = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    std::fs::write(&release, "").unwrap();
    let (status, _, stderr) = worker.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(show(&env, &repo, &hub, &first)["state"], "passed");
    assert_eq!(show(&env, &repo, &hub, &second)["state"], "pending");
    assert!(
        env.ci_refs(std::path::Path::new(&hub)).iter().all(|(n, _)| !n.starts_with("refs/ci/workers/")),
        "deregistered"
    );

    std::fs::remove_file(&release).unwrap();
    std::fs::remove_file(&started).unwrap();
    let worker = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w"]);
    wait_until(Duration::from_secs(20), "the second job to start", || started.exists());
    worker.signal("TERM");
    wait_until(Duration::from_secs(20), "the worker to drain", || worker.stderr().contains("stopping"));
    // A signal within a second of the last is the same request (one Ctrl-C
    // arrives twice under `git ci`): a second request comes later.
    std::thread::sleep(Duration::from_millis(1100));
    worker.signal("INT");
    let (status, _, stderr) = worker.wait();
    assert!(status.success(), "{status:?}: {stderr}");
    let doc = show(&env, &repo, &hub, &second);
    assert_eq!(doc["state"], "cancelled", "{doc}");
}

#[test]
fn a_running_job_shows_its_worker_registration_and_live_log() {
    let env = TestEnv::new();
    let release = env.path("release");
    let pipeline = format!(
        "[job.talk]\nrun = \"echo first line; for i in $(seq 600); do test -f {} && break; sleep 0.05; done; echo last line\"\n",
        release.display()
    );
    let (repo, hub) = env.project_on_hub(&pipeline);
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let worker = env.spawn_ci(
        &repo,
        &["worker", "--hub", &hub, "--name", "talker", "--label", "zone=a", "--log-interval", "200ms"],
    );
    let hub_path = std::path::PathBuf::from(&hub);
    wait_until(Duration::from_secs(20), "the live log", || {
        env.ci_refs(&hub_path).iter().any(|(n, _)| n == &format!("refs/ci/logs/{id}"))
    });
    let registration = || -> serde_json::Value {
        serde_json::from_str(&env.git(&hub_path, &["cat-file", "-p", "refs/ci/workers/talker"])).unwrap()
    };
    wait_until(Duration::from_secs(20), "the registration to list the job", || {
        registration()["running"][0] == id.as_str()
    });
    let doc = registration();
    assert_eq!(doc["labels"]["zone"], "a");
    assert_eq!(doc["labels"]["os"], std::env::consts::OS);
    assert_eq!(doc["running"], serde_json::json!([id]));

    let follow = env.spawn_ci(&repo, &["log", "--hub", &hub, "--follow", &id]);
    wait_until(Duration::from_secs(20), "the follower to show the first line", || follow.stdout() == "first line\n");
    std::fs::write(&release, "").unwrap();
    let (status, stdout, stderr) = follow.wait();
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "first line\nlast line\n");
    worker.signal("TERM");
    assert!(worker.wait().0.success());
    let live: Vec<_> = env.ci_refs(&hub_path).into_iter().filter(|(n, _)| n.starts_with("refs/ci/logs/")).collect();
    assert!(live.is_empty(), "the live log goes with the job: {live:?}");
}

#[test]
fn retry_queues_a_new_attempt_of_a_finished_job() {
    let env = TestEnv::new();
    let flag = env.path("flag");
    let (repo, hub) = env.project_on_hub(&format!("[job.flaky]\nrun = \"test -f {}\"\n", flag.display()));
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    env.ci(&repo, &["worker", "--hub", &hub, "--once"]).expect(0);
    assert_eq!(show(&env, &repo, &hub, &id)["state"], "failed");
    std::fs::write(&flag, "").unwrap();
    let again = env.ci(&repo, &["retry", "--hub", &hub, &id]).expect(0).stdout().trim().to_owned();
    assert_ne!(again, id);
    env.ci(&repo, &["worker", "--hub", &hub, "--once"]).expect(0);
    assert_eq!(show(&env, &repo, &hub, &again)["state"], "passed");
    assert_eq!(show(&env, &repo, &hub, &again)["name"], "flaky");
}

#[test]
fn worker_settings_come_from_git_config_and_flags_win() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.gpu]\nrun = \"true\"\nrequires = { gpu = \"a100\" }\n");
    for (key, value) in [("ci.worker.name", "from-config"), ("ci.worker.labels", "gpu=a100"), ("ci.worker.jobs", "2")] {
        env.git(&repo, &["config", key, value]);
    }
    let doctor = env.ci(&repo, &["doctor", "--hub", &hub]).stdout();
    assert!(doctor.contains("worker name: from-config (git config ci.worker.name, local"), "{doctor}");
    assert!(doctor.contains("worker jobs: 2 (git config ci.worker.jobs"), "{doctor}");
    assert!(doctor.contains("gpu=a100"), "{doctor}");

    let first = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    env.ci(&repo, &["worker", "--hub", &hub, "--once"]).expect(0);
    assert_eq!(show(&env, &repo, &hub, &first)["worker"], "from-config", "the label came from git config too");

    let second = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "from-flag"]).expect(0);
    assert_eq!(show(&env, &repo, &hub, &second)["worker"], "from-flag");

    env.git(&repo, &["config", "ci.worker.jobs", "many"]);
    let bad = env.ci(&repo, &["worker", "--hub", &hub, "--once"]).expect(2);
    assert!(bad.stderr().contains("git config ci.worker.jobs: \"many\" is not a positive number"), "{}", bad.stderr());
    bad.assert_clean_error();
}

/// `--poll-max` is the idle interval, `--poll` the one after work: a
/// shorter `--poll-max` cannot apply, and is refused before anything runs.
#[test]
fn a_poll_max_shorter_than_the_poll_is_refused() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.a]\nrun = \"true\"\n");
    let hub = repo.join(".git");
    let args = ["worker", "--hub", hub.to_str().unwrap(), "--once", "--poll", "5s", "--poll-max", "1s"];
    let bad = env.ci(&repo, &args).expect(2);
    assert!(bad.stderr().contains("--poll-max 1.0s is shorter than --poll 5.0s"), "{}", bad.stderr());
    bad.assert_clean_error();
    // Equal: a fixed interval.
    let args = ["worker", "--hub", hub.to_str().unwrap(), "--once", "--poll", "1s", "--poll-max", "1s"];
    env.ci(&repo, &args).expect(0);
}

/// What a `--once` worker over `git daemon` asks of the hub for the one
/// job it finds (issue 18, goal 4): its registration, a look at the
/// queue, the claim, a look that finds nothing more, and the publish,
/// which carries the registration's removal. It used to fetch its `done`
/// chain before the first look, and leave with a push of its own.
#[test]
fn a_once_worker_runs_a_job_in_three_pushes_and_two_fetches() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.a]\nrun = \"true\"\n");
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let id = env.ci(&repo, &["submit", "--hub", &url]).expect(0).stdout().trim().to_owned();
    let run = env.ci(&repo, &["-v", "worker", "--hub", &url, "--name", "w", "--once"]).expect(0);
    let stderr = run.stderr();
    let git: Vec<&str> = stderr.lines().filter(|l| l.contains(" git: git ")).collect();
    let (pushes, fetches) =
        (git.iter().filter(|l| l.contains(" push ")).count(), git.iter().filter(|l| l.contains(" fetch ")).count());
    assert_eq!((pushes, fetches), (3, 2), "{stderr}");
    assert_eq!(show(&env, &repo, &hub, &id)["state"], "passed", "{stderr}");
    let registered: Vec<_> = env
        .ci_refs(std::path::Path::new(&hub))
        .into_iter()
        .filter(|(n, _)| n.starts_with("refs/ci/workers/"))
        .collect();
    assert!(registered.is_empty(), "the worker left its registration: {registered:?}");
}
