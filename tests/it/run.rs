//! `git ci run`: no set-up, in the repository itself.

use crate::env::TestEnv;

const PIPELINE: &str = r#"
[job.hello]
run = "echo hello from $GIT_CI_JOB at $GIT_CI_COMMIT; test -f .git-ci.toml; test \"$CI\" = true"

[job.broken]
run = "echo about to fail; exit 3"
"#;

#[test]
fn runs_every_job_and_exits_by_the_results() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    let run = env.ci(&repo, &["run"]).expect(1);
    let err = run.stderr();
    assert!(err.contains("1 passed, 1 failed"), "{err}");
    assert!(err.contains("git ci log"), "points at the failed log: {err}");

    let status = env.ci(&repo, &["status", "--json"]).expect(0).json();
    let jobs = status.as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    let state = |name: &str| jobs.iter().find(|j| j["name"] == name).unwrap()["state"].as_str().unwrap().to_owned();
    assert_eq!(state("hello"), "passed");
    assert_eq!(state("broken"), "failed");

    // Finished jobs leave no live refs behind: only the done chain.
    let refs = env.ci_refs(&repo.join(".git"));
    assert!(refs.iter().all(|(n, _)| n.starts_with("refs/ci/done/")), "{refs:?}");
}

#[test]
fn only_passing_jobs_are_skipped_on_the_same_tree() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    env.ci(&repo, &["run"]).expect(1);
    let again = env.ci(&repo, &["run"]).expect(1);
    assert!(again.stderr().contains("skipped  hello"), "{}", again.stderr());
    assert!(!again.stderr().contains("skipped  broken"), "{}", again.stderr());

    let forced = env.ci(&repo, &["run", "--force", "--job", "hello"]).expect(0);
    assert!(!forced.stderr().contains("skipped"), "{}", forced.stderr());
    assert!(forced.stderr().contains("1 passed, 0 failed"), "{}", forced.stderr());

    // A new commit with the same tree is the same code: still skipped.
    env.git(&repo, &["commit", "-q", "--allow-empty", "-m", "empty"]);
    let same_tree = env.ci(&repo, &["run", "--job", "hello"]).expect(0);
    assert!(same_tree.stderr().contains("skipped  hello"), "{}", same_tree.stderr());
}

#[test]
fn a_range_runs_every_commit_oldest_first() {
    let env = TestEnv::new();
    let order = env.path("order");
    let repo = env.project("p", &format!("[job.count]\nrun = \"cat n; cat n >> {}\"\n", order.display()));
    let first = env.commit_file(&repo, "n", "1", "one");
    env.commit_file(&repo, "n", "2", "two");
    env.commit_file(&repo, "n", "3", "three");
    env.ci(&repo, &["run", "--jobs", "1", &format!("{first}..HEAD")]).expect(0);
    assert_eq!(std::fs::read_to_string(&order).unwrap(), "23", "ran oldest first");
    let status = env.ci(&repo, &["status", "--json"]).expect(0).json();
    let mut jobs: Vec<_> = status.as_array().unwrap().iter().collect();
    assert_eq!(jobs.len(), 2, "two commits after {first}");
    jobs.sort_by_key(|j| j["id"].as_str().unwrap().to_owned());
    let logs: Vec<String> =
        jobs.iter().map(|j| env.ci(&repo, &["log", j["id"].as_str().unwrap()]).expect(0).stdout()).collect();
    assert_eq!(logs, ["2", "3"], "ids sort oldest first");
}

#[test]
fn logs_keep_bytes_and_colours() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.c]\nrun = \"printf '\\\\033[31mred\\\\033[0m\\\\n'; echo err >&2\"\n");
    env.ci(&repo, &["run"]).expect(0);
    let status = env.ci(&repo, &["status", "--json"]).expect(0).json();
    let id = status[0]["id"].as_str().unwrap().to_owned();
    let log = env.ci(&repo, &["log", &id]).expect(0);
    assert_eq!(log.0.stdout, b"\x1b[31mred\x1b[0m\nerr\n");
    let show = env.ci(&repo, &["show", &id, "--json"]).expect(0).json();
    assert_eq!(show["state"], "passed");
    assert_eq!(show["exit_code"], 0);
    assert_eq!(show["name"], "c");
    assert_eq!(show["log_bytes"], 17);
    assert_eq!(show["attempt"], 1);
    assert!(show["log_sha256"].as_str().unwrap().len() == 64);
}

#[test]
fn cache_directories_survive_between_runs_of_a_job() {
    let env = TestEnv::new();
    let script = "if test -f c/seen; then echo warm; else echo cold; fi; mkdir -p c; touch c/seen";
    let repo = env.project("p", &format!("[job.cached]\nrun = \"{script}\"\ncache = [\"c\"]\n"));
    env.ci(&repo, &["run"]).expect(0);
    env.ci(&repo, &["run", "--force"]).expect(0);
    let status = env.ci(&repo, &["status", "--json"]).expect(0).json();
    let mut ids: Vec<String> =
        status.as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    let logs: Vec<String> = ids.iter().map(|id| env.ci(&repo, &["log", id]).expect(0).stdout()).collect();
    assert_eq!(logs, ["cold\n", "warm\n"]);
}

/// The registration of `run`'s embedded worker: none in a clone that is
/// its own hub (no one else looks for workers there, and it cost two ref
/// transactions a run), the usual one on a hub given with `--hub`.
#[test]
fn run_registers_its_worker_only_on_a_hub_of_others() {
    use crate::env::wait_until;
    use std::time::Duration;
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.slow]\nrun = \"sleep 1\"\n");
    let registrations =
        |git_dir: &std::path::Path| env.git(git_dir, &["for-each-ref", "--format=%(refname)", "refs/ci/workers/"]);
    for (args, git_dir, registered) in [
        (vec!["run", "--force"], repo.join(".git"), false),
        (vec!["run", "--force", "--hub", hub.as_str()], std::path::PathBuf::from(&hub), true),
    ] {
        let run = env.spawn_ci(&repo, &args);
        wait_until(Duration::from_secs(20), "the job's claim", || {
            !env.git(&git_dir, &["for-each-ref", "refs/ci/claims/"]).is_empty()
        });
        assert_eq!(!registrations(&git_dir).is_empty(), registered, "{args:?}: {}", registrations(&git_dir));
        let (status, _, err) = run.wait_within(Duration::from_secs(30));
        assert!(status.success(), "{args:?}: {err}");
        assert_eq!(registrations(&git_dir), "", "{args:?}: the registration is gone after the run");
    }
}
