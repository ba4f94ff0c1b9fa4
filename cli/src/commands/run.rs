//! `git ci run`: submit and run right here with an embedded worker.

use clap::Args;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use git_ci_core::hub::HubLocation;
use git_ci_core::state::{Board, State};
use git_ci_core::worker::{Config, Event, Worker};
use git_ci_core::{Job, JobId, Status, done, queue};

use super::plan::{self, DefinitionArgs, ParamArgs, Request, Source};
use super::wait;
use crate::context;
use crate::error::CliResult;
use crate::ui::Ui;

/// Run the jobs of .git-ci.toml here, with an embedded worker, and wait.
///
/// The hub is this repository unless --hub is given, so this works in any
/// clone with no set-up. Jobs that already passed on the same tree with the
/// same definition are skipped. A job runs after the jobs it `needs`; when
/// one of them does not pass, it is reported skipped and not run.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci run                  every job, on HEAD\n  git ci run --job test main  one job (and the jobs it needs), on main\n  git ci run origin/main..HEAD   every commit of a range, oldest first\n  git ci run HEAD~20..HEAD --config-from main   old commits, with today's jobs\n  git ci run --run 'make check'  an ad-hoc job, no .git-ci.toml needed"
)]
pub struct RunArgs {
    /// A commit, or a range A..B (every commit, oldest first).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// Only this job, and the jobs it needs (repeatable; a matrix job: all
    /// its combinations).
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
    #[command(flatten)]
    pub definition: DefinitionArgs,
    /// Run jobs even if they already passed on the same tree.
    #[arg(long)]
    pub force: bool,
    /// How many jobs to run at once.
    #[arg(long = "jobs", short = 'j', value_name = "N")]
    pub parallel: Option<usize>,
    /// The hub to queue on (default: this repository).
    #[arg(long, value_name = "URL|PATH")]
    pub hub: Option<String>,
}

pub fn cmd_run(ui: &Ui, args: RunArgs) -> CliResult {
    let repo = context::require_repo()?;
    let params = ParamArgs::default();
    let source = Source::new(&repo, &args.definition, &params)?;
    let commits = context::resolve_revs(&repo, &args.rev)?;
    let git_ref = if args.rev.contains("..") { String::new() } else { context::symbolic_ref(&repo, &args.rev) };
    let by = context::submitter(&repo);
    let req = Request { wanted: &args.jobs, repeat: 1, params: &params, git_ref: &git_ref, by: &by };
    let jobs = plan::jobs(&repo, &source, &commits, &req)?;
    let own_hub = args.hub.is_none();
    let hub = match &args.hub {
        Some(flag) => context::hub(Some(flag), Some(&repo), "client")?,
        None => context::open_at(&HubLocation::Path(repo.git_dir().to_path_buf()), Some(&repo), "client")?,
    };
    let (to_run, skipped) = if args.force { (jobs, vec![]) } else { skip_passed(&*hub, jobs)? };
    for (job, passed_as) in &skipped {
        ui.err(&format!(
            "skipped  {} at {}: passed on this tree as {passed_as} (--force runs it again)",
            job.label(),
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
        // In the clone itself no one looks for workers; a live service
        // (`serve = true`) is still listed through its registration.
        register: !own_hub || to_run.iter().any(|j| j.spec.serve),
        ..Config::new(held.name.clone(), git_ci_core::hub::cache_root().join("work"))
    };
    let progress = Arc::new(Progress::new(ui, &to_run));
    let events = Arc::clone(&progress);
    let worker = Worker::new(Arc::clone(&hub), cfg, move |e| events.event(e));
    super::signals::stop_on_signals(worker.controller());
    worker.run();
    // Jobs another worker claimed first finish there: wait for them too.
    let ids: Vec<JobId> = ids.into_iter().collect();
    let views = match wait::if_finished(&*hub, &ids) {
        Some(views) => views,
        None => wait::wait_for(None, &*hub, ids)?,
    };
    // Jobs published without running (their needs failed) had no event.
    progress.settle(&views);
    for v in &views {
        let (Some(job), Some(r)) = (&v.job, &v.result) else { continue };
        let state = ui.state(v.state);
        match r.status {
            Status::Passed => {}
            Status::Skipped => {
                let why = r.reason.as_deref().unwrap_or("a job it needs did not pass");
                ui.failure(&format!("  {state} {} at {}: {why}", job.label(), job.short_commit()));
            }
            _ => ui.failure(&format!("  {state} {} at {}: see `git ci log {}`", job.label(), job.short_commit(), v.id)),
        }
    }
    wait::conclude(ui, &views, skipped.len())
}

/// Jobs to run, and jobs skipped with the id of their earlier pass.
type Skipping = (Vec<Job>, Vec<(Job, JobId)>);

/// Splits off the jobs that already passed on the same tree with the same
/// definition. A job whose needs run again runs again too (what it needs
/// may have changed), and a job that runs brings what it needs: its needs
/// name jobs of this submission, which must be queued with it.
fn skip_passed(hub: &dyn git_ci_core::Hub, jobs: Vec<Job>) -> CliResult<Skipping> {
    let board = Board::read(hub)?;
    let mut skippable: HashSet<JobId> = HashSet::new();
    let mut passed: Vec<Option<JobId>> = Vec::with_capacity(jobs.len());
    // Jobs come each after what it needs, so one pass forward...
    for job in &jobs {
        let prev = job
            .needs
            .iter()
            .all(|n| skippable.contains(&n.id))
            .then(|| done::cached_pass(hub, &board.tips, &job.spec.definition_key(&job.tree)))
            .flatten();
        if prev.is_some() {
            skippable.insert(job.id.clone());
        }
        passed.push(prev);
    }
    // ...and one backward, from the jobs that run to what they need.
    let mut needed: HashSet<JobId> = HashSet::new();
    for (job, prev) in jobs.iter().zip(passed.iter_mut()).rev() {
        if needed.contains(&job.id) {
            *prev = None;
        }
        if prev.is_none() {
            needed.extend(job.needs.iter().map(|n| n.id.clone()));
        }
    }
    let (mut run, mut skip) = (Vec::new(), Vec::new());
    for (job, prev) in jobs.into_iter().zip(passed) {
        match prev {
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
    /// Jobs whose end was shown.
    ended: Mutex<HashSet<JobId>>,
}

impl Progress {
    fn new(ui: &Ui, jobs: &[Job]) -> Progress {
        if !ui.interactive {
            for j in jobs.iter().filter(|_| !ui.quiet) {
                eprintln!(" pending  {} at {} {}", j.label(), j.short_commit(), j.id);
            }
            return Progress { bars: None, color: ui.color, quiet: ui.quiet, ended: Default::default() };
        }
        let multi = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed:>4}").expect("valid template");
        let bars = jobs
            .iter()
            .map(|j| {
                let bar = multi.add(indicatif::ProgressBar::new_spinner().with_style(style.clone()));
                bar.set_message(format!("pending  {} at {}", j.label(), j.short_commit()));
                bar.enable_steady_tick(Duration::from_millis(120));
                (j.id.clone(), bar)
            })
            .collect();
        Progress { bars: Some((multi, Mutex::new(bars))), color: true, quiet: false, ended: Default::default() }
    }

    fn line(&self, id: &JobId, text: String, finished: bool) {
        if finished && !self.ended.lock().expect("progress lock").insert(id.clone()) {
            return;
        }
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
                format!(" {}  {} at {}", ui.state(State::Running), job.label(), job.short_commit()),
                false,
            ),
            Event::Published { job: Some(job), result } => self.ended(job, result),
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

    fn ended(&self, job: &Job, result: &git_ci_core::model::JobResult) {
        let ui = Ui { color: self.color, ..Ui::plain() };
        let state = ui.state(State::Finished(result.status));
        let text = match result.status {
            Status::Skipped => format!("{state:>8}  {} at {}", job.label(), job.short_commit()),
            _ => {
                let took = git_ci_core::time::human_duration(Duration::from_millis(result.duration_ms));
                format!("{state:>8}  {} at {} in {took}", job.label(), job.short_commit())
            }
        };
        self.line(&job.id, text, true);
    }

    /// Shows the end of the jobs no event told of: published by another
    /// worker, or skipped in the transaction that published a need.
    fn settle(&self, views: &[git_ci_core::state::JobView]) {
        for v in views {
            if let (Some(job), Some(result)) = (&v.job, &v.result) {
                self.ended(job, result);
            }
        }
    }
}
