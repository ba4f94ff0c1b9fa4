//! The site's templates: built into the binary with `include_str!`, each
//! replaceable by a file of the same name in a user's templates directory
//! (`--templates DIR`), which may also add files for `{% include %}`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::digest::{Digest, Key};
use crate::error::SiteError;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("templates/", $name)))),*]
    };
}

/// Every built-in template, by name.
pub const BUILTIN: &[(&str, &str)] = builtin!(
    "base.html",
    "macros.html",
    "index.html",
    "history.html",
    "day.html",
    "branches.html",
    "branch.html",
    "projects.html",
    "project.html",
    "commit.html",
    "job.html",
    "queue.html",
    "workers.html",
    "runs.html",
    "badge.svg",
    "feed.atom",
    "style.css",
);

/// Templates larger than this are refused: they are read into memory.
const MAX_TEMPLATE: u64 = 1 << 20;

/// The templates a site is rendered with, and a digest of all of them
/// (with this crate's version): a change to either re-renders every page.
pub struct Sources {
    pub files: BTreeMap<String, String>,
    pub digest: Digest,
}

impl Sources {
    pub fn load(overrides: Option<&Path>) -> Result<Sources, SiteError> {
        let mut files: BTreeMap<String, String> = BUILTIN.iter().map(|(n, s)| (n.to_string(), s.to_string())).collect();
        if let Some(dir) = overrides {
            read_dir(dir, dir, &mut files)?;
        }
        let mut key = Key::new("templates");
        key.str(env!("CARGO_PKG_VERSION"));
        for (name, source) in &files {
            key.str(name).str(source);
        }
        Ok(Sources { files, digest: key.finish() })
    }
}

fn read_dir(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> Result<(), SiteError> {
    let read_err = |path: &Path, source| SiteError::Read { path: path.to_owned(), source };
    for entry in std::fs::read_dir(dir).map_err(|e| read_err(dir, e))? {
        let entry = entry.map_err(|e| read_err(dir, e))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(|e| read_err(&path, e))?;
        if meta.is_dir() {
            read_dir(root, &path, files)?;
            continue;
        }
        if meta.len() > MAX_TEMPLATE {
            return Err(SiteError::Template {
                name: path.display().to_string(),
                message: format!("is {} bytes; templates are at most {MAX_TEMPLATE}", meta.len()),
            });
        }
        let source = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
        let name = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
        files.insert(name, source);
    }
    Ok(())
}
