//! The order of parked jobs: the order claimers take queued jobs in,
//! highest priority first, then oldest first (ids sort by submission time).
//!
//! A submission queues the first jobs of a queue in that order and parks
//! the rest sorted the same way ([`sorted`]), so the best parked job of a
//! queue heads one of its backlogs, whichever batch it came in. A
//! promotion ([`best`]) merges the backlogs by their heads, reading a
//! job's document only when it comes up: the jobs it takes, those it
//! passes over (another claimer's), and one more per backlog; never the
//! thousands behind them.
//!
//! The guard does not check the order: a backlog out of order (written
//! by hand, or before git-ci sorted them) is promoted in a worse order,
//! never less.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashSet};

use gix::ObjectId;

use super::{Parked, Promotion, read};
use crate::hub::Hub;
use crate::id::JobId;
use crate::model::Job;
use crate::queue::{Queued, Snapshot};
use crate::refs;

/// Where a job stands in the claim order: smaller goes first.
pub type Rank = (Reverse<i32>, JobId);

/// A job's [`Rank`].
pub fn rank(job: &Job) -> Rank {
    (Reverse(job.spec.priority), job.id.clone())
}

/// `jobs` in the claim order.
pub fn sorted<'a>(jobs: &[&'a Job]) -> Vec<&'a Job> {
    let mut out = jobs.to_vec();
    out.sort_by_cached_key(|j| rank(j));
    out
}

/// Which of `jobs` (one submission) a submission parks, by index: beyond
/// the first `after` of their queue in the claim order, those nobody
/// waits for that wait for nobody, and not live instances (`serve`).
pub fn to_park(jobs: &[&Job], after: usize) -> Vec<bool> {
    let mut by_queue: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, j) in jobs.iter().enumerate() {
        by_queue.entry(j.spec.queue.as_str()).or_default().push(i);
    }
    let mut park = vec![false; jobs.len()];
    for mut indices in by_queue.into_values() {
        // Stable: a submission's own order breaks ties of priority.
        indices.sort_by_key(|&i| Reverse(jobs[i].spec.priority));
        for &i in indices.iter().skip(after) {
            let j = jobs[i];
            park[i] = j.needs.is_empty() && j.needed_by.is_empty() && !j.spec.serve;
        }
    }
    park
}

/// One backlog's jobs not yet queued, read one at a time from the head.
struct Stream {
    queued: Vec<Queued>,
    head: Option<(Rank, Queued, Job)>,
}

impl Stream {
    /// The next readable job: a document the guard would refuse stays
    /// parked, for no one.
    fn advance(&mut self, hub: &dyn Hub) {
        self.head = None;
        while let Some(q) = self.queued.pop() {
            if let Ok((job, _)) = q.read_job(hub) {
                self.head = Some((rank(&job), q, job));
                return;
            }
        }
    }
}

/// The backlogs of `snap`, each a stream at its head; a job both parked
/// and queued (promoted between two listings) is left out, and a backlog
/// that cannot be read is skipped (a hub without the guard may hold
/// anything there).
fn streams(hub: &dyn Hub, snap: &Snapshot) -> Vec<Stream> {
    let repo = hub.repo();
    let queued: HashSet<&JobId> = snap.queued.iter().map(|q| &q.id).collect();
    let mut out = Vec::new();
    for (name, tip) in &snap.backlogs {
        let (Some((queue, _)), Ok(contents)) = (refs::parse_backlog_ref(name), read(&repo, *tip)) else { continue };
        // Reversed, so that the head is the last, for `pop`.
        let rest: Vec<Queued> = (contents.entries.into_iter().rev())
            .filter(|e| !queued.contains(&e.id))
            .map(|e| {
                let parked = Parked { backlog: name.clone(), tip: *tip, path: e.path };
                Queued { id: e.id, queue: queue.clone(), value: e.blob, parked: Some(parked) }
            })
            .collect();
        let mut stream = Stream { queued: rest, head: None };
        stream.advance(hub);
        out.push(stream);
    }
    out
}

/// Up to `want` parked jobs of `snap` that `can_run` accepts, in the
/// claim order across all its backlogs.
pub fn best(hub: &dyn Hub, snap: &Snapshot, want: usize, can_run: impl Fn(&Job) -> bool) -> Vec<Promotion> {
    let mut streams = streams(hub, snap);
    let mut chosen = Vec::new();
    // Past jobs this claimer cannot run if need be: the jobs it can run
    // may all sit behind others'.
    while chosen.len() < want {
        fn rank(s: &Stream) -> Option<&Rank> {
            s.head.as_ref().map(|(r, _, _)| r)
        }
        let Some(first) = streams.iter_mut().filter(|s| s.head.is_some()).min_by(|a, b| rank(a).cmp(&rank(b))) else {
            break;
        };
        let (_, q, job) = first.head.take().expect("a stream with a head");
        first.advance(hub);
        let Ok(commit) = ObjectId::from_hex(job.commit.as_bytes()) else { continue };
        if can_run(&job) {
            let parked = q.parked.expect("a parked job");
            chosen.push(Promotion { queue: q.queue, id: q.id, blob: q.value, commit, parked });
        }
    }
    chosen
}

/// The first job of the backlog `name` at `tip` whose document reads: the
/// most urgent it holds (`None`: none, or not a backlog).
pub fn head(hub: &dyn Hub, name: &str, tip: ObjectId) -> Option<Job> {
    let (queue, _) = refs::parse_backlog_ref(name)?;
    let contents = read(&hub.repo(), tip).ok()?;
    contents.entries.into_iter().find_map(|e| {
        let parked = Parked { backlog: name.to_owned(), tip, path: e.path };
        let q = Queued { id: e.id, queue: queue.clone(), value: e.blob, parked: Some(parked) };
        q.read_job(hub).ok().map(|(job, _)| job)
    })
}
