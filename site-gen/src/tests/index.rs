//! Issue 17, "beyond the peers": the index has a row per commit (chips for
//! its jobs, author, total and wall time) instead of a row per job, and a
//! commit page names its failing tests above everything else. Read back
//! from the generated HTML with a parser, and shown in Chromium at 400 px.

use git_ci_core::model::{Status, TestCounts};
use git_ci_core::pipeline::Pipeline;
use git_ci_core::{Job, JobId, queue};
use scraper::{ElementRef, Html, Selector};
use serde_json::json;

use super::browser::{available, chromium, screenshots};
use super::check::check_site;
use super::devtools::DevTools;
use super::fixture::{Outcome, World};
use super::{HOSTILE_SUBJECT, JUNIT};
use crate::render::paths;

const FILE: &str = r#"
[job.build]
run = "make"

[job.test]
matrix = { python = ["3.11", "3.12"] }
run = "tox -e py$python"

[job.lint]
run = "make lint"
"#;

/// `main` at c1: build passed; test (a matrix of two) had py=3.12 fail
/// with JUnit failures and then pass when run again; lint failed with
/// JUnit failures. c1's build on `dev` too, then an ad-hoc job on c1.
/// c2, newest: build running, the rest pending.
struct Hub {
    world: World,
    c1: String,
    c2: String,
    jobs: Vec<Job>,
    retry: JobId,
    adhoc: JobId,
}

/// JUnit with two failures (a failure and an error) in suite `lint`.
const LINT_JUNIT: &str = r#"<?xml version="1.0"?>
<testsuite name="lint">
<testcase classname="style" name="no_tabs"/>
<testcase classname="style" name="line_length"><failure message="line 3 is 120 long"/></testcase>
<testcase classname="style" name="imports_sorted"><error message="crashed"/></testcase>
</testsuite>"#;

fn failed_with(junit: &str, failed: u64) -> Outcome {
    let mut o = Outcome::new(Status::Failed, "error: tests failed\n");
    o.files = vec![("junit/0.xml".into(), junit.as_bytes().to_vec())];
    o.tests = TestCounts { total: 3, passed: 3 - failed, failed, skipped: 0 };
    o
}

fn hub() -> Hub {
    let w = World::new();
    let pipeline = Pipeline::parse(FILE, "test.toml").expect("the file parses");
    let c1 = w.commit("Teach the parser tags\n");
    let c2 = w.commit_after("Speed up the lexer\n", Some(&c1.0));
    let jobs_of = |c: &(String, String), git_ref: &str, only: &[String]| {
        let (commit, tree) = c.clone();
        let git_ref = git_ref.to_owned();
        let jobs = pipeline
            .jobs(only, 1, &move |spec| Job::unsealed(spec, &commit, &tree, &git_ref, "t@example.com"))
            .expect("jobs");
        queue::submit(&w.hub, &jobs).expect("submit");
        std::thread::sleep(std::time::Duration::from_millis(2));
        jobs
    };
    let jobs = jobs_of(&c1, "refs/heads/main", &[]);
    let mut retry = None;
    for job in &jobs {
        match job.label().as_str() {
            "test (python=3.12)" => {
                w.finish(job, "w1", failed_with(JUNIT, 1));
                let mut again = job.clone();
                again.id = JobId::new(std::time::SystemTime::now(), b"again");
                queue::submit(&w.hub, std::slice::from_ref(&again)).unwrap();
                retry = Some(w.finish(&again, "w2", Outcome::new(Status::Passed, "ok\n")));
            }
            "lint" => _ = w.finish(job, "w1", failed_with(LINT_JUNIT, 2)),
            _ => _ = w.finish(job, "w1", Outcome::new(Status::Passed, "ok\n")),
        }
    }
    let dev = jobs_of(&c1, "refs/heads/dev", &["build".into()]);
    w.finish(&dev[0], "w1", Outcome::new(Status::Passed, "ok\n"));
    let adhoc = w.submit("adhoc", "refs/heads/main", &c1, "exit 1");
    let adhoc = w.finish(&adhoc, "w1", Outcome::new(Status::Failed, "no\n"));
    let newer = jobs_of(&c2, "refs/heads/main", &[]);
    w.claim(newer.iter().find(|j| j.spec.name == "build").unwrap(), "w1");
    Hub { world: w, c1: c1.0, c2: c2.0, jobs, retry: retry.unwrap(), adhoc }
}

impl Hub {
    fn id(&self, label: &str) -> &str {
        self.jobs.iter().find(|j| j.label() == label).map(|j| j.id.as_str()).expect(label)
    }
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef) -> String {
    e.text().collect::<String>().trim().to_owned()
}

/// A commit row of the index, as read back.
#[derive(Debug)]
struct IndexRow {
    state: String,
    commit: Option<String>,
    branch: String,
    subject: String,
    author: String,
    /// (name, state class, href) per chip.
    chips: Vec<(String, String, String)>,
    total: String,
    wall: String,
}

/// The index's rows under the heading `section`.
fn index_rows(w: &World, section: &str) -> Vec<IndexRow> {
    let doc = Html::parse_document(&w.read("index.html"));
    let section = doc
        .select(&sel("main section"))
        .find(|s| s.select(&sel("h2")).next().is_some_and(|h| text(h) == section))
        .unwrap_or_else(|| panic!("no section {section}"));
    let one = |row: ElementRef, s: &str| row.select(&sel(s)).next().map(text).unwrap_or_default();
    section
        .select(&sel("table.commits tbody tr"))
        .map(|row| IndexRow {
            state: one(row, "td .state .word"),
            commit: row.select(&sel("td.rev a.sha")).next().map(|a| a.value().attr("href").unwrap().to_owned()),
            branch: one(row, "td.rev a.branch"),
            subject: one(row, "td.rev .subject"),
            author: one(row, "td.rev .author"),
            chips: row
                .select(&sel("td.chips a.chip"))
                .map(|a| {
                    let class = a.value().attr("class").unwrap();
                    let state = class.split(' ').find_map(|c| c.strip_prefix("s-")).unwrap_or_default();
                    let name = a.text().nth(1).unwrap_or_default().trim().to_owned();
                    (name, state.to_owned(), a.value().attr("href").unwrap().to_owned())
                })
                .collect(),
            total: one(row, "td.time > span"),
            wall: one(row, "td.time .wall"),
        })
        .collect()
}

fn chip(name: &str, state: &str, id: &str) -> (String, String, String) {
    (name.to_owned(), state.to_owned(), paths::job(id))
}

#[test]
fn the_index_has_a_row_per_commit_with_chips_author_and_times() {
    let h = hub();
    h.world.build();
    check_site(&h.world.out());

    let live = index_rows(&h.world, "Running and pending");
    assert_eq!(live.len(), 1, "c2 is the one commit in flight: {live:?}");
    assert_eq!(live[0].commit.as_deref(), Some(paths::commit(&h.c2).as_str()));
    assert_eq!((live[0].state.as_str(), live[0].subject.as_str()), ("running", "Speed up the lexer"));
    let states: Vec<(&str, &str)> = live[0].chips.iter().map(|c| (c.0.as_str(), c.1.as_str())).collect();
    assert_eq!(states, [("build", "running"), ("lint", "pending"), ("test", "pending")]);
    assert!(live[0].total.ends_with('…') && live[0].wall.ends_with("… wall"), "{live:?}");

    let done = index_rows(&h.world, "Recently finished");
    let rows: Vec<(&str, Option<&str>)> = done.iter().map(|r| (r.branch.as_str(), r.commit.as_deref())).collect();
    let c1 = paths::commit(&h.c1);
    assert_eq!(rows, [("main", Some(c1.as_str())), ("dev", Some(c1.as_str())), ("main", Some(c1.as_str()))]);
    let (adhoc, dev, main) = (&done[0], &done[1], &done[2]);
    // The ad-hoc run is the newest finished, and stands alone.
    assert_eq!(adhoc.chips, [chip("adhoc", "failed", h.adhoc.as_str())]);
    assert_eq!(dev.chips.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["build"], "{dev:?}");
    assert_eq!((main.subject.as_str(), main.author.as_str()), ("Teach the parser tags", "Ada & \"Lovelace\""));
    assert_eq!(main.state, "failed", "lint failed");
    assert_eq!(
        main.chips,
        [
            chip("build", "passed", h.id("build")),
            chip("lint", "failed", h.id("lint")),
            chip("test", "passed", h.retry.as_str()),
        ],
        "by name; test's two combinations as one chip, at py=3.12's latest attempt"
    );
    // Five runs of 1.234 s each (the first py=3.12 attempt counts: it ran).
    assert_eq!(main.total, "6.2s");
    assert!(main.wall.ends_with(" wall"), "{main:?}");
}

#[test]
fn author_and_subject_in_index_rows_come_out_as_text() {
    let w = World::new();
    // Git refuses `<>` in a name; quotes, entities and escape codes pass.
    let author = "Eve\" onmouseover=\"alert(5)\" &amp; 'co' \x1b[31mred\x1b[0m";
    let c = w.commit_by(&format!("{HOSTILE_SUBJECT}\n"), author, None);
    let job = w.submit("build", "refs/heads/main", &c, "make");
    w.finish(&job, "w1", Outcome::new(Status::Passed, "ok\n"));
    w.build();
    let page = w.read("index.html");
    assert!(!page.contains("<script") && !page.contains("\x1b"), "{page}");
    let rows = index_rows(&w, "Recently finished");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].author, "Eve\" onmouseover=\"alert(5)\" &amp; 'co' red");
    assert_eq!(rows[0].subject, "<script>alert(\"commit\")</script> red & \"quotes\"");
    let doc = Html::parse_document(&page);
    assert!(doc.select(&sel("table.commits img, table.commits script")).next().is_none());
    check_site(&w.out());
}

/// The failing tests listed at the top of a commit page: (name, suite,
/// job label, href).
fn failing_tests(page: &str) -> Vec<(String, String, String, String)> {
    let doc = Html::parse_document(page);
    let first = doc.select(&sel("main > h1 + section.failing-tests")).next();
    let section = first.expect("the failing tests come right after the heading");
    section
        .select(&sel("ul.failing-tests li"))
        .map(|li| {
            let a = li.select(&sel("a")).next().unwrap();
            let one = |s: &str| li.select(&sel(s)).next().map(text).unwrap_or_default();
            (text(a), one(".suite"), one(".job"), a.value().attr("href").unwrap().to_owned())
        })
        .collect()
}

#[test]
fn a_commit_page_names_its_failing_tests_first_linked_to_each_failure() {
    let h = hub();
    h.world.build();
    let page = h.world.read(&paths::commit(&h.c1));
    let tests = failing_tests(&page);
    let lint = h.id("lint");
    let anchor = |n: usize| format!("../{}#failure-{n}", paths::job(lint));
    assert_eq!(
        tests,
        [
            ("line_length".into(), "lint".into(), "lint".into(), anchor(1)),
            ("imports_sorted".into(), "lint".into(), "lint".into(), anchor(2)),
        ],
        "lint's failure and error; test's failure was superseded by its passing retry"
    );
    // Each link lands on its failure on the job's page.
    let job = Html::parse_document(&h.world.read(&paths::job(lint)));
    for (n, name) in [(1, "line_length"), (2, "imports_sorted")] {
        let details = job.select(&sel(&format!("details.failure#failure-{n} summary strong"))).next();
        assert_eq!(details.map(text).as_deref(), Some(name));
    }
    check_site(&h.world.out());
    let passing = h.world.read(&paths::commit(&h.c2));
    assert!(Html::parse_document(&passing).select(&sel("section.failing-tests")).next().is_none());
}

/// Problems the browser reported: console errors and CSP refusals.
fn problems(browser: &DevTools) -> Vec<String> {
    let errors = browser.events.iter().filter(|e| {
        let p = &e["params"];
        (e["method"] == "Runtime.consoleAPICalled" && p["type"] == "error")
            || (e["method"] == "Log.entryAdded" && p["entry"]["level"] == "error")
            || e["method"] == "Runtime.exceptionThrown"
    });
    errors.map(|e| e.to_string()).chain(browser.csp_reports()).collect()
}

/// How the index lays out: the page's width, whether a commit table needs
/// a sideways scroll, and each chip's box.
const LAYOUT: &str = r#"(() => {
  const tables = [...document.querySelectorAll("table.commits")].map(t => ({
    width: t.scrollWidth, room: t.parentElement.clientWidth }));
  const chips = [...document.querySelectorAll("a.chip.job")].map(c => {
    const b = c.getBoundingClientRect();
    return {w: b.width, h: b.height, right: b.right, bg: getComputedStyle(c).backgroundColor};
  });
  return {page: document.documentElement.scrollWidth, tables, chips, scripts: document.scripts.length};
})()"#;

#[test]
fn the_index_reads_at_400_px_with_nothing_refused_and_screenshots_are_kept() {
    if !available() {
        return;
    }
    let h = hub();
    h.world.build();
    let out = h.world.out();
    let profile = tempfile::tempdir().unwrap();
    let mut browser = DevTools::open(profile.path());
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 400, "height": 900, "deviceScaleFactor": 1, "mobile": true}),
    );
    browser.load(&out.join("index.html"));
    let seen = browser.eval(LAYOUT);
    assert!(problems(&browser).is_empty(), "{:#?}", problems(&browser));
    assert!(seen["page"].as_f64().unwrap() <= 400.0, "the page does not scroll sideways: {seen:#}");
    for t in seen["tables"].as_array().unwrap() {
        assert!(t["width"].as_f64() <= t["room"].as_f64(), "a commit table fits in 400 px: {seen:#}");
    }
    let chips = seen["chips"].as_array().unwrap();
    assert_eq!(chips.len(), 3 + 1 + 1 + 3, "{seen:#}");
    for c in chips {
        assert!(c["w"].as_f64().unwrap() > 30.0 && c["right"].as_f64().unwrap() <= 400.0, "{c}");
        assert!(c["bg"] != "rgba(0, 0, 0, 0)", "a chip is coloured: {c}");
    }
    assert_eq!(seen["scripts"], 0);
    browser.load(&out.join(paths::commit(&h.c1)));
    assert!(problems(&browser).is_empty(), "{:#?}", problems(&browser));
    drop(browser);

    let shots = screenshots();
    let dark = ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"];
    let commit = out.join(paths::commit(&h.c1));
    for (name, page, size) in [
        ("index", out.join("index.html"), "1280,900"),
        ("index-400", out.join("index.html"), "400,1100"),
        ("commit-failed", commit.clone(), "1280,900"),
        ("commit-failed-400", commit, "400,1100"),
    ] {
        for (scheme, flags) in [("light", &[][..]), ("dark", &dark[..])] {
            let png = shots.join(format!("{name}-{scheme}.png"));
            let _ = std::fs::remove_file(&png);
            let mut args = vec![format!("--screenshot={}", png.display()), format!("--window-size={size}")];
            args.extend(flags.iter().map(|f| f.to_string()));
            chromium(profile.path(), &args.iter().map(String::as_str).collect::<Vec<_>>(), &page);
            let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
            assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{} looks empty", png.display());
        }
    }
    eprintln!("screenshots in {}", shots.display());
}
