//! Job ids: `<YYYYMMDDTHHMMSSmmm>-<12 hex of sha256(job.json)>`.
//!
//! They sort by submission time (the queue order within a priority), carry
//! their day (which is where the result lives in a `done` tree, so a lookup
//! is one tree read), and are safe as a ref component and a file name.

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a job id (expected YYYYMMDDTHHMMSSmmm-<12 hex>, as `git ci status` prints them)")]
pub struct InvalidJobId(pub String);

impl JobId {
    /// The id of a job document submitted at `at` whose JSON (without its id) is `doc`.
    pub fn new(at: SystemTime, doc: &[u8]) -> Self {
        let digest = Sha256::digest(doc);
        let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        JobId(format!("{}-{hex}", crate::time::compact(at)))
    }

    pub fn parse(s: &str) -> Result<Self, InvalidJobId> {
        let ok = s.len() == 31
            && s.as_bytes()[8] == b'T'
            && s.as_bytes()[18] == b'-'
            && s[..8].bytes().chain(s[9..18].bytes()).all(|b| b.is_ascii_digit())
            && s[19..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if ok { Ok(JobId(s.to_owned())) } else { Err(InvalidJobId(s.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `YYYYMMDD`: the directory of the `done` tree that holds this job.
    pub fn day(&self) -> &str {
        &self.0[..8]
    }

    /// The 12-hex suffix, for short displays.
    pub fn short(&self) -> &str {
        &self.0[19..]
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for JobId {
    type Error = InvalidJobId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        JobId::parse(&s)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_parse_and_sort_by_time() {
        let t = SystemTime::now();
        let a = JobId::new(t, b"{}");
        let b = JobId::new(t + std::time::Duration::from_millis(5), b"{}");
        assert_eq!(JobId::parse(a.as_str()).unwrap(), a);
        assert!(a < b);
        assert_eq!(a.day().len(), 8);
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "x", "20261122T040704123-ABCDEF012345", "../../etc/passwd", "20261122T040704123-abcdef01234"] {
            assert!(JobId::parse(bad).is_err(), "{bad}");
        }
    }
}
