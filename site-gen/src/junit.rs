//! JUnit XML files of a job (`junit/<n>.xml`), as the job page lists them:
//! failures first, with their messages. Read with a non-validating parser
//! that refuses DTDs, so a hostile file cannot expand entities.

use serde::Serialize;

const MAX_CASES: usize = 20_000;
const MAX_MESSAGE: usize = 2_000;
const MAX_TEXT: usize = 20_000;

#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    // In this order on the page.
    Failed,
    Error,
    Skipped,
    Passed,
}

#[derive(Clone, Debug, Serialize)]
pub struct Case {
    pub outcome: Outcome,
    pub suite: String,
    pub class: String,
    pub name: String,
    /// Seconds, as the file wrote it.
    pub time: String,
    pub message: String,
    /// The failure's body and the case's captured output.
    pub text: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub cases: Vec<Case>,
    pub failed: usize,
    pub skipped: usize,
    pub passed: usize,
    /// Files that could not be read, with why.
    pub problems: Vec<String>,
    /// More cases than the page shows.
    pub cut: bool,
}

pub fn parse(files: &[(String, Vec<u8>)]) -> Report {
    let mut report = Report::default();
    for (name, bytes) in files {
        let text = String::from_utf8_lossy(bytes);
        match roxmltree::Document::parse(&text) {
            Ok(doc) => collect(&doc, &mut report),
            Err(e) => report.problems.push(format!("{name}: {e}")),
        }
    }
    report.cases.sort_by(|a, b| a.outcome.cmp(&b.outcome));
    for c in &report.cases {
        match c.outcome {
            Outcome::Failed | Outcome::Error => report.failed += 1,
            Outcome::Skipped => report.skipped += 1,
            Outcome::Passed => report.passed += 1,
        }
    }
    report
}

fn collect(doc: &roxmltree::Document, report: &mut Report) {
    for node in doc.descendants().filter(|n| n.has_tag_name("testcase")) {
        if report.cases.len() >= MAX_CASES {
            report.cut = true;
            return;
        }
        report.cases.push(case(node));
    }
}

fn case(node: roxmltree::Node) -> Case {
    let attr = |n: roxmltree::Node, a: &str| n.attribute(a).unwrap_or_default().to_owned();
    let suite = node.ancestors().find(|a| a.has_tag_name("testsuite")).map(|s| attr(s, "name")).unwrap_or_default();
    let mut case = Case {
        outcome: Outcome::Passed,
        suite,
        class: attr(node, "classname"),
        name: attr(node, "name"),
        time: attr(node, "time"),
        message: String::new(),
        text: String::new(),
    };
    let mut text = String::new();
    for child in node.children().filter(|c| c.is_element()) {
        let outcome = match child.tag_name().name() {
            "failure" | "flakyFailure" | "rerunFailure" => Some(Outcome::Failed),
            "error" | "flakyError" | "rerunError" => Some(Outcome::Error),
            "skipped" => Some(Outcome::Skipped),
            "system-out" | "system-err" => None,
            _ => continue,
        };
        if let Some(o) = outcome {
            // The worst outcome wins: a failure beats a skip.
            case.outcome = case.outcome.clone().min(o);
            if case.message.is_empty() {
                case.message = cap(child.attribute("message").unwrap_or_default(), MAX_MESSAGE);
            }
        }
        let body: String = child.descendants().filter(|d| d.is_text()).filter_map(|d| d.text()).collect();
        if !body.trim().is_empty() {
            text.push_str(body.trim_end());
            text.push('\n');
        }
    }
    if case.outcome != Outcome::Passed {
        case.text = cap(&text, MAX_TEXT);
    }
    case
}

fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
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
