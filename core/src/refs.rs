//! The ref layout under `refs/ci/` (DESIGN.md, "The hub and its refs").
//! Every ref name git-ci reads or writes is built here.

use crate::id::JobId;

pub const ROOT: &str = "refs/ci/";
pub const QUEUE: &str = "refs/ci/queue/";
pub const PINS: &str = "refs/ci/pins/";
pub const CLAIMS: &str = "refs/ci/claims/";
pub const CANCEL: &str = "refs/ci/cancel/";
pub const LOGS: &str = "refs/ci/logs/";
pub const DONE: &str = "refs/ci/done/";
pub const WORKERS: &str = "refs/ci/workers/";
pub const ARCHIVE: &str = "refs/ci/archive/";
/// `refs/ci/schedule/<job>/<branch>`: the last cron tick handled for a
/// scheduled job on a branch (see `hooks::schedule`).
pub const SCHEDULE: &str = "refs/ci/schedule/";
/// `refs/ci/backlog/<queue>/<batch>`: parked jobs of one submission, one
/// commit whose tree holds their documents (see `backlog`).
pub const BACKLOG: &str = "refs/ci/backlog/";
/// `refs/ci/stop/<job-id>`: a request to stop that job's live instance
/// (see `instances`).
pub const STOP: &str = "refs/ci/stop/";

/// The writer name of the hook and of cancels made by users.
pub const HUB_WRITER: &str = "_hub";

pub fn queue(queue: &str, id: &JobId) -> String {
    format!("{QUEUE}{queue}/{id}")
}
pub fn queue_prefix(queue: &str) -> String {
    format!("{QUEUE}{queue}/")
}
pub fn backlog(queue: &str, batch: &str) -> String {
    format!("{BACKLOG}{queue}/{batch}")
}
pub fn backlog_prefix(queue: &str) -> String {
    format!("{BACKLOG}{queue}/")
}
/// `(queue, batch)` of a `refs/ci/backlog/<queue>/<batch>` ref.
pub fn parse_backlog_ref(name: &str) -> Option<(String, String)> {
    let (queue, batch) = name.strip_prefix(BACKLOG)?.split_once('/')?;
    let ok = !batch.is_empty() && batch.len() <= 64 && batch.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| (queue.to_owned(), batch.to_owned()))
}
pub fn pin(id: &JobId) -> String {
    format!("{PINS}{id}")
}
pub fn claim(id: &JobId) -> String {
    format!("{CLAIMS}{id}")
}
pub fn cancel(id: &JobId) -> String {
    format!("{CANCEL}{id}")
}
pub fn log(id: &JobId) -> String {
    format!("{LOGS}{id}")
}
pub fn done(writer: &str) -> String {
    format!("{DONE}{writer}")
}
/// The chain a writer's `done` chain rolls (and gc cuts) its old results into.
pub fn archive(writer: &str) -> String {
    format!("{ARCHIVE}{writer}")
}
pub fn stop(id: &JobId) -> String {
    format!("{STOP}{id}")
}
pub fn worker(name: &str) -> String {
    format!("{WORKERS}{name}")
}
/// The schedule marker of `job` on `branch` (`main`, `release/1.0`): the
/// branch's own components follow the job's, so two branches can never
/// collide, as under `refs/heads/`.
pub fn schedule(job: &str, branch: &str) -> String {
    format!("{SCHEDULE}{job}/{branch}")
}

/// The job id at the end of `name` when `name` sits under `prefix`.
pub fn job_id_under(name: &str, prefix: &str) -> Option<JobId> {
    JobId::parse(name.strip_prefix(prefix)?).ok()
}

/// `(queue, job id)` of a `refs/ci/queue/<queue>/<id>` ref.
pub fn parse_queue_ref(name: &str) -> Option<(String, JobId)> {
    let rest = name.strip_prefix(QUEUE)?;
    let (queue, id) = rest.split_once('/')?;
    Some((queue.to_owned(), JobId::parse(id).ok()?))
}

/// Queue, worker and writer names become one ref component: letters,
/// digits, `.`, `_` and `-`, not starting with `.` or `-`, at most 64 bytes.
/// Stricter than git's rules on purpose: these names also become file names
/// and URLs of the report site.
pub fn check_component(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with(['.', '-'])
        && !s.ends_with(".lock")
        && !s.contains("..")
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {s:?} is not allowed: use 1-64 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_refs_round_trip() {
        let id = JobId::parse("20261122T040704123-0123456789ab").unwrap();
        let r = queue("linux", &id);
        assert_eq!(parse_queue_ref(&r), Some(("linux".into(), id.clone())));
        assert_eq!(job_id_under(&claim(&id), CLAIMS), Some(id));
        assert_eq!(parse_queue_ref("refs/ci/queue/linux"), None);
        assert_eq!(schedule("nightly", "release/1.0"), "refs/ci/schedule/nightly/release/1.0");
    }

    #[test]
    fn components_are_checked() {
        assert!(check_component("queue", "default").is_ok());
        assert!(check_component("worker", "build-01.example_a").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a..b", "x.lock", "a b", "é"] {
            assert!(check_component("queue", bad).is_err(), "{bad}");
        }
    }
}
