//! Live instances as the hub shows them: listed in the registrations of
//! live workers (`refs/ci/workers/<name>`, field `instances`), and stopped
//! through a request ref, `refs/ci/stop/<job-id>`, that the worker running
//! the instance looks for, acts on and deletes.
//!
//! A request is created expected absent (a compare-and-swap: two asking at
//! once make one request) and deleted expected at the value its worker
//! read, so a request made again after the worker read it is not lost.

use std::time::SystemTime;

use gix::ObjectId;
use serde::{Deserialize, Serialize};

use crate::hub::{Hub, HubError, RefEdit};
use crate::id::JobId;
use crate::model::{InstanceInfo, WorkerInfo};
use crate::refs;

/// One live instance and the worker that runs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LiveInstance {
    #[serde(flatten)]
    pub info: InstanceInfo,
    pub worker: String,
}

/// Every instance of every live worker, oldest first.
pub struct LiveInstances(pub Vec<LiveInstance>);

impl LiveInstances {
    /// Reads the registrations; those of workers gone (not refreshed for a
    /// few intervals) list nothing.
    pub fn read(hub: &dyn Hub) -> Result<LiveInstances, HubError> {
        hub.refresh(&[refs::WORKERS])?;
        let now = SystemTime::now();
        let mut all: Vec<LiveInstance> = hub
            .list(refs::WORKERS)?
            .into_iter()
            .filter_map(|(refname, blob)| {
                let name = refname.strip_prefix(refs::WORKERS)?;
                crate::validate::worker_blob(&hub.read_blob(blob).ok()?, name).ok()
            })
            .filter(|w| w.seen_lately(now))
            .flat_map(|w: WorkerInfo| {
                let worker = w.name.clone();
                w.instances.into_iter().map(move |info| LiveInstance { info, worker: worker.clone() })
            })
            .collect();
        all.sort_by(|a, b| a.info.id.cmp(&b.info.id));
        Ok(LiveInstances(all))
    }

    /// A newer instance of the same job and branch than `mine`, on another
    /// worker than `me`: what supersedes it.
    pub fn newer_than(&self, mine: &InstanceInfo, me: &str) -> Option<&InstanceInfo> {
        self.0.iter().filter(|l| l.worker != me && l.info.same_place(mine)).map(|l| &l.info).find(|i| i.id > mine.id)
    }

    /// The instances of a branch (`main`, `refs/heads/main`, or `lib/main` for
    /// project lib's), of one job when `job` is given.
    pub fn of_branch<'a>(&'a self, branch: &'a str, job: Option<&'a str>) -> impl Iterator<Item = &'a LiveInstance> {
        self.0.iter().filter(move |l| {
            (l.info.git_ref == branch || l.info.branch() == branch || l.info.place() == branch)
                && job.is_none_or(|j| l.info.job == j)
        })
    }
}

/// `refs/ci/stop/<id>`: someone asks the worker running `job`'s instance
/// to stop it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    pub version: u32,
    pub job: JobId,
    pub by: String,
    pub at: String,
}

/// Asks for `id`'s instance to be stopped; `false` when a request was
/// there already (someone asked first: the worker will act on theirs).
pub fn request_stop(hub: &dyn Hub, id: &JobId, by: &str) -> Result<bool, HubError> {
    let req = StopRequest { version: 1, job: id.clone(), by: by.to_owned(), at: crate::time::now_rfc3339() };
    let blob = hub.write_blob(&serde_json::to_vec_pretty(&req).expect("a stop request serializes"))?;
    match hub.transact(&[RefEdit::create(refs::stop(id), blob)]) {
        Ok(()) => Ok(true),
        Err(e) if e.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The pending stop requests: each job id with the value its ref holds.
pub fn stop_requests(hub: &dyn Hub) -> Result<Vec<(JobId, ObjectId)>, HubError> {
    hub.refresh(&[refs::STOP])?;
    Ok(hub
        .list(refs::STOP)?
        .into_iter()
        .filter_map(|(name, value)| Some((refs::job_id_under(&name, refs::STOP)?, value)))
        .collect())
}

/// Deletes requests whose instance no live worker lists (its worker died,
/// or the instance ended before it saw the request): they would otherwise
/// stay on the hub for good. Returns how many went.
pub fn forget_stale_requests(hub: &dyn Hub, live: &LiveInstances) -> Result<usize, HubError> {
    let stale: Vec<RefEdit> = stop_requests(hub)?
        .into_iter()
        .filter(|(id, _)| !live.0.iter().any(|l| l.info.id == *id))
        .map(|(id, value)| RefEdit::delete(refs::stop(&id), value))
        .collect();
    // Each alone: one lost race must not keep the others.
    Ok(stale.into_iter().filter(|edit| hub.transact(std::slice::from_ref(edit)).is_ok()).count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &JobId, job: &str, git_ref: &str) -> InstanceInfo {
        InstanceInfo {
            id: id.clone(),
            job: job.into(),
            git_ref: git_ref.into(),
            commit: "a".repeat(40),
            url: "http://127.0.0.1:1".into(),
            since: crate::time::now_rfc3339(),
            project: String::new(),
        }
    }

    #[test]
    fn only_a_later_instance_of_the_same_job_and_branch_elsewhere_supersedes() {
        let ids: Vec<JobId> = (0..3)
            .map(|i| {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i);
                JobId::new(at, b"x")
            })
            .collect();
        let on = |worker: &str, info| LiveInstance { info, worker: worker.into() };
        let live = LiveInstances(vec![
            on("a", instance(&ids[0], "app", "refs/heads/main")),
            on("b", instance(&ids[1], "app", "refs/heads/main")),
            on("b", instance(&ids[2], "app", "refs/heads/other")),
        ]);
        let mine = &live.0[0].info;
        assert_eq!(live.newer_than(mine, "a").map(|i| &i.id), Some(&ids[1]));
        assert_eq!(live.newer_than(&live.0[1].info, "b"), None, "not by itself, not by an older one");
        assert_eq!(live.of_branch("main", None).count(), 2);
        assert_eq!(live.of_branch("refs/heads/main", Some("app")).count(), 2);
        assert_eq!(live.of_branch("main", Some("docs")).count(), 0);
    }

    #[test]
    fn another_projects_main_does_not_supersede() {
        let at = |s| JobId::new(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s), b"x");
        let (old, new) = (at(1_000), at(2_000));
        let lib = InstanceInfo { project: "lib".into(), ..instance(&new, "app", "refs/heads/main") };
        let live = LiveInstances(vec![LiveInstance { info: lib, worker: "b".into() }]);
        let mine = InstanceInfo { project: "app".into(), ..instance(&old, "app", "refs/heads/main") };
        assert_eq!(live.newer_than(&mine, "a"), None, "lib's main is not app's main");
        let same = InstanceInfo { project: "lib".into(), ..mine };
        assert_eq!(live.newer_than(&same, "a").map(|i| &i.id), Some(&new));
        assert_eq!(live.of_branch("lib/main", None).count(), 1, "PROJECT/BRANCH picks one project's");
        assert_eq!(live.of_branch("app/main", None).count(), 0);
    }
}
