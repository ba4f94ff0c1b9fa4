//! Group 6: the report site of a hub with many results, built from nothing
//! and then again after one more result (issue 5's goals).

use crate::Ctx;
use crate::fixture::Res;
use crate::report::{Goal, Row, Value};

pub fn run(ctx: &Ctx) -> Res<Vec<Row>> {
    let jobs = ctx.sizes.results;
    let dir = ctx.fx.root().join("site");
    std::fs::create_dir_all(&dir)?;
    let f = git_ci_site::bench::measure(&dir, jobs)?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    Ok(vec![
        Row::new(
            format!("site full build, {jobs} results, per job (floor: none)"),
            Value::Ms(ms(f.per_job_full())),
            None,
            Goal::MsAtMost(0.5),
        )
        .detail(format!("full build {:.0} ms in all", ms(f.full.elapsed))),
        Row::new(
            "site rebuild after one more result (floor: the full build)",
            Value::Ms(ms(f.rebuild.elapsed)),
            Some(Value::Ms(ms(f.full.elapsed))),
            Goal::RatioAtMost(0.02),
        ),
    ])
}
