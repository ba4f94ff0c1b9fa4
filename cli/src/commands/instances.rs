//! `git ci instances` and `git ci stop-instance`: the live instances of
//! `serve = true` jobs, read from the registrations of live workers, and
//! a request to stop one (`refs/ci/stop/<job-id>`, which its worker acts on).

use std::time::{Duration, Instant};

use clap::Args;
use git_ci_core::instances::{self, LiveInstance, LiveInstances};

use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::{Ui, age};

/// List the live instances of `serve = true` jobs, one per job and branch.
///
/// Each is a service a worker keeps running for the newest commit of its
/// branch, read from the registrations of live workers.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  git ci instances\n  git ci instances --json")]
pub struct InstancesArgs {
    /// One JSON array: id, job, ref, commit, url, since, worker.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Stop a branch's live instances (of every `serve` job, or of one).
///
/// The request goes through the hub; the worker running an instance stops
/// its service (SIGTERM, a grace period, SIGKILL) at its next look, within
/// a few seconds, and this waits until its registration no longer lists it.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  git ci stop-instance feature/login\n  git ci stop-instance main --job preview")]
pub struct StopInstanceArgs {
    /// The branch (`main`, or `refs/heads/main`); `PROJECT/BRANCH` picks one
    /// project's when the hub serves several.
    pub branch: String,
    /// Only the instance of this job (its name in .git-ci.toml).
    #[arg(long, value_name = "NAME")]
    pub job: Option<String>,
    /// Ask, and return without waiting for the worker to stop it.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// How long `stop-instance` waits for the workers to drop the instances.
const STOP_WAIT: Duration = Duration::from_secs(120);

pub fn cmd_instances(ui: &Ui, args: InstancesArgs) -> CliResult {
    let repo = context::user_repo();
    let hub = context::hub(args.hub.hub.as_deref(), repo.as_ref(), "client")?;
    let live = LiveInstances::read(&*hub)?;
    if args.json {
        ui.out(&serde_json::to_string_pretty(&live.0).expect("plain data"));
        return Ok(());
    }
    if live.0.is_empty() {
        ui.err("no live instances (a job with `serve = true` in .git-ci.toml starts one)");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = live.0.iter().map(row).collect();
    let header = ["BRANCH", "JOB", "COMMIT", "URL", "WORKER", "SINCE"].map(String::from);
    let widths: Vec<usize> =
        (0..6).map(|i| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0)).collect();
    for r in [&header].into_iter().chain(&rows) {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        ui.out(cells.join("  ").trim_end());
    }
    Ok(())
}

fn row(l: &LiveInstance) -> [String; 6] {
    let i = &l.info;
    [
        i.place(),
        i.job.clone(),
        i.commit[..i.commit.len().min(10)].to_owned(),
        i.url.clone(),
        l.worker.clone(),
        age(&i.since),
    ]
}

pub fn cmd_stop_instance(ui: &Ui, args: StopInstanceArgs) -> CliResult {
    let repo = context::user_repo();
    let by = context::actor(repo.as_ref());
    let hub = context::hub(args.hub.hub.as_deref(), repo.as_ref(), "client")?;
    let live = LiveInstances::read(&*hub)?;
    let targets: Vec<LiveInstance> = live.of_branch(&args.branch, args.job.as_deref()).cloned().collect();
    if targets.is_empty() {
        let of = args.job.as_ref().map(|j| format!(" of job {j}")).unwrap_or_default();
        return Err(CliError::usage_hint(
            format!("no live instance{of} on branch {}", args.branch),
            "`git ci instances` lists them",
        ));
    }
    // Requests left by workers that died before acting on them go first.
    instances::forget_stale_requests(&*hub, &live)?;
    for t in &targets {
        let fresh = instances::request_stop(&*hub, &t.info.id, &by)?;
        let asked = if fresh { "asked" } else { "already asked" };
        ui.err(&format!(
            "{asked} {} to stop {} ({} on {}, job {})",
            t.worker,
            t.info.url,
            t.info.job,
            t.info.place(),
            t.info.id
        ));
    }
    if args.no_wait {
        return Ok(());
    }
    let until = Instant::now() + STOP_WAIT;
    loop {
        let now = LiveInstances::read(&*hub)?;
        let left: Vec<&LiveInstance> =
            now.0.iter().filter(|l| targets.iter().any(|t| t.info.id == l.info.id)).collect();
        if left.is_empty() {
            ui.err("stopped");
            return Ok(());
        }
        if Instant::now() >= until {
            let urls: Vec<&str> = left.iter().map(|l| l.info.url.as_str()).collect();
            return Err(CliError::Internal(format!(
                "still listed after {}s: {} (is its worker stuck? `git ci doctor` says)",
                STOP_WAIT.as_secs(),
                urls.join(", ")
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
