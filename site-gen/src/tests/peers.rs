//! Issue 17, "beyond the peers": a page per job name and branch (duration
//! bars, pass rate, median, flaky runs), a commit's verdict with where each
//! red job's failures began, and what each worker does now.

use git_ci_core::model::Status;
use scraper::{Html, Selector};

use super::check::text_of;
use super::fixture::{Outcome, World};
use crate::render::paths;

fn select_texts(page: &str, selector: &str) -> Vec<String> {
    let doc = Html::parse_document(page);
    let sel = Selector::parse(selector).unwrap();
    doc.select(&sel).map(|e| e.text().collect::<String>().trim().to_owned()).collect()
}

/// main: c1 passes; c2 fails, then passes on a retry of the same tree
/// (flaky); c3 and c4 fail.
/// Returns the commits and the id of c4's run.
fn history(w: &World) -> ([(String, String); 4], git_ci_core::JobId) {
    let c1 = w.commit_after("one\n", None);
    let c2 = w.commit_after("two\n", Some(&c1.0));
    let c3 = w.commit_after("three\n", Some(&c2.0));
    let c4 = w.commit_after("four\n", Some(&c3.0));
    let run = |c: &(String, String), status| {
        let job = w.submit("test", "refs/heads/main", c, "make test");
        w.finish(&job, "w1", Outcome::new(status, "error: it broke\n"))
    };
    run(&c1, Status::Passed);
    run(&c2, Status::Failed);
    run(&c2, Status::Passed);
    run(&c3, Status::Failed);
    let last = run(&c4, Status::Failed);
    ([c1, c2, c3, c4], last)
}

#[test]
fn a_job_on_a_branch_has_a_page_of_its_runs_with_rate_median_and_flakes() {
    let w = World::new();
    history(&w);
    w.build();
    let page = w.read(&paths::runs("main", "test"));
    let text = text_of(&page);
    assert!(text.contains("2 of 5 passed (40%)"), "{text}");
    assert!(text.contains("median passed run 1.2s"), "{text}");
    let flaky = select_texts(&page, "table.runs tbody tr td:first-child .chip");
    assert_eq!(flaky, ["flaky"], "only c2's failure, which passed again on its tree");
    let bars = Html::parse_document(&page);
    let meters: Vec<_> = bars.select(&Selector::parse("table.runs meter").unwrap()).collect();
    assert_eq!(meters.len(), 5, "a duration bar per finished run");
    assert_eq!(meters[0].value().attr("value"), Some("1234"));
    let branch = w.read(&paths::branch("main"));
    assert!(branch.contains(&format!("href=\"../{}\"", paths::runs("main", "test"))), "the branch page links it");
}

#[test]
fn a_commit_page_gives_its_verdict_and_where_each_red_job_began_failing() {
    let w = World::new();
    let ([_, c2, c3, c4], last) = history(&w);
    w.build();
    let page = w.read(&paths::commit(&c4.0));
    let verdict = select_texts(&page, "p.verdict");
    assert_eq!(verdict, ["failing: 1 job red"]);
    let red = select_texts(&page, "ul.red li");
    assert!(red[0].contains(&format!("first failing since {}", &c3.0[..10])), "{red:?}");
    let doc = Html::parse_document(&page);
    let hrefs: Vec<&str> = doc.select(&Selector::parse("a").unwrap()).filter_map(|a| a.value().attr("href")).collect();
    assert!(hrefs.contains(&format!("../{}", paths::commit(&c3.0)).as_str()), "links the parent: {hrefs:?}");
    let c3_page = text_of(&w.read(&paths::commit(&c3.0)));
    assert!(c3_page.contains("first failing on this commit"), "{c3_page}");
    let c2_page = select_texts(&w.read(&paths::commit(&c2.0)), "p.verdict");
    assert_eq!(c2_page, ["passing"], "the retry passed");
    let job = Html::parse_document(&w.read(&paths::job(last.as_str())));
    let jump = job.select(&Selector::parse("a[href='#L1']").unwrap()).next().map(|a| a.text().collect::<String>());
    assert_eq!(jump.as_deref(), Some("Jump to the first error"));
}

#[test]
fn the_workers_page_says_what_each_worker_runs_and_for_how_long_or_that_it_idles() {
    let w = World::new();
    let c = w.commit("one\n");
    let job = w.submit("test", "refs/heads/main", &c, "make test");
    w.claim(&job, "busy");
    let now = git_ci_core::time::now_rfc3339();
    let doc = |name: &str, running: Vec<&str>| {
        serde_json::json!({
            "version": 1, "name": name, "labels": {}, "queues": [], "jobs": 1, "running": running,
            "platform": "linux-x86_64", "git_ci_version": "0.1.0", "started_at": now,
            "last_seen": now, "refresh_ms": 20000,
        })
    };
    w.register("busy", doc("busy", vec![job.id.as_str()]));
    w.register("lazy", doc("lazy", vec![]));
    w.build();
    let rows = select_texts(&w.read("workers.html"), "table.workers tbody tr td:nth-child(4)");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("test (") && rows[0].contains("for under a minute"), "{rows:?}");
    assert!(rows[1].starts_with("idle"), "{rows:?}");
}
