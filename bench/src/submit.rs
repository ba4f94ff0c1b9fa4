//! Group 1, submit: `queue::submit` of one job against the bare
//! transaction creating the same two refs; then many ad-hoc jobs through
//! `git ci submit --stdin` ([`crate::cli::batch`]).

use git_ci_core::{Hub, queue};

use crate::Ctx;
use crate::fixture::Res;
use crate::measure::{self, time};
use crate::proto::{Floor, Target, clear_ci_refs, job};
use crate::report::{Goal, Row};

pub fn run(ctx: &Ctx) -> Res<Vec<Row>> {
    let mut rows = vec![local(ctx)?, remote(ctx)?];
    let (rounds, singles) = if ctx.sizes.runs < 10 { (2, 10) } else { (10, 30) };
    rows.extend(crate::cli::batch(ctx, rounds, singles)?);
    Ok(rows)
}

fn local(ctx: &Ctx) -> Res<Row> {
    let path = ctx.fx.hub("submit-local.git")?;
    let hub = ctx.fx.local(&path)?;
    let floor = Floor::new(Target::Path(path.clone()), &path)?;
    compare(ctx, &hub, &floor, "submit 1 job, local hub (floor: update-ref --stdin, 2 creates)")
}

fn remote(ctx: &Ctx) -> Res<Row> {
    let name = "submit-remote.git";
    let path = ctx.fx.hub(name)?;
    let hub = ctx.fx.remote(name, "bench")?;
    let target = Target::Url { url: ctx.fx.url(name), client: ctx.fx.client("submit-floor.git")? };
    let floor = Floor::new(target, &path)?;
    compare(ctx, &hub, &floor, "submit 1 job, git daemon (floor: push --atomic, 2 refs)")
}

/// Our submit through `hub` against the floor's, alternately; both start
/// from a hub without refs/ci (the floor's hub is the same repository).
fn compare(ctx: &Ctx, hub: &dyn Hub, floor: &Floor, name: &str) -> Res<Row> {
    let (ours, bare) = measure::pair(
        ctx.sizes.runs,
        || {
            clear_ci_refs(floor.hub())?;
            let job = job(&ctx.fx.commit);
            let (d, r) = time(|| queue::submit(hub, &[job]));
            r?;
            Ok(d)
        },
        || {
            clear_ci_refs(floor.hub())?;
            floor.submit(&ctx.fx.commit)
        },
    )?;
    Ok(Row::timed(name, &ours, &bare, Goal::None))
}
