//! A backlog is not a tax (issue 18, goal 5): the jobs of a big submission
//! beyond the first few of their queue are parked in one backlog ref, not
//! two refs each, and stay pending to every reader; workers move them into
//! the queue as it runs low, and cancels of parked jobs go through the
//! same compare-and-swap as everything else.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::env::{TestEnv, counts, wait_until};

/// `git ci submit --stdin` of `lines` with the backlog threshold `after`
/// (`None`: the default); returns the ids, in order.
fn submit_lines(env: &TestEnv, repo: &Path, hub: &str, after: Option<&str>, lines: &[String]) -> Vec<String> {
    submit_with(env, repo, &["--hub", hub], after, lines)
}

/// [`submit_lines`] with other arguments (`--hub` among them).
fn submit_with(env: &TestEnv, repo: &Path, args: &[&str], after: Option<&str>, lines: &[String]) -> Vec<String> {
    let mut cmd = env.ci_cmd(repo, &[&["submit", "--stdin"], args].concat());
    if let Some(after) = after {
        cmd.env("GIT_CI_BACKLOG_AFTER", after);
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(lines.join("\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// A guarded hub holding a project's `main`, served by `git daemon`: the
/// hub's path, the project, the daemon (alive while held) and its URL.
fn guarded_over_daemon(env: &TestEnv) -> (std::path::PathBuf, std::path::PathBuf, crate::env::Daemon, String) {
    let hub = env.guarded_hub("hub.git");
    let project = env.project("p", "");
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    (hub, project, daemon, url)
}

fn count(hub: &Path, env: &TestEnv, prefix: &str) -> usize {
    env.ci_refs(hub).iter().filter(|(n, _)| n.starts_with(prefix)).count()
}

#[test]
fn three_hundred_pending_jobs_are_few_refs_and_all_pending_to_readers() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("");
    let lines: Vec<String> = (0..300).map(|i| format!("echo {i}")).collect();
    let ids = submit_lines(&env, &repo, &hub, None, &lines);
    assert_eq!(ids.len(), 300);
    let refs = env.ci_refs(Path::new(&hub));
    // 64 queued (a queue ref and a pin each) and one backlog, not 600.
    assert_eq!(refs.len(), 64 * 2 + 1, "{refs:?}");
    assert_eq!(count(Path::new(&hub), &env, "refs/ci/backlog/default/"), 1);

    let status = env.ci(&repo, &["status", "--hub", &hub, "--json", "--limit", "1000"]).expect(0).json();
    let states: HashMap<&str, &str> =
        status.as_array().unwrap().iter().map(|j| (j["id"].as_str().unwrap(), j["state"].as_str().unwrap())).collect();
    for id in &ids {
        assert_eq!(states.get(id.as_str()), Some(&"pending"), "{id} in {status}");
    }
    let parked = status.as_array().unwrap().iter().filter(|j| j["parked"] == true).count();
    assert_eq!(parked, 300 - 64);
    // The last job is parked: `show` finds it and says so.
    let shown = env.ci(&repo, &["show", "--hub", &hub, "--json", &ids[299]]).expect(0).json();
    assert_eq!((shown["state"].as_str(), shown["parked"].as_bool()), (Some("pending"), Some(true)), "{shown}");
    assert_eq!(shown["run"], "echo 299");
    let human = env.ci(&repo, &["show", "--hub", &hub, &ids[299]]).expect(0).stdout();
    assert!(human.contains("parked in backlog"), "{human}");
    let table = env.ci(&repo, &["status", "--hub", &hub, "--limit", "1000"]).expect(0).stdout();
    assert!(table.contains("parked in backlog"), "{table}");

    // The site lists them all, pending.
    let site = env.path("site");
    env.ci(&repo, &["site", "build", "--hub", &hub, "--out", site.to_str().unwrap()]).expect(0);
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.join("api/index.json")).unwrap()).unwrap();
    let listed = index["jobs"].as_array().unwrap();
    assert_eq!(listed.iter().filter(|j| j["state"] == "pending").count(), 300, "{}", listed.len());

    // A cancel of a parked job publishes it and takes it out of the
    // backlog; `wait` then sees it finished.
    env.ci(&repo, &["cancel", "--hub", &hub, &ids[200]]).expect(0);
    let shown = env.ci(&repo, &["show", "--hub", &hub, "--json", &ids[200]]).expect(0).json();
    assert_eq!(shown["state"], "cancelled", "{shown}");
    env.ci(&repo, &["wait", "--hub", &hub, &ids[200]]).expect(1);
    let status = env.ci(&repo, &["status", "--hub", &hub, "--json", "--limit", "1000"]).expect(0).json();
    assert_eq!(status.as_array().unwrap().iter().filter(|j| j["parked"] == true).count(), 300 - 64 - 1);
}

/// Four workers drain 120 jobs, 112 of them parked, over `git daemon` on a
/// guarded hub, while cancels hit parked, promoted and running jobs: every
/// job not cancelled runs, none cancelled before it started runs, each is
/// published exactly once, and no live ref is left.
#[test]
fn workers_drain_a_backlog_while_cancels_race_them() {
    const JOBS: usize = 120;
    let env = TestEnv::new();
    let (hub, project, _daemon, url) = guarded_over_daemon(&env);
    let runs = env.path("runs.txt");
    let lines: Vec<String> =
        (0..JOBS).map(|i| format!("echo $GIT_CI_JOB_ID >> {}; sleep 0.0{}", runs.display(), i % 10)).collect();
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let name = format!("w{i}");
            let args = ["worker", "--hub", &url, "--name", &name, "--jobs", "2", "--poll", "100ms", "--lease", "10m"];
            env.spawn_ci(&project, &args)
        })
        .collect();
    let ids = submit_lines(&env, &project, &url, Some("8"), &lines);
    assert_eq!(ids.len(), JOBS);
    assert_eq!(count(&hub, &env, "refs/ci/queue/"), 8, "8 queued, the rest parked");
    // The newest (surely parked when asked) and some of the first parked
    // (promoted, maybe running), cancelled from two threads at once.
    let targets: Vec<&String> = ids[100..110].iter().chain(&ids[8..13]).collect();
    let parked_at_cancel: usize = std::thread::scope(|s| {
        let halves = [&targets[..8], &targets[8..]].map(|part| {
            let (env, project, url) = (&env, &project, &url);
            s.spawn(move || {
                let mut parked = 0;
                for id in part {
                    let shown = env.ci(project, &["show", "--hub", url, "--json", id]).expect(0).json();
                    parked += usize::from(shown["parked"] == true);
                    env.ci(project, &["cancel", "--hub", url, id]).expect(0);
                }
                parked
            })
        });
        halves.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert!(parked_at_cancel > 0, "no cancel met a parked job");
    let mut states = HashMap::new();
    wait_until(Duration::from_secs(180), "every job to finish", || {
        let status = env.ci(&project, &["status", "--hub", &url, "--json", "--limit", "1000"]).expect(0).json();
        states = status
            .as_array()
            .unwrap()
            .iter()
            .map(|j| (j["id"].as_str().unwrap().to_owned(), j["state"].as_str().unwrap().to_owned()))
            .collect();
        ids.iter().all(|id| states.get(id).is_some_and(|s| s != "pending" && s != "running"))
    });
    drop(workers);
    let ran = counts(&runs);
    let mut cancelled_unrun = 0;
    for id in &ids {
        match states[id].as_str() {
            "passed" => assert!(ran.get(id).is_some_and(|&n| n >= 1), "{id} passed without running"),
            "cancelled" => {
                assert!(targets.contains(&id), "{id} was cancelled by nobody");
                let shown = env.ci(&project, &["show", "--hub", &url, "--json", id]).expect(0).json();
                if shown["reason"].as_str().unwrap_or_default().contains("before it started") {
                    assert_eq!(ran.get(id), None, "{id} was cancelled before it started, yet it ran");
                    cancelled_unrun += 1;
                }
            }
            other => panic!("{id} ended {other}"),
        }
    }
    assert!(cancelled_unrun > 0, "no cancel came before a claim ({parked_at_cancel} met parked jobs)");
    assert_eq!(ran.values().filter(|&&n| n > 1).count(), 0, "a job ran twice: {ran:?}");
    let mut published = HashMap::new();
    for id in env.published_ids(&hub) {
        *published.entry(id).or_insert(0) += 1;
    }
    for id in &ids {
        assert_eq!(published.get(id), Some(&1), "{id} published {:?} times", published.get(id));
    }
    let kept = ["refs/ci/done/", "refs/ci/workers/", "refs/ci/cancel/"];
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !kept.iter().any(|k| n.starts_with(k))).collect();
    assert!(live.is_empty(), "leftover refs: {live:?}");
}

/// A hub whose guard predates backlogs refuses the backlog ref: the
/// submission is queued the old way instead, whole.
#[test]
fn a_guard_that_refuses_backlogs_gets_the_jobs_queued_the_old_way() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("");
    let hook = Path::new(&hub).join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nif grep -q ' refs/ci/backlog/'; then echo 'unknown ref under refs/ci/' >&2; exit 1; fi\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&hook).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).unwrap();
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let lines: Vec<String> = (0..70).map(|i| format!("echo {i}")).collect();
    let ids = submit_lines(&env, &repo, &url, None, &lines);
    assert_eq!(ids.len(), 70);
    assert_eq!(count(Path::new(&hub), &env, "refs/ci/queue/default/"), 70);
    assert_eq!(count(Path::new(&hub), &env, "refs/ci/backlog/"), 0);
}

/// A threshold that is not a number is a usage error, before anything is
/// queued.
#[test]
fn a_bad_backlog_threshold_is_refused() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("");
    let mut cmd = env.ci_cmd(&repo, &["submit", "--hub", &hub, "--run", "true"]);
    let out = cmd.env("GIT_CI_BACKLOG_AFTER", "lots").output().unwrap();
    let run = crate::env::Run(out).expect(2);
    run.assert_clean_error();
    assert!(run.stderr().contains("GIT_CI_BACKLOG_AFTER=\"lots\" is not a number"), "{}", run.stderr());
    assert!(env.ci_refs(Path::new(&hub)).is_empty());
}

/// `tag` jobs that append `<tag> <id>` to `runs`, submitted with
/// `--priority priority` and the threshold `after`.
fn tagged(
    env: &TestEnv,
    repo: &Path,
    hub: &str,
    (tag, n, priority): (&str, usize, &str),
    runs: &Path,
    after: Option<&str>,
) {
    let lines: Vec<String> = (0..n).map(|_| format!("echo {tag} $GIT_CI_JOB_ID >> {}", runs.display())).collect();
    let ids = submit_with(env, repo, &["--hub", hub, "--priority", priority], after, &lines);
    assert_eq!(ids.len(), n);
}

/// The tags of `runs` in the order the jobs ran, each job once.
fn run_order(runs: &Path) -> Vec<String> {
    let ran = counts(runs);
    assert!(ran.values().all(|&n| n == 1), "a job ran twice: {ran:?}");
    let text = std::fs::read_to_string(runs).unwrap();
    text.lines().map(|l| l.split(' ').next().unwrap().to_owned()).collect()
}

/// A low-priority batch parked first, a high-priority one parked after it:
/// a 1-slot worker promotes and runs every high-priority job before any
/// low-priority one (it used to promote the oldest first: the low ones).
#[test]
fn promotions_take_a_later_high_priority_batch_first() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("");
    let runs = env.path("runs.txt");
    tagged(&env, &repo, &hub, ("low", 60, "0"), &runs, Some("4"));
    tagged(&env, &repo, &hub, ("high", 40, "5"), &runs, Some("4"));
    assert_eq!(count(Path::new(&hub), &env, "refs/ci/backlog/default/"), 2);
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w1", "--jobs", "1"]).expect(0);
    let order = run_order(&runs);
    assert_eq!(order.len(), 100);
    let expected: Vec<&str> = [["high"; 40].as_slice(), ["low"; 60].as_slice()].concat();
    assert_eq!(order, expected, "every high-priority job first");
    assert_eq!(count(Path::new(&hub), &env, "refs/ci/backlog/"), 0);
}

/// 64 low-priority jobs queued and more parked, then 70 high-priority
/// ones (64 queued, 6 parked): once the queued high ones are claimed, the
/// 6 parked outrank the 64 low ones still queued, so the worker promotes
/// them at once, though it has plenty to claim, and runs them next.
#[test]
fn parked_jobs_that_outrank_the_queue_are_promoted_before_it_runs_low() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("");
    let runs = env.path("runs.txt");
    tagged(&env, &repo, &hub, ("low", 80, "0"), &runs, None);
    tagged(&env, &repo, &hub, ("high", 70, "5"), &runs, None);
    assert_eq!(count(Path::new(&hub), &env, "refs/ci/queue/default/"), 128);
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w1", "--jobs", "1"]).expect(0);
    let order = run_order(&runs);
    assert_eq!(order.len(), 150);
    let expected: Vec<&str> = [["high"; 70].as_slice(), ["low"; 80].as_slice()].concat();
    assert_eq!(order, expected, "every high-priority job first");
}

/// A crowded fleet (issue 18, goal 4): ten `--once` workers of one slot,
/// more than `CROWDED_AFTER`, drain a backlog over `git daemon` on a
/// guarded hub, taking turns at promotions and leaving each other their
/// next jobs: every job runs and is published exactly once, each worker
/// leaves when nothing is left (its last publish removing its
/// registration), and no live ref stays behind.
#[test]
fn a_crowded_fleet_of_once_workers_drains_a_backlog_exactly_once() {
    const JOBS: usize = 150;
    let env = TestEnv::new();
    let (hub, project, _daemon, url) = guarded_over_daemon(&env);
    let runs = env.path("runs.txt");
    let lines: Vec<String> = (0..JOBS).map(|_| format!("echo $GIT_CI_JOB_ID >> {}", runs.display())).collect();
    let ids = submit_lines(&env, &project, &url, Some("16"), &lines);
    assert_eq!(count(&hub, &env, "refs/ci/queue/"), 16, "16 queued, the rest parked");
    let workers: Vec<_> = (0..10)
        .map(|i| {
            let name = format!("w{i}");
            env.spawn_ci(&project, &["worker", "--hub", &url, "--name", &name, "--once", "--lease", "10m"])
        })
        .collect();
    for w in workers {
        let (status, _, stderr) = w.wait_within(Duration::from_secs(240));
        assert!(status.success(), "{status:?}: {stderr}");
    }
    let ran = counts(&runs);
    let mut published = HashMap::new();
    for id in env.published_ids(&hub) {
        *published.entry(id).or_insert(0) += 1;
    }
    for id in &ids {
        assert_eq!(ran.get(id), Some(&1), "{id} ran {:?} times", ran.get(id));
        assert_eq!(published.get(id), Some(&1), "{id} published {:?} times", published.get(id));
    }
    let live: Vec<_> = env.ci_refs(&hub).into_iter().filter(|(n, _)| !n.starts_with("refs/ci/done/")).collect();
    assert!(live.is_empty(), "leftover refs (registrations among them): {live:?}");
}
