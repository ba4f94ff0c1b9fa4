//! `git ci status`: jobs and their states.

use clap::Args;
use git_ci_core::Job;
use git_ci_core::live_workers::LiveWorkers;
use git_ci_core::state::{self, Board, JobView, State};

use super::repeats::{self, Entry};
use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::{self, Ui};

/// List jobs and their states.
///
/// With REV (a commit or branch), show that commit's jobs like a checks
/// view and exit 0 if all passed, 1 if any did not, 4 while any runs.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci status\n  git ci status HEAD         the jobs of the current commit\n  git ci status --state failed --json"
)]
pub struct StatusArgs {
    /// A commit or branch whose jobs to show.
    pub rev: Option<String>,
    /// Only jobs in this state (pending, running, passed, failed, timeout,
    /// cancelled, error, skipped).
    #[arg(long, value_name = "S")]
    pub state: Option<String>,
    /// Only jobs of this branch (or full ref).
    #[arg(long = "branch", visible_alias = "ref", value_name = "BRANCH")]
    pub branch: Option<String>,
    /// Only jobs of this name (`test`) or label (`test (python=3.11)`).
    #[arg(long = "job", value_name = "NAME")]
    pub job: Option<String>,
    /// Only jobs of this project, on a hub serving several repositories
    /// (`""`: jobs recorded without one, the hub's own).
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    /// Only jobs this worker ran or runs.
    #[arg(long, value_name = "NAME")]
    pub worker: Option<String>,
    /// Only jobs submitted since TIME: an age (`2h`, `3d`) or a date
    /// (`2026-11-01`, `2026-11-01T12:00:00Z`).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    pub since: Option<std::time::SystemTime>,
    /// At most this many finished jobs, counted after the filters.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_status(ui: &Ui, args: StatusArgs) -> CliResult {
    let repo = context::user_repo();
    let commit = match &args.rev {
        Some(rev) => {
            let repo =
                repo.as_ref().ok_or_else(|| CliError::usage("a REV needs a repository: run this inside a clone"))?;
            Some(context::resolve_commit(repo, rev)?.0.to_string())
        }
        None => None,
    };
    if let Some(s) = &args.state {
        const STATES: [&str; 8] =
            ["pending", "running", "passed", "failed", "timeout", "cancelled", "error", "skipped"];
        if !STATES.contains(&s.as_str()) {
            return Err(CliError::usage(format!("unknown state {s:?}: use one of {}", STATES.join(", "))));
        }
    }
    let hub = context::hub(args.hub.hub.as_deref(), repo.as_ref(), "client")?;
    let board = Board::read(&*hub)?;
    let limit = if commit.is_some() { usize::MAX } else { args.limit };
    let views = board.matching(&*hub, limit, |v| args.keeps(v, commit.as_deref()))?;
    if args.json {
        let array: Vec<serde_json::Value> = views.iter().map(summary_json).collect();
        ui.out(&serde_json::to_string_pretty(&array).expect("plain JSON"));
    } else if views.is_empty() {
        ui.err(&nothing_matched(&args, commit.is_some()));
    } else {
        // Why pending jobs that wait for no other job are not claimed:
        // read the workers only when there is one to explain.
        let unclaimed = |v: &JobView| v.state == State::Pending && v.waiting_for.is_empty() && v.job.is_some();
        let fleet = if views.iter().any(unclaimed) { Some(LiveWorkers::read(&*hub)?) } else { None };
        print_table(ui, &views, fleet.as_ref());
    }
    if commit.is_none() {
        return Ok(());
    }
    // A commit's verdict is that of the latest run of each of its jobs: a
    // retry that passed answers for the failure before it.
    let latest = state::latest(&views);
    if latest.iter().any(|v| !v.state.is_finished()) {
        Err(CliError::StillRunning)
    } else if latest.iter().any(|v| v.state != State::Finished(git_ci_core::Status::Passed)) {
        Err(CliError::JobsFailed)
    } else {
        Ok(())
    }
}

impl StatusArgs {
    fn filtered(&self) -> bool {
        self.state.is_some()
            || self.branch.is_some()
            || self.job.is_some()
            || self.worker.is_some()
            || self.project.is_some()
            || self.since.is_some()
    }

    /// Whether `v` passes every filter given (and is of `commit`, if any).
    fn keeps(&self, v: &JobView, commit: Option<&str>) -> bool {
        let job = v.job.as_ref();
        let on_job = |f: &dyn Fn(&Job) -> bool| job.is_some_and(f);
        commit.is_none_or(|c| on_job(&|j| j.commit == c))
            && self.state.as_ref().is_none_or(|s| v.state.as_str() == s)
            && self.branch.as_ref().is_none_or(|b| on_job(&|j| j.branch() == b || &j.git_ref == b))
            && self.job.as_ref().is_none_or(|n| on_job(&|j| &j.spec.name == n || &j.label() == n))
            && self.project.as_ref().is_none_or(|p| on_job(&|j| &j.project == p))
            && self.worker.as_ref().is_none_or(|w| worker_of(v) == Some(w.as_str()))
            && self.since.is_none_or(|t| {
                on_job(&|j| git_ci_core::time::parse_rfc3339(&j.submitted_at).is_some_and(|at| at >= t))
            })
    }
}

fn worker_of(v: &JobView) -> Option<&str> {
    v.result.as_ref().map(|r| r.worker.as_str()).or(v.claim.as_ref().map(|c| c.worker.as_str()))
}

/// Says what matched nothing: "no jobs yet" on a hub with a thousand jobs
/// would send a reader looking for a broken setup.
fn nothing_matched(args: &StatusArgs, of_commit: bool) -> String {
    if !args.filtered() && !of_commit {
        return "no jobs yet: `git ci submit` queues some, `git ci run` runs them here".into();
    }
    let mut what = Vec::new();
    if let Some(rev) = &args.rev {
        what.push(format!("of {rev}"));
    }
    for (flag, value) in [
        ("--state", &args.state),
        ("--branch", &args.branch),
        ("--job", &args.job),
        ("--worker", &args.worker),
        ("--project", &args.project),
    ] {
        if let Some(v) = value {
            what.push(format!("{flag} {v}"));
        }
    }
    if let Some(t) = args.since {
        what.push(format!("--since {}", git_ci_core::time::rfc3339(t)));
    }
    format!("no job matches {}; `git ci status` alone lists every job", what.join(", "))
}

/// `2h` (ago) or a date: the start of a `--since` window.
fn parse_since(s: &str) -> Result<std::time::SystemTime, String> {
    if let Ok(ago) = git_ci_core::time::parse_duration(s) {
        return std::time::SystemTime::now().checked_sub(ago).ok_or_else(|| format!("{s:?} reaches before 1970"));
    }
    let stamp = if s.len() == 10 { format!("{s}T00:00:00Z") } else { s.to_owned() };
    git_ci_core::time::parse_rfc3339(&stamp)
        .ok_or_else(|| format!("invalid time {s:?}: give an age (\"2h\", \"3d\") or a date (\"2026-11-01\")"))
}

pub fn summary_json(v: &JobView) -> serde_json::Value {
    let job = v.job.as_ref();
    let mut doc = serde_json::json!({
        "id": v.id,
        "project": job.map(|j| j.project.clone()),
        "name": job.map(|j| j.spec.name.clone()),
        "label": job.map(Job::label),
        "state": v.state.as_str(),
        "queue": job.map(|j| j.spec.queue.clone()),
        "commit": job.map(|j| j.commit.clone()),
        "ref": job.map(|j| j.git_ref.clone()),
        "attempt": v.result.as_ref().map(|r| r.attempt).or(v.claim.as_ref().map(|c| c.attempt)).or(job.map(|j| j.attempt)),
        "worker": v.result.as_ref().map(|r| r.worker.clone()).or(v.claim.as_ref().map(|c| c.worker.clone())),
        "duration_ms": v.result.as_ref().map(|r| r.duration_ms),
        "submitted_at": job.map(|j| j.submitted_at.clone()),
    });
    // Pipeline fields only when set, like job.json.
    if let (Some(j), Some(obj)) = (job, doc.as_object_mut()) {
        if !j.spec.matrix.is_empty() {
            obj.insert("matrix".into(), serde_json::to_value(&j.spec.matrix).expect("plain data"));
        }
        if let Some(r) = j.repeat {
            obj.insert("repeat".into(), serde_json::to_value(r).expect("plain data"));
        }
        if let Some(from) = &j.config_from {
            obj.insert("config_from".into(), from.clone().into());
        }
        if v.parked {
            obj.insert("parked".into(), true.into());
        }
        if !v.waiting_for.is_empty() {
            obj.insert("waiting_for".into(), serde_json::to_value(&v.waiting_for).expect("plain data"));
        }
    }
    doc
}

/// A line of the table: a job, or the title of a repeated job's runs.
enum Line<'a> {
    Job(&'a JobView),
    Title(String),
}

fn print_table(ui: &Ui, views: &[JobView], fleet: Option<&LiveWorkers>) {
    let mut lines = Vec::new();
    for entry in repeats::group(views) {
        match entry {
            Entry::One(v) => lines.push(Line::Job(v)),
            Entry::Runs(runs) => {
                lines.push(Line::Title(format!("{}: {}", runs.title(), runs.summary())));
                lines.extend(runs.failing_first().into_iter().map(Line::Job));
            }
        }
    }
    let projects: std::collections::HashSet<&str> =
        views.iter().filter_map(|v| v.job.as_ref()).map(|j| j.project.as_str()).collect();
    let rows: Vec<Option<[String; 6]>> = lines
        .iter()
        .map(|line| match line {
            Line::Job(v) => Some(row(v, fleet, projects.len() > 1)),
            Line::Title(_) => None,
        })
        .collect();
    let width = |i: usize| rows.iter().flatten().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let (w1, w2, w3, w4) = (width(1), width(2), width(3), width(4));
    for (line, row) in lines.iter().zip(&rows) {
        match (line, row) {
            (Line::Job(v), Some(row)) => {
                let state = format!("{}{}", ui.state(v.state), " ".repeat(w1 - row[1].len()));
                let w2 = w2 + row[2].len() - row[2].chars().count();
                let text = format!("{}  {state}  {:w2$}  {:w3$}  {:w4$}  {}", row[0], row[2], row[3], row[4], row[5]);
                ui.out(text.trim_end());
            }
            (Line::Title(title), _) => ui.out(title),
            _ => {}
        }
    }
}

/// With `projects`, branches read `project/branch`: the same branch name
/// of two repositories are two rows apart.
fn row(v: &JobView, fleet: Option<&LiveWorkers>, projects: bool) -> [String; 6] {
    let job = v.job.as_ref();
    let mut when = match &v.result {
        Some(r) => git_ci_core::time::human_duration(std::time::Duration::from_millis(r.duration_ms)),
        None => job.map_or(String::new(), |j| ui::age(&j.submitted_at)),
    };
    if let Some(needs) = v.waits_for() {
        when.push_str(&format!(", waits for {needs}"));
    } else if v.parked {
        when.push_str(", parked in backlog");
    } else if let (Some(fleet), Some(job), State::Pending) = (fleet, job, v.state)
        && let Some(why) = fleet.why_unserved(job)
    {
        when.push_str(&format!(", {why}"));
    }
    [
        v.id.to_string(),
        v.state.as_str().to_owned(),
        job.map_or("?".into(), Job::label),
        job.map_or(String::new(), |j| {
            if projects && !j.project.is_empty() {
                format!("{}/{}", j.project, j.branch())
            } else {
                j.branch().to_owned()
            }
        }),
        job.map_or(String::new(), |j| j.short_commit().to_owned()),
        when,
    ]
}
