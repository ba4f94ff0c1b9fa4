//! What a person feels: the `git-ci` binary itself, started once per
//! command, as `git ci submit --wait`, `git ci run` and `git ci submit
//! --stdin` are typed. Beside group 3's in-process figures these add the
//! process start, argument parsing, opening the user's repository and
//! everything the command does around the protocol.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Ctx;
use crate::fixture::{Res, git, write_commit};
use crate::measure::{self, Samples};
use crate::proto::{self, clear_ci_refs};
use crate::report::{Goal, Row, Value};

/// A user's clone with the bench commit at `main`, and the binary.
pub struct Cli {
    exe: PathBuf,
    repo: PathBuf,
}

impl Cli {
    /// `None` when no `git-ci` was built beside this binary.
    pub fn new(ctx: &Ctx, name: &str) -> Res<Option<Cli>> {
        let Some(exe) = crate::guard::git_ci_binary() else {
            eprintln!(
                "  skipped: no git-ci binary beside git-ci-bench (build it with `cargo build --release -p git-ci`)"
            );
            return Ok(None);
        };
        let repo = ctx.fx.root().join("clients").join(name);
        std::fs::create_dir_all(&repo)?;
        git(&repo, &["init", "-q", "-b", "main"])?;
        let written = write_commit(&repo.join(".git"))?;
        if written != ctx.fx.commit {
            return Err("the bench commit came out different in the user's clone".into());
        }
        Ok(Some(Cli { exe, repo }))
    }

    /// `git-ci ARGS` in the clone. The rest of the hermetic environment
    /// (no user config, git-ci's own cache dir) comes from `main`'s re-exec.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut ci = Command::new(&self.exe);
        ci.env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@localhost")
            .env("GIT_TERMINAL_PROMPT", "0")
            .current_dir(&self.repo)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        ci
    }

    /// Runs `git-ci ARGS` to completion, `input` on stdin; its wall time.
    pub fn timed(&self, args: &[&str], input: Option<&str>) -> Res<Duration> {
        let mut cmd = self.command(args);
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let start = Instant::now();
        let mut child = cmd.spawn()?;
        if let Some(input) = input {
            child.stdin.take().ok_or("no stdin")?.write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        let took = start.elapsed();
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr);
            return Err(format!("git-ci {} failed ({}): {}", args.join(" "), out.status, said.trim()).into());
        }
        Ok(took)
    }

    /// The floor of a command: starting the binary (`--version`) and `sh -c true`.
    fn start_floor(&self) -> Res<Duration> {
        Ok(self.timed(&["--version"], None)? + proto::sh_true()?)
    }
}

/// A `git-ci worker` process, killed when dropped.
struct WorkerProcess(Child);

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `git ci submit --run true --wait` against a local hub served by a
/// `git ci worker` process, and `git ci run --run true --force` (the
/// clone is its own hub).
pub fn end_to_end(ctx: &Ctx) -> Res<Vec<Row>> {
    let Some(cli) = Cli::new(ctx, "cli-user")? else { return Ok(vec![]) };
    let hub = ctx.fx.hub("cli-local.git")?;
    let hub_s = hub.display().to_string();
    let mut worker = cli.command(&["worker", "--hub", &hub_s, "--name", "bench-cli"]);
    let _worker = WorkerProcess(worker.stderr(Stdio::null()).spawn()?);
    let submit = ["submit", "--hub", &hub_s, "--run", "true", "--wait", "-q"];
    let (ours, floor) = measure::pair(ctx.sizes.runs, || cli.timed(&submit, None), || cli.start_floor())?;
    let run = ["run", "--run", "true", "--force", "-q"];
    let (run_ours, run_floor) = measure::pair(ctx.sizes.runs, || cli.timed(&run, None), || cli.start_floor())?;
    let mut rows = vec![
        row("`git ci submit --run true --wait`, local hub, a `git ci worker` running", &ours, &floor, 12.0),
        row("`git ci run --run true --force` (the clone is the hub)", &run_ours, &run_floor, 15.0),
    ];
    rows.push(remote_wait(ctx, &cli)?);
    rows.extend(ssh(ctx, &cli)?);
    Ok(rows)
}

/// `git ci submit --run true --wait` over git daemon, served by a `git ci
/// worker` with its default settings: what a person feels of a remote hub.
/// The floor is every git step of the job's trip, bare, as in group 3's
/// remote rows (the submit push, one fetch, the claim and complete pushes)
/// and the binary's start.
fn remote_wait(ctx: &Ctx, cli: &Cli) -> Res<Row> {
    let name = "cli-remote.git";
    ctx.fx.hub(name)?;
    let url = ctx.fx.url(name);
    let mut worker = cli.command(&["worker", "--hub", &url, "--name", "bench-cli-remote"]);
    let _worker = WorkerProcess(worker.stderr(Stdio::null()).spawn()?);
    let floor_name = "cli-remote-floor.git";
    let floor_path = ctx.fx.hub(floor_name)?;
    let target = proto::Target::Url { url: ctx.fx.url(floor_name), client: ctx.fx.client("cli-remote-client.git")? };
    let mut floor = proto::Floor::new(target, &floor_path)?;
    let mut bare_trip = || -> Res<Duration> {
        let t = floor.submit(&ctx.fx.commit)? + floor.fetch()?;
        let cc = floor.claim_complete(&ctx.fx.commit)?;
        Ok(t + cc.claim + cc.complete + cli.start_floor()?)
    };
    let submit = ["submit", "--hub", &url, "--run", "true", "--wait", "-q"];
    let (ours, bare) = measure::pair(ctx.sizes.e2e_remote, || cli.timed(&submit, None), &mut bare_trip)?;
    let name = "`git ci submit --run true --wait` over git daemon, a default `git ci worker` running \
                (floor: submit + fetch + 2b floor + git-ci --version + sh -c true)";
    Ok(Row::timed(name, &ours, &bare, Goal::RatioAtMost(3.0)))
}

/// The same no-op work, `git ci submit --run true` then `git ci status`
/// (a push and a fetch), against one hub over ssh (git-ci sharing one
/// connection) and over git daemon.
fn ssh(ctx: &Ctx, cli: &Cli) -> Res<Vec<Row>> {
    if git_ci_testkit::ssh::sshd_binary().is_none() {
        eprintln!("  skipped: no sshd for the ssh row (Debian: openssh-server)");
        return Ok(vec![]);
    }
    let sshd = git_ci_testkit::ssh::Sshd::start(&ctx.fx.root().join("sshd"))?;
    let name = "cli-ssh.git";
    let path = ctx.fx.hub(name)?;
    let (over_ssh, over_daemon) = (sshd.url(&path), ctx.fx.url(name));
    let path_env = sshd.path_env();
    let work = |url: &str| -> Res<Duration> {
        let mut took = Duration::ZERO;
        for args in [&["submit", "--hub", url, "--run", "true", "-q"][..], &["status", "--hub", url, "--limit", "1"]] {
            let start = Instant::now();
            let out = cli.command(args).env("PATH", &path_env).output()?;
            took += start.elapsed();
            if !out.status.success() {
                return Err(
                    format!("git-ci {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()).into()
                );
            }
        }
        Ok(took)
    };
    let (ours, floor) = measure::pair(ctx.sizes.runs, || work(&over_ssh), || work(&over_daemon))?;
    let opened = sshd.connections();
    sshd.close_masters(&git_ci_core::hub::cache_root().join("ssh"));
    let name = "`git ci submit` + `git ci status` over ssh, one shared connection (floor: the same over git daemon)";
    Ok(vec![
        Row::timed(name, &ours, &floor, Goal::RatioAtMost(1.5)).detail(format!("ssh connections opened: {opened}")),
    ])
}

fn row(what: &str, ours: &Samples, floor: &Samples, goal_ms: f64) -> Row {
    let name = format!("{what} (floor: git-ci --version + sh -c true)");
    Row::new(name, Value::Ms(ours.median_ms()), Some(Value::Ms(floor.median_ms())), Goal::MsAtMost(goal_ms))
        .detail(format!("ours {}", ours.spread()))
        .detail(format!("floor {}", floor.spread()))
}

/// How many ad-hoc jobs one batch holds.
pub const BATCH: usize = 300;

/// `git ci submit --stdin` of [`BATCH`] commands over git daemon against
/// [`BATCH`] separate `git ci submit --run` calls (timed for `singles` of
/// them, scaled up), and against the floor of one bare push of their refs.
pub fn batch(ctx: &Ctx, rounds: usize, singles: usize) -> Res<Vec<Row>> {
    let Some(cli) = Cli::new(ctx, "cli-batch-user")? else { return Ok(vec![]) };
    let name = "cli-batch.git";
    let path = ctx.fx.hub(name)?;
    let hub = ctx.fx.local(&path)?;
    let url = ctx.fx.url(name);
    let input: String = (0..BATCH).map(|i| format!("echo {i}\n")).collect();
    let stdin = ["submit", "--hub", &url, "--stdin", "-q"];
    let mut n = 0;
    let (ours, separate) = measure::pair(
        rounds,
        || {
            clear_ci_refs(&hub)?;
            cli.timed(&stdin, Some(&input))
        },
        || {
            clear_ci_refs(&hub)?;
            let mut took = Duration::ZERO;
            for _ in 0..singles {
                n += 1;
                let script = format!("echo {n}");
                took += cli.timed(&["submit", "--hub", &url, "--run", &script, "-q"], None)?;
            }
            Ok(took.mul_f64(BATCH as f64 / singles as f64))
        },
    )?;
    let floor = bare_batch_floor(ctx, rounds)?;
    Ok(vec![
        Row::timed(
            format!(
                "{BATCH} ad-hoc jobs over git daemon, `submit --stdin` (vs: {BATCH} separate `submit --run`, {singles} timed)"
            ),
            &ours,
            &separate,
            Goal::RatioAtMost(0.1),
        ),
        Row::timed(
            format!(
                "{BATCH} ad-hoc jobs over git daemon, `submit --stdin` (floor: one bare push --atomic of their {} refs)",
                2 * BATCH
            ),
            &ours,
            &floor,
            Goal::None,
        ),
    ])
}

/// One `git push --atomic` creating the pins and queue refs of [`BATCH`]
/// jobs, their blobs written beforehand.
fn bare_batch_floor(ctx: &Ctx, rounds: usize) -> Res<Samples> {
    let name = "cli-batch-floor.git";
    let path = ctx.fx.hub(name)?;
    let client = ctx.fx.client("cli-batch-floor-client.git")?;
    let objects = ctx.fx.local(&client)?;
    let target = proto::Target::Url { url: ctx.fx.url(name), client };
    let hub = ctx.fx.local(&path)?;
    let mut samples = Samples::default();
    for round in 0..measure::WARMUP + rounds {
        clear_ci_refs(&hub)?;
        let mut edits = Vec::with_capacity(2 * BATCH);
        for _ in 0..BATCH {
            let job = proto::job(&ctx.fx.commit);
            let blob = (&objects as &dyn git_ci_core::Hub).write_blob(&job.to_json())?;
            edits.push(git_ci_core::hub::RefEdit::create(git_ci_core::refs::pin(&job.id), proto::oid(&job.commit)?));
            edits.push(git_ci_core::hub::RefEdit::create(git_ci_core::refs::queue(&job.spec.queue, &job.id), blob));
        }
        let took = target.transact(&edits, false)?;
        if round >= measure::WARMUP {
            samples.push(took);
        }
    }
    Ok(samples)
}
