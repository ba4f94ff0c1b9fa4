//! Every answer is true at a glance (issue 17): what `status`, `show` and
//! `log` say about a hub is what a reader needs to act on, not an artefact
//! of how the records are read.

use std::path::Path;

use crate::env::TestEnv;

/// A job that passes once `flag` exists: a failure and then a passing
/// retry of the very same definition.
fn flag_pipeline(flag: &Path) -> String {
    format!("[job.check]\nrun = \"test -f {}\"\n", flag.display())
}

fn submit(env: &TestEnv, repo: &Path, hub: &str, extra: &[&str]) -> String {
    let args = [&["submit", "--hub", hub][..], extra].concat();
    env.ci(repo, &args).expect(0).stdout().trim().to_owned()
}

fn drain(env: &TestEnv, repo: &Path, hub: &str, worker: &str) {
    env.ci(repo, &["worker", "--hub", hub, "--once", "--name", worker]).expect(0);
}

fn ids(run: &crate::env::Run) -> Vec<String> {
    run.json().as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
}

/// Item 5: `status REV` stayed red (exit 1) after a passing retry.
#[test]
fn status_of_a_commit_follows_the_latest_run_of_each_job() {
    let env = TestEnv::new();
    let flag = env.path("flag");
    let (repo, hub) = env.project_on_hub(&flag_pipeline(&flag));
    let first = submit(&env, &repo, &hub, &[]);
    drain(&env, &repo, &hub, "w");
    env.ci(&repo, &["status", "--hub", &hub, "HEAD"]).expect(1);
    std::fs::write(&flag, "").unwrap();
    env.ci(&repo, &["retry", "--hub", &hub, &first]).expect(0);
    drain(&env, &repo, &hub, "w");
    let status = env.ci(&repo, &["status", "--hub", &hub, "HEAD"]).expect(0);
    assert!(status.stdout().contains("failed"), "the earlier run is still listed: {}", status.stdout());
    // And a new run in flight makes the commit "running" again.
    submit(&env, &repo, &hub, &[]);
    env.ci(&repo, &["status", "--hub", &hub, "HEAD"]).expect(4);
}

/// Item 6: the limit was applied before the filter, so an old failure
/// behind two newer passes was not found.
#[test]
fn status_filters_before_the_limit_by_state_job_worker_branch_and_time() {
    let env = TestEnv::new();
    let flag = env.path("flag");
    let pipeline = format!("{}[job.lint]\nrun = \"true\"\n", flag_pipeline(&flag));
    let (repo, hub) = env.project_on_hub(&pipeline);
    let failed = submit(&env, &repo, &hub, &["--job", "check"]);
    drain(&env, &repo, &hub, "old-worker");
    std::fs::write(&flag, "").unwrap();
    for _ in 0..3 {
        submit(&env, &repo, &hub, &[]);
    }
    drain(&env, &repo, &hub, "new-worker");
    let status = |args: &[&str]| env.ci(&repo, &[&["status", "--hub", &hub, "--json"][..], args].concat()).expect(0);
    assert_eq!(ids(&status(&["--state", "failed", "--limit", "2"])), [failed.as_str()]);
    assert_eq!(ids(&status(&["--job", "check", "--limit", "10"])).len(), 4);
    assert_eq!(ids(&status(&["--job", "lint", "--limit", "2"])).len(), 2);
    assert_eq!(ids(&status(&["--worker", "old-worker"])), [failed.as_str()]);
    assert_eq!(ids(&status(&["--branch", "main"])).len(), 7);
    assert_eq!(ids(&status(&["--branch", "other"])).len(), 0);
    assert_eq!(ids(&status(&["--since", "1h"])).len(), 7);
    assert_eq!(ids(&status(&["--since", "2999-01-01"])).len(), 0);
    // What matched nothing is said, not "no jobs yet".
    let none = env.ci(&repo, &["status", "--hub", &hub, "--worker", "nobody"]).expect(0);
    assert!(none.stderr().contains("no job matches --worker nobody"), "{}", none.stderr());
    let bad = env.ci(&repo, &["status", "--hub", &hub, "--since", "yesterday-ish"]).expect(2);
    assert!(bad.stderr().contains("--since"), "{}", bad.stderr());
}

/// Item 9: in a clone with an `origin`, `run` publishes into the clone and
/// prints `see 'git ci log ID'`, which `log` and `show` looked up on the
/// origin alone ("no job ID on the hub", exit 2).
#[test]
fn ids_printed_by_run_open_with_log_and_show_from_the_same_directory() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.broken]\nrun = \"echo about to fail; exit 3\"\n");
    env.git(&repo, &["remote", "add", "origin", &hub]);
    let run = env.ci(&repo, &["run"]).expect(1);
    let err = run.stderr();
    let id = err.split("git ci log ").nth(1).and_then(|s| s.split('`').next()).expect("run names the log");
    let log = env.ci(&repo, &["log", id]).expect(0);
    assert!(log.stdout().contains("about to fail"), "{}", log.stdout());
    let show = env.ci(&repo, &["show", "--json", id]).expect(0).json();
    assert_eq!(show["state"], "failed");
    // The origin is still the hub for what it holds: --hub names it alone.
    env.ci(&repo, &["show", "--hub", &hub, id]).expect(2);
}

/// Item 10: `run -q` printed nothing when a job failed (exit 1).
#[test]
fn quiet_runs_still_name_their_failures() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.broken]\nrun = \"exit 3\"\n\n[job.fine]\nrun = \"true\"\n");
    let run = env.ci(&repo, &["run", "-q"]).expect(1);
    let err = run.stderr();
    assert!(err.contains("broken") && err.contains("git ci log "), "the failure is named: {err}");
    assert!(err.contains("1 passed, 1 failed"), "{err}");
    assert!(!err.contains("fine"), "no progress lines under -q: {err}");
    let passing = env.ci(&repo, &["run", "-q", "--job", "fine", "--force"]).expect(0);
    assert_eq!(passing.stderr(), "", "nothing to say when all passed");
}

/// Item 10: `-v` wrote colour escapes into a log file.
#[test]
fn verbose_logs_into_a_file_are_plain_text() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.check]\nrun = \"true\"\n");
    // A revision git resolves (HEAD is read in-process), so that git runs.
    let log = env.ci(&repo, &["-v", "run", "main~0"]).expect(0);
    let err = log.stderr();
    assert!(err.contains("git rev-parse"), "-v logs git commands: {err}");
    assert!(!err.contains('\x1b'), "escape codes in a file: {err:?}");
}

/// Item 10: `submitted_by` ignored GIT_COMMITTER_EMAIL/NAME: it follows
/// git's identity rules, as `git commit` does.
#[test]
fn submitters_are_who_git_says_commits() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.check]\nrun = \"true\"\n");
    env.git(&repo, &["config", "user.email", "config@example.com"]);
    env.git(&repo, &["config", "user.name", "Config Name"]);
    // The test environment sets GIT_COMMITTER_NAME and GIT_COMMITTER_EMAIL,
    // which win over the config for git, so for git-ci too.
    let id = submit(&env, &repo, &hub, &[]);
    let show = env.ci(&repo, &["show", "--hub", &hub, "--json", &id]).expect(0).json();
    assert_eq!(show["submitted_by"], "Test Committer <committer@example.com>");
}

/// Item 11: `submit` had no `--priority`, and priority was in no help.
#[test]
fn submit_sets_the_priority_and_says_so_in_its_help() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.check]\nrun = \"true\"\npriority = 2\n");
    let show = |id: &str| env.ci(&repo, &["show", "--hub", &hub, "--json", id]).expect(0).json();
    assert_eq!(show(&submit(&env, &repo, &hub, &[]))["priority"], 2, "the file's own");
    assert_eq!(show(&submit(&env, &repo, &hub, &["--priority", "7"]))["priority"], 7);
    assert_eq!(show(&submit(&env, &repo, &hub, &["--priority", "-3"]))["priority"], -3);
    env.ci(&repo, &["submit", "--hub", &hub, "--priority", "high"]).expect(2);
    let help = env.ci(&repo, &["submit", "-h"]).expect(0).stdout();
    assert!(help.contains("--priority <N>"), "{help}");
    let usage = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/usage.md")).unwrap();
    assert!(usage.contains("| `--priority N` |"), "docs/usage.md's table of submit flags says how to use it");
}

/// Item 11: an ad-hoc job was always `adhoc`; `--name` names it.
#[test]
fn ad_hoc_jobs_take_a_name() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.check]\nrun = \"true\"\n");
    let id = submit(&env, &repo, &hub, &["--run", "true", "--name", "bench-parser"]);
    let show = env.ci(&repo, &["show", "--hub", &hub, "--json", &id]).expect(0).json();
    assert_eq!(show["name"], "bench-parser");
    assert_eq!(show["ad_hoc"], true);
    // A name with nothing to name, or one that cannot be a name: refused.
    env.ci(&repo, &["submit", "--hub", &hub, "--name", "x"]).expect(2);
    let bad = env.ci(&repo, &["submit", "--hub", &hub, "--run", "true", "--name", "a b"]).expect(2);
    assert!(bad.stderr().contains("--name \"a b\" is not allowed"), "{}", bad.stderr());
}

/// Item 11: a second worker under a name in use is refused, on this
/// machine (the name's lock) and on another (the hub's registration).
#[test]
fn a_second_worker_under_the_same_name_is_refused() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.check]\nrun = \"true\"\n");
    let _first = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w", "--poll", "100ms"]);
    let registered = || env.ci_refs(Path::new(&hub)).iter().any(|(name, _)| name == "refs/ci/workers/w");
    crate::env::wait_until(std::time::Duration::from_secs(20), "the first worker to register", registered);
    let here = env.ci(&repo, &["worker", "--hub", &hub, "--name", "w", "--once"]).expect(2);
    assert!(here.stderr().contains("already runs as \"w\""), "{}", here.stderr());
    // Another machine: another cache, so only the hub can tell.
    let mut elsewhere = env.ci_cmd(&repo, &["worker", "--hub", &hub, "--name", "w", "--once"]);
    elsewhere.env("GIT_CI_CACHE_DIR", env.path("other-cache"));
    let elsewhere = crate::env::Run(elsewhere.output().unwrap()).expect(2);
    assert!(elsewhere.stderr().contains("another worker runs as \"w\""), "{}", elsewhere.stderr());
}

/// Item 11: `log --follow -h` said it waits and then prints; it streams.
#[test]
fn log_follow_help_says_it_streams() {
    let env = TestEnv::new();
    let help = env.ci(&env.path(""), &["log", "-h"]).expect(0).stdout();
    assert!(help.contains("as it grows"), "{help}");
    assert!(!help.contains("then print its log"), "{help}");
}

/// Item 8: a job that requires what no live worker has sat pending
/// silently; `show` and `submit --wait` say why.
#[test]
fn a_job_no_live_worker_can_run_says_why_it_waits() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.check]\nrun = \"true\"\n");
    let id = submit(&env, &repo, &hub, &["--queue", "gpu", "--require", "gpu=a100"]);
    let why = "no live worker serves queue gpu with gpu=a100";
    let show = env.ci(&repo, &["show", "--hub", &hub, &id]).expect(0);
    assert!(show.stdout().contains(why), "{}", show.stdout());
    let json = env.ci(&repo, &["show", "--hub", &hub, "--json", &id]).expect(0).json();
    assert_eq!(json["waiting_reason"], why);
    let status = env.ci(&repo, &["status", "--hub", &hub]).expect(0).stdout();
    assert!(status.lines().any(|l| l.starts_with(&id) && l.ends_with(why)), "{status}");
    // A live worker that can run it: it waits its turn, no reason given.
    let _worker = env.spawn_ci(
        &repo,
        &["worker", "--hub", &hub, "--name", "g", "--queue", "gpu", "--label", "gpu=a100", "--poll", "100ms"],
    );
    let done = || env.ci(&repo, &["show", "--hub", &hub, "--json", &id]).json()["state"] == "passed";
    crate::env::wait_until(std::time::Duration::from_secs(30), "the gpu worker to run it", done);
    // `submit --wait` says it once, then waits (here, for a worker that comes).
    let waiting = env.spawn_ci(&repo, &["submit", "--hub", &hub, "--wait", "--queue", "cpu", "--require", "os=plan9"]);
    crate::env::wait_until(std::time::Duration::from_secs(20), "the reason", || waiting.stderr().contains("waits: "));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let err = waiting.stderr();
    assert_eq!(err.matches("no live worker serves queue cpu with os=plan9").count(), 1, "{err}");
}
