//! `git ci worker`: claim and run jobs until stopped.

use std::sync::Arc;
use std::time::Duration;

use git_ci_core::worker::{Config, NameError, Summary, Worker};

use super::worker_log::{Entry, WorkerLog};
use crate::cli::WorkerArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::settings::{GitConfig, WorkerSettings};
use crate::ui::Ui;

pub fn cmd_worker(ui: &Ui, args: WorkerArgs) -> CliResult {
    let repo = context::user_repo();
    let git_config = GitConfig::load(repo.as_ref());
    let settings = WorkerSettings::read(&git_config)?;
    let explicit = args.name.clone().or(settings.name);
    let base = context::hostname();
    let name = explicit.as_deref().unwrap_or(&base);
    git_ci_core::refs::check_component("worker name", name).map_err(CliError::usage)?;
    let held = super::worker_name::hold(explicit, &base)?;
    let name = held.name.clone();
    let serve = if args.queues.is_empty() { settings.queues } else { args.queues.clone() };
    for q in &serve {
        git_ci_core::refs::check_component("queue", q).map_err(CliError::usage)?;
    }
    let jobs = args.jobs.or(settings.jobs).unwrap_or(1);
    if jobs == 0 {
        return Err(CliError::usage("--jobs must be at least 1"));
    }
    let hub = context::hub(args.hub.hub.as_deref(), repo.as_ref(), &format!("worker-{name}"))?;
    // Later entries win: defaults, then git config, then flags.
    let mut labels = Config::default_labels();
    labels.extend(settings.labels.into_iter().chain(args.labels.iter().cloned()));
    let work_dir = args.work_dir.clone().unwrap_or_else(|| git_ci_core::hub::cache_root().join("work").join(&name));
    let cfg = Config {
        queues: serve,
        labels,
        jobs,
        once: args.once,
        poll: args.poll,
        poll_max: args.poll_max.unwrap_or(args.poll),
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
        ..Config::new(name.clone(), work_dir)
    };
    if let Some(info) = cfg.isolation.info() {
        ui.err(&format!("git-ci worker {name}: jobs run sandboxed: {}", info.summary()));
    }
    let log = Arc::new(WorkerLog::new(&name, args.log_format));
    log.emit(&Entry::Started { queues: &cfg.queues, hub: hub.url(), jobs: cfg.jobs });
    let mut worker = Worker::new(Arc::clone(&hub), cfg, {
        let log = Arc::clone(&log);
        move |e| log.emit(&Entry::Event(e))
    });
    super::signals::stop_on_signals(worker.controller());
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
    let summary = worker.run();
    log.emit(&Entry::Exiting(&summary));
    Ok(())
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
