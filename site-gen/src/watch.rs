//! `git ci site build --watch`: wait until the hub's refs change, then
//! rebuild. A local hub is watched for ref changes (as the worker does); a
//! remote one is polled. Either way a change is confirmed by comparing the
//! refs themselves: the site is a function of them and of the clock,
//! whose whole minutes its ages count; so a new minute rebuilds too.

use std::time::{Duration, SystemTime};

use git_ci_core::ref_watch::RefWatch;
use git_ci_core::{Hub, refs};

use crate::digest::{Digest, Key};
use crate::error::SiteError;

pub struct Watch {
    wake: Option<RefWatch>,
    poll: Duration,
    last: Digest,
    /// Ages on the pages move by this much (a minute): a rebuild is due
    /// when the clock passes a multiple of it, changed refs or not.
    tick: Duration,
    /// The tick of the last build.
    built: u64,
}

/// What the site reads: not pins (whose fetch would bring the code under
/// test) nor cancel requests.
const WATCHED: [&str; 7] =
    [refs::QUEUE, refs::BACKLOG, refs::CLAIMS, refs::DONE, refs::ARCHIVE, refs::WORKERS, refs::LOGS];

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
        let tick = Duration::from_secs(60);
        Ok(Watch { last: fingerprint(hub)?, wake, poll, tick, built: tick_of(SystemTime::now(), tick) })
    }

    /// Blocks until the refs the site shows changed, or the clock reached
    /// a new minute (the pages' ages then change).
    pub fn wait(&mut self, hub: &dyn Hub) -> Result<(), SiteError> {
        loop {
            let to_tick = self.until_next_tick(SystemTime::now());
            self.sleep(self.poll.min(to_tick));
            let now = fingerprint(hub)?;
            let tick = tick_of(SystemTime::now(), self.tick);
            if now != self.last || tick != self.built {
                self.last = now;
                self.built = tick;
                return Ok(());
            }
        }
    }

    /// How long from `now` until the clock reaches the tick after the
    /// last build's.
    fn until_next_tick(&self, now: SystemTime) -> Duration {
        let next = SystemTime::UNIX_EPOCH + self.tick * (self.built as u32 + 1);
        // A little past it: waking a hair early would find the same tick.
        next.duration_since(now).unwrap_or_default() + Duration::from_millis(20)
    }

    /// Until a ref event (local hub) or for `at_most`.
    fn sleep(&self, at_most: Duration) {
        match &self.wake {
            Some(watch) => {
                watch.wait(at_most, SETTLE);
            }
            None => std::thread::sleep(at_most),
        }
    }
}

/// Which tick of length `tick` since the epoch `t` is in.
fn tick_of(t: SystemTime, tick: Duration) -> u64 {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    (since.as_millis() / tick.as_millis().max(1)) as u64
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::tests::fixture::World;

    /// Issue 17 item 2: `--watch` rebuilt only when refs changed, so the
    /// ages on an idle hub's pages never moved.
    #[test]
    fn an_idle_hub_still_rebuilds_when_the_clock_passes_a_tick() {
        let w = World::new();
        let mut watch = Watch::new(&w.hub, Duration::from_secs(600)).unwrap();
        watch.tick = Duration::from_secs(1);
        watch.built = tick_of(SystemTime::now(), watch.tick);
        let started = Instant::now();
        let (tx, rx) = std::sync::mpsc::channel();
        let hub_path = w.hub_path.clone();
        std::thread::spawn(move || {
            let hub = git_ci_core::hub::LocalHub::open(&hub_path).unwrap();
            let r = watch.wait(&hub).is_ok();
            let _ = tx.send(r);
        });
        let woke = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(woke, Ok(true), "wait returns at the next tick with no ref changed");
        assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    }
}
