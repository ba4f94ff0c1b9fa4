//! `git ci submit`: queue jobs and print their ids.

use git_ci_core::queue;

use super::plan::{self, Request, Source};
use super::wait;
use crate::cli::SubmitArgs;
use crate::context;
use crate::error::CliResult;
use crate::ui::Ui;

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
