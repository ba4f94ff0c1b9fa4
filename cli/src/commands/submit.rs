//! `git ci submit`: queue jobs and print their ids.

use std::collections::BTreeMap;

use git_ci_core::model::JobSpec;
use git_ci_core::pipeline::{FILE_NAME, Pipeline};
use git_ci_core::{Job, queue};

use super::wait;
use crate::cli::SubmitArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

pub fn cmd_submit(ui: &Ui, args: SubmitArgs) -> CliResult {
    let repo = context::require_repo()?;
    let (commit, tree) = context::resolve_commit(&repo, &args.rev)?;
    let git_ref = context::symbolic_ref(&repo, &args.rev);
    let by = context::submitter(&repo);
    let jobs = match &args.run {
        Some(script) => {
            vec![Job::new(ad_hoc_spec(&args, script)?, &commit.to_string(), &tree.to_string(), &git_ref, &by)]
        }
        None => plan(&repo, commit, tree, &git_ref, &args.jobs, &by)?,
    };
    let hub = context::hub(args.hub.hub.as_deref(), Some(&repo), "client")?;
    queue::submit(&*hub, &jobs)?;
    for job in &jobs {
        if args.json {
            ui.out(&String::from_utf8_lossy(&job.to_json()).replace('\n', ""));
        } else {
            ui.out(job.id.as_str());
        }
        ui.err(&format!("queued {} on {} ({})", job.spec.name, hub.url(), job.short_commit()));
    }
    if args.wait {
        let ids = jobs.iter().map(|j| j.id.clone()).collect();
        let views = wait::wait_for(Some(ui), &*hub, ids)?;
        return wait::conclude(ui, &views, 0);
    }
    Ok(())
}

fn ad_hoc_spec(args: &SubmitArgs, script: &str) -> CliResult<JobSpec> {
    let mut spec = JobSpec::ad_hoc(script);
    if let Some(q) = &args.queue {
        git_ci_core::refs::check_component("queue", q).map_err(CliError::usage)?;
        spec.queue = q.clone();
    }
    spec.requires = args.requires.iter().cloned().collect::<BTreeMap<_, _>>();
    spec.env = args.env.iter().cloned().collect();
    if let Some(t) = args.timeout {
        spec.timeout = t.as_secs().max(1);
    }
    // The rules every job definition follows, this one's too.
    spec.check().map_err(CliError::usage)?;
    Ok(spec)
}

/// The jobs `.git-ci.toml` at `commit` defines (those named in `names`, or all).
pub fn plan(
    repo: &gix::Repository,
    commit: gix::ObjectId,
    tree: gix::ObjectId,
    git_ref: &str,
    names: &[String],
    by: &str,
) -> CliResult<Vec<Job>> {
    let pipeline = Pipeline::at_commit(repo, commit)?.ok_or_else(|| {
        CliError::usage_hint(
            format!("commit {} has no {FILE_NAME}", commit.to_hex_with_len(10)),
            format!(
                "add a {FILE_NAME} with a [job.NAME] table and `run = \"...\"`, or submit an ad-hoc job with --run"
            ),
        )
    })?;
    let jobs = pipeline
        .jobs(names, 1, &|spec| Job::unsealed(spec, &commit.to_string(), &tree.to_string(), git_ref, by))
        .map_err(|e| CliError::usage(e.to_string()))?;
    if jobs.is_empty() {
        return Err(CliError::usage(format!("{FILE_NAME} at {} defines no jobs", commit.to_hex_with_len(10))));
    }
    Ok(jobs)
}
