//! JUnit XML, read one way for everyone: the worker counting a job's tests,
//! `git ci junit` merging files into one, and the site listing cases.
//!
//! Files are read with roxmltree, a non-validating parser that refuses
//! DTDs, so a hostile file cannot expand entities. A file that is not
//! well-formed XML (a truncated one, say) is never read in part: it is
//! skipped with a note and counted as one error, so that a job whose test
//! report broke never looks green. The merged export is written from the
//! parsed trees, so every element it opens it closes.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde::Serialize;

use crate::model::TestCounts;

/// The longest failure message kept of a case.
const MAX_MESSAGE: usize = 2_000;
/// The longest failure body (with the case's output) kept of a case.
const MAX_TEXT: usize = 20_000;

/// What a case ended as, worst first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Failed,
    Error,
    Skipped,
    Passed,
}

/// One `<testcase>`.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    pub outcome: Outcome,
    /// The name of the `<testsuite>` it is in.
    pub suite: String,
    pub class: String,
    pub name: String,
    /// Seconds, as the file wrote it.
    pub time: String,
    /// The first failure, error or skip message, cut at `MAX_MESSAGE` bytes.
    pub message: String,
    /// A case that did not pass: its failure's body and captured output.
    pub text: String,
}

/// Every case of some files, and the files that could not be read.
#[derive(Debug, Default)]
pub struct Read {
    pub cases: Vec<Case>,
    /// `<file name>: <why>`, one a file skipped.
    pub problems: Vec<String>,
}

impl Read {
    /// The cases tallied, and every unreadable file as one error.
    pub fn counts(&self) -> TestCounts {
        let mut c = TestCounts::default();
        for case in &self.cases {
            match case.outcome {
                Outcome::Failed | Outcome::Error => c.failed += 1,
                Outcome::Skipped => c.skipped += 1,
                Outcome::Passed => c.passed += 1,
            }
        }
        c.failed += self.problems.len() as u64;
        c.total = c.passed + c.failed + c.skipped;
        c
    }
}

/// Reads `files` as `(name, bytes)`.
pub fn read(files: &[(String, Vec<u8>)]) -> Read {
    let mut read = Read::default();
    for (name, bytes) in files {
        let text = String::from_utf8_lossy(bytes);
        match roxmltree::Document::parse(&text) {
            Ok(doc) => read.cases.extend(doc.descendants().filter(|n| n.has_tag_name("testcase")).map(case)),
            Err(e) => read.problems.push(format!("{name}: {e}")),
        }
    }
    read
}

impl std::ops::AddAssign for TestCounts {
    fn add_assign(&mut self, o: TestCounts) {
        self.total += o.total;
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
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

/// `git ci junit`'s export: the merged document and what it holds.
#[derive(Debug)]
pub struct Merged {
    pub xml: Vec<u8>,
    /// What the merged document counts (its unreadable files as errors).
    pub counts: TestCounts,
    /// The files skipped, as [`Read::problems`] says them.
    pub problems: Vec<String>,
}

/// One `<testsuites>` document holding every outermost `<testsuite>` of
/// `files` (`(prefix, bytes)`), each suite's name prefixed with `prefix`
/// (the job) so that sources stay apart. An unreadable file becomes a
/// suite of one errored case that says why, so the export counts it as
/// [`Read::counts`] does.
pub fn merge(files: &[(String, Vec<u8>)]) -> Merged {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let mut problems = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w.write_event(Event::Start(BytesStart::new("testsuites")));
    for (prefix, bytes) in files {
        let text = String::from_utf8_lossy(bytes);
        match roxmltree::Document::parse(&text) {
            Ok(doc) => {
                let outermost = |n: &roxmltree::Node| {
                    n.has_tag_name("testsuite") && !n.ancestors().skip(1).any(|a| a.has_tag_name("testsuite"))
                };
                for suite in doc.descendants().filter(outermost) {
                    copy(&mut w, suite, Some(prefix));
                }
            }
            Err(e) => {
                let why = format!("not well-formed JUnit XML: {e}");
                let mut suite = BytesStart::new("testsuite");
                suite.push_attribute(("name", format!("{prefix}: unreadable").as_str()));
                suite.extend_attributes([("tests", "1"), ("errors", "1")]);
                let _ = w.write_event(Event::Start(suite));
                let mut case = BytesStart::new("testcase");
                case.push_attribute(("name", "unreadable JUnit file"));
                let _ = w.write_event(Event::Start(case));
                let mut error = BytesStart::new("error");
                error.push_attribute(("message", why.as_str()));
                let _ = w.write_event(Event::Empty(error));
                let _ = w.write_event(Event::End(BytesEnd::new("testcase")));
                let _ = w.write_event(Event::End(BytesEnd::new("testsuite")));
                problems.push(format!("{prefix}: {e}"));
            }
        }
    }
    let _ = w.write_event(Event::End(BytesEnd::new("testsuites")));
    let mut xml = w.into_inner();
    xml.push(b'\n');
    let counts = read(&[("merged".to_owned(), xml.clone())]).counts();
    Merged { xml, counts, problems }
}

/// Writes `node` and everything in it; with `prefix`, its `name` (or, when
/// it has none, the whole name) says where it came from.
fn copy(w: &mut Writer<Vec<u8>>, node: roxmltree::Node, prefix: Option<&str>) {
    if node.is_text() {
        let text = node.text().unwrap_or_default();
        // The indent between elements is the writer's own.
        if text.trim().is_empty() && node.parent().is_some_and(|p| p.children().any(|c| c.is_element())) {
            return;
        }
        let _ = w.write_event(Event::Text(BytesText::new(node.text().unwrap_or_default())));
        return;
    }
    if !node.is_element() {
        return; // comments and processing instructions
    }
    let tag = node.tag_name().name();
    let mut start = BytesStart::new(tag);
    for a in node.attributes() {
        match prefix {
            Some(p) if a.name() == "name" => start.push_attribute(("name", format!("{p}: {}", a.value()).as_str())),
            _ => start.push_attribute((a.name(), a.value())),
        }
    }
    if let Some(p) = prefix.filter(|_| node.attribute("name").is_none()) {
        start.push_attribute(("name", p));
    }
    if !node.has_children() {
        let _ = w.write_event(Event::Empty(start));
        return;
    }
    let _ = w.write_event(Event::Start(start));
    for child in node.children() {
        copy(w, child, None);
    }
    let _ = w.write_event(Event::End(BytesEnd::new(tag)));
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0"?>
<testsuites><testsuite name="unit" tests="4">
  <testcase name="a"/>
  <testcase name="b"><failure message="boom">trace</failure></testcase>
  <testcase name="c"><skipped/></testcase>
  <testcase name="d"><error message="x"/></testcase>
</testsuite></testsuites>"#;

    fn count(xml: &[u8]) -> TestCounts {
        read(&[("f".to_owned(), xml.to_vec())]).counts()
    }

    #[test]
    fn counts_verdicts() {
        assert_eq!(count(XML.as_bytes()), TestCounts { total: 4, passed: 1, failed: 2, skipped: 1 });
        // Unreadable: skipped, counted as one error.
        assert_eq!(count(b"not xml <<"), TestCounts { total: 1, passed: 0, failed: 1, skipped: 0 });
    }

    #[test]
    fn merged_files_keep_every_case_and_name_their_source() {
        let merged = merge(&[("job1".into(), XML.as_bytes().to_vec()), ("job2".into(), XML.as_bytes().to_vec())]);
        let text = String::from_utf8(merged.xml.clone()).unwrap();
        assert!(text.contains("name=\"job1: unit\"") && text.contains("name=\"job2: unit\""), "{text}");
        assert_eq!(count(&merged.xml), TestCounts { total: 8, passed: 2, failed: 4, skipped: 2 });
        assert_eq!(merged.counts, count(&merged.xml));
    }

    #[test]
    fn a_truncated_file_merges_into_well_formed_xml_as_one_error() {
        let truncated = r#"<testsuite name="cut"><testcase name="a"/><testcase name="b"><failure>x &amp; y"#;
        let files = [("job1".to_owned(), XML.as_bytes().to_vec()), ("job2".to_owned(), truncated.as_bytes().to_vec())];
        let merged = merge(&files);
        let text = String::from_utf8(merged.xml).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        let suites: Vec<_> = doc.root_element().children().filter(|n| n.has_tag_name("testsuite")).collect();
        assert_eq!(suites.len(), 2, "{text}");
        assert_eq!(merged.problems.len(), 1, "{:?}", merged.problems);
        assert!(merged.problems[0].starts_with("job2: "), "{:?}", merged.problems);
        assert_eq!(merged.counts, TestCounts { total: 5, passed: 1, failed: 3, skipped: 1 });
    }

    #[test]
    fn text_and_attributes_are_escaped_again_on_the_way_out() {
        let xml = r#"<testsuite name="a&lt;b"><testcase name="t"><failure message="&quot;q&quot;">1 &lt; 2 &amp; 3</failure><system-out><![CDATA[<raw>]]></system-out></testcase></testsuite>"#;
        let merged = merge(&[("j".to_owned(), xml.as_bytes().to_vec())]);
        let text = String::from_utf8(merged.xml).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        let failure = doc.descendants().find(|n| n.has_tag_name("failure")).unwrap();
        assert_eq!((failure.attribute("message"), failure.text()), (Some("\"q\""), Some("1 < 2 & 3")));
        let out = doc.descendants().find(|n| n.has_tag_name("system-out")).unwrap();
        assert_eq!(out.text(), Some("<raw>"));
        assert_eq!(doc.root_element().first_element_child().unwrap().attribute("name"), Some("j: a<b"));
    }
}
