//! Group 4, throughput: workers on threads draining no-op jobs that were
//! all submitted up front in one `queue::submit`.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use git_ci_core::hub::{Hub, RemoteHub};
use git_ci_core::worker::Summary;
use git_ci_core::{queue, refs};

use crate::Ctx;
use crate::claim::ClaimFloors;
use crate::e2e::REMOTE_POLL;
use crate::fixture::Res;
use crate::measure::{self, Step};
use crate::proto;
use crate::report::{Goal, Row, Value};
use crate::workers;

/// Draining a few hundred no-op jobs taking longer than this is a failure.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

pub fn run(ctx: &Ctx, floors: &ClaimFloors) -> Res<Vec<Row>> {
    // One serial bare-git pipeline: claim, run, complete.
    let mut sh: [Step<'_>; 1] = [Box::new(proto::sh_true)];
    let sh_ms = measure::interleave(ctx.sizes.runs, &mut sh)?.remove(0).median_ms();
    let local_floor = 1000.0 / (sh_ms + floors.local);
    let mut rows = Vec::new();
    for workers in [1, 2, 4, 16] {
        let drained = drain(ctx, Transport::Local, workers, 1, ctx.sizes.tput_local)?;
        let goal = if workers == 2 { Goal::RateAtLeast(150.0) } else { Goal::None };
        let name = format!("throughput, {workers} local worker(s), {} jobs", ctx.sizes.tput_local);
        rows.push(drained.row(name, local_floor, goal, "serial sh -c true + 2a floor"));
    }
    // Over git daemon a round trip costs more than a job: a worker with
    // several slots claims and completes several jobs per push.
    let remote_floor = 1000.0 / floors.remote_claim;
    for (workers, slots) in [(1, 1), (4, 1), (4, 4), (16, 1)] {
        let drained = drain(ctx, Transport::Daemon, workers, slots, ctx.sizes.tput_remote)?;
        let goal = if (workers, slots) == (4, 4) { Goal::RateAtLeast(2.0 * remote_floor) } else { Goal::None };
        let name =
            format!("throughput, {workers} git daemon worker(s) × {slots} slot(s), {} jobs", ctx.sizes.tput_remote);
        rows.push(drained.row(name, remote_floor, goal, "serial bare claim pushes (2b); goal 2× that"));
    }
    Ok(rows)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Local,
    Daemon,
}

struct Drained {
    jobs: usize,
    elapsed: Duration,
    summaries: Vec<Summary>,
    incidents: Vec<String>,
}

impl Drained {
    fn rate(&self) -> f64 {
        self.jobs as f64 / self.elapsed.as_secs_f64()
    }

    fn row(&self, name: String, floor: f64, goal: Goal, floor_is: &str) -> Row {
        let (claims, lost) = totals(&self.summaries);
        let per_claim = lost as f64 / claims.max(1) as f64;
        let name = format!("{name} (lost races/claim {per_claim:.2})");
        let mut row = Row::new(name, Value::PerSec(self.rate()), Some(Value::PerSec(floor)), goal)
            .detail(format!(
                "{} jobs in {:.2} s, {claims} claims, {lost} lost races",
                self.jobs,
                self.elapsed.as_secs_f64()
            ))
            .detail(format!("floor: {floor_is}"));
        if !self.incidents.is_empty() {
            row = row.detail(format!("{} incident(s), first: {}", self.incidents.len(), self.incidents[0]));
        }
        row
    }
}

/// Claims and lost races over all workers.
fn totals(summaries: &[Summary]) -> (usize, usize) {
    (summaries.iter().map(|s| s.claims).sum(), summaries.iter().map(|s| s.lost_races).sum())
}

fn drain(ctx: &Ctx, transport: Transport, count: usize, slots: usize, jobs: usize) -> Res<Drained> {
    let tag = format!("tput-{}-{count}x{slots}", if transport == Transport::Local { "local" } else { "remote" });
    let path = ctx.fx.hub(&format!("{tag}.git"))?;
    let hubs = (0..count).map(|i| worker_hub(ctx, transport, &tag, i)).collect::<Res<Vec<_>>>()?;
    let batch: Vec<_> = (0..jobs).map(|_| proto::job(&ctx.fx.commit)).collect();
    let submitter = ctx.fx.local(&path)?;
    queue::submit(&submitter, &batch)?;
    let poll = if transport == Transport::Local { Duration::from_secs(2) } else { REMOTE_POLL };
    let (tx, rx) = mpsc::channel();
    let incidents = workers::Incidents::default();
    let start = Instant::now();
    let mut spawned = Vec::new();
    for (i, hub) in hubs.into_iter().enumerate() {
        let name = format!("{tag}-w{i}");
        let cfg =
            git_ci_core::worker::Config { jobs: slots, ..workers::config(&name, ctx.fx.work_dir(&name)?, poll, true) };
        spawned.push(workers::spawn(hub, cfg, tx.clone(), &incidents)?);
    }
    drop(tx);
    let published = workers::wait_count(&rx, jobs, start + DRAIN_DEADLINE);
    let elapsed = start.elapsed();
    // `once` workers exit by themselves when the queue is empty; the drain
    // matters only when something failed or the deadline passed.
    let summaries = workers::stop(spawned)?;
    match published? {
        n if n == jobs => Ok(Drained { jobs, elapsed, summaries, incidents: incidents.take() }),
        n => Err(undrained(&tag, n, jobs, elapsed, &summaries, &incidents.take(), &submitter).into()),
    }
}

/// Everything known about a drain that did not finish, for the error.
fn undrained(
    tag: &str,
    published: usize,
    jobs: usize,
    elapsed: Duration,
    summaries: &[Summary],
    incidents: &[String],
    hub: &dyn Hub,
) -> String {
    let left = |prefix| hub.list(prefix).map_or_else(|e| e.to_string(), |v| v.len().to_string());
    let mut msg = format!(
        "{tag}: {published} of {jobs} jobs published in {:.1} s, then the workers stopped or the deadline \
         ({DRAIN_DEADLINE:?}) passed; the hub still has {} queue refs and {} claims; worker summaries: {summaries:?}",
        elapsed.as_secs_f64(),
        left(refs::QUEUE),
        left(refs::CLAIMS),
    );
    for i in incidents.iter().take(10) {
        msg.push_str("\n  ");
        msg.push_str(i);
    }
    msg
}

/// Each worker opens its own hub, as separate worker processes would; a
/// remote worker's cache already holds the commit (a warm worker).
fn worker_hub(ctx: &Ctx, transport: Transport, tag: &str, i: usize) -> Res<Arc<dyn Hub>> {
    let hub = format!("{tag}.git");
    Ok(match transport {
        Transport::Local => Arc::new(ctx.fx.local(&ctx.fx.hub_path(&hub))?),
        Transport::Daemon => {
            let remote: RemoteHub = ctx.fx.remote(&hub, &format!("{tag}-w{i}"))?;
            Arc::new(remote)
        }
    })
}
