//! A job's log: stdout and stderr as one stream, capped.
//!
//! The head (half the cap) goes straight to disk; past it only a ring of
//! the last half stays in memory. When the job ends the tail follows a
//! visible marker, so a 300 MB flood costs the worker at most the cap.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the finished log looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSummary {
    pub sha256: String,
    pub bytes: u64,
    pub truncated: bool,
}

pub struct CappedLog {
    file: File,
    hasher: Sha256,
    written: u64,
    head_limit: u64,
    tail: VecDeque<u8>,
    tail_limit: usize,
    dropped: u64,
}

impl CappedLog {
    pub fn create(path: &Path, cap: u64) -> io::Result<CappedLog> {
        let cap = cap.max(2);
        Ok(CappedLog {
            file: File::create(path)?,
            hasher: Sha256::new(),
            written: 0,
            head_limit: cap / 2,
            tail: VecDeque::new(),
            tail_limit: (cap - cap / 2) as usize,
            dropped: 0,
        })
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Appends output; never holds more than the cap in memory.
    pub fn push(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        let room = self.head_limit.saturating_sub(self.written) as usize;
        if room > 0 {
            let n = room.min(bytes.len());
            self.emit(&bytes[..n])?;
            bytes = &bytes[n..];
        }
        if bytes.len() >= self.tail_limit {
            self.dropped += (self.tail.len() + bytes.len() - self.tail_limit) as u64;
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.tail_limit..]);
            return Ok(());
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.tail_limit);
        self.tail.drain(..overflow);
        self.dropped += overflow as u64;
        self.tail.extend(bytes);
        Ok(())
    }

    /// A line of git-ci's own in the log (timeouts, kills), kept whatever the cap.
    pub fn note(&mut self, text: &str) -> io::Result<()> {
        let line = format!("\n[git-ci] {text}\n");
        if self.dropped == 0 && self.tail.is_empty() {
            self.emit(line.as_bytes())
        } else {
            self.tail.extend(line.as_bytes());
            Ok(())
        }
    }

    pub fn finish(mut self) -> io::Result<LogSummary> {
        let truncated = self.dropped > 0;
        if truncated {
            let marker = format!("\n\n[git-ci] log truncated: {} bytes omitted here\n\n", self.dropped);
            self.emit(marker.as_bytes())?;
        }
        let tail: Vec<u8> = self.tail.drain(..).collect();
        self.emit(&tail)?;
        self.file.flush()?;
        Ok(LogSummary { sha256: hex(&self.hasher.finalize()), bytes: self.written, truncated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_logs_are_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = CappedLog::create(&path, 100).unwrap();
        log.push(b"hello ").unwrap();
        log.push(b"world").unwrap();
        let s = log.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello world");
        assert_eq!(s, LogSummary { sha256: sha256_hex(b"hello world"), bytes: 11, truncated: false });
    }

    #[test]
    fn floods_keep_head_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = CappedLog::create(&path, 20).unwrap();
        for i in 0..1000u32 {
            log.push(format!("{i:04}\n").as_bytes()).unwrap();
        }
        let s = log.finish().unwrap();
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert!(s.truncated);
        assert!(text.starts_with("0000\n0001\n"), "{text}");
        assert!(text.ends_with("0998\n0999\n"), "{text}");
        assert!(text.contains("bytes omitted"));
        assert_eq!(s.sha256, sha256_hex(text.as_bytes()));
    }
}
