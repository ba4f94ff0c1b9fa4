//! Many workers, one hub: every job runs at least once, is published
//! exactly once, and nothing is left behind.

use std::collections::HashMap;

use crate::env::TestEnv;

const JOBS: usize = 60;
const WORKERS: usize = 4;

#[test]
fn four_workers_over_git_daemon_publish_every_job_once() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let runs = env.path("runs.txt");
    let pipeline: String =
        (0..JOBS).map(|i| format!("[job.j{i:02}]\nrun = \"echo $GIT_CI_JOB_ID >> {}\"\n", runs.display())).collect();
    let project = env.project("project", &pipeline);
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");

    let submit = env.ci(&project, &["submit", "--hub", &url]).expect(0);
    let ids: Vec<String> = submit.stdout().lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), JOBS);

    let workers: Vec<_> = (0..WORKERS)
        .map(|i| {
            env.ci_cmd(&project, &["worker", "--hub", &url, "--once", "--name", &format!("w{i}"), "--jobs", "2"])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    let ran = std::fs::read_to_string(&runs).unwrap();
    let mut run_counts: HashMap<&str, usize> = HashMap::new();
    for line in ran.lines() {
        *run_counts.entry(line).or_default() += 1;
    }
    for id in &ids {
        assert!(run_counts.get(id.as_str()).copied().unwrap_or(0) >= 1, "job {id} never ran");
    }
    let published = env.published_ids(&hub);
    let mut pub_counts: HashMap<&str, usize> = HashMap::new();
    for id in &published {
        *pub_counts.entry(id).or_default() += 1;
    }
    assert_eq!(pub_counts.len(), JOBS, "every job published");
    assert!(pub_counts.values().all(|&n| n == 1), "published twice: {pub_counts:?}");
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !n.starts_with("refs/ci/done/")).collect();
    assert!(live.is_empty(), "leftover refs: {live:?}");
    assert!(env.ci_refs(&hub).len() <= WORKERS, "refs stay about as many as the workers");
}

#[test]
fn workers_racing_on_a_local_hub_publish_every_job_once() {
    let env = TestEnv::new();
    let runs = env.path("runs.txt");
    let pipeline: String =
        (0..40).map(|i| format!("[job.j{i:02}]\nrun = \"echo $GIT_CI_JOB_ID >> {}\"\n", runs.display())).collect();
    let project = env.project("project", &pipeline);
    let hub = project.join(".git");
    let ids: Vec<String> = env
        .ci(&project, &["submit", "--hub", hub.to_str().unwrap()])
        .expect(0)
        .stdout()
        .lines()
        .map(str::to_owned)
        .collect();
    let workers: Vec<_> = (0..3)
        .map(|i| {
            env.ci_cmd(&project, &["worker", "--hub", hub.to_str().unwrap(), "--once", "--name", &format!("l{i}")])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success());
    }
    let mut published = env.published_ids(&hub);
    published.sort();
    let mut want = ids;
    want.sort();
    assert_eq!(published, want, "each job published exactly once");
    let ran = std::fs::read_to_string(&runs).unwrap();
    for id in &want {
        assert!(ran.contains(id.as_str()), "{id} never ran");
    }
}
