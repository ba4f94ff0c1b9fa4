//! Turning ref updates into jobs: what the post-receive hook and `git ci
//! watch` share.
//!
//! [`plan`] reads `.git-ci.toml` at each pushed commit and decides what to
//! queue, what a deleted branch leaves behind, and which broken
//! configurations to record. [`apply`] then does it in one transaction on
//! the hub: the new jobs' pins and queue refs, the cancelled jobs' refs
//! deleted, and one new `_hub` commit holding the cancelled results, the
//! `error` records and the [`crate::index`] entries. A lost race re-reads
//! the hub and decides again, so running a plan twice queues nothing twice.

mod apply;
mod plan;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use git_ci_core::{Job, JobId};
use gix::ObjectId;

pub use apply::apply;
pub(crate) use apply::queue_edits;
pub use plan::plan;

/// One ref update, as post-receive reads them: `<old> <new> <ref>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub refname: String,
    /// `None`: the ref was created.
    pub old: Option<ObjectId>,
    /// `None`: the ref was deleted.
    pub new: Option<ObjectId>,
}

impl Update {
    /// One line of post-receive's standard input; `None` for anything else.
    pub fn parse_line(line: &str) -> Option<Update> {
        let mut parts = line.trim_end_matches(['\r', '\n']).splitn(3, ' ');
        let old = ObjectId::from_hex(parts.next()?.as_bytes()).ok()?;
        let new = ObjectId::from_hex(parts.next()?.as_bytes()).ok()?;
        let refname = parts.next().filter(|r| !r.is_empty())?.to_owned();
        let some = |id: ObjectId| (!id.is_null()).then_some(id);
        Some(Update { refname, old: some(old), new: some(new) })
    }
}

/// What a trigger did, for the pusher or the watcher's log.
#[derive(Clone, Debug)]
pub enum Event {
    Queued(Box<Job>),
    /// The same (commit, ref, job) was queued before: nothing done.
    AlreadyQueued {
        name: String,
        git_ref: String,
        id: String,
    },
    /// A pending job published `cancelled`: superseded or its branch deleted.
    Cancelled {
        id: JobId,
        name: String,
        git_ref: String,
        reason: String,
    },
    /// `.git-ci.toml` at a pushed commit is malformed. `recorded` is the
    /// `error` result written for it, `None` when an earlier run wrote it.
    BadPipeline {
        git_ref: String,
        commit: String,
        message: String,
        recorded: Option<JobId>,
    },
    /// Our side could not read a pushed commit; nothing was recorded.
    Unreadable {
        git_ref: String,
        message: String,
    },
    /// Of the jobs just queued, `count` were parked in a backlog
    /// ([`git_ci_core::backlog`]): pending, queued by workers as the queue
    /// runs low.
    Parked {
        count: usize,
    },
    /// A scheduled job's tick queued these jobs (its expansion).
    Scheduled {
        git_ref: String,
        tick: String,
        jobs: Vec<Job>,
    },
    /// A scheduled job seen on a branch for the first time: its marker is
    /// set, and it runs from its next tick on.
    ScheduleArmed {
        name: String,
        git_ref: String,
        next: Option<String>,
    },
}

impl Event {
    /// One line for a person, without a prefix.
    pub fn describe(&self) -> String {
        match self {
            Event::Queued(job) => format!("queued {} {}", job.label(), job.id),
            Event::AlreadyQueued { name, git_ref, id } => format!("already queued {name} {id} for {git_ref}"),
            Event::Cancelled { id, name, reason, .. } => format!("cancelled {name} {id}: {reason}"),
            Event::BadPipeline { git_ref, message, recorded, .. } => {
                let record = recorded.as_ref().map(|id| format!(" (recorded as {id})")).unwrap_or_default();
                format!("error: {message}\nno jobs queued for {git_ref}{record}: fix .git-ci.toml and push again")
            }
            Event::Unreadable { git_ref, message } => format!("error: no jobs queued for {git_ref}: {message}"),
            Event::Scheduled { git_ref, tick, jobs } => {
                let lines: Vec<String> = jobs
                    .iter()
                    .map(|j| format!("queued {} {} on {git_ref} for its {tick} tick", j.label(), j.id))
                    .collect();
                lines.join("\n")
            }
            Event::Parked { count } => format!(
                "parked {count} of them in a backlog (pending; workers queue them, highest priority first, as the queue runs low)"
            ),
            Event::ScheduleArmed { name, git_ref, next } => match next {
                Some(next) => format!("scheduled {name} on {git_ref}: first run at {next}"),
                None => format!("scheduled {name} on {git_ref}: its schedule never comes"),
            },
        }
    }
}

/// A job to queue, unless the index says it was.
#[derive(Clone, Debug)]
pub struct Wanted {
    /// Its [`crate::index`] key: commit, ref and the job's label (its
    /// name, with its matrix values when it has some).
    pub key: String,
    /// The jobs of one (commit, ref) name each other's ids (`needs`):
    /// when any of a batch was queued before, none is queued again.
    pub batch: String,
    pub job: Job,
    /// Cancel older pending runs of this job on the same branch.
    pub supersede: bool,
}

/// A `.git-ci.toml` that could not be used: recorded as an `error` result.
#[derive(Clone, Debug)]
pub struct Broken {
    pub key: String,
    /// The record's job document (named `pipeline`, never queued).
    pub job: Job,
    pub message: String,
}

/// A ref that is gone: its pending jobs are cancelled.
#[derive(Clone, Debug)]
pub struct Deletion {
    pub git_ref: String,
    /// Only these jobs (a watcher cancels only what it saw pending before it
    /// saw the ref missing; a hook knows the ref was just deleted).
    pub only: Option<HashSet<JobId>>,
    /// Only jobs a trigger queued (the index says so): a watcher cannot tell
    /// a deleted branch from one that never reached the hub, as with
    /// `git ci submit` from a local branch.
    pub triggered_only: bool,
}

/// What to do for a batch of updates.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub wanted: Vec<Wanted>,
    pub broken: Vec<Broken>,
    pub deleted: Vec<Deletion>,
    /// Problems that record nothing, reported as they are.
    pub notes: Vec<Event>,
    /// The hub's own project: the `project` of the jobs it queues. It
    /// supersedes and cancels only jobs of that project (or of none: jobs
    /// written before projects), never another repository's same branch.
    pub project: String,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.wanted.is_empty() && self.broken.is_empty() && self.deleted.is_empty() && self.notes.is_empty()
    }
}
