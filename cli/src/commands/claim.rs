//! `git ci claim`: plumbing for agents that are not git-ci workers (device
//! labs, scripts in any language). See docs/protocol.md, "Agents".

use std::collections::BTreeMap;

use clap::Args;
use git_ci_core::agent::{self, Claimer};

use super::agent_state;
use crate::cli::{HubArgs, parse_key_value, parse_lease};
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Claim one job for an agent of your own (plumbing: stable output).
///
/// Takes the first job of the queue the agent can run (highest priority,
/// then oldest), as a worker would, or a job whose claim expired over 30 s
/// ago. Prints its id, or with --json the claim: id, commit, ref, the job
/// document, attempt, lease expiry and the token later commands expect.
/// Exits 4 when nothing is claimable. Keep the claim with `git ci
/// heartbeat ID` more often than the lease; end it with `git ci complete`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci claim --queue lab --label board=rpi4 --name lab-1 --json\n  git ci claim --queue lab --checkout /tmp/job   also write the commit's files there\n\nExit codes: 0 claimed, 4 nothing to claim, 2 usage, 3 hub unreachable."
)]
pub struct ClaimArgs {
    /// The queue to take a job from.
    #[arg(long, value_name = "Q")]
    pub queue: String,
    /// A label the agent has (repeatable): it takes only jobs whose
    /// `requires` its labels satisfy. Its name is a label too (name=NAME).
    #[arg(long = "label", value_name = "K=V", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,
    /// How long the claim lasts without a heartbeat (at most 1 day).
    #[arg(long, value_name = "DUR", default_value = "10m", value_parser = parse_lease)]
    pub lease: std::time::Duration,
    /// The agent's name, in the claim and the result (default: the host
    /// name with `-agent`). Results go to refs/ci/done/NAME.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Also write the commit's files into DIR (created; must be empty).
    #[arg(long, value_name = "DIR")]
    pub checkout: Option<std::path::PathBuf>,
    /// Print the claim as one JSON object (see docs/schema/claimed.json).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_claim(ui: &Ui, args: ClaimArgs) -> CliResult {
    git_ci_core::refs::check_component("queue", &args.queue).map_err(CliError::usage)?;
    let name = args.name.clone().unwrap_or_else(|| format!("{}-agent", context::hostname()));
    git_ci_core::refs::check_component("--name", &name).map_err(CliError::usage)?;
    let labels: BTreeMap<String, String> = args.labels.iter().cloned().collect();
    if let Some(dir) = &args.checkout {
        check_empty(dir)?;
    }
    let repo = context::user_repo();
    let hub = context::hub(args.hub.hub.as_deref(), repo.as_ref(), &agent_state::owner(&name))?;
    let who = Claimer { name: &name, queue: &args.queue, labels: &labels, lease: args.lease };
    let Some(claimed) = agent::claim(&*hub, &who).map_err(agent_state::lost)? else {
        return Err(CliError::NothingToClaim(format!("nothing to claim in queue {} for {name}", args.queue)));
    };
    agent_state::save(hub.url(), &claimed.held)?;
    if let Some(dir) = &args.checkout {
        agent::checkout(&*hub, &claimed.job, dir).map_err(agent_state::lost)?;
    }
    if args.json {
        let doc = serde_json::json!({
            "version": 1,
            "id": claimed.held.id,
            "queue": claimed.held.queue,
            "commit": claimed.job.commit,
            "ref": claimed.job.git_ref,
            "attempt": claimed.held.attempt,
            "worker": claimed.held.worker,
            "lease_expires_at": claimed.held.lease_expires_at,
            "token": claimed.held.token,
            "hub": hub.url(),
            "checkout": args.checkout.as_ref().map(|d| d.display().to_string()),
            "job": claimed.job,
        });
        ui.out(&doc.to_string());
    } else {
        ui.out(claimed.held.id.as_str());
    }
    Ok(())
}

fn check_empty(dir: &std::path::Path) -> CliResult {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(CliError::usage(format!("--checkout {}: the directory is not empty", dir.display()))),
        _ => Ok(()),
    }
}
