//! `git ci log`: a finished job's log, byte for byte.

use std::io::Write;

use git_ci_core::{JobId, done};

use super::{show, wait};
use crate::cli::LogArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

pub fn cmd_log(_ui: &Ui, args: LogArgs) -> CliResult {
    let id = JobId::parse(&args.job)?;
    let repo = context::user_repo();
    let hub = context::hub(args.hub.hub.as_deref(), repo.as_ref(), "client")?;
    let mut view = show::find(&*hub, &id)?;
    if !view.state.is_finished() {
        if !args.follow {
            return Err(CliError::usage_hint(
                format!("job {id} is {}: its log is published when it finishes", view.state.as_str()),
                format!("`git ci log --follow {id}` waits for it"),
            ));
        }
        view = wait::wait_for(None, &*hub, vec![id.clone()])?.remove(0);
    }
    let located =
        view.located.ok_or_else(|| CliError::Internal(format!("job {id} is finished but has no directory")))?;
    let log = done::read(&*hub, located.dir, "log").unwrap_or_default();
    // A closed pipe (`git ci log X | head`) is not an error worth a message.
    let _ = std::io::stdout().lock().write_all(&log);
    Ok(())
}
