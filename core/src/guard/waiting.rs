//! The guard's rules for jobs waiting on the jobs they need
//! ([`crate::needs`]): a waiting tree is created with its job, and moves
//! only forward, as the jobs it waits for finish.

use std::collections::BTreeSet;

use gix::ObjectId;
use gix::objs::Kind;

use super::Push;
use crate::id::JobId;
use crate::{needs, refs};

use needs::MAX_WAITING;

impl Push<'_> {
    pub(super) fn is_waiting(&self, value: ObjectId) -> Result<bool, String> {
        if !matches!(self.store.header(&value)?, Some((Kind::Tree, _))) {
            return Ok(false);
        }
        Ok(self.queue_tree(value)?.waiting.is_some())
    }

    /// A waiting tree's job document and list.
    pub(super) fn waiting_tree(&self, value: ObjectId) -> Result<(ObjectId, BTreeSet<JobId>), String> {
        let tree = self.queue_tree(value)?;
        let Some(list) = tree.waiting else {
            return Err("a new job is its job.json, or a tree of job.json and waiting.json".into());
        };
        let bytes = super::blob(self.store, list, "waiting list", 64 * MAX_WAITING as u64)?;
        let waiting = needs::parse_waiting(&bytes)?;
        if waiting.len() > MAX_WAITING {
            return Err(format!("waiting.json lists {} jobs, over {MAX_WAITING}", waiting.len()));
        }
        Ok((tree.job, waiting))
    }

    /// A waiting job moves on: to a shorter list of the same job, or to
    /// its bare job document, and only for jobs that have finished (their
    /// queue ref is gone, or goes in this push).
    pub(super) fn waiting_moved(&self, old: ObjectId, new: ObjectId, id: &JobId) -> Result<(), String> {
        let (job, was) = self.waiting_tree(old)?;
        let (new_job, left) = if new == job { (job, BTreeSet::new()) } else { self.waiting_tree(new)? };
        if new_job != job {
            return Err("a waiting job's document cannot be rewritten".into());
        }
        if !left.is_subset(&was) || left.len() == was.len() {
            return Err(format!("job {id} may only stop waiting for jobs it waited for"));
        }
        for done in was.difference(&left) {
            if !self.finished(done)? {
                return Err(format!("job {id} stops waiting for {done}, which has not finished"));
            }
        }
        Ok(())
    }

    /// Whether `id`'s queue ref is gone from the hub or goes in this push.
    fn finished(&self, id: &JobId) -> Result<bool, String> {
        let deleted_here =
            self.all.iter().any(|u| u.new.is_none() && refs::parse_queue_ref(&u.name).is_some_and(|(_, i)| &i == id));
        Ok(deleted_here || self.store.queue_value(id)?.is_none())
    }
}
