//! Jobs published without running: a document no worker can use
//! (poisoned), or claims that expired `max_attempts` times (exhausted).

use super::*;
use claim::JobDoc;
use publish::Unpublished;

impl Worker {
    pub(super) fn job_doc(&mut self, q: &Queued) -> JobDoc {
        let hub = Arc::clone(&self.hub);
        self.rounds.job_docs.entry((q.id.clone(), q.value)).or_insert_with(|| q.read_job(&*hub)).clone()
    }

    /// A job whose document is unusable is published as `error` unrun.
    pub(super) fn poisoned(
        &mut self,
        q: &Queued,
        snap: &Snapshot,
        reason: String,
        raw: Vec<u8>,
    ) -> Result<(), HubError> {
        if self.publishing.queue.iter().any(|p| p.entry.id == q.id) {
            return Ok(());
        }
        let pin = queue::pin_of(&*self.hub, &q.id, None)?;
        let release = Release {
            queue_ref: refs::queue(&q.queue, &q.id),
            queue_value: q.value,
            pin,
            claim: snap.claims.get(&q.id).copied(),
            cancel: snap.cancels.get(&q.id).copied(),
            log: None,
        };
        let result = JobResult::without_run(&q.id, Status::Error, &self.cfg.name, 1, reason);
        self.queue_unrun(None, q.id.clone(), raw, result, release);
        Ok(())
    }

    /// A job whose claims expired `max_attempts` times is published as `error`.
    pub(super) fn exhausted(&mut self, q: &Queued, job: &Job, json: Vec<u8>, claim_blob: ObjectId, claim: &Claim) {
        let reason = format!(
            "gave up after {} attempts: each worker that claimed it stopped heartbeating (last: {}); \
             the job may kill workers or outlive its lease",
            claim.attempt, claim.worker
        );
        let result = JobResult::without_run(&q.id, Status::Error, &self.cfg.name, claim.attempt, reason);
        let release = Release {
            queue_ref: refs::queue(&q.queue, &q.id),
            queue_value: q.value,
            pin: ObjectId::from_hex(job.commit.as_bytes()).ok(),
            claim: Some(claim_blob),
            cancel: None,
            log: None,
        };
        self.queue_unrun(Some(job.clone()), q.id.clone(), json, result, release);
    }

    pub(super) fn queue_unrun(
        &mut self,
        job: Option<Job>,
        id: JobId,
        json: Vec<u8>,
        result: JobResult,
        release: Release,
    ) {
        let log = format!("[git-ci] {}\n", result.reason.as_deref().unwrap_or(""));
        let entry =
            Entry { id, job_json: json, result, log: Content::Bytes(log.into_bytes()), files: vec![], cache_key: None };
        let at = Instant::now();
        let (released, refused, claim, _workdir) = (false, false, None, None);
        let (unwritable, retry_at) = (0, None);
        self.publishing.queue.push(Unpublished {
            job,
            entry,
            release,
            released,
            at,
            refused,
            claim,
            unwritable,
            retry_at,
            _workdir,
        });
    }
}
