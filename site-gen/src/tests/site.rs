use std::os::unix::fs::MetadataExt;

use git_ci_core::model::Status;
use git_ci_core::{Hub, refs};

use super::check::{check_site, files, text_of};
use super::fixture::{Outcome, World, git};
use super::*;
use crate::render::paths;
use crate::slug::slug;
use crate::{Options, Site};

#[test]
fn every_page_parses_and_every_link_resolves() {
    let p = populated();
    let report = p.world.build();
    assert_eq!(report.jobs, 7);
    let checked = check_site(&p.world.out());
    assert!(checked.pages >= 19, "{checked:?}");
    assert!(checked.links >= 200, "{checked:?}");
    for id in p.ids() {
        assert!(p.world.out().join(paths::job(id.as_str())).is_file(), "page of {id}");
        let api: serde_json::Value = serde_json::from_str(&p.world.read(&paths::job_api(id.as_str()))).unwrap();
        assert_eq!(api["id"], id.as_str());
        assert_eq!(api["version"], 1);
    }
    let index: serde_json::Value = serde_json::from_str(&p.world.read("api/index.json")).unwrap();
    assert_eq!(index["jobs"].as_array().unwrap().len(), 7);
    let main: serde_json::Value = serde_json::from_str(&p.world.read("api/branches/main.json")).unwrap();
    assert_eq!(main["latest"]["test"]["id"], p.retried_test.as_str());
    assert_eq!(main["latest"]["deploy"]["state"], "pending");
}

#[test]
fn hostile_text_comes_out_as_text() {
    let p = populated();
    p.world.build();
    for file in files(&p.world.out()) {
        // JSON mirrors, raw logs and artifacts hold what was stored, as it
        // was; they are served as data, never as pages.
        let data = file.extension().is_some_and(|e| e == "json" || e == "txt" || e == "bin" || e == "gz");
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        for raw in ["<script", "<img src=x", "<b>bold", "<title>x", "</td><b>", "\x1b", "\0"] {
            assert!(data || !text.contains(raw), "{} holds {raw:?} unescaped", file.display());
        }
    }
    let index = text_of(&p.world.read("index.html"));
    assert!(index.contains(HOSTILE_BRANCH), "the branch reads as written: {index}");
    let job = p.world.read(&paths::job(p.hostile.as_str()));
    let text = text_of(&job);
    assert!(text.contains("<script>alert(\"commit\")</script>"), "subject as text");
    assert!(text.contains("<script>document.title='pwned'</script>"), "log as text");
    assert!(text.contains("echo '<script>alert(2)</script>'"), "script as text");
    assert!(job.contains("<span class=\"f1 bo\">&lt;img src=x onerror=alert(3)&gt;</span>"), "coloured after escaping");
    let poisoned = text_of(&p.world.read(&paths::job(p.poisoned.as_str())));
    assert!(poisoned.contains(HOSTILE_NAME) && poisoned.contains("the <job> broke & burned"));
    let workers = text_of(&p.world.read("workers.html"));
    assert!(workers.contains("<script>=</td><b>"), "{workers}");
    let branch_page = p.world.out().join(paths::branch(HOSTILE_BRANCH));
    assert!(branch_page.starts_with(p.world.out().join("branches")) && branch_page.is_file());
    assert!(p.world.out().join(format!("badges/{}.svg", slug(HOSTILE_BRANCH))).is_file());
}

#[test]
fn job_pages_show_log_tests_artifacts_and_attempts() {
    let p = populated();
    p.world.build();
    let page = p.world.read(&paths::job(p.failed_test.as_str()));
    let text = text_of(&page);
    let failure = text.find("parses <tags>").expect("the failed test is listed");
    let passed = text.find("parses_numbers").expect("passed tests too");
    assert!(failure < passed, "failures first");
    assert!(text.contains("expected <b>, got <i>") && text.contains("src/parser.rs:42"));
    assert!(
        page.contains("id=\"L2\"><a href=\"#L2\">2</a><span class=\"f1\">test parses &lt;tags&gt; ... FAILED</span>")
    );
    // The HTML artifact is defused; the archive keeps its name.
    let id = p.failed_test.as_str();
    assert!(page.contains(&format!("href=\"../artifacts/{id}/report.html.bin\" download=\"report.html\"")), "{page}");
    assert_eq!(p.world.read(&format!("artifacts/{id}/report.html.bin")), "<script>alert('artifact')</script>");
    assert!(p.world.out().join(format!("artifacts/{id}/dist/app.tar.gz")).is_file());
    assert!(text.contains("missing.bin") && text.contains("listed in the result but not stored"));
    assert!(page.contains(&format!("href=\"../jobs/{}.html\"", p.retried_test)), "links its other attempt");
    assert_eq!(p.world.read(&paths::log(id)), "running 3 tests\n\x1b[31mtest parses <tags> ... FAILED\x1b[0m\n");
    let running = text_of(&p.world.read(&paths::job(p.running.as_str())));
    assert!(running.contains("still running <50%>") && running.contains("live tail"), "{running}");
    assert!(running.contains("lease until"));
}

#[test]
fn lists_badges_and_feed_say_what_happened() {
    let p = populated();
    p.world.build();
    let matrix = text_of(&p.world.read("branches.html"));
    for s in ["main", "feature/x", HOSTILE_BRANCH, "deploy", "lint", "test"] {
        assert!(matrix.contains(s), "{s} in {matrix}");
    }
    assert!(p.world.read("badges/main.svg").contains(">running<"), "main has a pending job");
    assert!(p.world.read("badges/main/build.svg").contains(">passing<"));
    assert!(p.world.read(&format!("badges/{}.svg", slug(HOSTILE_BRANCH))).contains(">failing<"));
    let queue = text_of(&p.world.read("queue.html"));
    assert!(queue.contains("deploy") && queue.contains("1 running, 1 pending, as of"), "{queue}");
    let workers = text_of(&p.world.read("workers.html"));
    assert!(workers.contains("old") && workers.contains("offline"));
    let feed = roxmltree::Document::parse(&p.world.read("feed.atom")).unwrap().root_element().children().count();
    assert!(feed > 5);
    let atom = p.world.read("feed.atom");
    assert!(atom.contains("test recovered on main") && atom.contains("test failed on main"), "{atom}");
    let history = text_of(&p.world.read("history.html"));
    assert!(history.contains("Passed"));
    let index = text_of(&p.world.read("index.html"));
    assert!(index.contains("1 running") && index.contains("1 pending"), "{index}");
    let commit = text_of(&p.world.read(&paths::commit(&main_commit(&p))));
    assert!(commit.contains("Add the parser") && commit.contains("Ada & \"Lovelace\""), "{commit}");
}

fn main_commit(p: &Populated) -> String {
    let api: serde_json::Value = serde_json::from_str(&p.world.read(&paths::job_api(p.build.as_str()))).unwrap();
    api["job"]["commit"].as_str().unwrap().to_owned()
}

/// (inode, modification time) of a file: a rewrite (rename) changes both.
fn stamp(w: &World, rel: &str) -> (u64, i64) {
    let m = std::fs::metadata(w.out().join(rel)).unwrap();
    (m.ino(), m.mtime_nsec())
}

#[test]
fn a_rebuild_after_one_result_rewrites_only_what_it_changes() {
    let p = populated();
    let w = &p.world;
    let site = w.site();
    site.build(&w.hub, &|_| {}).unwrap();
    let old_job = paths::job(p.build.as_str());
    let before = stamp(w, &old_job);
    let old_day_pages: Vec<_> =
        files(&w.out()).into_iter().filter(|f| f.starts_with(w.out().join("commits"))).collect();

    // The site is a function of the refs: the same refs, the same files.
    let again = site.build(&w.hub, &|_| {}).unwrap();
    assert_eq!((again.stats.written, again.stats.removed), (0, 0), "nothing changed: {:?}", again.stats);

    // The pending deploy finishes: its page, commit, branch, badge, day.
    w.finish(&p.pending_job, "w3", Outcome::new(Status::Passed, "deployed\n"));
    let after = site.build(&w.hub, &|_| {}).unwrap();
    assert!(after.stats.kept > 10, "{:?}", after.stats);
    assert!(after.stats.written <= 20, "{:?}", after.stats);
    assert_eq!(stamp(w, &old_job), before, "an unrelated job page is left alone");
    assert!(text_of(&w.read(&paths::job(p.pending.as_str()))).contains("deployed"));
    assert!(w.read("badges/main.svg").contains(">passing<"));
    for f in old_day_pages {
        assert!(f.is_file());
    }
    check_site(&w.out());
}

#[test]
fn a_chain_that_goes_away_takes_its_pages_with_it() {
    let p = populated();
    let w = &p.world;
    w.build();
    let hub: &dyn Hub = &w.hub;
    let tip = hub.get(&refs::done("w2")).unwrap().unwrap();
    hub.transact(&[git_ci_core::hub::RefEdit::delete(refs::done("w2"), tip)]).unwrap();
    let report = w.build();
    assert!(report.stats.removed >= 4, "{:?}", report.stats);
    assert!(!w.out().join(paths::job(p.hostile.as_str())).exists());
    assert!(!w.out().join(paths::branch(HOSTILE_BRANCH)).exists());
    assert!(w.out().join(paths::job(p.build.as_str())).exists());
    check_site(&w.out());
    // And a full rebuild from scratch agrees with the incremental one.
    let incremental: Vec<_> = files(&w.out()).into_iter().map(|f| (f.clone(), std::fs::read(&f).unwrap())).collect();
    std::fs::remove_dir_all(w.out()).unwrap();
    w.build();
    let full: Vec<_> = files(&w.out()).into_iter().map(|f| (f.clone(), std::fs::read(&f).unwrap())).collect();
    let differ: Vec<_> =
        incremental.iter().zip(&full).filter(|(a, b)| a != b).map(|(a, _)| a.0.display().to_string()).collect();
    assert_eq!(incremental.len(), full.len());
    assert!(differ.is_empty(), "{differ:?}");
}

#[test]
fn templates_can_be_overridden_and_errors_name_the_template() {
    let p = populated();
    let dir = p.world.dir.path().join("templates");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("index.html"),
        "{% extends \"base.html\" %}{% block main %}<p>Ours: {{ counts.running }} running</p>{% endblock %}",
    )
    .unwrap();
    let mut options = Options::new(p.world.out());
    options.templates = Some(dir.clone());
    Site::new(options.clone()).unwrap().build(&p.world.hub, &|_| {}).unwrap();
    assert!(text_of(&p.world.read("index.html")).contains("Ours: 1 running"));
    assert!(p.world.out().join("branches.html").is_file());

    std::fs::write(dir.join("job.html"), "{% if %}").unwrap();
    let err = Site::new(options).err().expect("a broken template is refused").to_string();
    assert!(err.contains("job.html"), "{err}");
}

#[test]
fn publishing_commits_the_site_on_a_branch() {
    let p = populated();
    let w = &p.world;
    w.build();
    let first = crate::publish(&w.hub, &w.out(), "ci-pages").unwrap();
    assert!(first.changed && first.parent.is_none());
    let listing = git(&w.hub_path, &["ls-tree", "-r", "--name-only", "ci-pages"]);
    assert!(listing.lines().any(|l| l == "index.html") && listing.lines().any(|l| l == ".nojekyll"));
    assert!(!listing.contains(crate::STATE_DIR), "build state stays out");
    assert_eq!(listing.lines().count(), files(&w.out()).len());

    let same = crate::publish(&w.hub, &w.out(), "ci-pages").unwrap();
    assert!(!same.changed && same.commit == first.commit);

    let job = w.submit("docs", "refs/heads/main", &w.commit("Docs"), "make docs");
    w.finish(&job, "w1", Outcome::new(Status::Passed, "ok\n"));
    w.build();
    let second = crate::publish(&w.hub, &w.out(), "ci-pages").unwrap();
    assert!(second.changed);
    assert_eq!(second.parent, Some(first.commit));
    assert_eq!(git(&w.hub_path, &["rev-parse", "ci-pages^"]), first.commit.to_string());

    let nothing = tempfile::tempdir().unwrap();
    assert!(crate::publish(&w.hub, nothing.path(), "ci-pages").unwrap_err().to_string().contains("site build"));
}

#[test]
fn an_empty_hub_gives_a_site_that_says_so() {
    let w = World::new();
    w.build();
    check_site(&w.out());
    assert!(text_of(&w.read("index.html")).contains("No job has finished yet"));
}
