//! How fast and how wide a worker claims: its poll interval, how many of
//! the queue's first jobs a claim may take others' jobs from, how long a
//! snapshot of the queue is claimed from, and when a job waiting for
//! another worker is anyone's. The claim rounds that follow these are
//! [`super::claim`].

use super::*;

/// The poll interval after a look at the queue: `cfg.poll` while there is
/// work and for [`Config::idle_poll`] after the queue emptied (more jobs
/// tend to follow soon: the next push, a retry), then doubled after each
/// look up to `cfg.idle_poll()`. `quiet_for`: how long since work was last
/// seen, `None` while there is some.
pub(super) fn next_idle_poll(current: Duration, cfg: &Config, quiet_for: Option<Duration>) -> Duration {
    match quiet_for {
        Some(quiet) if quiet >= cfg.idle_poll() => (current * 2).clamp(cfg.poll, cfg.idle_poll()),
        _ => cfg.poll,
    }
}

/// How many times a claim batch that lost one job to another worker is
/// pushed again at once without it (and with its publish), before the
/// worker reads the hub afresh.
pub(super) const BATCH_RETRIES: usize = 3;

/// How many of the first eligible jobs a claim of `free` may take other
/// workers' jobs from (its own are looked for deeper: see `Worker::pick`):
/// a batch per worker claiming (us and `rivals`), widened by `spread` after
/// lost races. The window scales with the batch: a batch of claims is one
/// atomic transaction, lost whole if any of its jobs is taken.
pub(super) fn claim_window(spread: usize, rivals: usize, free: usize, candidates: usize) -> usize {
    (spread.max(rivals + 1) * free).clamp(1, candidates.max(1))
}

/// How long a worker seen claiming is counted among those sharing the
/// queue after its last claim was seen: longer than a snapshot is reused
/// and than a worker sits between jobs, short enough that a worker gone
/// leaves its share of the queue to the others soon (they would take it
/// anyway, newest first: see [`share`]).
pub(super) const SHARERS_KEPT_FOR: Duration = Duration::from_secs(30);

/// How long another worker's job may sit unclaimed at the front of the
/// queue before any worker takes it as its own: two idle polls, time for its
/// first worker to have looked, and at least 2 s. A worker busy with long
/// jobs, gone, or unable to run the job (labels) then holds it up no more.
pub(super) fn stuck_after(cfg: &Config) -> Duration {
    (cfg.idle_poll() * 2).max(Duration::from_secs(2))
}

/// How long a job waiting at the front of the queue is left to each
/// worker ranked before this one on it, past the second (see
/// `Worker::due`): about a poll, time for a worker with a free slot to
/// look. With 16 workers the last-ranked waits 3.5 s, under
/// [`stuck_after`]'s default.
pub(super) const RANK_WAIT: Duration = Duration::from_millis(250);

/// How many of another worker's next jobs a helper in a [`crowded`]
/// fleet leaves to it (`Worker::waits`).
pub(super) const OWNERS_NEXT: usize = 2;

/// Past how many workers claiming from one queue a fleet is [`crowded`].
pub(super) const CROWDED_AFTER: usize = 8;

/// Whether the fleet claiming beside this worker is large enough that
/// its lost races cost more than an idle worker: then a worker out of
/// jobs of its own waits its turn to promote parked ones, and leaves the
/// others their next jobs, rather than race them. Each lost race is a push
/// and a fetch the hub serves while every other request waits; a worker
/// that waits costs the fleet one worker's pace. Measured over `git
/// daemon` on 2 cores (BENCHMARKS.md): 4 one-slot workers keep the hub
/// about 60% busy, and made patient they drained 15% slower; 16 keep it
/// saturated, and made patient spent 10% less CPU a drain.
pub(super) fn crowded(sharers: &Sharers) -> bool {
    sharers.rivals() + 1 > CROWDED_AFTER
}

/// How often a worker that lost a race may read every registration again
/// to learn who else claims: a fetch of every worker's document, cheap for
/// a few workers, not for a thousand (docs/scale.md).
pub(super) const REGISTRATIONS_EVERY: Duration = Duration::from_secs(60);

/// How long the unclaimed rest of a snapshot may be claimed from without
/// reading the hub again, on a local hub (see [`reuse_snapshot_for`]).
pub(super) const REUSE_SNAPSHOT_FOR: Duration = Duration::from_secs(1);

/// How long the unclaimed rest of a snapshot may be claimed from without
/// reading the hub again. A claim is a compare-and-swap (claim absent, job
/// still queued), so a stale view costs at worst a lost race, and an old
/// snapshot is used only for this worker's own share of the queue, which
/// the others leave alone until it is overdue ([`stuck_after`]): on a
/// remote hub a fetch is a round trip saved each time, so a 1-slot
/// worker's cycle is one push (publish and the next claim) until its share
/// runs out; on a local hub a listing of every queue ref. Over the network
/// up to [`stuck_after`]: 16 one-slot workers sharing 2 cores with their
/// hub take a second a job each, and half of it made every third claim a
/// fetch.
pub(super) fn reuse_snapshot_for(hub: &dyn Hub, cfg: &Config) -> Duration {
    match hub.watch_path() {
        Some(_) => REUSE_SNAPSHOT_FOR,
        None => stuck_after(cfg).max(REUSE_SNAPSHOT_FOR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_worker_stretches_its_poll_and_snaps_back_on_work() {
        let secs = Duration::from_secs;
        let cfg = Config { poll: secs(2), poll_max: secs(30), ..Config::new("w".to_owned(), PathBuf::from("/tmp")) };
        let mut poll = cfg.poll;
        let mut seen = Vec::new();
        for _ in 0..6 {
            poll = next_idle_poll(poll, &cfg, Some(secs(30)));
            seen.push(poll.as_secs());
        }
        assert_eq!(seen, [4, 8, 16, 30, 30, 30]);
        assert_eq!(next_idle_poll(poll, &cfg, None), secs(2));
        let fixed = Config { poll_max: secs(1), ..cfg };
        assert_eq!(next_idle_poll(secs(2), &fixed, Some(secs(60))), secs(2), "poll_max below poll keeps it fixed");
    }

    /// The defaults: fast for as long as an idle poll after the queue
    /// emptied, then doubling to `poll_max`; never faster than `poll`.
    #[test]
    fn a_worker_whose_queue_just_emptied_keeps_polling_fast_for_a_while() {
        let ms = Duration::from_millis;
        let cfg = Config::new("w".to_owned(), PathBuf::from("/tmp"));
        assert_eq!((cfg.poll, cfg.idle_poll()), (ms(200), ms(2000)));
        assert_eq!(next_idle_poll(ms(200), &cfg, Some(ms(1900))), ms(200), "just emptied: still fast");
        let mut poll = ms(200);
        let seen: Vec<u128> = (0..5)
            .map(|_| {
                poll = next_idle_poll(poll, &cfg, Some(ms(2000)));
                poll.as_millis()
            })
            .collect();
        assert_eq!(seen, [400, 800, 1600, 2000, 2000]);
    }
}
