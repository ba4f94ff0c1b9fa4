//! git-ci-bench: git-ci's costs beside their floors, measured in one run.
//!
//! Each figure is printed next to its floor, the bare git work the same
//! operation needs, measured in the same run on the same hubs: on a shared
//! 2-core machine milliseconds drift from run to run, ratios hold. Everything
//! runs against bare hubs in a temporary directory and one `git daemon` on
//! 127.0.0.1, bounded in count and time.

mod backlog;
mod claim;
mod cli;
mod e2e;
mod fixture;
mod guard;
mod history;
mod idle;
mod measure;
mod opts;
mod pipelines;
mod proto;
mod report;
mod sandbox;
mod site;
mod submit;
mod throughput;
mod workers;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};
use std::time::Instant;

use fixture::{Fixture, Res};
use opts::{Opts, Sizes, USAGE};
use report::Row;

/// Set in the re-executed child, whose environment is hermetic.
const HERMETIC: &str = "GIT_CI_BENCH_HERMETIC";

fn main() -> ExitCode {
    if std::env::var_os(HERMETIC).is_none() {
        return reexec();
    }
    let opts = match Opts::parse(std::env::args().skip(1)) {
        Ok(Some(opts)) => opts,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprint!("git-ci-bench: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("git-ci-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs this program again in a hermetic environment and passes its exit
/// code on. git must not read the user's configuration, and git-ci-core
/// takes its cache directory from the environment, which a process cannot
/// change for itself without `unsafe` (forbidden here): its children can be
/// given one.
fn reexec() -> ExitCode {
    // Errors in the arguments are the child's to report.
    let dir = Opts::parse(std::env::args().skip(1)).ok().flatten().and_then(|o| o.dir);
    let mut builder = tempfile::Builder::new();
    builder.prefix("git-ci-bench-cache-");
    let cache = match &dir {
        Some(dir) => builder.tempdir_in(dir),
        None => builder.tempdir(),
    };
    let spawned = cache.and_then(|cache| {
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_else(|| OsString::from("git-ci-bench"));
        Command::new(std::env::current_exe()?)
            .arg0(argv0)
            .args(args)
            .env(HERMETIC, "1")
            .env("GIT_CI_CACHE_DIR", cache.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
    });
    match spawned {
        Ok(status) => ExitCode::from(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
        Err(e) => {
            eprintln!("git-ci-bench: could not re-run itself: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What every benchmark group works with.
pub struct Ctx {
    pub fx: Fixture,
    pub sizes: Sizes,
}

fn run(opts: &Opts) -> Res<()> {
    let started = Instant::now();
    let sizes = Sizes::new(opts);
    println!("# git-ci-bench\n");
    println!("- machine: {}", machine()?);
    println!("- command: `{}`", std::env::args().collect::<Vec<_>>().join(" "));
    println!("- sizes: {sizes:?}");
    let ctx = Ctx { fx: Fixture::new(opts.dir.as_deref())?, sizes };
    println!("- files under: {}", ctx.fx.root().display());
    println!("- load average at start: {}\n", load_average());
    let rows = run_groups(&ctx, opts)?;
    print!("{}", report::table(&rows));
    let took = started.elapsed().as_secs_f64();
    let missed = report::missed(&rows);
    println!("\n{missed} goal(s) missed; total time {took:.1} s; load average at the end: {}.\n", load_average());
    println!("{NOTES}");
    println!("Sample spreads:\n\n{}", report::details(&rows));
    if let Some(path) = &opts.json {
        let json: Vec<_> = rows.iter().map(Row::json).collect();
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)?;
    }
    Ok(())
}

/// The groups asked for, in order; 3 and 4 build on 2's floors.
fn run_groups(ctx: &Ctx, opts: &Opts) -> Res<Vec<Row>> {
    let mut rows = Vec::new();
    if opts.wants(1) {
        rows.extend(stage("1/10 submit", || submit::run(ctx))?);
    }
    if opts.wants(2) || opts.wants(3) || opts.wants(4) {
        let (claim_rows, floors) = stage("2/10 claim+complete", || claim::run(ctx))?;
        rows.extend(claim_rows);
        if opts.wants(3) {
            rows.extend(stage("3/10 end-to-end latency", || e2e::run(ctx, &floors))?);
            rows.push(stage("3/10 idle workers' requests", || idle::run(ctx))?);
        }
        if opts.wants(4) {
            rows.extend(stage("4/10 throughput", || throughput::run(ctx, &floors))?);
        }
    }
    if opts.wants(5) {
        rows.extend(stage("5/10 finished results", || history::run(ctx))?);
    }
    if opts.wants(6) {
        rows.extend(stage("6/10 report site", || site::run(ctx))?);
    }
    if opts.wants(7) {
        rows.extend(stage("7/10 hub guard", || guard::run(ctx))?);
    }
    if opts.wants(8) {
        rows.extend(stage("8/10 pending backlog", || backlog::run(ctx))?);
    }
    if opts.wants(9) {
        rows.extend(stage("9/10 pipelines", || pipelines::run(ctx))?);
    }
    if opts.wants(10) {
        rows.extend(stage("10/10 sandbox", || sandbox::run(ctx))?);
    }
    Ok(rows)
}

const NOTES: &str = "\
Notes:
- ratio = ours / floor (for jobs/s, higher is better). Floors write their
  objects untimed beforehand; ours writes them in-process, timed.
- End-to-end times start before the submit, so ours includes it. On a
  local hub the floor is sh -c true + the claim+complete floor; over git
  daemon it is every bare step of the trip, timed beside ours: the submit
  push, one fetch, the claim and complete pushes and sh -c true.
- The remote worker cannot be told of new jobs over git://: it polls, 50 ms
  after its last fetch ended, so remote end-to-end also includes about half
  a poll period and a fetch.
- Old results are spread over 50 days, 500 per done commit, published
  through the rolling chain a worker uses, in a scratch hub (on /dev/shm
  when there is one) and fetched into the measured hub as one pack; both
  hubs of that group are repacked before measuring.
- Local figures are mostly file creations (loose objects, ref locks,
  checkouts), so they follow the disk; --dir /dev/shm takes it out.
";

/// Runs one group, telling stderr how long it took.
fn stage<T>(label: &str, f: impl FnOnce() -> Res<T>) -> Res<T> {
    eprintln!("[{label}] ...");
    let start = Instant::now();
    let out = f().map_err(|e| format!("{label}: {e}"))?;
    eprintln!("[{label}] done in {:.1} s", start.elapsed().as_secs_f64());
    Ok(out)
}

/// The 1, 5 and 15 minute load averages: others' work skews figures.
fn load_average() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    avg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// `2 cores, Linux 6.1.0, git version 2.47.3`.
fn machine() -> Res<String> {
    let out = |prog: &str, args: &[&str]| -> Res<String> {
        let o = Command::new(prog).args(args).output().map_err(|e| format!("could not run {prog}: {e}"))?;
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    Ok(format!("{} cores (nproc), {}, {}", out("nproc", &[])?, out("uname", &["-sr"])?, out("git", &["--version"])?))
}
