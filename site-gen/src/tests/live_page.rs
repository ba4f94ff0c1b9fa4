//! Issue 17 item 3: a running job's page showed the live log's internal
//! header as line 1 and numbered its 64 KiB tail from 1, starting mid-line,
//! so `#L3` pointed at other text once the job ended; it said nothing of
//! how long the job had run or had left, and never reloaded.

use git_ci_core::Hub;
use git_ci_core::hub::RefEdit;
use git_ci_core::model::Status;
use git_ci_core::refs;
use scraper::{Html, Selector};

use super::check::text_of;
use super::fixture::{Outcome, World};
use crate::render::paths;

/// The text of the log line with anchor `#L{n}` (without its number).
fn line(page: &str, n: usize) -> Option<String> {
    let doc = Html::parse_document(page);
    let sel = Selector::parse(&format!("pre.log span#L{n}")).unwrap();
    let span = doc.select(&sel).next()?;
    let text: String = span.text().collect();
    Some(text.strip_prefix(&n.to_string()).unwrap_or(&text).to_owned())
}

fn refresh(page: &str) -> Option<String> {
    let doc = Html::parse_document(page);
    let sel = Selector::parse("meta[http-equiv=refresh]").unwrap();
    doc.select(&sel).next().and_then(|m| m.value().attr("content")).map(str::to_owned)
}

/// Line `i` of the job's log.
fn step(i: usize) -> String {
    format!("step {i} of the build {}", "x".repeat(i % 13))
}

/// A log of `n` lines as a job prints it.
fn log_of(n: usize) -> Vec<u8> {
    (1..=n).map(|i| step(i) + "\n").collect::<String>().into_bytes()
}

/// The live-log blob a worker keeps for `log`: its last lines, after the
/// header giving the bytes written and the lines before the tail.
fn live_blob(log: &[u8], tail_lines: usize) -> Vec<u8> {
    let total = log.iter().filter(|b| **b == b'\n').count();
    let start = log.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(total - tail_lines - 1).unwrap().0 + 1;
    let mut blob = format!("git-ci-live-log {} {}\n", log.len(), total - tail_lines).into_bytes();
    blob.extend_from_slice(&log[start..]);
    blob
}

fn set_live_log(w: &World, id: &git_ci_core::JobId, blob: &[u8]) {
    let hub: &dyn Hub = &w.hub;
    let oid = hub.write_blob(blob).unwrap();
    let old = hub.get(&refs::log(id)).unwrap();
    hub.transact(&[RefEdit::set(refs::log(id), old, oid)]).unwrap();
}

#[test]
fn a_running_jobs_tail_is_numbered_from_its_place_in_the_log() {
    let w = World::new();
    let c = w.commit("first\n");
    let before = w.submit("test", "refs/heads/main", &c, "make test");
    let before = w.finish(&before, "w1", Outcome::new(Status::Passed, "ok\n"));
    let job = w.submit("test", "refs/heads/main", &c, "make test");
    w.claim(&job, "w1");
    let log = log_of(3000);
    set_live_log(&w, &job.id, &live_blob(&log, 961));
    w.build();

    let page = w.read(&paths::job(job.id.as_str()));
    let text = text_of(&page);
    assert!(!text.contains("git-ci-live-log"), "no internal header: {text}");
    assert!(text.contains("… 2039 earlier lines"), "{text}");
    assert_eq!(line(&page, 2040).as_deref(), Some(step(2040).as_str()));
    assert_eq!(line(&page, 1), None, "the tail is not numbered from 1");
    assert_eq!(line(&page, 3000).as_deref(), Some(step(3000).as_str()));
    assert!(text.contains("Running for"), "{text}");
    assert!(
        text.contains("last passed run took 1.2s: less than a minute left"),
        "the estimate comes from the last passed run: {text}"
    );
    let last = Html::parse_document(&page);
    let link = Selector::parse("p.progress a").unwrap();
    let href = last.select(&link).next().and_then(|a| a.value().attr("href")).unwrap_or_default().to_owned();
    assert_eq!(href, format!("../{}", paths::job(before.as_str())));
    assert_eq!(refresh(&page).as_deref(), Some("15"), "the page reloads while the job runs");

    // The index gives the running commit's row its time so far.
    let index = Html::parse_document(&w.read("index.html"));
    let rows = Selector::parse("table.commits tbody tr").unwrap();
    let time = Selector::parse("td.time span").unwrap();
    let running = index.select(&rows).find(|r| r.text().any(|t| t.contains("running"))).expect("a running row");
    let total: String = running.select(&time).next().expect("a time").text().collect();
    assert!(total.ends_with('…') && total.len() > 1, "the time of the running row: {total:?}");

    // Once the job ends, the same anchor is the same line.
    w.finish(&job, "w1", Outcome::new(Status::Passed, std::str::from_utf8(&log).unwrap()));
    w.build();
    let page = w.read(&paths::job(job.id.as_str()));
    assert_eq!(line(&page, 2040).as_deref(), Some(step(2040).as_str()));
    assert_eq!(line(&page, 1).as_deref(), Some(step(1).as_str()));
    assert_eq!(refresh(&page), None, "a finished job's page stays put");
}

/// An older worker's tail (a byte count alone) may start mid-line: the
/// page starts at the next line and does not claim to know its number.
#[test]
fn an_older_workers_tail_starts_at_a_line_and_says_it_is_a_tail() {
    let w = World::new();
    let c = w.commit("first\n");
    let job = w.submit("test", "refs/heads/main", &c, "make test");
    w.claim(&job, "w1");
    set_live_log(&w, &job.id, b"git-ci-live-log 90000\nof a line\nwhole line\n");
    w.build();
    let page = w.read(&paths::job(job.id.as_str()));
    let text = text_of(&page);
    assert!(!text.contains("git-ci-live-log") && !text.contains("of a line"), "{text}");
    assert_eq!(line(&page, 1).as_deref(), Some("whole line"));
    assert!(text.contains("earlier lines are not shown"), "{text}");
}

/// Item 11: `logs/<id>.txt` carries the job's escape codes and there was
/// no plain one; "open the raw log" on a cut page was text, not a link.
#[test]
fn logs_come_as_plain_text_too_and_a_cut_page_links_the_whole_log() {
    let w = World::new();
    let c = w.commit("first\n");
    let job = w.submit("test", "refs/heads/main", &c, "make test");
    let mut log = String::from("\x1b[1;31merror\x1b[0m: \x1b]0;title\x07it broke\n");
    log.extend((1..=400).map(|i| format!("line {i}\n")));
    let id = w.finish(&job, "w1", Outcome::new(Status::Failed, &log));
    let mut options = crate::Options::new(w.out());
    options.log_limit = 1000;
    crate::Site::new(options).unwrap().build(&w.hub, &|_| {}).unwrap();

    assert_eq!(w.read(&paths::log(id.as_str())), log, "the raw log is as written");
    let plain = w.read(&paths::plain_log(id.as_str()));
    assert!(plain.starts_with("error: it broke\nline 1\n") && !plain.contains('\x1b'), "{plain:?}");
    let page = Html::parse_document(&w.read(&paths::job(id.as_str())));
    let hrefs: Vec<String> =
        page.select(&Selector::parse("a").unwrap()).filter_map(|a| a.value().attr("href").map(str::to_owned)).collect();
    assert!(hrefs.contains(&format!("../{}", paths::plain_log(id.as_str()))), "{hrefs:?}");
    let cut = page.select(&Selector::parse("pre.log .cut a").unwrap()).next().expect("the cut marker is a link");
    assert_eq!(cut.value().attr("href"), Some(format!("../{}", paths::plain_log(id.as_str()))).as_deref());
}
