//! `git ci artifact`: one artifact of a finished job.

use clap::Args;
use git_ci_core::{JobId, done};

use super::show;
use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Fetch one artifact of a finished job.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci artifact 20261122T040704123-0123456789ab target/app.tar.gz -o app.tar.gz")]
pub struct ArtifactArgs {
    /// The job id.
    pub job: String,
    /// The artifact's path in the checkout, as `git ci show` lists it.
    pub path: String,
    /// Write it here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_artifact(ui: &Ui, args: ArtifactArgs) -> CliResult {
    let id = JobId::parse(&args.job)?;
    let repo = context::user_repo();
    let hub = context::hub_holding(args.hub.hub.as_deref(), repo.as_ref(), "client", std::slice::from_ref(&id))?;
    let view = show::find(&*hub, &id)?;
    let (Some(located), Some(result)) = (view.located, view.result) else {
        return Err(CliError::usage(format!("{id} is {}: artifacts exist once it finishes", view.state.as_str())));
    };
    let path = args.path.trim_start_matches("./");
    let bytes = done::read(&*hub, located.dir, &format!("artifacts/{path}"))?.ok_or_else(|| {
        let listed: Vec<&str> = result.artifacts.iter().map(|a| a.path.as_str()).collect();
        let have = if listed.is_empty() { "it has none".to_owned() } else { format!("it has: {}", listed.join(", ")) };
        CliError::usage(format!("{id} has no artifact {path:?}; {have}"))
    })?;
    match &args.output {
        Some(file) => std::fs::write(file, &bytes)
            .map_err(|e| CliError::usage(format!("could not write {}: {e}", file.display())))?,
        None => ui.out_bytes(&bytes),
    }
    Ok(())
}
