//! `git ci submit`: queue jobs and print their ids.

use clap::Args;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use git_ci_core::live_workers::LiveWorkers;
use git_ci_core::state::{JobView, State};
use git_ci_core::{Hub, Job, JobId, queue};

use git_ci_core::pipeline::{MAX_JOBS, SelectError};

use super::plan::{self, DefinitionArgs, ParamArgs, Request, Source};
use super::wait;
use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Queue jobs on the hub and print their ids, one a line.
///
/// The jobs are those of .git-ci.toml at each commit (or of --config,
/// --config-from, or the ad-hoc --run or --stdin), with the jobs they
/// need; --queue, --require, --env and --timeout change them before they
/// are queued. All the jobs of one submission are queued in one push.
///
/// Of a big submission, the first 64 jobs of each queue (highest priority
/// first) are queued and the rest parked in one backlog ref, so that
/// thousands of pending jobs do not slow down every push to the hub;
/// workers queue parked jobs, highest priority first, as the queue runs
/// low, and `status` says `parked in backlog`. Set
/// GIT_CI_BACKLOG_AFTER=N to queue N before parking, or =off to park none
/// (for workers older than backlogs, which never run parked jobs).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci submit                     the jobs of .git-ci.toml at HEAD\n  git ci submit --wait --job test   one job; exit 0 if it passed\n  git ci submit --job test --env CASE=test_login --queue gpu --require gpu=a100 --timeout 5m\n  git ci submit --job test --repeat 100   a soak: 100 runs, #1..#100\n  git ci submit HEAD~20..HEAD --config-from main   20 old commits, with today's jobs\n  git ci submit --run 'make check' --artifacts 'out/*.log'   an ad-hoc job\n  cat commands.txt | git ci submit --stdin --queue fuzz   one ad-hoc job a line, one push"
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
    /// Wait for the jobs to finish; exit 0 if all passed, 1 otherwise (see
    /// `git ci wait --help` for every exit code). A hub that stops
    /// answering meanwhile is tried again for up to 10 minutes; `git ci
    /// wait ID...` re-attaches to the jobs later.
    #[arg(long)]
    pub wait: bool,
    /// Read ad-hoc commands from stdin, one a line (blank lines and lines
    /// starting with # are skipped), and queue a job for each, all in one
    /// push; --queue, --env, --require, --timeout and the other job
    /// parameters apply to each. Not with --run, --job or a definition.
    #[arg(long, help_heading = "Job definition")]
    pub stdin: bool,
    /// Print the queued jobs as JSON, one a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_submit(ui: &Ui, args: SubmitArgs) -> CliResult {
    // A bad threshold is refused before anything is read or written.
    git_ci_core::backlog::park_after().map_err(CliError::usage)?;
    let repo = context::require_repo()?;
    let sources = sources(&repo, &args)?;
    let commits = context::resolve_revs(&repo, &args.rev)?;
    let git_ref = if args.rev.contains("..") { String::new() } else { context::symbolic_ref(&repo, &args.rev) };
    let by = context::submitter(&repo);
    let req =
        Request { wanted: &args.jobs, repeat: args.params.repeat, params: &args.params, git_ref: &git_ref, by: &by };
    let mut jobs = Vec::new();
    for source in &sources {
        jobs.extend(plan::jobs(&repo, source, &commits, &req)?);
        if jobs.len() > MAX_JOBS {
            return Err(SelectError::TooMany(jobs.len()).into());
        }
    }
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
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id.clone()).collect();
        let mut unserved = Unserved { since: Instant::now(), told: false };
        let views = wait::wait_with(Some(ui), &*hub, ids, |views| unserved.tell(ui, &*hub, &jobs, views))?;
        return wait::conclude(ui, &views, 0);
    }
    Ok(())
}

/// How long jobs may be pending before `submit --wait` looks whether any
/// live worker can run them.
const UNSERVED_AFTER: Duration = Duration::from_millis(500);

/// Saying once why pending jobs wait, when no live worker can run them:
/// they would otherwise wait silently until someone starts one. Not
/// before [`UNSERVED_AFTER`]: the registrations are one more read of the
/// hub (a fetch from a remote one), which a job done by then never needs.
struct Unserved {
    since: Instant,
    told: bool,
}

impl Unserved {
    fn tell(&mut self, ui: &Ui, hub: &dyn Hub, jobs: &[Job], views: &[JobView]) {
        if self.told || self.since.elapsed() < UNSERVED_AFTER {
            return;
        }
        let pending: HashSet<&JobId> = views.iter().filter(|v| v.state == State::Pending).map(|v| &v.id).collect();
        if pending.is_empty() {
            return;
        }
        self.told = true;
        // A hub that does not answer now is the waiter's to report.
        let Ok(live) = LiveWorkers::read(hub) else { return };
        for job in jobs.iter().filter(|j| pending.contains(&j.id)) {
            if let Some(why) = live.why_unserved(job) {
                ui.err(&format!("{} waits: {why}", job.label()));
            }
        }
    }
}

/// Where the jobs come from: one definition, or with `--stdin` an ad-hoc
/// job per command read.
fn sources(repo: &gix::Repository, args: &SubmitArgs) -> CliResult<Vec<Source>> {
    if !args.stdin {
        return Ok(vec![Source::new(repo, &args.definition, &args.params)?]);
    }
    let def = &args.definition;
    let other = [
        (def.run.is_some(), "--run"),
        (!args.jobs.is_empty(), "--job"),
        (def.config.is_some(), "--config"),
        (def.config_from.is_some(), "--config-from"),
    ];
    if let Some((_, flag)) = other.into_iter().find(|(given, _)| *given) {
        return Err(CliError::usage_hint(
            format!("--stdin and {flag} cannot be used together: --stdin reads ad-hoc commands, one a line"),
            "give the commands on stdin (`printf 'make a\\nmake b\\n' | git ci submit --stdin`), or drop --stdin",
        ));
    }
    let scripts = read_commands(std::io::stdin().lock())
        .map_err(|e| CliError::Internal(format!("could not read the commands on stdin: {e}")))?;
    if scripts.is_empty() {
        return Err(CliError::usage_hint(
            "--stdin: no command on stdin, so nothing was queued",
            "give one shell command a line; blank lines and lines starting with # are skipped",
        ));
    }
    scripts
        .into_iter()
        .map(|script| {
            let one = DefinitionArgs { run: Some(script), ..def.clone() };
            Source::new(repo, &one, &args.params)
        })
        .collect()
}

/// The commands of `--stdin`: every line that is not blank or a `#` comment.
fn read_commands(input: impl std::io::BufRead) -> std::io::Result<Vec<String>> {
    let mut scripts = Vec::new();
    for line in input.lines() {
        let line = line?;
        let trimmed = line.trim();
        if !trimmed.is_empty() && !trimmed.starts_with('#') {
            scripts.push(trimmed.to_owned());
        }
    }
    Ok(scripts)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_commands_skip_blank_lines_and_comments() {
        let input = "make a\n\n  # a comment\n\t\nexit 1  \n#make b\n  echo '#not a comment'\n";
        let got = read_commands(input.as_bytes()).unwrap();
        assert_eq!(got, ["make a", "exit 1", "echo '#not a comment'"]);
    }
}
