//! What the installed `post-receive` hook runs: the earlier hook first, with
//! the same input, then the pushed branches and tags turned into jobs.
//!
//! Nothing here can reject a push (post-receive runs after git updated the
//! refs), and nothing here should break one: every problem becomes a
//! `git-ci: ...` line that the pusher sees as `remote: git-ci: ...`.

use std::io::Write;
use std::path::Path;

use git_ci_core::hub::{Hub, LocalHub};

use crate::chain::{is_executable, run_previous, say};
use crate::install::PREVIOUS;
use crate::trigger::{self, Update};

/// How the hook went; the process exits non-zero when either part failed
/// (git ignores a post-receive's exit code, but a person running it by
/// hand should see it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The earlier hook's exit code, when there is one.
    pub previous: Option<i32>,
    pub triggered_ok: bool,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.triggered_ok && self.previous.is_none_or(|c| c == 0)
    }
}

/// Runs the hook for the push described by `input` (post-receive's stdin)
/// on the hub at `hub_dir`. `hook_dir` holds the earlier hook, if any;
/// `args` are the hook's own arguments. Messages go to `out`.
pub fn run(hub_dir: &Path, hook_dir: Option<&Path>, args: &[String], input: &[u8], out: &mut dyn Write) -> Outcome {
    // Like git, which skips a hook that is not executable.
    let previous = hook_dir.map(|d| d.join(PREVIOUS)).filter(|p| is_executable(p));
    let previous = previous.map(|p| run_previous(&p, args, input, out));
    let updates: Vec<Update> = String::from_utf8_lossy(input).lines().filter_map(Update::parse_line).collect();
    // Workers push refs/ci/* all day long: leave before opening anything.
    if !updates.iter().any(|u| crate::patterns::RefKind::of(&u.refname).is_some()) {
        return Outcome { previous, triggered_ok: true };
    }
    let triggered_ok = match trigger_jobs(hub_dir, &updates) {
        Ok(events) => {
            for e in events {
                say(out, &e.describe());
            }
            true
        }
        Err(e) => {
            say(out, &format!("error: {e}"));
            say(out, "the push went through, but no jobs were queued for it: push again, or `git ci submit`");
            false
        }
    };
    Outcome { previous, triggered_ok }
}

fn trigger_jobs(hub_dir: &Path, updates: &[Update]) -> Result<Vec<trigger::Event>, git_ci_core::HubError> {
    let hub = LocalHub::open(hub_dir)?;
    let project = git_ci_core::project::of_hub(&hub);
    let plan = trigger::plan(&hub.repo(), updates, "post-receive", &project);
    trigger::apply(&hub, &plan)
}
