//! Absurd inputs (overflowing durations, NUL bytes, bad globs) are refused
//! where they come in, and one that reaches a worker anyway ends as an
//! `error` result: no panic, no lost slot.

use std::path::Path;
use std::time::Duration;

use crate::env::TestEnv;

#[test]
fn absurd_job_definitions_are_refused_at_submit_with_their_line() {
    let env = TestEnv::new();
    let repo = env.project("p", "[job.t]\nrun = \"true\"\n");
    let cases = [
        ("[job.t]\nrun = \"true\"\ntimeout = \"500000000000y\"\n", ":3:", "the maximum is 7days"),
        ("[job.t]\nrun = \"echo a\\u0000b\"\n", ":2:", "NUL"),
        ("[job.t]\nrun = \"true\"\nenv = { A = \"x\\u0000\" }\n", ":3:", "NUL"),
        ("[job.t]\nrun = \"true\"\n\nartifacts = [\"out/[z\"]\n", ":4:", "\"out/[z\" is not a valid glob"),
        ("[job.t]\nrun = \"true\"\njunit = [\"a/[b\"]\n", ":3:", "junit"),
    ];
    for (pipeline, line, says) in cases {
        env.commit_file(&repo, ".git-ci.toml", pipeline, "absurd");
        for args in [&["submit"][..], &["run"][..]] {
            let out = env.ci(&repo, args).expect(2);
            out.assert_clean_error();
            let err = out.stderr();
            assert!(err.contains(&format!(".git-ci.toml{line}")) && err.contains(says), "{pipeline:?}: {err}");
        }
    }
    for (timeout, says) in [("0s", "longer than zero"), ("500000000000y", "the maximum is 7days")] {
        let out = env.ci(&repo, &["submit", "--run", "true", "--timeout", timeout]).expect(2);
        assert!(out.stderr().contains(says), "--timeout {timeout}: {}", out.stderr());
    }
    assert!(env.ci_refs(&repo.join(".git")).is_empty(), "nothing was queued");
}

#[test]
fn a_worker_refuses_an_absurd_lease_or_interval() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.t]\nrun = \"true\"\n");
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    for (flag, says) in [("--lease", "the maximum is 1day"), ("--poll", "the maximum is 1day")] {
        let out = env.ci(&repo, &["worker", "--hub", &hub, "--once", flag, "10000y"]).expect(2);
        assert!(out.stderr().contains(says) && out.stderr().contains("10000y"), "{flag}: {}", out.stderr());
    }
    let doc = env.ci(&repo, &["show", "--hub", &hub, &id, "--json"]).expect(0).json();
    assert_eq!(doc["state"], "pending", "{doc}");
}

/// A job document written straight into a hub (no submit, no guard) with
/// a timeout no clock can add: the worker publishes it as `error` and goes
/// on to run the next job with the same, single, slot.
#[test]
fn a_pushed_job_with_an_absurd_timeout_ends_as_error_and_frees_the_slot() {
    let env = TestEnv::new();
    let (repo, hub) = env.project_on_hub("[job.t]\nrun = \"echo fine\"\n");
    let hub_path = Path::new(&hub);
    let bad = env.ci(&repo, &["submit", "--hub", &hub, "--run", "echo never"]).expect(0).stdout().trim().to_owned();
    let (queue_ref, blob) =
        env.ci_refs(hub_path).into_iter().find(|(n, _)| n.starts_with("refs/ci/queue/") && n.ends_with(&bad)).unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_str(&env.git(hub_path, &["cat-file", "blob", &blob])).expect("a job document");
    doc["timeout"] = u64::MAX.into();
    let file = env.path("job.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let doctored = env.git(hub_path, &["hash-object", "-w", file.to_str().unwrap()]);
    env.git(hub_path, &["update-ref", &queue_ref, &doctored, &blob]);
    let good = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();

    let worker = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--once", "--name", "w", "--poll", "100ms"]);
    let (status, _, err) = worker.wait_within(Duration::from_secs(60));
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let show = |id: &str| env.ci(&repo, &["show", "--hub", &hub, id, "--json"]).expect(0).json();
    let bad_doc = show(&bad);
    assert_eq!(bad_doc["state"], "error", "{bad_doc}");
    let reason = bad_doc["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("timeout 18446744073709551615") && reason.contains("604800"), "{bad_doc}");
    assert_eq!(show(&good)["state"], "passed", "the slot was freed for the next job");

    // A guarded hub refuses such a document outright.
    let guarded = env.guarded_hub("guarded.git");
    let guarded = guarded.to_str().unwrap();
    let commit = env.git(&repo, &["rev-parse", "HEAD"]);
    let in_repo = env.git(&repo, &["hash-object", "-w", file.to_str().unwrap()]);
    env.git(&repo, &["push", "-q", guarded, "main"]);
    let pin = format!("{commit}:refs/ci/pins/{bad}");
    let out = env.git_output(&repo, &["push", guarded, &pin, &format!("{in_repo}:{queue_ref}")]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("timeout 18446744073709551615"), "{said}");
}
