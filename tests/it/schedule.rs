//! `schedule`: `git ci watch` queues a job at each cron tick, once per tick
//! however many watchers run; a push queues a pipeline's whole expansion.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::env::{TestEnv, wait_until};
use crate::hooks::{jobs, push};

const EVERY_MINUTE: &str = "[job.tick]\nschedule = \"* * * * *\"\nrun = \"true\"\n\n[job.test]\nrun = \"true\"\n";

/// A bare hub without hooks holding `main` of a project with `pipeline`.
fn hub_with(env: &TestEnv, pipeline: &str) -> (PathBuf, PathBuf) {
    let hub = env.bare_hub("hub.git");
    let project = env.project("project", pipeline);
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    (hub, project)
}

/// The job documents queued on `hub`, pending or waiting on their needs.
fn queued_docs(env: &TestEnv, hub: &Path) -> Vec<serde_json::Value> {
    let queue = env.ci_refs(hub).into_iter().filter(|(n, _)| n.starts_with("refs/ci/queue/"));
    queue
        .map(|(name, _)| {
            let doc = match env.git(hub, &["cat-file", "-t", &name]).as_str() {
                "blob" => name,
                _ => format!("{name}:job.json"),
            };
            serde_json::from_str(&env.git(hub, &["cat-file", "-p", &doc])).unwrap()
        })
        .collect()
}

/// The ticks of the `tick` jobs queued on `hub`, sorted.
fn ticks(env: &TestEnv, hub: &Path) -> Vec<String> {
    let mut out: Vec<String> = queued_docs(env, hub)
        .iter()
        .filter(|j| j["name"] == "tick")
        .map(|j| j["scheduled"].as_str().expect("a scheduled run says its tick").to_owned())
        .collect();
    out.sort();
    out
}

/// The tick a schedule marker holds.
fn marker_tick(env: &TestEnv, hub: &Path, marker: &str) -> Option<String> {
    let out = env.git_output(hub, &["cat-file", "-p", marker]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(doc["tick"].as_str()?.to_owned())
}

fn parse_time(s: &str) -> SystemTime {
    // `2026-11-22T14:01:00.000Z`: whole minutes only, which ticks are.
    let secs = |from: usize, len: usize| s[from..from + len].parse::<u64>().unwrap();
    let days = days_from_civil(secs(0, 4) as i64, secs(5, 2) as i64, secs(8, 2) as i64);
    UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400 + secs(11, 2) * 3600 + secs(14, 2) * 60 + secs(17, 2))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn rfc3339_minute(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:00.000Z", rest / 3600, rest / 60 % 60)
}

/// Two watchers on one hub, one by path and one over `git daemon`, for
/// three minute boundaries: each tick is queued once, and at the tick
/// (their interval is ten minutes, so only the wake for the tick fires it).
#[test]
fn two_watchers_queue_each_tick_once() {
    let env = TestEnv::new();
    let (hub, project) = hub_with(&env, EVERY_MINUTE);
    let daemon = env.daemon(env.root.path());
    let by_path = env.spawn_ci(&project, &["watch", "--hub", hub.to_str().unwrap(), "--interval", "10m"]);
    let by_daemon = env.spawn_ci(&project, &["watch", "--hub", &daemon.url("hub.git"), "--interval", "10m"]);
    let marker = "refs/ci/schedule/tick/main";
    wait_until(Duration::from_secs(30), "the schedule armed", || marker_tick(&env, &hub, marker).is_some());
    let armed = parse_time(&marker_tick(&env, &hub, marker).unwrap());
    assert!(ticks(&env, &hub).is_empty(), "arming queues nothing");

    let want: Vec<String> = (1..=3).map(|n| rfc3339_minute(armed + Duration::from_secs(60 * n))).collect();
    let end = armed + Duration::from_secs(3 * 60 + 15);
    while SystemTime::now() < end {
        std::thread::sleep(Duration::from_millis(500));
    }
    let (err_path, err_daemon) = (by_path.stderr(), by_daemon.stderr());
    drop((by_path, by_daemon));
    assert_eq!(ticks(&env, &hub), want, "by path:\n{err_path}\nover git daemon:\n{err_daemon}");
    let said = |err: &str| err.lines().filter(|l| l.contains("git-ci watch: queued tick ")).count();
    assert_eq!(said(&err_path) + said(&err_daemon), 3, "each tick said by its winner:\n{err_path}\n{err_daemon}");
    // Queued at the tick, not at the next interval.
    for job in queued_docs(&env, &hub).iter().filter(|j| j["name"] == "tick") {
        let tick = parse_time(job["scheduled"].as_str().unwrap());
        let at = job["submitted_at"].as_str().unwrap();
        let submitted = parse_time(&format!("{}.000Z", &at[..19]));
        assert!(submitted.duration_since(tick).unwrap() < Duration::from_secs(5), "{tick:?} queued at {at}");
    }
    // Counted from the hub as a person would: one `test` (the push) and three ticks.
    let all = jobs(&env, &project, hub.to_str().unwrap());
    let names: Vec<&str> = all.values().map(|j| j["name"].as_str().unwrap()).collect();
    assert_eq!(names.iter().filter(|n| **n == "tick").count(), 3, "{names:?}");
    assert_eq!(names.iter().filter(|n| **n == "test").count(), 1, "{names:?}");
}

/// A marker left at an old tick, as by a watcher stopped long ago: the
/// first watcher back queues the latest tick, once.
#[test]
fn a_missed_tick_is_queued_once_when_a_watcher_starts() {
    let env = TestEnv::new();
    let yearly = "[job.tick]\nschedule = \"0 0 1 1 *\"\nrun = \"true\"\n";
    let (hub, project) = hub_with(&env, yearly);
    let old = r#"{"version": 1, "tick": "2020-01-01T00:00:00.000Z", "by": "a watcher stopped long ago"}"#;
    let blob_file = env.path("marker.json");
    std::fs::write(&blob_file, old).unwrap();
    let blob = env.git(&hub, &["hash-object", "-w", blob_file.to_str().unwrap()]);
    env.git(&hub, &["update-ref", "refs/ci/schedule/tick/main", &blob]);

    let hub_s = hub.to_str().unwrap();
    let first = env.ci(&project, &["watch", "--hub", hub_s, "--once"]).expect(0).stderr();
    let queued = ticks(&env, &hub);
    assert_eq!(queued.len(), 1, "{first}");
    let this_year = rfc3339_minute(SystemTime::now())[..4].to_owned();
    assert_eq!(queued[0], format!("{this_year}-01-01T00:00:00.000Z"), "the latest tick, not 2021's: {first}");
    assert!(first.contains(&format!("queued tick {}", queued_docs(&env, &hub)[0]["id"].as_str().unwrap())), "{first}");

    let daemon = env.daemon(env.root.path());
    let again = env.ci(&project, &["watch", "--hub", &daemon.url("hub.git"), "--once"]).expect(0).stderr();
    assert!(!again.contains("git-ci watch: queued "), "{again}");
    assert_eq!(ticks(&env, &hub).len(), 1);
}

const GRAPH: &str = r#"
[job.build]
run = "make"

[job.test]
needs = ["build"]
matrix = { python = ["3.11", "3.12"], db = ["sqlite", "postgres"] }
run = "true"

[job.deploy]
needs = ["test"]
branches = ["main"]
run = "true"

[job.nightly]
schedule = "0 3 * * *"
run = "true"
"#;

/// The post-receive hook queues a matrix with its needs, every job naming
/// the ids it waits for, and leaves the scheduled-only job to the watcher.
#[test]
fn a_push_queues_the_whole_expansion_with_its_needs() {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    let project = env.project("project", GRAPH);
    let out = push(&env, &project, &[hub_s, "main"]);
    let said: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("remote: git-ci: queued "))
        .filter_map(|rest| rest.rsplit_once(' ').map(|(label, _)| label))
        .collect();
    assert_eq!(
        said,
        [
            "build",
            "test (python=3.11, db=sqlite)",
            "test (python=3.11, db=postgres)",
            "test (python=3.12, db=sqlite)",
            "test (python=3.12, db=postgres)",
            "deploy"
        ],
        "{out}"
    );
    let docs = queued_docs(&env, &hub);
    assert_eq!(docs.len(), 6);
    let id_of = |name: &str| -> Vec<String> {
        docs.iter().filter(|j| j["name"] == name).map(|j| j["id"].as_str().unwrap().to_owned()).collect()
    };
    let needs = |j: &serde_json::Value| -> Vec<String> {
        let mut v: Vec<String> =
            j["needs"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
        v.sort();
        v
    };
    for test in docs.iter().filter(|j| j["name"] == "test") {
        assert_eq!(needs(test), id_of("build"));
    }
    let deploy = docs.iter().find(|j| j["name"] == "deploy").unwrap();
    let mut tests = id_of("test");
    tests.sort();
    assert_eq!(needs(deploy), tests);

    // The same commit on another branch: deploy is for main only.
    let out = push(&env, &project, &[hub_s, "main:feature"]);
    assert_eq!(out.lines().filter(|l| l.contains("git-ci: queued ")).count(), 5, "{out}");
    // A watcher on the same hub plans both heads again: all known.
    let watched = env.ci(&project, &["watch", "--hub", hub_s, "--once"]).expect(0).stderr();
    assert!(!watched.contains("git-ci watch: queued "), "{watched}");
    assert!(watched.contains("11 job(s) of these heads were queued before"), "{watched}");
    assert_eq!(queued_docs(&env, &hub).len(), 11);
}
