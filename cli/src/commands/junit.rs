//! `git ci junit`: finished jobs' JUnit files merged into one.
//!
//! The runs of a repeated job (`submit --repeat N`) are read together: their
//! pass rate is printed, and their failing runs come first in the file.

use clap::Args;
use git_ci_core::state::JobView;
use git_ci_core::{Hub, JobId, done, junit};

use super::repeats::{self, Entry};
use super::show;
use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Export the JUnit results of finished jobs as one JUnit XML file.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci junit 20261122T040704123-0123456789ab -o results.xml")]
pub struct JunitArgs {
    /// Job ids.
    #[arg(required = true)]
    pub jobs: Vec<String>,
    /// Where to write the merged XML.
    #[arg(short, long, value_name = "FILE")]
    pub output: std::path::PathBuf,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_junit(ui: &Ui, args: JunitArgs) -> CliResult {
    let ids = args.jobs.iter().map(|j| JobId::parse(j)).collect::<Result<Vec<_>, _>>()?;
    let repo = context::user_repo();
    let hub = context::hub_holding(args.hub.hub.as_deref(), repo.as_ref(), "client", &ids)?;
    let mut views = Vec::new();
    for id in &ids {
        let view = show::find(&*hub, id)?;
        if view.located.is_none() {
            return Err(CliError::usage(format!("{id} is {}: wait until it finishes", view.state.as_str())));
        }
        views.push(view);
    }
    let mut files = Vec::new();
    for entry in repeats::group(&views) {
        match entry {
            Entry::One(v) => collect(ui, &*hub, v, &mut files)?,
            Entry::Runs(runs) => {
                ui.err(&format!("{}: {}", runs.title(), runs.summary()));
                for v in runs.failing_first() {
                    collect(ui, &*hub, v, &mut files)?;
                }
            }
        }
    }
    let merged = junit::merge(&files);
    for problem in &merged.problems {
        ui.err(&format!("note: a JUnit file of {problem}: skipped, counted as one error"));
    }
    std::fs::write(&args.output, &merged.xml)
        .map_err(|e| CliError::usage(format!("could not write {}: {e}", args.output.display())))?;
    let counts = merged.counts;
    ui.err(&format!(
        "wrote {}: {} tests, {} failed, {} skipped",
        args.output.display(),
        counts.total,
        counts.failed,
        counts.skipped
    ));
    Ok(())
}

/// Adds the JUnit files of a finished job, each suite named after the job
/// (`test (db=pg) #3 1c2d3e4f5a: suite`).
fn collect(ui: &Ui, hub: &dyn Hub, view: &JobView, files: &mut Vec<(String, Vec<u8>)>) -> CliResult {
    let located = view.located.as_ref().expect("checked finished");
    let id = &view.id;
    let name = view.job.as_ref().map_or_else(|| id.to_string(), |j| format!("{} {}", j.label(), j.short_commit()));
    let before = files.len();
    while let Some(xml) = done::read(hub, located.dir, &format!("junit/{}.xml", files.len() - before))? {
        files.push((name.clone(), xml));
    }
    if files.len() == before {
        ui.err(&format!("{id} ({name}) has no JUnit files"));
    }
    Ok(())
}
