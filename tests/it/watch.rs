//! `git ci watch`: a hub without hooks, polled; what was queued is known
//! from the hub alone.

use std::path::{Path, PathBuf};

use crate::env::TestEnv;
use crate::hooks::summary;

const PIPELINE: &str = "[job.test]\nrun = \"true\"\n\n[job.lint]\nrun = \"true\"\nbranches = [\"main\"]\n";

/// A bare hub without hooks holding `main` of a project.
fn hub_without_hooks(env: &TestEnv) -> (PathBuf, PathBuf) {
    let hub = env.bare_hub("hub.git");
    let project = env.project("project", PIPELINE);
    env.git(&project, &["push", "-q", hub.to_str().unwrap(), "main"]);
    (hub, project)
}

fn watch_once(env: &TestEnv, dir: &Path, hub: &str) -> String {
    env.ci(dir, &["watch", "--hub", hub, "--once"]).expect(0).stderr()
}

fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn watching_twice_queues_once() {
    let env = TestEnv::new();
    let (hub, project) = hub_without_hooks(&env);
    let daemon = env.daemon(env.root.path());
    let url = daemon.url("hub.git");
    let first = watch_once(&env, &project, &url);
    assert_eq!(lines_with(&first, "git-ci watch: queued "), 2, "{first}");
    let refs = env.ci_refs(&hub);
    let second = watch_once(&env, &project, &url);
    assert_eq!(lines_with(&second, "git-ci watch: queued "), 0, "{second}");
    assert!(second.contains("git-ci watch: 2 job(s) of these heads were queued before"), "{second}");
    assert_eq!(env.ci_refs(&hub), refs);
    // By path too: the record is on the hub, not in the watcher.
    let third = watch_once(&env, &project, hub.to_str().unwrap());
    assert_eq!(lines_with(&third, "git-ci watch: queued "), 0, "{third}");
    assert_eq!(
        summary(&env, &project, &url),
        [("refs/heads/main", "lint", "pending"), ("refs/heads/main", "test", "pending")].map(|(a, b, c)| (
            a.to_owned(),
            b.to_owned(),
            c.to_owned()
        ))
    );
}

/// Three `watch --once` at the same moment on a hub with four branches.
fn race(env: &TestEnv, project: &Path, hub_url: &str) {
    let watchers: Vec<_> = (0..3)
        .map(|_| {
            env.ci_cmd(project, &["watch", "--hub", hub_url, "--once"])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut queued = 0;
    for w in watchers {
        let out = w.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        queued += lines_with(&err, "git-ci watch: queued ");
    }
    let jobs = summary(env, project, hub_url);
    assert_eq!(jobs.len(), 5, "test on main, a, b, c and lint on main: {jobs:?}");
    assert!(jobs.windows(2).all(|w| w[0] != w[1]), "no job twice: {jobs:?}");
    assert_eq!(queued, 5, "each said once");
}

#[test]
fn watchers_racing_queue_each_job_once() {
    let env = TestEnv::new();
    let (hub, project) = hub_without_hooks(&env);
    let other = env.bare_hub("other.git");
    for b in ["a", "b", "c"] {
        env.git(&project, &["checkout", "-q", "-b", b, "main"]);
        env.commit_file(&project, "f", b, b);
    }
    for h in [&hub, &other] {
        env.git(&project, &["push", "-q", h.to_str().unwrap(), "main", "a", "b", "c"]);
    }
    let daemon = env.daemon(env.root.path());
    race(&env, &project, &daemon.url("hub.git"));
    race(&env, &project, other.to_str().unwrap());
}

#[test]
fn watching_supersedes_and_cancels_the_jobs_of_deleted_branches() {
    let env = TestEnv::new();
    let (hub, project) = hub_without_hooks(&env);
    let hub_s = hub.to_str().unwrap();
    env.git(&project, &["checkout", "-q", "-b", "feature"]);
    env.git(&project, &["push", "-q", hub_s, "feature"]);
    watch_once(&env, &project, hub_s);
    let second = env.commit_file(&project, "a.txt", "1", "second");
    env.git(&project, &["push", "-q", hub_s, "feature"]);
    let out = watch_once(&env, &project, hub_s);
    assert!(out.contains(&format!("superseded by {second}")), "{out}");

    // A job submitted by hand from a branch the hub never had is not the
    // watcher's to cancel.
    env.git(&project, &["checkout", "-q", "-b", "local-only"]);
    env.ci(&project, &["submit", "--hub", hub_s, "--job", "test"]).expect(0);
    env.git(&project, &["push", "-q", hub_s, ":feature"]);
    let out = watch_once(&env, &project, hub_s);
    assert_eq!(lines_with(&out, "refs/heads/feature was deleted"), 1, "{out}");
    let jobs = summary(&env, &project, hub_s);
    let want = [
        ("refs/heads/feature", "test", "cancelled"),
        ("refs/heads/feature", "test", "cancelled"),
        ("refs/heads/local-only", "test", "pending"),
        ("refs/heads/main", "lint", "pending"),
        ("refs/heads/main", "test", "pending"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(jobs, want);
}

#[test]
fn an_unreachable_hub_is_exit_3_for_watch_once() {
    let env = TestEnv::new();
    let port = crate::env::free_port();
    let run = env.ci(env.root.path(), &["watch", "--hub", &format!("git://127.0.0.1:{port}/none.git"), "--once"]);
    run.expect(3).assert_clean_error();
}
