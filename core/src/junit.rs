//! JUnit XML: counting a job's tests, and merging files for `git ci junit`.

use quick_xml::Reader;
use quick_xml::events::Event;

use crate::model::TestCounts;

/// Counts `<testcase>`s: failed when they hold `<failure>` or `<error>`,
/// skipped when they hold `<skipped>`. Unreadable XML counts nothing.
pub fn count(xml: &[u8]) -> TestCounts {
    let mut reader = Reader::from_reader(xml);
    let mut counts = TestCounts::default();
    let mut buf = Vec::new();
    // The verdict of the testcase being read: 0 passed, 1 failed, 2 skipped.
    let mut open: Option<u8> = None;
    while let Ok(event) = reader.read_event_into(&mut buf) {
        match event {
            Event::Start(e) if e.name().as_ref() == b"testcase" => open = Some(0),
            Event::Empty(e) if e.name().as_ref() == b"testcase" => tally(&mut counts, 0),
            Event::Start(e) | Event::Empty(e) if open.is_some() => match e.name().as_ref() {
                b"failure" | b"error" => open = Some(1),
                // A failure outranks a skip within one testcase.
                b"skipped" if open != Some(1) => open = Some(2),
                _ => {}
            },
            Event::End(e) if e.name().as_ref() == b"testcase" => {
                tally(&mut counts, open.take().unwrap_or(0));
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    counts
}

fn tally(c: &mut TestCounts, verdict: u8) {
    c.total += 1;
    match verdict {
        1 => c.failed += 1,
        2 => c.skipped += 1,
        _ => c.passed += 1,
    }
}

impl std::ops::AddAssign for TestCounts {
    fn add_assign(&mut self, o: TestCounts) {
        self.total += o.total;
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

/// One `<testsuites>` document holding every `<testsuite>` of `files`,
/// each suite name prefixed with `prefix` (the job) so sources stay apart.
pub fn merge(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart};
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = w.write_event(Event::Start(BytesStart::new("testsuites")));
    for (prefix, xml) in files {
        let mut reader = Reader::from_reader(xml.as_slice());
        let mut buf = Vec::new();
        let mut depth_in_suite = 0usize;
        loop {
            let event = match reader.read_event_into(&mut buf) {
                Ok(Event::Eof) | Err(_) => break,
                Ok(e) => e.into_owned(),
            };
            let is_suite = |name: &[u8]| name == b"testsuite";
            match event {
                Event::Start(ref e) if is_suite(e.name().as_ref()) => {
                    depth_in_suite += 1;
                    let _ = w.write_event(Event::Start(renamed(e, prefix)));
                }
                Event::Empty(ref e) if is_suite(e.name().as_ref()) => {
                    let _ = w.write_event(Event::Empty(renamed(e, prefix)));
                }
                Event::End(ref e) if is_suite(e.name().as_ref()) => {
                    depth_in_suite = depth_in_suite.saturating_sub(1);
                    let _ = w.write_event(Event::End(BytesEnd::new("testsuite")));
                }
                Event::Decl(_) | Event::DocType(_) | Event::PI(_) => {}
                other if depth_in_suite > 0 => {
                    let _ = w.write_event(other);
                }
                _ => {}
            }
            buf.clear();
        }
    }
    let _ = w.write_event(Event::End(quick_xml::events::BytesEnd::new("testsuites")));
    let mut out = w.into_inner();
    out.push(b'\n');
    out
}

fn renamed<'a>(e: &quick_xml::events::BytesStart<'a>, prefix: &str) -> quick_xml::events::BytesStart<'static> {
    let mut out = quick_xml::events::BytesStart::new("testsuite");
    let mut had_name = false;
    for a in e.attributes().flatten() {
        if a.key.as_ref() == b"name" {
            had_name = true;
            let v = a.unescape_value().map(|v| v.into_owned()).unwrap_or_default();
            out.push_attribute(("name", format!("{prefix}: {v}").as_str()));
        } else {
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let v = a.unescape_value().map(|v| v.into_owned()).unwrap_or_default();
            out.push_attribute((key.as_str(), v.as_str()));
        }
    }
    if !had_name {
        out.push_attribute(("name", prefix));
    }
    out
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

    #[test]
    fn counts_verdicts() {
        assert_eq!(count(XML.as_bytes()), TestCounts { total: 4, passed: 1, failed: 2, skipped: 1 });
        assert_eq!(count(b"not xml <<"), TestCounts::default());
    }

    #[test]
    fn merged_files_keep_every_case_and_name_their_source() {
        let merged = merge(&[("job1".into(), XML.as_bytes().to_vec()), ("job2".into(), XML.as_bytes().to_vec())]);
        let text = String::from_utf8(merged.clone()).unwrap();
        assert!(text.contains("name=\"job1: unit\"") && text.contains("name=\"job2: unit\""), "{text}");
        assert_eq!(count(&merged), TestCounts { total: 8, passed: 2, failed: 4, skipped: 2 });
    }
}
