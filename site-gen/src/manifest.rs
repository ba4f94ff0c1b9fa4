//! What the last build rendered, kept beside the site in
//! `.git-ci-site/manifest` (postcard, a compact serde format): each chain's tip, a summary row per
//! finished job, commit subjects, and every page's input key and output
//! files with their content hashes.
//!
//! The next build diffs chains from those tips, renders only pages whose
//! key changed, writes only files whose content hash changed, and deletes
//! files no page produces any more. A missing or unreadable manifest is
//! simply a full build.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::SiteError;
use crate::model::commits::CommitInfo;
use crate::model::row::{Oid, Row};
use crate::output::Unit;

/// The manifest's first bytes. The number is bumped whenever a saved field
/// changes: older manifests are then ignored (a full build). Postcard is
/// not self-describing, so an old row would not fail to load: it would
/// load wrong. 2: rows gained the pipeline fields (label, needs, ...);
/// 3: `ad_hoc`.
const MAGIC: &[u8] = b"git-ci-site manifest 4\n";

/// The folder of the site that holds build state; never published.
pub const STATE_DIR: &str = ".git-ci-site";

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub chains: BTreeMap<String, Oid>,
    pub rows: Vec<Row>,
    pub commits: HashMap<String, CommitInfo>,
    pub units: HashMap<String, Unit>,
}

impl Manifest {
    pub fn path(out: &Path) -> PathBuf {
        out.join(STATE_DIR).join("manifest")
    }

    /// The last build's manifest; empty when there is none worth trusting.
    pub fn load(out: &Path) -> Manifest {
        let Ok(bytes) = std::fs::read(Manifest::path(out)) else {
            return Manifest::default();
        };
        bytes.strip_prefix(MAGIC).and_then(|b| postcard::from_bytes(b).ok()).unwrap_or_default()
    }

    /// Forgets what was read, keeping file hashes: a full rebuild that
    /// still leaves unchanged files alone.
    pub fn forget_inputs(&mut self) {
        self.chains.clear();
        self.rows.clear();
        self.commits.clear();
        for unit in self.units.values_mut() {
            unit.key = Digest::default();
        }
    }

    /// Written last, atomically: a build that dies half-way leaves the old
    /// manifest, whose keys then make the next build redo what changed.
    pub fn save(&self, out: &Path) -> Result<(), SiteError> {
        let path = Manifest::path(out);
        let mut bytes = MAGIC.to_vec();
        bytes.extend(postcard::to_stdvec(self).expect("the manifest is plain data"));
        crate::output::write_atomic(&path, &bytes).map_err(|source| SiteError::Write { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::model::row::sample;
    use git_ci_core::state::State;

    #[test]
    fn round_trips_and_refuses_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::default();
        m.rows.push(sample("test", "refs/heads/main", State::Running));
        m.units.insert(
            "job/x".into(),
            Unit { key: Digest::of(b"k"), files: vec![("jobs/x.html".into(), Digest::of(b"p"))] },
        );
        m.save(dir.path()).unwrap();
        let back = Manifest::load(dir.path());
        assert_eq!(back.rows.len(), 1);
        assert_eq!(back.rows[0].name, "test");
        assert_eq!(back.units["job/x"].files[0].1, Digest::of(b"p"));
        // An older format may well decode (postcard does not name fields):
        // its number alone makes it a full build.
        let saved = std::fs::read(Manifest::path(dir.path())).unwrap();
        let mut older = b"git-ci-site manifest 2\n".to_vec();
        older.extend_from_slice(&saved[MAGIC.len()..]);
        std::fs::write(Manifest::path(dir.path()), older).unwrap();
        assert!(Manifest::load(dir.path()).rows.is_empty(), "an older format is a full build");
    }
}
