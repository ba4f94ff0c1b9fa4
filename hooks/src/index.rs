//! The trigger index: which (commit, ref, job name) a trigger already turned
//! into a job, so that doing it again is a no-op (DESIGN.md, "The protocol").
//!
//! It lives in the tree of the `refs/ci/done/_hub` chain, beside the results
//! the hub writer publishes: `triggers/<key[..2]>/<key[2..]>`, a blob holding
//! the id of the job that was queued (or of the `error` record of a broken
//! `.git-ci.toml`). A lookup is one tree read at the chain's tip, whatever
//! the history, and pending, running and finished jobs are all covered: the
//! entry is written once, in the very transaction that queues the job, and
//! never removed. Two triggers racing both move the `_hub` tip with a
//! compare-and-swap; the loser re-reads and finds the winner's entries.
//!
//! Fanned out on two hex digits like the `cache/` index, so that an append
//! rewrites one small subtree rather than one huge one.

use git_ci_core::HubError;
use git_ci_core::hub::Hub;
use gix::ObjectId;
use sha2::{Digest, Sha256};

/// The top-level directory of the index in the `_hub` tree.
pub const DIR: &str = "triggers";

/// The name under which a broken `.git-ci.toml` is indexed. Job names cannot
/// contain `:`, so no job collides with it.
pub const PIPELINE: &str = ":pipeline";

/// `sha256(commit NUL ref NUL name)`, hex.
pub fn key(commit: &ObjectId, git_ref: &str, name: &str) -> String {
    let digest = Sha256::digest(format!("{commit}\0{git_ref}\0{name}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn path(key: &str) -> String {
    format!("{DIR}/{}/{}", &key[..2], &key[2..])
}

/// The index as of one `_hub` tip.
pub struct Index<'repo> {
    tree: Option<gix::Tree<'repo>>,
}

impl<'repo> Index<'repo> {
    /// The index at `tip` (none yet when the chain does not exist).
    pub fn at(hub: &dyn Hub, repo: &'repo gix::Repository, tip: Option<ObjectId>) -> Result<Index<'repo>, HubError> {
        let Some(tip) = tip else {
            return Ok(Index { tree: None });
        };
        let tree = repo
            .find_commit(tip)
            .and_then(|c| c.tree())
            .map_err(|e| hub.local_error(format!("could not read the _hub chain at {tip}"), e))?;
        Ok(Index { tree: Some(tree) })
    }

    /// The job id recorded for `key`, if a trigger already handled it.
    pub fn get(&self, key: &str) -> Option<String> {
        let entry = self.tree.as_ref()?.lookup_entry_by_path(path(key)).ok()??;
        let blob = entry.object().ok()?;
        Some(String::from_utf8_lossy(&blob.data).trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_every_part() {
        let c = ObjectId::from_hex(b"0123456789012345678901234567890123456789").unwrap();
        let k = key(&c, "refs/heads/main", "test");
        assert_eq!(k.len(), 64);
        assert_ne!(k, key(&c, "refs/heads/mai", "ntest"), "the separator keeps fields apart");
        assert_ne!(k, key(&c, "refs/heads/main", PIPELINE));
        assert_eq!(path(&k), format!("triggers/{}/{}", &k[..2], &k[2..]));
    }
}
