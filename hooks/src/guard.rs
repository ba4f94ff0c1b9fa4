//! What the installed `pre-receive` hook runs: the earlier hook first, with
//! the same input, then git-ci's checks of every update under `refs/ci/`
//! ([`git_ci_core::guard`]). Any refusal refuses the whole push: git
//! applies no ref of a push whose pre-receive exits non-zero, atomic or not.
//!
//! Every claim, heartbeat and result goes through here, so the hook leaves
//! before opening anything when no update needs reading (deletions, lease
//! checks, branches), and then reads only the pushed objects and the tips
//! involved.

use std::io::Write;
use std::path::{Path, PathBuf};

use git_ci_core::guard::{self, Update};
use git_ci_core::validate::{HubStore, Limits};

use crate::chain::{is_executable, run_previous, say};

/// The name a pre-receive hook that was there before ours is kept under.
pub const PREVIOUS: &str = "pre-receive.pre-git-ci";
/// The push option `git ci gc` sends to rewrite `done` chains.
pub use git_ci_core::gc::PUSH_OPTION as GC_OPTION;
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
    guard::check_push(&store, updates, push.gc(), &limits).map_err(|r| r.to_string())
}
