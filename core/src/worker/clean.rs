//! Worker housekeeping: what a worker leaves on disk, and removing it.
//!
//! Under its work directory a worker keeps `jobs/<id>-…` (a job's checkout
//! and log, removed after its publish, left behind only by a worker that
//! died) and `cache/<hub>/<job>/<path>` (the `cache = [...]` directories
//! kept between runs, each touched when a run puts it back). Under
//! `<cache root>/hubs/` every process on this machine keeps a bare mirror
//! per remote hub.
//!
//! `git ci worker --clean` removes the leftover checkouts, the caches not
//! used for a while and the mirrors not fetched into for as long; a worker
//! given `--cache-max-size` removes the oldest caches of its hub while its
//! work directory is over the size ([`Shrink`]), never one a job it runs
//! (or has claimed) may be using.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What a clean removed, by kind: `(directories, bytes)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Freed {
    pub checkouts: (usize, u64),
    pub caches: (usize, u64),
    pub mirrors: (usize, u64),
    /// Directories that could not be removed, with why.
    pub failed: Vec<(PathBuf, String)>,
}

impl Freed {
    pub fn bytes(&self) -> u64 {
        self.checkouts.1 + self.caches.1 + self.mirrors.1
    }

    pub fn dirs(&self) -> usize {
        self.checkouts.0 + self.caches.0 + self.mirrors.0
    }
}

/// Removes, for a worker that is not running (its name is held by the
/// caller): every checkout left in `work_dir`, its caches unused for
/// `older_than`, and the hub mirrors under `mirrors` not fetched into for
/// as long.
pub fn clean(work_dir: &Path, mirrors: Option<&Path>, older_than: Duration) -> Freed {
    let mut freed = leftover_checkouts(work_dir);
    let cutoff = SystemTime::now().checked_sub(older_than).unwrap_or(SystemTime::UNIX_EPOCH);
    for dir in cache_dirs(&work_dir.join("cache")) {
        if last_used(&dir) < cutoff {
            remove(&dir, &mut freed.caches, &mut freed.failed);
        }
    }
    for dir in mirrors.map(subdirs).unwrap_or_default() {
        if last_used(&dir) < cutoff {
            remove(&dir, &mut freed.mirrors, &mut freed.failed);
        }
    }
    freed
}

/// Removes every checkout in `work_dir`, for a worker that is not running.
pub fn leftover_checkouts(work_dir: &Path) -> Freed {
    let mut freed = Freed::default();
    for dir in subdirs(&work_dir.join("jobs")) {
        remove(&dir, &mut freed.checkouts, &mut freed.failed);
    }
    freed
}

/// `cache/<hub>/<job>`: one job's kept caches on one hub.
fn cache_dirs(root: &Path) -> Vec<PathBuf> {
    subdirs(root).iter().flat_map(|hub| subdirs(hub)).collect()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return vec![] };
    let mut out: Vec<PathBuf> =
        entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
    out.sort();
    out
}

/// The newest change to `dir` or what is directly in it, or in its
/// `refs` (a mirror's fetches move those): when it was last used.
fn last_used(dir: &Path) -> SystemTime {
    let mtime = |p: &Path| std::fs::symlink_metadata(p).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    let children = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default()
    };
    let mut newest = mtime(dir);
    for p in children(dir).into_iter().chain(children(&dir.join("refs"))) {
        newest = newest.max(mtime(&p));
    }
    newest
}

/// Marks a cache directory used now (a rename does not change its time).
pub(super) fn touch(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = f.set_modified(SystemTime::now());
    }
}

fn remove(dir: &Path, tally: &mut (usize, u64), failed: &mut Vec<(PathBuf, String)>) {
    let bytes = size(dir);
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {
            tally.0 += 1;
            tally.1 += bytes;
        }
        Err(e) => failed.push((dir.to_path_buf(), e.to_string())),
    }
}

/// Bytes of the files under `path`, links not followed.
pub fn size(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| !m.is_dir())
        .map(|m| m.len())
        .sum()
}

/// `1.4 GiB`, `312 KiB`, `12 B`: for a person.
pub fn human_bytes(bytes: u64) -> String {
    let units = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    match units.iter().find(|(shift, _)| bytes >= 1 << shift) {
        Some((shift, unit)) => format!("{:.1} {unit}", bytes as f64 / (1u64 << shift) as f64),
        None => format!("{bytes} B"),
    }
}

/// How often a running worker measures its work directory at most.
const MEASURE_EVERY: Duration = Duration::from_secs(5);

/// `--cache-max-size` for a running worker: measures its work directory
/// at start and after jobs finish, and when it is over the size removes
/// the caches of its hub least recently used first.
pub(super) struct Shrink {
    max: Option<u64>,
    last: Option<Instant>,
    /// Jobs finished when last measured.
    finished: usize,
}

impl Shrink {
    pub fn new(max: Option<u64>) -> Shrink {
        Shrink { max, last: None, finished: 0 }
    }

    /// Due at start, then when a job finished since the last look (at
    /// most every [`MEASURE_EVERY`]).
    pub fn due(&self, finished: usize) -> bool {
        self.max.is_some()
            && match self.last {
                None => true,
                Some(at) => finished != self.finished && at.elapsed() >= MEASURE_EVERY,
            }
    }

    /// Removes caches of `hub_dir` (`cache/<hub>`), oldest first, but
    /// none of the jobs named in `busy` (claimed or running: a run moves
    /// its caches in and out), until `work_dir` is within the size.
    pub fn run(&mut self, work_dir: &Path, hub_dir: &Path, busy: &HashSet<String>, finished: usize) -> Freed {
        self.last = Some(Instant::now());
        self.finished = finished;
        let mut freed = Freed::default();
        let Some(max) = self.max else { return freed };
        let mut total = size(work_dir);
        if total <= max {
            return freed;
        }
        let mut candidates: Vec<(SystemTime, PathBuf)> = subdirs(hub_dir)
            .into_iter()
            .filter(|d| d.file_name().is_some_and(|n| !busy.contains(&*n.to_string_lossy())))
            .map(|d| (last_used(&d), d))
            .collect();
        candidates.sort();
        for (_, dir) in candidates {
            if total <= max {
                break;
            }
            let before = freed.caches.1;
            remove(&dir, &mut freed.caches, &mut freed.failed);
            total = total.saturating_sub(freed.caches.1 - before);
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &Path, bytes: usize) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, vec![b'x'; bytes]).unwrap();
    }

    fn age(dir: &Path, days: u64) {
        let then = SystemTime::now() - Duration::from_secs(days * 86400);
        for e in walkdir::WalkDir::new(dir).contents_first(true).into_iter().flatten() {
            let f = std::fs::File::open(e.path()).unwrap();
            f.set_modified(then).unwrap();
        }
    }

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn clean_removes_leftover_checkouts_and_old_caches_only() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        file(&work.join("jobs/20261101-abc/log"), 100);
        file(&work.join("cache/hub1/test/target/a"), 1000);
        file(&work.join("cache/hub1/lint/target/b"), 10);
        age(&work.join("cache/hub1/test"), 9);
        let freed = clean(&work, None, Duration::from_secs(7 * 86400));
        assert_eq!(freed.checkouts, (1, 100));
        assert_eq!(freed.caches, (1, 1000));
        assert!(!work.join("cache/hub1/test").exists());
        assert!(work.join("cache/hub1/lint/target/b").exists(), "used recently: kept");
    }

    #[test]
    fn shrink_removes_the_oldest_caches_until_within_the_size_but_never_a_busy_one() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let hub = work.join("cache/hub1");
        for (name, days) in [("a", 5), ("b", 3), ("c", 1), ("busy", 9)] {
            file(&hub.join(name).join("target/f"), 1000);
            age(&hub.join(name), days);
        }
        let mut shrink = Shrink::new(Some(2500));
        assert!(shrink.due(0));
        let busy = HashSet::from(["busy".to_owned()]);
        let freed = shrink.run(&work, &hub, &busy, 0);
        assert_eq!(freed.caches, (2, 2000), "a and b, the oldest not busy");
        assert!(hub.join("busy").exists() && hub.join("c").exists());
        assert!(!shrink.due(0), "nothing finished since");
    }
}
