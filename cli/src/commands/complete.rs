//! `git ci complete`: an agent publishes a claimed job's result
//! (plumbing; see docs/protocol.md, "Agents").

use clap::{Args, ValueEnum};
use git_ci_core::agent::{self, Completion};
use git_ci_core::model::Status;

use super::agent_state;
use super::heartbeat::HeldArgs;
use crate::error::CliResult;
use crate::ui::Ui;

/// How the agent's run ended.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Outcome {
    Passed,
    Failed,
    /// The run could not be done (a device missing, a set-up failure).
    Error,
    /// Stopped on a cancel request (see `git ci heartbeat`).
    Cancelled,
}

/// Publish the result of a job an agent claimed (plumbing).
///
/// One transaction, as a worker's publish: the result goes to
/// refs/ci/done/<agent name> and the job's live refs are deleted, each
/// expected at the value read and the claim at the agent's token, so a
/// stale claim never publishes: it exits 5 and changes nothing.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  git ci complete $ID --status failed --exit-code 2 --junit out/report.xml --artifact out/fw.bin\n\nExit codes: 0 published, 5 claim lost, 2 usage, 3 hub unreachable."
)]
pub struct CompleteArgs {
    #[command(flatten)]
    pub held: HeldArgs,
    /// How the run ended.
    #[arg(long, value_enum)]
    pub status: Outcome,
    /// The run's exit code, shown with the result.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub exit_code: Option<i32>,
    /// The job's whole log (default: what `git ci append-log` gathered).
    #[arg(long, value_name = "FILE")]
    pub log: Option<std::path::PathBuf>,
    /// A JUnit XML file of the run (repeatable): counted and shown with the result.
    #[arg(long, value_name = "FILE")]
    pub junit: Vec<std::path::PathBuf>,
    /// A file kept as an artifact (repeatable), named by its relative path
    /// as given, else by its file name (`git ci artifact ID NAME` fetches it).
    #[arg(long, value_name = "PATH")]
    pub artifact: Vec<std::path::PathBuf>,
    /// Why, in a few words: shown with an `error` or `cancelled` result.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

pub fn cmd_complete(ui: &Ui, args: CompleteArgs) -> CliResult {
    let (hub, held) = agent_state::load(&args.held.id, args.held.token.as_deref(), args.held.hub.hub.as_deref())?;
    let gathered = agent_state::log_file(&held.id);
    let log = args.log.clone().or_else(|| gathered.exists().then_some(gathered));
    let status = match args.status {
        Outcome::Passed => Status::Passed,
        Outcome::Failed => Status::Failed,
        Outcome::Error => Status::Error,
        Outcome::Cancelled => Status::Cancelled,
    };
    let done = Completion {
        status,
        exit_code: args.exit_code,
        log,
        junit: args.junit.clone(),
        artifacts: args.artifact.clone(),
        reason: args.reason.clone(),
    };
    let result = agent::complete(&*hub, &held, &done).map_err(agent_state::lost)?;
    agent_state::forget(&held.id);
    ui.out(&format!("{} {}", held.id, result.status.as_str()));
    Ok(())
}
