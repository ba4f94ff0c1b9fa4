//! `git ci retry`: queue a new run of finished jobs.

use clap::Args;
use git_ci_core::state::Board;
use git_ci_core::{JobId, needs, queue};

use super::{show, wait};
use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Queue a new run of finished jobs (same commit, ref and definition).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci retry $(git ci status --state failed --json | jq -r '.[].id')")]
pub struct RetryArgs {
    /// Job ids of finished jobs.
    #[arg(required = true)]
    pub jobs: Vec<String>,
    /// Wait for the new runs; exit 0 if all passed.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_retry(ui: &Ui, args: RetryArgs) -> CliResult {
    let ids = args.jobs.iter().map(|j| JobId::parse(j)).collect::<Result<Vec<_>, _>>()?;
    let repo = context::user_repo();
    let by = context::actor(repo.as_ref());
    let hub = context::hub_holding(args.hub.hub.as_deref(), repo.as_ref(), "client", &ids)?;
    let mut olds = Vec::new();
    for id in &ids {
        let view = show::find(&*hub, id)?;
        if !view.state.is_finished() {
            return Err(CliError::usage(format!("{id} is {}: only finished jobs can be retried", view.state.as_str())));
        }
        let old =
            view.job.ok_or_else(|| CliError::usage(format!("{id}'s job document is unreadable: nothing to retry")))?;
        olds.push(old);
    }
    // With each job, what was skipped because of it runs again.
    let board = Board::read(&*hub)?;
    let (jobs, was): (Vec<_>, Vec<_>) = needs::again(&*hub, &board, &olds, &by)?.into_iter().unzip();
    queue::submit(&*hub, &jobs)?;
    for (job, old) in jobs.iter().zip(&was) {
        ui.out(job.id.as_str());
        ui.err(&format!("queued {} again as {} (was {old})", job.label(), job.id));
    }
    if args.wait {
        let views = wait::wait_for(Some(ui), &*hub, jobs.iter().map(|j| j.id.clone()).collect())?;
        return wait::conclude(ui, &views, 0);
    }
    Ok(())
}
