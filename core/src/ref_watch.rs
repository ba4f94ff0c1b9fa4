//! Waking up when a local hub's refs change, for everything that waits on
//! a hub: the worker, `submit --wait`, `run`, `log --follow` and
//! `site build --watch`.
//!
//! Only events that change something count. inotify also reports files
//! being opened (notify asks for it), so a waiter woken by any event is
//! woken by its own reads of the refs, reads them again, and spins: that
//! made `git ci run` of a `sleep 5` job spend 3 s of CPU re-reading the
//! queue hundreds of times a second.

use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// Whether `ev` may mean a ref moved: a file written, created, renamed or removed.
pub fn is_change(ev: &Event) -> bool {
    match ev.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Calls `on_change` when refs under `refs/ci/` (or `packed-refs`) of the
/// repository at `git_dir` change; `None` where the directory cannot be
/// watched (the caller polls instead).
pub fn watch(git_dir: &Path, on_change: impl Fn() + Send + 'static) -> Option<RecommendedWatcher> {
    let refs_dir = git_dir.join("refs/ci");
    std::fs::create_dir_all(&refs_dir).ok()?;
    let mut watcher = notify::recommended_watcher(move |ev: notify::Result<Event>| {
        if ev.as_ref().is_ok_and(is_change) {
            on_change();
        }
    })
    .ok()?;
    watcher.watch(&refs_dir, RecursiveMode::Recursive).ok()?;
    // packed-refs lives in the git dir itself.
    watcher.watch(git_dir, RecursiveMode::NonRecursive).ok()?;
    Some(watcher)
}

/// A blocking wait for the next change.
pub struct RefWatch {
    rx: Receiver<()>,
    _watcher: RecommendedWatcher,
}

impl RefWatch {
    pub fn new(git_dir: &Path) -> Option<RefWatch> {
        let (tx, rx) = mpsc::channel();
        let watcher = watch(git_dir, move || {
            let _ = tx.send(());
        })?;
        Some(RefWatch { rx, _watcher: watcher })
    }

    /// Blocks until the refs change (then waits `settle` more, so that the
    /// several refs of one transaction are one change) or until `timeout`
    /// passes. Returns whether they changed.
    pub fn wait(&self, timeout: Duration, settle: Duration) -> bool {
        if self.rx.recv_timeout(timeout).is_err() {
            return false;
        }
        std::thread::sleep(settle);
        while self.rx.try_recv().is_ok() {}
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn reads_do_not_wake_a_waiter_but_writes_do() {
        let dir = tempfile::tempdir().unwrap();
        let refs = dir.path().join("refs/ci/queue");
        std::fs::create_dir_all(&refs).unwrap();
        std::fs::write(refs.join("a"), "x").unwrap();
        let watch = RefWatch::new(dir.path()).unwrap();
        let reader = {
            let refs = refs.clone();
            std::thread::spawn(move || {
                let until = Instant::now() + Duration::from_millis(300);
                while Instant::now() < until {
                    std::fs::read(refs.join("a")).unwrap();
                    std::fs::read_dir(&refs).unwrap().for_each(drop);
                }
            })
        };
        assert!(!watch.wait(Duration::from_millis(500), Duration::ZERO), "reading the refs woke the waiter");
        reader.join().unwrap();
        std::fs::write(refs.join("b"), "y").unwrap();
        assert!(watch.wait(Duration::from_secs(10), Duration::ZERO), "a new ref did not wake the waiter");
    }
}
