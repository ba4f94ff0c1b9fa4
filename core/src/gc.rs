//! `git ci gc`: cutting old results off the `done` chains.
//!
//! A `done` tip's tree holds every result its writer ever published, so it
//! only grows, and so does every fetch of it. gc replaces each chain with a
//! new root commit whose tree keeps the recent results and the whole
//! `cache/` and `triggers/` indexes (their tree objects reused as they are:
//! the trigger index must never forget what it queued, or the hook would
//! queue it again). The results cut off are added to the writer's
//! `refs/ci/archive/<writer>` chain, which only grows by fast-forward and
//! which every reader looks in too ([`crate::done::tips`]); with `prune`
//! they are dropped instead, and `git gc --prune=now` on the hub reclaims
//! them.
//!
//! Moving one chain is one transaction: `done/<writer>` expected at the tip
//! that was read, `archive/<writer>` expected at its tip. A writer that
//! appends meanwhile makes it fail; gc then reads again and starts over, so
//! the appended result is never lost.

pub mod orphans;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use gix::ObjectId;

use crate::archive::Plan;
use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::refs;

/// The push option that tells the hub's guard a chain may move backwards
/// (the guard reads it as `git_ci_hooks::guard::GC_OPTION`).
pub const PUSH_OPTION: &str = "ci.gc";

pub use crate::archive::{DEFAULT_MAX_AGE, MAX_ATTEMPTS, Policy};

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub policy: Policy,
    /// Drop the cut results rather than archive them.
    pub prune: bool,
    /// Decide, change nothing.
    pub dry_run: bool,
    /// The time ages are measured from.
    pub now: SystemTime,
}

/// Which of a writer's two chains a report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainKind {
    /// `refs/ci/done/<writer>`.
    Done,
    /// `refs/ci/archive/<writer>`: cut only with `prune` (workers roll
    /// their chains into it, see [`crate::chain`], so pruning the `done`
    /// chains alone would keep nearly everything).
    Archive,
}

impl ChainKind {
    /// `done` or `archive`, as in the ref's name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChainKind::Done => "done",
            ChainKind::Archive => "archive",
        }
    }

    fn refname(self, writer: &str) -> String {
        match self {
            ChainKind::Done => refs::done(writer),
            ChainKind::Archive => refs::archive(writer),
        }
    }
}

/// What gc did (or, on a dry run, would do) to one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub writer: String,
    pub kind: ChainKind,
    /// How many results the chain still holds.
    pub kept: usize,
    /// The results cut off, newest first; none when the chain was left alone.
    pub cut: Vec<JobId>,
    /// The tip read (the last time, after lost races).
    pub before: ObjectId,
    /// The new root commit, when the chain moved.
    pub after: Option<ObjectId>,
    /// The new archive tip, when one was written.
    pub archive: Option<ObjectId>,
    /// How many times the chain was read (more than one: its writer appended meanwhile).
    pub attempts: u32,
}

/// Progress, for a user interface to show.
#[derive(Debug)]
pub enum Event<'a> {
    /// Deciding what a chain keeps: chain `index` (from 0) of `total`.
    Reading { writer: &'a str, kind: ChainKind, index: usize, total: usize },
    /// The writer appended while gc worked: reading the chain again.
    Retrying { writer: &'a str, kind: ChainKind, attempt: u32 },
    /// A chain is done with (moved, left alone, or only planned on a dry run).
    Done(&'a ChainReport),
}

/// Cuts every `done` chain of the hub by `opts`, one transaction a chain,
/// and with `prune` every archive too. Chains already moved stay moved if
/// a later one fails.
pub fn collect(hub: &dyn Hub, opts: &Options, on: &mut dyn FnMut(Event<'_>)) -> Result<Vec<ChainReport>, HubError> {
    hub.refresh(&[refs::DONE, refs::ARCHIVE])?;
    let mut chains: Vec<(ChainKind, String)> = Vec::new();
    let kinds: &[(ChainKind, &str)] = if opts.prune {
        &[(ChainKind::Done, refs::DONE), (ChainKind::Archive, refs::ARCHIVE)]
    } else {
        &[(ChainKind::Done, refs::DONE)]
    };
    for &(kind, prefix) in kinds {
        chains.extend(hub.list(prefix)?.into_iter().map(|(name, _)| (kind, name[prefix.len()..].to_owned())));
    }
    let mut reports: Vec<ChainReport> = Vec::with_capacity(chains.len());
    for (index, (kind, writer)) in chains.iter().enumerate() {
        on(Event::Reading { writer, kind: *kind, index, total: chains.len() });
        // `keep` counts a writer's results over both chains: its archive
        // keeps what its `done` chain did not.
        let kept_in_done = reports.iter().filter(|r| r.kind == ChainKind::Done && &r.writer == writer).map(|r| r.kept);
        let policy = match kind {
            ChainKind::Done => opts.policy,
            ChainKind::Archive => {
                Policy { keep: opts.policy.keep.map(|n| n.saturating_sub(kept_in_done.sum())), ..opts.policy }
            }
        };
        if let Some(report) = chain(hub, *kind, writer, &Options { policy, ..*opts }, on)? {
            on(Event::Done(&report));
            reports.push(report);
        }
    }
    Ok(reports)
}

/// One chain, read again and again while its writer wins the race.
fn chain(
    hub: &dyn Hub,
    kind: ChainKind,
    writer: &str,
    opts: &Options,
    on: &mut dyn FnMut(Event<'_>),
) -> Result<Option<ChainReport>, HubError> {
    let mut attempt = 1;
    loop {
        let tried = match kind {
            ChainKind::Done => cut_once(hub, writer, opts, attempt)?,
            ChainKind::Archive => prune_archive_once(hub, writer, opts, attempt)?,
        };
        match tried {
            Try::Done(report) => return Ok(report),
            Try::Lost(HubError::Conflict { refname, detail, .. }) if attempt == MAX_ATTEMPTS => {
                let detail = format!("{detail}; gave up after {MAX_ATTEMPTS} attempts while the chain kept moving");
                return Err(HubError::Conflict { refname, detail, also: vec![] });
            }
            Try::Lost(_) => {
                attempt += 1;
                on(Event::Retrying { writer, kind, attempt });
                // Out of step with a writer that publishes in bursts.
                std::thread::sleep(Duration::from_millis(fastrand::u64(0..10 << attempt.min(6))));
            }
        }
    }
}

/// What `plan` does to `kind` of `writer`, before anything moved.
fn report(plan: &Plan, writer: &str, kind: ChainKind, attempts: u32) -> ChainReport {
    let (before, kept, cut) = (plan.tip, plan.kept, plan.cut_ids());
    ChainReport { writer: writer.to_owned(), kind, kept, cut, before, after: None, archive: None, attempts }
}

/// How one attempt at a chain ended.
enum Try {
    /// Moved, left alone, or only planned; `None` when the chain is gone.
    Done(Option<ChainReport>),
    /// The chain (or its archive) moved since it was read.
    Lost(HubError),
}

/// One read, plan and transaction.
fn cut_once(hub: &dyn Hub, writer: &str, opts: &Options, attempt: u32) -> Result<Try, HubError> {
    let (done_ref, archive_ref) = (refs::done(writer), refs::archive(writer));
    // The first look uses what `collect` just fetched.
    let read = |name: &str| if attempt == 1 { hub.get(name) } else { hub.refresh_ref(name) };
    let (Some(tip), archive_tip) = (read(&done_ref)?, read(&archive_ref)?) else {
        return Ok(Try::Done(None));
    };
    let mut plan = Plan::read(hub, tip, &opts.policy, opts.now)?;
    if let Some(archive) = archive_tip {
        plan.cut_archived(hub, archive)?;
    }
    let mut report = report(&plan, writer, ChainKind::Done, attempt);
    if report.cut.is_empty() || opts.dry_run {
        return Ok(Try::Done(Some(report)));
    }
    let archive = if opts.prune { None } else { Some(plan.write_archive(hub, writer, archive_tip)?) };
    let root = plan.write_root(hub, writer, archive)?;
    let mut edits = vec![RefEdit::update(&done_ref, tip, root)];
    edits.extend(archive.map(|a| RefEdit::set(&archive_ref, archive_tip, a)));
    match hub.transact_with_options(&edits, &[PUSH_OPTION]) {
        Ok(()) => {
            (report.after, report.archive) = (Some(root), archive);
            Ok(Try::Done(Some(report)))
        }
        Err(e) if e.is_conflict() => Ok(Try::Lost(e)),
        Err(e) => Err(e),
    }
}

/// One read, plan and transaction of a pruned archive: a new root holding
/// what it keeps, or no archive at all when it keeps nothing.
fn prune_archive_once(hub: &dyn Hub, writer: &str, opts: &Options, attempt: u32) -> Result<Try, HubError> {
    let name = ChainKind::Archive.refname(writer);
    let Some(tip) = (if attempt == 1 { hub.get(&name)? } else { hub.refresh_ref(&name)? }) else {
        return Ok(Try::Done(None));
    };
    let plan = Plan::read(hub, tip, &opts.policy, opts.now)?;
    let mut report = report(&plan, writer, ChainKind::Archive, attempt);
    if report.cut.is_empty() || opts.dry_run {
        return Ok(Try::Done(Some(report)));
    }
    let edit = if plan.keeps_any() {
        let context = || format!("could not write the new root of {name}");
        let tree = plan.kept_tree(hub, &[]).map_err(|e| hub.local_error(context(), e))?;
        let message = format!(
            "git-ci gc: kept {} archived results, {} pruned\n\nprevious tip: {tip}\n",
            plan.kept,
            report.cut.len()
        );
        let root = crate::done::commit(&hub.repo(), message, tree, None).map_err(|e| hub.local_error(context(), e))?;
        report.after = Some(root);
        RefEdit::update(&name, tip, root)
    } else {
        RefEdit::delete(&name, tip)
    };
    match hub.transact_with_options(&[edit], &[PUSH_OPTION]) {
        Ok(()) => Ok(Try::Done(Some(report))),
        Err(e) if e.is_conflict() => Ok(Try::Lost(e)),
        Err(e) => Err(e),
    }
}

/// What [`pack_refs`] could do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packed {
    /// `git pack-refs --all` ran in this repository.
    Packed(PathBuf),
    /// The hub is not on this machine: its refs are packed where it lives.
    Remote,
}

/// Refs git-ci deletes: never packed by [`pack_refs`].
const TRANSIENT: [&str; 7] =
    [refs::QUEUE, refs::BACKLOG, refs::PINS, refs::CLAIMS, refs::CANCEL, refs::LOGS, refs::WORKERS];

/// Packs the hub's refs when it is on this machine (a path, or a `file://`
/// URL): every push pays for every loose ref the hub advertises.
///
/// Every ref but the live ones: deleting a packed ref rewrites
/// `packed-refs`, and gix (workers on a local hub, the hooks) tells a
/// changed `packed-refs` by its mtime alone, so two rewrites within one
/// timestamp tick make a writer rewrite it from a stale copy and silently
/// undo other refs' updates. Measured: `pack-refs --all` in a loop beside
/// two workers lost finished results in half the runs; without the live refs,
/// in none. The refs packed here (branches, tags, `done`, `archive`) are
/// updated in place, by a loose ref, and never deleted by git-ci.
pub fn pack_refs(hub: &dyn Hub) -> Result<Packed, HubError> {
    let dir = hub.watch_path().or_else(|| hub.url().strip_prefix("file://").map(PathBuf::from));
    let Some(dir) = dir else { return Ok(Packed::Remote) };
    let excludes = TRANSIENT.iter().flat_map(|prefix| ["--exclude".to_owned(), format!("{prefix}*")]);
    crate::git::Git::new(&dir)
        .and_then(|g| g.args(["pack-refs", "--all"]).args(excludes).run())
        .map_err(|e| hub.local_error(format!("could not pack the refs of {}", dir.display()), e))?;
    Ok(Packed::Packed(dir))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::done::{self, Content, Entry, Extra};
    use crate::hub::LocalHub;
    use crate::model::{JobResult, Status};

    const DAY: Duration = Duration::from_secs(24 * 3600);

    /// A hub where some results were published long before [`now`].
    struct World {
        _dir: tempfile::TempDir,
        hub: LocalHub,
    }

    fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        gix::init_bare(dir.path()).unwrap();
        let hub = LocalHub::open(dir.path()).unwrap();
        World { _dir: dir, hub }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_795_000_000)
    }

    /// A result submitted `age` before [`now`] and finished `ran` later.
    fn entry(n: u8, age: Duration, ran: Duration) -> Entry {
        let at = now() - age;
        let id = JobId::new(at, &[n]);
        let mut result = JobResult::without_run(&id, Status::Passed, "w", 1, "test".into());
        result.finished_at = crate::time::rfc3339(at + ran);
        let log = Content::Bytes(b"log\n".to_vec());
        Entry { id, job_json: b"{}".to_vec(), result, log, files: vec![], cache_key: Some(format!("{n:02x}key")) }
    }

    fn trigger(n: u8) -> Extra {
        Extra { path: format!("triggers/ab/{n:062x}"), bytes: vec![n], note: "trigger".into() }
    }

    /// Publishes each entry in its own commit, as a worker would.
    fn publish(hub: &dyn Hub, writer: &str, entries: Vec<Entry>) -> ObjectId {
        let name = refs::done(writer);
        for (i, e) in entries.into_iter().enumerate() {
            let tip = hub.get(&name).unwrap();
            let new = done::append_with(hub, tip, &[e], &[trigger(i as u8)]).unwrap();
            hub.transact(&[RefEdit::set(&name, tip, new)]).unwrap();
        }
        hub.get(&name).unwrap().unwrap()
    }

    fn opts(max_age: Option<Duration>, keep: Option<usize>) -> Options {
        Options { policy: Policy::new(max_age, keep), prune: false, dry_run: false, now: now() }
    }

    fn gc(hub: &dyn Hub, opts: Options) -> Vec<ChainReport> {
        collect(hub, &opts, &mut |_| {}).unwrap()
    }

    /// The job ids a chain tip holds, oldest first.
    fn ids(hub: &dyn Hub, commit: ObjectId) -> Vec<JobId> {
        let mut ids: Vec<JobId> = done::list(hub, commit, usize::MAX).unwrap().into_iter().map(|(id, _)| id).collect();
        ids.sort();
        ids
    }

    fn at(hub: &dyn Hub, commit: ObjectId, path: &str) -> Option<ObjectId> {
        let repo = hub.repo();
        let tree = repo.find_commit(commit).unwrap().tree().unwrap();
        tree.lookup_entry_by_path(path).unwrap().map(|e| e.object_id())
    }

    fn parents(hub: &dyn Hub, commit: ObjectId) -> Vec<ObjectId> {
        hub.repo().find_commit(commit).unwrap().parent_ids().map(|p| p.detach()).collect()
    }

    /// Five results over three days: a b | c d | e.
    fn five(hub: &dyn Hub, writer: &str) -> (ObjectId, Vec<JobId>) {
        let entries = vec![
            entry(0, 90 * DAY, Duration::ZERO),
            entry(1, 90 * DAY - Duration::from_secs(60), Duration::ZERO),
            entry(2, 60 * DAY, Duration::ZERO),
            entry(3, 60 * DAY - Duration::from_secs(60), Duration::ZERO),
            entry(4, 30 * DAY, Duration::ZERO),
        ];
        let ids = entries.iter().map(|e| e.id.clone()).collect();
        (publish(hub, writer, entries), ids)
    }

    #[test]
    fn keep_moves_the_oldest_into_the_archive_and_carries_the_indexes() {
        let w = world();
        let hub: &dyn Hub = &w.hub;
        let (before, all) = five(hub, "_hub");
        let reports = gc(hub, opts(None, Some(2)));
        let r = &reports[0];
        assert_eq!((r.writer.as_str(), r.kept, r.attempts), ("_hub", 2, 1));
        assert_eq!(r.cut, vec![all[2].clone(), all[1].clone(), all[0].clone()], "newest first");
        let tip = hub.get(&refs::done("_hub")).unwrap().unwrap();
        assert_eq!(Some(tip), r.after);
        assert!(parents(hub, tip).is_empty(), "a new root");
        assert_eq!(ids(hub, tip), all[3..]);
        for path in ["cache", "triggers", &format!("results/{}", all[4].day())] {
            assert_eq!(at(hub, tip, path), at(hub, before, path), "{path} is the same tree");
        }
        let archive = hub.get(&refs::archive("_hub")).unwrap().unwrap();
        assert_eq!(Some(archive), r.archive);
        assert!(parents(hub, archive).is_empty());
        assert_eq!(ids(hub, archive), all[..3]);
        assert_eq!(at(hub, archive, "cache"), None, "indexes stay on the done chain");
        let day0 = format!("results/{}", all[0].day());
        assert_eq!(at(hub, archive, &day0), at(hub, before, &day0), "a whole day moves as one tree");

        // Again: the archive grows by fast-forward and merges a day it holds part of.
        let r = &gc(hub, opts(None, Some(1)))[0];
        assert_eq!(r.cut, vec![all[3].clone()]);
        let archive2 = hub.get(&refs::archive("_hub")).unwrap().unwrap();
        assert_eq!(parents(hub, archive2), vec![archive]);
        assert_eq!(ids(hub, archive2), all[..4]);
        let tip = hub.get(&refs::done("_hub")).unwrap().unwrap();
        assert_eq!(ids(hub, tip), all[4..]);
        assert_eq!(at(hub, tip, "triggers"), at(hub, before, "triggers"));

        // Every job is found, in exactly one chain; cached passes too.
        let tips = done::tips(hub).unwrap();
        for id in &all {
            let found = tips.iter().filter(|t| done::find(hub, std::slice::from_ref(t), id).unwrap().is_some()).count();
            assert_eq!(found, 1, "{id}");
        }
        assert_eq!(done::cached_pass(hub, &tips, "00key"), Some(all[0].clone()));

        // Nothing left to cut: the chain is left alone.
        let r = &gc(hub, opts(None, Some(1)))[0];
        assert!(r.cut.is_empty() && r.after.is_none());
        assert_eq!(hub.get(&refs::done("_hub")).unwrap(), Some(tip));
    }

    #[test]
    fn a_result_is_kept_when_either_rule_keeps_it() {
        assert_eq!(Policy::new(None, None), Policy { max_age: Some(DEFAULT_MAX_AGE), keep: None });
        let w = world();
        let hub: &dyn Hub = &w.hub;
        let entries = vec![
            entry(0, 50 * DAY, Duration::ZERO),
            // Submitted long ago, but it finished recently: its finish counts.
            entry(1, 45 * DAY, 40 * DAY),
            entry(2, 40 * DAY, Duration::ZERO),
            entry(3, 20 * DAY, Duration::ZERO),
            entry(4, 10 * DAY, Duration::ZERO),
        ];
        let all: Vec<JobId> = entries.iter().map(|e| e.id.clone()).collect();
        let tip = publish(hub, "w", entries);
        let dry = |max_age, keep| {
            let r = gc(hub, Options { dry_run: true, ..opts(max_age, keep) }).remove(0);
            assert!(r.after.is_none() && r.archive.is_none());
            r.cut
        };
        assert_eq!(dry(None, None), vec![all[2].clone(), all[0].clone()]);
        assert_eq!(dry(Some(30 * DAY), Some(4)), vec![all[0].clone()]);
        assert_eq!(dry(Some(45 * DAY), Some(1)), vec![all[0].clone()]);
        assert_eq!(dry(None, Some(5)), Vec::<JobId>::new());
        assert_eq!(dry(None, Some(0)).len(), 5);
        assert_eq!(hub.get(&refs::done("w")).unwrap(), Some(tip), "a dry run changes nothing");
        assert_eq!(hub.get(&refs::archive("w")).unwrap(), None);
    }

    #[test]
    fn prune_writes_no_archive() {
        let w = world();
        let hub: &dyn Hub = &w.hub;
        let (_, all) = five(hub, "w");
        let r = gc(hub, Options { prune: true, ..opts(None, Some(1)) }).remove(0);
        assert_eq!((r.kept, r.cut.len(), r.archive), (1, 4, None));
        assert_eq!(hub.get(&refs::archive("w")).unwrap(), None);
        let tip = hub.get(&refs::done("w")).unwrap().unwrap();
        assert_eq!(ids(hub, tip), all[4..]);
        let message = hub.repo().find_commit(tip).unwrap().message_raw_sloppy().to_string();
        assert!(message.contains("4 pruned"), "{message}");
    }

    #[test]
    fn a_chain_with_nothing_kept_still_holds_its_indexes() {
        let w = world();
        let hub: &dyn Hub = &w.hub;
        let (before, all) = five(hub, "w");
        let r = gc(hub, opts(Some(DAY), None)).remove(0);
        assert_eq!((r.kept, r.cut.len()), (0, 5));
        let tip = r.after.unwrap();
        assert!(ids(hub, tip).is_empty());
        assert_eq!(at(hub, tip, "results"), None);
        assert_eq!(at(hub, tip, "cache"), at(hub, before, "cache"));
        assert_eq!(at(hub, tip, "triggers"), at(hub, before, "triggers"));
        assert_eq!(ids(hub, r.archive.unwrap()), all);
    }

    #[test]
    fn what_is_not_a_job_directory_is_never_cut() {
        let w = world();
        let hub: &dyn Hub = &w.hub;
        let (tip, all) = five(hub, "w");
        let stray = |path: &str| Extra { path: path.into(), bytes: b"?".to_vec(), note: "stray".into() };
        let day_file = format!("results/{}/notes.txt", all[0].day());
        let extras = [stray("results/README"), stray(&day_file)];
        let tip = done::append_with(hub, Some(tip), &[], &extras).unwrap();
        hub.transact(&[RefEdit::update(refs::done("w"), hub.get(&refs::done("w")).unwrap().unwrap(), tip)]).unwrap();
        let r = gc(hub, opts(None, Some(0))).remove(0);
        assert_eq!((r.kept, r.cut.len()), (0, 5));
        let root = r.after.unwrap();
        assert_eq!(at(hub, root, "results/README"), at(hub, tip, "results/README"));
        assert_eq!(at(hub, root, &day_file), at(hub, tip, &day_file));
        assert_eq!(ids(hub, root), vec![]);
        assert_eq!(ids(hub, r.archive.unwrap()), all);
        assert_eq!(at(hub, r.archive.unwrap(), &day_file), None);
    }

    #[test]
    fn prune_also_cuts_the_archive_a_worker_rolled_into() {
        let w = world();
        let hub: &dyn Hub = &w.hub;
        let ages = [90, 60, 30, 20, 10];
        let entries: Vec<Entry> =
            ages.iter().enumerate().map(|(n, &d)| entry(n as u8, d * DAY, Duration::ZERO)).collect();
        let all: Vec<JobId> = entries.iter().map(|e| e.id.clone()).collect();
        // Rolled at 2: the third and the fifth publish move the tip's two into the archive.
        let mut chain = crate::chain::Chain::new("w", None).rolling_at(2);
        for e in &entries {
            let append = chain.append(hub, &[e]).unwrap();
            hub.transact(&append.edits).unwrap();
            chain.applied(&append);
        }
        let archive = || hub.get(&refs::archive("w")).unwrap();
        assert_eq!(ids(hub, archive().unwrap()), all[..4]);

        // Without --prune the archive is left alone.
        let reports = gc(hub, opts(None, Some(0)));
        assert_eq!(reports.iter().map(|r| r.kind).collect::<Vec<_>>(), [ChainKind::Done]);
        assert_eq!(ids(hub, archive().unwrap()), all);

        // `keep` counts both chains: done holds none now, the archive keeps 3.
        let reports = gc(hub, Options { prune: true, ..opts(None, Some(3)) });
        let r = reports.iter().find(|r| r.kind == ChainKind::Archive).unwrap();
        assert_eq!((r.kept, r.cut.clone()), (3, vec![all[1].clone(), all[0].clone()]));
        let tip = archive().unwrap();
        assert_eq!((Some(tip), ids(hub, tip)), (r.after, all[2..].to_vec()));
        assert!(parents(hub, tip).is_empty(), "a pruned archive is a new root");

        // An archive that keeps nothing goes.
        let r = gc(hub, Options { prune: true, ..opts(Some(5 * DAY), None) }).pop().unwrap();
        assert_eq!((r.kind, r.kept, r.cut.len(), r.after), (ChainKind::Archive, 0, 3, None));
        assert_eq!(archive(), None);
    }

    #[test]
    fn what_an_interrupted_roll_copied_is_not_kept_twice() {
        let w = world();
        let hub: &dyn Hub = &w.hub;
        let (tip, all) = five(hub, "w");
        // A roll's first step, its publish never made: the archive holds a
        // copy of everything the tip holds.
        let plan = Plan::read(hub, tip, &Policy { max_age: None, keep: Some(0) }, now()).unwrap();
        let copy = plan.write_archive_as(hub, "w", None, "roll\n".into(), true).unwrap();
        hub.transact(&[RefEdit::create(refs::archive("w"), copy)]).unwrap();

        let r = gc(hub, opts(None, Some(3))).remove(0);
        assert_eq!((r.kept, r.cut.len()), (0, 5), "the copies go from done, whatever --keep says");
        let seen: Vec<JobId> = done::tips(hub).unwrap().iter().flat_map(|(_, t)| ids(hub, *t)).collect();
        assert_eq!(seen, all, "every result once");
    }

    /// A hub where the chain's writer publishes once more just before gc's
    /// first transaction, as a busy worker would.
    struct Racing {
        inner: LocalHub,
        next: Mutex<Option<Entry>>,
    }

    impl Hub for Racing {
        fn url(&self) -> &str {
            self.inner.url()
        }
        fn repo(&self) -> gix::Repository {
            self.inner.repo()
        }
        fn refresh(&self, prefixes: &[&str]) -> Result<(), HubError> {
            self.inner.refresh(prefixes)
        }
        fn refresh_ref(&self, name: &str) -> Result<Option<ObjectId>, HubError> {
            self.inner.refresh_ref(name)
        }
        fn transact(&self, edits: &[RefEdit]) -> Result<(), HubError> {
            self.inner.transact(edits)
        }
        fn transact_with_options(&self, edits: &[RefEdit], options: &[&str]) -> Result<(), HubError> {
            if let Some(e) = self.next.lock().unwrap().take() {
                publish(&self.inner, "w", vec![e]);
            }
            self.inner.transact_with_options(edits, options)
        }
        fn watch_path(&self) -> Option<PathBuf> {
            self.inner.watch_path()
        }
        fn import_commit(&self, commit: ObjectId) -> Result<(), HubError> {
            self.inner.import_commit(commit)
        }
    }

    #[test]
    fn a_result_published_while_gc_works_is_not_lost() {
        let w = world();
        let (_, mut all) = five(&w.hub, "w");
        let late = entry(9, DAY, Duration::ZERO);
        all.push(late.id.clone());
        let racing = Racing { inner: w.hub, next: Mutex::new(Some(late)) };
        let hub: &dyn Hub = &racing;
        let mut retries = 0;
        let reports =
            collect(hub, &opts(None, Some(2)), &mut |e| retries += matches!(e, Event::Retrying { .. }) as u32).unwrap();
        assert_eq!((reports[0].attempts, retries), (2, 1));
        let (tip, archive) = (reports[0].after.unwrap(), reports[0].archive.unwrap());
        assert_eq!(hub.get(&refs::done("w")).unwrap(), Some(tip));
        assert_eq!(ids(hub, tip), all[4..], "the late result is kept");
        let mut seen = ids(hub, archive);
        seen.extend(ids(hub, tip));
        assert_eq!(seen, all, "every result once, none lost");
    }

    #[test]
    fn a_local_hub_gets_its_refs_packed() {
        let w = world();
        let hub: &dyn Hub = &w.hub;
        five(hub, "w");
        let dir = hub.watch_path().unwrap();
        assert!(dir.join("refs/ci/done/w").exists());
        assert_eq!(pack_refs(hub).unwrap(), Packed::Packed(dir.clone()));
        assert!(!dir.join("refs/ci/done/w").exists());
        let packed = std::fs::read_to_string(dir.join("packed-refs")).unwrap();
        assert!(packed.contains("refs/ci/done/w"), "{packed}");
        // Live refs stay loose: only git-ci deletes them (see `pack_refs`).
        let claim = refs::claim(&JobId::new(now(), b"x"));
        hub.transact(&[RefEdit::create(&claim, hub.write_blob(b"claim").unwrap())]).unwrap();
        pack_refs(hub).unwrap();
        assert!(dir.join(&claim).exists());
        assert!(!std::fs::read_to_string(dir.join("packed-refs")).unwrap().contains(&claim));
    }
}
