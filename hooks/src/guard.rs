//! What the installed `pre-receive` hook runs: the earlier hook first, with
//! the same input, then git-ci's checks of every update under `refs/ci/`
//! ([`git_ci_core::validate`]). Any refusal refuses the whole push: git
//! applies no ref of a push whose pre-receive exits non-zero, atomic or not.
//!
//! Every claim, heartbeat and result goes through here, so the hook leaves
//! before opening anything when no update needs reading (deletions, lease
//! checks, branches), and then reads only the pushed objects and the tips
//! involved.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git_ci_core::validate::{self, HubStore, Limits, Update};

/// The name a pre-receive hook that was there before ours is kept under.
pub const PREVIOUS: &str = "pre-receive.pre-git-ci";
/// The push option `git ci gc` sends to rewrite `done` chains.
pub const GC_OPTION: &str = "ci.gc";
/// git config switch: `ci.guard=false` lets everything through.
pub const SWITCH: &str = "ci.guard";

/// What git gives a pre-receive hook besides its standard input.
#[derive(Clone, Debug, Default)]
pub struct Push {
    /// `GIT_PUSH_OPTION_<n>`.
    pub options: Vec<String>,
    /// `GIT_OBJECT_DIRECTORY`: the quarantine holding the pushed objects.
    pub quarantine: Option<PathBuf>,
}

impl Push {
    /// From the hook's environment, as git sets it.
    pub fn from_env() -> Push {
        let count = std::env::var("GIT_PUSH_OPTION_COUNT").ok().and_then(|c| c.parse::<usize>().ok()).unwrap_or(0);
        let options = (0..count).filter_map(|i| std::env::var(format!("GIT_PUSH_OPTION_{i}")).ok()).collect();
        Push { options, quarantine: std::env::var_os("GIT_OBJECT_DIRECTORY").map(PathBuf::from) }
    }

    pub fn gc(&self) -> bool {
        self.options.iter().any(|o| o == GC_OPTION)
    }
}

/// Runs the guard for the push described by `input` (pre-receive's stdin)
/// on the hub at `hub_dir`; returns whether the push may go on. Messages go
/// to `out`, which git shows the pusher as `remote: ...` lines.
pub fn run(
    hub_dir: &Path,
    hook_dir: Option<&Path>,
    args: &[String],
    input: &[u8],
    push: &Push,
    out: &mut dyn Write,
) -> bool {
    let previous = hook_dir.map(|d| d.join(PREVIOUS)).filter(|p| is_executable(p));
    if let Some(p) = previous {
        let code = run_previous(&p, args, input, out);
        if code != 0 {
            return false;
        }
    }
    let updates: Vec<Update> = String::from_utf8_lossy(input).lines().filter_map(Update::parse_line).collect();
    if !updates.iter().any(Update::needs_check) {
        return true;
    }
    match check(hub_dir, &updates, push) {
        Ok(()) => true,
        Err(message) => {
            say(out, &message);
            false
        }
    }
}

fn check(hub_dir: &Path, updates: &[Update], push: &Push) -> Result<(), String> {
    // Fail closed: a guard that cannot read refuses rather than waves through.
    let store = HubStore::open(hub_dir, push.quarantine.as_deref()).map_err(|e| format!("refused the push: {e}"))?;
    let config = store.repo.config_snapshot();
    if config.boolean(SWITCH) == Some(false) {
        return Ok(());
    }
    let limits = Limits::from_config(&config);
    validate::check_push(&store, updates, push.gc(), &limits).map_err(|r| r.to_string())
}

/// Every line prefixed, so the pusher knows which hook spoke.
fn say(out: &mut dyn Write, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "git-ci: {line}");
    }
    let _ = out.flush();
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs the hook git-ci found at install with our arguments, environment
/// (the quarantine and push options included) and standard streams.
fn run_previous(hook: &Path, args: &[String], input: &[u8], out: &mut dyn Write) -> i32 {
    let mut child = match Command::new(hook).args(args).stdin(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            say(out, &format!("error: could not run {}: {e}", hook.display()));
            return 127;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input closes the pipe early: fine.
        let _ = stdin.write_all(input);
    }
    match child.wait() {
        Ok(status) => status.code().unwrap_or(128),
        Err(e) => {
            say(out, &format!("error: waiting for {}: {e}", hook.display()));
            128
        }
    }
}
