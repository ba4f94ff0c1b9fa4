//! Group 9, pipelines: queueing a 200-job matrix (one transaction) against
//! one job, and what `needs` adds between a job's publish and the start of
//! the job waiting for it.

use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git_ci_core::hub::{Hub, RemoteHub};
use git_ci_core::pipeline::Pipeline;
use git_ci_core::worker::{Event, Worker};
use git_ci_core::{Job, JobId, queue};

use crate::Ctx;
use crate::e2e::REMOTE_POLL;
use crate::fixture::Res;
use crate::measure::{self, Samples, time};
use crate::proto::{self, Floor, Target, clear_ci_refs};
use crate::report::{Goal, Row, Value};
use crate::workers;

const MATRIX: &str = r#"
[job.test]
run = "true"
matrix = { a = ["0","1","2","3","4","5","6","7","8","9"], b = ["0","1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19"] }
"#;

const CHAIN: &str = r#"
[job.build]
run = "true"

[job.test]
needs = ["build"]
run = "true"
"#;

pub fn run(ctx: &Ctx) -> Res<Vec<Row>> {
    let local_path = ctx.fx.hub("pipe-local.git")?;
    let local = ctx.fx.local(&local_path)?;
    let remote_name = "pipe-remote.git";
    let remote_path = ctx.fx.hub(remote_name)?;
    let remote = ctx.fx.remote(remote_name, "bench")?;
    let mut rows = vec![
        matrix_row(ctx, &local, &ctx.fx.local(&local_path)?, "local hub")?,
        matrix_row(ctx, &remote, &ctx.fx.local(&remote_path)?, "git daemon")?,
    ];
    rows.push(needs_local(ctx)?);
    rows.push(needs_remote(ctx)?);
    Ok(rows)
}

/// The jobs of `text` for the fixture's commit, as `git ci submit` makes them.
fn pipeline(ctx: &Ctx, text: &str) -> Res<Vec<Job>> {
    let p = Pipeline::parse(text, "bench.toml")?;
    let bind = |spec| Job::unsealed(spec, &ctx.fx.commit.commit, &ctx.fx.commit.tree, "refs/heads/main", "bench");
    Ok(p.jobs(&[], 1, &bind)?)
}

fn matrix_row(ctx: &Ctx, hub: &dyn Hub, on_disk: &git_ci_core::hub::LocalHub, hub_kind: &str) -> Res<Row> {
    let (many, one) = measure::pair(
        ctx.sizes.runs,
        || {
            clear_ci_refs(on_disk)?;
            let jobs = pipeline(ctx, MATRIX)?;
            let (d, r) = time(|| queue::submit(hub, &jobs));
            r?;
            Ok(d)
        },
        || {
            clear_ci_refs(on_disk)?;
            let job = proto::job(&ctx.fx.commit);
            let (d, r) = time(|| queue::submit(hub, &[job]));
            r?;
            Ok(d)
        },
    )?;
    clear_ci_refs(on_disk)?;
    let name = format!("submit a 10×20 matrix, 200 jobs in one transaction, {hub_kind} (floor: submit 1 job)");
    Ok(Row::timed(name, &many, &one, Goal::None))
}

/// When each job was claimed and published, by the worker's own events.
type Seen = Arc<Mutex<Vec<(JobId, bool, Instant)>>>;

fn spawn(hub: Arc<dyn Hub>, cfg: git_ci_core::worker::Config, seen: &Seen) -> Res<(Worker, Receiver<()>)> {
    let (tx, rx) = mpsc::channel();
    let seen = Arc::clone(seen);
    let worker = Worker::new(hub, cfg, move |e| {
        let at = Instant::now();
        let mark = match e {
            Event::Claimed { job, .. } => Some((job.id.clone(), false)),
            Event::Published { result, .. } => Some((result.id.clone(), true)),
            _ => None,
        };
        if let (Some((id, published)), Ok(mut v)) = (mark, seen.lock()) {
            v.push((id, published, at));
            let _ = tx.send(());
        }
    });
    Ok((worker, rx))
}

/// From build's publish to test's claim, `n` pipelines one after another.
fn needs_latency(
    ctx: &Ctx,
    worker_hub: Arc<dyn Hub>,
    poll: Duration,
    submitter: &dyn Hub,
    n: usize,
    name: &str,
) -> Res<Samples> {
    let seen: Seen = Arc::default();
    let cfg = workers::config(name, ctx.fx.work_dir(name)?, poll, false);
    let (worker, rx) = spawn(worker_hub, cfg, &seen)?;
    let controller = worker.controller();
    let thread = std::thread::spawn(move || worker.run());
    let mut samples = Vec::with_capacity(n);
    let result = (|| -> Res<()> {
        for _ in 0..n + 1 {
            let jobs = pipeline(ctx, CHAIN)?;
            queue::submit(submitter, &jobs)?;
            let deadline = Instant::now() + Duration::from_secs(30);
            let when = |id: &JobId, published: bool| {
                seen.lock().ok()?.iter().find(|(i, p, _)| i == id && *p == published).map(|(_, _, at)| *at)
            };
            loop {
                if let (Some(out), Some(started)) = (when(&jobs[0].id, true), when(&jobs[1].id, false)) {
                    samples.push(started.saturating_duration_since(out));
                    break;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err("a two-job pipeline did not run in 30 s".into());
                }
                let _ = rx.recv_timeout(left);
            }
            // Its test's publish, before the next pipeline.
            while when(&jobs[1].id, true).is_none() {
                rx.recv_timeout(Duration::from_secs(30)).map_err(|_| "test was not published")?;
            }
        }
        Ok(())
    })();
    controller.send(git_ci_core::worker::Control::Drain);
    let _ = thread.join();
    result?;
    // The first pipeline warms the worker up (its first fetch of the commit).
    samples.remove(0);
    Ok(Samples::new(samples))
}

fn needs_local(ctx: &Ctx) -> Res<Row> {
    let path = ctx.fx.hub("needs-local.git")?;
    let hub: Arc<dyn Hub> = Arc::new(ctx.fx.local(&path)?);
    let submitter = ctx.fx.local(&path)?;
    // A poll far longer than the goal: the worker must be woken by the
    // hub's ref change, not find the job on its next poll.
    let ours = needs_latency(ctx, hub, Duration::from_secs(2), &submitter, ctx.sizes.e2e_local, "needs-local")?;
    Ok(Row::new(
        "needs: build published → test claimed, local hub, worker polls every 2 s",
        Value::Ms(ours.median_ms()),
        None,
        Goal::MsAtMost(20.0),
    )
    .detail(format!("ours {}", ours.spread())))
}

/// Over git daemon the worker learns of the move by polling: the floor is
/// one poll interval and one bare fetch, timed beside.
fn needs_remote(ctx: &Ctx) -> Res<Row> {
    let name = "needs-remote.git";
    ctx.fx.hub(name)?;
    let hub: Arc<dyn Hub> = Arc::new(RemoteHub::open(&ctx.fx.url(name), None, "needs-remote-worker")?);
    let submitter = ctx.fx.remote(name, "bench")?;
    let ours = needs_latency(ctx, hub, REMOTE_POLL, &submitter, ctx.sizes.e2e_remote, "needs-remote")?;
    let floor_name = "needs-remote-floor.git";
    let floor_path = ctx.fx.hub(floor_name)?;
    let floor = Floor::new(
        Target::Url { url: ctx.fx.url(floor_name), client: ctx.fx.client("needs-floor.git")? },
        &floor_path,
    )?;
    let fetches: Vec<Duration> = (0..ctx.sizes.runs).map(|_| floor.fetch()).collect::<Res<_>>()?;
    let fetch = Samples::new(fetches);
    let floor_ms = REMOTE_POLL.as_secs_f64() * 1000.0 + fetch.median_ms();
    let label = format!(
        "needs: build published → test claimed, git daemon, worker polls every {} ms (floor: one poll + one fetch)",
        REMOTE_POLL.as_millis()
    );
    Ok(Row::new(label, Value::Ms(ours.median_ms()), Some(Value::Ms(floor_ms)), Goal::RatioAtMost(2.0))
        .detail(format!("ours {}", ours.spread()))
        .detail(format!("fetch {}", fetch.spread())))
}
