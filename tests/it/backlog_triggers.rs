//! Jobs queued by a push (the post-receive hook) and by a schedule's tick
//! park like a `git ci submit`'s (issue 18, goal 5): past the first 64 of a
//! queue (`GIT_CI_BACKLOG_AFTER`), in one backlog ref; all pending to
//! readers, all run by a worker, and all queued the old way when the hub's
//! guard predates backlogs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::env::{TestEnv, counts};
use crate::hooks::{jobs, push};

/// A pipeline of one job `name` in a matrix of `a` × `b` entries, each of
/// which appends its id to `runs`; `extra` goes in the job's table.
fn matrix(name: &str, a: usize, b: usize, runs: &Path, extra: &str) -> String {
    let values = |n: usize| (0..n).map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
    format!(
        "[job.{name}]\n{extra}matrix = {{ a = [{}], b = [{}] }}\nrun = \"echo $GIT_CI_JOB_ID >> {}\"\n",
        values(a),
        values(b),
        runs.display()
    )
}

fn count(env: &TestEnv, hub: &Path, prefix: &str) -> usize {
    env.ci_refs(hub).iter().filter(|(n, _)| n.starts_with(prefix)).count()
}

/// Every one of `ids` is pending to `git ci status`, `parked` of them in a
/// backlog.
fn all_pending(env: &TestEnv, dir: &Path, hub: &str, ids: &[String], parked: usize) {
    let all = jobs(env, dir, hub);
    assert_eq!(all.len(), ids.len(), "{all:?}");
    for id in ids {
        assert_eq!(all.get(id).map(|j| j["state"].as_str()), Some(Some("pending")), "{id}");
    }
    assert_eq!(all.values().filter(|j| j["parked"] == true).count(), parked);
}

/// `git ci worker --once` runs every one of `ids` once and leaves no
/// pending job, no backlog and no queue ref.
fn drain(env: &TestEnv, dir: &Path, hub: &Path, ids: &[String], runs: &Path) {
    let hub_s = hub.to_str().unwrap();
    env.ci(dir, &["worker", "--hub", hub_s, "--once", "--name", "w1"]).expect(0);
    let ran = counts(runs);
    for id in ids {
        assert_eq!(ran.get(id), Some(&1), "{id} ran {:?} times", ran.get(id));
    }
    assert_eq!(ran.len(), ids.len());
    let states: Vec<String> = jobs(env, dir, hub_s).values().map(|j| j["state"].as_str().unwrap().to_owned()).collect();
    assert!(states.iter().all(|s| s == "passed"), "{states:?}");
    assert_eq!(count(env, hub, "refs/ci/backlog/") + count(env, hub, "refs/ci/queue/"), 0);
}

/// A push of a branch whose `.git-ci.toml` makes 70 jobs: the hook queues
/// 64 and parks 6, says every one queued, and a worker runs them all.
#[test]
fn a_push_of_seventy_jobs_parks_six_and_a_worker_runs_them_all() {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    let runs = env.path("runs.txt");
    let project = env.project("project", &matrix("m", 7, 10, &runs, ""));
    let out = push(&env, &project, &[hub_s, "main"]);
    let ids: Vec<String> = (out.lines())
        .filter(|l| l.contains("git-ci: queued "))
        .map(|l| l.trim_end().rsplit_once(' ').unwrap().1.to_owned())
        .collect();
    assert_eq!(ids.len(), 70, "{out}");
    assert!(out.contains("remote: git-ci: parked 6 of them in a backlog"), "{out}");
    assert_eq!(count(&env, &hub, "refs/ci/queue/default/"), 64);
    assert_eq!(count(&env, &hub, "refs/ci/pins/"), 64, "a parked job's commit is pinned by its backlog");
    assert_eq!(count(&env, &hub, "refs/ci/backlog/default/"), 1);
    all_pending(&env, &project, hub_s, &ids, 6);
    drain(&env, &project, &hub, &ids, &runs);
}

/// A hub with `main` of a project whose only job is a yearly matrix of 70
/// jobs, and a marker left at the 2020 tick: the next look fires this
/// year's.
fn scheduled_hub(env: &TestEnv, runs: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let hub = env.bare_hub("hub.git");
    let project = env.project("project", &matrix("tick", 7, 10, runs, "schedule = \"0 0 1 1 *\"\n"));
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let old = r#"{"version": 1, "tick": "2020-01-01T00:00:00.000Z", "by": "a watcher stopped long ago"}"#;
    let file = env.path("marker.json");
    std::fs::write(&file, old).unwrap();
    let blob = env.git(&hub, &["hash-object", "-w", file.to_str().unwrap()]);
    env.git(&hub, &["update-ref", "refs/ci/schedule/tick/main", &blob]);
    (hub, project)
}

/// The ids of the jobs of a hub, all of them `tick`s.
fn tick_ids(env: &TestEnv, dir: &Path, hub: &str) -> Vec<String> {
    let all = jobs(env, dir, hub);
    assert!(all.values().all(|j| j["name"] == "tick"), "{all:?}");
    all.into_keys().collect()
}

/// A schedule's tick of 70 jobs, with `GIT_CI_BACKLOG_AFTER=8` on the
/// watcher: 8 queued, 62 parked, all pending, a worker runs them all.
#[test]
fn a_tick_of_seventy_jobs_parks_past_the_threshold_and_a_worker_runs_them_all() {
    let env = TestEnv::new();
    let runs = env.path("runs.txt");
    let (hub, project) = scheduled_hub(&env, &runs);
    let hub_s = hub.to_str().unwrap();
    let out = env.ci_cmd(&project, &["watch", "--hub", hub_s, "--once"]).env("GIT_CI_BACKLOG_AFTER", "8").output();
    let said = crate::env::Run(out.unwrap()).expect(0).stderr();
    assert!(said.contains("git-ci watch: queued tick "), "{said}");
    assert!(said.contains("git-ci watch: parked 62 of them in a backlog"), "{said}");
    assert_eq!(count(&env, &hub, "refs/ci/queue/default/"), 8, "{said}");
    assert_eq!(count(&env, &hub, "refs/ci/backlog/default/"), 1);
    let ids = tick_ids(&env, &project, hub_s);
    assert_eq!(ids.len(), 70);
    all_pending(&env, &project, hub_s, &ids, 62);
    drain(&env, &project, &hub, &ids, &runs);
}

/// A hub whose guard predates backlogs refuses the backlog ref of a tick
/// fired over `git daemon`: the tick is queued the old way, whole, once.
#[test]
fn a_tick_on_a_hub_that_refuses_backlogs_is_queued_the_old_way() {
    let env = TestEnv::new();
    let runs = env.path("runs.txt");
    let (hub, project) = scheduled_hub(&env, &runs);
    let hook = hub.join("hooks/pre-receive");
    let refuse = "#!/bin/sh\nif grep -q ' refs/ci/backlog/'; then echo 'unknown ref under refs/ci/' >&2; exit 1; fi\n";
    std::fs::write(&hook, refuse).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let said = env.ci(&project, &["watch", "--hub", &url, "--once"]).expect(0).stderr();
    assert!(said.contains("git-ci watch: queued tick "), "{said}");
    assert!(!said.contains("parked"), "{said}");
    assert_eq!(count(&env, &hub, "refs/ci/queue/default/"), 70, "{said}");
    assert_eq!(count(&env, &hub, "refs/ci/backlog/"), 0);
    let ids = tick_ids(&env, &project, &url);
    assert_eq!(ids.len(), 70);
    all_pending(&env, &project, &url, &ids, 0);
    // The marker moved with the jobs: a second look queues nothing.
    let again = env.ci(&project, &["watch", "--hub", &url, "--once"]).expect(0).stderr();
    assert!(!again.contains("queued"), "{again}");
    assert_eq!(count(&env, &hub, "refs/ci/queue/default/"), 70);
}

/// A watcher refuses a threshold that is not a number before it looks.
#[test]
fn a_watcher_refuses_a_bad_backlog_threshold() {
    let env = TestEnv::new();
    let runs = env.path("runs.txt");
    let (hub, project) = scheduled_hub(&env, &runs);
    let mut cmd = env.ci_cmd(&project, &["watch", "--hub", hub.to_str().unwrap(), "--once"]);
    let run = crate::env::Run(cmd.env("GIT_CI_BACKLOG_AFTER", "lots").output().unwrap()).expect(2);
    run.assert_clean_error();
    assert!(run.stderr().contains("GIT_CI_BACKLOG_AFTER=\"lots\" is not a number"), "{}", run.stderr());
    assert_eq!(count(&env, &hub, "refs/ci/queue/"), 0);
}
