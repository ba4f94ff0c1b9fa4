//! Following jobs until they finish, for `submit --wait`, `run`, `retry
//! --wait` and `log --follow`, and `git ci wait`, which re-attaches to jobs
//! by id.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Args;
use git_ci_core::state::{Board, JobView, State};
use git_ci_core::worker::backoff::Backoff;
use git_ci_core::{Hub, HubError, Job, JobId, Status};

use super::changes::Changes;
use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Wait for queued jobs to finish, by id: the exit code says how they ended.
///
/// Follows the jobs as `git ci submit --wait` does, printing each change of
/// state on stderr, so that a job queued earlier (by `submit`, `retry`, a
/// push to the hub) can be waited for again from any clone, and a wait cut
/// short can start over. A hub that stops answering while it waits is
/// tried again, less and less often, for up to 10 minutes.
///
/// Exit codes (the same as `submit --wait`): 0 every job passed (or was
/// skipped because it passed earlier on the same tree); 1 some job failed,
/// timed out, was cancelled, or was not run because a job it needs did not
/// pass; 2 an id is malformed or the hub has no such job; 3 the hub could
/// not be reached, or stayed away for 10 minutes.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci wait 20261122T040704123-0123456789ab\n  ids=$(git ci submit) && git ci wait $ids   queue now, wait later\n  git ci wait $(git ci status --state running --json | jq -r '.[].id')"
)]
pub struct WaitArgs {
    /// Job ids, as `submit` and `status` print them.
    #[arg(required = true, value_name = "ID")]
    pub jobs: Vec<String>,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_wait(ui: &Ui, args: WaitArgs) -> CliResult {
    let mut ids: Vec<JobId> = Vec::new();
    for given in &args.jobs {
        let id = JobId::parse(given)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let repo = context::user_repo();
    let hub = context::hub_holding(args.hub.hub.as_deref(), repo.as_ref(), "client", &ids)?;
    // An id the hub never heard of would be waited for forever: refused
    // now, while the hub answers (a hub that never answered is exit 3).
    // One read for all; the hub is read again only for an id it lacked.
    let board = Board::read(&*hub)?;
    for id in &ids {
        if board.view(&*hub, id)?.is_none() && Board::read_view(&*hub, id)?.1.is_none() {
            return Err(CliError::usage_hint(
                format!("no job {id} on the hub {}", hub.url()),
                "`git ci status` lists the jobs the hub knows; pass --hub if they were queued on another",
            ));
        }
    }
    let views = wait_for(Some(ui), &*hub, ids)?;
    conclude(ui, &views, 0)
}

/// Follows the hub until every job is finished; prints state changes when
/// `ui` is given. The hub is read again when the jobs' refs may have
/// changed ([`Changes`]). A hub that stops answering is retried with a growing
/// pause (see [`Outage`]).
pub fn wait_for(ui: Option<&Ui>, hub: &dyn Hub, ids: Vec<JobId>) -> CliResult<Vec<JobView>> {
    wait_with(ui, hub, ids, |_| {})
}

/// [`wait_for`], showing `after_read` the jobs after each read that finds
/// some unfinished.
pub fn wait_with(
    ui: Option<&Ui>,
    hub: &dyn Hub,
    ids: Vec<JobId>,
    mut after_read: impl FnMut(&[JobView]),
) -> CliResult<Vec<JobView>> {
    let mut changes = Changes::new(hub, &ids);
    let started = Instant::now();
    let mut last: HashMap<JobId, State> = HashMap::new();
    let mut outage = Outage::default();
    loop {
        changes.before_read(hub);
        let views = match read_views(hub, &ids) {
            Ok(views) => {
                outage.over(ui, hub);
                views
            }
            Err(e) => {
                std::thread::sleep(outage.failed(ui, hub, e)?);
                continue;
            }
        };
        for v in &views {
            if last.get(&v.id) == Some(&v.state) {
                continue;
            }
            last.insert(v.id.clone(), v.state);
            changes.moved();
            if let Some(ui) = ui {
                let name = v.job.as_ref().map_or_else(|| "?".to_owned(), Job::label);
                ui.err(&format!(
                    "{:>8}  {name} {} ({})",
                    ui.state(v.state),
                    v.id,
                    git_ci_core::time::human_duration(started.elapsed())
                ));
            }
        }
        if views.len() == ids.len() && views.iter().all(|v| v.state.is_finished()) {
            return Ok(views);
        }
        after_read(&views);
        changes.wait(hub);
    }
}

/// The jobs' views when one read finds every one finished, without
/// watching the hub first (`git ci run`, whose own worker has most likely
/// just published them all: a watch is a thread and an inotify walk of
/// the refs, ~1 ms); `None` sends the caller to [`wait_for`].
pub fn if_finished(hub: &dyn Hub, ids: &[JobId]) -> Option<Vec<JobView>> {
    let views = read_views(hub, ids).ok()?;
    (views.len() == ids.len() && views.iter().all(|v| v.state.is_finished())).then_some(views)
}

fn read_views(hub: &dyn Hub, ids: &[JobId]) -> Result<Vec<JobView>, HubError> {
    let board = Board::read(hub)?;
    let mut views = Vec::new();
    for id in ids {
        views.extend(board.view(hub, id)?);
    }
    Ok(views)
}

/// How long a waiter keeps trying a hub that stopped answering.
const PATIENCE: Duration = Duration::from_secs(600);

/// A hub that stopped answering while we wait: a restart, a network blip.
/// The jobs go on without us, so the wait goes on too, with the worker's
/// backoff (a quarter second, doubling up to half a minute, jittered),
/// saying once that the hub is away and once that it is back. A hub that
/// refuses us is an answer, not an outage: that ends the wait at once.
#[derive(Default)]
struct Outage {
    backoff: Backoff,
    since: Option<Instant>,
}

impl Outage {
    /// How long to pause before the next read; the error when it is not
    /// worth another try.
    fn failed(&mut self, ui: Option<&Ui>, hub: &dyn Hub, error: HubError) -> CliResult<Duration> {
        if !matches!(error, HubError::Unreachable { .. }) {
            return Err(error.into());
        }
        let first = self.since.is_none();
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= PATIENCE {
            let hint = format!(
                "it has not answered for {}; once it is back, `git ci wait ID...` follows the jobs again",
                git_ci_core::time::human_duration(since.elapsed())
            );
            return Err(CliError::Hub { error, hint: Some(hint) });
        }
        let pause = self.backoff.fail();
        if let Some(ui) = ui.filter(|_| first) {
            let said = error.message().split_whitespace().collect::<Vec<_>>().join(" ");
            ui.err(&format!("hub {} is not answering ({said}); still waiting, trying again", hub.url()));
        }
        Ok(pause)
    }

    /// The hub answered: says so when it had been away.
    fn over(&mut self, ui: Option<&Ui>, hub: &dyn Hub) {
        let Some(since) = self.since.take() else { return };
        self.backoff.succeed();
        if let Some(ui) = ui {
            let away = git_ci_core::time::human_duration(since.elapsed());
            ui.err(&format!("hub {} is back (away {away}); still waiting", hub.url()));
        }
    }
}

/// Prints a one-line summary; the exit status follows DESIGN.md. Skipped
/// jobs passed earlier on the same tree and count as passes; jobs not run
/// because a job they need did not pass count as failures.
pub fn conclude(ui: &Ui, views: &[JobView], skipped: usize) -> CliResult {
    let passed = views.iter().filter(|v| v.state == State::Finished(Status::Passed)).count();
    let not_run = views.iter().filter(|v| v.state == State::Finished(Status::Skipped)).count();
    let failed = views.len() - passed - not_run;
    let mut line = format!("{} passed, {failed} failed", passed + skipped);
    if not_run > 0 {
        line.push_str(&format!(", {not_run} not run (a job they need did not pass)"));
    }
    if failed + not_run == 0 {
        ui.err(&line);
        Ok(())
    } else {
        ui.failure(&line);
        Err(CliError::JobsFailed)
    }
}
