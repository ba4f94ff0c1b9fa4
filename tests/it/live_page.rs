//! Issue 17 item 3, end to end: a real worker's live log of more than
//! 64 KiB, on the running job's page of a real `site build`. The tail
//! starts at a line, its lines are numbered from their place in the log,
//! and an anchor names the same line before and after the job ends.

use std::time::Duration;

use scraper::{Html, Selector};

use crate::env::{TestEnv, wait_until};

/// The text of line `n` (`<span id="L{n}">`) in a job page, read with an
/// HTML parser, without the line's number (its anchor link).
fn line(page: &str, n: usize) -> Option<String> {
    let doc = Html::parse_document(page);
    let span = doc.select(&Selector::parse(&format!("span#L{n}")).unwrap()).next()?;
    let number: String = span.select(&Selector::parse("a").unwrap()).next()?.text().collect();
    let text: String = span.text().collect();
    Some(text.strip_prefix(&number)?.to_owned())
}

#[test]
fn a_running_jobs_page_numbers_its_tail_as_the_finished_log() {
    let env = TestEnv::new();
    let release = env.path("release");
    let pipeline = format!(
        "[job.long]\nrun = \"seq -f 'line %g of a long build log' 6000; while ! test -f {}; do sleep 0.05; done\"\n",
        release.display()
    );
    let (repo, hub) = env.project_on_hub(&pipeline);
    let id = env.ci(&repo, &["submit", "--hub", &hub]).expect(0).stdout().trim().to_owned();
    let worker = env.spawn_ci(&repo, &["worker", "--hub", &hub, "--name", "w", "--log-interval", "200ms"]);
    let hub_path = std::path::PathBuf::from(&hub);
    let blob = || env.git_output(&hub_path, &["cat-file", "-p", &format!("refs/ci/logs/{id}")]).stdout;
    wait_until(Duration::from_secs(30), "the whole log in the live tail", || {
        blob().ends_with(b"line 6000 of a long build log\n")
    });
    let blob = blob();
    let newline = blob.iter().position(|b| *b == b'\n').unwrap();
    let header = String::from_utf8_lossy(&blob[..newline]).into_owned();
    let tail = &blob[newline + 1..];
    let counts: Vec<u64> =
        header.strip_prefix("git-ci-live-log ").unwrap().split(' ').map(|n| n.parse().unwrap()).collect();
    let (total, before) = (counts[0], counts[1] as usize);
    assert!(total > 65_536 && (tail.len() as u64) < total, "a tail of a long log: {header}");
    let first = format!("line {} of a long build log\n", before + 1);
    assert!(tail.starts_with(first.as_bytes()), "{header}: the tail starts at a line, the one after those counted");

    let site = env.path("site");
    let build = || env.ci(&repo, &["site", "build", "--hub", &hub, "--out", site.to_str().unwrap()]).expect(0);
    build();
    let page = std::fs::read_to_string(site.join(format!("jobs/{id}.html"))).unwrap();
    assert!(!page.contains("git-ci-live-log"), "no internal header on the page");
    assert!(page.contains(&format!("… {before} earlier lines")));
    let n = before + 5;
    let expected = format!("line {n} of a long build log");
    assert_eq!(line(&page, n).as_deref(), Some(expected.as_str()));
    assert_eq!(line(&page, 1), None);

    std::fs::write(&release, "").unwrap();
    wait_until(Duration::from_secs(30), "the job to finish", || env.published_ids(&hub_path).contains(&id));
    worker.signal("TERM");
    assert!(worker.wait().0.success());
    build();
    let page = std::fs::read_to_string(site.join(format!("jobs/{id}.html"))).unwrap();
    assert_eq!(line(&page, n).as_deref(), Some(expected.as_str()), "the same anchor, the same line");
    assert_eq!(line(&page, 1).as_deref(), Some("line 1 of a long build log"));
}
