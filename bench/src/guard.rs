//! Group 7, the hub's guard: the same bare claim and complete pushes over
//! git daemon to two hubs set up by `git ci hooks install`, one of them
//! with its pre-receive guard removed, alternately. The guard runs in every push to a hub we
//! control, so its cost is a ratio to that push.

use std::path::{Path, PathBuf};

use crate::Ctx;
use crate::fixture::Res;
use crate::measure::{self, Samples};
use crate::proto::{Floor, FloorTimes, Target};
use crate::report::{Goal, Row};

pub fn run(ctx: &Ctx) -> Res<Vec<Row>> {
    let Some(exe) = git_ci_binary() else {
        eprintln!("  skipped: no git-ci binary beside git-ci-bench (build it with `cargo build --release -p git-ci`)");
        return Ok(vec![]);
    };
    let mut guarded = floor(ctx, "guard-on.git", &exe)?;
    let mut open = floor(ctx, "guard-off.git", &exe)?;
    // The same hub minus the guard: hooks install also sets durability
    // (fsync, fsck of pushed objects), which both must pay alike.
    std::fs::remove_file(ctx.fx.hub_path("guard-off.git").join("hooks").join(git_ci_hooks::install::GUARD_HOOK))?;
    let (mut on_complete, mut off_complete) = (Completes::default(), Completes::default());
    let (on_claim, off_claim) = measure::pair(
        ctx.sizes.runs,
        || timed(&mut guarded, ctx, &mut on_complete),
        || timed(&mut open, ctx, &mut off_complete),
    )?;
    let (on_complete, off_complete) = (on_complete.samples, off_complete.samples);
    Ok(vec![
        Row::timed(
            "claim push through the guard (floor: the same push, no guard)",
            &on_claim,
            &off_claim,
            Goal::RatioAtMost(1.15),
        ),
        Row::timed(
            "complete push through the guard (floor: the same push, no guard)",
            &on_complete,
            &off_complete,
            Goal::None,
        ),
    ])
}

/// A hub with `git ci hooks install`'s hooks and settings, and its floor.
fn floor(ctx: &Ctx, name: &str, exe: &Path) -> Res<Floor> {
    let path = ctx.fx.hub(name)?;
    git_ci_hooks::install::install(&path, exe)?;
    let client = ctx.fx.client(&format!("client-{name}"))?;
    Floor::new(Target::Url { url: ctx.fx.url(name), client }, &path)
}

/// The complete pushes' times, past the warm-up rounds `pair` skips.
#[derive(Default)]
struct Completes {
    rounds: usize,
    samples: Samples,
}

/// One claim and complete; returns the claim push's time and keeps the
/// complete's.
fn timed(floor: &mut Floor, ctx: &Ctx, completes: &mut Completes) -> Res<std::time::Duration> {
    let FloorTimes { claim, complete } = floor.claim_complete(&ctx.fx.commit)?;
    completes.rounds += 1;
    if completes.rounds > measure::WARMUP {
        completes.samples.push(complete);
    }
    Ok(claim)
}

/// The `git-ci` built beside this binary (both land in target/release).
pub fn git_ci_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let candidate = exe.parent().unwrap_or(Path::new(".")).join("git-ci");
    candidate.is_file().then_some(candidate)
}
