//! Deciding what a batch of ref updates asks for, from the pushed commits
//! alone (no hub state: [`super::apply`] reads that).

use git_ci_core::Job;
use git_ci_core::model::JobSpec;
use git_ci_core::pipeline::{FILE_NAME, Pipeline, PipelineAtCommitError};
use gix::ObjectId;
use gix::object::Kind;

use super::{Broken, Deletion, Event, Plan, Update, Wanted};
use crate::index;
use crate::patterns::{self, RefKind};

/// Plans `updates`; `repo` must hold the pushed commits. `by` becomes the
/// jobs' `submitted_by`, `project` their `project` (the hub's own).
pub fn plan(repo: &gix::Repository, updates: &[Update], by: &str, project: &str) -> Plan {
    let mut plan = Plan { project: project.to_owned(), ..Plan::default() };
    for u in updates {
        let Some(kind) = RefKind::of(&u.refname) else { continue };
        match u.new {
            None => plan.deleted.push(Deletion { git_ref: u.refname.clone(), only: None, triggered_only: false }),
            Some(new) => plan_push(repo, &u.refname, kind, new, (by, project), &mut plan),
        }
    }
    plan
}

fn plan_push(
    repo: &gix::Repository,
    git_ref: &str,
    kind: RefKind<'_>,
    new: ObjectId,
    (by, project): (&str, &str),
    plan: &mut Plan,
) {
    let unreadable = |message: String| Event::Unreadable { git_ref: git_ref.to_owned(), message };
    let (commit_id, tree) = match peel(repo, new) {
        Ok(Some(ids)) => ids,
        Ok(None) => return,
        Err(message) => return plan.notes.push(unreadable(message)),
    };
    let unsealed = |spec: JobSpec| {
        let mut job = Job::unsealed(spec, &commit_id.to_string(), &tree.to_string(), git_ref, by);
        job.project = project.to_owned();
        job
    };
    let bind = |spec: JobSpec| unsealed(spec).sealed();
    let broken = |message: String| Broken {
        key: index::key(&commit_id, git_ref, index::PIPELINE),
        job: bind(record_spec()),
        message,
    };
    let pipeline = match Pipeline::at_commit(repo, commit_id) {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(PipelineAtCommitError::Parse(e)) => return plan.broken.push(broken(e.to_string())),
        Err(e @ PipelineAtCommitError::Read { .. }) => return plan.notes.push(unreadable(e.to_string())),
    };
    let mut names = Vec::new();
    for (name, job) in &pipeline.jobs {
        // A job with a schedule and no `branches` or `tags` runs only on
        // its schedule (`git ci watch` queues it), never on a push.
        if job.scheduled_only() {
            continue;
        }
        match patterns::triggers(job, kind) {
            Ok(false) => {}
            Ok(true) => names.push(name.clone()),
            // A bad pattern is a bad file: nothing of it is queued, as for a
            // syntax error, rather than a guess at what was meant.
            Err(e) => {
                let origin = format!("{}:{FILE_NAME}", commit_id.to_hex_with_len(10));
                return plan.broken.push(broken(format!("{origin}: {e}")));
            }
        }
    }
    if names.is_empty() {
        return;
    }
    // The triggered jobs with what they need, each matrix expanded, all
    // naming each other's ids: queued together or not at all.
    let jobs = match pipeline.jobs(&names, 1, &unsealed) {
        Ok(jobs) => jobs,
        Err(e) => {
            let origin = format!("{}:{FILE_NAME}", commit_id.to_hex_with_len(10));
            return plan.broken.push(broken(format!("{origin}: {e}")));
        }
    };
    let batch = index::key(&commit_id, git_ref, "");
    plan.wanted.extend(jobs.into_iter().map(|job| {
        let supersede = pipeline.jobs.get(&job.spec.name).is_some_and(|j| j.supersede);
        Wanted {
            key: index::key(&commit_id, git_ref, &job.label()),
            batch: batch.clone(),
            supersede: supersede && matches!(kind, RefKind::Branch(_)),
            job,
        }
    }));
}

/// `(commit, tree)` that `new` stands for: a tag may name a tag object, and
/// a ref may even name a tree or a blob, which has nothing to test (`None`).
fn peel(repo: &gix::Repository, new: ObjectId) -> Result<Option<(ObjectId, ObjectId)>, String> {
    let object =
        repo.find_object(new).and_then(|o| o.peel_tags_to_end()).map_err(|e| format!("could not read {new}: {e}"))?;
    if object.kind != Kind::Commit {
        return Ok(None);
    }
    let commit = object.into_commit();
    let tree = commit.tree_id().map_err(|e| format!("could not read commit {}: {e}", commit.id))?;
    Ok(Some((commit.id, tree.detach())))
}

/// The job document of a broken-configuration record: never queued, shown
/// by `git ci status` and the report site like any finished job.
fn record_spec() -> JobSpec {
    let mut spec = JobSpec::ad_hoc(&format!("# not run: {FILE_NAME} could not be read"));
    spec.name = "pipeline".into();
    spec
}
