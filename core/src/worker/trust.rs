//! `git ci worker --require-signed`: run only commits signed by an allowed
//! signer, and take the job's definition from the commit, never from the
//! queue (anyone who can push to `refs/ci/queue` can write JSON there).

use std::path::Path;

use gix::ObjectId;

use crate::git::Git;
use crate::hub::Hub;
use crate::model::{Job, JobSpec};
use crate::pipeline::{FILE_NAME, Pipeline};

/// Checks the commit's signature against an ssh allowed-signers file kept
/// outside any checkout.
pub fn verify(hub: &dyn Hub, commit: ObjectId, allowed_signers: &Path) -> Result<(), String> {
    let repo = hub.repo();
    let out = Git::new(repo.git_dir())
        .map_err(|e| e.to_string())?
        .arg("-c")
        .arg(format!("gpg.ssh.allowedSignersFile={}", allowed_signers.display()))
        .args(["verify-commit", "--", &commit.to_string()])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    Err(format!("commit {commit} is not signed by an allowed signer ({}): {why}", allowed_signers.display()))
}

/// The job's spec as the signed commit's `.git-ci.toml` defines it, for
/// the queued job's matrix combination (which must be one the file makes).
/// A job defined anywhere else (`submit --config`, `--config-from`) is
/// refused: its definition is not what was signed.
pub fn spec_from_commit(hub: &dyn Hub, commit: ObjectId, queued: &Job) -> Result<JobSpec, String> {
    if let Some(from) = &queued.config_from {
        return Err(format!(
            "the job was defined by {from}, not by the commit under test; signed mode runs only jobs its {FILE_NAME} defines"
        ));
    }
    let name = &queued.spec.name;
    let pipeline = Pipeline::at_commit(&hub.repo(), commit)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("commit {commit} has no {FILE_NAME}, and signed mode runs only jobs defined there"))?;
    let defined = pipeline.jobs.get(name).ok_or_else(|| {
        format!("{FILE_NAME} at {commit} defines no job {name:?}; signed mode runs only jobs defined there")
    })?;
    let matrix = &queued.spec.matrix;
    let made = if defined.matrix.is_empty() { matrix.is_empty() } else { defined.matrix.contains(matrix) };
    if !made {
        return Err(format!(
            "{FILE_NAME} at {commit} makes no combination ({matrix}) of job {name:?}; signed mode runs only jobs defined there"
        ));
    }
    let mut spec = defined.spec.clone();
    spec.matrix = matrix.clone();
    Ok(spec)
}
