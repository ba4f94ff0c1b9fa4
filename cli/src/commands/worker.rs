//! `git ci worker`: claim and run jobs until stopped.

use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use git_ci_core::Hub;
use git_ci_core::worker::{Budget, Config, NameError, Summary, Worker};

use super::worker_log::{Entry, LogFormat, WorkerLog};
use crate::cli::{parse_interval, parse_key_value, parse_lease};
use crate::context;
use crate::error::{CliError, CliResult};
use crate::settings::{GitConfig, WorkerSettings};
use crate::ui::Ui;

/// Claim and run jobs from the hub until stopped.
///
/// Ctrl-C or SIGTERM: stop claiming, finish and publish running jobs, exit.
/// A second one cancels the running jobs and publishes them as cancelled.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci worker --hub git://ci.example/hub --jobs 4\n  git ci worker --hub git://ci.example/a --hub /srv/b.git --jobs 4   two hubs, one budget\n  git ci worker --queue gpu --label gpu=a100\n  git ci worker --once     drain what is pending, then exit\n  git ci worker --jobs 2 install-service --user   run it as a systemd service"
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
    /// How often to look at a remote hub while there is work, and for
    /// --poll-max after the queue emptied (a hub that is a path wakes the
    /// worker at once instead). At most 1 day.
    #[arg(long, value_name = "DUR", default_value = "200ms", value_parser = parse_interval)]
    pub poll: std::time::Duration,
    /// How often an idle worker looks at a remote hub: after the queue has
    /// been empty for this long, the interval doubles from --poll after
    /// each look that finds nothing, up to this (back to --poll on work).
    /// A look that finds nothing new is one ref listing, no fetch. Raise
    /// it for large fleets on hosted hubs; --poll-max equal to --poll
    /// polls at a fixed interval. Default 2s (or --poll, if longer); at
    /// most 1 day.
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
    /// Where others reach this worker's live instances (`serve = true`
    /// jobs): `{port}` becomes the service's port, given to it in $PORT;
    /// the URL in $GIT_CI_URL and on the job's result.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:{port}")]
    pub public_url: String,
    /// The most live instances to keep running; starting another stops the
    /// oldest. They take no --jobs slot.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub max_instances: usize,
    /// Past this size of its work directory (checkouts and kept `cache`
    /// directories: 500M, 20G), remove this hub's least recently used
    /// caches, never one of a job it runs. Checked at start and between
    /// jobs; at start, checkouts a dead worker left are removed too.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub cache_max_size: Option<u64>,
    /// Instead of running: remove what this worker left on disk (leftover
    /// checkouts; `cache` directories and hub mirrors unused for
    /// --older-than), print what it freed, and exit. Refused while a worker
    /// of this name runs here.
    #[arg(long, conflicts_with_all = RUN_ONLY)]
    pub clean: bool,
    /// With --clean: what counts as unused (default 7d).
    #[arg(long, value_name = "DUR", requires = "clean", value_parser = crate::cli::parse_duration)]
    pub older_than: Option<Duration>,
    #[command(flatten)]
    pub isolation: super::sandbox_args::SandboxArgs,
    /// The hub: a path or any URL git can push to. Default: git config
    /// ci.hub, else $GIT_CI_HUB, else the remote origin, else this
    /// repository. Repeat it to serve several hubs from one process: they
    /// share the --jobs budget and take turns at free slots.
    #[arg(long = "hub", value_name = "URL|PATH")]
    pub hubs: Vec<String>,
    /// Instead of running: install-service.
    #[command(subcommand)]
    pub action: Option<WorkerAction>,
}

/// The flags that only mean something to a running worker: `--clean`
/// refuses them rather than ignore them.
const RUN_ONLY: [&str; 25] = [
    "queues",
    "labels",
    "jobs",
    "once",
    "poll",
    "poll_max",
    "lease",
    "log_cap",
    "env_file",
    "require_signed",
    "log_interval",
    "roll_at",
    "log_format",
    "cache_max_size",
    "hubs",
    "sandbox",
    "sandbox_network",
    "binds",
    "ro_binds",
    "pids_max",
    "memory_max",
    "disk_max",
    "env_refs",
    "public_url",
    "max_instances",
];

fn parse_size(s: &str) -> Result<u64, String> {
    git_ci_core::runner::limits::parse_size(s)
}

/// What `git ci worker` does instead of running, when told.
#[derive(Debug, Subcommand)]
pub enum WorkerAction {
    InstallService(InstallServiceArgs),
}

/// Write a systemd unit that runs this worker, then enable and start it.
///
/// The unit runs `git ci worker` with the flags given before
/// `install-service`, in this repository (so `git config ci.hub` still
/// applies), with the PATH and GIT_CI_* variables of this shell. It restarts
/// the worker when it fails, and on stop gives it time to finish and publish
/// its running jobs.
#[derive(Debug, Args)]
#[command(
    after_help = "Worker flags go before `install-service`.\n\nExamples:\n  git ci worker --jobs 2 --label gpu=a100 install-service --user\n  sudo git ci worker --name ci1 install-service    a system unit, run as you\n  git ci worker --queue linux install-service --user --print > git-ci-worker.service"
)]
pub struct InstallServiceArgs {
    /// A user unit in ~/.config/systemd/user, run by your own systemd
    /// (default: a system unit in /etc/systemd/system that runs as you; needs root).
    #[arg(long)]
    pub user: bool,
    /// Print the unit on stdout; write, enable and start nothing.
    #[arg(long)]
    pub print: bool,
}

pub fn cmd_worker(ui: &Ui, args: WorkerArgs) -> CliResult {
    let repo = context::user_repo();
    let git_config = GitConfig::load(repo.as_ref());
    let settings = WorkerSettings::read(&git_config)?;
    let explicit = args.name.clone().or(settings.name);
    let base = context::hostname();
    if args.clean {
        return super::worker_clean::cmd_clean(ui, explicit.unwrap_or(base), args.work_dir, args.older_than);
    }
    let name = explicit.as_deref().unwrap_or(&base);
    git_ci_core::refs::check_component("worker name", name).map_err(CliError::usage)?;
    let held = super::worker_name::hold(explicit, &base)?;
    let name = held.name.clone();
    let serve = if args.queues.is_empty() { settings.queues } else { args.queues.clone() };
    for q in &serve {
        git_ci_core::refs::check_component("queue", q).map_err(CliError::usage)?;
    }
    if let Some(max) = args.poll_max.filter(|max| *max < args.poll) {
        return Err(CliError::usage(format!(
            "--poll-max {} is shorter than --poll {}: an idle worker polls at most every --poll-max, \
             from --poll after work (give them equal for a fixed interval)",
            git_ci_core::time::human_duration(max),
            git_ci_core::time::human_duration(args.poll)
        )));
    }
    let jobs = args.jobs.or(settings.jobs).unwrap_or(1);
    if jobs == 0 {
        return Err(CliError::usage("--jobs must be at least 1"));
    }
    if !args.public_url.contains("{port}") {
        return Err(CliError::usage_hint(
            format!("--public-url {} has no {{port}}", args.public_url),
            "each instance gets its own port: write where it goes, as in --public-url http://build-7:{port}",
        ));
    }
    if args.max_instances == 0 {
        return Err(CliError::usage("--max-instances must be at least 1"));
    }
    let hubs = open_hubs(&args.hubs, repo.as_ref(), &name)?;
    // Later entries win: defaults, then git config, then flags.
    let mut labels = Config::default_labels();
    labels.extend(settings.labels.into_iter().chain(args.labels.iter().cloned()));
    name_label(&name, &labels)?;
    let work_dir = args.work_dir.clone().unwrap_or_else(|| git_ci_core::hub::cache_root().join("work").join(&name));
    let cfg = Config {
        queues: serve,
        labels,
        jobs,
        once: args.once,
        poll: args.poll,
        poll_max: args.poll_max.unwrap_or(git_ci_core::worker::DEFAULT_POLL_MAX),
        lease: args.lease.max(Duration::from_secs(1)),
        log_cap: args.log_cap.max(1) << 20,
        secrets: match &args.env_file {
            Some(path) => read_env_file(path)?,
            None => vec![],
        },
        require_signed: match &args.allowed_signers {
            Some(p) => {
                Some(p.canonicalize().map_err(|e| CliError::usage(format!("--allowed-signers {}: {e}", p.display())))?)
            }
            None => None,
        },
        log_interval: args.log_interval.max(Duration::from_millis(200)),
        roll_at: args.roll_at.max(1),
        isolation: args.isolation.isolation(&git_config)?,
        public_url: args.public_url.clone(),
        max_instances: args.max_instances,
        cache_max_size: args.cache_max_size,
        ..Config::new(name.clone(), work_dir)
    };
    if args.cache_max_size.is_some() {
        // We hold the name and run nothing yet: every checkout is a dead one's.
        super::worker_clean::leftover_checkouts(ui, &name, &cfg.work_dir);
    }
    if let Some(info) = cfg.isolation.info() {
        ui.err(&format!("git-ci worker {name}: jobs run sandboxed: {}", info.summary()));
    }
    let budget = (hubs.len() > 1).then(|| Budget::new(jobs));
    let mut workers = Vec::new();
    for hub in hubs {
        // With several hubs each line says which hub it is about.
        let label = if budget.is_some() { format!("{name} [{}]", hub.url()) } else { name.clone() };
        let log = Arc::new(WorkerLog::new(&label, args.log_format));
        let cfg = Config { seat: budget.as_ref().map(|b| b.seat()), ..cfg.clone() };
        log.emit(&Entry::Started { queues: &cfg.queues, hub: hub.url(), jobs: cfg.jobs });
        let worker = Worker::new(Arc::clone(&hub), cfg, {
            let log = Arc::clone(&log);
            move |e| log.emit(&Entry::Event(e))
        });
        workers.push((worker, log));
    }
    super::signals::stop_all_on_signals(workers.iter().map(|(w, _)| w.controller()).collect());
    for (worker, log) in &mut workers {
        match worker.connect() {
            Ok(true) => {}
            Ok(false) => {
                log.emit(&Entry::Exiting(&Summary::default()));
                return Ok(());
            }
            Err(e @ NameError::Taken { .. }) => {
                return Err(CliError::usage_hint(
                    e.to_string(),
                    "give this worker another name (`--name`, git config ci.worker.name), or stop the other one",
                ));
            }
            Err(NameError::Hub(e)) => return Err(e.into()),
        }
    }
    // One thread per hub, each its own loop; the budget shares the slots.
    let threads: Vec<_> = workers
        .into_iter()
        .map(|(worker, log)| {
            std::thread::spawn(move || {
                let summary = worker.run();
                log.emit(&Entry::Exiting(&summary));
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| CliError::Internal("a worker thread panicked".into()))?;
    }
    Ok(())
}

/// The hubs of `--hub` (each once), or the usual one when none is given.
fn open_hubs(flags: &[String], repo: Option<&gix::Repository>, name: &str) -> CliResult<Vec<Arc<dyn Hub>>> {
    let owner = format!("worker-{name}");
    if flags.is_empty() {
        return Ok(vec![context::hub(None, repo, &owner)?]);
    }
    let mut hubs: Vec<Arc<dyn Hub>> = Vec::new();
    for flag in flags {
        let hub = context::hub(Some(flag), repo, &owner)?;
        if hubs.iter().any(|h| h.url() == hub.url()) {
            return Err(CliError::usage(format!("--hub {flag} is given twice")));
        }
        hubs.push(hub);
    }
    Ok(hubs)
}

/// Every worker has the label `name=<its name>` (jobs aimed at it require
/// it); a label giving another name would make it take another's jobs.
fn name_label(name: &str, labels: &std::collections::BTreeMap<String, String>) -> CliResult {
    use git_ci_core::model::NAME_LABEL;
    match labels.get(NAME_LABEL) {
        Some(other) if other != name => Err(CliError::usage_hint(
            format!("label {NAME_LABEL}={other} differs from this worker's name {name:?}"),
            format!(
                "every worker has the label {NAME_LABEL}=<its name> already: drop the label, or run it as `--name {other}`"
            ),
        )),
        _ => Ok(()),
    }
}

/// `KEY=VALUE` lines; blank lines and `#` comments are skipped.
fn read_env_file(path: &std::path::Path) -> CliResult<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::usage(format!("--env-file {}: {e}", path.display())))?;
    let mut vars = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (k, v) = crate::cli::parse_key_value(line.strip_prefix("export ").unwrap_or(line))
            .map_err(|e| CliError::usage(format!("{}:{}: {e}", path.display(), n + 1)))?;
        vars.push((k, v.trim_matches('"').to_owned()));
    }
    Ok(vars)
}
