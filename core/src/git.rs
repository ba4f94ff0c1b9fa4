//! The one place that runs the `git` binary.
//!
//! gix cannot push, and `git fetch` beats gix's fetch on big ref sets, so
//! talking to a remote hub goes through git itself. Every call gets a null
//! stdin (git must never prompt a worker), `LC_ALL=C` (we parse its output),
//! no terminal prompt, and is logged with its duration at debug level.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("could not find the `git` program on PATH: install git 2.38 or newer")]
    NotFound,
    #[error("could not start `git {args}`: {source}")]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {args}` failed ({status}): {stderr}")]
    Failed { args: String, status: String, stderr: String, stdout: String },
}

impl GitError {
    /// git's own words, for callers that classify failures.
    pub fn stderr(&self) -> &str {
        match self {
            GitError::Failed { stderr, .. } => stderr,
            _ => "",
        }
    }
}

/// The `git` binary, found once with `which`-like PATH search.
pub fn git_binary() -> Result<&'static Path, GitError> {
    static GIT: OnceLock<Option<PathBuf>> = OnceLock::new();
    GIT.get_or_init(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).map(|d| d.join("git")).find(|p| p.is_file())
    })
    .as_deref()
    .ok_or(GitError::NotFound)
}

/// A git command to run in `dir` (a repository, or any directory).
pub struct Git {
    cmd: Command,
    args: Vec<String>,
}

impl Git {
    pub fn new(dir: &Path) -> Result<Git, GitError> {
        let mut cmd = Command::new(git_binary()?);
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .args(["-c", "protocol.version=2"]);
        Ok(Git { cmd, args: Vec::new() })
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_string_lossy().into_owned());
        self.cmd.arg(a);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        for a in args {
            self = self.arg(a);
        }
        self
    }

    /// The arguments for logs and errors, a hub URL's password masked.
    fn shown_args(&self) -> String {
        crate::hub::redact(&self.args.join(" ")).into_owned()
    }

    pub fn env(mut self, k: &str, v: impl AsRef<OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    /// Runs to completion; stdout and stderr are captured, whatever the exit.
    pub fn output(mut self) -> Result<Output, GitError> {
        let args = self.shown_args();
        let started = Instant::now();
        let out = self.cmd.output().map_err(|source| GitError::Spawn { args: args.clone(), source })?;
        tracing::debug!(target: "git", "git {args} -> {} in {:?}", out.status, started.elapsed());
        Ok(out)
    }

    /// Runs and requires success; returns stdout.
    pub fn run(self) -> Result<Vec<u8>, GitError> {
        let args = self.shown_args();
        let out = self.output()?;
        if out.status.success() { Ok(out.stdout) } else { Err(failed(args, &out)) }
    }
}

pub fn failed(args: String, out: &Output) -> GitError {
    GitError::Failed {
        args,
        status: out.status.to_string(),
        stderr: crate::hub::redact(String::from_utf8_lossy(&out.stderr).trim()).into_owned(),
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
    }
}
