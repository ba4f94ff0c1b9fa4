//! `git ci log`: a job's log, byte for byte; `--follow` streams a running
//! job's log from its live tail (`refs/ci/logs/<id>`) until it finishes.

use clap::Args;
use git_ci_core::state::JobView;
use git_ci_core::worker::parse_live_log;
use git_ci_core::{Hub, JobId, done, refs};

use super::changes::Changes;
use super::show;
use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Print a finished job's log as it was captured (colours included).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci log 20261122T040704123-0123456789ab | less -R")]
pub struct LogArgs {
    /// The job id.
    pub job: String,
    /// For a pending or running job: print its log as it grows (from the
    /// live tail the worker pushes), until the job finishes.
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_log(ui: &Ui, args: LogArgs) -> CliResult {
    let id = JobId::parse(&args.job)?;
    let repo = context::user_repo();
    let hub = context::hub_holding(args.hub.hub.as_deref(), repo.as_ref(), "client", std::slice::from_ref(&id))?;
    let view = show::find(&*hub, &id)?;
    if view.state.is_finished() {
        return print_final(ui, &*hub, &view, 0);
    }
    if !args.follow {
        return Err(CliError::usage_hint(
            format!("job {id} is {}: its log is published when it finishes", view.state.as_str()),
            format!("`git ci log --follow {id}` shows it as it grows"),
        ));
    }
    follow(ui, &*hub, &id)
}

/// Prints the published log from byte `from` on. A log that cannot be
/// read is an error: printing nothing would pass for an empty log.
fn print_final(ui: &Ui, hub: &dyn Hub, view: &JobView, from: u64) -> CliResult {
    let id = &view.id;
    let located = view.located.as_ref().ok_or_else(|| CliError::Internal(format!("job {id} has no directory")))?;
    let log = done::read(hub, located.dir, "log")?.ok_or_else(|| {
        CliError::usage_hint(
            format!("job {id} is {} but its record on the hub has no log", view.state.as_str()),
            format!("`git ci show {id}` shows what the record holds"),
        )
    })?;
    let start = (from as usize).min(log.len());
    ui.out_bytes(&log[start..]);
    Ok(())
}

/// Prints the live tail as it grows. Each round reads the live log ref
/// (one fetch from a remote hub), and the job's state only when that ref
/// is absent or unchanged, which is how a finished job looks; the next
/// round comes when the job's refs or its log moved ([`Changes`]). Stops
/// once stdout is gone.
fn follow(ui: &Ui, hub: &dyn Hub, id: &JobId) -> CliResult {
    let mut changes = Changes::with_logs(hub, std::slice::from_ref(id));
    let mut printed = 0u64;
    let mut last = None;
    while !ui.stdout_failed() {
        changes.before_read(hub);
        let live = hub.refresh_ref(&refs::log(id))?;
        if live.is_none() || live == last {
            let view = show::find(hub, id)?;
            if view.state.is_finished() {
                return print_final(ui, hub, &view, printed);
            }
        }
        last = live;
        if let Some(blob) = live.and_then(|oid| hub.read_blob(oid).ok())
            && let Some((total, tail)) = parse_live_log(&blob)
            && total > printed
        {
            let new = (total - printed) as usize;
            if new > tail.len() {
                ui.out(&format!("\n[git-ci] ... {} bytes not shown ...", new - tail.len()));
            }
            ui.out_bytes(&tail[tail.len().saturating_sub(new)..]);
            printed = total;
        }
        changes.wait(hub);
    }
    Ok(())
}
