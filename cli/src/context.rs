//! What most commands need first: the user's repository, the hub, commits.

use std::path::PathBuf;
use std::sync::Arc;

use git_ci_core::git::Git;
use git_ci_core::hub::{HubLocation, locate, open_hub};
use git_ci_core::{Hub, HubError};

use crate::error::{CliError, CliResult};

/// The repository the command runs in, if any.
pub fn user_repo() -> Option<gix::Repository> {
    let opened = OPENED.lock().unwrap_or_else(|e| e.into_inner()).take();
    opened.map_or_else(|| gix::discover(".").ok(), |repo| repo.map(gix::Repository::from))
}

/// The repository as opened for the output's colours ([`user_repo_early`]),
/// handed to the command's first [`user_repo`] so that it is not opened
/// twice (~0.5 ms each, of a `submit` that costs a few).
static OPENED: std::sync::Mutex<Option<Option<gix::ThreadSafeRepository>>> = std::sync::Mutex::new(None);

/// [`user_repo`] for the set-up before the command: the command's own first
/// [`user_repo`] then gets this same repository, opened once.
pub fn user_repo_early() -> Option<gix::Repository> {
    let repo = gix::discover(".").ok();
    *OPENED.lock().unwrap_or_else(|e| e.into_inner()) = Some(repo.as_ref().map(|r| r.clone().into_sync()));
    repo
}

pub fn require_repo() -> CliResult<gix::Repository> {
    user_repo().ok_or_else(|| {
        CliError::usage_hint(
            "not inside a git repository",
            "cd into your project's clone, or pass --hub for commands that only read the hub",
        )
    })
}

/// Opens the hub named by `flag` or the usual fallbacks.
pub fn hub(flag: Option<&str>, repo: Option<&gix::Repository>, owner: &str) -> CliResult<Arc<dyn Hub>> {
    let (location, source) = locate(flag, repo).ok_or_else(|| {
        CliError::usage_hint("no hub given", "pass --hub URL, set `git config ci.hub URL`, or run inside a repository")
    })?;
    open_at(&location, repo, owner).map_err(|error| {
        let hint = format!("the hub {} came from {source}", location.display());
        CliError::Hub { error, hint: Some(hint) }
    })
}

/// The hub that holds `ids`: with no --hub, this repository when it holds
/// the first of them, else the usual hub. `git ci run` publishes into the
/// clone it runs in, so the ids it prints live there even when an `origin`
/// (the usual hub) exists; every id printed must open from the same place.
pub fn hub_holding(
    flag: Option<&str>,
    repo: Option<&gix::Repository>,
    owner: &str,
    ids: &[git_ci_core::JobId],
) -> CliResult<Arc<dyn Hub>> {
    if let (None, Some(repo), Some(id)) = (flag, repo, ids.first())
        && let Some((location, _)) = locate(None, Some(repo))
        && location != HubLocation::Path(repo.git_dir().to_path_buf())
        && let Ok(here) = open_at(&HubLocation::Path(repo.git_dir().to_path_buf()), Some(repo), owner)
        && let Ok(board) = git_ci_core::state::Board::read(&*here)
        && matches!(board.view(&*here, id), Ok(Some(_)))
    {
        return Ok(here);
    }
    hub(flag, repo, owner)
}

pub fn open_at(location: &HubLocation, repo: Option<&gix::Repository>, owner: &str) -> Result<Arc<dyn Hub>, HubError> {
    let from = repo.map(|r| r.git_dir().to_path_buf());
    Ok(Arc::from(open_hub(location, from.as_deref(), owner)?))
}

pub fn repo_dir(repo: &gix::Repository) -> PathBuf {
    repo.workdir().unwrap_or(repo.git_dir()).to_path_buf()
}

/// A commit as `(id, tree)`; a usage error when `rev` names none.
pub fn resolve_commit(repo: &gix::Repository, rev: &str) -> CliResult<(gix::ObjectId, gix::ObjectId)> {
    if let Some(found) = quick_commit(repo, rev) {
        return Ok(found);
    }
    let spec = format!("{rev}^{{commit}}");
    let out = Git::new(&repo_dir(repo))
        .and_then(|g| g.args(["rev-parse", "--verify", "--quiet", "--end-of-options", &spec]).run())
        .map_err(|_| {
            CliError::usage_hint(
                format!("{rev:?} is not a commit in this repository"),
                "try a branch, a tag or a commit id; `git log --oneline` lists commits",
            )
        })?;
    let id = gix::ObjectId::from_hex(String::from_utf8_lossy(&out).trim().as_bytes())
        .map_err(|e| CliError::Internal(format!("git rev-parse printed no object id: {e}")))?;
    let tree = repo
        .find_commit(id)
        .and_then(|c| c.tree_id().map(|t| t.detach()))
        .map_err(|e| CliError::Internal(format!("could not read commit {id}: {e}")))?;
    Ok((id, tree))
}

/// `HEAD` (the default of every command) and full commit ids, read
/// in-process: git's own answer, without the ~2 ms of starting `git
/// rev-parse`. Anything else (`main~3`, `v1.0^{}`, `@{u}`, short ids) is
/// git's to resolve, with git's rules for ambiguous names.
fn quick_commit(repo: &gix::Repository, rev: &str) -> Option<(gix::ObjectId, gix::ObjectId)> {
    let id = match rev {
        "HEAD" => repo.head_id().ok()?.detach(),
        hex if hex.len() == repo.object_hash().len_in_hex() => gix::ObjectId::from_hex(hex.as_bytes()).ok()?,
        _ => return None,
    };
    // Not a commit (a tag, a tree): git peels or refuses it.
    let commit = repo.find_object(id).ok()?.try_into_commit().ok()?;
    Some((id, commit.tree_id().ok()?.detach()))
}

/// Commits of `A..B`, oldest first; a single commit otherwise.
pub fn resolve_revs(repo: &gix::Repository, rev: &str) -> CliResult<Vec<(gix::ObjectId, gix::ObjectId)>> {
    if !rev.contains("..") {
        return Ok(vec![resolve_commit(repo, rev)?]);
    }
    let out = Git::new(&repo_dir(repo))
        .and_then(|g| g.args(["rev-list", "--reverse", "--end-of-options", rev]).run())
        .map_err(|e| CliError::usage(format!("{rev:?} is not a valid range: {}", e.stderr())))?;
    let text = String::from_utf8_lossy(&out);
    let commits: Vec<_> = text.lines().map(|l| resolve_commit(repo, l.trim())).collect::<CliResult<_>>()?;
    if commits.is_empty() {
        return Err(CliError::usage(format!("the range {rev:?} holds no commits")));
    }
    Ok(commits)
}

/// The full ref name `rev` stands for, if it is a branch or tag (`refs/heads/main`).
pub fn symbolic_ref(repo: &gix::Repository, rev: &str) -> String {
    if rev.starts_with('-') {
        return String::new();
    }
    // What `git rev-parse --symbolic-full-name HEAD` says: the branch, or
    // `HEAD` itself when detached.
    if rev == "HEAD"
        && let Ok(head) = repo.head_name()
    {
        return head.map_or_else(|| "HEAD".to_owned(), |name| name.as_bstr().to_string());
    }
    Git::new(&repo_dir(repo))
        .and_then(|g| g.args(["rev-parse", "--symbolic-full-name", rev]).run())
        .map(|o| String::from_utf8_lossy(&o).trim().to_owned())
        .unwrap_or_default()
}

/// Who acts (submits, cancels, retries): git's committer identity where
/// the command runs, as `git var` finds it (GIT_COMMITTER_NAME and
/// GIT_COMMITTER_EMAIL, then user.name and user.email, then git's own
/// fallbacks), else $USER.
pub fn actor(repo: Option<&gix::Repository>) -> String {
    if let Some(ident) = repo.and_then(plain_ident) {
        return ident;
    }
    let dir = repo.map(repo_dir).or_else(|| std::env::current_dir().ok()).unwrap_or_default();
    Git::new(&dir)
        .and_then(|g| g.args(["var", "GIT_COMMITTER_IDENT"]).run())
        .ok()
        .and_then(|out| ident_without_date(&String::from_utf8_lossy(&out)))
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// The committer identity read without starting `git var`, where the
/// answer is git's for sure: name and email each set by
/// `GIT_COMMITTER_*`, or else by `committer.*` or `user.*` in git config
/// (git's order), both plain text git would not trim. `None` sends the
/// question to git: its fallbacks (the passwd entry, `$EMAIL`, the host
/// name), and `git -c` settings, which gix does not read.
fn plain_ident(repo: &gix::Repository) -> Option<String> {
    let pick = |env: &str, keys: [&str; 2], config: &dyn Fn(&str) -> Option<String>| {
        std::env::var(env).ok().or_else(|| keys.into_iter().find_map(config))
    };
    let overridden = std::env::var_os("GIT_CONFIG_PARAMETERS").is_some();
    let snapshot = repo.config_snapshot();
    let config = |key: &str| snapshot.string(key).filter(|_| !overridden).map(|v| v.to_string());
    let name = pick("GIT_COMMITTER_NAME", ["committer.name", "user.name"], &config)?;
    let email = pick("GIT_COMMITTER_EMAIL", ["committer.email", "user.email"], &config)?;
    (plain(&name) && plain(&email)).then(|| format!("{name} <{email}>"))
}

/// Text git keeps as it is in an identity: no characters it strips from
/// the ends (its `crud`) or refuses (`<`, `>`, line breaks).
fn plain(s: &str) -> bool {
    let crud = |c: char| c <= ' ' || ".,:;<>\"'\\".contains(c);
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().last()) else { return false };
    !crud(first) && !crud(last) && !s.contains(['<', '>', '\n'])
}

/// Who submits: the committer identity in `repo` (see [`actor`]).
pub fn submitter(repo: &gix::Repository) -> String {
    actor(Some(repo))
}

/// `Name <email>` of git's `Name <email> 1700000000 +0100`.
fn ident_without_date(ident: &str) -> Option<String> {
    let end = ident.rfind('>')?;
    Some(ident[..=end].trim().to_owned()).filter(|s| !s.is_empty())
}

pub fn hostname() -> String {
    git_ci_core::worker::hostname()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identities_skip_git() {
        for ok in ["Ann", "ann@example.com", "Ann B. Smith", "O'Neil Jr"] {
            assert!(plain(ok), "{ok}");
        }
        for trimmed in ["", " Ann", "Ann ", "Ann.", "\"Ann\"", "a<b", "a>b", "a\nb", "'Ann'", ",Ann"] {
            assert!(!plain(trimmed), "{trimmed:?}");
        }
    }
}
