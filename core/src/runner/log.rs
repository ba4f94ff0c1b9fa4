//! A job's log: stdout and stderr as one stream, secrets masked, capped.
//!
//! The head (half the cap) goes straight to disk; past it only a ring of
//! the last half stays in memory. When the job ends the tail follows a
//! visible marker, so a 300 MB flood costs the worker at most the cap.
//!
//! Secrets are masked before a byte reaches the file, so that nothing read
//! from it while the job runs (the live log) can show one. A write that
//! fails (a full disk) is not lost: the log stops where the disk did, and
//! [`CappedLog::finish`] says why, so the job is not reported on a log cut
//! short in silence.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::mask::{MaskStream, Masker};

use crate::digest::hex;
pub use crate::digest::sha256_hex;

/// What the finished log looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSummary {
    pub sha256: String,
    pub bytes: u64,
    pub truncated: bool,
}

/// What to do when the log cannot be written, for a job's `reason`.
pub const WRITE_FAILED_HINT: &str = "the disk holding the worker's work directory is full or failing: \
     free space on it, or give the worker a --work-dir on another disk";

/// Why a log is shorter than what the job wrote.
#[derive(Debug, thiserror::Error)]
#[error("could not write the job's log {}: {source}", path.display())]
pub struct LogWriteError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

pub struct CappedLog {
    file: File,
    path: PathBuf,
    hasher: Sha256,
    written: u64,
    head_limit: u64,
    tail: VecDeque<u8>,
    tail_limit: usize,
    dropped: u64,
    mask: MaskStream,
    /// The first write that failed; nothing is written after it.
    failed: Option<io::Error>,
}

impl CappedLog {
    pub fn create(path: &Path, cap: u64, masker: &Masker) -> io::Result<CappedLog> {
        let cap = cap.max(2);
        Ok(CappedLog {
            file: File::create(path)?,
            path: path.to_path_buf(),
            hasher: Sha256::new(),
            written: 0,
            head_limit: cap / 2,
            tail: VecDeque::new(),
            tail_limit: (cap - cap / 2) as usize,
            dropped: 0,
            mask: masker.stream(),
            failed: None,
        })
    }

    fn emit(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.hasher.update(bytes);
                self.written += bytes.len() as u64;
            }
            Err(e) => {
                // A part of `bytes` may be on disk: cut it off, so that the
                // log ends on what was written whole.
                let _ = self.file.set_len(self.written);
                self.failed = Some(e);
            }
        }
    }

    /// Appends output (masked); never holds more than the cap in memory.
    pub fn push(&mut self, bytes: &[u8]) {
        let mut masked = Vec::with_capacity(bytes.len());
        self.mask.push(bytes, &mut masked);
        self.push_masked(&masked);
    }

    fn push_masked(&mut self, mut bytes: &[u8]) {
        let room = self.head_limit.saturating_sub(self.written) as usize;
        if room > 0 {
            let n = room.min(bytes.len());
            self.emit(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.tail_limit {
            self.dropped += (self.tail.len() + bytes.len() - self.tail_limit) as u64;
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_limit..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_limit);
        self.tail.drain(..overflow);
        self.dropped += overflow as u64;
        self.tail.extend(bytes);
    }

    /// What the job wrote and the masker still held back.
    fn end_output(&mut self) {
        let mut rest = Vec::new();
        self.mask.finish(&mut rest);
        self.push_masked(&rest);
    }

    /// A line of git-ci's own in the log (timeouts, kills), kept whatever
    /// the cap. It ends the job's output.
    pub fn note(&mut self, text: &str) {
        self.end_output();
        let line = format!("\n[git-ci] {text}\n");
        if self.dropped == 0 && self.tail.is_empty() {
            self.emit(line.as_bytes())
        } else {
            self.tail.extend(line.as_bytes());
        }
    }

    /// Seals the log: what it now holds on disk, and the write that failed
    /// if it holds less than it should.
    pub fn finish(mut self) -> (LogSummary, Option<LogWriteError>) {
        self.end_output();
        let truncated = self.dropped > 0;
        if truncated {
            let marker = format!("\n\n[git-ci] log truncated: {} bytes omitted here\n\n", self.dropped);
            self.emit(marker.as_bytes());
        }
        let tail: Vec<u8> = self.tail.drain(..).collect();
        self.emit(&tail);
        // No fsync: the log reaches the hub as it is read back from this
        // file before the publish (and described by what was read), and a
        // worker that crashes first publishes nothing (the job runs again).
        // Syncing guarded nothing, and cost a no-op job 1 ms on a quiet
        // disk and up to 230 ms on a busy one.
        let summary = LogSummary { sha256: hex(&self.hasher.finalize()), bytes: self.written, truncated };
        (summary, self.failed.map(|source| LogWriteError { path: self.path, source }))
    }
}

/// Appends `bytes` to the log at `path`, whole or not at all.
pub fn append(path: &Path, bytes: &[u8]) -> Result<(), LogWriteError> {
    let fail = |source| LogWriteError { path: path.to_path_buf(), source };
    let mut file = OpenOptions::new().append(true).open(path).map_err(fail)?;
    let len = file.metadata().map_err(fail)?.len();
    // Not synced, as `CappedLog::finish` says why.
    if let Err(e) = file.write_all(bytes) {
        let _ = file.set_len(len);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_logs_are_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = CappedLog::create(&path, 100, &Masker::default()).unwrap();
        log.push(b"hello ");
        log.push(b"world");
        let (s, failed) = log.finish();
        assert!(failed.is_none());
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert_eq!(s, LogSummary { sha256: sha256_hex(b"hello world"), bytes: 11, truncated: false });
    }

    #[test]
    fn a_secret_never_reaches_the_file_even_in_part() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = CappedLog::create(&path, 1 << 20, &Masker::new(["s3cr3t-value"])).unwrap();
        log.push(b"token=s3cr3");
        assert_eq!(std::fs::read(&path).unwrap(), b"token=", "a live log reading the file sees no half secret");
        log.push(b"t-value and s3cr3t");
        log.note("timed out");
        let (s, failed) = log.finish();
        assert!(failed.is_none());
        let text = std::fs::read(&path).unwrap();
        assert_eq!(String::from_utf8_lossy(&text), "token=*** and s3cr3t\n[git-ci] timed out\n");
        assert_eq!((s.bytes, s.sha256), (text.len() as u64, sha256_hex(&text)));
    }

    #[test]
    fn floods_keep_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = CappedLog::create(&path, 20, &Masker::default()).unwrap();
        for i in 0..1000u32 {
            log.push(format!("{i:04}\n").as_bytes());
        }
        let (s, _) = log.finish();
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert!(s.truncated);
        assert!(text.starts_with("0000\n0001\n"), "{text}");
        assert!(text.ends_with("0998\n0999\n"), "{text}");
        assert!(text.contains("bytes omitted"));
        assert_eq!(s.sha256, sha256_hex(text.as_bytes()));
    }
}
