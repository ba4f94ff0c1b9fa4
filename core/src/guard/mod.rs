//! What one push may change under `refs/ci/`: the hub's pre-receive guard
//! (installed by `git ci hooks install`) applies [`check_push`] to every
//! pushed update before git accepts any of it.
//!
//! Each new value must be a sound document ([`crate::validate`]), and each
//! transition one that git-ci's protocol makes (DESIGN.md, "The protocol";
//! [`crate::claimed`]): a job is queued with its pin; a claim moves the
//! job's queue ref to the claimed tree of that very claim; a queue ref is
//! deleted only by the publish that adds the job's result; `done` chains
//! only move forward and are never deleted (but by `git ci gc`).
//!
//! The guard sits in front of every claim, so it reads only what a push
//! changes: the pushed objects (in the push's quarantine) and the tips
//! involved. New results of a `done` chain are found by comparing the old
//! and new tips' `results/<day>/<id>` entries, never by walking history.

mod backlog;
#[cfg(test)]
mod backlog_tests;
mod objects;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod waiting_tests;

use std::collections::HashSet;

use gix::ObjectId;
use gix::objs::Kind;

use crate::claimed;
use crate::id::JobId;
use crate::refs;
mod waiting;

use crate::validate::{Limits, Store, cancel_blob, claim_blob, job_blob, live_log_blob, worker_blob};
use objects::{blob, chain, expect_kind, new_results};

/// A live log holds a 64 KiB tail; masking may lengthen it a little.
const MAX_LIVE_LOG_BYTES: u64 = 2 * 64 * 1024 + 64;
/// Cancel requests are a few fields.
const MAX_CANCEL_BYTES: u64 = 4 * 1024;
/// A schedule marker is a tick, a commit and a name.
const MAX_SCHEDULE_MARKER_BYTES: u64 = 1024;

/// One pushed ref update: `None` is git's all-zero id (created or deleted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub old: Option<ObjectId>,
    pub new: Option<ObjectId>,
    pub name: String,
}

impl Update {
    /// A pre-receive line: `<old> <new> <ref>`.
    pub fn parse_line(line: &str) -> Option<Update> {
        let mut parts = line.splitn(3, ' ');
        let oid = |s: &str| ObjectId::from_hex(s.as_bytes()).ok().filter(|o| !o.is_null());
        let (old, new) = (parts.next()?, parts.next()?);
        let name = parts.next()?.trim_end().to_owned();
        ObjectId::from_hex(old.as_bytes()).ok()?;
        ObjectId::from_hex(new.as_bytes()).ok()?;
        Some(Update { old: oid(old), new: oid(new), name })
    }

    /// Whether the guard has anything to check: a ref pushed at the value
    /// it has (a lease check) changes nothing, and of deletions only those
    /// of queue refs and chains are ruled (the others free what a job held).
    pub fn needs_check(&self) -> bool {
        let ruled_deletion =
            [refs::QUEUE, refs::BACKLOG, refs::DONE, refs::ARCHIVE].iter().any(|p| self.name.starts_with(p));
        self.name.starts_with(refs::ROOT) && self.new != self.old && (self.new.is_some() || ruled_deletion)
    }
}

/// Why an update is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("refused {refname}: {reason}")]
pub struct Refused {
    pub refname: String,
    pub reason: String,
}

/// Checks every update of one push; the first refusal refuses it all.
/// `gc` is the `ci.gc` push option: `done` and `archive` chains may move
/// backwards or go, and queue refs may go without a result.
pub fn check_push(store: &dyn Store, updates: &[Update], gc: bool, limits: &Limits) -> Result<(), Refused> {
    let mut push = Push { store, all: updates, gc, limits, published: HashSet::new() };
    // Chains first: the results they add say which queue refs may go.
    let (chains, rest): (Vec<&Update>, Vec<&Update>) =
        updates.iter().filter(|u| u.needs_check()).partition(|u| u.name.starts_with(refs::DONE));
    for u in chains.into_iter().chain(rest) {
        push.check(u).map_err(|reason| Refused { refname: u.name.clone(), reason })?;
    }
    Ok(())
}

/// One push being checked.
struct Push<'a> {
    store: &'a dyn Store,
    all: &'a [Update],
    gc: bool,
    limits: &'a Limits,
    /// Jobs whose results the push's `done` updates add.
    published: HashSet<JobId>,
}

impl Push<'_> {
    fn check(&mut self, u: &Update) -> Result<(), String> {
        let name = u.name.as_str();
        if name.starts_with(refs::BACKLOG) {
            return if self.gc && u.new.is_none() { Ok(()) } else { self.backlog(name, u.old, u.new) };
        }
        let Some(new) = u.new else { return self.deletion(u) };
        let (store, limits) = (self.store, self.limits);
        if name.starts_with(refs::QUEUE) {
            let (queue, id) =
                refs::parse_queue_ref(name).ok_or("not a git-ci ref: queue refs are refs/ci/queue/<queue>/<job-id>")?;
            refs::check_component("queue", &queue)?;
            match u.old {
                None => self.queued(new, &queue, &id),
                Some(old) if self.is_waiting(old)? => self.waiting_moved(old, new, &id),
                Some(old) => self.claimed(old, new, &id),
            }
        } else if name.starts_with(refs::CLAIMS) {
            let id = id_under(name, refs::CLAIMS)?;
            let claim = claim_blob(&blob(store, new, "claim", limits.doc_bytes)?, &id)?;
            if claim.lease() > limits.lease {
                return Err(format!(
                    "the claim's lease is {}, over the hub's ci.maxLease ({})",
                    humantime::format_duration(claim.lease()),
                    humantime::format_duration(limits.lease)
                ));
            }
            // A fresh claim moves the queue ref in the same push (checked
            // there), or in the part of it the hub applied already (git
            // applies an atomic push in part when a ref fails a check made
            // before the transaction; the rest is pushed again). A steal or
            // a heartbeat replaces a claim, which the compare-and-swap on
            // the claim ref itself guards.
            if u.old.is_none() && !self.moves_queue_ref(&id) && !self.queue_names(&id, new)? {
                return Err(format!(
                    "a claim of {id} must move the job's queue ref to its claimed form in the same push; \
                     this worker's git-ci is older than the protocol of this hub's guard: upgrade it"
                ));
            }
            Ok(())
        } else if name.starts_with(refs::PINS) {
            id_under(name, refs::PINS)?;
            expect_kind(store, new, Kind::Commit, "a pin").map(drop)
        } else if name.starts_with(refs::CANCEL) {
            let id = id_under(name, refs::CANCEL)?;
            cancel_blob(&blob(store, new, "cancel request", MAX_CANCEL_BYTES)?, &id)
        } else if name.starts_with(refs::LOGS) {
            id_under(name, refs::LOGS)?;
            live_log_blob(&blob(store, new, "live log", MAX_LIVE_LOG_BYTES)?)
        } else if let Some(worker) = name.strip_prefix(refs::WORKERS) {
            refs::check_component("worker", worker)?;
            worker_blob(&blob(store, new, "worker document", limits.doc_bytes)?, worker).map(drop)
        } else if let Some(writer) = name.strip_prefix(refs::DONE) {
            refs::check_component("writer", writer)?;
            chain(store, u.old, new, self.gc, "done")?;
            self.published.extend(new_results(store, u.old, new, limits)?);
            Ok(())
        } else if let Some(writer) = name.strip_prefix(refs::ARCHIVE) {
            refs::check_component("writer", writer)?;
            chain(store, u.old, new, self.gc, "archive")
        } else if let Some(rest) = name.strip_prefix(refs::SCHEDULE) {
            // A schedule marker: `git ci watch`'s note of the last tick it
            // handled, moved by compare-and-swap; only its shape is ruled.
            let (job, branch) = rest.split_once('/').ok_or("schedule markers are refs/ci/schedule/<job>/<branch>")?;
            refs::check_component("job name", job)?;
            if branch.is_empty() {
                return Err("schedule markers are refs/ci/schedule/<job>/<branch>".into());
            }
            blob(store, new, "schedule marker", MAX_SCHEDULE_MARKER_BYTES).map(drop)
        } else if name.starts_with(refs::STOP) {
            // A request to stop a live instance: created and deleted by
            // compare-and-swap, read by the worker that runs it.
            let id = id_under(name, refs::STOP)?;
            crate::validate::stop_blob(&blob(store, new, "stop request", MAX_SCHEDULE_MARKER_BYTES)?, &id)
        } else {
            Err("unknown ref under refs/ci/ (git-ci writes queue, backlog, pins, claims, cancel, logs, done, workers, archive, schedule, stop)"
                .into())
        }
    }

    /// A new job: a sound document (bare, or waiting for the jobs it
    /// needs), with its pin.
    fn queued(&self, new: ObjectId, queue: &str, id: &JobId) -> Result<(), String> {
        let doc =
            if matches!(self.store.header(&new)?, Some((Kind::Tree, _))) { self.waiting_tree(new)?.0 } else { new };
        job_blob(&blob(self.store, doc, "job", self.limits.doc_bytes)?, queue, id)?;
        let pin = refs::pin(id);
        if self.all.iter().any(|o| o.name == pin && o.new.is_some()) || self.store.has_ref(&pin)? {
            return Ok(());
        }
        Err(format!("job {id} comes without its pin {pin}: push the commit under test there in the same push"))
    }

    /// A claim: the queue ref moves from the job (or an older claimed
    /// form) to the claimed tree of the same job document and of the claim
    /// ref this push creates.
    fn claimed(&self, old: ObjectId, new: ObjectId, id: &JobId) -> Result<(), String> {
        let value = self.claimed_tree(new)?;
        let was = match self.store.header(&old)? {
            Some((Kind::Blob, _)) => old,
            _ => self.claimed_tree(old)?.job,
        };
        if value.job != was {
            return Err("a queued job's document cannot be rewritten: a queue ref moves only to the claimed \
                 form of the same job.json"
                .into());
        }
        let claim = refs::claim(id);
        let first = value.first_claim.expect("a claimed tree names its claim");
        // Created in this push, or in the part of it applied already.
        if self.all.iter().any(|o| o.name == claim && o.old.is_none() && o.new == Some(first))
            || self.store.ref_value(&claim)? == Some(first)
        {
            return Ok(());
        }
        Err(format!("a queue ref moves only with the claim it names, created at {claim} in the same push"))
    }

    fn claimed_tree(&self, id: ObjectId) -> Result<claimed::QueueValue, String> {
        expect_kind(self.store, id, Kind::Tree, "a claimed queue entry")?;
        match self.queue_tree(id)? {
            value @ claimed::QueueValue { first_claim: Some(_), .. } => Ok(value),
            _ => Err("a queue ref moves from a pending job only to its claimed form (job.json and claim.json)".into()),
        }
    }

    fn queue_tree(&self, id: ObjectId) -> Result<claimed::QueueValue, String> {
        expect_kind(self.store, id, Kind::Tree, "a queue entry tree")?;
        match self.store.read(&id)? {
            Some((_, data)) => claimed::parse_tree(&data, id.kind()),
            None => Err(format!("object {id} is missing")),
        }
    }

    /// Whether the hub's queue ref of `id` is the claimed tree of `claim`.
    fn queue_names(&self, id: &JobId, claim: ObjectId) -> Result<bool, String> {
        let Some(value) = self.store.queue_value(id)? else { return Ok(false) };
        if !matches!(self.store.header(&value)?, Some((Kind::Tree, _))) {
            return Ok(false);
        }
        Ok(self.queue_tree(value)?.first_claim == Some(claim))
    }

    fn moves_queue_ref(&self, id: &JobId) -> bool {
        self.all.iter().any(|o| {
            o.old.is_some() && o.new.is_some() && refs::parse_queue_ref(&o.name).is_some_and(|(_, i)| &i == id)
        })
    }

    /// Queue refs go with their job's result (a publish, a cancel);
    /// chains go only by `git ci gc`.
    fn deletion(&self, u: &Update) -> Result<(), String> {
        if self.gc {
            return Ok(());
        }
        if let Some((_, id)) = refs::parse_queue_ref(&u.name) {
            if self.published.contains(&id) {
                return Ok(());
            }
            return Err(format!(
                "a queue ref is deleted only by the push that publishes its job (adding results/<day>/{id} to a done chain)"
            ));
        }
        Err("a done or archive chain is deleted only by `git ci gc` (push option ci.gc)".into())
    }
}

fn id_under(name: &str, prefix: &str) -> Result<JobId, String> {
    JobId::parse(&name[prefix.len()..]).map_err(|e| format!("not a git-ci ref: {e}"))
}
