//! What a worker keeps from its jobs: the sandbox they run in
//! (`--sandbox`, [`crate::runner::sandbox`]) and which jobs get the
//! secrets of `--env-file` (`--env-refs`).

use std::sync::Arc;

use crate::model::SandboxInfo;
use crate::runner::sandbox::{Bwrap, Executor, Host};

#[derive(Clone, Debug, Default)]
pub struct Isolation {
    /// Every job runs in this sandbox; `None`: on the host, as the worker.
    pub sandbox: Option<Arc<Bwrap>>,
    /// Only jobs of a ref matching one of these globs (`refs/heads/main`,
    /// `refs/tags/v*`) get the secrets; empty: every job.
    pub secret_refs: Vec<String>,
}

impl Isolation {
    pub fn executor(&self) -> Arc<dyn Executor> {
        match &self.sandbox {
            Some(b) => Arc::clone(b) as Arc<dyn Executor>,
            None => Arc::new(Host),
        }
    }

    /// Whether a job of `git_ref` gets the secrets. A `*` stays within one
    /// path component, `**` crosses them.
    pub fn secrets_for(&self, git_ref: &str) -> bool {
        self.secret_refs.is_empty()
            || self.secret_refs.iter().any(|p| {
                globset::GlobBuilder::new(p)
                    .literal_separator(true)
                    .build()
                    .is_ok_and(|g| g.compile_matcher().is_match(git_ref))
            })
    }

    /// Checks an `--env-refs` glob.
    pub fn check_ref_glob(pattern: &str) -> Result<(), String> {
        globset::Glob::new(pattern).map(|_| ()).map_err(|e| e.to_string())
    }

    /// What the worker's registration says about it.
    pub fn info(&self) -> Option<SandboxInfo> {
        let b = self.sandbox.as_ref()?;
        let (cfg, limits) = (b.config(), b.config().limits);
        Some(SandboxInfo {
            tool: crate::runner::sandbox::version(),
            network: cfg.network,
            limits: b.enforcement().to_string(),
            pids_max: limits.pids_max,
            memory_max: limits.memory_max,
            disk_max: limits.disk_max,
            binds: cfg.binds.iter().map(|p| p.display().to_string()).collect(),
            ro_binds: cfg.ro_binds.iter().map(|p| p.display().to_string()).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_to_the_refs_named_and_to_every_ref_without_a_list() {
        let all = Isolation::default();
        assert!(all.secrets_for("refs/heads/feature/x"));
        let some = Isolation { secret_refs: vec!["refs/heads/main".into(), "refs/tags/v*".into()], ..all };
        assert!(some.secrets_for("refs/heads/main") && some.secrets_for("refs/tags/v1.2"));
        for other in ["refs/heads/feature/x", "refs/heads/main2", "refs/tags/v1/x", "refs/pull/1/head", ""] {
            assert!(!some.secrets_for(other), "{other}");
        }
    }
}
