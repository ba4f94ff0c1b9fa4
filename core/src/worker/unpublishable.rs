//! A result the hub will not take, turned into one it will.
//!
//! The hub's guard refuses a result for reasons that no retry changes: a
//! log or artifacts over its limits (`ci.maxLogBytes`,
//! `ci.maxArtifactBytes`), a result it cannot parse. Retrying such a
//! publish forever would hold the job's claim by heartbeat and, since the
//! publish rides in every claim push, stop the worker claiming anything
//! else. So the job is published once as `error`: the reason, the head and
//! tail of its log, no artifacts or test reports.

use std::io::{Read, Seek, SeekFrom};

use crate::done::{Content, Entry};
use crate::model::{Status, TestCounts};

/// How much of the log's head, and as much of its tail, an `error` result
/// keeps: enough to show how the job began and ended, and far under any
/// sane `ci.maxLogBytes`.
const KEPT: u64 = 512;

/// `entry` as an `error` result that fits any hub: `why` the hub refused it,
/// and its log's head and tail.
pub fn fitting_error(entry: Entry, why: &str) -> Entry {
    let Entry { id, job_json, mut result, log, cache_key: _, files: _ } = entry;
    let was = result.status.as_str();
    let mut text = format!("[git-ci] the hub refused this job's result ({was}): {why}\n").into_bytes();
    text.extend(head_and_tail(&log));
    result.status = Status::Error;
    result.reason = Some(format!("the hub refused its {was} result: {why}"));
    result.tests = TestCounts::default();
    result.artifacts.clear();
    result.log_truncated = true;
    result.log_bytes = text.len() as u64;
    result.log_sha256 = crate::digest::sha256_hex(&text);
    Entry { id, job_json, result, log: Content::Bytes(text), files: vec![], cache_key: None }
}

/// The first and last [`KEPT`] bytes of a log, with a marker between when
/// anything was cut; a log that cannot be read says so instead.
fn head_and_tail(log: &Content) -> Vec<u8> {
    match log {
        Content::Bytes(b) => cut(b.len() as u64, |start, len| Ok(b[start as usize..(start + len) as usize].to_vec())),
        Content::File(path) => {
            let read = || -> std::io::Result<Vec<u8>> {
                let mut f = std::fs::File::open(path)?;
                let size = f.metadata()?.len();
                Ok(cut(size, |start, len| {
                    f.seek(SeekFrom::Start(start))?;
                    let mut buf = Vec::with_capacity(len as usize);
                    (&mut f).take(len).read_to_end(&mut buf)?;
                    Ok(buf)
                }))
            };
            read().unwrap_or_else(|e| format!("[git-ci] its log could not be read: {e}\n").into_bytes())
        }
    }
}

fn cut(size: u64, mut range: impl FnMut(u64, u64) -> std::io::Result<Vec<u8>>) -> Vec<u8> {
    let mut read =
        |start, len| range(start, len).unwrap_or_else(|e| format!("[git-ci] read error: {e}\n").into_bytes());
    if size <= 2 * KEPT {
        return read(0, size);
    }
    let mut out = read(0, KEPT);
    out.extend(format!("\n[git-ci] … {} bytes cut …\n", size - 2 * KEPT).into_bytes());
    out.extend(read(size - KEPT, KEPT));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::JobId;
    use crate::model::JobResult;

    fn entry(log: Content) -> Entry {
        let id = JobId::parse("20261122T040704123-0123456789ab").unwrap();
        let mut result = JobResult::without_run(&id, Status::Passed, "w1", 1, String::new());
        result.reason = None;
        result.tests = TestCounts { total: 1, passed: 1, failed: 0, skipped: 0 };
        Entry {
            id,
            job_json: b"{}".to_vec(),
            result,
            log,
            files: vec![("artifacts/a".into(), Content::Bytes(vec![1]))],
            cache_key: None,
        }
    }

    #[test]
    fn a_refused_result_becomes_a_small_error_with_the_logs_ends() {
        let mut log = vec![b'h'; 100_000];
        log.extend(b"THE END");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, &log).unwrap();
        for content in [Content::Bytes(log.clone()), Content::File(path)] {
            let e = fitting_error(entry(content), "log is 100007 bytes, over the hub's ci.maxLogBytes (1000)");
            let Content::Bytes(text) = &e.log else { panic!("a fitting log is in memory") };
            let text = String::from_utf8_lossy(text);
            assert!(text.starts_with("[git-ci] the hub refused this job's result (passed): log is"), "{text}");
            assert!(text.ends_with("THE END") && text.contains("bytes cut"), "{}", &text[text.len() - 50..]);
            assert!(text.len() < 1_500, "{}", text.len());
            assert_eq!(e.result.status, Status::Error);
            assert!(e.result.reason.as_deref().unwrap().contains("ci.maxLogBytes"));
            assert_eq!((e.result.log_bytes, e.files.len(), e.result.tests.total), (text.len() as u64, 0, 0));
            assert_eq!(e.result.log_sha256, crate::digest::sha256_hex(text.as_bytes()));
        }
    }
}
