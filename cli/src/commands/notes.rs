//! `git ci notes`: job states as git notes under `refs/notes/ci` in this
//! clone, so `git log --notes=ci` (and any git UI that shows notes) shows CI
//! status with no server. The notes are local: nothing is pushed.

use std::collections::{HashMap, HashSet};

use clap::Args;
use git_ci_core::git::Git;
use git_ci_core::notes::NOTES_REF;
use git_ci_core::state::{Board, JobView, State};
use gix::ObjectId;

use crate::cli::HubArgs;
use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Write each commit's job states as git notes under refs/notes/ci.
///
/// One note per commit that has jobs on the hub, one line per job name
/// (sorted by name): its latest run and how many runs it had, replacing the ci note git-ci wrote
/// before. Commits without jobs, and commits outside the range, keep their
/// notes. The notes live in this clone only: nothing is pushed.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci notes                   the last 20 commits of HEAD\n  git ci notes origin/main..HEAD   every commit of a range\n  git ci notes v1.2 --dry-run    print the note of one commit\n  git log --notes=ci             read them (or: git config notes.displayRef refs/notes/ci)"
)]
pub struct NotesArgs {
    /// A range A..B (every commit of it) or one commit. Default: the last
    /// 20 commits of HEAD (see -n).
    #[arg(value_name = "REV-RANGE")]
    pub range: Option<String>,
    /// At most this many commits, newest first (default 20 without REV-RANGE).
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max_count: Option<usize>,
    /// Print the notes instead of writing them.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub hub: HubArgs,
}

/// Commits annotated when no REV-RANGE is given.
const DEFAULT_COUNT: usize = 20;

pub fn cmd_notes(ui: &Ui, args: NotesArgs) -> CliResult {
    let repo = context::require_repo()?;
    let commits = commits(&repo, &args)?;
    let hub = context::hub(args.hub.hub.as_deref(), Some(&repo), "client")?;
    let notes = collect(&*hub, &commits)?;
    if args.dry_run {
        for (commit, text) in &notes {
            ui.out(&format!("commit {commit}"));
            text.lines().for_each(|l| ui.out(&format!("    {l}")));
            ui.out("");
        }
        return Ok(());
    }
    let message = format!("Notes added by 'git ci notes' for {} commits", notes.len());
    let changed = git_ci_core::notes::write(&repo, &notes, &message).map_err(|e| CliError::Internal(e.to_string()))?;
    let n = notes.len();
    let commits_word = if n == 1 { "commit" } else { "commits" };
    if changed || n == 0 {
        ui.err(&format!("wrote notes for {n} {commits_word} (of {}) into {NOTES_REF}", commits.len()));
    } else {
        ui.err(&format!("notes for {n} {commits_word} (of {}) already up to date in {NOTES_REF}", commits.len()));
    }
    if n > 0 {
        ui.err("see them with `git log --notes=ci`");
    }
    Ok(())
}

/// The commits to annotate, newest first.
fn commits(repo: &gix::Repository, args: &NotesArgs) -> CliResult<Vec<ObjectId>> {
    let (rev, limit) = match &args.range {
        Some(rev) if !rev.contains("..") => return Ok(vec![context::resolve_commit(repo, rev)?.0]),
        Some(rev) => (rev.as_str(), args.max_count),
        None => ("HEAD", Some(args.max_count.unwrap_or(DEFAULT_COUNT))),
    };
    let mut git = Git::new(&context::repo_dir(repo)).map_err(|e| CliError::Internal(e.to_string()))?.arg("rev-list");
    if let Some(n) = limit {
        git = git.arg(format!("--max-count={n}"));
    }
    let out = git.args(["--end-of-options", rev]).run().map_err(|e| {
        CliError::usage_hint(
            format!("{rev:?} names no commits here: {}", e.stderr()),
            "give a range like origin/main..HEAD, or a commit; `git log --oneline` lists commits",
        )
    })?;
    String::from_utf8_lossy(&out)
        .lines()
        .map(|l| {
            ObjectId::from_hex(l.trim().as_bytes())
                .map_err(|e| CliError::Internal(format!("git rev-list printed no object id: {e}")))
        })
        .collect()
}

/// The note of every commit of `commits` that has jobs, in the same order.
///
/// Nothing on the hub indexes jobs by commit, so this reads every job the
/// hub knows (as `git ci status REV` does) and keeps those of `commits`.
fn collect(hub: &dyn git_ci_core::Hub, commits: &[ObjectId]) -> CliResult<Vec<(ObjectId, String)>> {
    let wanted: HashSet<String> = commits.iter().map(|c| c.to_string()).collect();
    let board = Board::read(hub)?;
    let mut by_commit: HashMap<String, Vec<JobView>> = HashMap::new();
    for view in board.all(hub, usize::MAX)? {
        // A malformed job document names no commit: nothing to annotate.
        let Some(commit) = view.job.as_ref().map(|j| j.commit.clone()).filter(|c| wanted.contains(c)) else {
            continue;
        };
        by_commit.entry(commit).or_default().push(view);
    }
    Ok(commits.iter().filter_map(|c| Some((*c, note_text(by_commit.get_mut(&c.to_string())?)))).collect())
}

/// One line a job name, sorted by name: its latest run, and how many runs
/// it had on the commit. A commit with hundreds of ad-hoc runs still gets
/// a note one can read, and the same jobs always give the same note.
fn note_text(views: &mut [JobView]) -> String {
    views.sort_by(|a, b| (name(a), &a.id).cmp(&(name(b), &b.id)));
    views
        .chunk_by(|a, b| name(a) == name(b))
        .map(|runs| line(runs.last().expect("chunks are not empty"), runs.len()) + "\n")
        .collect()
}

fn name(v: &JobView) -> &str {
    v.job.as_ref().map_or("?", |j| j.spec.name.as_str())
}

/// `test: failed (12.3s, 40 tests 2 failed, worker w1, job 2026...-abc)`,
/// with `, latest of 3 runs` when there were more, then `: <reason>` for
/// an error or a cancel.
fn line(v: &JobView, runs: usize) -> String {
    let mut facts = Vec::new();
    if let Some(r) = &v.result {
        facts.push(git_ci_core::time::human_duration(std::time::Duration::from_millis(r.duration_ms)));
        if r.tests.total > 0 {
            facts.push(format!("{} tests {} failed", r.tests.total, r.tests.failed));
        }
        facts.push(format!("worker {}", r.worker));
    } else if let Some(c) = v.claim.as_ref().filter(|_| v.state == State::Running) {
        facts.push(format!("worker {}", c.worker));
    }
    facts.push(format!("job {}", v.id));
    if runs > 1 {
        facts.push(format!("latest of {runs} runs"));
    }
    let mut text = format!("{}: {} ({})", name(v), v.state.as_str(), facts.join(", "));
    if let Some(reason) = v.result.as_ref().and_then(|r| r.reason.as_deref()).and_then(|r| r.lines().next()) {
        text.push_str(&format!(": {reason}"));
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn argument_lines_parse_or_fail() {
        let ok = [
            "git-ci notes",
            "git-ci notes HEAD~5..HEAD",
            "git-ci notes main --dry-run",
            "git-ci notes -n 50 --hub /srv/hub.git",
            "git-ci notes origin/main..HEAD --max-count 3",
        ];
        let bad = ["git-ci notes a b", "git-ci notes -n many", "git-ci notes --dry"];
        crate::commands::assert_parse_table(&ok, &bad);
    }
}
