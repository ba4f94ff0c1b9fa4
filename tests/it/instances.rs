//! Live instances per branch (issue 20, item 1): a `serve = true` job's
//! service answers HTTP on 127.0.0.1 after its job passed, a newer push
//! supersedes it, deleting the branch, `git ci stop-instance` and the
//! worker's SIGTERM stop it; real workers, real hubs, real HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::env::{Bg, TestEnv, wait_until};

/// A job whose service serves the checkout over HTTP on `$PORT`.
const SERVE: &str = "[job.app]\nrun = \"exec python3 -m http.server $PORT --bind 127.0.0.1\"\nserve = true\n";

/// `GET /path` on `url` (`http://127.0.0.1:N`): the body, or `None` when
/// nothing answers.
fn get(url: &str, path: &str) -> Option<String> {
    let addr = url.strip_prefix("http://")?;
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_owned())
}

fn closed(url: &str) -> bool {
    TcpStream::connect(url.strip_prefix("http://").unwrap()).is_err()
}

/// A guarded hub whose post-receive queues the pipeline, and a clone.
struct World {
    env: TestEnv,
    repo: PathBuf,
    hub: String,
}

impl World {
    fn new(pipeline: &str) -> World {
        let env = TestEnv::new();
        let hub = env.guarded_hub("hub.git").to_str().unwrap().to_owned();
        let repo = env.project("p", pipeline);
        World { env, repo, hub }
    }

    /// Commits `version.txt` holding `text` on `branch` and pushes it:
    /// the hub's hook queues its jobs.
    fn push(&self, branch: &str, text: &str) {
        self.env.git(&self.repo, &["checkout", "-q", "-B", branch]);
        self.env.commit_file(&self.repo, "version.txt", text, text);
        self.env.git(&self.repo, &["push", "-q", "-f", &self.hub, branch]);
    }

    fn worker(&self, name: &str, extra: &[&str]) -> Bg {
        let mut args = vec!["worker", "--hub", &self.hub, "--name", name, "--poll", "200ms", "--lease", "3s"];
        args.extend(extra);
        self.env.spawn_ci(&self.repo, &args)
    }

    fn instances(&self) -> Vec<serde_json::Value> {
        let out = self.env.ci(&self.repo, &["instances", "--hub", &self.hub, "--json"]).expect(0).json();
        out.as_array().unwrap().clone()
    }

    /// The jobs of the hub as `status --json` lists them.
    fn jobs(&self) -> Vec<serde_json::Value> {
        let out = self.env.ci(&self.repo, &["status", "--hub", &self.hub, "--json"]);
        out.json().as_array().cloned().unwrap_or_default()
    }

    /// Waits for `n` passed jobs; returns their `show --json` documents,
    /// oldest first.
    fn passed(&self, n: usize) -> Vec<serde_json::Value> {
        let mut ids = Vec::new();
        wait_until(Duration::from_secs(60), &format!("{n} jobs passed"), || {
            ids = self.jobs().iter().filter(|j| j["state"] == "passed").map(|j| j["id"].clone()).collect();
            ids.len() >= n
        });
        let mut docs: Vec<serde_json::Value> = ids
            .iter()
            .map(|id| self.env.ci(&self.repo, &["show", "--hub", &self.hub, id.as_str().unwrap(), "--json"]).json())
            .collect();
        docs.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        docs
    }
}

fn url(doc: &serde_json::Value) -> String {
    doc["url"].as_str().unwrap_or_else(|| panic!("no url in {doc}")).to_owned()
}

#[test]
fn a_serve_job_answers_until_a_newer_push_and_then_the_branch_delete_stop_it() {
    let w = World::new(SERVE);
    let worker = w.worker("w1", &[]);
    w.push("feature", "one");
    let first = w.passed(1).remove(0);
    let one = url(&first);
    assert_eq!(get(&one, "/version.txt").as_deref(), Some("one"), "{}", worker.stderr());
    wait_until(Duration::from_secs(20), "the instance registered", || w.instances().len() == 1);
    let listed = &w.instances()[0];
    assert_eq!((listed["ref"].as_str(), listed["worker"].as_str()), (Some("refs/heads/feature"), Some("w1")));
    assert_eq!((listed["url"].as_str(), listed["id"].clone()), (Some(one.as_str()), first["id"].clone()));
    let table = w.env.ci(&w.repo, &["instances", "--hub", &w.hub]).expect(0).stdout();
    assert!(table.starts_with("BRANCH") && table.contains("feature  app") && table.contains(&one), "{table}");
    // The site's branch matrix links the branch to it.
    let site = w.env.path("site");
    w.env.ci(&w.repo, &["site", "build", "--hub", &w.hub, "--out", site.to_str().unwrap()]).expect(0);
    let matrix = std::fs::read_to_string(site.join("branches.html")).unwrap();
    let port = one.rsplit(':').next().unwrap();
    assert!(matrix.contains("class=\"live\"") && matrix.contains(&format!(":{port}\"")), "{matrix}");

    w.push("feature", "two");
    let second = w.passed(2).remove(1);
    let two = url(&second);
    assert_ne!(one, two);
    wait_until(Duration::from_secs(20), "the old instance stopped", || closed(&one));
    assert_eq!(get(&two, "/version.txt").as_deref(), Some("two"));
    wait_until(Duration::from_secs(20), "only the new instance listed", || {
        w.instances().iter().map(|i| i["id"].clone()).collect::<Vec<_>>() == [second["id"].clone()]
    });

    w.env.git(&w.repo, &["push", "-q", &w.hub, ":feature"]);
    wait_until(Duration::from_secs(20), "the deleted branch's instance stopped", || closed(&two));
    wait_until(Duration::from_secs(20), "no instance listed", || w.instances().is_empty());
    assert!(worker.stderr().contains("its branch was deleted"), "{}", worker.stderr());
}

#[test]
fn stop_instance_and_the_workers_sigterm_stop_the_service() {
    let w = World::new(SERVE);
    let worker = w.worker("w1", &[]);
    w.push("feature", "one");
    let one = url(&w.passed(1)[0]);
    wait_until(Duration::from_secs(20), "the instance registered", || w.instances().len() == 1);
    let none = w.env.ci(&w.repo, &["stop-instance", "other", "--hub", &w.hub]).expect(2);
    assert!(none.stderr().contains("no live instance on branch other"), "{}", none.stderr());
    let stopped = w.env.ci(&w.repo, &["stop-instance", "feature", "--job", "app", "--hub", &w.hub]).expect(0);
    assert!(stopped.stderr().contains("asked w1 to stop"), "{}", stopped.stderr());
    assert!(closed(&one), "stop-instance returned with the service still answering");
    assert!(!w.env.ci_refs(Path::new(&w.hub)).iter().any(|(n, _)| n.starts_with("refs/ci/stop/")), "request left");

    w.push("feature", "two");
    let two = url(&w.passed(2)[1]);
    assert_eq!(get(&two, "/version.txt").as_deref(), Some("two"));
    worker.signal("TERM");
    let (status, _, stderr) = worker.wait_within(Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    assert!(closed(&two), "the service outlived its worker: {stderr}");
    assert!(w.instances().is_empty(), "a stopped worker still lists instances");
}

#[test]
fn a_service_that_never_answers_fails_with_its_log_and_keeps_nothing() {
    let pipeline = "[job.dies]\nrun = \"echo booting; exit 3\"\nserve = true\n\n\
        [job.deaf]\nrun = \"echo listening elsewhere; sleep 60\"\nserve = true\ntimeout = \"2s\"\n\n\
        [job.probed]\nrun = \"exec python3 -m http.server $PORT --bind 127.0.0.1\"\nserve = true\n\
        ready = \"curl -fs http://127.0.0.1:$PORT/health\"\ntimeout = \"3s\"\n";
    let w = World::new(pipeline);
    let _worker = w.worker("w1", &["--jobs", "3"]);
    w.push("main", "x");
    wait_until(Duration::from_secs(60), "three jobs finished", || {
        w.jobs().iter().filter(|j| j["state"] != "pending" && j["state"] != "running").count() >= 3
    });
    let by_name = |name: &str| {
        let job = w.jobs().into_iter().find(|j| j["name"] == name).unwrap();
        w.env.ci(&w.repo, &["show", "--hub", &w.hub, job["id"].as_str().unwrap(), "--json"]).json()
    };
    let dies = by_name("dies");
    assert_eq!(dies["status"], "failed", "{dies}");
    assert!(dies["reason"].as_str().unwrap().contains("ended before it was ready (exit code 3)"), "{dies}");
    let log = w.env.ci(&w.repo, &["log", "--hub", &w.hub, dies["id"].as_str().unwrap()]).expect(0).stdout();
    assert!(log.contains("booting"), "{log}");
    // No /health page: the probe never passes, the port alone is not enough.
    for name in ["deaf", "probed"] {
        let doc = by_name(name);
        assert_eq!(doc["status"], "timeout", "{doc}");
        assert!(doc.get("url").is_none(), "{doc}");
    }
    assert!(w.instances().is_empty());
}

/// Two workers, three branches each pushed twice at once, and two people
/// asking to stop the same instance at the same moment: every job is
/// published once, one instance per branch stays (the newest job's, on
/// whichever worker ran it), every older one stops, and the two stop
/// requests make one.
#[test]
fn two_workers_keep_one_instance_per_branch_the_newest() {
    let w = World::new(SERVE);
    let workers = [w.worker("w1", &["--jobs", "2"]), w.worker("w2", &["--jobs", "2"])];
    // A round at a time: a push supersedes its branch's jobs still pending.
    for (n, round) in [(3, "a"), (6, "b")] {
        for branch in ["x", "y", "z"] {
            w.push(branch, &format!("{branch}{round}"));
        }
        w.passed(n);
    }
    let docs = w.passed(6);
    let mut ids: Vec<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 6, "each job published once");
    let published = w.env.published_ids(Path::new(&w.hub));
    assert_eq!(published.len(), 6, "{published:?}");
    let newest: Vec<(String, String)> = ["x", "y", "z"]
        .iter()
        .map(|b| {
            let of_branch = docs.iter().filter(|d| d["ref"] == format!("refs/heads/{b}"));
            let d = of_branch.max_by_key(|d| d["id"].as_str().unwrap().to_owned()).unwrap();
            (d["id"].as_str().unwrap().to_owned(), url(d))
        })
        .collect();
    wait_until(Duration::from_secs(30), "one instance per branch, the newest", || {
        let mut live: Vec<String> = w.instances().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
        live.sort();
        live == newest.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>()
    });
    for d in &docs {
        let (id, u) = (d["id"].as_str().unwrap(), url(d));
        if newest.iter().any(|(n, _)| n == id) {
            assert!(get(&u, "/version.txt").is_some(), "the newest instance {u} does not answer");
        } else {
            wait_until(Duration::from_secs(20), "a superseded instance stopped", || closed(&u));
        }
    }
    let stop = || w.env.spawn_ci(&w.repo, &["stop-instance", "y", "--hub", &w.hub]);
    let (a, b) = (stop(), stop());
    let ends: Vec<_> = [a, b].into_iter().map(|s| s.wait_within(Duration::from_secs(60))).collect();
    assert!(ends.iter().any(|(status, _, _)| status.success()), "{ends:?}");
    for (status, _, stderr) in &ends {
        // The later one may read the registrations after the instance went.
        assert!(status.success() || stderr.contains("no live instance on branch y"), "{stderr}");
    }
    assert!(closed(&newest[1].1));
    assert_eq!(w.instances().len(), 2);
    for worker in workers {
        worker.signal("TERM");
        let (status, _, stderr) = worker.wait_within(Duration::from_secs(30));
        assert!(status.success(), "{stderr}");
    }
    assert!(newest.iter().all(|(_, u)| closed(u)));
}
