//! Terminal output: colours when wanted, progress only on terminals.

use std::io::{IsTerminal, Write};

use git_ci_core::state::State;

pub struct Ui {
    pub color: bool,
    /// Progress bars and spinners: only where a person watches stderr.
    pub interactive: bool,
}

impl Ui {
    pub fn new() -> Ui {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ui { color: !no_color && std::io::stdout().is_terminal(), interactive: std::io::stderr().is_terminal() }
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
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }

    pub fn err(&self, line: &str) {
        eprintln!("{line}");
    }
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
