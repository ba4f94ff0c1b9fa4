//! One job as lists show it, whether finished or live.

use git_ci_core::model::{Job, JobResult, Need, Repeat, Status, TestCounts};
use git_ci_core::state::State;
use git_ci_core::{Claim, JobId};
use gix::ObjectId;
use serde::{Deserialize, Serialize};

use crate::digest::Key;

/// An object id: hex for people, its bytes in the binary manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(pub ObjectId);

impl Serialize for Oid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.0.to_hex().to_string())
        } else {
            s.serialize_bytes(self.0.as_bytes())
        }
    }
}

impl<'de> Deserialize<'de> for Oid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Oid, D::Error> {
        use serde::de::Error;
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            return ObjectId::from_hex(s.as_bytes()).map(Oid).map_err(Error::custom);
        }
        let bytes = d.deserialize_bytes(BytesVisitor)?;
        ObjectId::try_from(bytes.as_slice()).map(Oid).map_err(Error::custom)
    }
}

struct BytesVisitor;

impl<'de> serde::de::Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object id's bytes")
    }
    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }
}

/// Where a job's documents are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Source {
    /// Finished: its directory in a `done` (or `archive`) chain.
    Done { chain: String, dir: Oid },
    /// Pending or running: its queue blob, claim and live log tail.
    Live { job: Oid, claim: Option<Oid>, log: Option<Oid> },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub id: JobId,
    #[serde(with = "state_str")]
    pub state: State,
    /// `""` when the job document is unreadable.
    pub name: String,
    /// What a person reads: `test (python=3.11, db=postgres) #3`; the name
    /// when the document is unreadable.
    pub label: String,
    /// A matrix job's values, `python=3.11, db=postgres`, or `""`.
    pub variant: String,
    /// The jobs of its pipeline that had to pass first.
    pub needs: Vec<Need>,
    /// One run of several (`submit --repeat`).
    pub repeat: Option<Repeat>,
    /// The cron tick (RFC 3339) a scheduled run was queued for.
    pub scheduled: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// A full object id, or `""`: it becomes a file name, so it is checked.
    pub commit: String,
    /// The commit's tree: runs on one tree ran the same code, so a failure
    /// and a pass there make the job flaky.
    pub tree: String,
    pub queue: String,
    pub worker: String,
    pub attempt: u32,
    pub submitted_at: String,
    pub started_at: String,
    pub finished_at: String,
    pub duration_ms: Option<u64>,
    pub tests: Option<TestCounts>,
    pub reason: Option<String>,
    /// The job document did not parse: shown as evidence, raw.
    pub malformed: bool,
    /// `git ci submit --run`: never part of a branch's health.
    pub ad_hoc: bool,
    pub source: Source,
    /// The repository it comes from on a hub serving several; `""`: the
    /// hub's own (and every job written before projects).
    #[serde(default)]
    pub project: String,
    /// `project/branch` when the hub holds several projects (set by
    /// [`key_by_project`] on every build), else empty: [`Row::branch`].
    #[serde(skip)]
    pub branch_key: String,
    /// Pending in a backlog ref (`git_ci_core::backlog`), not yet queued.
    /// Live rows are read afresh by every build: not kept in the manifest
    /// (whose postcard layout this would change).
    #[serde(skip)]
    pub parked: bool,
}

/// Keys every row's branch by its project too (`app/main`, `lib/main`)
/// when the rows come from more than one project, so that the same branch
/// name of two repositories gets two pages, badges and matrix rows. A hub
/// of one project keeps plain branch names, as before projects.
pub fn key_by_project(rows: &mut [Row]) {
    let projects: std::collections::HashSet<&str> =
        rows.iter().map(|r| r.project.as_str()).filter(|p| !p.is_empty()).collect();
    let several = projects.len() > 1;
    for row in rows {
        row.branch_key = if several && !row.project.is_empty() && !row.git_ref.is_empty() {
            format!("{}/{}", row.project, row.plain_branch())
        } else {
            String::new()
        };
    }
}

impl Row {
    /// A finished job from its directory's documents.
    pub fn finished(id: JobId, chain: &str, dir: ObjectId, job_json: &[u8], result: Option<JobResult>) -> Row {
        let mut row = Row::from_job_doc(id, job_json, Source::Done { chain: chain.to_owned(), dir: Oid(dir) });
        match result {
            Some(r) => {
                row.state = State::Finished(r.status);
                row.worker = r.worker;
                row.attempt = r.attempt;
                row.started_at = r.started_at;
                row.finished_at = r.finished_at;
                row.duration_ms = Some(r.duration_ms);
                row.tests = (r.tests.total > 0).then_some(r.tests);
                row.reason = r.reason;
            }
            None => {
                row.state = State::Finished(Status::Error);
                row.reason = Some("its result.json is missing or unreadable".into());
            }
        }
        row
    }

    /// A pending or running job from its queue blob, claim and log tail.
    pub fn live(
        id: JobId,
        job: (ObjectId, &[u8]),
        claim: Option<(ObjectId, Option<Claim>)>,
        log: Option<ObjectId>,
    ) -> Row {
        let source = Source::Live { job: Oid(job.0), claim: claim.as_ref().map(|c| Oid(c.0)), log: log.map(Oid) };
        let mut row = Row::from_job_doc(id, job.1, source);
        row.state = if claim.is_some() { State::Running } else { State::Pending };
        if let Some((_, Some(c))) = claim {
            row.worker = c.worker;
            row.attempt = c.attempt;
            row.started_at = c.claimed_at;
        }
        row
    }

    /// Fields from `job.json`, leniently: a malformed document still shows
    /// what can be read of it.
    fn from_job_doc(id: JobId, bytes: &[u8], source: Source) -> Row {
        let mut row = Row {
            id,
            state: State::Pending,
            name: String::new(),
            label: String::new(),
            variant: String::new(),
            needs: Vec::new(),
            repeat: None,
            scheduled: None,
            git_ref: String::new(),
            commit: String::new(),
            tree: String::new(),
            queue: String::new(),
            worker: String::new(),
            attempt: 1,
            submitted_at: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            duration_ms: None,
            tests: None,
            reason: None,
            malformed: false,
            ad_hoc: false,
            source,
            project: String::new(),
            branch_key: String::new(),
            parked: false,
        };
        // Checked against the ref's id, as the guard would have (a hosted
        // hub has none).
        match Job::from_json(bytes).map_err(|e| e.to_string()).and_then(|job| {
            if job.id == row.id { Ok(job) } else { Err(format!("its id is {}, not {}", job.id, row.id)) }
        }) {
            Ok(job) => {
                row.label = job.label();
                row.variant = job.spec.matrix.to_string();
                row.needs = job.needs;
                row.repeat = job.repeat;
                row.scheduled = job.scheduled;
                row.ad_hoc = job.spec.ad_hoc;
                row.project = job.project;
                row.name = job.spec.name;
                row.git_ref = job.git_ref;
                row.commit = job.commit;
                row.tree = job.tree;
                row.queue = job.spec.queue;
                row.attempt = job.attempt;
                row.submitted_at = job.submitted_at;
            }
            Err(_) => {
                row.malformed = true;
                let v: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
                let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().chars().take(200).collect();
                row.name = text("name");
                row.label = row.name.clone();
                row.git_ref = text("ref");
                row.queue = text("queue");
                row.submitted_at = text("submitted_at");
                row.project = text("project");
                let commit: String = text("commit");
                if is_object_id(&commit) {
                    row.commit = commit;
                }
            }
        }
        row
    }

    pub fn is_live(&self) -> bool {
        matches!(self.source, Source::Live { .. })
    }

    /// The finished job's directory.
    pub fn dir(&self) -> Option<ObjectId> {
        match &self.source {
            Source::Done { dir, .. } => Some(dir.0),
            Source::Live { .. } => None,
        }
    }

    pub fn chain(&self) -> Option<&str> {
        match &self.source {
            Source::Done { chain, .. } => Some(chain),
            Source::Live { .. } => None,
        }
    }

    /// What identifies this row's content: its documents' object ids (a
    /// finished job never changes; a live one changes with its claim).
    pub fn fingerprint(&self, k: &mut Key) {
        k.str(self.id.as_str());
        match &self.source {
            Source::Done { dir, .. } => {
                k.oid(&dir.0);
            }
            Source::Live { job, claim, log } => {
                k.oid(&job.0);
                for o in [claim, log] {
                    match o {
                        Some(o) => k.oid(&o.0),
                        None => k.str(""),
                    };
                }
            }
        }
    }

    /// The key lists group jobs by: the branch, tag or other ref, after
    /// its project when the hub holds several ([`key_by_project`]).
    pub fn branch(&self) -> &str {
        if self.branch_key.is_empty() { self.plain_branch() } else { &self.branch_key }
    }

    /// The branch, tag or other ref, whatever the project.
    pub fn plain_branch(&self) -> &str {
        self.git_ref.strip_prefix("refs/heads/").unwrap_or(&self.git_ref)
    }

    /// The label without its repeat: `test (python=3.11)` for every run of
    /// a repeated job, which the site counts together.
    pub fn spec_label(&self) -> &str {
        match self.repeat {
            Some(_) => self.label.rsplit_once(" #").map_or(&self.label, |(l, _)| l),
            None => &self.label,
        }
    }

    /// How much the row asks for attention, most first: what failed, what
    /// runs, what waits, what passed, what never ran.
    pub fn rank(&self) -> u8 {
        match self.state {
            State::Finished(Status::Failed | Status::Timeout | Status::Error) => 0,
            State::Running => 1,
            State::Pending => 2,
            State::Finished(Status::Passed) => 3,
            State::Finished(Status::Skipped) => 4,
            State::Finished(Status::Cancelled) => 5,
        }
    }
}

/// The row that speaks for a group (a matrix job's combinations, the runs
/// of a repeated job): the first that asks most for attention. A group is
/// then failing if any failed, running while any runs, and passing when
/// the others were only skipped or cancelled.
pub fn worst<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Option<&'a Row> {
    rows.into_iter().min_by_key(|r| r.rank())
}

pub fn is_object_id(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

mod state_str {
    use git_ci_core::model::Status;
    use git_ci_core::state::State;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(state: &State, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(state.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(match &*s {
            "pending" => State::Pending,
            "running" => State::Running,
            "passed" => State::Finished(Status::Passed),
            "failed" => State::Finished(Status::Failed),
            "timeout" => State::Finished(Status::Timeout),
            "cancelled" => State::Finished(Status::Cancelled),
            "skipped" => State::Finished(Status::Skipped),
            _ => State::Finished(Status::Error),
        })
    }
}

/// A row for unit tests of what is computed from rows.
#[cfg(test)]
pub fn sample(name: &str, git_ref: &str, state: State) -> Row {
    let id = JobId::new(std::time::SystemTime::now(), format!("{name}{git_ref}{}", fastrand_like()).as_bytes());
    let mut r = Row::finished(id, "refs/ci/done/w", ObjectId::null(gix::hash::Kind::Sha1), b"{}", None);
    r.name = name.into();
    r.label = name.into();
    r.git_ref = git_ref.into();
    r.state = state;
    r.malformed = false;
    r
}

#[cfg(test)]
fn fastrand_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod project_tests {
    use super::*;

    #[test]
    fn branches_are_keyed_by_project_only_when_there_are_several() {
        let passed = State::Finished(Status::Passed);
        let mut rows = vec![sample("t", "refs/heads/main", passed), sample("t", "refs/heads/main", passed)];
        rows[0].project = "app".into();
        key_by_project(&mut rows);
        assert_eq!([rows[0].branch(), rows[1].branch()], ["main", "main"], "one project and the hub's own");
        rows[1].project = "lib".into();
        key_by_project(&mut rows);
        assert_eq!([rows[0].branch(), rows[1].branch()], ["app/main", "lib/main"]);
        assert_eq!(rows[1].plain_branch(), "main");
    }
}
