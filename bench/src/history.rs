//! Group 5, what finished jobs cost the live protocol: a poll
//! (`Snapshot::read`) and a claim+complete on a hub whose `done` chains
//! hold many results, against the same on a hub with none. DESIGN.md
//! promises both flat.
//!
//! The old results are written the way a worker publishes them, through
//! [`Chain`], so the writer's chain rolls them into its archive every
//! [`ROLL_AT`] results as a worker's would; the roll itself, the one
//! publish in [`ROLL_AT`] that pays for the archive, has a row of its own.

use std::time::{Duration, SystemTime};

use git_ci_core::chain::{Chain, ROLL_AT};
use git_ci_core::done::{self, Entry};
use git_ci_core::hub::{Hub, LocalHub};
use git_ci_core::queue::Snapshot;
use git_ci_core::{JobId, refs};

use crate::Ctx;
use crate::fixture::{Commit, Res, git};
use crate::measure::{self, Samples, Step, time};
use crate::proto::{self, Writer, submit_one};
use crate::report::{Goal, Row};

/// The writer whose chain holds the old results.
const FILLER: &str = "bench-filler";
/// Results per `done` commit while filling: a few commits, not thousands.
const BATCH: usize = 500;
/// The old results are spread over this many days, as history would be.
const DAYS: usize = 50;
const FLAT: Goal = Goal::RatioAtMost(1.1);

pub fn run(ctx: &Ctx) -> Res<Vec<Row>> {
    let mut rows = Vec::new();
    for n in ctx.sizes.results_at() {
        // The floor's hub is made beside the full one, each time: on this
        // VM's ext4 a file's cost depends on how many files were deleted
        // near it lately (see `fill_by_fetch`), so two hubs made minutes
        // apart differ by more than their histories do.
        let empty = format!("history-0-for-{n}.git");
        ctx.fx.hub(&empty)?;
        let empty = empty.as_str();
        let full = format!("history-{n}.git");
        let full_path = ctx.fx.hub(&full)?;
        let (took, filled) = time(|| fill_by_fetch(&full_path, &ctx.fx.commit, n));
        filled?;
        eprintln!("  filled {n} results in {:.1} s", took.as_secs_f64());
        // A hub is packed in real life; loose objects would also set off
        // `gc --auto` in the background of the first push, mid-measurement.
        git(&full_path, &["repack", "-a", "-d", "-q"])?;
        git(&ctx.fx.hub_path(empty), &["repack", "-a", "-d", "-q"])?;
        let local = [ctx.fx.local(&ctx.fx.hub_path(empty))?, ctx.fx.local(&full_path)?];
        let (local_rows, local_floor) = measure_hubs(ctx, "local hub", n, [&local[0], &local[1]], ctx.sizes.runs * 4)?;
        let remote = [ctx.fx.remote(empty, "bench")?, ctx.fx.remote(&full, "bench")?];
        let (remote_rows, remote_floor) = measure_hubs(ctx, "git daemon", n, [&remote[0], &remote[1]], ctx.sizes.runs)?;
        rows.extend(local_rows);
        rows.extend(remote_rows);
        rows.push(rolls(ctx, "local hub", n, 0, &local[1], &local[1], &local_floor)?);
        rows.push(rolls(ctx, "git daemon", n, 1 << 20, &local[1], &remote[1], &remote_floor)?);
    }
    Ok(rows)
}

/// Fills `hub` with `results` old results written in a scratch hub and
/// fetched over as one pack, as a hub's history arrives over the years.
///
/// Why not write them in place: 100k results are ~400k loose objects,
/// and the repack that follows deletes them all, which makes every later
/// file on this VM's disk dearer (see [`git_ci_site::bench::measure`]): the
/// rows measured that, not history.
fn fill_by_fetch(hub: &std::path::Path, commit: &Commit, results: usize) -> Res<()> {
    let scratch = git_ci_site::bench::scratch_dir("git-ci-bench-fill-")?;
    let scratch_hub = scratch.path().join("hub.git");
    crate::fixture::init_bare(&scratch_hub)?;
    fill(&LocalHub::open(&scratch_hub)?, commit, results)?;
    git(hub, &["fetch", "-q", &scratch_hub.display().to_string(), "+refs/ci/*:refs/ci/*"])?;
    Ok(())
}

/// Publishes `results` finished jobs in batches onto the filler's chain,
/// rolling as a worker does.
fn fill(hub: &dyn Hub, commit: &Commit, results: usize) -> Res<()> {
    let tip = hub.get(&refs::done(FILLER))?;
    fill_onto(hub, &mut Chain::new(FILLER, tip), commit, 0..results, results)
}

/// Publishes the `range`th of `n` old results onto `chain`, [`BATCH`] a commit.
fn fill_onto(hub: &dyn Hub, chain: &mut Chain, commit: &Commit, range: std::ops::Range<usize>, n: usize) -> Res<()> {
    let mut made = range.start;
    while made < range.end {
        let count = BATCH.min(range.end - made);
        let entries: Vec<Entry> = (made..made + count).map(|i| old_result(commit, i, n)).collect();
        let append = chain.append(hub, &entries.iter().collect::<Vec<_>>())?;
        hub.transact(&append.edits)?;
        chain.applied(&append);
        made += count;
    }
    Ok(())
}

/// The `i`th of `n` old results, on one of the last [`DAYS`] days, a day
/// at a time as history is written (each batch touches a day or two).
/// Results numbered past `n` (the top-ups before a roll) wrap around.
fn old_result(commit: &Commit, i: usize, n: usize) -> Entry {
    let mut job = proto::job(commit);
    let n = n.max(1);
    let day = SystemTime::now() - Duration::from_secs(86_400 * ((i % n) * DAYS / n) as u64);
    job.id = JobId::new(day, &i.to_le_bytes());
    proto::entry(&job, FILLER)
}

/// Poll and claim+complete rows for one transport: `[empty, full]` hubs;
/// also the claim+complete samples on the empty hub, the floor of a roll.
fn measure_hubs(
    ctx: &Ctx,
    transport: &str,
    n: usize,
    hubs: [&dyn Hub; 2],
    poll_runs: usize,
) -> Res<(Vec<Row>, Samples)> {
    let [empty, full] = hubs;
    let (full_read, empty_read) = measure::pair(poll_runs, || read(full), || read(empty))?;
    let [c_empty, c_other, c_own] = claims(ctx, &format!("{transport}-{n}"), empty, full)?;
    let rows = vec![
        Row::timed(
            format!("poll (Snapshot::read), {transport}, {n} results (floor: 0 results)"),
            &full_read,
            &empty_read,
            FLAT,
        ),
        Row::timed(
            format!("claim+complete, {transport}, {n} results in another chain (floor: 0 results)"),
            &c_other,
            &c_empty,
            FLAT,
        ),
        Row::timed(
            format!("claim+complete, {transport}, {n} results in the writer's own chain (floor: 0 results)"),
            &c_own,
            &c_empty,
            FLAT,
        ),
    ];
    Ok((rows, c_empty))
}

/// Samples of the publish that rolls: the filler's tip is topped up to
/// [`ROLL_AT`] results through `filler` (on disk, untimed), then one
/// claim+complete through `hub` moves them into an archive of about `n`.
/// The old results written are numbered from `n + first`.
fn rolls(
    ctx: &Ctx,
    transport: &str,
    n: usize,
    first: usize,
    filler: &dyn Hub,
    hub: &dyn Hub,
    floor: &Samples,
) -> Res<Row> {
    let runs = ctx.sizes.runs.div_ceil(6).max(2);
    let mut samples = Samples::default();
    // Old results numbered past the `n` filled first, and each
    // transport's apart: every job id once.
    let mut next = n + first;
    for _ in 0..runs {
        let tip = filler.get(&refs::done(FILLER))?.ok_or("the old results' chain is gone")?;
        let top_up = ROLL_AT.saturating_sub(done::count(filler, tip));
        fill_onto(filler, &mut Chain::new(FILLER, Some(tip)), &ctx.fx.commit, next..next + top_up, n)?;
        next += top_up;
        // The worker that wrote them has every object of its chains; so
        // does this one's cache after these untimed fetches.
        hub.refresh_ref(&format!("{}{FILLER}", refs::ARCHIVE))?;
        let mut owner = Writer::at(FILLER, hub.refresh_ref(&refs::done(FILLER))?);
        let q = submit_one(hub, &ctx.fx.commit)?;
        let (took, rolled) = time(|| owner.claim_complete(hub, &q));
        rolled?;
        samples.push(took);
    }
    let per_job = (samples.median_ms() - floor.median_ms()) / ROLL_AT as f64;
    Ok(Row::timed(
        format!("claim+complete that rolls {ROLL_AT} results into an archive of ~{n}, {transport} (floor: 0 results)"),
        &samples,
        floor,
        Goal::None,
    )
    .detail(format!("spread over the {ROLL_AT} publishes between rolls: {per_job:+.2} ms a job")))
}

fn read(hub: &dyn Hub) -> Res<Duration> {
    let (d, snap) = time(|| Snapshot::read(hub, &[]));
    snap?;
    Ok(d)
}

/// Claim+complete on the empty hub, on the full hub by a new writer, and
/// on the full hub by the writer of the old results, interleaved.
fn claims(ctx: &Ctx, transport: &str, empty: &dyn Hub, full: &dyn Hub) -> Res<[Samples; 3]> {
    let commit = &ctx.fx.commit;
    // Each transport writes its own new chains; the old results' chain is
    // shared, so take its tip as it is now (fetching it into a remote hub's
    // cache, as the worker that wrote it would have it).
    let fresh = format!("bench-{}", transport.replace(' ', "-"));
    let mut fresh_empty = Writer::new(&fresh);
    let mut fresh_full = Writer::new(&fresh);
    let tip = full.refresh_ref(&refs::done(FILLER))?.ok_or("the old results' chain is gone")?;
    let mut owner = Writer::at(FILLER, Some(tip));
    let mut steps: [Step<'_>; 3] = [
        Box::new(|| fresh_empty.claim_complete(empty, &submit_one(empty, commit)?)),
        Box::new(|| fresh_full.claim_complete(full, &submit_one(full, commit)?)),
        Box::new(|| owner.claim_complete(full, &submit_one(full, commit)?)),
    ];
    let mut out = measure::interleave(ctx.sizes.runs, &mut steps)?.into_iter();
    let mut next = || out.next().unwrap_or_default();
    Ok([next(), next(), next()])
}
