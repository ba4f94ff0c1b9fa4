//! Everything the site shows, read from the hub's refs: finished jobs from
//! the `done` (and `archive`) chains, live jobs from the queue and claims,
//! worker registrations. Finished jobs come from the last build's manifest
//! plus what each chain gained since the tip rendered then.

mod chains;
pub mod commits;
mod live;
pub mod objects;
pub mod row;
mod workers;

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use git_ci_core::queue::Snapshot;
use git_ci_core::{Hub, JobId, JobResult, refs};
use gix::ObjectId;

pub use commits::CommitInfo;
pub use row::{Row, Source};

pub use workers::{STALE_PERIODS, Worker};

use crate::Progress;
use crate::error::SiteError;
use crate::manifest::Manifest;
use crate::parallel;
use row::Oid;

pub struct Data {
    /// Every job, newest first (job ids sort by submission time).
    pub rows: Vec<Row>,
    pub commits: HashMap<String, CommitInfo>,
    pub workers: Vec<Worker>,
    /// Each chain's tip, by ref name.
    pub chains: BTreeMap<String, Oid>,
    /// What was read of the jobs this build added, for their pages: a full
    /// build then reads each job's documents once.
    pub read: HashMap<JobId, JobDir>,
    /// The hub's clock: its newest timestamp. Ages and stale workers are
    /// measured against it, not the wall clock, so that the same refs
    /// always give the same site (a rebuild or a publish with nothing new
    /// changes nothing).
    pub now: SystemTime,
}

impl Data {
    pub fn commit(&self, sha: &str) -> Option<&CommitInfo> {
        self.commits.get(sha).filter(|c| c.found)
    }
}

/// Reads the hub, reusing `last`'s rows and advancing its chains and
/// commits to what was read.
pub fn load(hub: &dyn Hub, last: &mut Manifest, progress: &dyn Fn(Progress)) -> Result<Data, SiteError> {
    // The queue before the chains: a job that finishes in between is then
    // seen twice (and taken as finished), never missed.
    // Parked jobs are pending like the others (`git_ci_core::backlog`).
    let snapshot = Snapshot::read(hub, &[])?.with_parked(hub);
    hub.refresh(&[refs::DONE, refs::ARCHIVE, refs::WORKERS, refs::LOGS])?;
    let repo = hub.repo();
    let tips = chain_tips(hub)?;
    let mut finished: HashMap<JobId, Row> = last.rows.drain(..).map(|r| (r.id.clone(), r)).collect();
    let read = advance_chains(hub, &repo, &last.chains, &tips, &mut finished, progress)?;
    last.chains = tips.iter().map(|(name, tip)| (name.clone(), Oid(*tip))).collect();
    let live = live::read(hub, &snapshot, &finished)?;
    let mut rows: Vec<Row> = finished.into_values().chain(live).collect();
    rows.sort_unstable_by(|a, b| b.id.cmp(&a.id));
    row::key_by_project(&mut rows);
    commits::update(&repo, &mut last.commits, &rows);
    let mut workers = workers::read(hub)?;
    // Ages are measured from the build: the hub's latest event stands
    // still when every worker is dead, and "0s ago" would then be forever.
    // The hub's clock only counts when it runs ahead of ours.
    // Our clock counts in whole minutes, so that builds of an unchanged hub
    // within a minute make the same pages (a publish then has nothing to
    // commit), and ages still move at least once a minute.
    let now = whole_minute(SystemTime::now()).max(hub_clock(&rows, &workers));
    workers::mark_stale(&mut workers, now);
    Ok(Data { rows, commits: std::mem::take(&mut last.commits), workers, chains: last.chains.clone(), read, now })
}

fn whole_minute(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs - secs % 60)
}

/// The newest time workers wrote (claims, results, registrations; not
/// submissions, whose clocks are the submitters'). The stamps are RFC 3339
/// in UTC of one shape, so the greatest string is the latest time.
fn hub_clock(rows: &[Row], workers: &[Worker]) -> SystemTime {
    use git_ci_core::time::parse_rfc3339;
    let stamps = rows.iter().flat_map(|r| [&r.started_at, &r.finished_at]);
    let seen = workers.iter().filter_map(|w| w.doc.as_ref().map(|d| &d.last_seen));
    let all = || stamps.clone().chain(seen.clone()).filter(|s| !s.is_empty());
    match all().max().and_then(|s| parse_rfc3339(s)) {
        Some(t) => t,
        // A stamp of another shape: compare them as times.
        None => all().filter_map(|s| parse_rfc3339(s)).max().unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// `archive` chains first, then `done`: a job in both (mid `git ci gc`)
/// is taken from `done`.
fn chain_tips(hub: &dyn Hub) -> Result<Vec<(String, ObjectId)>, SiteError> {
    let mut tips = hub.list(refs::ARCHIVE)?;
    tips.extend(hub.list(refs::DONE)?);
    Ok(tips)
}

fn advance_chains(
    hub: &dyn Hub,
    repo: &gix::Repository,
    old: &BTreeMap<String, Oid>,
    tips: &[(String, ObjectId)],
    rows: &mut HashMap<JobId, Row>,
    progress: &dyn Fn(Progress),
) -> Result<HashMap<JobId, JobDir>, SiteError> {
    let mut added = Vec::new();
    let gone = old.keys().filter(|name| !tips.iter().any(|(n, _)| n == *name)).map(|n| (n.clone(), None));
    let current = tips.iter().map(|(n, t)| (n.clone(), Some(*t)));
    for (chain, tip) in gone.collect::<Vec<_>>().into_iter().chain(current) {
        let before = old.get(&chain).map(|o| o.0);
        if before == tip {
            continue;
        }
        let diff = chains::diff(repo, before, tip)?;
        let belongs = |r: &Row| r.chain() == Some(chain.as_str());
        if diff.reset {
            rows.retain(|_, r| !belongs(r));
        }
        for id in diff.removed {
            if rows.get(&id).is_some_and(belongs) {
                rows.remove(&id);
            }
        }
        added.extend(diff.added.into_iter().map(|(id, dir)| (chain.clone(), id, dir)));
    }
    let jobs = parallel::map(
        added,
        || hub.repo(),
        |repo, (chain, id, dir)| {
            let job = JobDir::read(repo, dir)?;
            let result = job.result_json.as_deref().and_then(|b| JobResult::from_json(b).ok());
            Ok::<_, SiteError>((Row::finished(id, &chain, dir, &job.job_json, result), job))
        },
        &|done, total| progress(Progress::Reading { done, total }),
    )?;
    let mut read = HashMap::with_capacity(jobs.len());
    for (row, job) in jobs {
        read.insert(row.id.clone(), job);
        rows.insert(row.id.clone(), row);
    }
    Ok(read)
}

/// A finished job's directory: its entries and documents.
pub struct JobDir {
    pub entries: objects::Entries,
    pub job_json: Vec<u8>,
    pub result_json: Option<Vec<u8>>,
}

impl JobDir {
    pub fn read(repo: &gix::Repository, dir: ObjectId) -> Result<JobDir, SiteError> {
        let entries = objects::entries(repo, dir)?;
        let job_json = objects::file(repo, &entries, "job.json").unwrap_or_default();
        let result_json = objects::file(repo, &entries, "result.json");
        Ok(JobDir { entries, job_json, result_json })
    }

    /// The job's JUnit files (`junit/<name>`), read whole.
    pub fn junit(&self, repo: &gix::Repository) -> Result<Vec<(String, Vec<u8>)>, SiteError> {
        let Some((tree, true)) = self.entries.get("junit") else { return Ok(Vec::new()) };
        objects::walk(repo, *tree)
            .into_iter()
            .map(|(name, blob)| Ok((format!("junit/{name}"), objects::blob(repo, blob)?)))
            .collect()
    }
}
