//! The command line, as clap derives it. Doc comments are the `--help`.

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// A distributed CI whose only server is a git repository.
///
/// Jobs, claims and results live under refs/ci/* in a hub repository.
/// `git ci run` tests HEAD right here with no set-up; `git ci submit` and
/// `git ci worker` share the work through any hub git can push to.
#[derive(Debug, Parser)]
#[command(name = "git-ci", bin_name = "git ci", version, propagate_version = true)]
#[command(
    after_help = "Examples:\n  git ci run                 run every job of .git-ci.toml on HEAD, here\n  git ci submit --wait       queue them on the hub and wait for workers\n  git ci worker --hub git://ci.example/hub   run jobs from a shared hub"
)]
pub struct Cli {
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// How much to print, and in what colours; every command takes these.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct OutputArgs {
    /// Colours on stdout: auto (on a terminal, unless NO_COLOR is set or
    /// git config color.ci / color.ui says otherwise), always, never.
    #[arg(long, global = true, value_name = "WHEN", value_enum, help_heading = "Output options")]
    pub color: Option<ColorWhen>,
    /// Print only results and errors: no progress, no notes.
    #[arg(short, long, global = true, help_heading = "Output options")]
    pub quiet: bool,
    /// Log more on stderr: -v every git command git-ci runs and how long it
    /// took, -vv everything (also GIT_CI_LOG=debug, or RUST_LOG).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet", help_heading = "Output options")]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// How `git ci worker` writes its log lines on stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `git-ci worker NAME: claimed ...`, for a person or a journal
    #[default]
    Text,
    /// `{"ts":...,"level":...,"worker":...,"event":...}` and the event's fields
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(RunArgs),
    Submit(SubmitArgs),
    Worker(WorkerArgs),
    Status(StatusArgs),
    Show(ShowArgs),
    Log(LogArgs),
    Cancel(CancelArgs),
    Hooks(crate::commands::hooks::HooksArgs),
    Watch(crate::commands::watch::WatchArgs),
    Doctor(crate::commands::doctor::DoctorArgs),
    Retry(RetryArgs),
    Artifact(ArtifactArgs),
    Junit(JunitArgs),
    Site(crate::commands::site::SiteArgs),
    Gc(crate::commands::gc::GcArgs),
    Notes(crate::commands::notes::NotesArgs),
    Completions(CompletionsArgs),
    Man(ManArgs),
}

/// Where the hub is, for every command that talks to one.
#[derive(Debug, Args, Clone, Default)]
pub struct HubArgs {
    /// The hub: a path or any URL git can push to. Default: git config
    /// ci.hub, else $GIT_CI_HUB, else the remote origin, else this repository.
    #[arg(long, value_name = "URL|PATH")]
    pub hub: Option<String>,
}

/// Run the jobs of .git-ci.toml here, with an embedded worker, and wait.
///
/// The hub is this repository unless --hub is given, so this works in any
/// clone with no set-up. Jobs that already passed on the same tree with the
/// same definition are skipped. A job runs after the jobs it `needs`; when
/// one of them does not pass, it is reported skipped and not run.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci run                  every job, on HEAD\n  git ci run --job test main  one job (and the jobs it needs), on main\n  git ci run origin/main..HEAD   every commit of a range, oldest first\n  git ci run HEAD~20..HEAD --config-from main   old commits, with today's jobs\n  git ci run --run 'make check'  an ad-hoc job, no .git-ci.toml needed"
)]
pub struct RunArgs {
    /// A commit, or a range A..B (every commit, oldest first).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// Only this job, and the jobs it needs (repeatable; a matrix job: all
    /// its combinations).
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
    #[command(flatten)]
    pub definition: DefinitionArgs,
    /// Run jobs even if they already passed on the same tree.
    #[arg(long)]
    pub force: bool,
    /// How many jobs to run at once.
    #[arg(long = "jobs", short = 'j', value_name = "N")]
    pub parallel: Option<usize>,
    /// The hub to queue on (default: this repository).
    #[arg(long, value_name = "URL|PATH")]
    pub hub: Option<String>,
}

/// Where the jobs are defined, when not in each commit's own .git-ci.toml.
#[derive(Debug, Args, Clone, Default)]
pub struct DefinitionArgs {
    /// Take the jobs from this file of the working tree instead of each
    /// commit's .git-ci.toml (for history that has none, or to try a new
    /// definition before committing it).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["config_from", "run"], help_heading = "Job definition")]
    pub config: Option<std::path::PathBuf>,
    /// Take the jobs from .git-ci.toml as it is at REV (a branch, tag or
    /// commit) instead of each commit's own.
    #[arg(long, value_name = "REV", conflicts_with = "run", help_heading = "Job definition")]
    pub config_from: Option<String>,
    /// An ad-hoc shell script to run (with sh -e) instead of .git-ci.toml's
    /// jobs; its job is named `adhoc`.
    #[arg(long, value_name = "SCRIPT", conflicts_with = "jobs", help_heading = "Job definition")]
    pub run: Option<String>,
}

/// Queue jobs on the hub and print their ids, one a line.
///
/// The jobs are those of .git-ci.toml at each commit (or of --config,
/// --config-from, or the ad-hoc --run), with the jobs they need; --queue,
/// --require, --env and --timeout change them before they are queued. All
/// the jobs of one submission are queued in one push.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci submit                     the jobs of .git-ci.toml at HEAD\n  git ci submit --wait --job test   one job; exit 0 if it passed\n  git ci submit --job test --env CASE=test_login --queue gpu --require gpu=a100 --timeout 5m\n  git ci submit --job test --repeat 100   a soak: 100 runs, #1..#100\n  git ci submit HEAD~20..HEAD --config-from main   20 old commits, with today's jobs\n  git ci submit --run 'make check' --artifacts 'out/*.log'   an ad-hoc job"
)]
pub struct SubmitArgs {
    /// The commit to test, or a range A..B (every commit, oldest first).
    #[arg(default_value = "HEAD")]
    pub rev: String,
    /// Only this job of .git-ci.toml, and the jobs it needs (repeatable; a
    /// matrix job: all its combinations).
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
    #[command(flatten)]
    pub definition: DefinitionArgs,
    #[command(flatten)]
    pub params: ParamArgs,
    /// Wait for the jobs to finish; exit 0 if all passed, 1 otherwise.
    #[arg(long)]
    pub wait: bool,
    /// Print the queued jobs as JSON, one a line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// What `submit` changes in every job it queues.
#[derive(Debug, Args, Clone, Default)]
pub struct ParamArgs {
    /// The queue to put the jobs in, instead of their own.
    #[arg(long, value_name = "Q", help_heading = "Job parameters")]
    pub queue: Option<String>,
    /// A label the worker must have, added to the job's `requires`
    /// (repeatable; replaces the value of the same key).
    #[arg(long = "require", value_name = "K=V", value_parser = parse_key_value, help_heading = "Job parameters")]
    pub requires: Vec<(String, String)>,
    /// An environment variable of the job's run, added to its `env`
    /// (repeatable; replaces the value of the same name).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_key_value, help_heading = "Job parameters")]
    pub env: Vec<(String, String)>,
    /// The jobs' timeout, instead of their own (e.g. 90s, 30m, 2h; at most 7 days).
    #[arg(long, value_name = "DUR", value_parser = parse_timeout, help_heading = "Job parameters")]
    pub timeout: Option<std::time::Duration>,
    /// Queue N runs of each job named with --job, or of every job without
    /// --job (the jobs they need run once), numbered #1..#N; `git ci
    /// status` and `git ci junit` give their pass rate. 1 to 1000.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Job parameters")]
    pub repeat: u32,
    /// Files the ad-hoc job keeps as artifacts (a glob, repeatable; --run
    /// only: a job of .git-ci.toml lists its own).
    #[arg(long = "artifacts", value_name = "GLOB", help_heading = "Job parameters")]
    pub artifacts: Vec<String>,
    /// JUnit XML files the ad-hoc job writes (a glob, repeatable; --run only).
    #[arg(long = "junit", value_name = "GLOB", help_heading = "Job parameters")]
    pub junit: Vec<String>,
}

/// Claim and run jobs from the hub until stopped.
///
/// Ctrl-C or SIGTERM: stop claiming, finish and publish running jobs, exit.
/// A second one cancels the running jobs and publishes them as cancelled.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci worker --hub git://ci.example/hub --jobs 4\n  git ci worker --queue gpu --label gpu=a100\n  git ci worker --once     drain what is pending, then exit\n  git ci worker --jobs 2 install-service --user   run it as a systemd service"
)]
pub struct WorkerArgs {
    /// Serve only this queue (repeatable; default: git config
    /// ci.worker.queues, else every queue).
    #[arg(long = "queue", value_name = "Q")]
    pub queues: Vec<String>,
    /// A label jobs can require, besides os and arch (repeatable; added to
    /// git config ci.worker.labels, a flag winning for the same key).
    #[arg(long = "label", value_name = "K=V", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,
    /// How many jobs to run at once (default: git config ci.worker.jobs, else 1).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// This worker's name on the hub (default: git config ci.worker.name,
    /// else the host name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Exit when nothing this worker can run is pending.
    #[arg(long)]
    pub once: bool,
    /// How often to look at a remote hub when idle (at most 1 day).
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = parse_interval)]
    pub poll: std::time::Duration,
    /// Stretch the idle poll interval up to this, doubling after each look
    /// that finds nothing (back to --poll on work): for large fleets on
    /// hosted hubs. Default: --poll, a fixed interval. At most 1 day.
    #[arg(long, value_name = "DUR", value_parser = parse_interval)]
    pub poll_max: Option<std::time::Duration>,
    /// How long a claim lasts without a heartbeat before others may steal
    /// it (at most 1 day).
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_lease)]
    pub lease: std::time::Duration,
    /// Where checkouts and logs go (default: a git-ci directory in the cache).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<std::path::PathBuf>,
    /// Largest log kept per job, in MiB (head and tail are kept).
    #[arg(long, value_name = "MIB", default_value_t = 16)]
    pub log_cap: u64,
    /// KEY=VALUE lines given to every job as environment variables, their
    /// values masked as *** in logs (values of 4 characters or more).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<std::path::PathBuf>,
    /// Run only commits signed by a key of --allowed-signers, with the job
    /// definition taken from the commit's .git-ci.toml, never the queue.
    #[arg(long, requires = "allowed_signers")]
    pub require_signed: bool,
    /// An ssh allowed-signers file (see ssh-keygen(1)), kept outside any checkout.
    #[arg(long, value_name = "FILE", requires = "require_signed")]
    pub allowed_signers: Option<std::path::PathBuf>,
    /// How often a running job's log tail is pushed for `git ci log
    /// --follow` (at most 1 day).
    #[arg(long, value_name = "DUR", default_value = "3s", value_parser = parse_interval)]
    pub log_interval: std::time::Duration,
    /// Move this worker's results into refs/ci/archive/<name> once its
    /// done chain holds N of them: keeps every publish as cheap with a long
    /// history as with none (readers look in the archive too).
    #[arg(long, value_name = "N", default_value_t = git_ci_core::chain::ROLL_AT)]
    pub roll_at: usize,
    /// Log lines on stderr as text, or as JSON objects, one a line, for a
    /// log pipeline.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub isolation: crate::commands::sandbox_args::SandboxArgs,
    #[command(flatten)]
    pub hub: HubArgs,
    /// Instead of running: install-service.
    #[command(subcommand)]
    pub action: Option<crate::commands::service::WorkerAction>,
}

/// List jobs and their states.
///
/// With REV (a commit or branch), show that commit's jobs like a checks
/// view and exit 0 if all passed, 1 if any did not, 4 while any runs.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci status\n  git ci status HEAD         the jobs of the current commit\n  git ci status --state failed --json"
)]
pub struct StatusArgs {
    /// A commit or branch whose jobs to show.
    pub rev: Option<String>,
    /// Only jobs in this state (pending, running, passed, failed, timeout,
    /// cancelled, error, skipped).
    #[arg(long, value_name = "S")]
    pub state: Option<String>,
    /// Only jobs of this branch.
    #[arg(long = "ref", value_name = "BRANCH")]
    pub branch: Option<String>,
    /// At most this many finished jobs.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Show one job: its definition, state and result.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci show 20261122T040704123-0123456789ab --json")]
pub struct ShowArgs {
    /// The job id, as `git ci status` prints it.
    pub job: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Print a finished job's log as it was captured (colours included).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci log 20261122T040704123-0123456789ab | less -R")]
pub struct LogArgs {
    /// The job id.
    pub job: String,
    /// Wait for a pending or running job to finish, then print its log.
    #[arg(long)]
    pub follow: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Cancel jobs: a pending job is published as cancelled at once; a running
/// one is stopped by its worker within a heartbeat and published cancelled.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci cancel 20261122T040704123-0123456789ab")]
pub struct CancelArgs {
    /// Job ids, as `git ci status` prints them.
    #[arg(required = true)]
    pub jobs: Vec<String>,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Queue a new run of finished jobs (same commit, ref and definition).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci retry $(git ci status --state failed --json | jq -r '.[].id')")]
pub struct RetryArgs {
    /// Job ids of finished jobs.
    #[arg(required = true)]
    pub jobs: Vec<String>,
    /// Wait for the new runs; exit 0 if all passed.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Fetch one artifact of a finished job.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci artifact 20261122T040704123-0123456789ab target/app.tar.gz -o app.tar.gz")]
pub struct ArtifactArgs {
    /// The job id.
    pub job: String,
    /// The artifact's path in the checkout, as `git ci show` lists it.
    pub path: String,
    /// Write it here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Export the JUnit results of finished jobs as one JUnit XML file.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci junit 20261122T040704123-0123456789ab -o results.xml")]
pub struct JunitArgs {
    /// Job ids.
    #[arg(required = true)]
    pub jobs: Vec<String>,
    /// Where to write the merged XML.
    #[arg(short, long, value_name = "FILE")]
    pub output: std::path::PathBuf,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Print a shell completion script.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci completions bash > ~/.local/share/bash-completion/completions/git-ci\n  git ci completions zsh > ~/.zfunc/_git-ci"
)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Write man pages for git-ci and every subcommand.
///
/// `git ci --help` is answered by git with `man git-ci`: put DIR/man1 on
/// your MANPATH (or write into ~/.local/share/man/man1).
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  git ci man --out ~/.local/share/man/man1")]
pub struct ManArgs {
    /// The directory to write `git-ci.1`, `git-ci-run.1`... into.
    #[arg(long, value_name = "DIR")]
    pub out: std::path::PathBuf,
}

pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    git_ci_core::time::parse_duration(s)
}

/// A job's timeout: longer than zero, at most a week.
pub fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let max = git_ci_core::model::spec_rules::MAX_TIMEOUT;
    match git_ci_core::time::parse_duration_at_most(s, "timeout", max)? {
        d if d.is_zero() => Err("a timeout must be longer than zero".into()),
        d => Ok(d),
    }
}

/// A worker's lease, at most [`git_ci_core::model::Claim::MAX_LEASE`].
pub fn parse_lease(s: &str) -> Result<std::time::Duration, String> {
    git_ci_core::time::parse_duration_at_most(s, "lease", git_ci_core::model::Claim::MAX_LEASE)
}

/// A worker's poll and log intervals: a day at most (a worker that looks
/// less often than that is a stopped one).
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    git_ci_core::time::parse_duration_at_most(s, "interval", std::time::Duration::from_secs(86_400))
}

/// Asserts that each of `ok` parses and each of `bad` is refused (test
/// helper shared by every command's argument table).
#[cfg(test)]
pub fn assert_parse_table(ok: &[&str], bad: &[&str]) {
    for line in ok {
        Cli::try_parse_from(line.split(' ')).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    for line in bad {
        assert!(Cli::try_parse_from(line.split(' ')).is_err(), "{line} should fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn argument_lines_parse_or_fail() {
        let ok = [
            "git-ci run",
            "git-ci run main~3..main --job test --force",
            "git-ci submit --run true --env A=1 --require os=linux --timeout 5m --wait",
            "git-ci submit HEAD~1 --job test --job lint --json",
            "git-ci submit --job test --env CASE=x --queue gpu --require gpu=a100 --timeout 5m --repeat 20",
            "git-ci submit main~20..main --config-from main",
            "git-ci submit --config ci.toml --job test",
            "git-ci submit --run true --artifacts out/* --junit junit.xml --repeat 3",
            "git-ci run --run true",
            "git-ci run HEAD~3..HEAD --config ci.toml --job test",
            "git-ci worker --hub git://127.0.0.1/hub --queue a --label gpu=yes -j 4 --once --lease 10s",
            "git-ci worker --poll 2s --poll-max 1m",
            "git-ci worker --lease 1d --poll 1d --poll-max 1d --log-interval 1d",
            "git-ci submit --run true --timeout 7d",
            "git-ci status HEAD --json --limit 5",
            "git-ci show 20261122T040704123-0123456789ab --json",
            "git-ci log 20261122T040704123-0123456789ab --follow",
            "git-ci cancel 20261122T040704123-0123456789ab 20261122T040704123-0123456789ac",
            "git-ci retry 20261122T040704123-0123456789ab --wait",
            "git-ci artifact 20261122T040704123-0123456789ab out/app.bin -o app.bin",
            "git-ci junit 20261122T040704123-0123456789ab -o all.xml",
            "git-ci worker --env-file secrets.env --require-signed --allowed-signers signers",
            "git-ci completions bash",
            "git-ci man --out /tmp/man",
            "git-ci --color never status",
            "git-ci status --color=always -q",
            "git-ci -vv run",
            "git-ci worker --once --log-format json",
        ];
        let bad = [
            "git-ci",
            "git-ci submit --job test --run true",
            "git-ci submit --config a.toml --config-from main",
            "git-ci submit --config a.toml --run true",
            "git-ci submit --config-from main --run true",
            "git-ci run --run true --job test",
            "git-ci run --config a.toml --config-from main",
            "git-ci submit --repeat many",
            "git-ci worker --label novalue",
            "git-ci worker --lease soon",
            "git-ci worker --lease 10000y",
            "git-ci worker --lease 25h",
            "git-ci worker --poll 500000000000y",
            "git-ci worker --poll-max 2d",
            "git-ci worker --log-interval 2d",
            "git-ci submit --run true --timeout 0s",
            "git-ci submit --run true --timeout 8d",
            "git-ci show",
            "git-ci cancel",
            "git-ci junit 20261122T040704123-0123456789ab",
            "git-ci worker --require-signed",
            "git-ci completions tcsh",
            "git-ci man",
            "git-ci status --color sometimes",
            "git-ci status -q -v",
            "git-ci worker --log-format yaml",
        ];
        assert_parse_table(&ok, &bad);
    }
}
