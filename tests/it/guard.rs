//! The pre-receive guard: real pushes to a bare hub with `git ci hooks
//! install` in place, over `file://` (git's local transport, hooks and all)
//! and over `git daemon`. A plain path hub is written in-process by gix and
//! runs no hooks, so every hub address here is a URL.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use git_ci_core::done::{self, Content, Entry};
use git_ci_core::hub::{Hub, LocalHub};
use git_ci_core::model::{Claim, Job, JobResult, JobSpec, Status, WorkerInfo};
use git_ci_core::refs;
use gix::ObjectId;

use crate::env::{TestEnv, wait_until};

/// A guarded hub, and a scratch repository where the pushed objects are made.
struct World {
    env: TestEnv,
    hub: PathBuf,
    url: String,
    src: LocalHub,
    src_dir: PathBuf,
}

fn world() -> World {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let src_dir = env.bare_hub("src.git");
    let src = LocalHub::open(&src_dir).unwrap();
    let url = format!("file://{}", hub.display());
    World { env, hub, url, src, src_dir }
}

impl World {
    fn blob(&self, bytes: &[u8]) -> ObjectId {
        (&self.src as &dyn Hub).write_blob(bytes).unwrap()
    }

    fn push(&self, args: &[&str]) -> Output {
        self.env.git_output(&self.src_dir, &[&["push", "--atomic", "--porcelain"], args].concat())
    }

    /// Every ref of the hub and its value.
    fn hub_refs(&self) -> String {
        self.env.git(&self.hub, &["for-each-ref", "--format=%(refname) %(objectname)"])
    }

    fn hub_has(&self, oid: &str) -> bool {
        self.env.git_output(&self.hub, &["cat-file", "-e", oid]).status.success()
    }

    /// Pushes `spec` with a good companion update in the same atomic push;
    /// the push must fail naming `refname` and `why`, and leave the hub as
    /// it was: no ref moved, no pushed object stored.
    fn refused(&self, extra: &[&str], spec: &str, refname: &str, why: &str) {
        let before = self.hub_refs();
        let pushed = spec.trim_start_matches('+').split(':').next().unwrap();
        let existed = self.hub_has(pushed);
        let info = WorkerInfo::new("companion", Default::default(), vec![], 1, 1000);
        let companion = self.blob(&info.to_json());
        let companion_spec = format!("{companion}:refs/ci/workers/companion");
        let args: Vec<&str> = extra.iter().copied().chain([self.url.as_str(), &companion_spec, spec]).collect();
        let out = self.push(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{spec} should be refused:\n{stderr}");
        let line = stderr.lines().find(|l| l.starts_with(&format!("remote: git-ci: refused {refname}: ")));
        assert!(line.is_some_and(|l| l.contains(why)), "refused {refname}: {why}:\n{stderr}");
        assert_eq!(self.hub_refs(), before, "nothing moved");
        assert!(!self.hub_has(&companion.to_string()), "nothing of the push stored");
        if !existed {
            assert!(!self.hub_has(pushed), "the refused object is not stored");
        }
    }

    fn accepted(&self, extra: &[&str], specs: &[&str]) {
        let args: Vec<&str> = extra.iter().copied().chain([self.url.as_str()]).chain(specs.iter().copied()).collect();
        let out = self.push(&args);
        assert!(out.status.success(), "{specs:?} should pass:\n{}", String::from_utf8_lossy(&out.stderr));
    }

    /// A `done` commit on `tip` holding `job` with a result, a log and files.
    fn done_commit(&self, tip: Option<ObjectId>, job: &Job, log: &[u8], files: Vec<(String, Content)>) -> ObjectId {
        let mut result = JobResult::without_run(&job.id, Status::Passed, "w1", 1, String::new());
        result.reason = None;
        let entry = Entry {
            id: job.id.clone(),
            job_json: job.to_json(),
            result,
            log: Content::Bytes(log.to_vec()),
            files,
            cache_key: None,
        };
        done::append(&self.src, tip, &[entry]).unwrap()
    }
}

fn job(queue: &str) -> Job {
    let mut spec = JobSpec::ad_hoc("true");
    spec.queue = queue.into();
    Job::new(spec, &"a".repeat(40), &"b".repeat(40), "refs/heads/main", "me")
}

fn spec(oid: ObjectId, refname: &str) -> String {
    format!("{oid}:{refname}")
}

#[test]
fn bad_job_documents_are_refused_with_the_ref_and_the_reason() {
    let w = world();
    let j = job("default");
    let q = refs::queue("default", &j.id);
    w.refused(&[], &spec(w.blob(b"{ nope"), &q), &q, "not valid JSON");
    let mut v: serde_json::Value = serde_json::from_slice(&j.to_json()).unwrap();
    v.as_object_mut().unwrap().remove("version");
    w.refused(&[], &spec(w.blob(v.to_string().as_bytes()), &q), &q, "no \"version\"");
    let other = job("default");
    let q_other = refs::queue("default", &other.id);
    w.refused(&[], &spec(w.blob(&j.to_json()), &q_other), &q_other, "not the ref's");
    let q_linux = refs::queue("linux", &j.id);
    w.refused(&[], &spec(w.blob(&j.to_json()), &q_linux), &q_linux, "queue is \"default\"");
    let mut v: serde_json::Value = serde_json::from_slice(&j.to_json()).unwrap();
    v["padding"] = "x".repeat(70 * 1024).into();
    w.refused(&[], &spec(w.blob(v.to_string().as_bytes()), &q), &q, "over the 65536-byte limit");
    // Not without its pin.
    let doc = w.blob(&j.to_json());
    w.refused(&[], &spec(doc, &q), &q, "without its pin");
    // The good one passes with its pin, and then its claim, which moves
    // the queue ref to the claimed tree.
    let pin = w.done_commit(None, &job("default"), b"log\n", vec![]);
    w.accepted(&[], &[&spec(pin, &refs::pin(&j.id)), &spec(doc, &q)]);
    let claim = w.blob(&Claim::new(&j.id, "w1", 1, Duration::from_secs(60)).to_json());
    let claimed = git_ci_core::claimed::write(&w.src, doc, claim).unwrap();
    w.accepted(&[], &[&spec(claim, &refs::claim(&j.id)), &format!("+{}", spec(claimed, &q))]);
}

#[test]
fn claims_pins_logs_and_unknown_refs_are_refused() {
    let w = world();
    let j = job("default");
    let claim = Claim::new(&j.id, "w1", 1, Duration::from_secs(60));
    let c = refs::claim(&j.id);
    w.refused(&[], &spec(w.blob(&claim.to_json()), &c), &c, "must move the job's queue ref");
    w.refused(&[], &spec(w.blob(b"{}"), &c), &c, "claim");
    let p = refs::pin(&j.id);
    w.refused(&[], &spec(w.blob(b"not a commit"), &p), &p, "must be a commit, not a blob");
    let l = refs::log(&j.id);
    w.refused(&[], &spec(w.blob(b"some output"), &l), &l, "header");
    let x = "refs/ci/scratch/x";
    w.refused(&[], &spec(w.blob(b"x"), x), x, "unknown ref under refs/ci/");
    let wr = "refs/ci/workers/other";
    let info = WorkerInfo::new("w1", Default::default(), vec![], 1, 1000);
    w.refused(&[], &spec(w.blob(&info.to_json()), wr), wr, "names \"w1\"");

    // The switch: with the guard off, the unknown ref goes through.
    w.env.git(&w.hub, &["config", "ci.guard", "false"]);
    w.accepted(&[], &[&spec(w.blob(b"x"), x)]);
}

#[test]
fn done_chains_only_move_forward_unless_gc_and_hold_sane_results() {
    let w = world();
    let d = refs::done("w1");
    let first = w.done_commit(None, &job("default"), b"log\n", vec![]);
    let second = w.done_commit(Some(first), &job("default"), b"log\n", vec![]);
    w.accepted(&[], &[&spec(second, &d)]);
    w.refused(&[], &format!("+{first}:{d}"), &d, "not a fast-forward");
    // `git ci gc` says so with a push option (install advertises them).
    w.accepted(&["-o", "ci.gc"], &[&format!("+{first}:{d}")]);
    w.accepted(&[], &[&spec(second, &d)]);

    // A log over the hub's limit.
    w.env.git(&w.hub, &["config", "ci.maxLogBytes", "100"]);
    let big = w.done_commit(Some(second), &job("default"), &[b'x'; 200], vec![]);
    w.refused(&[], &spec(big, &d), &d, "over the hub's ci.maxLogBytes (100)");
    w.env.git(&w.hub, &["config", "ci.maxArtifactBytes", "1k"]);
    let art = vec![("artifacts/out.bin".to_owned(), Content::Bytes(vec![0; 2000]))];
    let big = w.done_commit(Some(second), &job("default"), b"log\n", art);
    w.refused(&[], &spec(big, &d), &d, "ci.maxArtifactBytes (1024)");

    // A result.json that does not parse.
    let j = job("default");
    let good = w.done_commit(Some(second), &j, b"log\n", vec![]);
    let repo = w.src.repo();
    let mut editor = repo.edit_tree(repo.find_commit(good).unwrap().tree_id().unwrap().detach()).unwrap();
    let junk = w.blob(b"{\"version\": 1}");
    let path = format!("{}/result.json", done::job_dir(&j.id));
    editor.upsert(path.as_str(), gix::objs::tree::EntryKind::Blob, junk).unwrap();
    let tree = editor.write().unwrap().detach();
    let sig = done::signature();
    let mut time = Default::default();
    let sig = sig.to_ref(&mut time);
    let bad = repo.new_commit_as(sig, sig, "bad", tree, Some(second)).unwrap().id;
    w.refused(&[], &spec(bad, &d), &d, &format!("{}: result.json is not valid JSON", done::job_dir(&j.id)));
    w.accepted(&[], &[&spec(good, &d)]);
}

#[test]
fn an_existing_pre_receive_hook_still_runs_and_can_refuse() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let hook = hub.join("hooks/pre-receive");
    let seen = env.path("seen");
    let text = format!(
        "#!/bin/sh\ncat >> {}\ngrep -q refs/heads/blocked {} && {{ echo 'policy: no' >&2; exit 1; }}\nexit 0\n",
        seen.display(),
        seen.display()
    );
    std::fs::write(&hook, text).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let hub_s = hub.to_str().unwrap();
    let install = env.ci(env.root.path(), &["hooks", "install", "--hub", hub_s]).expect(0);
    assert!(install.stderr().contains("pre-receive.pre-git-ci"), "{}", install.stderr());
    env.ci(env.root.path(), &["hooks", "install", "--hub", hub_s]).expect(0);
    let project = env.project("p", "[job.a]\nrun = \"true\"\n");
    let url = format!("file://{hub_s}");
    let ok = env.git_output(&project, &["push", &url, "main"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let input = std::fs::read_to_string(&seen).unwrap();
    assert!(input.ends_with(" refs/heads/main\n"), "the earlier hook got the same input: {input:?}");
    let no = env.git_output(&project, &["push", &url, "main:refs/heads/blocked"]);
    assert!(!no.status.success());
    assert!(String::from_utf8_lossy(&no.stderr).contains("remote: policy: no"));
    assert!(!env.git(&hub, &["for-each-ref"]).contains("blocked"));
    env.ci(env.root.path(), &["hooks", "uninstall", "--hub", hub_s]).expect(0);
    assert!(std::fs::read_to_string(&hook).unwrap().contains("policy: no"), "uninstall restores it");
}

/// Submit, a worker claiming, heartbeating, logging and completing, cancels
/// of a pending and a running job, and a hook-triggered push: all through
/// the guard, none refused.
fn normal_traffic(env: &TestEnv, hub_dir: &Path, url: &str) {
    let release = env.path("release");
    let pipeline = format!(
        "[job.quick]\nrun = \"echo hi\"\n\n[job.slow]\nrun = \"for i in $(seq 400); do test -f {} && break; sleep 0.05; done\"\n",
        release.display()
    );
    let project = env.project("p", &pipeline);
    // The hook-triggered push: post-receive queues both jobs.
    let out = env.git_output(&project, &["push", url, "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("git-ci: queued quick"), "{stderr}");
    assert!(!stderr.contains("refused"), "{stderr}");
    env.ci(&project, &["worker", "--hub", url, "--once", "--name", "w1", "--lease", "1s"]).expect(0);
    // Polled while a worker fetches into the same cache: a failed read is
    // "not yet", not a failure of the test.
    let status = |id: &str| {
        let run = env.ci(&project, &["show", "--hub", url, id, "--json"]);
        if run.code() == 0 { run.json()["state"].as_str().unwrap_or_default().to_owned() } else { run.stderr() }
    };
    let list = env.ci(&project, &["status", "--hub", url, "--json"]).expect(0).json();
    for j in list.as_array().unwrap() {
        assert_eq!(j["state"], "passed", "{j}");
    }
    // Cancel a pending job.
    let ids = env.ci(&project, &["submit", "--hub", url, "--job", "slow"]).expect(0).stdout();
    let pending = ids.trim().to_owned();
    env.ci(&project, &["cancel", "--hub", url, &pending]).expect(0);
    assert_eq!(status(&pending), "cancelled");
    // Cancel a running one: heartbeats (1 s lease), live log, cancel ref.
    let running = env.ci(&project, &["submit", "--hub", url, "--job", "slow"]).expect(0).stdout().trim().to_owned();
    let worker = env.spawn_ci(&project, &["worker", "--hub", url, "--name", "w2", "--lease", "1s"]);
    wait_until(Duration::from_secs(30), "the job to run", || status(&running) == "running");
    let claim_ref = format!("{}{running}", refs::CLAIMS);
    let claim = || env.ci_refs(hub_dir).into_iter().find(|(n, _)| *n == claim_ref).map(|(_, oid)| oid);
    let first = claim();
    wait_until(Duration::from_secs(30), "a heartbeat through the guard", || {
        let now = claim();
        now.is_some() && now != first
    });
    env.ci(&project, &["cancel", "--hub", url, &running]).expect(0);
    wait_until(Duration::from_secs(30), "the cancel", || status(&running) == "cancelled");
    worker.signal("TERM");
    let (st, _, err) = worker.wait();
    assert!(st.success(), "{err}");
    assert!(!err.contains("refused"), "{err}");
    let left: Vec<_> =
        env.ci_refs(hub_dir).into_iter().filter(|(n, _)| !n.starts_with(refs::DONE)).map(|(n, _)| n).collect();
    assert!(left.is_empty(), "only done chains remain: {left:?}");
}

#[test]
fn normal_traffic_passes_over_a_path() {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    normal_traffic(&env, &hub, &format!("file://{}", hub.display()));
}

#[test]
fn normal_traffic_passes_over_git_daemon() {
    let env = TestEnv::new();
    let hub = env.guarded_hub("hub.git");
    let daemon = env.daemon(env.root.path());
    normal_traffic(&env, &hub, &daemon.url("hub.git"));
}

#[test]
fn doctor_reports_the_guard_and_its_limits() {
    let env = TestEnv::new();
    let hub = env.bare_hub("hub.git");
    let hub_s = hub.to_str().unwrap();
    env.ci(env.root.path(), &["hooks", "install", "--hub", hub_s]).expect(0);
    env.git(&hub, &["config", "ci.maxLogBytes", "1m"]);
    let out = env.ci(env.root.path(), &["doctor", "--hub", hub_s]).expect(0).stdout();
    for needle in ["pre-receive guard installed", "ci.maxLogBytes 1048576", "receive.advertisePushOptions = true"] {
        assert!(out.contains(needle), "{needle}:\n{out}");
    }
    env.git(&hub, &["config", "ci.guard", "false"]);
    let out = env.ci(env.root.path(), &["doctor", "--hub", hub_s]).expect(1).stdout();
    assert!(out.contains("the guard is switched off"), "{out}");
}
