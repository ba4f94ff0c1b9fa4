//! Issue 17, "beyond the peers", through the real binary: `git ci run`
//! twice on a repository that is its own hub, then `git ci site build`.
//! The index has a row per commit with a chip per job, and the failed
//! commit's page names its failing JUnit test first, linked to the failure
//! on the job's page. Pages are read with an HTML parser.

use std::path::Path;

use scraper::{ElementRef, Html, Selector};

use crate::env::TestEnv;

const PIPELINE: &str = r#"
[job.unit]
run = "sh unit.sh"
junit = ["junit.xml"]

[job.lint]
run = "true"
"#;

/// A test run that writes JUnit with one failure, and fails.
const UNIT: &str = r#"cat > junit.xml <<'XML'
<testsuite name="unit">
<testcase classname="calc" name="adds"/>
<testcase classname="calc" name="divides &lt;by zero&gt;"><failure message="boom"/></testcase>
</testsuite>
XML
exit 1
"#;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(e: ElementRef) -> String {
    e.text().collect::<String>().trim().to_owned()
}

fn page(site: &Path, rel: &str) -> Html {
    let path = site.join(rel);
    Html::parse_document(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn the_index_has_a_row_per_commit_and_a_failed_commit_names_its_failing_test_first() {
    let env = TestEnv::new();
    let repo = env.project("p", PIPELINE);
    let failing = env.commit_file(&repo, "unit.sh", UNIT, "add the unit tests");
    env.ci(&repo, &["run"]).expect(1);
    let fixed = env.commit_file(&repo, "unit.sh", "true\n", "fix division");
    env.ci(&repo, &["run"]).expect(0);
    let site = env.path("site");
    env.ci(&repo, &["site", "build", "--out", site.to_str().unwrap()]).expect(0);

    let index = page(&site, "index.html");
    let rows: Vec<ElementRef> = index.select(&sel("table.commits tbody tr")).collect();
    assert_eq!(rows.len(), 2, "two commits of two jobs each: {}", index.html());
    let row = |r: &ElementRef, s: &str| r.select(&sel(s)).next().map(text).unwrap_or_default();
    let chips = |r: &ElementRef| -> Vec<(String, Option<String>)> {
        r.select(&sel("td.chips a.chip"))
            .map(|a| (text(a), a.value().attr("class").map(str::to_owned)))
            .map(|(t, c)| (t.split_whitespace().nth(1).unwrap_or_default().to_owned(), c))
            .collect()
    };
    assert_eq!(row(&rows[0], "td.rev a.sha"), fixed[..10], "newest first");
    assert_eq!(row(&rows[0], "td.rev .subject"), "fix division");
    assert_eq!(row(&rows[0], "td.rev .author"), "Test Author");
    assert_eq!(row(&rows[1], "td.rev a.sha"), failing[..10]);
    let failed = chips(&rows[1]);
    assert_eq!(
        failed,
        [("lint".into(), Some("chip job s-passed".into())), ("unit".into(), Some("chip job s-failed".into()))]
    );
    assert!(row(&rows[1], "td.time > span").ends_with('s'), "the sum of its durations");

    let commit = page(&site, &format!("commits/{failing}.html"));
    let first = commit.select(&sel("main > h1 + section.failing-tests li a")).next().expect("failing tests first");
    assert_eq!(text(first), "divides <by zero>");
    let href = first.value().attr("href").unwrap();
    let (job_page, anchor) = href.strip_prefix("../").unwrap().split_once('#').unwrap();
    let job = page(&site, job_page);
    let failure = job.select(&sel(&format!("details#{anchor} summary strong"))).next().map(text);
    assert_eq!(failure.as_deref(), Some("divides <by zero>"), "the link lands on the failure");
    let fixed_page = page(&site, &format!("commits/{fixed}.html"));
    assert!(fixed_page.select(&sel("section.failing-tests")).next().is_none(), "a green commit lists none");
}
