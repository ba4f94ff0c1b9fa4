//! `git ci hooks install` / `uninstall`: the post-receive trigger and the
//! pre-receive guard ([`crate::guard`]) in a hub on this machine.
//!
//! The installed hook is a few lines of `sh` that exec the `git-ci` binary
//! by the absolute path it had at install time (hooks run with whatever
//! PATH the git server has, often not the user's). A hook that was already
//! there is kept as `post-receive.pre-git-ci` and still runs, first, with
//! the same input; uninstall puts it back as it was (the same file, moved).
//! Installing again with the same binary changes nothing. Both hooks are
//! handled alike; the guard's earlier hook is `pre-receive.pre-git-ci`, and
//! its refusal still refuses the push.

use std::path::{Path, PathBuf};

use git_ci_core::git::{Git, GitError};

use crate::chain::is_executable;
use crate::durability;

pub const HOOK: &str = "post-receive";
/// The name a hook that was there before ours is kept under.
pub const PREVIOUS: &str = "post-receive.pre-git-ci";
pub const GUARD_HOOK: &str = "pre-receive";
pub use crate::guard::PREVIOUS as GUARD_PREVIOUS;

/// `git ci gc` tells the guard it may rewrite `done` chains with a push
/// option, which git sends only to a hub that advertises them.
pub const PUSH_OPTIONS: durability::Setting = durability::Setting {
    key: "receive.advertisePushOptions",
    value: "true",
    ok: |v| v == Some("true"),
    why: "pushes can carry -o ci.gc, which lets `git ci gc` through the guard",
    risk: "`git ci gc` cannot rewrite done chains through the guard",
};
/// How we recognise our own hook.
const MARKER: &str = "# managed-by: git-ci";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("there is no hub at {path}: nothing is there (make one with `git init --bare {path}`)")]
    Missing { path: String },
    #[error("{path} is not a git repository: {source}")]
    NotARepository {
        path: String,
        #[source]
        source: GitError,
    },
    #[error(transparent)]
    Git(#[from] GitError),
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{hook} is not git-ci's hook, and {previous} (the hook git-ci found at install) is still there: \
         merge them by hand, then remove {previous} and install again"
    )]
    Tangled { hook: String, previous: String },
    #[error("the git-ci binary's path {0:?} is not UTF-8; install git-ci under a plain path")]
    ExePath(PathBuf),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.display().to_string();
    move |source| InstallError::Io { action, path, source }
}

/// What install did to the hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookChange {
    Created,
    /// A hook was there: kept under [`PREVIOUS`], and run by ours.
    KeptPrevious,
    /// Ours was there with another binary's path.
    Updated,
    Unchanged,
}

#[derive(Debug)]
pub struct Installed {
    pub hook: PathBuf,
    pub change: HookChange,
    /// The pre-receive guard.
    pub guard: PathBuf,
    pub guard_change: HookChange,
    /// Settings that were changed, with their old values.
    pub settings: Vec<durability::Found>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removed {
    /// Ours removed; no hook was there before.
    Removed,
    /// Ours removed and the earlier hook put back.
    Restored,
    NotInstalled,
}

/// What uninstall did to each hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uninstalled {
    pub trigger: Removed,
    pub guard: Removed,
}

/// What the hub's post-receive (or pre-receive) is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookState {
    Missing,
    /// Someone else's hook.
    Foreign,
    Ours {
        exe: PathBuf,
        executable: bool,
        exe_runs: bool,
    },
}

/// The hub's hooks directory, honouring `core.hooksPath`.
pub fn hooks_dir(hub: &Path) -> Result<PathBuf, InstallError> {
    hooks_dir_by(hub, Git::new(hub)?)
}

/// [`hooks_dir`] for reading only, also in another user's hub (`doctor`).
fn hooks_dir_to_read(hub: &Path) -> Result<PathBuf, InstallError> {
    hooks_dir_by(hub, durability::reading_config(hub)?)
}

fn hooks_dir_by(hub: &Path, git: Git) -> Result<PathBuf, InstallError> {
    // git would only say it could not start in a directory that is not there.
    if !hub.exists() {
        return Err(InstallError::Missing { path: hub.display().to_string() });
    }
    let out = git
        .args(["rev-parse", "--git-path", "hooks"])
        .run()
        .map_err(|source| InstallError::NotARepository { path: hub.display().to_string(), source })?;
    Ok(hub.join(String::from_utf8_lossy(&out).trim()))
}

/// The hook script for the binary at `exe`.
///
/// Workers push `refs/ci/*` all day long, and starting git-ci for those
/// pushes would only add a process start to every claim and result: the
/// script reads the updates with shell builtins and starts git-ci only for
/// branches and tags. The input is re-assembled byte for byte (git writes
/// `<old> <new> <ref>` lines, single-spaced, newline-terminated).
pub fn script(exe: &Path) -> Result<String, InstallError> {
    let exe = exe.to_str().ok_or_else(|| InstallError::ExePath(exe.to_owned()))?;
    Ok(format!(
        r#"#!/bin/sh
{MARKER} (`git ci hooks install`; `git ci hooks uninstall` restores what was here)
# Queues git-ci jobs for pushed branches and tags, after running the hook
# that was here before ({PREVIOUS}, if any) with the same input.
exe={exe}
case $0 in */*) dir=${{0%/*}} ;; *) dir=. ;; esac
input= ours=
while read -r old new ref || [ -n "$old" ]; do
	input="$input$old $new $ref
"
	case $ref in refs/heads/*|refs/tags/*) ours=1 ;; esac
done
if [ -n "$ours" ] && [ -x "$exe" ]; then
	printf '%s' "$input" | "$exe" hooks post-receive --hook-dir "$dir" "$@"
	exit
fi
if [ -n "$ours" ]; then
	echo "git-ci: $exe is missing, no jobs queued: run \`git ci hooks install\` again" >&2
fi
if [ -x "$dir/{PREVIOUS}" ]; then
	printf '%s' "$input" | "$dir/{PREVIOUS}" "$@"
fi
"#,
        exe = shell_quote(exe)
    ))
}

/// The pre-receive hook for the binary at `exe`: git-ci reads the input
/// itself (and runs the earlier hook first), so the script only execs it.
/// Without the binary the guard cannot check anything; it says so and lets
/// the earlier hook decide, rather than stop every push to the hub.
pub fn guard_script(exe: &Path) -> Result<String, InstallError> {
    let exe = exe.to_str().ok_or_else(|| InstallError::ExePath(exe.to_owned()))?;
    Ok(format!(
        r#"#!/bin/sh
{MARKER} (`git ci hooks install`; `git ci hooks uninstall` restores what was here)
# Refuses malformed refs/ci updates (git-ci's guard), after running the hook
# that was here before ({GUARD_PREVIOUS}, if any) with the same input.
exe={exe}
case $0 in */*) dir=${{0%/*}} ;; *) dir=. ;; esac
if [ -x "$exe" ]; then
	exec "$exe" hooks pre-receive --hook-dir "$dir" "$@"
fi
echo "git-ci: $exe is missing, refs/ci updates are not checked: run \`git ci hooks install\` again" >&2
if [ -x "$dir/{GUARD_PREVIOUS}" ]; then
	exec "$dir/{GUARD_PREVIOUS}" "$@"
fi
"#,
        exe = shell_quote(exe)
    ))
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Installs both hooks into the hub at `hub` for the binary at `exe`, and
/// the durability settings.
pub fn install(hub: &Path, exe: &Path) -> Result<Installed, InstallError> {
    let dir = hooks_dir(hub)?;
    std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
    let change = place(&dir, HOOK, PREVIOUS, &script(exe)?)?;
    let guard_change = place(&dir, GUARD_HOOK, GUARD_PREVIOUS, &guard_script(exe)?)?;
    let mut settings = durability::ensure(hub)?;
    settings.extend(ensure_setting(hub, PUSH_OPTIONS)?);
    Ok(Installed { hook: dir.join(HOOK), change, guard: dir.join(GUARD_HOOK), guard_change, settings })
}

/// Puts `want` in place as `dir/name`, keeping someone else's hook as
/// `dir/previous`.
fn place(dir: &Path, name: &str, previous: &str, want: &str) -> Result<HookChange, InstallError> {
    let hook = dir.join(name);
    let previous = dir.join(previous);
    Ok(match read_hook(&hook)? {
        Some(text) if text == want => HookChange::Unchanged,
        Some(text) if is_ours(&text) => {
            write_hook(&hook, want)?;
            HookChange::Updated
        }
        Some(_) if exists(&previous) => {
            return Err(InstallError::Tangled {
                hook: hook.display().to_string(),
                previous: previous.display().to_string(),
            });
        }
        Some(_) => {
            keep_previous(&hook, &previous)?;
            write_hook(&hook, want)?;
            HookChange::KeptPrevious
        }
        None => {
            write_hook(&hook, want)?;
            HookChange::Created
        }
    })
}

/// Sets one setting when its current value does not do; returns it with
/// its old value when it changed.
fn ensure_setting(hub: &Path, setting: durability::Setting) -> Result<Option<durability::Found>, InstallError> {
    let found = inspect_setting(hub, setting)?;
    if found.ok() {
        return Ok(None);
    }
    Git::new(hub)?.args(["config", "--local", setting.key, setting.value]).run()?;
    Ok(Some(found))
}

/// One setting as git sees it (booleans normalised).
pub fn inspect_setting(hub: &Path, setting: durability::Setting) -> Result<durability::Found, InstallError> {
    let out = durability::reading_config(hub)?.args(["config", "--get", "--type=bool", setting.key]).output()?;
    let current = match out.status.code() {
        Some(0) => Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
        Some(1) => None,
        _ => return Err(git_ci_core::git::failed(format!("config --get {}", setting.key), &out).into()),
    };
    Ok(durability::Found { setting, current })
}

/// Removes our hooks and puts back the ones that were there before, if any.
/// The durability settings stay: they are good for any hub.
pub fn uninstall(hub: &Path) -> Result<Uninstalled, InstallError> {
    let dir = hooks_dir(hub)?;
    Ok(Uninstalled { trigger: remove(&dir, HOOK, PREVIOUS)?, guard: remove(&dir, GUARD_HOOK, GUARD_PREVIOUS)? })
}

fn remove(dir: &Path, name: &str, previous: &str) -> Result<Removed, InstallError> {
    let hook = dir.join(name);
    let previous = dir.join(previous);
    let current = read_hook(&hook)?;
    if current.as_deref().is_some_and(|t| !is_ours(t)) {
        if exists(&previous) {
            return Err(InstallError::Tangled {
                hook: hook.display().to_string(),
                previous: previous.display().to_string(),
            });
        }
        return Ok(Removed::NotInstalled);
    }
    if exists(&previous) {
        // One rename: there is never a moment without a hook.
        std::fs::rename(&previous, &hook).map_err(io("restore", &hook))?;
        return Ok(Removed::Restored);
    }
    if current.is_none() {
        return Ok(Removed::NotInstalled);
    }
    std::fs::remove_file(&hook).map_err(io("remove", &hook))?;
    Ok(Removed::Removed)
}

/// What the hub's post-receive hook is, for `git ci doctor`.
pub fn inspect(hub: &Path) -> Result<HookState, InstallError> {
    inspect_hook(&hooks_dir_to_read(hub)?.join(HOOK))
}

/// What the hub's pre-receive hook is, for `git ci doctor`.
pub fn inspect_guard(hub: &Path) -> Result<HookState, InstallError> {
    inspect_hook(&hooks_dir_to_read(hub)?.join(GUARD_HOOK))
}

fn inspect_hook(hook: &Path) -> Result<HookState, InstallError> {
    let Some(text) = read_hook(hook)? else {
        return Ok(HookState::Missing);
    };
    if !is_ours(&text) {
        return Ok(HookState::Foreign);
    }
    let exe = text
        .lines()
        .find_map(|l| l.strip_prefix("exe="))
        .map(|q| PathBuf::from(q.trim_matches('\'').replace(r"'\''", "'")))
        .unwrap_or_default();
    Ok(HookState::Ours { executable: is_executable(hook), exe_runs: is_executable(&exe), exe })
}

fn is_ours(text: &str) -> bool {
    text.lines().nth(1).is_some_and(|l| l.starts_with(MARKER))
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// The hook's text (lossy: a binary hook is simply not ours); `None` when
/// there is none.
fn read_hook(hook: &Path) -> Result<Option<String>, InstallError> {
    if !exists(hook) {
        return Ok(None);
    }
    match std::fs::read(hook) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        // A dangling symlink is still someone's hook.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(String::new())),
        Err(e) => Err(io("read", hook)(e)),
    }
}

/// Keeps the existing hook under [`PREVIOUS`] without a moment where
/// `post-receive` is missing: a hard link first (the same file, mode and
/// all), then ours is renamed over the original name.
fn keep_previous(hook: &Path, previous: &Path) -> Result<(), InstallError> {
    if std::fs::hard_link(hook, previous).is_ok() {
        return Ok(());
    }
    // Some filesystems have no hard links: a plain move then.
    std::fs::rename(hook, previous).map_err(io("keep", hook))
}

/// Writes the hook atomically: a temporary file, made executable, renamed.
fn write_hook(hook: &Path, text: &str) -> Result<(), InstallError> {
    git_ci_core::atomic::Write { mode: 0o755, durable: true }.to(hook, text.as_bytes()).map_err(io("write", hook))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_quotes_the_binary_and_is_recognised() {
        let s = script(Path::new("/opt/it's/git-ci")).unwrap();
        assert!(s.contains(r"exe='/opt/it'\''s/git-ci'"), "{s}");
        assert!(is_ours(&s));
        assert!(!is_ours("#!/bin/sh\necho hi\n"));
        let g = guard_script(Path::new("/opt/git-ci")).unwrap();
        assert!(is_ours(&g) && g.contains("hooks pre-receive"), "{g}");
    }
}
