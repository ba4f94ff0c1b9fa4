//! Waiting for the refs that say where some jobs are to change, as cheaply
//! as the hub allows: for `submit --wait`, `run`, `retry --wait`, `wait`
//! and `log --follow`.
//!
//! A local hub is watched (inotify) and read again when its refs change.
//! A remote hub cannot tell us anything, so it is looked at: one `git
//! ls-remote` (a ref listing, no objects) whose lines naming these jobs
//! are compared with the last look's, and only a difference sends the
//! caller to read the jobs again (a fetch). Looks come every 100 ms for a
//! second after the jobs moved, when the next move tends to follow (a
//! no-op job is claimed and published within a few hundred ms), then
//! slow down to one a second, the old fixed pace of a fetch a second: a
//! long wait costs the hub no more requests than it did, and a ref
//! listing instead of a fetch.

use std::time::{Duration, Instant};

use git_ci_core::hub::Fingerprint;
use git_ci_core::ref_watch::RefWatch;
use git_ci_core::{Hub, HubError, JobId, refs};

/// How often a watched local hub is read even without an event (a hub on
/// a network filesystem sends none).
const LOCAL_POLL: Duration = Duration::from_secs(2);
/// The pause between looks at a remote hub for [`FAST_FOR`] after the jobs
/// last moved: a worker's fast poll is 200 ms, so a look at half of it
/// sees most moves within one pause of them.
const FIRST_LOOK: Duration = Duration::from_millis(100);
/// How long looks stay [`FIRST_LOOK`] apart after a move, before the pause
/// doubles: a no-op job is claimed, run and published in less.
const FAST_FOR: Duration = Duration::from_secs(1);
/// The longest pause between looks at a remote hub (or reads of a local
/// one that cannot be watched).
const LONGEST_PAUSE: Duration = Duration::from_secs(1);

/// Where the refs of a job can be: its queue ref (`queue/<q>/<id>`), its
/// claim, a cancel request; a parked job is in a backlog ref, which names
/// no job. A finished job has none of these left.
const JOB_PREFIXES: &[&str] = &[refs::QUEUE, refs::CLAIMS, refs::CANCEL, refs::BACKLOG];
/// The same and the jobs' live logs, for following a log as it grows.
const LOG_PREFIXES: &[&str] = &[refs::QUEUE, refs::CLAIMS, refs::CANCEL, refs::BACKLOG, refs::LOGS];

pub struct Changes {
    how: How,
}

enum How {
    /// A local hub, watched.
    Watch(RefWatch),
    Look(Look),
}

/// Looks at a hub's refs naming some jobs.
struct Look {
    prefixes: &'static [&'static str],
    ids: Vec<String>,
    /// What the last look saw; `None` when it failed.
    last: Option<Fingerprint>,
    pause: Duration,
    /// When the jobs last moved.
    moved: Instant,
}

impl Changes {
    /// Starts watching a local hub, before the caller's first read of the
    /// jobs so that no change after it is missed; a remote hub is first
    /// looked at by [`Changes::before_read`].
    pub fn new(hub: &dyn Hub, ids: &[JobId]) -> Changes {
        Changes::of(hub, ids, JOB_PREFIXES)
    }

    /// [`Changes::new`], waking also when the jobs' live logs grow.
    pub fn with_logs(hub: &dyn Hub, ids: &[JobId]) -> Changes {
        Changes::of(hub, ids, LOG_PREFIXES)
    }

    fn of(hub: &dyn Hub, ids: &[JobId], prefixes: &'static [&'static str]) -> Changes {
        let how = match hub.watch_path().and_then(|dir| RefWatch::new(&dir)) {
            Some(watch) => How::Watch(watch),
            None => How::Look(Look::new(ids, prefixes)),
        };
        Changes { how }
    }

    /// To be called before each read of the jobs: a remote hub's first
    /// look is taken here, so that whatever changes after the read shows
    /// in the next look. (Later looks are taken by [`Changes::wait`],
    /// which returns only after one, so they too come before the read.)
    pub fn before_read(&mut self, hub: &dyn Hub) {
        if let How::Look(look) = &mut self.how
            && look.last.is_none()
        {
            look.last = look.take(hub).ok();
        }
    }

    /// The jobs moved: the next move tends to come soon (a claim is
    /// followed by a publish), so look fast again.
    pub fn moved(&mut self) {
        if let How::Look(look) = &mut self.how {
            (look.pause, look.moved) = (FIRST_LOOK, Instant::now());
        }
    }

    /// Until the jobs' refs may have changed.
    pub fn wait(&mut self, hub: &dyn Hub) {
        match &mut self.how {
            // No pause to let a transaction's several refs land: it was
            // 10 ms of every `submit --wait`. A read that sees a
            // transaction half done finds the job where it was (or not
            // yet in `done`), and the next ref change wakes us.
            How::Watch(watch) => {
                watch.wait(LOCAL_POLL, Duration::ZERO);
            }
            How::Look(look) => look.until_changed(hub),
        }
    }
}

impl Look {
    fn new(ids: &[JobId], prefixes: &'static [&'static str]) -> Look {
        let ids = ids.iter().map(|id| id.to_string()).collect();
        Look { prefixes, ids, last: None, pause: FIRST_LOOK, moved: Instant::now() }
    }

    /// Pauses, looks, and returns once a look differs from the last one
    /// (or fails: the caller's read then says what is wrong).
    fn until_changed(&mut self, hub: &dyn Hub) {
        loop {
            std::thread::sleep(self.pause);
            if self.moved.elapsed() >= FAST_FOR {
                self.pause = (self.pause * 2).min(LONGEST_PAUSE);
            }
            let now = self.take(hub).ok();
            if now.is_none() || now != self.last {
                self.last = now;
                return;
            }
        }
    }

    /// The hub's refs naming these jobs, and its backlog refs, as one digest.
    fn take(&self, hub: &dyn Hub) -> Result<Fingerprint, HubError> {
        hub.fingerprint(self.prefixes, |name| self.names_ours(name))
    }

    fn names_ours(&self, name: &str) -> bool {
        name.starts_with(refs::BACKLOG)
            || name.rsplit_once('/').is_some_and(|(_, last)| self.ids.iter().any(|id| id == last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_keeps_the_refs_of_its_jobs_and_the_backlogs() {
        let ids = vec!["20261202T010203000-aaaaaaaaaaaa".into()];
        let look = Look { prefixes: LOG_PREFIXES, ids, last: None, pause: FIRST_LOOK, moved: Instant::now() };
        for ours in [
            "refs/ci/queue/default/20261202T010203000-aaaaaaaaaaaa",
            "refs/ci/claims/20261202T010203000-aaaaaaaaaaaa",
            "refs/ci/logs/20261202T010203000-aaaaaaaaaaaa",
            "refs/ci/backlog/default/b1",
        ] {
            assert!(look.names_ours(ours), "{ours}");
        }
        for theirs in
            ["refs/ci/queue/default/20261202T010203000-bbbbbbbbbbbb", "refs/ci/claims/20261202T010203000-aaaaaaaaaaa"]
        {
            assert!(!look.names_ours(theirs), "{theirs}");
        }
    }
}
