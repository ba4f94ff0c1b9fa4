//! What several commands share on the command line: the output flags, the
//! hub flag and the parsers of values. Each command's own arguments live in
//! its file under `commands/`, and the `Cli` that gathers them in
//! `commands/mod.rs`. Doc comments are the `--help`.

use clap::{ArgAction, Args, ValueEnum};

/// How much to print, and in what colours; every command takes these.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct OutputArgs {
    /// Colours on stdout: auto (on a terminal, unless NO_COLOR is set or
    /// git config color.ci / color.ui says otherwise), always, never.
    #[arg(long, global = true, value_name = "WHEN", value_enum, help_heading = "Output options")]
    pub color: Option<ColorWhen>,
    /// Print only results and errors: no progress, no notes.
    #[arg(short, long, global = true, help_heading = "Output options")]
    pub quiet: bool,
    /// Log more on stderr: -v every git command git-ci runs and how long it
    /// took, -vv everything (also GIT_CI_LOG=debug, or RUST_LOG).
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet", help_heading = "Output options")]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// Where the hub is, for every command that talks to one.
#[derive(Debug, Args, Clone, Default)]
pub struct HubArgs {
    /// The hub: a path or any URL git can push to. Default: git config
    /// ci.hub, else $GIT_CI_HUB, else the remote origin, else this repository.
    #[arg(long, value_name = "URL|PATH")]
    pub hub: Option<String>,
}

pub fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    git_ci_core::time::parse_duration(s)
}

/// A job's timeout: longer than zero, at most a week.
pub fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    let max = git_ci_core::model::spec_rules::MAX_TIMEOUT;
    match git_ci_core::time::parse_duration_at_most(s, "timeout", max)? {
        d if d.is_zero() => Err("a timeout must be longer than zero".into()),
        d => Ok(d),
    }
}

/// A worker's lease, at most [`git_ci_core::model::Claim::MAX_LEASE`].
pub fn parse_lease(s: &str) -> Result<std::time::Duration, String> {
    git_ci_core::time::parse_duration_at_most(s, "lease", git_ci_core::model::Claim::MAX_LEASE)
}

/// A worker's poll and log intervals: a day at most (a worker that looks
/// less often than that is a stopped one).
pub fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    git_ci_core::time::parse_duration_at_most(s, "interval", std::time::Duration::from_secs(86_400))
}
