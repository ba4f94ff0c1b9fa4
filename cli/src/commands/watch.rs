//! `git ci watch`: queue jobs for a hub's new branch and tag heads, for hubs
//! that run no hooks.

use std::time::{Duration, SystemTime};

use clap::Args;
use git_ci_hooks::Event;
use git_ci_hooks::watch::Watcher;

use crate::cli::{HubArgs, parse_duration};
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Poll a hub's branches and tags and queue jobs like the post-receive hook.
///
/// For hubs that run no hooks (GitHub, GitLab, Gitea): every interval, the
/// heads not handled yet get the jobs of their .git-ci.toml, a new head of a
/// branch cancels that branch's older pending runs, and a deleted branch's
/// pending jobs are cancelled. What was queued is recorded on the hub, so a
/// restarted watcher, or two at once, never queue a job twice. Ctrl-C stops
/// it at any moment: every change it makes is one atomic push.
///
/// It also runs the jobs with a `schedule` (cron, UTC): at each tick, on the
/// tip of each branch their `branches` match (else of the hub's default
/// branch), waking for the tick even between two intervals. Each tick is
/// queued once, by whichever watcher comes first; a tick missed while no
/// watcher ran is queued once when one starts (only the latest). Hubs with
/// the post-receive hook need a watcher too for schedules.
///
/// As with `git ci submit`, the jobs of one push or tick beyond the first
/// 64 of a queue are parked in one backlog ref (GIT_CI_BACKLOG_AFTER=N to
/// queue N first, =off to park none); the post-receive hook does the same.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci watch --hub https://example.com/team/project.git\n  git ci watch --once     one look, then exit (for cron)"
)]
pub struct WatchArgs {
    /// How long to wait between two looks at the hub.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Look once and exit; exit 3 if the hub could not be reached.
    #[arg(long)]
    pub once: bool,
    /// The project recorded on the jobs it queues, for a hub that holds
    /// several (default: git config ci.project of the hub on this machine,
    /// else the last part of the hub's path or URL, without .git).
    #[arg(long, value_name = "NAME")]
    pub project: Option<String>,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_watch(ui: &Ui, args: WatchArgs) -> CliResult {
    if !args.once && args.interval < Duration::from_secs(1) {
        return Err(CliError::usage("--interval must be at least 1s (a hosted hub may also rate-limit fetches)"));
    }
    // A bad threshold is refused at once, not at every push and tick.
    git_ci_core::backlog::park_after().map_err(CliError::usage)?;
    let repo = context::user_repo();
    let hub = context::hub(args.hub.hub.as_deref(), repo.as_ref(), "watch")?;
    let by = format!("watch@{}", context::hostname());
    let mut watcher = Watcher::new(&*hub, &by);
    if let Some(p) = &args.project {
        git_ci_core::refs::check_component("project", p).map_err(CliError::usage)?;
        watcher = watcher.with_project(p);
    }
    if !args.once {
        ui.err(&format!(
            "git-ci watch: watching {} every {}",
            hub.url(),
            git_ci_core::time::human_duration(args.interval)
        ));
    }
    loop {
        match watcher.poll() {
            Ok(events) => report(ui, &events),
            Err(e) if args.once => return Err(e.into()),
            // A hosted hub has bad minutes: say so and look again later.
            Err(e) => ui.err(&format!(
                "git-ci watch: {e}; trying again in {}",
                git_ci_core::time::human_duration(args.interval)
            )),
        }
        if args.once {
            return Ok(());
        }
        std::thread::sleep(pause(args.interval, watcher.next_tick(), SystemTime::now()));
    }
}

/// Until the next look: the interval, or less when a scheduled tick comes
/// first. A moment past the tick, so that the look finds it due even on a
/// clock that a sleep measures a little differently.
fn pause(interval: Duration, next_tick: Option<SystemTime>, now: SystemTime) -> Duration {
    let until_tick = next_tick.map(|t| t.duration_since(now).unwrap_or_default() + Duration::from_millis(20));
    until_tick.map_or(interval, |t| t.min(interval))
}

/// One line per thing done; what earlier runs did is only counted (a
/// restarted watcher finds every head already handled).
fn report(ui: &Ui, events: &[Event]) {
    let mut already = 0;
    for e in events {
        if let Event::AlreadyQueued { .. } = e {
            already += 1;
            continue;
        }
        for line in e.describe().lines() {
            ui.err(&format!("git-ci watch: {line}"));
        }
    }
    if already > 0 {
        ui.err(&format!("git-ci watch: {already} job(s) of these heads were queued before; nothing to do for them"));
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_tick_before_the_interval_wakes_the_watcher() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let minute = Duration::from_secs(60);
        assert_eq!(super::pause(minute, None, now), minute);
        let soon = super::pause(minute, Some(now + Duration::from_secs(5)), now);
        assert_eq!(soon, Duration::from_millis(5020));
        assert_eq!(super::pause(minute, Some(now + Duration::from_secs(600)), now), minute);
        assert_eq!(super::pause(minute, Some(now - Duration::from_secs(1)), now), Duration::from_millis(20));
    }

    #[test]
    fn argument_lines_parse_or_fail() {
        crate::commands::assert_parse_table(
            &["git-ci watch", "git-ci watch --hub git://127.0.0.1/hub --interval 5s", "git-ci watch --once"],
            &["git-ci watch --interval soon", "git-ci watch extra", "git-ci watch --once=yes"],
        );
    }
}
