//! A job's state, derived from the refs (never stored twice): pending = a
//! queue ref and no claim; running = a claim; finished = in a `done` tree.
//! A job both finished and still queued (a crash between steps on a hub
//! without atomic pushes) is finished.

use std::collections::HashSet;

use gix::ObjectId;

use crate::done::{self, Located};
use crate::hub::{Hub, HubError};
use crate::id::JobId;
use crate::model::{Claim, Job, JobResult, Status};
use crate::queue::{Queued, Snapshot};
use crate::refs;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Running,
    Finished(Status),
}

impl JobView {
    /// `build` or `test (python=3.11) and 3 more`: what it waits for, by
    /// label; `None` when it waits for nothing.
    pub fn waits_for(&self) -> Option<String> {
        let first = self.waiting_for.first()?;
        let label = |id: &JobId| {
            let need = self.job.as_ref().and_then(|j| j.needs.iter().find(|n| &n.id == id));
            need.map_or_else(|| id.to_string(), |n| n.label.clone())
        };
        Some(match self.waiting_for.len() {
            1 => label(first),
            n => format!("{} and {} more", label(first), n - 1),
        })
    }
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Running => "running",
            State::Finished(s) => s.as_str(),
        }
    }

    pub fn is_finished(self) -> bool {
        matches!(self, State::Finished(_))
    }
}

/// Everything known about one job.
#[derive(Clone, Debug)]
pub struct JobView {
    pub id: JobId,
    /// `None` when the queued document is malformed.
    pub job: Option<Job>,
    pub state: State,
    pub result: Option<JobResult>,
    pub claim: Option<Claim>,
    pub located: Option<Located>,
    /// A pending job's needs it still waits for (none: it may be claimed).
    pub waiting_for: Vec<JobId>,
    /// A pending job parked in a backlog ref ([`crate::backlog`]): a worker
    /// moves it into the queue when the queue runs low.
    pub parked: bool,
}

/// The hub's refs as of one read, for answering many questions.
pub struct Board {
    pub live: Snapshot,
    pub tips: Vec<(String, ObjectId)>,
}

impl Board {
    pub fn read(hub: &dyn Hub) -> Result<Board, HubError> {
        // One fetch for everything a remote hub must tell us.
        // Parked jobs are pending like the others (`crate::backlog`).
        let live = Snapshot::read_with(hub, &[], &[refs::DONE, refs::ARCHIVE])?.with_parked(hub);
        let tips = done::tips(hub)?;
        Ok(Board { live, tips })
    }

    /// The board and one job's view; `None` only when two more reads do
    /// not find it either. A hub lists its refs one by one, not at one
    /// instant, so a fetch can see the `done` tip from before a worker's
    /// publish and the queue from after it, and the job nowhere (seen with
    /// workers publishing within a few hundred ms of the submit).
    pub fn read_view(hub: &dyn Hub, id: &JobId) -> Result<(Board, Option<JobView>), HubError> {
        let mut look = 0;
        loop {
            let board = Board::read(hub)?;
            let view = board.view(hub, id)?;
            if view.is_some() || look == 2 {
                return Ok((board, view));
            }
            look += 1;
            std::thread::sleep(std::time::Duration::from_millis(50 * look));
        }
    }

    /// One job, or `None` when the hub has never heard of it; an error when
    /// its records are there but cannot be read.
    pub fn view(&self, hub: &dyn Hub, id: &JobId) -> Result<Option<JobView>, HubError> {
        if let Some(located) = done::find(hub, &self.tips, id)? {
            return finished_view(hub, id.clone(), located).map(Some);
        }
        let Some(queued) = self.live.queued.iter().find(|q| &q.id == id) else { return Ok(None) };
        Ok(Some(self.live_view(hub, queued)))
    }

    /// A queued job; its documents pass the guard's checks or count as
    /// malformed (`None`), as on a hub without the guard they may be.
    fn live_view(&self, hub: &dyn Hub, queued: &Queued) -> JobView {
        let id = &queued.id;
        let job = queued.read_job(hub).ok().map(|(job, _)| job);
        let claim = self.live.read_claim(hub, id);
        let state = if self.live.claims.contains_key(id) { State::Running } else { State::Pending };
        let waiting_for = crate::claimed::waiting_list(hub, queued.value).map(Vec::from_iter).unwrap_or_default();
        let parked = queued.parked.is_some();
        JobView { id: id.clone(), job, state, result: None, claim, located: None, waiting_for, parked }
    }

    /// The finished jobs whose ids sort after `after` (submitted later, or
    /// with it), oldest first.
    pub fn finished_after(&self, hub: &dyn Hub, after: &JobId) -> Result<Vec<JobView>, HubError> {
        let mut finished = self.finished_dirs(hub)?;
        finished.retain(|(id, _, _)| id > after);
        finished.reverse();
        finished
            .into_iter()
            .map(|(id, dir, writer)| finished_view(hub, id, Located { writer: writer.to_owned(), dir }))
            .collect()
    }

    /// Every finished job's directory in every chain tip, newest first,
    /// each job once (a job in two chains, mid `git ci gc`, is read once).
    fn finished_dirs(&self, hub: &dyn Hub) -> Result<Vec<(JobId, ObjectId, &str)>, HubError> {
        let mut finished: Vec<(JobId, ObjectId, &str)> = Vec::new();
        for (writer, tip) in &self.tips {
            finished.extend(done::list(hub, *tip, usize::MAX)?.into_iter().map(|(id, dir)| (id, dir, writer.as_str())));
        }
        finished.sort_by(|a, b| b.0.cmp(&a.0));
        finished.dedup_by(|a, b| a.0 == b.0);
        Ok(finished)
    }

    /// Live jobs and up to `limit` finished ones, newest first.
    pub fn all(&self, hub: &dyn Hub, limit: usize) -> Result<Vec<JobView>, HubError> {
        self.matching(hub, limit, |_| true)
    }

    /// The live jobs that `keep` accepts and the newest `limit` finished
    /// ones it accepts, newest first. The filter comes before the limit:
    /// "the last 2 failures" must not mean "the failures among the last 2
    /// jobs". Finished jobs are read newest first and only until `limit`
    /// of them matched, so a small limit stays cheap on a long history.
    pub fn matching(
        &self,
        hub: &dyn Hub,
        limit: usize,
        keep: impl Fn(&JobView) -> bool,
    ) -> Result<Vec<JobView>, HubError> {
        let finished = self.finished_dirs(hub)?;
        let mut seen: HashSet<JobId> = HashSet::new();
        let mut out = Vec::new();
        for (id, dir, writer) in finished {
            if out.len() == limit {
                break;
            }
            seen.insert(id.clone());
            let view = finished_view(hub, id, Located { writer: writer.to_owned(), dir })?;
            if keep(&view) {
                out.push(view);
            }
        }
        for q in &self.live.queued {
            if !seen.contains(&q.id) {
                let view = self.live_view(hub, q);
                if keep(&view) {
                    out.push(view);
                }
            }
        }
        out.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(out)
    }
}

/// The latest attempt of each (commit, job) among `views`: a retry that
/// passed answers for the failure before it, and a re-run in flight for
/// the result it will replace. Ids sort by submission, so the latest is
/// the greatest id. The runs of a repeated job count apart (by run
/// number); a job whose document is unreadable stands alone.
pub fn latest(views: &[JobView]) -> Vec<&JobView> {
    let mut newest_first: Vec<&JobView> = views.iter().collect();
    newest_first.sort_by(|a, b| b.id.cmp(&a.id));
    let mut seen = HashSet::new();
    newest_first
        .into_iter()
        .filter(|v| match &v.job {
            Some(j) => seen.insert((j.project.clone(), j.commit.clone(), j.label(), j.repeat.map(|r| r.index))),
            None => true,
        })
        .collect()
}

/// A finished job: `error` when its result is absent or malformed, but
/// never for want of an object (that is an error for the caller to report).
fn finished_view(hub: &dyn Hub, id: JobId, located: Located) -> Result<JobView, HubError> {
    let job = done::read_job(hub, located.dir, &id)?;
    let result = done::read_result(hub, located.dir)?;
    let state = State::Finished(result.as_ref().map_or(Status::Error, |r| r.status));
    Ok(JobView { id, job, state, result, claim: None, located: Some(located), waiting_for: vec![], parked: false })
}
