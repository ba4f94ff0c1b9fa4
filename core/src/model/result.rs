//! `result.json`: how a job ended ([`Status`]), its test counts, artifacts
//! and log, written once into its writer's `done` chain; also the result of
//! a job that never ran (cancelled while pending, poisoned, out of
//! attempts, skipped because a job it needs failed).

use serde::{Deserialize, Serialize};

use super::{DocError, VERSION, to_json};
use crate::id::JobId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Passed,
    Failed,
    Timeout,
    Cancelled,
    Error,
    /// Never ran: a job it needs did not pass ([`crate::needs`]).
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Timeout => "timeout",
            Status::Cancelled => "cancelled",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }

    /// Whether the jobs that need this one may run.
    pub fn lets_dependants_run(self) -> bool {
        self == Status::Passed
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCounts {
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// `result.json`: how a job ended. Written once, into its writer's `done` chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    pub version: u32,
    pub id: JobId,
    pub status: Status,
    pub exit_code: Option<i32>,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: u64,
    pub worker: String,
    pub attempt: u32,
    pub log_sha256: String,
    #[serde(default)]
    pub log_bytes: u64,
    pub log_truncated: bool,
    #[serde(default)]
    pub tests: TestCounts,
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// Why, for `error`, `cancelled` and `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where a live instance (`serve = true`) answers: the worker's
    /// `--public-url` with the service's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl JobResult {
    /// A result for a job that never ran (cancelled while pending, poisoned,
    /// out of attempts): no log, a reason.
    pub fn without_run(id: &JobId, status: Status, worker: &str, attempt: u32, reason: String) -> JobResult {
        let now = crate::time::now_rfc3339();
        JobResult {
            version: VERSION,
            id: id.clone(),
            status,
            exit_code: None,
            started_at: now.clone(),
            finished_at: now,
            duration_ms: 0,
            worker: worker.into(),
            attempt,
            log_sha256: crate::digest::sha256_hex(b""),
            log_bytes: 0,
            log_truncated: false,
            tests: TestCounts::default(),
            artifacts: vec![],
            reason: Some(reason),
            url: None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    pub fn from_json(bytes: &[u8]) -> Result<JobResult, DocError> {
        // Results are small; the size cap is for job and claim blobs that
        // anyone with push access can write.
        let r: JobResult =
            serde_json::from_slice(bytes).map_err(|source| DocError::Parse { kind: "result", source })?;
        match r.version {
            VERSION => Ok(r),
            found => Err(DocError::Version { found }),
        }
    }
}
