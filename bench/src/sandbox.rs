//! Group 10: what `git ci worker --sandbox` costs a job (issue 19): a no-op
//! job through the runner on the host and in bubblewrap, in the same run,
//! against the floors of a bare `sh -c true` and a bare `bwrap ... sh -c
//! true`; and a CPU-bound job both ways.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git_ci_core::mask::Masker;
use git_ci_core::runner::sandbox::{Bwrap, Executor, Host, SandboxConfig};
use git_ci_core::runner::{self, RunSpec};

use crate::Ctx;
use crate::fixture::Res;
use crate::measure::{Samples, Step, interleave};
use crate::report::{Goal, Row, Value};

/// About half a second of shell arithmetic: CPU, no I/O.
const CPU_BOUND: &str = "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done";

pub fn run(ctx: &Ctx) -> Res<Vec<Row>> {
    let dir = ctx.fx.root().join("sandbox");
    std::fs::create_dir_all(&dir)?;
    let bwrap: Arc<dyn Executor> =
        Arc::new(Bwrap::new(SandboxConfig::default()).map_err(|e| format!("{e}: {}", e.hint()))?);
    let host: Arc<dyn Executor> = Arc::new(Host);
    let job = |exec: &Arc<dyn Executor>, script: &'static str| -> Step<'_> {
        let (exec, dir) = (Arc::clone(exec), dir.clone());
        Box::new(move || timed_job(&exec, script, &dir))
    };
    let mut steps: Vec<Step<'_>> = vec![
        Box::new(|| bare(&mut Command::new("sh"))),
        Box::new(|| bare(Command::new("bwrap").args(BARE_BWRAP))),
        job(&host, "true"),
        job(&bwrap, "true"),
    ];
    let s = interleave(ctx.sizes.runs, &mut steps)?;
    let cpu_runs = (ctx.sizes.runs / 5).max(3);
    let mut cpu: Vec<Step<'_>> = vec![job(&host, CPU_BOUND), job(&bwrap, CPU_BOUND)];
    let c = interleave(cpu_runs, &mut cpu)?;
    Ok(rows(&s, &c))
}

/// The floor: the namespaces a sandbox needs, nothing else.
const BARE_BWRAP: &[&str] = &[
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--unshare-pid",
    "--unshare-net",
    "--die-with-parent",
    "sh",
];

fn bare(cmd: &mut Command) -> Res<Duration> {
    let t = Instant::now();
    let ok = cmd.args(["-c", "true"]).stdin(Stdio::null()).stdout(Stdio::null()).status()?.success();
    ok.then(|| t.elapsed()).ok_or_else(|| "a bare floor command failed".into())
}

fn timed_job(exec: &Arc<dyn Executor>, script: &str, dir: &std::path::Path) -> Res<Duration> {
    let spec = RunSpec {
        script: script.into(),
        dir: dir.to_path_buf(),
        env: vec![],
        timeout: Duration::from_secs(600),
        kill_grace: Duration::from_secs(1),
        log_path: dir.join("log"),
        log_cap: 1 << 20,
        masker: Masker::default(),
        executor: Arc::clone(exec),
        network: false,
    };
    let t = Instant::now();
    let out = runner::run(spec)?;
    if out.status != git_ci_core::model::Status::Passed {
        return Err(format!("the benchmark job did not pass: {:?}", out.reason).into());
    }
    Ok(t.elapsed())
}

fn rows(s: &[Samples], c: &[Samples]) -> Vec<Row> {
    let (sh, bw, plain, boxed) = (&s[0], &s[1], &s[2], &s[3]);
    let extra = bw.median_ms() - sh.median_ms();
    let floor = plain.median_ms() + extra;
    vec![
        Row::timed("bare bwrap sh -c true (floor: sh -c true)", bw, sh, Goal::None),
        Row::new(
            "sandboxed no-op job (floor: the no-op job + bare bwrap's extra)",
            Value::Ms(boxed.median_ms()),
            Some(Value::Ms(floor)),
            Goal::MsAtMost(((floor + 2.0) * 10.0).round() / 10.0),
        )
        .detail(format!("sandboxed {}; no-op job {}", boxed.spread(), plain.spread())),
        Row::timed("CPU-bound job, sandboxed (floor: the same on the host)", &c[1], &c[0], Goal::RatioAtMost(1.02)),
    ]
}
