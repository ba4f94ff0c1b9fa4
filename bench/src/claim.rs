//! Group 2, claim + complete of one queued job (not run): git-ci-core
//! against the two bare transactions the same work needs.

use git_ci_core::Hub;

use crate::Ctx;
use crate::fixture::Res;
use crate::measure::{self, Samples, WARMUP};
use crate::proto::{Floor, Target, Writer, submit_one};
use crate::report::{Goal, Row};

/// Floors measured here that later figures are built on (medians, ms).
#[derive(Clone, Copy, Debug, Default)]
pub struct ClaimFloors {
    pub local: f64,
    pub remote_claim: f64,
}

pub fn run(ctx: &Ctx) -> Res<(Vec<Row>, ClaimFloors)> {
    let (local_row, local) = local(ctx)?;
    let (remote_row, remote_claim) = remote(ctx)?;
    Ok((vec![local_row, remote_row], ClaimFloors { local, remote_claim }))
}

fn local(ctx: &Ctx) -> Res<(Row, f64)> {
    let path = ctx.fx.hub("claim-local.git")?;
    let hub = ctx.fx.local(&path)?;
    let floor = Floor::new(Target::Path(path.clone()), &path)?;
    let (ours, bare, _) = compare(ctx, &hub, floor)?;
    let name = "claim+complete, local hub (floor: 2 × update-ref --stdin)";
    Ok((Row::timed(name, &ours, &bare, Goal::None), bare.median_ms()))
}

fn remote(ctx: &Ctx) -> Res<(Row, f64)> {
    let name = "claim-remote.git";
    let path = ctx.fx.hub(name)?;
    let hub = ctx.fx.remote(name, "bench")?;
    let target = Target::Url { url: ctx.fx.url(name), client: ctx.fx.client("claim-floor.git")? };
    let (ours, bare, claims) = compare(ctx, &hub, Floor::new(target, &path)?)?;
    let row = Row::timed(
        "claim+complete, git daemon (floor: 2 × push --atomic with leases)",
        &ours,
        &bare,
        Goal::RatioAtMost(1.2),
    )
    .detail(format!("floor claim push alone {}", claims.spread()));
    Ok((row, claims.median_ms()))
}

/// The median of `runs` bare claim pushes (the 2b floor's claim alone) on a
/// fresh hub named after `tag`: for figures that need that floor measured
/// beside them rather than minutes earlier.
pub fn claim_push_ms(ctx: &Ctx, tag: &str, runs: usize) -> Res<f64> {
    let name = format!("claim-floor-{tag}.git");
    let path = ctx.fx.hub(&name)?;
    let target =
        Target::Url { url: ctx.fx.url(&name), client: ctx.fx.client(&format!("claim-floor-{tag}-client.git"))? };
    let mut floor = Floor::new(target, &path)?;
    let mut claims = Samples::default();
    for round in 0..runs + WARMUP {
        let t = floor.claim_complete(&ctx.fx.commit)?;
        if round >= WARMUP {
            claims.push(t.claim);
        }
    }
    Ok(claims.median_ms())
}

/// Ours and the floor alternately, one job each; also returns the floor's
/// claim transactions alone (after the warm-up).
fn compare(ctx: &Ctx, hub: &dyn Hub, mut floor: Floor) -> Res<(Samples, Samples, Samples)> {
    let mut writer = Writer::new("bench");
    let mut claims = Samples::default();
    let mut rounds = 0;
    let (ours, bare) = measure::pair(
        ctx.sizes.runs,
        || {
            let q = submit_one(hub, &ctx.fx.commit)?;
            writer.claim_complete(hub, &q)
        },
        || {
            let t = floor.claim_complete(&ctx.fx.commit)?;
            rounds += 1;
            if rounds > WARMUP {
                claims.push(t.claim);
            }
            Ok(t.claim + t.complete)
        },
    )?;
    Ok((ours, bare, claims))
}
