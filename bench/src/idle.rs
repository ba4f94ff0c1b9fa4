//! What idle workers cost the hub (issue 18 goal 2: faster pick-up must
//! not mean more load while nothing happens). Ten workers with nothing to
//! do, over a `git daemon` of their own that logs every request; the
//! requests it served in a window after the workers settled, beside ten
//! workers polling every 2 s (`git ci worker`'s default before adaptive
//! polling) on another hub of the same daemon, at the same time.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use git_ci_core::hub::{Hub, RemoteHub};
use git_ci_core::worker::Config;

use crate::Ctx;
use crate::fixture::Res;
use crate::report::{Goal, Row, Value};
use crate::workers;

const WORKERS: usize = 10;

/// Long enough for a worker that just started to back off to its idle
/// interval.
const SETTLE: Duration = Duration::from_secs(8);

pub fn run(ctx: &Ctx) -> Res<Row> {
    let window = if ctx.sizes.runs < 10 { Duration::from_secs(10) } else { Duration::from_secs(30) };
    let log = ctx.fx.root().join("counting-daemon.log");
    let daemon = ctx.fx.counting_daemon(&log)?;
    let (tx, _rx) = mpsc::channel();
    let incidents = workers::Incidents::default();
    let mut spawned = Vec::new();
    for (hub, defaults) in [("idle-old.git", false), ("idle-new.git", true)] {
        ctx.fx.hub(hub)?;
        for i in 0..WORKERS {
            let name = format!("{}-w{i}", hub.trim_end_matches(".git"));
            let remote: Arc<dyn Hub> = Arc::new(RemoteHub::open(&daemon.url(hub), None, &name)?);
            let mut cfg = workers::config(&name, ctx.fx.work_dir(&name)?, Duration::from_secs(2), false);
            if defaults {
                let d = Config::new(&name, std::path::PathBuf::new());
                (cfg.poll, cfg.poll_max) = (d.poll, d.poll_max);
            }
            spawned.push(workers::spawn(remote, cfg, tx.clone(), &incidents)?);
        }
    }
    std::thread::sleep(SETTLE);
    let before = [count(&log, "idle-old.git")?, count(&log, "idle-new.git")?];
    std::thread::sleep(window);
    let after = [count(&log, "idle-old.git")?, count(&log, "idle-new.git")?];
    workers::stop(spawned)?;
    drop(daemon);
    let rate = |i: usize| (after[i] - before[i]) as f64 / window.as_secs_f64();
    let row = Row::new(
        format!(
            "requests to the hub from {WORKERS} idle git daemon workers, default settings (floor: fixed 2 s polls)"
        ),
        Value::Requests(rate(1)),
        Some(Value::Requests(rate(0))),
        Goal::RatioAtMost(1.0),
    )
    .detail(format!(
        "{} and {} requests in {:.0} s after {:.0} s to settle",
        after[1] - before[1],
        after[0] - before[0],
        window.as_secs_f64(),
        SETTLE.as_secs_f64()
    ));
    Ok(match incidents.take().first() {
        Some(first) => row.detail(format!("incident: {first}")),
        None => row,
    })
}

/// Requests (fetches, ls-remotes and pushes) the daemon logged for `hub`.
fn count(log: &Path, hub: &str) -> Res<usize> {
    let text = std::fs::read_to_string(log)?;
    let wanted = format!("/{hub}'");
    Ok(text.lines().filter(|l| l.contains("Request ") && l.contains(&wanted)).count())
}
