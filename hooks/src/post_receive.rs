//! What the installed `post-receive` hook runs: the earlier hook first, with
//! the same input, then the pushed branches and tags turned into jobs.
//!
//! Nothing here can reject a push (post-receive runs after git updated the
//! refs), and nothing here should break one: every problem becomes a
//! `git-ci: ...` line that the pusher sees as `remote: git-ci: ...`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use git_ci_core::hub::{Hub, LocalHub};

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
    let plan = trigger::plan(&hub.repo(), updates, "post-receive");
    trigger::apply(&hub, &plan)
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

/// Runs the hook git-ci found at install, with our arguments, environment
/// and standard streams, feeding it the same input.
fn run_previous(hook: &Path, args: &[String], input: &[u8], out: &mut dyn Write) -> i32 {
    let child = Command::new(hook).args(args).stdin(Stdio::piped()).spawn();
    let mut child = match child {
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
