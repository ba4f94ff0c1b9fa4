//! Tests over real hubs: built with the core's protocol functions in
//! temporary bare repositories, rendered, then parsed and followed.

mod answers;
mod browser;
mod check;
mod devtools;
pub mod fixture;
mod index;
mod live_page;
mod peers;
mod pipeline;
mod site;

use git_ci_core::model::{Artifact, Status, TestCounts};
use git_ci_core::{Hub, JobId, refs};

use fixture::{Outcome, World};

/// Hostile text, where users and job scripts can put text.
pub const HOSTILE_REF: &str = "refs/heads/<script>alert(1)</script>";
pub const HOSTILE_BRANCH: &str = "<script>alert(1)</script>";
pub const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)>";
pub const HOSTILE_SUBJECT: &str = "<script>alert(\"commit\")</script> \x1b[31mred\x1b[0m & \"quotes\"";
pub const HOSTILE_RUN: &str = "echo '<script>alert(2)</script>'; printf '\\033[31m<b>bold</b>\\033[0m'";
pub const HOSTILE_LOG: &str = "<script>document.title='pwned'</script>\n\x1b[1;31m<img src=x onerror=alert(3)>\x1b[0m done\n\x1b]0;<title>x</title>\x07tail\n";

/// A hub with a bit of everything the site shows.
pub struct Populated {
    pub world: World,
    pub build: JobId,
    pub failed_test: JobId,
    pub retried_test: JobId,
    pub hostile: JobId,
    pub poisoned: JobId,
    pub pending: JobId,
    pub pending_job: git_ci_core::Job,
    pub running: JobId,
}

pub const JUNIT: &str = r#"<?xml version="1.0"?>
<testsuite name="unit">
<testcase classname="parser" name="parses_numbers" time="0.01"/>
<testcase classname="parser" name="parses &lt;tags&gt;" time="0.20"><failure message="expected &lt;b&gt;, got &lt;i&gt;">assertion failed at src/parser.rs:42</failure></testcase>
<testcase classname="parser" name="later"><skipped/></testcase>
</testsuite>"#;

pub fn populated() -> Populated {
    let w = World::new();
    let main = w.commit("Add the parser\n\nWith a body.\n");
    let evil = w.commit(&format!("{HOSTILE_SUBJECT}\n"));

    let job = w.submit("build", "refs/heads/main", &main, "cargo build");
    let build =
        w.finish(&job, "w1", Outcome::new(Status::Passed, "\x1b[1;32m   Compiling\x1b[0m parser v0.1.0\nFinished\n"));

    let job = w.submit("test", "refs/heads/main", &main, "cargo test");
    let mut o = Outcome::new(Status::Failed, "running 3 tests\n\x1b[31mtest parses <tags> ... FAILED\x1b[0m\n");
    o.files = vec![
        ("junit/0.xml".into(), JUNIT.as_bytes().to_vec()),
        ("artifacts/report.html".into(), b"<script>alert('artifact')</script>".to_vec()),
        ("artifacts/dist/app.tar.gz".into(), vec![0x1f, 0x8b, 0, 1, 2, 3]),
    ];
    o.tests = TestCounts { total: 3, passed: 1, failed: 1, skipped: 1 };
    o.artifacts = vec![
        Artifact { path: "report.html".into(), size: 34, sha256: "ab".repeat(32) },
        Artifact { path: "dist/app.tar.gz".into(), size: 6, sha256: "cd".repeat(32) },
        Artifact { path: "missing.bin".into(), size: 1, sha256: "ef".repeat(32) },
    ];
    let failed_test = w.finish(&job, "w1", o);
    let mut retry = job.clone();
    retry.attempt = 2;
    retry.id = JobId::new(std::time::SystemTime::now(), b"retry");
    git_ci_core::queue::submit(&w.hub, std::slice::from_ref(&retry)).unwrap();
    let retried_test = w.finish(&retry, "w2", Outcome::new(Status::Passed, "ok\n"));

    let job = w.submit("lint", HOSTILE_REF, &evil, HOSTILE_RUN);
    let hostile = w.finish(&job, "w2", Outcome::new(Status::Failed, HOSTILE_LOG));

    // A job whose document does not parse, published as `error` unrun, the
    // way a worker publishes a poisoned job: kept as evidence, raw.
    let poisoned_id = JobId::new(std::time::SystemTime::now(), b"poison");
    let doc = serde_json::json!({
        "version": 1, "id": poisoned_id, "name": HOSTILE_NAME, "ref": "refs/heads/<b>x</b>",
        "commit": "not a commit", "queue": "default",
    });
    let poisoned =
        w.publish(&poisoned_id, doc.to_string().into_bytes(), "default", "_hub", Outcome::new(Status::Error, ""));

    let pending_job = w.submit("deploy", "refs/heads/main", &main, "./deploy");
    let pending = pending_job.id.clone();
    let job = w.submit("test", "refs/heads/feature/x", &main, "cargo test");
    w.claim(&job, "w1");
    let hub: &dyn Hub = &w.hub;
    let tail = hub
        .write_blob(
            b"git-ci-live-log 90000 2039\n\x1b[36mstill running\x1b[0m <50%>\nerror: a warning that reads like one\n",
        )
        .unwrap();
    hub.transact(&[git_ci_core::hub::RefEdit::create(refs::log(&job.id), tail)]).unwrap();
    let running = job.id;

    let now = git_ci_core::time::now_rfc3339();
    let worker = |name: &str, last_seen: &str, labels: serde_json::Value, running: Vec<&JobId>| {
        serde_json::json!({
            "version": 1, "name": name, "labels": labels, "queues": [], "jobs": 2, "running": running,
            "platform": "linux-x86_64", "git_ci_version": "0.1.0", "started_at": last_seen,
            "last_seen": last_seen, "refresh_ms": 20000,
        })
    };
    w.register("w1", worker("w1", &now, serde_json::json!({"os": "linux", "arch": "x86_64"}), vec![&running]));
    w.register("old", worker("old", "2020-01-01T00:00:00.000Z", serde_json::json!({"os": "linux"}), vec![]));
    w.register("evil", worker(HOSTILE_NAME, &now, serde_json::json!({"<script>": "</td><b>"}), vec![]));
    Populated { world: w, build, failed_test, retried_test, hostile, poisoned, pending, pending_job, running }
}

impl Populated {
    pub fn ids(&self) -> Vec<&JobId> {
        vec![
            &self.build,
            &self.failed_test,
            &self.retried_test,
            &self.hostile,
            &self.poisoned,
            &self.pending,
            &self.running,
        ]
    }
}
