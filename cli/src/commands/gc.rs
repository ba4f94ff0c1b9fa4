//! `git ci gc`: cut old results off the `done` chains, then pack the hub's refs.

use std::time::{Duration, SystemTime};

use clap::Args;
use git_ci_core::gc::{self, ChainReport, Event, Options, Packed, Policy, orphans};
use git_ci_core::{Hub, HubError};

use crate::cli::{HubArgs, parse_duration};
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Cut old results off the done chains, into refs/ci/archive/*.
///
/// Each writer's results live in refs/ci/done/<writer> and, once a worker
/// has rolled them over (`git ci worker --roll-at`), in
/// refs/ci/archive/<writer>, so history only grows. gc gives each done chain
/// a new root commit that keeps the recent results and, unchanged, the
/// tree-cache (cache/) and trigger (triggers/) indexes. The results it cuts
/// are added to the archive, where status, show, log and the site still
/// find them; --prune drops them instead, and cuts the archives by the same
/// rules. It also removes cancel requests left over from jobs that
/// finished before their worker saw them. A result is kept when it finished less
/// than --older-than ago or is among its chain's --keep newest (either
/// rule); with neither flag, --older-than 30d. Each chain moves in one
/// atomic push, retried if its writer publishes meanwhile. Then a hub on
/// this machine gets its refs packed.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci gc                           archive results older than 30 days\n  git ci gc --older-than 90d --keep 1000   90 days, and at least the newest 1000 per writer\n  git ci gc --keep 100 --prune --dry-run   list what pruning to 100 per writer would drop"
)]
pub struct GcArgs {
    /// Cut results that finished longer ago than this (e.g. 30d, 12h).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub older_than: Option<Duration>,
    /// Keep the newest N results of each chain, whatever their age.
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Drop the cut results instead of archiving them; `git gc --prune=now`
    /// on the hub then reclaims their space.
    #[arg(long)]
    pub prune: bool,
    /// Print what would be cut, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print one JSON object: every chain, and the totals.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

pub fn cmd_gc(ui: &Ui, args: GcArgs) -> CliResult {
    let repo = context::user_repo();
    let hub = context::hub(args.hub.hub.as_deref(), repo.as_ref(), "client")?;
    let opts = Options {
        policy: Policy::new(args.older_than, args.keep),
        prune: args.prune,
        dry_run: args.dry_run,
        now: SystemTime::now(),
    };
    let progress = Progress::new(ui);
    let mut on = |e: Event<'_>| match e {
        Event::Reading { writer, kind, index, total } => {
            progress.say(format!("gc: reading {}/{writer} ({}/{total})", kind.as_str(), index + 1));
        }
        Event::Retrying { writer, kind, attempt } => {
            let chain = format!("{}/{writer}", kind.as_str());
            progress.say(format!("gc: {chain} moved meanwhile; reading it again (attempt {attempt})"));
        }
        Event::Done(r) if !args.json => progress.println(ui, &line(r, &opts)),
        Event::Done(_) => {}
    };
    let reports = gc::collect(&*hub, &opts, &mut on).map_err(gc_error);
    progress.finish();
    let reports = reports?;
    let orphans = orphan_cancels(&*hub, opts.dry_run)?;
    let packed = if opts.dry_run { None } else { Some(gc::pack_refs(&*hub)?) };
    if args.json {
        let mut doc = json(&reports, &opts, packed.as_ref());
        doc["orphan_cancels"] = serde_json::json!(orphans);
        ui.out(&serde_json::to_string_pretty(&doc).expect("plain JSON"));
    } else {
        ui.out(&total(&reports, &opts));
    }
    if !orphans.is_empty() {
        let verb = if opts.dry_run { "would remove" } else { "removed" };
        ui.err(&format!("gc: {verb} {} cancel request(s) left over from finished jobs", orphans.len()));
    }
    notes(ui, &*hub, &reports, &opts, packed.as_ref());
    Ok(())
}

/// Cancel requests whose job finished before its worker saw them: removed,
/// or on a dry run only listed.
fn orphan_cancels(hub: &dyn Hub, dry_run: bool) -> CliResult<Vec<git_ci_core::JobId>> {
    if dry_run {
        let snapshot = git_ci_core::queue::Snapshot::read(hub, &[])?;
        return Ok(orphans::cancels(&snapshot).into_iter().map(|(id, _)| id).collect());
    }
    orphans::remove_cancels(hub).map_err(gc_error)
}

/// A chain that could not be moved: say what to do about it.
fn gc_error(error: HubError) -> CliError {
    let hint = match &error {
        HubError::Conflict { .. } => {
            Some("the chain's writer kept publishing while gc ran; run `git ci gc` again (chains already cut stay cut)")
        }
        HubError::Refused { .. } => Some(
            "if the hub's guard said no: gc needs push options, which `git ci hooks install` turns on \
             (receive.advertisePushOptions); else check your push rights to refs/ci/*",
        ),
        HubError::Denied { cause, .. } => Some(cause.fix()),
        _ => None,
    };
    CliError::Hub { error, hint: hint.map(str::to_owned) }
}

/// `done/w1: kept 10, archived 4`, and on a dry run the ids it would cut.
fn line(r: &ChainReport, opts: &Options) -> String {
    let chain = format!("{}/{}", r.kind.as_str(), r.writer);
    if r.cut.is_empty() {
        return format!("{chain}: kept {}, nothing to cut", r.kept);
    }
    let verb = if opts.prune { "pruned" } else { "archived" };
    if !opts.dry_run {
        return format!("{chain}: kept {}, {verb} {}", r.kept, r.cut.len());
    }
    let verb = if opts.prune { "prune" } else { "archive" };
    let mut out = format!("{chain}: would keep {}, {verb} {}:", r.kept, r.cut.len());
    for id in &r.cut {
        out.push_str(&format!("\n  {id}"));
    }
    out
}

fn total(reports: &[ChainReport], opts: &Options) -> String {
    let kept: usize = reports.iter().map(|r| r.kept).sum();
    let cut: usize = reports.iter().map(|r| r.cut.len()).sum();
    let moved = reports.iter().filter(|r| !r.cut.is_empty()).count();
    let (keep, verb) = match (opts.prune, opts.dry_run) {
        (true, false) => ("kept", "pruned"),
        (false, false) => ("kept", "archived"),
        (true, true) => ("would keep", "prune"),
        (false, true) => ("would keep", "archive"),
    };
    format!("total: {keep} {kept}, {verb} {cut}, in {moved} of {} chains", reports.len())
}

/// What the user may want to know besides the counts, on stderr.
fn notes(ui: &Ui, hub: &dyn Hub, reports: &[ChainReport], opts: &Options, packed: Option<&Packed>) {
    if opts.dry_run {
        ui.err("gc: dry run: nothing was changed");
        return;
    }
    if opts.prune && reports.iter().any(|r| !r.cut.is_empty()) {
        ui.err("gc: the pruned results are unreachable now; `git gc --prune=now` on the hub reclaims their space");
    }
    match packed {
        Some(Packed::Packed(dir)) => ui.err(&format!("gc: packed the refs of {}", dir.display())),
        Some(Packed::Remote) => ui.err(&format!(
            "gc: the refs of {} cannot be packed from here; run `git pack-refs --all` (or `git gc`) on its host",
            hub.url()
        )),
        None => {}
    }
}

fn json(reports: &[ChainReport], opts: &Options, packed: Option<&Packed>) -> serde_json::Value {
    let chains: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "writer": r.writer,
                "chain": r.kind.as_str(),
                "kept": r.kept,
                "cut": r.cut.len(),
                "ids": r.cut,
                "before": r.before.to_string(),
                "after": r.after.map(|a| a.to_string()),
                "archive": r.archive.map(|a| a.to_string()),
                "attempts": r.attempts,
            })
        })
        .collect();
    serde_json::json!({
        "mode": if opts.prune { "prune" } else { "archive" },
        "dry_run": opts.dry_run,
        "kept": reports.iter().map(|r| r.kept).sum::<usize>(),
        "cut": reports.iter().map(|r| r.cut.len()).sum::<usize>(),
        "chains": chains,
        "packed": match packed {
            Some(Packed::Packed(dir)) => serde_json::Value::from(dir.display().to_string()),
            _ => serde_json::Value::Null,
        },
    })
}

/// A spinner on stderr when a person watches it; nothing otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(ui: &Ui) -> Progress {
        let bar = ui.interactive.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    fn say(&self, message: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    /// A result line on stdout, above the spinner.
    fn println(&self, ui: &Ui, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| ui.out(line)),
            None => ui.out(line),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_lines_parse_or_fail() {
        let ok = [
            "git-ci gc",
            "git-ci gc --older-than 30d --keep 100",
            "git-ci gc --keep 0 --prune --dry-run --json --hub git://127.0.0.1/hub",
            "git-ci gc --older-than 1y",
        ];
        let bad = ["git-ci gc --older-than soon", "git-ci gc --keep -1", "git-ci gc --keep many", "git-ci gc extra"];
        crate::commands::assert_parse_table(&ok, &bad);
    }

    #[test]
    fn lines_say_what_happened() {
        let r = ChainReport {
            writer: "w1".into(),
            kind: git_ci_core::gc::ChainKind::Done,
            kept: 3,
            cut: vec![git_ci_core::JobId::parse("20261122T040704123-0123456789ab").unwrap()],
            before: gix::ObjectId::null(gix::hash::Kind::Sha1),
            after: None,
            archive: None,
            attempts: 1,
        };
        let opts = |prune, dry_run| Options { policy: Policy::new(None, None), prune, dry_run, now: SystemTime::now() };
        assert_eq!(line(&r, &opts(false, false)), "done/w1: kept 3, archived 1");
        assert_eq!(line(&r, &opts(true, false)), "done/w1: kept 3, pruned 1");
        assert!(line(&r, &opts(false, true)).ends_with("would keep 3, archive 1:\n  20261122T040704123-0123456789ab"));
        assert_eq!(
            total(std::slice::from_ref(&r), &opts(true, true)),
            "total: would keep 3, prune 1, in 1 of 1 chains"
        );
        let idle = ChainReport { cut: vec![], ..r.clone() };
        assert_eq!(line(&idle, &opts(false, false)), "done/w1: kept 3, nothing to cut");
        let archive = ChainReport { kind: git_ci_core::gc::ChainKind::Archive, ..r };
        assert_eq!(line(&archive, &opts(true, false)), "archive/w1: kept 3, pruned 1");
    }
}
