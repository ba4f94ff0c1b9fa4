//! Group 4, throughput: workers on threads draining no-op jobs that were
//! all submitted up front in one `queue::submit`.

use std::path::PathBuf;
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
        let goal = if workers == 2 { Goal::RateAtLeast(150.0) } else { Goal::None };
        let drained = drain_median(ctx, Transport::Local, workers, 1, ctx.sizes.tput_local, reps(ctx, &goal))?;
        let name = format!("throughput, {workers} local worker(s), {} jobs", ctx.sizes.tput_local);
        rows.push(drained.row(name, local_floor, goal, "serial sh -c true + 2a floor"));
    }
    // Over git daemon a round trip costs more than a job: a worker with
    // several slots claims and completes several jobs per push.
    let remote_floor = 1000.0 / floors.remote_claim;
    for (workers, slots) in [(1, 1), (4, 1), (4, 4), (16, 1)] {
        let name =
            format!("throughput, {workers} git daemon worker(s) × {slots} slot(s), {} jobs", ctx.sizes.tput_remote);
        if (workers, slots) == (4, 4) {
            rows.push(beside_its_floor(ctx, name, workers, slots, 2.0)?);
            continue;
        }
        let drained = drain(ctx, Transport::Daemon, workers, slots, ctx.sizes.tput_remote, 0, Poll::Fixed)?;
        rows.push(drained.row(name, remote_floor, Goal::None, "serial bare claim pushes (2b)"));
    }
    rows.extend(net(ctx)?);
    Ok(rows)
}

/// Issue 18 goal 4, with `git ci worker`'s default settings: 2 workers of
/// one slot drain at least as fast as serial bare claim pushes measured
/// just before, and 16 workers no slower than 4. Drains of 4 and of 16
/// alternate, three of each but with `--quick`: this VM's CPU comes and
/// goes by more than the difference measured, so the row compares their
/// medians.
fn net(ctx: &Ctx) -> Res<Vec<Row>> {
    let jobs = ctx.sizes.tput_net;
    let name = |w: usize| format!("throughput, {w} git daemon worker(s) × 1 slot, {jobs} jobs, default settings");
    let mut rows = vec![beside_its_floor(ctx, name(2), 2, 1, 1.0)?];
    let claim_floor = 1000.0 / crate::claim::claim_push_ms(ctx, "net-4", ctx.sizes.runs.min(20))?;
    let reps = if ctx.sizes.runs < 10 { 1 } else { 3 };
    let (mut fours, mut sixteens) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        fours.push(drain(ctx, Transport::Daemon, 4, 1, jobs, rep, Poll::Default)?);
        sixteens.push(drain(ctx, Transport::Daemon, 16, 1, jobs, rep, Poll::Default)?);
    }
    let (four, sixteen) = (median(fours), median(sixteens));
    rows.push(four.row(name(4), claim_floor, Goal::None, "serial bare claim pushes just before"));
    let floor = four.rate();
    rows.push(sixteen.row(
        name(16),
        floor,
        Goal::RateAtLeast(floor),
        "the median rate of 4 workers, drained in turn with these; goal: no slower",
    ));
    Ok(rows)
}

/// The median drain of several, which keeps every rate for its row.
fn median(mut all: Vec<Drained>) -> Drained {
    all.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    let rates: Vec<f64> = all.iter().map(Drained::rate).collect();
    let mut median = all.swap_remove(rates.len() / 2);
    median.rates = if rates.len() > 1 { rates } else { vec![] };
    median
}

/// The goal row over git daemon: each drain right after a floor of its
/// own (serial bare claim pushes), so that the ratio compares figures
/// taken within seconds of each other; the median ratio of three. The
/// goal: `times` the floor. The 4 × 4 row keeps its fixed poll; the others
/// run with the worker's default settings.
fn beside_its_floor(ctx: &Ctx, name: String, workers: usize, slots: usize, times: f64) -> Res<Row> {
    let (jobs, poll) =
        if slots == 1 { (ctx.sizes.tput_net, Poll::Default) } else { (ctx.sizes.tput_remote, Poll::Fixed) };
    let runs = if ctx.sizes.runs < 10 { 1 } else { 3 };
    let mut pairs = Vec::new();
    for r in 0..runs {
        let floor =
            1000.0 / crate::claim::claim_push_ms(ctx, &format!("tput-{workers}x{slots}-{r}"), ctx.sizes.runs.min(20))?;
        let drained = drain(ctx, Transport::Daemon, workers, slots, jobs, r, poll)?;
        pairs.push((drained.rate() / floor, floor, drained));
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let ratios: Vec<String> = pairs.iter().map(|(ratio, _, _)| format!("{ratio:.2}×")).collect();
    let (_, floor, drained) = pairs.swap_remove(runs / 2);
    let row = drained.row(
        name,
        floor,
        Goal::RateAtLeast(times * floor),
        &format!("serial bare claim pushes just before; goal {times}× that"),
    );
    Ok(if runs > 1 {
        row.detail(format!("median of {runs} drains, each beside its floor: {}", ratios.join(", ")))
    } else {
        row
    })
}

/// How a remote worker polls: every [`REMOTE_POLL`] (the older rows), or
/// as `git ci worker` does by default.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Poll {
    Fixed,
    Default,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Transport {
    Local,
    Daemon,
}

/// Drains per figure: a drain takes seconds and this VM's disk and CPU
/// come and go, so the rows held to a goal take the median of three.
fn reps(ctx: &Ctx, goal: &Goal) -> usize {
    if matches!(goal, Goal::None) || ctx.sizes.runs < 10 { 1 } else { 3 }
}

struct Drained {
    jobs: usize,
    elapsed: Duration,
    summaries: Vec<Summary>,
    incidents: Vec<String>,
    /// Every drain's rate when there were several; this one is their median.
    rates: Vec<f64>,
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
        if self.rates.len() > 1 {
            let rates: Vec<String> = self.rates.iter().map(|r| format!("{r:.1}")).collect();
            row = row.detail(format!("median of {} drains at {} jobs/s", rates.len(), rates.join(", ")));
        }
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

/// [`drain`] `reps` times, each on a fresh hub: the median drain.
fn drain_median(ctx: &Ctx, transport: Transport, count: usize, slots: usize, jobs: usize, reps: usize) -> Res<Drained> {
    let all = (0..reps).map(|r| drain(ctx, transport, count, slots, jobs, r, Poll::Fixed)).collect::<Res<Vec<_>>>()?;
    Ok(median(all))
}

fn drain(
    ctx: &Ctx,
    transport: Transport,
    count: usize,
    slots: usize,
    jobs: usize,
    rep: usize,
    poll: Poll,
) -> Res<Drained> {
    let kind = if transport == Transport::Local { "local" } else { "remote" };
    let settings = if poll == Poll::Default { "-default" } else { "" };
    let tag = format!("tput-{kind}-{count}x{slots}-{jobs}{settings}-{rep}");
    let path = ctx.fx.hub(&format!("{tag}.git"))?;
    let hubs = (0..count).map(|i| worker_hub(ctx, transport, &tag, i)).collect::<Res<Vec<_>>>()?;
    let batch: Vec<_> = (0..jobs).map(|_| proto::job(&ctx.fx.commit)).collect();
    let submitter = ctx.fx.local(&path)?;
    queue::submit(&submitter, &batch)?;
    let every = if transport == Transport::Local { Duration::from_secs(2) } else { REMOTE_POLL };
    let (tx, rx) = mpsc::channel();
    let incidents = workers::Incidents::default();
    let start = Instant::now();
    let mut spawned = Vec::new();
    for (i, hub) in hubs.into_iter().enumerate() {
        let name = format!("{tag}-w{i}");
        let mut cfg = workers::config(&name, ctx.fx.work_dir(&name)?, every, true);
        cfg.jobs = slots;
        if poll == Poll::Default {
            let defaults = git_ci_core::worker::Config::new(&name, PathBuf::new());
            (cfg.poll, cfg.poll_max) = (defaults.poll, defaults.poll_max);
        }
        spawned.push(workers::spawn(hub, cfg, tx.clone(), &incidents)?);
    }
    drop(tx);
    let published = workers::wait_count(&rx, jobs, start + DRAIN_DEADLINE);
    let elapsed = start.elapsed();
    // `once` workers exit by themselves when the queue is empty; the drain
    // matters only when something failed or the deadline passed.
    let summaries = workers::stop(spawned)?;
    match published? {
        n if n == jobs => Ok(Drained { jobs, elapsed, summaries, incidents: incidents.take(), rates: vec![] }),
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
