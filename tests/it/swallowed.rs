//! Errors are never swallowed: output that cannot be written, records on
//! the hub that cannot be read, a cache whose borrowed objects were pruned.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::env::{Run, TestEnv};

const PIPELINE: &str = "[job.hello]\nrun = \"echo hello from the log\"\n";

/// A project whose one job passed under `git ci run` (its hub is the
/// repository itself): the project and the job's id.
fn passed_job(env: &TestEnv) -> (PathBuf, String) {
    let repo = env.project("p", PIPELINE);
    env.ci(&repo, &["run"]).expect(0);
    let status = env.ci(&repo, &["status", "--json"]).expect(0).json();
    let id = status[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(status[0]["state"], "passed", "{status}");
    (repo, id)
}

/// Deletes the object of `file` in the finished job's directory, as a
/// broken disk or a careless `rm` would.
fn lose(env: &TestEnv, git_dir: &Path, id: &str, file: &str) {
    let chain = env.ci_refs(git_dir).into_iter().find(|(n, _)| n.starts_with("refs/ci/done/")).unwrap().0;
    let listing = env.git(git_dir, &["ls-tree", "-r", &chain, "--", "results"]);
    let line = listing.lines().find(|l| l.ends_with(&format!("/{id}/{file}"))).unwrap();
    let oid = line.split_whitespace().nth(2).unwrap();
    let loose = git_dir.join("objects").join(&oid[..2]).join(&oid[2..]);
    std::fs::remove_file(&loose).unwrap_or_else(|e| panic!("{file} is the loose object {}: {e}", loose.display()));
}

#[test]
fn log_into_a_full_disk_fails_and_into_a_closed_pipe_stays_quiet() {
    let env = TestEnv::new();
    let (repo, id) = passed_job(&env);
    let log = env.ci(&repo, &["log", &id]).expect(0);
    assert!(log.stdout().contains("hello from the log"), "{}", log.stdout());

    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = Run(env.ci_cmd(&repo, &["log", &id]).stdout(full).output().unwrap()).expect(2);
    out.assert_clean_error();
    assert!(out.stderr().contains("could not write the output to stdout"), "{}", out.stderr());
    assert!(out.stderr().contains("No space left on device"), "{}", out.stderr());

    // A reader that is gone before the first byte: `git ci log X | head -0`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let closed = env.ci_cmd(&repo, &["log", &id]).stdout(writer).stderr(Stdio::piped()).output().unwrap();
    assert!(closed.status.success(), "{closed:?}");
    assert_eq!(String::from_utf8_lossy(&closed.stderr), "", "nothing to say about a closed pipe");
}

#[test]
fn a_record_that_cannot_be_read_is_an_error_not_an_empty_log_or_an_error_state() {
    let env = TestEnv::new();
    let (repo, id) = passed_job(&env);
    let git_dir = repo.join(".git");

    lose(&env, &git_dir, &id, "log");
    let log = env.ci(&repo, &["log", &id]);
    assert_ne!(log.code(), 0, "an unreadable log is not an empty one: {}", log.stdout());
    log.assert_clean_error();
    assert!(log.stderr().contains("could not read log"), "{}", log.stderr());
    assert_eq!(log.stdout(), "");

    lose(&env, &git_dir, &id, "result.json");
    let show = env.ci(&repo, &["show", &id]);
    assert_ne!(show.code(), 0, "a passed job is not shown as anything else: {}", show.stdout());
    show.assert_clean_error();
    assert!(show.stderr().contains("could not read result.json"), "{}", show.stderr());
    let status = env.ci(&repo, &["status"]);
    assert_ne!(status.code(), 0, "{}", status.stdout());
    assert!(!status.stdout().contains("error"), "{}", status.stdout());
}

#[test]
fn the_cache_survives_the_user_rewriting_and_pruning_a_submitted_commit() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub(PIPELINE);
    let url = format!("file://{hub}");
    // A commit only this clone has: the cache borrows it to push its pin.
    env.commit_file(&repo, "f", "one", "work in progress");
    let id = env.ci(&repo, &["submit", "--hub", &url]).expect(0).stdout().trim().to_owned();
    env.git(&repo, &["commit", "-q", "--amend", "-m", "reworded"]);
    env.git(&repo, &["reflog", "expire", "--expire=now", "--all"]);
    env.git(&repo, &["gc", "-q", "--prune=now"]);

    for args in [&["status", "--hub", &url][..], &["show", &id, "--hub", &url]] {
        let run = env.ci(&repo, args);
        assert_eq!(run.code(), 0, "git ci {args:?}:\n{}", run.stderr());
    }
    let show = env.ci(&repo, &["show", &id, "--hub", &url]).expect(0);
    assert!(show.stdout().contains("pending"), "{}", show.stdout());
    // And it can still submit and cancel: the pin came back from the hub.
    env.ci(&repo, &["cancel", &id, "--hub", &url]).expect(0);
    env.ci(&repo, &["submit", "--hub", &url]).expect(0);
}
