//! Every answer is true at a glance (issue 17): what the pages say about a
//! branch is its health, read back from the generated HTML with a parser.

use git_ci_core::model::Status;
use scraper::{Html, Selector};

use super::fixture::{Outcome, World};

/// The visible text of each cell of `branch`'s row in `branches.html`.
fn matrix_row(w: &World, branch: &str) -> Vec<String> {
    let doc = Html::parse_document(&w.read("branches.html"));
    let rows = Selector::parse("table.matrix tbody tr").unwrap();
    let cells = Selector::parse("th, td").unwrap();
    let row =
        doc.select(&rows).find(|r| r.select(&cells).next().is_some_and(|th| th.text().collect::<String>() == branch));
    let row = row.unwrap_or_else(|| panic!("no row for {branch}"));
    row.select(&cells).map(|c| c.text().collect::<String>().trim().to_owned()).collect()
}

fn columns(w: &World) -> Vec<String> {
    let doc = Html::parse_document(&w.read("branches.html"));
    let th = Selector::parse("table.matrix thead th").unwrap();
    doc.select(&th).map(|c| c.text().collect()).collect()
}

fn alt_of(w: &World, page: &str, selector: &str) -> String {
    let doc = Html::parse_document(&w.read(page));
    let img = doc.select(&Selector::parse(selector).unwrap()).next().unwrap_or_else(|| panic!("{selector} in {page}"));
    img.value().attr("alt").unwrap().to_owned()
}

fn api_state(w: &World, branch: &str) -> serde_json::Value {
    serde_json::from_str(&w.read(&format!("api/branches/{branch}.json"))).unwrap()
}

/// Item 1: one more push made a red branch read "running" and the index
/// "no failing branch" although nothing had passed.
#[test]
fn a_new_push_does_not_hide_a_red_branch() {
    let w = World::new();
    let (a, b) = (w.commit("first\n"), w.commit("second\n"));
    let job = w.submit("test", "refs/heads/main", &a, "make test");
    w.finish(&job, "w1", Outcome::new(Status::Failed, "boom\n"));
    let again = w.submit("test", "refs/heads/main", &b, "make test");
    w.claim(&again, "w1");
    w.build();
    assert!(w.read("badges/main.svg").contains("failing"), "the badge stays red");
    assert_eq!(alt_of(&w, "branches/main.html", "h1 img"), "failing");
    let row = matrix_row(&w, "main");
    assert!(row[1].contains("re-running") && row[2].contains("re-running"), "{row:?}");
    assert!(row[2].contains("failed"), "the cell is the last finished state: {row:?}");
    let index = super::check::text_of(&w.read("index.html"));
    assert!(index.contains("1 failing branch"), "{index}");
    let api = api_state(&w, "main");
    assert_eq!((api["state"].as_str(), api["rerunning"].as_bool()), (Some("failing"), Some(true)));
    // Once the newer run passes, the branch is green and nothing re-runs.
    w.finish(&again, "w1", Outcome::new(Status::Passed, "ok\n"));
    w.build();
    assert!(w.read("badges/main.svg").contains("passing"));
    let row = matrix_row(&w, "main");
    assert!(!row.iter().any(|c| c.contains("re-running")), "{row:?}");
}

/// Item 4: `git ci submit --run 'exit 1'` turned a green branch red and
/// added an `adhoc` column to the matrix.
#[test]
fn ad_hoc_jobs_are_listed_but_never_paint_a_branch() {
    let w = World::new();
    let a = w.commit("first\n");
    let job = w.submit("test", "refs/heads/main", &a, "make test");
    w.finish(&job, "w1", Outcome::new(Status::Passed, "ok\n"));
    let adhoc = w.submit("adhoc", "refs/heads/main", &a, "exit 1");
    let adhoc = w.finish(&adhoc, "w1", Outcome::new(Status::Failed, "no\n"));
    w.build();
    assert!(w.read("badges/main.svg").contains("passing"), "the badge stays green");
    assert_eq!(alt_of(&w, "branches.html", "table.matrix tbody img"), "passing");
    assert!(!columns(&w).iter().any(|c| c == "adhoc"), "no adhoc column: {:?}", columns(&w));
    assert_eq!(api_state(&w, "main")["state"], "passing");
    assert!(api_state(&w, "main")["latest"].get("adhoc").is_none());
    let index = Html::parse_document(&w.read("index.html"));
    let links: Vec<String> = index
        .select(&Selector::parse("a").unwrap())
        .filter_map(|a| a.value().attr("href").map(str::to_owned))
        .collect();
    assert!(links.iter().any(|h| h.contains(adhoc.as_str())), "the ad-hoc job is still listed: {links:?}");
    assert!(!super::check::text_of(&w.read("index.html")).contains("failing branch"));
}

/// The workers page's rows as (name cell, last-seen cell) texts.
fn worker_rows(w: &World) -> Vec<(String, String)> {
    let doc = Html::parse_document(&w.read("workers.html"));
    let rows = Selector::parse("table.workers tbody tr").unwrap();
    let td = Selector::parse("td").unwrap();
    let text = |e: scraper::ElementRef| e.text().collect::<String>().trim().to_owned();
    doc.select(&rows)
        .map(|r| {
            let cells: Vec<_> = r.select(&td).collect();
            (text(cells[0]), text(cells[4]))
        })
        .collect()
}

/// Item 2: "now" was the hub's last event, so a `kill -9`ed worker read
/// "0s ago" forever; a worker that stopped cleanly left "No worker has
/// registered".
#[test]
fn ages_run_from_the_build_and_dead_or_stopped_workers_say_so() {
    let w = World::new();
    let ten_minutes_ago =
        git_ci_core::time::rfc3339(std::time::SystemTime::now() - std::time::Duration::from_secs(600));
    w.register(
        "killed",
        serde_json::json!({
            "version": 1, "name": "killed", "labels": {}, "queues": [], "jobs": 1, "running": [],
            "platform": "linux-x86_64", "git_ci_version": "0.1.0", "started_at": ten_minutes_ago,
            "last_seen": ten_minutes_ago, "refresh_ms": 20000,
        }),
    );
    w.build();
    let rows = worker_rows(&w);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].0.contains("offline"), "a registration older than its lease is offline: {rows:?}");
    // Ages count whole minutes of our clock: 10 minutes may read 9.
    let age = &rows[0].1;
    assert!(age.starts_with("10m ago") || age.starts_with("9m ago"), "its age runs from the build: {rows:?}");
    // A worker that ran a job and stopped cleanly has no registration left.
    let a = w.commit("first\n");
    let job = w.submit("test", "refs/heads/main", &a, "make test");
    w.finish(&job, "gone-worker", Outcome::new(Status::Passed, "ok\n"));
    w.build();
    let doc = Html::parse_document(&w.read("workers.html"));
    let stopped: Vec<String> =
        doc.select(&Selector::parse("ul.stopped li").unwrap()).map(|li| li.text().collect()).collect();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!(stopped[0].contains("gone-worker") && stopped[0].contains("stopped"), "{stopped:?}");
}

/// The queue page's pending rows as (job cell, waiting cell) texts.
fn queue_rows(w: &World) -> Vec<(String, String)> {
    let doc = Html::parse_document(&w.read("queue.html"));
    let rows = Selector::parse("table.jobs tbody tr").unwrap();
    let td = Selector::parse("td").unwrap();
    let text = |e: scraper::ElementRef| e.text().collect::<String>().trim().to_owned();
    doc.select(&rows)
        .map(|r| {
            let cells: Vec<_> = r.select(&td).collect();
            (text(cells[1]), text(cells[6]))
        })
        .collect()
}

/// Item 8: a job that requires `gpu=a100` sat pending on the queue page
/// with nothing saying why.
#[test]
fn the_queue_page_says_why_a_pending_job_waits() {
    let w = World::new();
    let a = w.commit("first\n");
    let now = git_ci_core::time::now_rfc3339();
    w.register(
        "cpu",
        serde_json::json!({
            "version": 1, "name": "cpu", "labels": {"os": "linux"}, "queues": [], "jobs": 1, "running": [],
            "platform": "linux-x86_64", "git_ci_version": "0.1.0", "started_at": now,
            "last_seen": now, "refresh_ms": 20000,
        }),
    );
    let mut spec = git_ci_core::model::JobSpec::ad_hoc("train");
    spec.name = "train".into();
    spec.requires.insert("gpu".into(), "a100".into());
    let job = git_ci_core::Job::new(spec, &a.0, &a.1, "refs/heads/main", "t@example.com");
    git_ci_core::queue::submit(&w.hub, std::slice::from_ref(&job)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    w.submit("test", "refs/heads/main", &a, "make test");
    w.build();
    let rows = queue_rows(&w);
    assert_eq!(rows.len(), 2, "{rows:?}");
    let train = rows.iter().find(|r| r.0.starts_with("train")).unwrap();
    assert!(train.0.contains("no live worker serves queue default with gpu=a100"), "{rows:?}");
    let test = rows.iter().find(|r| r.0.starts_with("test")).unwrap();
    assert!(test.0.contains("waits its turn"), "{rows:?}");
    assert!(train.1.ends_with('s') || train.1.ends_with('m'), "its wait time: {rows:?}");
}

/// Parked jobs (`git_ci_core::backlog`) are on the queue page, pending,
/// and say so.
#[test]
fn the_queue_page_lists_parked_jobs_and_says_they_are_parked() {
    let w = World::new();
    let a = w.commit("first\n");
    let now = git_ci_core::time::now_rfc3339();
    w.register(
        "cpu",
        serde_json::json!({
            "version": 1, "name": "cpu", "labels": {"os": "linux"}, "queues": [], "jobs": 1, "running": [],
            "platform": "linux-x86_64", "git_ci_version": "0.1.0", "started_at": now,
            "last_seen": now, "refresh_ms": 20000,
        }),
    );
    let jobs: Vec<git_ci_core::Job> = (0..3)
        .map(|i| {
            let mut spec = git_ci_core::model::JobSpec::ad_hoc(&format!("make test{i}"));
            spec.name = format!("t{i}");
            git_ci_core::Job::new(spec, &a.0, &a.1, "refs/heads/main", "t@example.com")
        })
        .collect();
    let hub: &dyn git_ci_core::hub::Hub = &w.hub;
    hub.transact(&git_ci_core::queue::submit_parking_edits(hub, &jobs, Some(1)).unwrap()).unwrap();
    w.build();
    let rows = queue_rows(&w);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let parked = rows.iter().filter(|r| r.0.contains("parked in backlog")).count();
    assert_eq!(parked, 2, "{rows:?}");
}
