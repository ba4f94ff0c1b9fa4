//! `git ci run`: submit and run right here with an embedded worker.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use git_ci_core::hub::HubLocation;
use git_ci_core::state::{Board, State};
use git_ci_core::worker::{Config, Event, Worker};
use git_ci_core::{Job, JobId, done, queue};

use super::{submit, wait};
use crate::cli::RunArgs;
use crate::context;
use crate::error::CliResult;
use crate::ui::Ui;

pub fn cmd_run(ui: &Ui, args: RunArgs) -> CliResult {
    let repo = context::require_repo()?;
    let commits = context::resolve_revs(&repo, &args.rev)?;
    let git_ref = if args.rev.contains("..") { String::new() } else { context::symbolic_ref(&repo, &args.rev) };
    let by = context::submitter(&repo);
    let mut jobs = Vec::new();
    for (commit, tree) in &commits {
        jobs.extend(submit::plan(&repo, *commit, *tree, &git_ref, &args.jobs, &by)?);
    }
    let hub = match &args.hub {
        Some(flag) => context::hub(Some(flag), Some(&repo), "client")?,
        None => context::open_at(&HubLocation::Path(repo.git_dir().to_path_buf()), Some(&repo), "client")?,
    };
    let (to_run, skipped) = if args.force { (jobs, vec![]) } else { skip_passed(&*hub, jobs)? };
    for (job, passed_as) in &skipped {
        ui.err(&format!(
            "skipped  {} at {}: passed on this tree as {passed_as} (--force runs it again)",
            job.spec.name,
            job.short_commit()
        ));
    }
    if to_run.is_empty() {
        return wait::conclude(ui, &[], skipped.len());
    }
    queue::submit(&*hub, &to_run)?;
    let ids: HashSet<JobId> = to_run.iter().map(|j| j.id.clone()).collect();
    // Two runs at once on this machine must not share a worker name.
    let held = super::worker_name::hold(None, &format!("{}-run", context::hostname()))?;
    let parallel = args.parallel.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let cfg = Config {
        jobs: parallel.max(1),
        once: true,
        poll: Duration::from_millis(500),
        only: Some(ids.clone()),
        ..Config::new(held.name.clone(), git_ci_core::hub::cache_root().join("work"))
    };
    let progress = Progress::new(ui, &to_run);
    let worker = Worker::new(Arc::clone(&hub), cfg, move |e| progress.event(e));
    super::signals::stop_on_signals(worker.controller());
    worker.run();
    // Jobs another worker claimed first finish there: wait for them too.
    let views = wait::wait_for(None, &*hub, ids.into_iter().collect())?;
    for v in &views {
        if let (Some(job), Some(r)) = (&v.job, &v.result)
            && r.status != git_ci_core::Status::Passed
        {
            let state = ui.state(v.state);
            ui.err(&format!("  {state} {} at {}: see `git ci log {}`", job.spec.name, job.short_commit(), v.id));
        }
    }
    wait::conclude(ui, &views, skipped.len())
}

/// Jobs to run, and jobs skipped with the id of their earlier pass.
type Skipping = (Vec<Job>, Vec<(Job, JobId)>);

/// Splits off the jobs that already passed on the same tree with the same definition.
fn skip_passed(hub: &dyn git_ci_core::Hub, jobs: Vec<Job>) -> CliResult<Skipping> {
    let board = Board::read(hub)?;
    let (mut run, mut skip) = (Vec::new(), Vec::new());
    for job in jobs {
        match done::cached_pass(hub, &board.tips, &job.spec.definition_key(&job.tree)) {
            Some(prev) => skip.push((job, prev)),
            None => run.push(job),
        }
    }
    Ok((run, skip))
}

/// One line per job: a spinner on a terminal, plain lines otherwise.
struct Progress {
    bars: Option<(indicatif::MultiProgress, Mutex<std::collections::HashMap<JobId, indicatif::ProgressBar>>)>,
    color: bool,
    /// `-q`: no per-job lines.
    quiet: bool,
}

impl Progress {
    fn new(ui: &Ui, jobs: &[Job]) -> Progress {
        if !ui.interactive {
            for j in jobs.iter().filter(|_| !ui.quiet) {
                eprintln!(" pending  {} at {} {}", j.spec.name, j.short_commit(), j.id);
            }
            return Progress { bars: None, color: ui.color, quiet: ui.quiet };
        }
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed:>4}").expect("valid template");
        let bars = jobs
            .iter()
            .map(|j| {
                let bar = multi.add(indicatif::ProgressBar::new_spinner().with_style(style.clone()));
                bar.set_message(format!("pending  {} at {}", j.spec.name, j.short_commit()));
                bar.enable_steady_tick(Duration::from_millis(120));
                (j.id.clone(), bar)
            })
            .collect();
        Progress { bars: Some((multi, Mutex::new(bars))), color: true, quiet: false }
    }

    fn line(&self, id: &JobId, text: String, finished: bool) {
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.lock().expect("progress lock").get(id) {
                    if finished {
                        // The message carries the job's own duration now.
                        bar.set_style(indicatif::ProgressStyle::with_template("  {msg}").expect("valid template"));
                        bar.finish_with_message(text);
                    } else {
                        bar.set_message(text);
                    }
                }
            }
            None if self.quiet => {}
            None => eprintln!("{text}"),
        }
    }

    fn event(&self, e: &Event) {
        let ui = Ui { color: self.color, ..Ui::plain() };
        match e {
            Event::Claimed { job, .. } => self.line(
                &job.id,
                format!(" {}  {} at {}", ui.state(State::Running), job.spec.name, job.short_commit()),
                false,
            ),
            Event::Published { job: Some(job), result } => {
                let took = git_ci_core::time::human_duration(Duration::from_millis(result.duration_ms));
                let state = ui.state(State::Finished(result.status));
                self.line(&job.id, format!("{state:>8}  {} at {} in {took}", job.spec.name, job.short_commit()), true)
            }
            Event::HubUnreachable { error, retry_in } => {
                eprintln!("hub unreachable, retrying in {}: {error}", git_ci_core::time::human_duration(*retry_in))
            }
            Event::HubError { error } => eprintln!("hub error: {error}"),
            Event::HubRefused { error, fix, .. } => eprintln!("{error}\nto fix: {fix}"),
            Event::Draining => {
                eprintln!("stopping: finishing running jobs (Ctrl-C again to cancel them)")
            }
            _ => {}
        }
    }
}
