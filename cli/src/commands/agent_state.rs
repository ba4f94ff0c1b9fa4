//! Where an agent's claim is kept between plumbing commands: one file per
//! claimed job, `<cache>/agent/<job id>.json` (the cache is
//! `$GIT_CI_CACHE_DIR`, else `$XDG_CACHE_HOME/git-ci`, else
//! `~/.cache/git-ci`), holding the hub's address and the claim token; the
//! log given to `append-log` grows beside it as `<job id>.log`. Both go
//! once the job is completed or its claim is lost. An agent on another
//! machine, or one that keeps its own state, passes `--token` and `--hub`
//! instead.

use std::path::PathBuf;
use std::sync::Arc;

use git_ci_core::agent::{AgentError, Held};
use git_ci_core::{Hub, JobId};
use serde::{Deserialize, Serialize};

use crate::context;
use crate::error::{CliError, CliResult};

/// The file's document.
#[derive(Serialize, Deserialize)]
pub struct Kept {
    pub version: u32,
    /// The hub as given to `claim` (a path or URL).
    pub hub: String,
    #[serde(flatten)]
    pub held: Held,
}

pub fn dir() -> PathBuf {
    git_ci_core::hub::cache_root().join("agent")
}

fn file(id: &JobId) -> PathBuf {
    dir().join(format!("{id}.json"))
}

pub fn log_file(id: &JobId) -> PathBuf {
    dir().join(format!("{id}.log"))
}

pub fn save(hub: &str, held: &Held) -> CliResult {
    let path = file(&held.id);
    let kept = Kept { version: 1, hub: hub.to_owned(), held: held.clone() };
    let bytes = serde_json::to_vec_pretty(&kept).expect("plain data");
    std::fs::create_dir_all(dir())
        .and_then(|()| git_ci_core::atomic::Write { mode: 0o600, durable: true }.to(&path, &bytes))
        .map_err(|e| CliError::Internal(format!("could not keep the claim in {}: {e}", path.display())))
}

/// The cache repository an agent's commands share for a remote hub: one
/// per agent name, as each worker has its own, so that agents running side
/// by side never fetch into one repository at once.
pub fn owner(name: &str) -> String {
    format!("agent-{name}")
}

/// Forgets a job's claim (completed, or lost).
pub fn forget(id: &JobId) {
    let _ = std::fs::remove_file(file(id));
    let _ = std::fs::remove_file(log_file(id));
}

/// The claim on `id` and its hub: from `--token` (and `--hub` or the usual
/// hub), else from the file `claim` wrote.
pub fn load(id: &str, token: Option<&str>, hub_flag: Option<&str>) -> CliResult<(Arc<dyn Hub>, Held)> {
    let id = JobId::parse(id)?;
    let repo = context::user_repo();
    if let Some(token) = token {
        let hub = context::hub(hub_flag, repo.as_ref(), "client")?;
        let held = held_on_hub(&*hub, &id, token)?;
        return Ok((hub, held));
    }
    let path = file(&id);
    let bytes = std::fs::read(&path).map_err(|_| {
        CliError::usage_hint(
            format!("this machine holds no claim on job {id} (no {})", path.display()),
            "claim it with `git ci claim` first, or pass the token `git ci claim --json` printed with --token \
             (and --hub)",
        )
    })?;
    let kept: Kept = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::Internal(format!("{} does not read: {e}", path.display())))?;
    let hub = context::hub(Some(hub_flag.unwrap_or(&kept.hub)), repo.as_ref(), &owner(&kept.held.worker))?;
    Ok((hub, kept.held))
}

/// With `--token`, the rest of the hold is read from the hub: the claim
/// the token names, and the job's queue.
fn held_on_hub(hub: &dyn Hub, id: &JobId, token: &str) -> CliResult<Held> {
    let oid = gix::ObjectId::from_hex(token.as_bytes())
        .map_err(|_| CliError::usage(format!("--token {token:?} is not a claim token (40 hex digits)")))?;
    let snap = git_ci_core::queue::Snapshot::read(hub, &[])?;
    let queue = snap.queued.iter().find(|q| &q.id == id).map(|q| q.queue.clone());
    let claim = git_ci_core::queue::read_claim(hub, oid, id);
    match (queue, claim) {
        (Some(queue), Some(c)) => Ok(Held {
            id: id.clone(),
            queue,
            worker: c.worker,
            attempt: c.attempt,
            token: token.to_owned(),
            lease_expires_at: c.lease_expires_at,
        }),
        _ => Err(lost(AgentError::Lost { id: id.clone(), why: format!("the hub holds no claim {token} on it") })),
    }
}

/// Maps an agent error to the CLI's; a lost claim forgets the file.
pub fn lost(e: AgentError) -> CliError {
    match e {
        AgentError::Hub(h) => h.into(),
        AgentError::Lost { ref id, .. } => {
            forget(id);
            CliError::ClaimLost(e.to_string())
        }
        AgentError::BadToken(_) | AgentError::Input(_) => CliError::usage(e.to_string()),
    }
}
