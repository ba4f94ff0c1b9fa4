//! `git ci junit`: finished jobs' JUnit files merged into one.

use git_ci_core::{JobId, done, junit};

use super::show;
use crate::cli::JunitArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

pub fn cmd_junit(ui: &Ui, args: JunitArgs) -> CliResult {
    let ids = args.jobs.iter().map(|j| JobId::parse(j)).collect::<Result<Vec<_>, _>>()?;
    let repo = context::user_repo();
    let hub = context::hub(args.hub.hub.as_deref(), repo.as_ref(), "client")?;
    let mut files = Vec::new();
    for id in &ids {
        let view = show::find(&*hub, id)?;
        let Some(located) = view.located else {
            return Err(CliError::usage(format!("{id} is {}: wait until it finishes", view.state.as_str())));
        };
        let name =
            view.job.as_ref().map_or_else(|| id.to_string(), |j| format!("{} {}", j.spec.name, j.short_commit()));
        let before = files.len();
        while let Some(xml) = done::read(&*hub, located.dir, &format!("junit/{}.xml", files.len() - before))? {
            files.push((name.clone(), xml));
        }
        if files.len() == before {
            ui.err(&format!("{id} ({name}) has no JUnit files"));
        }
    }
    let merged = junit::merge(&files);
    std::fs::write(&args.output, &merged)
        .map_err(|e| CliError::usage(format!("could not write {}: {e}", args.output.display())))?;
    let counts = junit::count(&merged);
    ui.err(&format!(
        "wrote {}: {} tests, {} failed, {} skipped",
        args.output.display(),
        counts.total,
        counts.failed,
        counts.skipped
    ));
    Ok(())
}
