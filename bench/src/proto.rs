//! The work under test, done twice: once through git-ci-core's queue
//! protocol, once as the bare git ref transactions that same work needs
//! (the floor). Set-up that is not under test (queuing the job a claim
//! needs, writing the objects a floor push sends) is done untimed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use git_ci_core::chain::Chain;
use git_ci_core::done::{self, Content, Entry};
use git_ci_core::hub::{Hub, LocalHub, RefEdit};
use git_ci_core::model::JobSpec;
use git_ci_core::queue::{self, ClaimRequest, Release};
use git_ci_core::{Claim, Job, JobResult, Status, refs};
use gix::ObjectId;

use crate::fixture::{Commit, Res, git, git_with_input};

/// A no-op job. Jobs built in the same millisecond from the same document
/// get the same id (that is how repeated submits dedupe), so each carries
/// a sequence number, unique in this process, in its environment.
pub fn job(commit: &Commit) -> Job {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let mut spec = JobSpec::ad_hoc("true");
    spec.env.insert("BENCH_SEQ".into(), SEQ.fetch_add(1, Ordering::Relaxed).to_string());
    Job::new(spec, &commit.commit, &commit.tree, "refs/heads/main", "bench")
}

pub fn oid(hex: &str) -> Res<ObjectId> {
    Ok(ObjectId::from_hex(hex.as_bytes())?)
}

/// A job as it sits in the queue: what a claim and a complete need.
pub struct Queued {
    pub job: Job,
    pub blob: ObjectId,
    pub commit: ObjectId,
}

/// Submits one job through `hub` and reads back its queue blob.
pub fn submit_one(hub: &dyn Hub, commit: &Commit) -> Res<Queued> {
    let job = job(commit);
    queue::submit(hub, std::slice::from_ref(&job))?;
    // `submit` does not say which blob it queued; the mirror (or the local
    // hub itself) has the ref now.
    let blob = hub.get(&refs::queue(&job.spec.queue, &job.id))?.ok_or("the submitted job is not queued")?;
    Ok(Queued { commit: oid(&job.commit)?, job, blob })
}

fn passed(job: &Job, worker: &str) -> JobResult {
    let mut result = JobResult::without_run(&job.id, Status::Passed, worker, 1, String::new());
    result.reason = None;
    result.exit_code = Some(0);
    result
}

pub fn entry(job: &Job, worker: &str) -> Entry {
    Entry {
        id: job.id.clone(),
        job_json: job.to_json(),
        result: passed(job, worker),
        log: Content::Bytes(b"ok\n".to_vec()),
        files: vec![],
        // Passed, so it gets a tree-cache entry as a worker's pass does,
        // keyed (like real definition keys) by hex spread over the fan-out.
        cache_key: Some(format!("{:0<64}", job.id.as_str().rsplit('-').next().unwrap_or_default())),
    }
}

/// One writer's `done` chain, claiming and completing through git-ci-core.
pub struct Writer {
    pub chain: Chain,
}

impl Writer {
    pub fn new(name: &str) -> Writer {
        Writer::at(name, None)
    }

    /// The writer of a chain that is at `tip` now.
    pub fn at(name: &str, tip: Option<ObjectId>) -> Writer {
        Writer { chain: Chain::new(name, tip) }
    }

    /// `queue::claim` then `queue::complete` of `q`: the timed part of a
    /// worker's job, minus running it.
    pub fn claim_complete(&mut self, hub: &dyn Hub, q: &Queued) -> Res<Duration> {
        let start = Instant::now();
        let name = self.chain.writer().to_owned();
        let claim = Claim::new(&q.job.id, &name, 1, Duration::from_secs(60));
        let queue_ref = refs::queue(&q.job.spec.queue, &q.job.id);
        let request =
            ClaimRequest { claim, steal: None, queue_ref: queue_ref.clone(), queue_value: q.blob, job_blob: q.blob };
        let [won] = queue::claim(hub, &[request])?[..] else {
            return Err("claim returned no blob".into());
        };
        let release = Release {
            queue_ref,
            queue_value: won.queue_value,
            pin: Some(q.commit),
            claim: Some(won.claim),
            cancel: None,
            log: None,
        };
        let finished = [(entry(&q.job, &name), release)];
        queue::complete(hub, &mut self.chain, &finished)?;
        Ok(start.elapsed())
    }
}

/// Where a floor's bare transactions go.
pub enum Target {
    /// `git update-ref --stdin` in the hub.
    Path(PathBuf),
    /// `git push --atomic` from a client repository to the URL.
    Url { url: String, client: PathBuf },
}

impl Target {
    /// Applies `edits` all or none with plain git; `leases` adds
    /// `--force-with-lease` per ref to a push (update-ref always checks).
    pub fn transact(&self, edits: &[RefEdit], leases: bool) -> Res<Duration> {
        let start = Instant::now();
        match self {
            Target::Path(hub) => update_ref(hub, edits)?,
            Target::Url { url, client } => push(client, url, edits, leases)?,
        }
        Ok(start.elapsed())
    }

    /// The repository whose objects a transaction names: the hub itself, or
    /// the client that pushes them.
    fn objects(&self) -> &Path {
        match self {
            Target::Path(p) => p,
            Target::Url { client, .. } => client,
        }
    }
}

/// One `git update-ref --stdin` transaction: start, the edits, commit.
fn update_ref(hub: &Path, edits: &[RefEdit]) -> Res<()> {
    let mut input = String::from("start\n");
    for e in edits {
        let line = match (e.new, e.expected) {
            (Some(new), Some(old)) if new == old => format!("verify {} {old}\n", e.name),
            (Some(new), None) => format!("create {} {new}\n", e.name),
            (Some(new), Some(old)) => format!("update {} {new} {old}\n", e.name),
            (None, Some(old)) => format!("delete {} {old}\n", e.name),
            (None, None) => return Err(format!("an edit of {} neither sets nor deletes", e.name).into()),
        };
        input.push_str(&line);
    }
    input.push_str("commit\n");
    git_with_input(hub, &["update-ref", "--stdin"], &input)?;
    Ok(())
}

/// One `git push --atomic` carrying every edit.
fn push(client: &Path, url: &str, edits: &[RefEdit], leases: bool) -> Res<()> {
    let mut args = vec!["push".to_owned(), "--atomic".into(), "--porcelain".into()];
    if leases {
        for e in edits {
            let expected = e.expected.map(|x| x.to_string()).unwrap_or_default();
            args.push(format!("--force-with-lease={}:{expected}", e.name));
        }
    }
    args.extend(["--".to_owned(), url.to_owned()]);
    for e in edits {
        let src = e.new.map(|n| n.to_string()).unwrap_or_default();
        args.push(format!("{src}:{}", e.name));
    }
    git(client, &args.iter().map(String::as_str).collect::<Vec<_>>())?;
    Ok(())
}

/// The bare-git floor of claim + complete: the same two transactions with
/// every object already written, and a `done` chain of its own.
pub struct Floor {
    target: Target,
    /// The hub on disk, where the floor's jobs are queued (untimed).
    hub: LocalHub,
    /// Where the floor's objects are written (untimed).
    objects: LocalHub,
    /// The floor's own `done` chain: its name and tip.
    writer: (String, Option<ObjectId>),
}

/// One timed floor job: claim and complete, apart.
pub struct FloorTimes {
    pub claim: Duration,
    pub complete: Duration,
}

impl Floor {
    pub fn new(target: Target, hub: &Path) -> Res<Floor> {
        let objects = LocalHub::open(target.objects())?;
        Ok(Floor { hub: LocalHub::open(hub)?, objects, target, writer: ("floor".to_owned(), None) })
    }

    /// The floor of a submit: a bare transaction creating the pin and the
    /// queue ref, the job blob written beforehand.
    pub fn submit(&self, commit: &Commit) -> Res<Duration> {
        let job = job(commit);
        let blob = (&self.objects as &dyn Hub).write_blob(&job.to_json())?;
        let edits = [
            RefEdit::create(refs::pin(&job.id), oid(&job.commit)?),
            RefEdit::create(refs::queue(&job.spec.queue, &job.id), blob),
        ];
        self.target.transact(&edits, false)
    }

    /// The floor of a worker's look at the queue: over a URL, one `git
    /// fetch` of the prefixes a worker fetches; on a path, nothing (refs
    /// are read in-process).
    pub fn fetch(&self) -> Res<Duration> {
        let Target::Url { url, client } = &self.target else { return Ok(Duration::ZERO) };
        let start = Instant::now();
        let mut args = vec!["fetch", "--no-tags", "--quiet", "--prune", "--", url.as_str()];
        args.extend(["+refs/ci/queue/*:refs/ci/queue/*", "+refs/ci/claims/*:refs/ci/claims/*"]);
        args.push("+refs/ci/cancel/*:refs/ci/cancel/*");
        git(client, &args)?;
        Ok(start.elapsed())
    }

    /// The hub on disk, for untimed set-up and clean-up.
    pub fn hub(&self) -> &LocalHub {
        &self.hub
    }

    /// Queues a job, writes its claim blob and `done` commit, then times
    /// the claim transaction and the complete transaction.
    pub fn claim_complete(&mut self, commit: &Commit) -> Res<FloorTimes> {
        let q = submit_one(&self.hub, commit)?;
        let objects: &dyn Hub = &self.objects;
        let (writer, tip) = (&self.writer.0, self.writer.1);
        let claim = Claim::new(&q.job.id, writer, 1, Duration::from_secs(60));
        let claim_blob = objects.write_blob(&claim.to_json())?;
        let new_tip = done::append(objects, tip, &[entry(&q.job, writer)])?;
        let claim_ref = refs::claim(&q.job.id);
        // Like ours, the claim also moves the job's queue ref to its
        // claimed tree (`git_ci_core::claimed`).
        let queue_ref = refs::queue(&q.job.spec.queue, &q.job.id);
        let claimed = git_ci_core::claimed::write(objects, q.blob, claim_blob)?;
        let claim_edits =
            [RefEdit::create(claim_ref.clone(), claim_blob), RefEdit::update(queue_ref.clone(), q.blob, claimed)];
        let claim_time = self.target.transact(&claim_edits, true)?;
        let complete = [
            RefEdit::set(refs::done(writer), tip, new_tip),
            RefEdit::delete(queue_ref, claimed),
            RefEdit::delete(refs::pin(&q.job.id), q.commit),
            RefEdit::delete(claim_ref, claim_blob),
        ];
        let complete_time = self.target.transact(&complete, true)?;
        self.writer.1 = Some(new_tip);
        Ok(FloorTimes { claim: claim_time, complete: complete_time })
    }
}

/// Deletes every `refs/ci/*` of a hub on disk, between rounds that must
/// each start from a hub with no jobs.
pub fn clear_ci_refs(hub: &LocalHub) -> Res<()> {
    let hub: &dyn Hub = hub;
    let edits: Vec<RefEdit> = hub.list(refs::ROOT)?.into_iter().map(|(name, id)| RefEdit::delete(name, id)).collect();
    if !edits.is_empty() {
        hub.transact(&edits)?;
    }
    Ok(())
}

/// One `sh -e -c true`, started and waited for: how the runner starts a
/// job's script.
pub fn sh_true() -> Res<Duration> {
    let start = Instant::now();
    let status = std::process::Command::new("sh").args(["-e", "-c", "true"]).status()?;
    if !status.success() {
        return Err(format!("sh -c true: {status}").into());
    }
    Ok(start.elapsed())
}
