//! `claim.json`: a worker's hold on a job for one lease. Every claim blob is
//! unique (a nonce), so its object id serves as a fencing token for the
//! compare-and-swaps that renew, steal and release it.

use serde::{Deserialize, Serialize};

use super::{DocError, VERSION, parse_doc, to_json};
use crate::id::JobId;

/// `claim.json`: a worker holds a job until its lease runs out.
///
/// The nonce makes every claim blob unique, so its object id is a fencing
/// token: a compare-and-swap against it can never be fooled by an identical
/// claim written later (no ABA).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub version: u32,
    pub job: JobId,
    pub worker: String,
    pub attempt: u32,
    pub nonce: String,
    pub claimed_at: String,
    /// How long the lease lasts from the claim's writing. Stealers measure
    /// it on their own monotonic clock, never against `lease_expires_at`.
    pub lease_ms: u64,
    pub lease_expires_at: String,
}

impl Claim {
    /// The longest lease a worker takes: a day. A claim outliving its
    /// worker holds its job that long before anyone may take it over.
    pub const MAX_LEASE: std::time::Duration = std::time::Duration::from_secs(86_400);

    pub fn new(job: &JobId, worker: &str, attempt: u32, lease: std::time::Duration) -> Claim {
        let lease = lease.min(Self::MAX_LEASE);
        let now = std::time::SystemTime::now();
        Claim {
            version: VERSION,
            job: job.clone(),
            worker: worker.into(),
            attempt,
            nonce: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            claimed_at: crate::time::rfc3339(now),
            lease_ms: lease.as_millis() as u64,
            lease_expires_at: crate::time::rfc3339(now + lease),
        }
    }

    /// The same claim with a fresh lease and nonce: a heartbeat.
    pub fn renewed(&self) -> Claim {
        let mut c = Claim::new(&self.job, &self.worker, self.attempt, self.lease());
        c.claimed_at = self.claimed_at.clone();
        c
    }

    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.lease_ms)
    }

    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Claim, DocError> {
        parse_doc("claim", bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_never_repeat_an_object() {
        let id = JobId::parse("20261122T040704123-0123456789ab").unwrap();
        let c = Claim::new(&id, "w1", 1, std::time::Duration::from_secs(60));
        let r = c.renewed();
        assert_ne!(c.to_json(), r.to_json());
        assert_eq!(Claim::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(r.lease().as_secs(), 60);
    }

    #[test]
    fn an_absurd_lease_is_cut_to_the_maximum_not_panicked_on() {
        let id = JobId::parse("20261122T040704123-0123456789ab").unwrap();
        let c = Claim::new(&id, "w1", 1, std::time::Duration::from_secs(u64::MAX));
        assert_eq!(c.lease(), Claim::MAX_LEASE);
    }
}
