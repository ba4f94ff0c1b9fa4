//! JUnit XML files of a job (`junit/<n>.xml`), as the job page lists them:
//! failures first, with their messages. Read by [`git_ci_core::junit`],
//! which says what becomes of a file that is not well-formed.

use git_ci_core::junit;
pub use git_ci_core::junit::Case;
use serde::Serialize;

/// The most cases a page lists.
const MAX_CASES: usize = 20_000;

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub cases: Vec<Case>,
    /// Failed and errored cases, and one a file that could not be read.
    pub failed: u64,
    pub skipped: u64,
    pub passed: u64,
    /// Files that could not be read, with why.
    pub problems: Vec<String>,
    /// More cases than the page shows.
    pub cut: bool,
}

pub fn parse(files: &[(String, Vec<u8>)]) -> Report {
    let mut read = junit::read(files);
    let cut = read.cases.len() > MAX_CASES;
    read.cases.truncate(MAX_CASES);
    let counts = read.counts();
    read.cases.sort_by(|a, b| a.outcome.cmp(&b.outcome));
    Report {
        cases: read.cases,
        failed: counts.failed,
        skipped: counts.skipped,
        passed: counts.passed,
        problems: read.problems,
        cut,
    }
}

#[cfg(test)]
mod tests {
    use git_ci_core::junit::Outcome;

    use super::*;

    const FILE: &str = r#"<?xml version="1.0"?>
<testsuites><testsuite name="unit" tests="4">
  <testcase classname="a" name="ok" time="0.01"/>
  <testcase classname="a" name="bad" time="0.2"><failure message="expected 1, got 2">assert 1 == 2
at a.rs:3</failure></testcase>
  <testcase classname="a" name="later"><skipped/></testcase>
  <testcase classname="b" name="boom"><error message="panic &lt;here&gt;"/><system-out>printed</system-out></testcase>
</testsuite></testsuites>"#;

    #[test]
    fn failures_come_first_with_their_messages() {
        let r = parse(&[("junit/0.xml".into(), FILE.as_bytes().to_vec())]);
        assert_eq!((r.failed, r.skipped, r.passed), (2, 1, 1));
        assert_eq!(r.cases[0].name, "bad");
        assert_eq!(r.cases[0].message, "expected 1, got 2");
        assert_eq!(r.cases[0].text, "assert 1 == 2\nat a.rs:3\n");
        assert_eq!(r.cases[1].outcome, Outcome::Error);
        assert_eq!(r.cases[1].message, "panic <here>");
        assert!(r.cases[1].text.contains("printed"));
        assert_eq!(r.cases[3].suite, "unit");
    }

    #[test]
    fn bad_files_are_reported_not_fatal() {
        let bomb = r#"<!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><testsuite>&b;</testsuite>"#;
        let r = parse(&[("junit/0.xml".into(), b"<nope".to_vec()), ("junit/1.xml".into(), bomb.as_bytes().to_vec())]);
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(r.cases.is_empty());
    }
}
