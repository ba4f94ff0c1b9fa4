//! What both installed hooks do around their own work: run the hook that
//! was there before git-ci (same arguments, environment and input), and
//! speak to the pusher.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Every line prefixed, so the pusher knows which hook spoke.
pub(crate) fn say(out: &mut dyn Write, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "git-ci: {line}");
    }
    let _ = out.flush();
}

pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs the hook git-ci found at install with our arguments, environment
/// (for pre-receive: the quarantine and push options) and standard
/// streams, feeding it the same input; returns its exit code.
pub(crate) fn run_previous(hook: &Path, args: &[String], input: &[u8], out: &mut dyn Write) -> i32 {
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
