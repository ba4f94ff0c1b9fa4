//! `git ci doctor` on healthy and unhealthy hubs.

use std::path::Path;

use crate::env::TestEnv;

/// Replaces the blob of `refname` with `edit` applied to its JSON.
fn rewrite(env: &TestEnv, hub: &Path, refname: &str, source: &str, edit: impl Fn(&mut serde_json::Value)) {
    let text = env.git(hub, &["cat-file", "blob", source]);
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut doc);
    let file = env.path("doc.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let blob = env.git(hub, &["hash-object", "-w", file.to_str().unwrap()]);
    env.git(hub, &["update-ref", refname, &blob]);
}

fn hours_ago(h: u64) -> String {
    git_ci_core::time::rfc3339(std::time::SystemTime::now() - std::time::Duration::from_secs(h * 3600))
}

/// Writes `doc` as a blob and points `refname` at it.
fn put(env: &TestEnv, hub: &Path, refname: &str, doc: serde_json::Value) {
    let file = env.path("doc.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let blob = env.git(hub, &["hash-object", "-w", file.to_str().unwrap()]);
    env.git(hub, &["update-ref", refname, &blob]);
}

#[test]
fn a_healthy_hub_passes_by_path_and_over_git_daemon() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    env.ci(env.root.path(), &["hooks", "install", "--hub", hub_s]).expect(0);
    let by_path = env.ci(env.root.path(), &["doctor", "--hub", hub_s]).expect(0);
    for needle in
        ["ok    git version", "can write the hub's refs/", "post-receive hook installed", "core.fsync", "all is well"]
    {
        assert!(by_path.stdout().contains(needle), "{needle}:\n{}", by_path.stdout());
    }
    assert!(env.ci_refs(&hub).is_empty(), "the write check leaves nothing: {:?}", env.ci_refs(&hub));
    let daemon = env.daemon(env.root.path());
    let remote = env.ci(env.root.path(), &["doctor", "--hub", &daemon.url("hub.git")]).expect(0);
    assert!(remote.stdout().contains("cannot be read from here"), "{}", remote.stdout());
    assert!(remote.stdout().contains("can write refs/ci/*"), "{}", remote.stdout());
    assert!(env.ci_refs(&hub).is_empty());
}

#[test]
fn an_unhealthy_hub_gets_each_finding_with_its_fix() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    let project =
        env.project("project", "[job.a]\nrun = \"true\"\n\n[job.b]\nrun = \"true\"\nrequires = { gpu = \"yes\" }\n");
    env.git(&project, &["push", "-q", hub_s, "main"]);
    let ids = env.ci(&project, &["submit", "--hub", hub_s]).expect(0).stdout();
    let (a, b) = (ids.lines().next().unwrap(), ids.lines().nth(1).unwrap());
    let queue = |id: &str| format!("refs/ci/queue/default/{id}");
    for id in [a, b] {
        rewrite(&env, &hub, &queue(id), &queue(id), |d| d["submitted_at"] = hours_ago(2).into());
    }
    // Job a: claimed by a worker that died three hours ago, still registered.
    let claim = serde_json::json!({
        "version": 1, "job": a, "worker": "ghost", "attempt": 1, "nonce": "n",
        "claimed_at": hours_ago(3), "lease_ms": 60000, "lease_expires_at": hours_ago(3),
    });
    put(&env, &hub, &format!("refs/ci/claims/{a}"), claim);
    let worker = serde_json::json!({
        "version": 1, "name": "ghost", "labels": {"os": "linux"}, "queues": [], "jobs": 1, "running": [a],
        "platform": "linux-x86_64", "git_ci_version": "0", "started_at": hours_ago(4), "last_seen": hours_ago(3),
        "refresh_ms": 20000,
    });
    put(&env, &hub, "refs/ci/workers/ghost", worker);

    let run = env.ci(env.root.path(), &["doctor", "--hub", hub_s]).expect(1);
    let out = run.stdout();
    let findings: Vec<&str> = out.lines().filter(|l| l.starts_with("FIX")).collect();
    let fixes = out.lines().filter(|l| l.trim_start().starts_with("fix: ")).count();
    assert_eq!(findings.len(), fixes, "each finding with its fix:\n{out}");
    for needle in [
        "no post-receive hook",
        "core.fsync is unset",
        "receive.fsckObjects is unset",
        "worker ghost last seen 3h",
        &format!("job {a} (queue default): the claim of worker ghost (attempt 1) ran out 3h"),
        &format!("job b {b} (queue default) pending for 2h"),
        "no running worker serves queue default with the labels it requires",
        "--queue default --label gpu=yes",
        "1 job(s) pending and no worker is running",
    ] {
        assert!(out.contains(needle), "{needle}:\n{out}");
    }
    assert!(out.ends_with("thing(s) to fix\n"), "{out}");

    let port = crate::env::free_port();
    let gone = env.ci(env.root.path(), &["doctor", "--hub", &format!("git://127.0.0.1:{port}/hub.git")]).expect(1);
    assert!(gone.stdout().contains("FIX   could not reach the hub"), "{}", gone.stdout());
}

/// Every path under `dir` (itself included) whose owner is root.
fn owned_by_root(dir: &Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let meta = std::fs::symlink_metadata(dir).unwrap();
    if meta.uid() == 0 {
        out.push(dir.to_path_buf());
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).unwrap() {
            out.extend(owned_by_root(&entry.unwrap().path()));
        }
    }
    out
}

#[test]
fn doctor_as_root_on_another_users_hub_writes_nothing_and_warns() {
    if !crate::env::is_root() {
        crate::env::missing("root, to run doctor on a hub that belongs to another user");
        return;
    }
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    let chown = std::process::Command::new("chown").args(["-R", "nobody", hub_s]).status().unwrap();
    assert!(chown.success(), "chown -R nobody {hub_s}");
    assert_eq!(owned_by_root(&hub), Vec::<std::path::PathBuf>::new());

    let run = env.ci(env.root.path(), &["doctor", "--hub", hub_s]).expect(1);
    let out = run.stdout();
    assert!(out.contains("FIX   the hub belongs to nobody but doctor runs as root"), "{out}");
    assert!(out.contains(&format!("fix: run doctor as the hub's owner: sudo -u nobody git ci doctor --hub {hub_s}")));
    assert!(out.contains("FIX   no post-receive hook"), "a bare hub, read as one: {out}");
    assert!(out.contains("core.fsync is unset"), "{out}");
    assert!(!out.contains("all is well"), "{out}");
    assert_eq!(owned_by_root(&hub), Vec::<std::path::PathBuf>::new(), "doctor wrote to the hub:\n{out}");

    // What an earlier run as root left behind is named, with the fix.
    std::fs::create_dir(hub.join("objects/ab")).unwrap();
    let out = env.ci(env.root.path(), &["doctor", "--hub", hub_s]).expect(1).stdout();
    assert!(out.contains("FIX   1 objects/ab in the hub belong to another user than its owner nobody"), "{out}");
    assert!(out.contains(&format!("fix: chown -R nobody: {hub_s}")), "{out}");
}
