//! Pipelines on the site: a real `.git-ci.toml` turned into job documents
//! by the core (`Pipeline::jobs`), queued and published on a bare hub the
//! way workers do, then rendered, read back and shown in Chromium.

use std::path::Path;

use git_ci_core::model::Status;
use git_ci_core::pipeline::Pipeline;
use git_ci_core::{Job, queue};
use serde_json::Value;

use super::browser::{available, chromium, screenshots};
use super::check::{check_site, text_of};
use super::devtools::DevTools;
use super::fixture::{Outcome, World};
use crate::render::paths;

const FILE: &str = r#"
[job.build]
run = "make"

[job.test]
needs = ["build"]
matrix = { python = ["3.11", "3.12"], db = ["sqlite", "postgres"] }
run = "tox -e py$python-$db"

[job.deploy]
needs = ["test"]
run = "./deploy"

[job.nightly]
schedule = "0 3 * * *"
run = "make soak"
"#;

const TICK: &str = "2026-05-01T03:00:00Z";
const FAILED_CELL: &str = "test (python=3.12, db=postgres)";
const WHY: &str = "test (python=3.12, db=postgres) failed";

/// A hub holding one commit's pipeline (build → test 2×2 → deploy, one
/// combination failed and deploy skipped), a scheduled nightly run of the
/// same commit, and build repeated 5 times on another commit (runs 2 and 4
/// failed).
struct Pipelines {
    world: World,
    commit: String,
    repeated: String,
    jobs: Vec<Job>,
}

fn pipelines() -> Pipelines {
    let w = World::new();
    let pipeline = Pipeline::parse(FILE, "test.toml").expect("the file parses");
    let (commit, tree) = w.commit("Ship the parser\n");
    let bind = |scheduled: Option<&str>| {
        let (commit, tree) = (commit.clone(), tree.clone());
        let scheduled = scheduled.map(str::to_owned);
        move |spec| {
            let mut job = Job::unsealed(spec, &commit, &tree, "refs/heads/main", "tester@example.com");
            job.scheduled = scheduled.clone();
            job
        }
    };
    let jobs = pipeline.jobs(&[], 1, &bind(None)).expect("jobs");
    let nightly = pipeline.jobs(&["nightly".into()], 1, &bind(Some(TICK))).expect("nightly");
    queue::submit(&w.hub, &jobs).expect("submit");
    queue::submit(&w.hub, &nightly).expect("submit nightly");
    for job in &jobs {
        let outcome = match job.label().as_str() {
            FAILED_CELL => Outcome::new(Status::Failed, "1 test failed\n"),
            "deploy" => Outcome { reason: Some(WHY.into()), ..Outcome::new(Status::Skipped, "") },
            _ => Outcome::new(Status::Passed, "ok\n"),
        };
        w.finish(job, "w1", outcome);
    }
    w.finish(&nightly[0], "w2", Outcome::new(Status::Passed, "soaked\n"));

    let (other, other_tree) = w.commit("Make build flaky\n");
    let runs = pipeline
        .jobs(&["build".into()], 5, &|spec| Job::unsealed(spec, &other, &other_tree, "refs/heads/main", "t"))
        .expect("repeats");
    queue::submit(&w.hub, &runs).expect("submit repeats");
    for job in &runs {
        let index = job.repeat.expect("a repeat").index;
        let status = if index % 2 == 0 { Status::Failed } else { Status::Passed };
        w.finish(job, "w1", Outcome::new(status, "flaky\n"));
    }
    let mut all = jobs;
    all.extend(nightly);
    Pipelines { world: w, commit, repeated: other, jobs: all }
}

impl Pipelines {
    fn id(&self, label: &str) -> &str {
        self.jobs.iter().find(|j| j.label() == label).map(|j| j.id.as_str()).expect(label)
    }
}

#[test]
fn the_commit_page_draws_the_pipeline_and_lists_why_deploy_was_skipped() {
    let p = pipelines();
    p.world.build();
    check_site(&p.world.out());
    let page = p.world.read(&paths::commit(&p.commit));
    let doc = scraper::Html::parse_document(&page);
    let select = |s: &str| doc.select(&scraper::Selector::parse(s).unwrap()).collect::<Vec<_>>();

    let svgs = select("svg.graph");
    assert_eq!(svgs.len(), 1, "one graph: the scheduled run has no needs");
    let nodes: Vec<(String, String)> = select("svg.graph g.node")
        .iter()
        .map(|n| (n.value().attr("class").unwrap().to_owned(), n.value().attr("data-depth").unwrap().to_owned()))
        .collect();
    assert_eq!(
        nodes,
        [
            ("node s-passed".into(), "0".into()),
            ("node s-failed".into(), "1".into()),
            ("node s-skipped".into(), "2".into())
        ]
    );
    assert_eq!(select("svg.graph path.edge").len(), 2, "build → test, test → deploy");
    let cells = select("svg.graph a.cell");
    assert_eq!(cells.len(), 4, "one cell per combination");
    let failed = cells.iter().find(|c| c.value().attr("class") == Some("cell s-failed")).expect("a failed cell");
    assert_eq!(failed.value().attr("href").unwrap(), format!("../{}", paths::job(p.id(FAILED_CELL))));
    assert!(failed.text().collect::<String>().contains("python=3.12, db=postgres"), "{}", failed.html());
    let heads: Vec<String> = select("svg.graph a.head").iter().map(|a| a.text().collect()).collect();
    assert!(heads[2].contains("↷") && heads[2].contains("deploy"), "{heads:?}");

    let text = text_of(&page);
    assert!(text.contains(WHY), "the skipped row says why: {text}");
    assert!(text.contains("scheduled") && text.contains("2026-05-01 03:00:00 UTC"), "{text}");
    assert!(text.contains(FAILED_CELL), "matrix jobs are listed by label");

    let deploy = text_of(&p.world.read(&paths::job(p.id("deploy"))));
    assert!(deploy.contains(&format!("Skipped: {WHY}")), "{deploy}");
    assert!(deploy.contains(&format!("✗ failed {FAILED_CELL}")), "its needs, with their states: {deploy}");
    let nightly = text_of(&p.world.read(&paths::job(p.id("nightly"))));
    assert!(nightly.contains("queued by the schedule for 2026-05-01 03:00:00 UTC"), "{nightly}");
}

#[test]
fn repeated_jobs_show_their_pass_rate_failing_runs_first() {
    let p = pipelines();
    p.world.build();
    let text = text_of(&p.world.read(&paths::commit(&p.repeated)));
    assert!(text.contains("build ran 5 times: 3 of 5 passed (60%)"), "{text}");
    let runs: Vec<usize> = ["build #2", "build #4", "build #1", "build #3", "build #5"]
        .iter()
        .map(|l| text.find(l).unwrap_or_else(|| panic!("{l} in {text}")))
        .collect();
    assert!(runs.windows(2).all(|w| w[0] < w[1]), "failing runs first, then in order: {runs:?}");
}

#[test]
fn a_branch_shows_a_matrix_job_as_one_column_failing_if_any_combination_failed() {
    let p = pipelines();
    p.world.build();
    let branches = scraper::Html::parse_document(&p.world.read("branches.html"));
    let cols: Vec<String> =
        branches.select(&scraper::Selector::parse("th.col").unwrap()).map(|th| th.text().collect::<String>()).collect();
    assert_eq!(cols, ["build", "deploy", "nightly", "test"], "one column per job name");
    assert!(p.world.read("badges/main.svg").contains(">failing<"));
    assert!(p.world.read("badges/main/test.svg").contains(">failing<"));
    assert!(p.world.read("badges/main/deploy.svg").contains(">skipped<"), "skipped, not failing");
    let api: Value = serde_json::from_str(&p.world.read("api/branches/main.json")).unwrap();
    // The newest commit of main ran only build (5 times); test is at the
    // commit before, with its four combinations.
    assert_eq!(api["latest"]["test"]["id"], p.id(FAILED_CELL));
    assert_eq!(api["latest"]["test"]["runs"].as_array().unwrap().len(), 4);
    assert_eq!(api["latest"]["build"]["runs"].as_array().unwrap().len(), 5);
    // The same refs give the same site: the new fields survive the manifest.
    let again = p.world.build();
    assert_eq!(again.stats.written, 0, "{:?}", again.stats);
}

#[test]
fn a_person_sees_the_pipeline_graph_in_a_browser_and_the_csp_refuses_nothing() {
    if !available() {
        return;
    }
    let p = pipelines();
    p.world.build();
    let page = p.world.out().join(paths::commit(&p.commit));
    let profile = tempfile::tempdir().unwrap();

    // The check can fail: a page breaking the site's CSP is reported.
    let bad = p.world.dir.path().join("bad.html");
    std::fs::write(&bad, format!("{}<p style=\"color: red\">inline</p>", csp_head(&page))).unwrap();
    let mut browser = DevTools::open(profile.path());
    browser.load(&bad);
    assert!(!browser.csp_reports().is_empty(), "an inline style is refused and reported");
    drop(browser);

    let mut browser = DevTools::open(profile.path());
    browser.load(&page);
    let reports = browser.csp_reports();
    assert!(reports.is_empty(), "the CSP refused something: {reports:#?}");
    let seen = browser.eval(VISIBLE);
    let boxes = seen["boxes"].as_array().unwrap();
    assert_eq!(boxes.len(), 3 + 4, "three boxes and four cells: {seen:#}");
    for b in boxes {
        assert!(b["w"].as_f64().unwrap() > 40.0 && b["h"].as_f64().unwrap() > 15.0, "drawn big enough: {b}");
        assert!(b["fill"] != "none" && b["onTop"] == true, "visible, not covered: {b}");
    }
    // The stylesheet applied: a box takes its state's colour.
    let failed = boxes.iter().find(|b| b["class"] == "node s-failed").expect("the test box");
    assert_eq!(failed["stroke"], "rgb(207, 34, 46)", "{failed}");
    let edges = seen["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    for e in edges {
        assert!(e["length"].as_f64().unwrap() > 30.0 && e["stroke"] != "none" && e["width"] != "0px", "{e}");
    }
    assert!(seen["scripts"] == 0, "nothing ran, nothing was added");
    drop(browser);

    let png = screenshots().join("commit-pipeline.png");
    let _ = std::fs::remove_file(&png);
    chromium(profile.path(), &[&format!("--screenshot={}", png.display()), "--window-size=1280,900"], &page);
    assert!(std::fs::read(&png).is_ok_and(|b| b.starts_with(b"\x89PNG")), "{}", png.display());
}

/// The `<head>` of a built page, for a page of our own under the same CSP.
fn csp_head(page: &Path) -> String {
    let html = std::fs::read_to_string(page).unwrap();
    html[..html.find("</head>").unwrap() + "</head>".len()].to_owned()
}

/// Where each box, cell and line of the graph was laid out, whether the
/// box is what a click on it reaches (in its head: cells cover the rest),
/// and the styles that applied.
const VISIBLE: &str = r#"(() => {
  const rects = [...document.querySelectorAll("svg.graph g.node > a.head > rect, svg.graph a.cell > rect")];
  const boxes = rects.map(r => {
    const b = r.getBoundingClientRect();
    r.scrollIntoView({block: "center", inline: "center"});
    const c = r.getBoundingClientRect();
    const hit = document.elementFromPoint(c.x + c.width / 2, c.y + Math.min(12, c.height / 2));
    const link = r.closest("a");
    const s = getComputedStyle(r);
    return {class: r.closest("g.node").getAttribute("class"), w: b.width, h: b.height,
            onTop: !!hit && link.contains(hit), fill: s.fill, stroke: s.stroke, visibility: s.visibility};
  });
  const edges = [...document.querySelectorAll("svg.graph path.edge")].map(p => {
    const s = getComputedStyle(p);
    return {length: p.getTotalLength(), stroke: s.stroke, width: s.strokeWidth};
  });
  return {boxes, edges, scripts: document.scripts.length};
})()"#;

/// A job name's runs page shows each run as the other job lists do: why a
/// run was skipped and the tick a scheduled one was queued for (it used to
/// say neither). Matrix cells hide their icon from screen readers, which
/// read the state's word instead.
#[test]
fn the_runs_page_says_why_a_run_was_skipped_and_cells_read_their_state() {
    let p = pipelines();
    p.world.build();
    let deploy = text_of(&p.world.read(&paths::runs("main", "deploy")));
    assert!(deploy.contains(WHY), "{deploy}");
    let nightly = p.world.read(&paths::runs("main", "nightly"));
    assert!(nightly.contains("queued by the schedule for 2026-05-01 03:00:00 UTC"), "{nightly}");
    for page in ["branches.html".to_owned(), paths::branch("main")] {
        let html = scraper::Html::parse_document(&p.world.read(&page));
        let icons = scraper::Selector::parse("td.cell .icon").unwrap();
        let hidden: Vec<Option<&str>> = html.select(&icons).map(|i| i.value().attr("aria-hidden")).collect();
        assert!(!hidden.is_empty() && hidden.iter().all(|h| *h == Some("true")), "{page}: {hidden:?}");
    }
}
