//! Per-job cache directories (`cache = ["target"]` in `.git-ci.toml`),
//! kept on the worker between runs of the same job on the same hub.
//!
//! A cache is moved into the fresh checkout before the run and moved back
//! after it: a rename, so a multi-gigabyte `target/` costs nothing to
//! restore. Two runs of the same job at once (`--jobs 2`) cannot share one
//! cache: the second finds it taken and runs cold.

use std::path::{Component, Path, PathBuf};

use super::Config;
use crate::hub::Hub;
use crate::model::Job;

pub struct Caches {
    /// `cache/<hub>/<job>`: touched when a run puts its caches back, which
    /// tells `--clean` and `--cache-max-size` when it was last used.
    root: PathBuf,
    /// `(path inside the checkout, where it is kept between runs)`.
    entries: Vec<(PathBuf, PathBuf)>,
}

impl Caches {
    pub fn new(cfg: &Config, hub: &dyn Hub, job: &Job) -> Caches {
        let root = cfg.work_dir.join("cache").join(hub.cache_key()).join(&job.spec.name);
        let entries = job
            .spec
            .cache
            .iter()
            .filter_map(|p| safe_relative(p))
            .map(|rel| {
                let kept = root.join(rel.to_string_lossy().replace('/', "%2F"));
                (rel, kept)
            })
            .collect();
        Caches { root, entries }
    }

    /// Moves each kept cache into the checkout (if the job has one).
    pub fn restore(&self, checkout: &Path) {
        for (rel, kept) in &self.entries {
            let target = checkout.join(rel);
            if kept.exists() && !target.exists() {
                if let Some(parent) = target.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::rename(kept, &target);
            }
        }
    }

    /// Moves each cache directory the run left back to where it is kept.
    pub fn save(&self, checkout: &Path) {
        for (rel, kept) in &self.entries {
            let produced = checkout.join(rel);
            if produced.is_dir() && !produced.is_symlink() {
                if let Some(parent) = kept.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::remove_dir_all(kept);
                let _ = std::fs::rename(&produced, kept);
            }
        }
        if !self.entries.is_empty() {
            super::clean::touch(&self.root);
        }
    }
}

/// A cache path must stay inside the checkout: no `..`, no absolute path.
fn safe_relative(p: &str) -> Option<PathBuf> {
    let path = Path::new(p.trim_end_matches('/'));
    let normal = path.components().all(|c| matches!(c, Component::Normal(_)));
    (normal && !p.is_empty()).then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_inside_the_checkout() {
        assert_eq!(safe_relative("target"), Some(PathBuf::from("target")));
        assert_eq!(safe_relative("a/b/"), Some(PathBuf::from("a/b")));
        for bad in ["", "/etc", "../x", "a/../../b", "./x"] {
            assert_eq!(safe_relative(bad), None, "{bad}");
        }
    }
}
