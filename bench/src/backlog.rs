//! Group 8, a backlog of pending jobs (after an outage, say): every pending
//! job is a queue ref and a pin ref, and every push advertises every ref.
//! A worker's round (poll, claim, complete) on a hub with many pending jobs
//! against the same round on a hub with one, loose refs and packed.

use std::fs::File;
use std::process::Stdio;
use std::time::{Duration, Instant};

use git_ci_core::hub::Hub;
use git_ci_core::queue::Snapshot;
use git_ci_core::refs;

use crate::Ctx;
use crate::fixture::{Res, git, git_cmd};
use crate::measure::{self, Samples};
use crate::proto::{self, Queued, Writer, submit_one};
use crate::report::{Goal, Row};

pub fn run(ctx: &Ctx) -> Res<Vec<Row>> {
    let n = ctx.sizes.backlog;
    let (empty, full) = ("backlog-0.git", "backlog-full.git");
    ctx.fx.hub(empty)?;
    let full_path = ctx.fx.hub(full)?;
    let started = Instant::now();
    let mut backlog = fill(ctx, &full_path, n)?;
    eprintln!("  queued {n} pending jobs in {:.1} s", started.elapsed().as_secs_f64());
    for hub in [empty, full] {
        git(&ctx.fx.hub_path(hub), &["repack", "-a", "-d", "-q"])?;
    }
    let runs = ctx.sizes.runs.min(15);
    let mut rows = Vec::new();
    for refs_are in ["loose", "packed"] {
        if refs_are == "packed" {
            for hub in [empty, full] {
                git(&ctx.fx.hub_path(hub), &["pack-refs", "--all"])?;
            }
        }
        let local = [ctx.fx.local(&ctx.fx.hub_path(empty))?, ctx.fx.local(&full_path)?];
        let what = format!("local hub, {n} pending, {refs_are} refs");
        let (ours, floor) = compare(ctx, [&local[0], &local[1]], &mut backlog, runs * 2, &what)?;
        rows.push(row(what, &ours, &floor));
        let remote = [ctx.fx.remote(empty, "bench")?, ctx.fx.remote(full, "bench")?];
        let what = format!("git daemon, {n} pending, {refs_are} refs");
        let (ours, floor) = compare(ctx, [&remote[0], &remote[1]], &mut backlog, runs, &what)?;
        rows.push(row(what, &ours, &floor));
    }
    Ok(rows)
}

fn row(what: String, ours: &Samples, floor: &Samples) -> Row {
    let name = format!("poll+claim+complete, {what} (floor: 1 pending)");
    Row::timed(name, ours, floor, Goal::None)
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
    backlog: &mut Vec<Queued>,
    runs: usize,
    what: &str,
) -> Res<(Samples, Samples)> {
    let [empty, full] = hubs;
    let writer: String = what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let mut on_empty = Writer::new(&format!("{writer}-floor"));
    let mut on_full = Writer::new(&writer);
    measure::pair(
        runs,
        || {
            let q = backlog.pop().ok_or("the backlog ran out of jobs")?;
            round(full, &mut on_full, &q)
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
