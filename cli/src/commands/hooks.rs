//! `git ci hooks`: the push trigger and the guard of a hub on this machine.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use git_ci_core::hub::{HubLocation, locate};
use git_ci_hooks::install::{self, HookChange, InstallError, Removed};
use git_ci_hooks::{guard, post_receive};

use crate::context;
use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// Install or remove the post-receive trigger and pre-receive guard of a hub
/// on this machine.
///
/// With the hooks installed, every push of a branch (or of a tag that a job
/// asks for) queues the jobs of the pushed commit's .git-ci.toml, a new
/// push to a branch cancels that branch's older pending runs, and malformed
/// updates under refs/ci/ are refused before they are stored. A hosted hub
/// (GitHub, GitLab, Gitea) runs no hooks: use `git ci watch` there.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  git ci hooks install --hub /srv/ci-hub.git\n  git ci hooks uninstall --hub /srv/ci-hub.git"
)]
pub struct HooksArgs {
    #[command(subcommand)]
    pub command: HooksCommand,
}

#[derive(Debug, Subcommand)]
pub enum HooksCommand {
    /// Install the post-receive trigger, the pre-receive guard and the hub's
    /// durability settings.
    ///
    /// A post-receive or pre-receive hook already there is kept (as
    /// post-receive.pre-git-ci, pre-receive.pre-git-ci) and still runs first,
    /// with the same input; its refusal still refuses a push. Installing again
    /// changes nothing. Sets core.fsync=committed,reference and
    /// receive.fsckObjects=true, so that an acknowledged claim or result
    /// survives power loss, and receive.advertisePushOptions=true for
    /// `git ci gc`. `git config ci.guard false` switches the guard off;
    /// ci.maxLogBytes and ci.maxArtifactBytes set its limits.
    Install(TargetArgs),
    /// Remove the hooks and put back the ones that were there before.
    ///
    /// The durability settings stay.
    Uninstall(TargetArgs),
    /// What the installed hook runs (reads post-receive's standard input).
    #[command(hide = true)]
    PostReceive(PostReceiveArgs),
    /// What the installed guard runs (reads pre-receive's standard input).
    #[command(hide = true)]
    PreReceive(PostReceiveArgs),
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The hub: a repository on this machine. Default: git config ci.hub,
    /// else $GIT_CI_HUB, else the remote origin, else this repository.
    #[arg(long, value_name = "PATH")]
    pub hub: Option<String>,
}

#[derive(Debug, Args)]
pub struct PostReceiveArgs {
    /// Where the hook lives (and the earlier hook, if any).
    #[arg(long, value_name = "DIR")]
    pub hook_dir: Option<PathBuf>,
    /// The hook's own arguments, passed on to the earlier hook.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn cmd_hooks(ui: &Ui, args: HooksArgs) -> CliResult {
    match args.command {
        HooksCommand::Install(t) => cmd_install(ui, &t),
        HooksCommand::Uninstall(t) => cmd_uninstall(ui, &t),
        HooksCommand::PostReceive(p) => cmd_post_receive(p),
        HooksCommand::PreReceive(p) => cmd_pre_receive(p),
    }
}

/// Hooks go into a repository on this machine; a URL is a usage error.
fn local_hub(target: &TargetArgs) -> CliResult<PathBuf> {
    let repo = context::user_repo();
    let (location, source) = locate(target.hub.as_deref(), repo.as_ref()).ok_or_else(|| {
        CliError::usage_hint("no hub given", "pass --hub PATH, or run this inside the hub repository")
    })?;
    match location {
        HubLocation::Path(p) => Ok(p),
        HubLocation::Url(u) => Err(CliError::usage_hint(
            format!("the hub {u} (from {source}) is not on this machine: hooks can only be installed into a path"),
            "run this on the hub's machine with --hub PATH, or run `git ci watch --hub URL` for a hub without hooks",
        )),
    }
}

fn install_error(e: InstallError) -> CliError {
    match e {
        InstallError::Io { .. } | InstallError::Git(_) => CliError::Internal(e.to_string()),
        other => CliError::usage(other.to_string()),
    }
}

fn cmd_install(ui: &Ui, target: &TargetArgs) -> CliResult {
    let hub = local_hub(target)?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::Internal(format!("could not tell where the git-ci binary is: {e}")))?;
    let done = install::install(&hub, &exe).map_err(install_error)?;
    ui.err(&installed(&done.hook, &done.change, install::PREVIOUS, &exe));
    ui.err(&installed(&done.guard, &done.guard_change, install::GUARD_PREVIOUS, &exe));
    for f in &done.settings {
        let was = f.current.as_deref().unwrap_or("unset");
        ui.err(&format!("set {} = {} (was {was}): {}", f.setting.key, f.setting.value, f.setting.why));
    }
    Ok(())
}

fn installed(hook: &std::path::Path, change: &HookChange, previous: &str, exe: &std::path::Path) -> String {
    let (hook, exe) = (hook.display(), exe.display());
    match change {
        HookChange::Created => format!("installed {hook} (runs {exe})"),
        HookChange::KeptPrevious => {
            format!("installed {hook} (runs {exe}); the hook that was there is kept as {previous} and still runs first")
        }
        HookChange::Updated => format!("updated {hook} to run {exe}"),
        HookChange::Unchanged => format!("{hook} is already installed; nothing changed"),
    }
}

fn cmd_uninstall(ui: &Ui, target: &TargetArgs) -> CliResult {
    let hub = local_hub(target)?;
    let dir = install::hooks_dir(&hub).map_err(install_error)?;
    let done = install::uninstall(&hub).map_err(install_error)?;
    for (name, removed) in [(install::HOOK, done.trigger), (install::GUARD_HOOK, done.guard)] {
        let hook = dir.join(name);
        let hook = hook.display();
        ui.err(&match removed {
            Removed::Removed => format!("removed {hook}"),
            Removed::Restored => format!("removed git-ci's hook and put back the one that was there: {hook}"),
            Removed::NotInstalled => format!("git-ci's hook is not installed in {hook}; nothing changed"),
        });
    }
    Ok(())
}

/// Runs in the hub, as git runs hooks: the current directory (or $GIT_DIR)
/// is the repository.
fn cmd_post_receive(args: PostReceiveArgs) -> CliResult {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| CliError::Internal(format!("could not read the hook's input: {e}")))?;
    let hub = std::env::var_os("GIT_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    // git says `.`: name the hub by its full path in messages.
    let hub = std::fs::canonicalize(&hub).unwrap_or(hub);
    // stderr: git relays it to the pusher as `remote: ...` lines, and it is
    // not buffered, so our lines and the earlier hook's keep their order.
    let outcome = post_receive::run(&hub, args.hook_dir.as_deref(), &args.args, &input, &mut std::io::stderr());
    if outcome.success() {
        Ok(())
    } else {
        // Everything was said already; exit 1 tells a person running the
        // hook by hand (git itself ignores a post-receive's exit code).
        Err(CliError::Findings)
    }
}

/// The guard: runs in the hub before git applies a push. A non-zero exit
/// refuses the whole push; what we print on stderr reaches the pusher.
fn cmd_pre_receive(args: PostReceiveArgs) -> CliResult {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| CliError::Internal(format!("could not read the hook's input: {e}")))?;
    let hub = std::env::var_os("GIT_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let push = guard::Push::from_env();
    if guard::run(&hub, args.hook_dir.as_deref(), &args.args, &input, &push, &mut std::io::stderr()) {
        Ok(())
    } else {
        Err(CliError::Findings)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn argument_lines_parse_or_fail() {
        let ok = [
            "git-ci hooks install",
            "git-ci hooks install --hub /srv/hub.git",
            "git-ci hooks uninstall --hub hub.git",
            "git-ci hooks post-receive --hook-dir hooks",
            "git-ci hooks post-receive --hook-dir hooks -- a -b",
            "git-ci hooks pre-receive --hook-dir hooks",
        ];
        let bad = ["git-ci hooks", "git-ci hooks install --hub", "git-ci hooks frobnicate"];
        crate::commands::assert_parse_table(&ok, &bad);
    }
}
