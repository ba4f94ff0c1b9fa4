//! Writing the site: atomically, only what changed, and nothing stale left.
//!
//! Files are grouped in units (a job's page with its API file and log, a
//! commit's page...). A unit whose input key is the one the manifest
//! recorded is not rendered at all; a rendered unit's files are written
//! only when their content hash changed; files of units that no longer
//! exist are deleted.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use git_ci_core::atomic;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::SiteError;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Units rendered because their inputs changed (or always rendered).
    pub rendered: usize,
    /// Units left alone: same inputs as last time.
    pub kept: usize,
    pub written: usize,
    /// Files rendered again to the same bytes, so not rewritten.
    pub unchanged: usize,
    pub removed: usize,
}

impl Stats {
    fn add(&mut self, o: Stats) {
        self.rendered += o.rendered;
        self.kept += o.kept;
        self.written += o.written;
        self.unchanged += o.unchanged;
        self.removed += o.removed;
    }
}

pub struct Output {
    root: PathBuf,
    old: HashMap<String, Unit>,
    new: HashMap<String, Unit>,
    dirs: Dirs,
    stats: Stats,
}

/// Directories known to exist, so each is created once per build.
type Dirs = Arc<Mutex<HashSet<PathBuf>>>;

impl Output {
    pub fn new(root: &Path, old: HashMap<String, Unit>) -> Output {
        let new = HashMap::with_capacity(old.len() + 64);
        Output { root: root.to_owned(), old, new, dirs: Dirs::default(), stats: Stats::default() }
    }

    /// Renders unit `name` unless its key is the one recorded last time.
    pub fn unit(
        &mut self,
        name: &str,
        key: Digest,
        render: impl FnOnce(&mut Files) -> Result<(), SiteError>,
    ) -> Result<(), SiteError> {
        let Some(mut files) = self.begin(name, key) else { return Ok(()) };
        render(&mut files)?;
        self.commit(files)
    }

    /// Renders unit `name` every build: pages that show live data or
    /// ages. Unchanged files are still not rewritten.
    pub fn always(
        &mut self,
        name: &str,
        render: impl FnOnce(&mut Files) -> Result<(), SiteError>,
    ) -> Result<(), SiteError> {
        let old = self.old.remove(name);
        let mut files = self.files(name, Digest::default(), old);
        render(&mut files)?;
        self.commit(files)
    }

    /// Starts unit `name`: `None` when it is up to date (its files are
    /// kept), else the writer to render it with, which [`Files`] lets run
    /// on another thread before [`Output::commit`].
    pub fn begin(&mut self, name: &str, key: Digest) -> Option<Files> {
        match self.old.remove(name) {
            Some(old) if old.key == key && key != Digest::default() => {
                self.stats.kept += 1;
                self.new.insert(name.to_owned(), old);
                None
            }
            old => Some(self.files(name, key, old)),
        }
    }

    fn files(&self, name: &str, key: Digest, old: Option<Unit>) -> Files {
        Files {
            name: name.to_owned(),
            key,
            root: self.root.clone(),
            old: old.map(|u| u.files.into_iter().collect()).unwrap_or_default(),
            written: Vec::new(),
            dirs: self.dirs.clone(),
            stats: Stats { rendered: 1, ..Stats::default() },
        }
    }

    /// Records a rendered unit; deletes files it no longer produces.
    pub fn commit(&mut self, files: Files) -> Result<(), SiteError> {
        let Files { name, key, root, old, written, mut stats, .. } = files;
        let kept: HashSet<&str> = written.iter().map(|(p, _)| p.as_str()).collect();
        for path in old.keys().filter(|p| !kept.contains(p.as_str())) {
            stats.removed += remove(&root, path)?;
        }
        self.stats.add(stats);
        self.new.insert(name, Unit { key, files: written });
        Ok(())
    }

    /// Deletes the files of units no longer rendered; returns the units
    /// for the manifest and what was done.
    pub fn finish(mut self) -> Result<(HashMap<String, Unit>, Stats), SiteError> {
        for unit in std::mem::take(&mut self.old).into_values() {
            for (path, _) in unit.files {
                self.stats.removed += remove(&self.root, &path)?;
            }
        }
        Ok((self.new, self.stats))
    }
}

/// The files of one unit being rendered.
pub struct Files {
    name: String,
    key: Digest,
    root: PathBuf,
    old: HashMap<String, Digest>,
    written: Vec<(String, Digest)>,
    dirs: Dirs,
    stats: Stats,
}

impl Files {
    pub fn write(&mut self, path: &str, bytes: &[u8]) -> Result<(), SiteError> {
        self.write_with(path, Digest::of(bytes), || Ok(bytes.to_vec()))
    }

    /// Writes the file whose content hash is `digest`, fetching its bytes
    /// only when the file must be written (artifacts, named by their blob).
    pub fn write_with(
        &mut self,
        path: &str,
        digest: Digest,
        bytes: impl FnOnce() -> Result<Vec<u8>, SiteError>,
    ) -> Result<(), SiteError> {
        check_relative(path)?;
        let full = self.root.join(path);
        if self.old.get(path) == Some(&digest) && full.is_file() {
            self.stats.unchanged += 1;
        } else {
            self.ensure_dir(&full)?;
            PAGE.to(&full, &bytes()?).map_err(|source| SiteError::Write { path: full, source })?;
            self.stats.written += 1;
        }
        self.written.push((path.to_owned(), digest));
        Ok(())
    }

    fn ensure_dir(&self, file: &Path) -> Result<(), SiteError> {
        let Some(dir) = file.parent() else { return Ok(()) };
        let mut known = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        if !known.contains(dir) {
            std::fs::create_dir_all(dir).map_err(|source| SiteError::Write { path: dir.to_owned(), source })?;
            known.insert(dir.to_owned());
        }
        Ok(())
    }
}

/// Page paths are built by this crate from slugs and checked ids; this is
/// the last line of defence against one escaping the site.
fn check_relative(path: &str) -> Result<(), SiteError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && !path.contains('\\');
    if ok {
        Ok(())
    } else {
        Err(SiteError::Write { path: path.into(), source: std::io::Error::other("not a path inside the site") })
    }
}

fn remove(root: &Path, path: &str) -> Result<usize, SiteError> {
    check_relative(path)?;
    let full = root.join(path);
    match std::fs::remove_file(&full) {
        Ok(()) => Ok(1),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(SiteError::Write { path: full, source }),
    }
}

/// Writes `path` atomically, creating its directory: a web server serving
/// the site sees the old page or the new one, never half of one.
///
/// Not durable (no `sync_data` before the rename), unlike the worker's
/// state: the site is derived data that any build recreates, and an fsync
/// per page would cost a full build of 30,000 files minutes on a spinning
/// disk. The manifest is written last, so after a crash the next build
/// redoes the pages the lost manifest does not vouch for.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    PAGE.to(path, bytes)
}

/// One page (or set of files rendered together): its input key and files.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Unit {
    pub key: Digest,
    pub files: Vec<(String, Digest)>,
}

/// How every file of the site is written: readable by the web server's
/// user, as any file it serves; not durable (see [`write_atomic`]).
const PAGE: atomic::Write = atomic::Write { mode: 0o644, durable: false };

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Key;

    fn key(s: &str) -> Digest {
        let mut k = Key::new("test");
        k.str(s);
        k.finish()
    }

    #[test]
    fn units_are_kept_rewritten_or_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Output::new(dir.path(), HashMap::new());
        out.unit("a", key("1"), |f| f.write("a/x.html", b"one")).unwrap();
        out.unit("b", key("1"), |f| f.write("b.html", b"bee")).unwrap();
        let (units, stats) = out.finish().unwrap();
        assert_eq!((stats.rendered, stats.written), (2, 2));

        let mut out = Output::new(dir.path(), units);
        out.unit("a", key("1"), |_| panic!("same key: not rendered")).unwrap();
        out.unit("b", key("2"), |f| f.write("b.html", b"bee")).unwrap();
        let (units, stats) = out.finish().unwrap();
        assert_eq!((stats.kept, stats.rendered, stats.written, stats.unchanged), (1, 1, 0, 1));

        let mut out = Output::new(dir.path(), units);
        out.unit("b", key("3"), |f| f.write("c.html", b"sea")).unwrap();
        let (_, stats) = out.finish().unwrap();
        assert_eq!(stats.removed, 2, "a's file and b's old file");
        assert!(!dir.path().join("a/x.html").exists() && !dir.path().join("b.html").exists());
        assert_eq!(std::fs::read(dir.path().join("c.html")).unwrap(), b"sea");
    }

    #[test]
    fn pages_are_world_readable_and_paths_stay_inside() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut out = Output::new(dir.path(), HashMap::new());
        out.always("p", |f| f.write("p.html", b"x")).unwrap();
        let mode = std::fs::metadata(dir.path().join("p.html")).unwrap().permissions().mode();
        assert_eq!(mode & 0o044, 0o044, "{mode:o}");
        for bad in ["../x", "/etc/x", "a//b", "a/./b", ""] {
            assert!(out.always("q", |f| f.write(bad, b"x")).is_err(), "{bad}");
        }
    }
}
