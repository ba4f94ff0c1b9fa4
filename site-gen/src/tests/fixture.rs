//! A real hub in a temporary directory (`git init --bare`), filled through
//! the core's own protocol functions: submit, claim, append + the complete
//! transaction, worker registrations.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use git_ci_core::done::{self, Content, Entry};
use git_ci_core::hub::{LocalHub, RefEdit};
use git_ci_core::model::{Artifact, Job, JobResult, JobSpec, Status, TestCounts};
use git_ci_core::queue;
use git_ci_core::{Claim, Hub, JobId, refs};
use gix::ObjectId;

use crate::{Options, Report, Site};

pub struct World {
    pub dir: tempfile::TempDir,
    pub hub_path: PathBuf,
    pub hub: LocalHub,
}

/// What a finished job ends with.
pub struct Outcome {
    pub status: Status,
    pub log: Vec<u8>,
    pub files: Vec<(String, Vec<u8>)>,
    pub tests: TestCounts,
    pub artifacts: Vec<Artifact>,
    pub attempt: u32,
    /// Why, for `skipped` (an `error` gets one of its own).
    pub reason: Option<String>,
}

impl Outcome {
    pub fn new(status: Status, log: &str) -> Outcome {
        Outcome {
            status,
            log: log.as_bytes().to_vec(),
            files: vec![],
            tests: TestCounts::default(),
            artifacts: vec![],
            attempt: 1,
            reason: None,
        }
    }
}

impl World {
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let hub_path = dir.path().join("hub.git");
        git(dir.path(), &["init", "-q", "--bare", "-b", "main", hub_path.to_str().unwrap()]);
        let hub = LocalHub::open(&hub_path).expect("hub opens");
        World { dir, hub_path, hub }
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("site")
    }

    pub fn site(&self) -> Site {
        Site::new(Options::new(self.out())).expect("templates compile")
    }

    pub fn build(&self) -> Report {
        self.site().build(&self.hub, &|_| {}).expect("site builds")
    }

    /// A commit in the hub whose message is `message`; returns (commit, tree).
    pub fn commit(&self, message: &str) -> (String, String) {
        self.commit_after(message, None)
    }

    /// A commit whose parent is `parent`, with the same (empty) tree.
    pub fn commit_after(&self, message: &str, parent: Option<&str>) -> (String, String) {
        self.commit_by(message, "Ada & \"Lovelace\"", parent)
    }

    /// A commit by `author`, after `parent`, with the same (empty) tree.
    pub fn commit_by(&self, message: &str, author: &str, parent: Option<&str>) -> (String, String) {
        let repo = self.hub.repo();
        let tree = ObjectId::empty_tree(repo.object_hash());
        let sig = gix::actor::Signature {
            name: author.into(),
            email: "ada@example.com".into(),
            time: gix::date::Time::new(1_795_000_000, 0),
        };
        let mut time = Default::default();
        let sig = sig.to_ref(&mut time);
        let parents = parent.map(|p| ObjectId::from_hex(p.as_bytes()).unwrap());
        let id = repo.new_commit_as(sig, sig, message, tree, parents).expect("commit").id;
        (id.to_string(), tree.to_string())
    }

    /// Queues a job `name` of `git_ref` at `commit` running `run`.
    pub fn submit(&self, name: &str, git_ref: &str, commit: &(String, String), run: &str) -> Job {
        let mut spec = JobSpec::ad_hoc(run);
        spec.name = name.to_owned();
        spec.ad_hoc = name == "adhoc";
        spec.env.insert("GREETING".into(), "<hello & \"bye\">".into());
        let job = Job::new(spec, &commit.0, &commit.1, git_ref, "tester@example.com");
        queue::submit(&self.hub, std::slice::from_ref(&job)).expect("submit");
        // Ids are by the millisecond: keep the order of submission.
        std::thread::sleep(Duration::from_millis(2));
        job
    }

    /// A worker's claim on `job`: its document at `refs/ci/claims/<id>`.
    pub fn claim(&self, job: &Job, worker: &str) {
        let hub: &dyn Hub = &self.hub;
        let claim = Claim::new(&job.id, worker, 1, Duration::from_secs(600));
        let blob = hub.write_blob(&claim.to_json()).unwrap();
        hub.transact(&[RefEdit::create(refs::claim(&job.id), blob)]).expect("claim");
    }

    /// Publishes `job` as finished by `writer`, releasing its live refs in
    /// the same transaction, as a worker's complete does.
    pub fn finish(&self, job: &Job, writer: &str, mut outcome: Outcome) -> JobId {
        outcome.attempt = job.attempt;
        self.publish(&job.id, job.to_json(), &job.spec.queue, writer, outcome)
    }

    /// Publishes any document as a job (a malformed one, say), as a worker
    /// publishes a poisoned job.
    pub fn publish(&self, id: &JobId, job_json: Vec<u8>, queue: &str, writer: &str, o: Outcome) -> JobId {
        let hub: &dyn Hub = &self.hub;
        let mut result = JobResult::without_run(id, o.status, writer, o.attempt, String::new());
        result.reason = o.reason.or_else(|| (o.status == Status::Error).then(|| "the <job> broke & burned".to_owned()));
        result.exit_code = match o.status {
            Status::Passed => Some(0),
            Status::Skipped | Status::Cancelled => None,
            _ => Some(2),
        };
        result.duration_ms = 1_234;
        result.tests = o.tests;
        result.artifacts = o.artifacts;
        result.log_bytes = o.log.len() as u64;
        let files = o.files.into_iter().map(|(n, b)| (n, Content::Bytes(b))).collect();
        let entry = Entry { id: id.clone(), job_json, result, log: Content::Bytes(o.log), files, cache_key: None };
        let done_ref = refs::done(writer);
        let tip = hub.get(&done_ref).unwrap();
        let new = done::append(hub, tip, &[entry]).expect("append");
        let mut edits = vec![RefEdit::set(done_ref, tip, new)];
        for name in [refs::queue(queue, id), refs::pin(id), refs::claim(id)] {
            if let Some(old) = hub.get(&name).unwrap() {
                edits.push(RefEdit::delete(name, old));
            }
        }
        hub.transact(&edits).expect("complete");
        id.clone()
    }

    /// A worker registration, as `refs/ci/workers/<name>` holds it.
    pub fn register(&self, name: &str, doc: serde_json::Value) {
        let hub: &dyn Hub = &self.hub;
        let blob = hub.write_blob(doc.to_string().as_bytes()).unwrap();
        let name = refs::worker(name);
        let old = hub.get(&name).unwrap();
        hub.transact(&[RefEdit::set(name, old, blob)]).unwrap();
    }

    /// A file of the built site.
    pub fn read(&self, rel: &str) -> String {
        let path = self.out().join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

/// `git` with no user or system configuration.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
