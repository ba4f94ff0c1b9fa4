//! Group 8, a backlog of pending jobs (after an outage, say). Every push
//! is answered with the hub's whole ref list, so pending jobs that are two
//! refs each (a queue ref and a pin: the old layout, kept as its own rows)
//! make every worker's every push slower; a real `submit` now parks all
//! but the first few of a queue in one backlog ref (`git_ci_core::backlog`).
//! A worker's round (poll, claim, complete, and a promotion out of the
//! backlog when the queue runs low, as a worker does) on each full hub
//! against the same round on a hub with one pending job, loose refs and
//! packed, local and over `git daemon`.

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use git_ci_core::backlog;
use git_ci_core::hub::Hub;
use git_ci_core::queue::{self, Snapshot};
use git_ci_core::refs;

use crate::Ctx;
use crate::fixture::{Res, git, git_cmd};
use crate::measure::{self, Samples};
use crate::proto::{self, Queued, Writer, submit_one};
use crate::report::{Goal, Row};

/// How the full hub holds its pending jobs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// A queue ref and a pin per job: hubs of git-ci before backlogs.
    PerJob,
    /// As `git ci submit` queues them now: parked in a backlog ref.
    Parked,
}

pub fn run(ctx: &Ctx) -> Res<Vec<Row>> {
    let n = ctx.sizes.backlog;
    let (empty, old, new) = ("backlog-0.git", "backlog-per-job.git", "backlog-parked.git");
    ctx.fx.hub(empty)?;
    let old_path = ctx.fx.hub(old)?;
    let new_path = ctx.fx.hub(new)?;
    let started = Instant::now();
    let mut per_job = fill(ctx, &old_path, n)?;
    eprintln!("  queued {n} pending jobs a ref and a pin each in {:.1} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    submit(ctx, &new_path, n)?;
    let refs = git(&new_path, &["for-each-ref", "refs/ci/"])?.lines().count();
    eprintln!(
        "  submitted {n} pending jobs as `git ci submit` does in {:.1} s: {refs} refs",
        started.elapsed().as_secs_f64()
    );
    for hub in [empty, old, new] {
        git(&ctx.fx.hub_path(hub), &["repack", "-a", "-d", "-q"])?;
    }
    let runs = ctx.sizes.runs.min(15);
    let mut rows = Vec::new();
    for refs_are in ["loose", "packed"] {
        if refs_are == "packed" {
            for hub in [empty, old, new] {
                git(&ctx.fx.hub_path(hub), &["pack-refs", "--all"])?;
            }
        }
        for (layout, full, name) in [(Layout::PerJob, old, "a ref and a pin per job"), (Layout::Parked, new, "parked")]
        {
            let local = [ctx.fx.local(&ctx.fx.hub_path(empty))?, ctx.fx.local(&ctx.fx.hub_path(full))?];
            let what = format!("local hub, {n} pending ({name}), {refs_are} refs");
            let (ours, floor) = compare(ctx, [&local[0], &local[1]], layout, &mut per_job, runs * 2, &what)?;
            rows.push(row(what, &ours, &floor, layout));
            let remote = [ctx.fx.remote(empty, "bench")?, ctx.fx.remote(full, "bench")?];
            // The first fetch of a backlog brings its documents once: not a round.
            Snapshot::read(&remote[1], &[])?;
            let what = format!("git daemon, {n} pending ({name}), {refs_are} refs");
            let (ours, floor) = compare(ctx, [&remote[0], &remote[1]], layout, &mut per_job, runs, &what)?;
            rows.push(row(what, &ours, &floor, layout));
        }
    }
    Ok(rows)
}

/// Queues `n` no-op jobs through `queue::submit`, as `git ci submit` does:
/// all but the first few parked.
fn submit(ctx: &Ctx, hub_path: &std::path::Path, n: usize) -> Res<()> {
    let hub = ctx.fx.local(hub_path)?;
    let jobs: Vec<_> = (0..n).map(|_| proto::job(&ctx.fx.commit)).collect();
    let after = backlog::park_after()?;
    (&hub as &dyn Hub).transact(&queue::submit_parking_edits(&hub, &jobs, after)?)?;
    Ok(())
}

fn row(what: String, ours: &Samples, floor: &Samples, layout: Layout) -> Row {
    let name = format!("poll+claim+complete, {what} (floor: 1 pending)");
    // Issue 18, goal 5: a backlog costs a round at most twice an empty queue.
    let goal = if layout == Layout::Parked { Goal::RatioAtMost(2.0) } else { Goal::None };
    Row::timed(name, ours, floor, goal)
}

/// Queues `n` no-op jobs in one `update-ref --stdin` transaction (a queue
/// ref and a pin each), their blobs written first; returns them oldest
/// first, as a worker would take them.
fn fill(ctx: &Ctx, hub_path: &std::path::Path, n: usize) -> Res<Vec<Queued>> {
    let hub = ctx.fx.local(hub_path)?;
    let hub: &dyn Hub = &hub;
    let mut jobs = Vec::with_capacity(n);
    let mut input = String::from("start\n");
    for _ in 0..n {
        let job = proto::job(&ctx.fx.commit);
        let blob = hub.write_blob(&job.to_json())?;
        input.push_str(&format!("create {} {blob}\n", refs::queue(&job.spec.queue, &job.id)));
        input.push_str(&format!("create {} {}\n", refs::pin(&job.id), job.commit));
        jobs.push(Queued { commit: proto::oid(&job.commit)?, job, blob });
    }
    input.push_str("commit\n");
    let file = ctx.fx.root().join("backlog.txt");
    std::fs::write(&file, input)?;
    let status = git_cmd(hub_path)
        .args(["update-ref", "--stdin"])
        .stdin(File::open(&file)?)
        .stderr(Stdio::inherit())
        .status()?;
    if !status.success() {
        return Err(format!("git update-ref --stdin: {status}").into());
    }
    // Oldest first: the ids sort by time, and the last made is the newest.
    jobs.reverse();
    Ok(jobs)
}

/// A worker's round on each hub, alternately: refresh the live refs, then
/// claim and complete the job it would pick. Each call writes new chains,
/// named after `what`.
fn compare(
    ctx: &Ctx,
    hubs: [&dyn Hub; 2],
    layout: Layout,
    per_job: &mut Vec<Queued>,
    runs: usize,
    what: &str,
) -> Res<(Samples, Samples)> {
    let [empty, full] = hubs;
    let writer: String = what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let mut on_empty = Writer::new(&format!("{writer}-floor"));
    let mut on_full = Writer::new(&writer);
    measure::pair(
        runs,
        || match layout {
            Layout::PerJob => {
                let q = per_job.pop().ok_or("the backlog ran out of jobs")?;
                round(full, &mut on_full, &q)
            }
            Layout::Parked => parked_round(full, &mut on_full),
        },
        || {
            let q = submit_one(empty, &ctx.fx.commit)?;
            round(empty, &mut on_empty, &q)
        },
    )
}

fn round(hub: &dyn Hub, writer: &mut Writer, q: &Queued) -> Res<Duration> {
    let started = Instant::now();
    let snap = Snapshot::read(hub, &[])?;
    if !snap.queued.iter().any(|s| s.id == q.job.id) {
        return Err(format!("{} is not queued", q.job.id).into());
    }
    writer.claim_complete(hub, q)?;
    Ok(started.elapsed())
}

/// A worker's round on a hub whose backlog is parked: the poll, a
/// promotion when fewer jobs than a 1-slot worker's low-water mark are
/// queued (with the poll after it), then the claim and complete of the
/// oldest queued job.
fn parked_round(hub: &dyn Hub, writer: &mut Writer) -> Res<Duration> {
    let started = Instant::now();
    let mut snap = Snapshot::read(hub, &[])?;
    if snap.queued.len() < backlog::low_water(1) && !snap.backlogs.is_empty() {
        backlog::promote(hub, &snap, backlog::PROMOTE_AT_MOST, |_| true)?;
        snap = Snapshot::read(hub, &[])?;
    }
    let oldest = snap.queued.iter().min_by(|a, b| a.id.cmp(&b.id)).ok_or("no job is queued")?;
    let (job, _) = oldest.read_job(hub).map_err(|(e, _)| e)?;
    let q = Queued { commit: proto::oid(&job.commit)?, job, blob: oldest.value };
    writer.claim_complete(hub, &q)?;
    Ok(started.elapsed())
}
