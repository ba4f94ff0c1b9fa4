//! `git ci submit`: queue jobs and print their ids.

use clap::Args;
use git_ci_core::queue;

use super::plan::{self, DefinitionArgs, ParamArgs, Request, Source};
use super::wait;
use crate::cli::HubArgs;
use crate::context;
use crate::error::CliResult;
use crate::ui::Ui;

/// Queue jobs on the hub and print their ids, one a line.
///
/// The jobs are those of .git-ci.toml at each commit (or of --config,
/// --config-from, or the ad-hoc --run), with the jobs they need; --queue,
/// --require, --env and --timeout change them before they are queued. All
/// the jobs of one submission are queued in one push.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci submit                     the jobs of .git-ci.toml at HEAD\n  git ci submit --wait --job test   one job; exit 0 if it passed\n  git ci submit --job test --env CASE=test_login --queue gpu --require gpu=a100 --timeout 5m\n  git ci submit --job test --repeat 100   a soak: 100 runs, #1..#100\n  git ci submit HEAD~20..HEAD --config-from main   20 old commits, with today's jobs\n  git ci submit --run 'make check' --artifacts 'out/*.log'   an ad-hoc job"
)]
pub struct SubmitArgs {
    /// The commit to test, or a range A..B (every commit, oldest first).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// Only this job of .git-ci.toml, and the jobs it needs (repeatable; a
    /// matrix job: all its combinations).
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
    #[command(flatten)]
    pub definition: DefinitionArgs,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Wait for the jobs to finish; exit 0 if all passed, 1 otherwise.
    #[arg(long)]
    pub wait: bool,
    /// Print the queued jobs as JSON, one a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_submit(ui: &Ui, args: SubmitArgs) -> CliResult {
    let repo = context::require_repo()?;
    let source = Source::new(&repo, &args.definition, &args.params)?;
    let commits = context::resolve_revs(&repo, &args.rev)?;
    let git_ref = if args.rev.contains("..") { String::new() } else { context::symbolic_ref(&repo, &args.rev) };
    let by = context::submitter(&repo);
    let req =
        Request { wanted: &args.jobs, repeat: args.params.repeat, params: &args.params, git_ref: &git_ref, by: &by };
    let jobs = plan::jobs(&repo, &source, &commits, &req)?;
    let hub = context::hub(args.hub.hub.as_deref(), Some(&repo), "client")?;
    // Every job of the submission in one transaction: a pipeline is queued
    // whole or not at all, and its needs never name a job that is missing.
    queue::submit(&*hub, &jobs)?;
    for job in &jobs {
        if args.json {
            ui.out(&String::from_utf8_lossy(&job.to_json()).replace('\n', ""));
        } else {
            ui.out(job.id.as_str());
        }
    }
    report_queued(ui, &jobs, hub.url());
    if args.wait {
        // Said once, before waiting: a job no live worker can run would
        // otherwise wait silently until someone starts one.
        let live = git_ci_core::live_workers::LiveWorkers::read(&*hub)?;
        for job in &jobs {
            if let Some(why) = live.why_unserved(job) {
                ui.err(&format!("{} waits: {why}", job.label()));
            }
        }
        let ids = jobs.iter().map(|j| j.id.clone()).collect();
        let views = wait::wait_for(Some(ui), &*hub, ids)?;
        return wait::conclude(ui, &views, 0);
    }
    Ok(())
}

/// One stderr line a job; the runs of a repeated job are one line.
fn report_queued(ui: &Ui, jobs: &[git_ci_core::Job], hub: &str) {
    let mut i = 0;
    while i < jobs.len() {
        let job = &jobs[i];
        match job.repeat {
            Some(r) if r.index == 1 && i + r.count as usize <= jobs.len() => {
                let label = job.spec.label();
                ui.err(&format!("queued {label} #1..#{} on {hub} ({})", r.count, job.short_commit()));
                i += r.count as usize;
            }
            _ => {
                ui.err(&format!("queued {} on {hub} ({})", job.label(), job.short_commit()));
                i += 1;
            }
        }
    }
}
