//! Which pending jobs a worker claims first, so that workers claiming at
//! the same moment mostly pick different jobs without talking to each other.
//!
//! Rendezvous (highest random weight) hashing over the workers seen
//! claiming ranks the workers for each job: every worker that sees the same
//! set of names ranks them alike, and a worker joining or leaving moves only
//! the jobs it wins or held. A worker takes the jobs it ranks first on,
//! oldest first; with none of those left it helps out with the jobs it
//! ranks second on, newest first, the farthest from where their first
//! worker is taking its own (work stealing, as in a deque: the owner pops
//! one end, thieves the other), then, in turn, those it ranks lower on
//! (the worker holds those back for a while: `Worker::waits`).
//!
//! It is a preference, never a rule: a claim is still a compare-and-swap,
//! so two workers that disagree (one saw a name the other did not yet)
//! cost at worst a lost race, as without it.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::id::JobId;

/// The other workers claiming from the queue, as far as we know them.
#[derive(Default)]
pub(super) struct Peers {
    /// Workers last seen claiming, by name: see [`super::Worker::sharers`].
    pub(super) seen: HashMap<String, Instant>,
    /// How many times we read every worker's registration to learn them,
    /// and when last.
    pub(super) reads: u32,
    pub(super) read_at: Option<Instant>,
    /// A lost race since that read says we do not know them all.
    pub(super) unsure: bool,
}

/// The names of the workers sharing the queue, ours among them, each with
/// its hash (a claim round ranks every name for every candidate job).
#[derive(Debug, Clone, Default)]
pub struct Sharers {
    names: Vec<(String, u64)>,
}

impl Sharers {
    /// `me` and the distinct `others`, in any order.
    pub fn new<'a>(me: &'a str, others: impl IntoIterator<Item = &'a str>) -> Sharers {
        let mut names: Vec<&str> = std::iter::once(me).chain(others).collect();
        names.sort_unstable();
        names.dedup();
        Sharers { names: names.into_iter().map(|n| (n.to_owned(), key(n.as_bytes()))).collect() }
    }

    /// How many workers besides `me` share the queue.
    pub fn rivals(&self) -> usize {
        self.names.len().saturating_sub(1)
    }

    /// The name that wins `job`: the highest weight of name and job id.
    pub fn owner(&self, job: &JobId) -> &str {
        let job = key(job.as_str().as_bytes());
        self.names.iter().max_by_key(|(_, name)| weight(*name, job)).map_or("", |(n, _)| n.as_str())
    }

    /// Where `me` ranks for `job`: 0 if it wins it, 1 if second...
    pub fn rank(&self, me: &str, job: &JobId) -> usize {
        let job = key(job.as_str().as_bytes());
        let me_key = self.names.iter().find(|(n, _)| n == me).map_or_else(|| key(me.as_bytes()), |(_, k)| *k);
        let mine = weight(me_key, job);
        self.names.iter().filter(|(n, k)| n != me && weight(*k, job) > mine).count()
    }
}

/// How deep in the queue a worker looks for its own jobs and for others'.
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    /// Its own: deep, since the head of a snapshot even a little old is
    /// full of jobs the others took since.
    pub own: usize,
    /// Others': shallow, so that a job taken out of turn is near the front.
    pub others: usize,
}

/// Which of `queue` `me` claims for its `free` slots: indices into `queue`,
/// which lists `(priority, job)` highest priority first, then oldest first.
/// A higher priority always goes first; within one, the jobs `me` ranks
/// best on, its own oldest first, others' newest first. An `overdue` job
/// counts as everyone's own: its first worker is not taking it (busy with
/// long jobs, gone, or unable to run it), and it must not wait for ever
/// behind the jobs that keep coming for the others. A `held_back` job is
/// left to the workers ranked before `me` on it for now.
pub fn choose(
    queue: &[(i32, &JobId)],
    depth: Depth,
    free: usize,
    sharers: &Sharers,
    me: &str,
    overdue: &HashSet<JobId>,
    held_back: &HashSet<JobId>,
) -> Vec<usize> {
    let mut order: Vec<(usize, usize)> = queue
        .iter()
        .take(depth.own.max(depth.others))
        .enumerate()
        .filter(|(_, (_, id))| !held_back.contains(*id))
        .map(|(i, (_, id))| (i, if overdue.contains(*id) { 0 } else { sharers.rank(me, id) }))
        .filter(|&(i, rank)| i < if rank == 0 { depth.own } else { depth.others })
        .collect();
    order.sort_by(|&(a, rank_a), &(b, rank_b)| {
        let by_age = if rank_a == 0 { a.cmp(&b) } else { b.cmp(&a) };
        queue[b].0.cmp(&queue[a].0).then(rank_a.cmp(&rank_b)).then(by_age)
    });
    order.into_iter().take(free).map(|(i, _)| i).collect()
}

/// A stable hash of a name or job id (SHA-256, so that workers built by
/// different compilers agree; std's hasher promises no stability across
/// releases).
fn key(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 8 bytes"))
}

/// The weight of a name for a job, from their keys: mixed (SplitMix64's
/// finalizer) so that every name orders the jobs independently, at the
/// cost of a few multiplications rather than a SHA-256 per pair.
fn weight(name: u64, job: u64) -> u64 {
    let mut z = name ^ job;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn none() -> HashSet<JobId> {
        HashSet::new()
    }

    fn deep(n: usize) -> Depth {
        Depth { own: n, others: n }
    }

    fn ids(n: usize) -> Vec<JobId> {
        (0..n).map(|i| JobId::new(UNIX_EPOCH + Duration::from_secs(1_795_000_000), &i.to_le_bytes())).collect()
    }

    #[test]
    fn every_worker_names_the_same_owner_whatever_it_saw_first() {
        let a = Sharers::new("w1", ["w3", "w2", "w3"]);
        let b = Sharers::new("w3", ["w1", "w2"]);
        assert_eq!(a.rivals(), 2);
        for id in ids(200) {
            assert_eq!(a.owner(&id), b.owner(&id), "{id}");
        }
    }

    #[test]
    fn jobs_are_shared_about_evenly() {
        let sharers = Sharers::new("w0", ["w1", "w2", "w3"]);
        let mut owned: HashMap<&str, usize> = HashMap::new();
        let jobs = ids(4000);
        for id in &jobs {
            *owned.entry(sharers.owner(id)).or_default() += 1;
        }
        assert_eq!(owned.len(), 4, "{owned:?}");
        assert!(owned.values().all(|&n| (800..=1200).contains(&n)), "{owned:?}");
    }

    #[test]
    fn a_worker_joining_takes_jobs_only_for_itself() {
        let before = Sharers::new("w0", ["w1", "w2"]);
        let after = Sharers::new("w0", ["w1", "w2", "w3"]);
        let mut moved = 0;
        for id in ids(1000) {
            if before.owner(&id) != after.owner(&id) {
                assert_eq!(after.owner(&id), "w3", "{id} moved between old workers");
                moved += 1;
            }
        }
        assert!((150..=350).contains(&moved), "{moved} of 1000 moved to the new worker");
    }

    #[test]
    fn alone_every_job_is_ours_and_taken_oldest_first() {
        let alone = Sharers::new("w0", []);
        assert_eq!(alone.rivals(), 0);
        let jobs = ids(20);
        assert!(jobs.iter().all(|id| alone.owner(id) == "w0" && alone.rank("w0", id) == 0));
        let queue: Vec<(i32, &JobId)> = jobs.iter().map(|id| (0, id)).collect();
        assert_eq!(choose(&queue, deep(20), 3, &alone, "w0", &none(), &none()), [0, 1, 2]);
    }

    #[test]
    fn ranks_order_every_worker_for_a_job() {
        let sharers = Sharers::new("w0", ["w1", "w2", "w3"]);
        for id in ids(50) {
            let mut ranks: Vec<usize> = ["w0", "w1", "w2", "w3"].iter().map(|w| sharers.rank(w, &id)).collect();
            assert_eq!(sharers.rank(sharers.owner(&id), &id), 0);
            ranks.sort_unstable();
            assert_eq!(ranks, [0, 1, 2, 3], "{id}");
        }
    }

    #[test]
    fn workers_claiming_at_once_choose_apart_until_one_runs_out() {
        let names = ["w0", "w1", "w2", "w3"];
        let sharers = Sharers::new("w0", ["w1", "w2", "w3"]);
        let jobs = ids(64);
        let queue: Vec<(i32, &JobId)> = jobs.iter().map(|id| (0, id)).collect();
        let chosen: Vec<Vec<usize>> =
            names.iter().map(|w| choose(&queue, deep(64), 4, &sharers, w, &none(), &none())).collect();
        for (w, picks) in names.iter().zip(&chosen) {
            assert_eq!(picks.len(), 4);
            assert!(picks.windows(2).all(|p| p[0] < p[1]), "{w}: its own, oldest first: {picks:?}");
            assert!(picks.iter().all(|&i| sharers.owner(queue[i].1) == *w), "{w}: {picks:?}");
        }
        // One worker's jobs are all gone: it helps with those it ranks
        // second on, newest first, while their owners take the oldest.
        let others: Vec<(i32, &JobId)> = queue.iter().copied().filter(|(_, id)| sharers.owner(id) != "w0").collect();
        let stolen = choose(&others, deep(64), 4, &sharers, "w0", &none(), &none());
        assert!(stolen.iter().all(|&i| sharers.rank("w0", others[i].1) == 1), "{stolen:?}");
        assert!(stolen.windows(2).all(|p| p[0] > p[1]), "newest first: {stolen:?}");
        for w in &names[1..] {
            let own = choose(&others, deep(64), 4, &sharers, w, &none(), &none());
            assert!(own.iter().all(|i| !stolen.contains(i)), "{w} took {own:?}, w0 stole {stolen:?}");
        }
    }

    #[test]
    fn a_higher_priority_goes_first_whoever_it_belongs_to() {
        let sharers = Sharers::new("w0", ["w1"]);
        let jobs = ids(8);
        let urgent = jobs.iter().position(|id| sharers.owner(id) == "w1").expect("w1 owns one of 8");
        let queue: Vec<(i32, &JobId)> = std::iter::once((5, &jobs[urgent]))
            .chain(jobs.iter().enumerate().filter(|(i, _)| *i != urgent).map(|(_, id)| (0, id)))
            .collect();
        assert_eq!(choose(&queue, deep(8), 1, &sharers, "w0", &none(), &none()), [0]);
    }

    #[test]
    fn an_overdue_job_goes_first_whoever_it_belongs_to() {
        let sharers = Sharers::new("w0", ["w1"]);
        // Overdue jobs sit at the front: the queue starts at one of w1's.
        let mut jobs = ids(40);
        let first_of_w1 = jobs.iter().position(|id| sharers.owner(id) == "w1").expect("w1 owns one of 40");
        jobs.drain(..first_of_w1);
        let queue: Vec<(i32, &JobId)> = jobs.iter().map(|id| (0, id)).collect();
        let theirs = 0;
        let before = choose(&queue, deep(40), 1, &sharers, "w0", &none(), &none());
        assert_ne!(before, [theirs], "w0 takes its own first");
        let overdue = HashSet::from([jobs[theirs].clone()]);
        assert_eq!(choose(&queue, deep(40), 1, &sharers, "w0", &overdue, &none()), [theirs]);
    }

    #[test]
    fn own_jobs_are_looked_for_deeper_than_others() {
        let sharers = Sharers::new("w0", ["w1", "w2"]);
        let jobs = ids(60);
        let queue: Vec<(i32, &JobId)> = jobs.iter().map(|id| (0, id)).collect();
        let picks = choose(&queue, Depth { own: 40, others: 6 }, 30, &sharers, "w0", &none(), &none());
        let own = picks.iter().filter(|&&i| sharers.rank("w0", queue[i].1) == 0).count();
        assert_eq!(own, (0..40).filter(|&i| sharers.rank("w0", queue[i].1) == 0).count());
        assert!(picks.iter().all(|&i| i < 40), "{picks:?}");
        assert!(
            picks.iter().all(|&i| i < 6 || sharers.rank("w0", queue[i].1) == 0),
            "others' jobs only from the first 6: {picks:?}"
        );
    }

    #[test]
    fn a_held_back_job_is_left_to_the_workers_ranked_before() {
        let sharers = Sharers::new("w0", ["w1", "w2"]);
        let jobs = ids(30);
        let queue: Vec<(i32, &JobId)> = jobs.iter().filter(|id| sharers.rank("w0", id) > 0).map(|id| (0, id)).collect();
        let first = choose(&queue, deep(30), 1, &sharers, "w0", &none(), &none());
        assert_eq!(first.len(), 1);
        let held = HashSet::from([queue[first[0]].1.clone()]);
        let next = choose(&queue, deep(30), 1, &sharers, "w0", &none(), &held);
        assert_eq!(next.len(), 1);
        assert_ne!(next, first, "the held-back job is not taken");
        let all: HashSet<JobId> = queue.iter().map(|(_, id)| (*id).clone()).collect();
        assert!(choose(&queue, deep(30), 3, &sharers, "w0", &none(), &all).is_empty());
    }
}
