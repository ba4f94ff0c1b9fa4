//! Group 3, end-to-end latency of a no-op job: from just before
//! `queue::submit` to the worker's `Published` event, one job at a time;
//! then the same through the `git-ci` binary ([`crate::cli`]).

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use git_ci_core::hub::{Hub, RemoteHub};
use git_ci_core::queue;
use git_ci_core::worker::Config;
use git_ci_testkit::http::HttpHub;

use crate::Ctx;
use crate::claim::ClaimFloors;
use crate::fixture::Res;
use crate::measure::{self, Samples};
use crate::proto::{self, Floor, Target};
use crate::report::{Goal, Row, Value};
use crate::workers::{self, Published};

/// A no-op job that takes longer than this is a failure, not a figure.
const JOB_DEADLINE: Duration = Duration::from_secs(30);

/// How often the remote worker looks at the hub: it has no way to be told.
pub const REMOTE_POLL: Duration = Duration::from_millis(50);

pub fn run(ctx: &Ctx, floors: &ClaimFloors) -> Res<Vec<Row>> {
    let daemon = Via::Daemon;
    let mut rows =
        vec![local(ctx, floors)?, remote(ctx, Settings::Fixed, &daemon)?, remote(ctx, Settings::Default, &daemon)?];
    rows.extend(over_http(ctx)?);
    rows.extend(crate::cli::end_to_end(ctx)?);
    Ok(rows)
}

/// How the remote rows reach their hubs.
enum Via<'a> {
    Daemon,
    /// Smart HTTP: lighttpd running `git http-backend`.
    Http(&'a HttpHub),
}

impl Via<'_> {
    fn url(&self, ctx: &Ctx, hub: &str) -> String {
        match self {
            Via::Daemon => ctx.fx.url(hub),
            Via::Http(server) => server.url(hub),
        }
    }
}

/// The default-settings row over smart HTTP (issue 18 goal 2), when
/// lighttpd is installed.
fn over_http(ctx: &Ctx) -> Res<Vec<Row>> {
    if git_ci_testkit::http::lighttpd_binary().is_none() {
        eprintln!("  skipped: no lighttpd for the smart HTTP row (Debian: lighttpd)");
        return Ok(vec![]);
    }
    let exec_path = crate::fixture::git(ctx.fx.root(), &["--exec-path"])?;
    let hubs = ctx.fx.root().join("hubs");
    // The CGI gets no user or system git config of this machine's.
    let env = [("GIT_CONFIG_NOSYSTEM", "1"), ("GIT_CONFIG_GLOBAL", "/dev/null")].map(|(k, v)| (k.into(), v.into()));
    let server = HttpHub::start(&ctx.fx.root().join("http"), &hubs, std::path::Path::new(exec_path.trim()), &env)?;
    Ok(vec![remote(ctx, Settings::Default, &Via::Http(&server))?])
}

/// The remote worker's polls: every [`REMOTE_POLL`], or `git ci worker`'s
/// defaults (issue 18 goal 2: within 3× the floor).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Settings {
    Fixed,
    Default,
}

fn local(ctx: &Ctx, floors: &ClaimFloors) -> Res<Row> {
    let path = ctx.fx.hub("e2e-local.git")?;
    let worker_hub: Arc<dyn Hub> = Arc::new(ctx.fx.local(&path)?);
    let cfg = workers::config("e2e-local", ctx.fx.work_dir("e2e-local")?, Duration::from_secs(2), false);
    let submitter = ctx.fx.local(&path)?;
    let (ours, sh) = latency(ctx, worker_hub, cfg, &submitter, ctx.sizes.e2e_local, &mut proto::sh_true)?;
    let name = "end-to-end no-op job, local hub (floor: sh -c true + 2a floor)";
    Ok(row(name, &ours, &sh, floors.local, Goal::MsAtMost(12.0)))
}

/// Over git daemon the floor is every git step a job's trip needs, bare:
/// the submit push, one fetch to see it, the claim and complete pushes,
/// and `sh -c true`, timed one after the other beside each of ours.
fn remote(ctx: &Ctx, settings: Settings, via: &Via) -> Res<Row> {
    let tag = match (settings, via) {
        (Settings::Fixed, Via::Daemon) => "e2e-remote",
        (Settings::Default, Via::Daemon) => "e2e-remote-default",
        (_, Via::Http(_)) => "e2e-http-default",
    };
    let name = &format!("{tag}.git");
    ctx.fx.hub(name)?;
    // Not seeded with the commit: the worker fetches its pin once, during
    // the warm-up, like a worker meeting a new commit.
    let worker_hub: Arc<dyn Hub> = Arc::new(RemoteHub::open(&via.url(ctx, name), None, &format!("{tag}-worker"))?);
    let mut cfg = workers::config(tag, ctx.fx.work_dir(tag)?, REMOTE_POLL, false);
    if settings == Settings::Default {
        let defaults = Config::new(tag, std::path::PathBuf::new());
        (cfg.poll, cfg.poll_max) = (defaults.poll, defaults.poll_max);
    }
    let submitter = ctx.fx.remote_at(&via.url(ctx, name), "bench")?;
    // The floor's own hub: our worker would take the jobs its submits queue.
    let floor_name = &format!("{tag}-floor.git");
    let floor_path = ctx.fx.hub(floor_name)?;
    let target = Target::Url { url: via.url(ctx, floor_name), client: ctx.fx.client(&format!("{tag}-client.git"))? };
    let mut floor = Floor::new(target, &floor_path)?;
    let mut bare_trip = || -> Res<Duration> {
        let t = floor.submit(&ctx.fx.commit)? + floor.fetch()?;
        let cc = floor.claim_complete(&ctx.fx.commit)?;
        Ok(t + cc.claim + cc.complete + proto::sh_true()?)
    };
    let (ours, bare) = latency(ctx, worker_hub, cfg, &submitter, ctx.sizes.e2e_remote, &mut bare_trip)?;
    let floor_is = "(floor: submit + fetch + 2b floor + sh -c true)";
    Ok(match settings {
        Settings::Fixed => {
            let label = format!(
                "end-to-end no-op job, git daemon, worker polls every {} ms {floor_is}",
                REMOTE_POLL.as_millis()
            );
            Row::timed(label, &ours, &bare, Goal::RatioAtMost(1.5))
        }
        Settings::Default => {
            let over = match via {
                Via::Daemon => "git daemon",
                Via::Http(_) => "smart HTTP (lighttpd + git http-backend)",
            };
            let label = format!("end-to-end no-op job, {over}, default worker settings {floor_is}");
            Row::timed(label, &ours, &bare, Goal::RatioAtMost(3.0))
        }
    })
}

fn row(name: &str, ours: &Samples, sh: &Samples, claim_floor_ms: f64, goal: Goal) -> Row {
    let floor = sh.median_ms() + claim_floor_ms;
    Row::new(name, Value::Ms(ours.median_ms()), Some(Value::Ms(floor)), goal)
        .detail(format!("ours {}", ours.spread()))
        .detail(format!("sh -c true {}", sh.spread()))
        .detail(format!("claim+complete floor {claim_floor_ms:.2} ms"))
}

/// Runs one worker and times `n` jobs through it, interleaved with runs
/// of `floor`.
fn latency(
    ctx: &Ctx,
    worker_hub: Arc<dyn Hub>,
    cfg: Config,
    submitter: &dyn Hub,
    n: usize,
    floor: &mut dyn FnMut() -> Res<Duration>,
) -> Res<(Samples, Samples)> {
    let (tx, rx) = mpsc::channel();
    let incidents = workers::Incidents::default();
    let worker = workers::spawn(worker_hub, cfg, tx, &incidents)?;
    let measured = measure::pair(n, || one_job(ctx, submitter, &rx), floor);
    // Stop the worker whatever happened, then report the first failure.
    let stopped = workers::stop(vec![worker]);
    let samples = measured?;
    stopped?;
    if let Some(first) = incidents.take().first() {
        return Err(format!("a lone worker should meet no trouble, but: {first}").into());
    }
    Ok(samples)
}

fn one_job(ctx: &Ctx, submitter: &dyn Hub, rx: &Receiver<Published>) -> Res<Duration> {
    let job = proto::job(&ctx.fx.commit);
    let start = Instant::now();
    queue::submit(submitter, std::slice::from_ref(&job))?;
    workers::wait_for(rx, &job.id, start + JOB_DEADLINE)?;
    Ok(start.elapsed())
}
