//! Following jobs until they finish, for `submit --wait`, `run` and `log --follow`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use git_ci_core::ref_watch::RefWatch;
use git_ci_core::state::{Board, JobView, State};
use git_ci_core::{Hub, Job, JobId, Status};

use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Follows the hub until every job is finished; prints state changes when
/// `ui` is given. A local hub is read again when its refs change (and now
/// and then, should an event be missed); a remote one once a second, one
/// fetch each time.
pub fn wait_for(ui: Option<&Ui>, hub: &dyn Hub, ids: Vec<JobId>) -> CliResult<Vec<JobView>> {
    let changes = Changes::new(hub);
    let started = Instant::now();
    let mut last: HashMap<JobId, State> = HashMap::new();
    loop {
        let board = Board::read(hub)?;
        let mut views: Vec<JobView> = Vec::new();
        for id in &ids {
            views.extend(board.view(hub, id)?);
        }
        for v in views.iter().filter(|_| ui.is_some()) {
            let ui = ui.expect("filtered");
            if last.get(&v.id) != Some(&v.state) {
                last.insert(v.id.clone(), v.state);
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
        changes.wait();
    }
}

/// Waiting for the hub's refs to change, as cheaply as the hub allows.
pub struct Changes(Option<RefWatch>);

/// How often a remote hub is read.
const REMOTE_POLL: Duration = Duration::from_secs(1);
/// How often a watched local hub is read even without an event (a hub on a
/// network filesystem sends none).
const LOCAL_POLL: Duration = Duration::from_secs(2);

impl Changes {
    /// Starts watching before the first read, so no change is missed.
    pub fn new(hub: &dyn Hub) -> Changes {
        Changes(hub.watch_path().and_then(|dir| RefWatch::new(&dir)))
    }

    /// Until the refs may have changed.
    pub fn wait(&self) {
        match &self.0 {
            Some(watch) => {
                // The several refs one transaction moves are one change.
                watch.wait(LOCAL_POLL, Duration::from_millis(10));
            }
            None => std::thread::sleep(REMOTE_POLL),
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
