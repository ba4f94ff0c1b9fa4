//! `git ci worker`'s isolation flags: `--sandbox` and what goes with it,
//! and `--env-refs` for the secrets of `--env-file`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use git_ci_core::isolation::Isolation;
use git_ci_core::runner::limits::{Limits, parse_size};
use git_ci_core::runner::sandbox::{Bwrap, SandboxConfig};

use crate::error::{CliError, CliResult};
use crate::settings::GitConfig;

#[derive(Debug, Args, Clone, Default)]
pub struct SandboxArgs {
    /// Run every job in a bubblewrap sandbox: the system's directories
    /// read-only, its checkout read-write, an empty private /tmp and $HOME,
    /// no network, its own process namespace (what it starts ends with
    /// it). Refused where bubblewrap or user namespaces are missing.
    /// Default: git config ci.worker.sandbox.
    #[arg(long, help_heading = "Isolation")]
    pub sandbox: bool,
    /// Give the network to sandboxed jobs whose definition says
    /// `network = true` (others never have it; loopback always works).
    #[arg(long, help_heading = "Isolation")]
    pub sandbox_network: bool,
    /// A host directory sandboxed jobs may read and write, at the same path
    /// (repeatable; e.g. a shared compiler cache).
    #[arg(long = "bind", value_name = "DIR", help_heading = "Isolation")]
    pub binds: Vec<PathBuf>,
    /// A host directory sandboxed jobs may read, at the same path
    /// (repeatable; e.g. a toolchain in /opt).
    #[arg(long = "ro-bind", value_name = "DIR", help_heading = "Isolation")]
    pub ro_binds: Vec<PathBuf>,
    /// Most processes a sandboxed job may have at once (a fork bomb stops there).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), help_heading = "Isolation")]
    pub pids_max: Option<u64>,
    /// Most memory a sandboxed job may use (e.g. 512M, 4G); past it the
    /// kernel stops its processes and the job fails saying so.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Isolation")]
    pub memory_max: Option<u64>,
    /// Most disk a sandboxed job's checkout and caches may use (e.g. 10G),
    /// and the size of its /tmp; past it the job fails saying so.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, help_heading = "Isolation")]
    pub disk_max: Option<u64>,
    /// Give the --env-file variables only to jobs of these refs (globs,
    /// comma-separated or repeated: 'refs/heads/main,refs/tags/v*'); other
    /// jobs run without them, and their log says so.
    #[arg(long, value_name = "REFS", value_delimiter = ',', requires = "env_file", help_heading = "Isolation")]
    pub env_refs: Vec<String>,
}

impl SandboxArgs {
    /// The worker's isolation; checks that the sandbox works here.
    pub fn isolation(&self, config: &GitConfig) -> CliResult<Isolation> {
        for p in &self.env_refs {
            Isolation::check_ref_glob(p).map_err(|e| CliError::usage(format!("--env-refs {p:?}: {e}")))?;
        }
        let secret_refs = self.env_refs.clone();
        if !self.sandbox && !from_config(config)? {
            return match self.needs_sandbox() {
                Some(flag) => Err(CliError::usage_hint(
                    format!("{flag} applies to sandboxed jobs only"),
                    "add --sandbox (or git config ci.worker.sandbox true)",
                )),
                None => Ok(Isolation { sandbox: None, secret_refs }),
            };
        }
        let cfg = SandboxConfig {
            binds: existing("--bind", &self.binds)?,
            ro_binds: existing("--ro-bind", &self.ro_binds)?,
            network: self.sandbox_network,
            limits: Limits { pids_max: self.pids_max, memory_max: self.memory_max, disk_max: self.disk_max },
        };
        let bwrap = Bwrap::new(cfg).map_err(|e| CliError::usage_hint(e.to_string(), e.hint()))?;
        Ok(Isolation { sandbox: Some(Arc::new(bwrap)), secret_refs })
    }

    /// The first flag given that means nothing without a sandbox.
    fn needs_sandbox(&self) -> Option<&'static str> {
        [
            (self.sandbox_network, "--sandbox-network"),
            (!self.binds.is_empty(), "--bind"),
            (!self.ro_binds.is_empty(), "--ro-bind"),
            (self.pids_max.is_some(), "--pids-max"),
            (self.memory_max.is_some(), "--memory-max"),
            (self.disk_max.is_some(), "--disk-max"),
        ]
        .into_iter()
        .find_map(|(given, flag)| given.then_some(flag))
    }
}

fn from_config(config: &GitConfig) -> CliResult<bool> {
    match config.string("ci.worker.sandbox").map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("false" | "no" | "off" | "0") => Ok(false),
        Some("true" | "yes" | "on" | "1") => Ok(true),
        Some(v) => Err(CliError::usage_hint(
            format!("git config ci.worker.sandbox: {v:?} is not true or false"),
            "fix it with `git config ci.worker.sandbox true` (or false)",
        )),
    }
}

/// Absolute paths of directories that exist: bwrap would fail on each job.
fn existing(flag: &str, dirs: &[PathBuf]) -> CliResult<Vec<PathBuf>> {
    dirs.iter()
        .map(|d| match d.canonicalize() {
            Ok(p) if p.is_dir() => Ok(p),
            Ok(_) => Err(CliError::usage(format!("{flag} {}: not a directory", d.display()))),
            Err(e) => Err(CliError::usage(format!("{flag} {}: {e}", d.display()))),
        })
        .collect()
}
