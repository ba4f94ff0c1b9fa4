//! `git ci heartbeat`, `git ci append-log`: an agent holding its claim and
//! showing its progress (plumbing; see docs/protocol.md, "Agents").

use std::io::Read;

use clap::Args;
use git_ci_core::agent;

use super::agent_state;
use crate::cli::HubArgs;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Which claim: the job, and where its token comes from.
#[derive(Debug, Args)]
pub struct HeldArgs {
    /// The job id `git ci claim` printed.
    pub id: String,
    /// The claim token (`token` of `git ci claim --json`, or of the last
    /// `heartbeat --json`), for an agent that keeps it itself; default: the
    /// one `git ci claim` kept on this machine.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Renew an agent's claim on a job for another lease (plumbing).
///
/// Exits 5 when the claim is lost (the lease ran out and another claimer
/// took the job, or it was cancelled or finished): stop running it. With
/// --json prints the renewed claim: its new token and lease expiry, and
/// whether a cancel was requested (then stop the job and `git ci complete
/// ID --status cancelled`).
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 renewed, 5 claim lost, 2 usage, 3 hub unreachable.")]
pub struct HeartbeatArgs {
    #[command(flatten)]
    pub held: HeldArgs,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn cmd_heartbeat(ui: &Ui, args: HeartbeatArgs) -> CliResult {
    let (hub, held) = agent_state::load(&args.held.id, args.held.token.as_deref(), args.held.hub.hub.as_deref())?;
    let (renewed, cancel) = agent::heartbeat(&*hub, &held).map_err(agent_state::lost)?;
    if args.held.token.is_none() {
        agent_state::save(hub.url(), &renewed)?;
    }
    if args.json {
        let doc = serde_json::json!({
            "version": 1, "id": renewed.id, "token": renewed.token,
            "lease_expires_at": renewed.lease_expires_at, "cancel_requested": cancel,
        });
        ui.out(&doc.to_string());
    } else if cancel {
        ui.out("cancel requested");
    }
    Ok(())
}

/// Append stdin to a claimed job's log and show it live (plumbing).
///
/// The log grows in a file beside the kept claim; its last 64 KiB go to
/// the hub as the job's live log (`git ci log --follow ID` shows it), as
/// workers publish theirs. `git ci complete` publishes the whole log unless
/// given --log. Exits 5 when the claim is lost.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  make test 2>&1 | tee /dev/stderr | git ci append-log $ID")]
pub struct AppendLogArgs {
    #[command(flatten)]
    pub held: HeldArgs,
}

pub fn cmd_append_log(_ui: &Ui, args: AppendLogArgs) -> CliResult {
    let (hub, held) = agent_state::load(&args.held.id, args.held.token.as_deref(), args.held.hub.hub.as_deref())?;
    let mut chunk = Vec::new();
    std::io::stdin().read_to_end(&mut chunk).map_err(|e| CliError::usage(format!("could not read stdin: {e}")))?;
    let path = agent_state::log_file(&held.id);
    let appended = std::fs::create_dir_all(agent_state::dir()).and_then(|()| {
        use std::io::Write;
        std::fs::OpenOptions::new().create(true).append(true).open(&path)?.write_all(&chunk)
    });
    appended.map_err(|e| CliError::Internal(format!("could not append to {}: {e}", path.display())))?;
    agent::push_log(&*hub, &held, &path).map_err(agent_state::lost)
}
