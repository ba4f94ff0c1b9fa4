//! `git ci site build|publish`: the report site from the real binary, over
//! a repository that is its own hub and over `git daemon`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::env::{TestEnv, wait_until};

const PIPELINE: &str = r#"
[job.hello]
run = "printf '\\033[32mhello\\033[0m <world>\\n'"

[job.broken]
run = "echo about to fail; exit 3"
"#;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Job ids in the site's JSON index.
fn indexed_ids(site: &Path) -> Vec<String> {
    let index: serde_json::Value = serde_json::from_str(&read(&site.join("api/index.json"))).unwrap();
    index["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn build_renders_the_jobs_a_repository_ran_and_rebuilds_little() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    env.ci(&repo, &["run"]).expect(1);
    let site = env.path("site");
    let first = env.ci(&repo, &["site", "build", "--out", site.to_str().unwrap()]).expect(0);
    assert!(first.stderr().contains("site: 2 jobs"), "{}", first.stderr());
    let index = read(&site.join("index.html"));
    for s in ["hello", "broken", "passed", "failed", "main", "add pipeline", "Content-Security-Policy"] {
        assert!(index.contains(s), "{s} not on the index");
    }
    let ids = indexed_ids(&site);
    assert_eq!(ids.len(), 2);
    for id in &ids {
        assert!(site.join(format!("jobs/{id}.html")).is_file());
        assert!(site.join(format!("api/jobs/{id}.json")).is_file());
    }
    let hello = ids.iter().find(|id| read(&site.join(format!("api/jobs/{id}.json"))).contains("\"hello\"")).unwrap();
    let page = read(&site.join(format!("jobs/{hello}.html")));
    assert!(page.contains("<span class=\"f2\">hello</span> &lt;world&gt;"), "coloured, escaped log");
    assert!(site.join("badges/main.svg").is_file() && site.join("feed.atom").is_file());

    let again = env.ci(&repo, &["site", "build", "--out", site.to_str().unwrap()]).expect(0);
    assert!(again.stderr().contains("; 0 files written"), "same refs, same site: {}", again.stderr());
}

#[test]
fn publish_commits_the_site_on_a_branch_of_a_remote_hub() {
    let env = TestEnv::new();
    let base = env.path("srv");
    std::fs::create_dir_all(&base).unwrap();
    let hub_dir = env.bare_hub("srv/hub.git");
    let daemon = env.daemon(&base);
    let url = daemon.url("hub.git");
    let repo = env.project("p", PIPELINE);
    env.git(&repo, &["push", "-q", hub_dir.to_str().unwrap(), "main"]);
    env.ci(&repo, &["submit", "--hub", &url]).expect(0);
    env.ci(&repo, &["worker", "--hub", &url, "--once", "--name", "w1"]).expect(0);

    let first = env.ci(&repo, &["site", "publish", "--branch", "ci-pages", "--hub", &url]).expect(0);
    let commit = first.stdout().trim().to_owned();
    assert_eq!(env.git(&hub_dir, &["rev-parse", "ci-pages"]), commit, "{}", first.stderr());
    let files = env.git(&hub_dir, &["ls-tree", "-r", "--name-only", "ci-pages"]);
    assert!(files.lines().any(|f| f == "index.html") && files.lines().any(|f| f.starts_with("jobs/")), "{files}");
    assert!(!files.contains(".git-ci-site"), "build state is not published");

    // Ages move once a minute: a publish that crossed into the next minute
    // commits them; the one right after it has nothing to publish.
    let mut commit = commit;
    let mut same = env.ci(&repo, &["site", "publish", "--branch", "ci-pages", "--hub", &url]).expect(0);
    if same.stdout().trim() != commit {
        commit = same.stdout().trim().to_owned();
        same = env.ci(&repo, &["site", "publish", "--branch", "ci-pages", "--hub", &url]).expect(0);
    }
    assert_eq!(same.stdout().trim(), commit);
    assert!(same.stderr().contains("nothing to publish"), "{}", same.stderr());

    env.commit_file(&repo, "more", "x", "more work");
    env.git(&repo, &["push", "-q", hub_dir.to_str().unwrap(), "main"]);
    env.ci(&repo, &["submit", "--hub", &url, "--job", "hello"]).expect(0);
    env.ci(&repo, &["worker", "--hub", &url, "--once", "--name", "w1"]).expect(0);
    let second = env.ci(&repo, &["site", "publish", "--branch", "ci-pages", "--hub", &url]).expect(0);
    let tip = second.stdout().trim().to_owned();
    assert_ne!(tip, commit);
    assert_eq!(env.git(&hub_dir, &["rev-parse", "ci-pages^"]), commit, "the previous site is the parent");
    let index = env.git(&hub_dir, &["show", "ci-pages:index.html"]);
    assert!(index.contains("more work"), "the new commit's job is on the published index");
}

#[test]
fn watch_rebuilds_when_a_job_finishes() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    env.ci(&repo, &["run", "--job", "hello"]).expect(0);
    let site = env.path("site");
    let mut child = env
        .ci_cmd(&repo, &["site", "build", "--out", site.to_str().unwrap(), "--watch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git-ci starts");
    let watching = std::panic::catch_unwind(|| {
        wait_until(Duration::from_secs(30), "the first build", || site.join("api/index.json").is_file());
        env.ci(&repo, &["run", "--job", "broken"]).expect(1);
        wait_until(Duration::from_secs(30), "a rebuild with the new job", || {
            std::fs::read_to_string(site.join("api/index.json")).is_ok_and(|i| i.contains("\"broken\""))
        });
    });
    let _ = child.kill();
    let _ = child.wait();
    watching.unwrap();
    assert!(read(&site.join("index.html")).contains("broken"));
}

#[test]
fn bad_templates_and_branches_are_usage_errors() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    let templates = env.path("templates");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join("index.html"), "{% for %}").unwrap();
    let site = env.path("site");
    let bad =
        env.ci(&repo, &["site", "build", "--out", site.to_str().unwrap(), "--templates", templates.to_str().unwrap()]);
    let bad = bad.expect(2);
    bad.assert_clean_error();
    assert!(bad.stderr().contains("index.html"), "{}", bad.stderr());

    let branch = env.ci(&repo, &["site", "publish", "--branch", "no..pe", "--out", site.to_str().unwrap()]).expect(2);
    branch.assert_clean_error();
    assert!(branch.stderr().contains("ci-pages"), "suggests a name: {}", branch.stderr());
}
