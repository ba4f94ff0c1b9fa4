//! `git ci site build --watch`: wait until the hub's refs change, then
//! rebuild. A local hub is watched for ref changes (as the worker does); a
//! remote one is polled. Either way a change is confirmed by comparing the
//! refs themselves: the site is a function of them and nothing else.

use std::time::Duration;

use git_ci_core::ref_watch::RefWatch;
use git_ci_core::{Hub, refs};

use crate::digest::{Digest, Key};
use crate::error::SiteError;

pub struct Watch {
    wake: Option<RefWatch>,
    poll: Duration,
    last: Digest,
}

/// What the site reads: not pins (whose fetch would bring the code under
/// test) nor cancel requests.
const WATCHED: [&str; 6] = [refs::QUEUE, refs::CLAIMS, refs::DONE, refs::ARCHIVE, refs::WORKERS, refs::LOGS];

/// Events closer together than this are one change (a worker's complete
/// moves several refs).
const SETTLE: Duration = Duration::from_millis(150);

/// How often a watched local hub is still compared, in case an event was
/// missed (a hub on a network filesystem sends none).
const LOCAL_POLL: Duration = Duration::from_secs(30);

impl Watch {
    /// `poll`: how often to look at a remote hub.
    pub fn new(hub: &dyn Hub, poll: Duration) -> Result<Watch, SiteError> {
        let wake = hub.watch_path().and_then(|dir| RefWatch::new(&dir));
        let poll = if wake.is_some() { LOCAL_POLL } else { poll };
        Ok(Watch { last: fingerprint(hub)?, wake, poll })
    }

    /// Blocks until the refs the site shows changed.
    pub fn wait(&mut self, hub: &dyn Hub) -> Result<(), SiteError> {
        loop {
            self.sleep();
            let now = fingerprint(hub)?;
            if now != self.last {
                self.last = now;
                return Ok(());
            }
        }
    }

    /// Until a ref event (local hub) or for the poll interval.
    fn sleep(&self) {
        match &self.wake {
            Some(watch) => {
                watch.wait(self.poll, SETTLE);
            }
            None => std::thread::sleep(self.poll),
        }
    }
}

fn fingerprint(hub: &dyn Hub) -> Result<Digest, SiteError> {
    hub.refresh(&WATCHED)?;
    let mut k = Key::new("refs");
    for prefix in WATCHED {
        for (name, id) in hub.list(prefix)? {
            k.str(&name).oid(&id);
        }
    }
    Ok(k.finish())
}
