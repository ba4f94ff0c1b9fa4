//! `git ci worker --clean` and `--cache-max-size`: what a worker leaves on
//! disk is removed, never what is in use.

use std::path::{Path, PathBuf};

use crate::env::TestEnv;

const CACHED: &str =
    "[job.keep]\nrun = \"mkdir -p target && head -c 2000 /dev/zero > target/f\"\ncache = [\"target\"]\n";

/// Runs `keep` once on a new hub as worker w1: (repo, hub, w1's work dir,
/// the hub's cache dir in it).
fn worker_with_a_cache(env: &TestEnv) -> (PathBuf, String, PathBuf, PathBuf) {
    let (repo, hub) = env.project_on_hub(CACHED);
    env.ci(&repo, &["submit", "--hub", &hub]).expect(0);
    env.ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w1"]).expect(0);
    let work = env.path("cache/work/w1");
    let hubs: Vec<_> = std::fs::read_dir(work.join("cache")).unwrap().flatten().map(|e| e.path()).collect();
    assert_eq!(hubs.len(), 1, "one hub's caches: {hubs:?}");
    assert!(hubs[0].join("keep/target/f").is_file(), "the job's cache is kept");
    (repo, hub, work, hubs[0].clone())
}

/// A cache of another job, last used ten days ago, and a checkout a dead
/// worker left.
fn stale_leftovers(work: &Path, hub_cache: &Path) -> (PathBuf, PathBuf) {
    let old = hub_cache.join("old");
    std::fs::create_dir_all(old.join("target")).unwrap();
    std::fs::write(old.join("target/big"), vec![0u8; 20_000]).unwrap();
    for p in [old.join("target/big"), old.join("target"), old.clone()] {
        let ok = std::process::Command::new("touch").args(["-d", "10 days ago"]).arg(&p).status().unwrap();
        assert!(ok.success());
    }
    let checkout = work.join("jobs/20261101T000000000-0123456789ab-x1y2z3");
    std::fs::create_dir_all(&checkout).unwrap();
    std::fs::write(checkout.join("log"), "left behind").unwrap();
    (old, checkout)
}

#[test]
fn clean_frees_a_stale_cache_and_a_dead_checkout_and_keeps_a_live_cache() {
    let env = TestEnv::new();
    let (repo, hub, work, hub_cache) = worker_with_a_cache(&env);
    let (old, checkout) = stale_leftovers(&work, &hub_cache);

    // Flags that cannot apply are refused, not ignored.
    env.ci(&repo, &["worker", "--older-than", "3d"]).expect(2);
    env.ci(&repo, &["worker", "--clean", "--jobs", "2"]).expect(2);
    // Not while a worker of that name runs here.
    let running = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w1"]);
    // It says it started once it holds its name.
    crate::env::wait_until(std::time::Duration::from_secs(20), "the worker starts", || !running.stderr().is_empty());
    let refused = env.ci(&repo, &["worker", "--clean", "--name", "w1"]).expect(2);
    assert!(refused.stderr().contains("runs on this machine"), "{}", refused.stderr());
    running.signal("TERM");
    running.wait();
    assert!(old.exists(), "nothing removed while it ran");

    let run = env.ci(&repo, &["worker", "--clean", "--name", "w1"]).expect(0);
    let out = run.stdout();
    assert!(out.contains("removed 1 checkout(s)"), "{out}");
    assert!(out.contains("removed 1 cache director(ies) unused for"), "{out}");
    assert!(out.contains("freed ") && out.contains("KiB"), "{out}");
    assert!(!old.exists() && !checkout.exists(), "{out}");
    assert!(hub_cache.join("keep/target/f").is_file(), "a cache used today is kept: {out}");
}

#[test]
fn a_worker_over_its_cache_max_size_drops_the_oldest_caches_only() {
    let env = TestEnv::new();
    let (repo, hub, work, hub_cache) = worker_with_a_cache(&env);
    let (old, checkout) = stale_leftovers(&work, &hub_cache);
    env.ci(&repo, &["submit", "--hub", &hub]).expect(0);
    let run = env.ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w1", "--cache-max-size", "8K"]).expect(0);
    let log = run.stderr();
    assert!(log.contains("removed 1 checkout(s) left by a stopped worker"), "{log}");
    assert!(log.contains("removed 1 least recently used cache(s)"), "{log}");
    assert!(!old.exists() && !checkout.exists(), "{log}");
    assert!(hub_cache.join("keep/target/f").is_file(), "the job's own cache is kept: {log}");
    let status = env.ci(&repo, &["status", "--hub", &hub, "--json"]).expect(0).json();
    assert!(status.as_array().unwrap().iter().all(|j| j["state"] == "passed"), "{status}");
}
