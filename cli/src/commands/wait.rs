//! Following jobs until they finish, for `submit --wait`, `run` and `log --follow`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use git_ci_core::state::{Board, JobView, State};
use git_ci_core::{Hub, JobId, Status};

use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Polls the hub until every job is finished; prints state changes when
/// `ui` is given.
pub fn wait_for(ui: Option<&Ui>, hub: &dyn Hub, ids: Vec<JobId>) -> CliResult<Vec<JobView>> {
    let interval = if hub.watch_path().is_some() { Duration::from_millis(50) } else { Duration::from_secs(1) };
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
                let name = v.job.as_ref().map_or("?", |j| j.spec.name.as_str());
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
        std::thread::sleep(interval);
    }
}

/// Prints a one-line summary; the exit status follows DESIGN.md. Skipped
/// jobs passed earlier on the same tree and count as passes.
pub fn conclude(ui: &Ui, views: &[JobView], skipped: usize) -> CliResult {
    let passed = views.iter().filter(|v| v.state == State::Finished(Status::Passed)).count();
    let failed = views.len() - passed;
    let passed = passed + skipped;
    ui.err(&format!("{passed} passed, {failed} failed"));
    if failed == 0 { Ok(()) } else { Err(CliError::JobsFailed) }
}
