//! Terminal output: colours when wanted, progress only on terminals.

use std::io::{IsTerminal, Write};

use git_ci_core::state::State;

use crate::cli::{ColorWhen, OutputArgs};
use crate::error::CliError;

pub struct Ui {
    pub color: bool,
    /// Progress bars and spinners: only where a person watches stderr.
    pub interactive: bool,
    /// `-q`: no progress and no notes on stderr, only results and errors.
    pub quiet: bool,
    /// The first failed write to stdout, reported when the command ends.
    pub(crate) stdout_error: std::sync::OnceLock<std::io::Error>,
}

impl Ui {
    pub fn new(output: &OutputArgs) -> Ui {
        let color = wants_color(output.color, std::io::stdout().is_terminal(), git_color_config);
        let interactive = !output.quiet && std::io::stderr().is_terminal();
        Ui { color, interactive, quiet: output.quiet, stdout_error: Default::default() }
    }

    /// Plain output: no colours, no progress (for tests and nested output).
    pub fn plain() -> Ui {
        Ui { color: false, interactive: false, quiet: false, stdout_error: Default::default() }
    }

    /// `text` in the colour of `state`, if colours are on.
    pub fn state(&self, state: State) -> String {
        let text = state.as_str();
        if !self.color {
            return text.to_owned();
        }
        let code = match state {
            State::Pending => "33",
            State::Running => "36",
            State::Finished(git_ci_core::Status::Passed) => "32",
            State::Finished(_) => "31",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    pub fn out(&self, line: &str) {
        self.out_bytes(format!("{line}\n").as_bytes());
    }

    /// Bytes as they are (a log, an artifact) on stdout.
    pub fn out_bytes(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
            let _ = self.stdout_error.set(e);
        }
    }

    /// Whether stdout stopped taking output (a closed pipe, a full disk):
    /// a command that streams can stop.
    pub fn stdout_failed(&self) -> bool {
        self.stdout_error.get().is_some()
    }

    /// Ends the command's output: an error if any of it was lost.
    ///
    /// A closed pipe is not one. `git ci log X | head` closes stdout as soon
    /// as `head` has its lines; the user asked for exactly that, and a
    /// message (or a non-zero exit) would be noise in every such pipeline.
    /// Any other failure (a full disk, an I/O error) means the output the
    /// user is about to rely on is cut short, and exiting 0 would hide it.
    pub fn finish(&self) -> Result<(), CliError> {
        let flushed = std::io::stdout().lock().flush();
        let error = match (self.stdout_error.get(), flushed) {
            (Some(e), _) => std::io::Error::new(e.kind(), e.to_string()),
            (None, Err(e)) => e,
            (None, Ok(())) => return Ok(()),
        };
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            return Ok(());
        }
        Err(CliError::Internal(format!("could not write the output to stdout: {error}")))
    }

    /// A failure on stderr: `-q` quiets progress and notes, never this.
    pub fn failure(&self, line: &str) {
        eprintln!("{line}");
    }

    /// A note on stderr, which `-q` silences (errors do not come here).
    pub fn err(&self, line: &str) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }
}

/// Whether stdout gets colours. `--color` wins; then `NO_COLOR`
/// (no-color.org); then git's `color.ci`, else `color.ui`, read only when
/// it could matter; then whether stdout is a terminal.
fn wants_color(flag: Option<ColorWhen>, terminal: bool, git_config: impl FnOnce() -> Option<String>) -> bool {
    match flag {
        Some(ColorWhen::Always) => return true,
        Some(ColorWhen::Never) => return false,
        Some(ColorWhen::Auto) => return terminal,
        None => {}
    }
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    // git: `always` colours even into pipes, `true` means `auto` since 1.8.4.
    match git_config().map(|v| v.to_ascii_lowercase()).as_deref() {
        Some("always") => true,
        Some("never" | "false" | "no" | "off" | "0") => false,
        _ => terminal,
    }
}

/// `color.ci`, else `color.ui`, from the git config git-ci reads its own
/// settings from ([`crate::settings::GitConfig`]).
fn git_color_config() -> Option<String> {
    let config = crate::settings::GitConfig::load(crate::context::user_repo_early().as_ref());
    config.string("color.ci").or_else(|| config.string("color.ui"))
}

/// `2m` / `3h` / `5d` ago, from an RFC 3339 stamp.
pub fn age(stamp: &str) -> String {
    let Some(t) = git_ci_core::time::parse_rfc3339(stamp) else {
        return "?".into();
    };
    let secs = std::time::SystemTime::now().duration_since(t).map(|d| d.as_secs()).unwrap_or(0);
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_git_config_then_the_terminal() {
        let never = || Some("never".to_owned());
        let always = || Some("always".to_owned());
        let unset = || None;
        assert!(wants_color(Some(ColorWhen::Always), false, never));
        assert!(!wants_color(Some(ColorWhen::Never), true, always));
        assert!(!wants_color(Some(ColorWhen::Auto), false, always));
        assert!(wants_color(Some(ColorWhen::Auto), true, never));
        // NO_COLOR is not set in the test environment's usual case; these
        // hold either way for the `false` outcomes.
        assert!(!wants_color(None, true, never));
        assert!(!wants_color(None, false, unset));
        assert!(!wants_color(None, false, || Some("true".to_owned())));
    }
}
