//! The JSON documents kept on the hub. Each carries `"version": 1`; readers
//! ignore unknown fields so that newer writers do not break older readers.

mod claim;
mod job;
mod matrix;
mod result;
pub mod spec_rules;
mod worker;

pub use claim::Claim;
pub use job::{Job, JobSpec, NAME_LABEL, Need, Repeat};
pub use matrix::Matrix;
pub use result::{Artifact, JobResult, Status, TestCounts};
pub use worker::{InstanceInfo, SandboxInfo, WorkerInfo, gone_after, has_label, serves};

pub const VERSION: u32 = 1;

/// Why a document from the hub could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("is not valid JSON for a {kind}: {source}")]
    Parse {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("has version {found}, this git-ci reads version {VERSION} (upgrade git-ci)")]
    Version { found: u32 },
    #[error("{0}")]
    Invalid(String),
}

/// The largest job or claim document anyone should write; bigger ones are
/// refused unread so that a 100 MB blob cannot blow up a worker.
pub const MAX_DOC_BYTES: usize = 64 * 1024;

/// Parses a document, checking its size first and its version before its
/// fields, so that a newer writer's document says "upgrade", not "missing
/// field".
pub(crate) fn parse_doc<T: serde::de::DeserializeOwned>(kind: &'static str, bytes: &[u8]) -> Result<T, DocError> {
    if bytes.len() > MAX_DOC_BYTES {
        return Err(DocError::TooLarge { size: bytes.len(), limit: MAX_DOC_BYTES });
    }
    #[derive(serde::Deserialize)]
    struct Versioned {
        version: Option<serde_json::Value>,
    }
    let head: Versioned = serde_json::from_slice(bytes).map_err(|source| DocError::Parse { kind, source })?;
    match head.version.as_ref().and_then(serde_json::Value::as_u64) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(found) => return Err(DocError::Version { found: found as u32 }),
        None => return Err(DocError::Invalid(format!("the {kind} has no \"version\" field"))),
    }
    // From the bytes, not from a `serde_json::Value`, whose objects sort
    // their keys: a matrix keeps the order its file declared.
    serde_json::from_slice(bytes).map_err(|source| DocError::Parse { kind, source })
}

pub(crate) fn to_json<T: serde::Serialize>(doc: &T) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(doc).expect("documents are plain data and always serialize");
    v.push(b'\n');
    v
}
