//! Jobs aimed at one machine (issue 20 item 4): `submit --worker w2`,
//! `worker = "w2"` in .git-ci.toml and `--require name=w2` are one
//! requirement, which only the worker named w2 meets.

use std::time::Duration;

use crate::env::{TestEnv, wait_until};

fn show(env: &TestEnv, repo: &std::path::Path, hub: &str, id: &str) -> serde_json::Value {
    env.ci(repo, &["show", "--hub", hub, id, "--json"]).expect(0).json()
}

#[test]
fn a_job_aimed_at_w2_is_never_run_by_w1_and_is_run_by_w2() {
    let env = TestEnv::new();
    let pipeline = "[job.plain]\nrun = \"true\"\n\n[job.on-w2]\nrun = \"true\"\nworker = \"w2\"\n";
    let (repo, hub) = env.project_on_hub(pipeline);
    let submit = |extra: &[&str]| -> Vec<String> {
        let args = [&["submit", "--hub", &hub][..], extra].concat();
        env.ci(&repo, &args).expect(0).stdout().lines().map(str::to_owned).collect()
    };
    let mut aimed = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..2 {
        for id in submit(&[]) {
            let doc = show(&env, &repo, &hub, &id);
            if doc["name"] == "on-w2" { aimed.push(id) } else { plain.push(id) }
        }
        aimed.extend(submit(&["--run", "true", "--worker", "w2"]));
        aimed.extend(submit(&["--run", "true", "--require", "name=w2"]));
    }
    assert_eq!((aimed.len(), plain.len()), (6, 2));

    let w1 = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w1", "--poll", "200ms"]);
    wait_until(Duration::from_secs(30), "w1 runs the plain jobs", || {
        plain.iter().all(|id| show(&env, &repo, &hub, id)["state"] == "passed")
    });
    // w1 had several polls to take the aimed jobs; it must have left them.
    std::thread::sleep(Duration::from_millis(800));
    for id in &aimed {
        let doc = show(&env, &repo, &hub, id);
        assert_eq!(doc["state"], "pending", "{doc}");
        let why = doc["waiting_reason"].as_str().unwrap_or_default();
        assert!(why.contains("aimed at worker w2") && why.contains("not registered"), "{doc}");
    }
    let w2 = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w2", "--poll", "200ms"]);
    wait_until(Duration::from_secs(30), "w2 runs the aimed jobs", || {
        aimed.iter().all(|id| show(&env, &repo, &hub, id)["state"] == "passed")
    });
    for id in &aimed {
        assert_eq!(show(&env, &repo, &hub, id)["worker"], "w2");
    }
    for w in [&w1, &w2] {
        w.signal("TERM");
    }
    let (s1, _, _) = w1.wait_within(Duration::from_secs(20));
    let (s2, _, _) = w2.wait_within(Duration::from_secs(20));
    assert!(s1.success() && s2.success());
}

#[test]
fn a_job_aimed_at_a_gone_worker_says_so_and_doctor_flags_it() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.a]\nrun = \"true\"\n");
    let id = env.ci(&repo, &["submit", "--hub", &hub, "--worker", "ghost"]).expect(0).stdout().trim().to_owned();
    // A registration last refreshed 3 minutes ago: the worker died.
    let seen = git_ci_core::time::rfc3339(std::time::SystemTime::now() - Duration::from_secs(180));
    let doc = serde_json::json!({
        "version": 1, "name": "ghost", "labels": {}, "queues": [], "jobs": 1, "running": [],
        "platform": "linux-x86_64", "git_ci_version": "0", "started_at": seen, "last_seen": seen,
        "refresh_ms": 1000,
    });
    let file = env.path("ghost.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let hub_path = std::path::Path::new(&hub);
    let blob = env.git(hub_path, &["hash-object", "-w", file.to_str().unwrap()]);
    env.git(hub_path, &["update-ref", "refs/ci/workers/ghost", &blob]);

    let why = show(&env, &repo, &hub, &id)["waiting_reason"].as_str().unwrap_or_default().to_owned();
    assert!(why.starts_with("aimed at worker ghost, not seen for 3m"), "{why}");
    let status = env.ci(&repo, &["status", "--hub", &hub]).stdout();
    assert!(status.contains("aimed at worker ghost, not seen for"), "{status}");
    let doctor = env.ci(&repo, &["doctor", "--hub", &hub]).expect(1).stdout();
    assert!(doctor.contains(&format!("job a {id} (queue default) waits: aimed at worker ghost")), "{doctor}");
    assert!(doctor.contains("git ci worker --name ghost"), "{doctor}");
}

#[test]
fn contradicting_aims_are_refused() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.a]\nrun = \"true\"\nworker = \"w2\"\nrequires = { name = \"w3\" }\n");
    let run = env.ci(&repo, &["submit", "--hub", &hub]).expect(2);
    assert!(run.stderr().contains("contradicts requires name") && run.stderr().contains(":3:"), "{}", run.stderr());
    let run = env.ci(&repo, &["submit", "--hub", &hub, "--run", "true", "--worker", "a", "--require", "name=b"]);
    assert!(run.expect(2).stderr().contains("--worker a contradicts --require name=b"));
    let run = env.ci(&repo, &["worker", "--hub", &hub, "--name", "w1", "--label", "name=w2", "--once"]).expect(2);
    assert!(run.stderr().contains("label name=w2 differs from this worker's name \"w1\""), "{}", run.stderr());
    env.ci(&repo, &["worker", "--hub", &hub, "--name", "w2", "--label", "name=w2", "--once"]).expect(0);
}
