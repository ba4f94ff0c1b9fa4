//! `refs/ci/logs/<id>`: the tail of a running job's log, refreshed every
//! few seconds so that `git ci log --follow` can show it growing. The ref
//! goes when the job is published.
//!
//! The blob is a header line `git-ci-live-log <bytes so far>` and then the
//! last [`TAIL`] bytes, so a follower knows which part it has not seen.

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
}

impl LiveLogs {
    pub fn new(every: Duration) -> LiveLogs {
        LiveLogs { every, next: Instant::now() + every, shown: HashMap::new() }
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
            let Ok(tail) = read_tail(path, size) else { continue };
            let mut blob = format!("{HEADER}{size}\n").into_bytes();
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
        self.shown.remove(id).map(|(oid, _)| oid)
    }
}

fn read_tail(path: &Path, size: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let start = size.saturating_sub(TAIL);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::with_capacity((size - start) as usize);
    f.take(size - start).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Splits a live-log blob into (bytes the job had written, the tail).
pub fn parse(blob: &[u8]) -> Option<(u64, &[u8])> {
    let rest = blob.strip_prefix(HEADER.as_bytes())?;
    let newline = rest.iter().position(|&b| b == b'\n')?;
    let size = std::str::from_utf8(&rest[..newline]).ok()?.parse().ok()?;
    Some((size, &rest[newline + 1..]))
}

#[cfg(test)]
mod tests {
    #[test]
    fn blobs_parse() {
        assert_eq!(super::parse(b"git-ci-live-log 12\nhello"), Some((12, &b"hello"[..])));
        assert_eq!(super::parse(b"garbage"), None);
    }
}
