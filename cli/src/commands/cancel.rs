//! `git ci cancel`: stop jobs, pending or running.

use clap::Args;
use git_ci_core::state::{Board, State};
use git_ci_core::{JobId, queue};

use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Cancel jobs: a pending job is published as cancelled at once; a running
/// one is stopped by its worker within a heartbeat and published cancelled.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci cancel 20261122T040704123-0123456789ab")]
pub struct CancelArgs {
    /// Job ids, as `git ci status` prints them.
    #[arg(required = true)]
    pub jobs: Vec<String>,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// How often one cancel is tried against lost races before giving up.
const CANCEL_TRIES: u64 = 20;

pub fn cmd_cancel(ui: &Ui, args: CancelArgs) -> CliResult {
    let ids = args.jobs.iter().map(|j| JobId::parse(j)).collect::<Result<Vec<_>, _>>()?;
    let repo = context::user_repo();
    let by = context::actor(repo.as_ref());
    let hub = context::hub_holding(args.hub.hub.as_deref(), repo.as_ref(), "client", &ids)?;
    for id in &ids {
        // A lost race means a worker claimed the job meanwhile, or another
        // cancel published into the hub's `done` chain first: look again,
        // a little later each time, so that cancels made together all go.
        for attempt in 0..CANCEL_TRIES {
            match cancel_one(ui, &*hub, id, &by) {
                Err(CliError::Hub { error, .. }) if error.is_conflict() && attempt + 1 < CANCEL_TRIES => {
                    std::thread::sleep(std::time::Duration::from_millis(fastrand::u64(10..100) * (attempt + 1)));
                }
                other => {
                    other?;
                    break;
                }
            }
        }
    }
    Ok(())
}

fn cancel_one(ui: &Ui, hub: &dyn git_ci_core::Hub, id: &JobId, by: &str) -> CliResult {
    let (board, view) = read_view(hub, id)?;
    match view.state {
        State::Finished(s) => ui.err(&format!("{id} already finished ({})", s.as_str())),
        State::Pending => {
            let queued = board.live.queued.iter().find(|q| &q.id == id).expect("a pending job is queued");
            queue::cancel_pending(hub, queued, by)?;
            ui.err(&format!("{id} cancelled"));
        }
        State::Running => {
            queue::request_cancel(hub, id, by)?;
            let worker = view.claim.map(|c| c.worker).unwrap_or_else(|| "its worker".into());
            ui.err(&format!("{id} is running: asked {worker} to stop it"));
        }
    }
    Ok(())
}

fn read_view(hub: &dyn git_ci_core::Hub, id: &JobId) -> CliResult<(Board, git_ci_core::state::JobView)> {
    match Board::read_view(hub, id)? {
        (board, Some(view)) => Ok((board, view)),
        (_, None) => {
            Err(CliError::usage_hint(format!("no job {id} on the hub {}", hub.url()), "`git ci status` lists the jobs"))
        }
    }
}
