//! `refs/ci/logs/<id>`: the tail of a running job's log, refreshed every
//! few seconds so that `git ci log --follow` can show it growing. The ref
//! goes when the job is published.
//!
//! The blob is a header line `git-ci-live-log <bytes so far> <lines before>`
//! and then the last [`TAIL`] bytes or less, from the start of a line: a
//! follower knows which part it has not seen, and a page numbers the tail's
//! lines as the finished log will (`#L3` is the same line before and after
//! the job ends). Older workers wrote the byte count alone, and a tail that
//! may start mid-line; readers take both.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use gix::ObjectId;

use super::mask::Masker;
use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::refs;

pub const TAIL: u64 = 64 * 1024;
pub const HEADER: &str = "git-ci-live-log ";

pub struct LiveLogs {
    every: Duration,
    next: Instant,
    /// What the hub holds for each job: the blob and the log size it showed.
    shown: HashMap<JobId, (ObjectId, u64)>,
    /// Newlines counted in each job's log file, up to an offset: every byte
    /// is counted once however long the job runs.
    counted: HashMap<JobId, Counted>,
}

#[derive(Clone, Copy, Default)]
struct Counted {
    offset: u64,
    lines: u64,
}

impl LiveLogs {
    pub fn new(every: Duration) -> LiveLogs {
        LiveLogs { every, next: Instant::now() + every, shown: HashMap::new(), counted: HashMap::new() }
    }

    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    pub fn next(&self) -> Instant {
        self.next
    }

    /// Pushes the tails that grew since last time, in one transaction.
    pub fn publish(&mut self, hub: &dyn Hub, logs: &[(JobId, &Path)], masker: &Masker) -> Result<(), HubError> {
        self.next = Instant::now() + self.every;
        let mut edits = Vec::new();
        let mut updates = Vec::new();
        for (id, path) in logs {
            let Ok(size) = std::fs::metadata(path).map(|m| m.len()) else { continue };
            let previous = self.shown.get(id).copied();
            if previous.is_some_and(|(_, shown)| shown == size) {
                continue;
            }
            let counted = self.counted.entry(id.clone()).or_default();
            let Ok((lines, tail)) = read_tail(path, size, counted) else { continue };
            let mut blob = format!("{HEADER}{size} {lines}\n").into_bytes();
            blob.extend(masker.mask(&tail));
            let oid = hub.write_blob(&blob)?;
            edits.push(RefEdit::set(refs::log(id), previous.map(|(o, _)| o), oid));
            updates.push((id.clone(), (oid, size)));
        }
        if edits.is_empty() {
            return Ok(());
        }
        match hub.transact(&edits) {
            Ok(()) => {
                self.shown.extend(updates);
                Ok(())
            }
            Err(e) if e.is_conflict() => {
                // A ref left by an earlier attempt of the job: adopt it and
                // overwrite it next time.
                hub.refresh(&[refs::LOGS])?;
                for (id, _) in updates {
                    match (hub as &dyn Hub).get(&refs::log(&id))? {
                        Some(oid) => self.shown.insert(id, (oid, u64::MAX)),
                        None => self.shown.remove(&id),
                    };
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The blob the hub holds for `id`, to delete when it is published.
    pub fn take(&mut self, id: &JobId) -> Option<ObjectId> {
        self.counted.remove(id);
        self.shown.remove(id).map(|(oid, _)| oid)
    }
}

/// The last [`TAIL`] bytes of the first `size` of the log, from the start
/// of a line, and how many lines come before them.
fn read_tail(path: &Path, size: u64, counted: &mut Counted) -> std::io::Result<(u64, Vec<u8>)> {
    let mut f = std::fs::File::open(path)?;
    let start = size.saturating_sub(TAIL);
    if counted.offset > start {
        // The file shrank (a rewritten log): count again from the top.
        *counted = Counted::default();
    }
    f.seek(SeekFrom::Start(counted.offset))?;
    let mut skipped = Vec::with_capacity((start - counted.offset).min(TAIL) as usize);
    (&mut f).take(start - counted.offset).read_to_end(&mut skipped)?;
    counted.lines += newlines(&skipped);
    counted.offset = start;
    let mut buf = Vec::with_capacity((size - start) as usize);
    f.take(size - start).read_to_end(&mut buf)?;
    // Mid-line: the rest of that line goes with what came before (unless
    // the line fills the whole tail).
    let at_line_start = start == 0 || skipped.last() == Some(&b'\n');
    let cut = if at_line_start { None } else { buf.iter().position(|&b| b == b'\n') };
    match cut {
        Some(p) => Ok((counted.lines + 1, buf.split_off(p + 1))),
        None => Ok((counted.lines, buf)),
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// A live-log blob, read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveTail<'a> {
    /// Bytes the job had written.
    pub total: u64,
    /// Lines of the log before the tail; `None` from an older worker,
    /// whose tail may also start mid-line.
    pub lines_before: Option<u64>,
    pub tail: &'a [u8],
}

/// Reads a live-log blob: `None` if it is not one.
pub fn read(blob: &[u8]) -> Option<LiveTail<'_>> {
    let rest = blob.strip_prefix(HEADER.as_bytes())?;
    let newline = rest.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&rest[..newline]).ok()?;
    let (total, lines) = match header.split_once(' ') {
        Some((total, lines)) => (total, Some(lines.parse().ok()?)),
        None => (header, None),
    };
    Some(LiveTail { total: total.parse().ok()?, lines_before: lines, tail: &rest[newline + 1..] })
}

/// Splits a live-log blob into (bytes the job had written, the tail).
pub fn parse(blob: &[u8]) -> Option<(u64, &[u8])> {
    read(blob).map(|t| (t.total, t.tail))
}

#[cfg(test)]
mod tests {
    #[test]
    fn blobs_parse() {
        assert_eq!(super::parse(b"git-ci-live-log 12\nhello"), Some((12, &b"hello"[..])));
        assert_eq!(super::parse(b"garbage"), None);
        let t = super::read(b"git-ci-live-log 12 3\nhello").unwrap();
        assert_eq!((t.total, t.lines_before, t.tail), (12, Some(3), &b"hello"[..]));
        assert_eq!(super::read(b"git-ci-live-log 12 x\nhello"), None);
    }

    /// The tail starts at a line, and the lines before it are counted once
    /// however often it is read, as the file grows.
    #[test]
    fn tails_start_at_a_line_and_count_the_lines_before() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut f = std::fs::File::create(&path).unwrap();
        let mut counted = super::Counted::default();
        let mut all = Vec::new();
        for round in 0..3 {
            let mut chunk = Vec::new();
            for i in 0..3000 {
                writeln!(chunk, "round {round} line {i:05} {}", "x".repeat(i % 37)).unwrap();
            }
            f.write_all(&chunk).unwrap();
            all.extend(chunk);
            let (before, tail) = super::read_tail(&path, all.len() as u64, &mut counted).unwrap();
            let start = all.len() - tail.len();
            assert!(start == 0 || all[start - 1] == b'\n', "the tail starts a line");
            assert!(tail.len() as u64 <= super::TAIL && tail.len() as u64 > super::TAIL - 200);
            assert_eq!(before, super::newlines(&all[..start]), "round {round}");
        }
    }
}
