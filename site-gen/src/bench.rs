//! What the benchmark harness measures of the site (issue 5's goals: a
//! full build at most 0.5 ms a job, a rebuild after one more result at
//! most 2% of that): [`measure`] makes a hub of `jobs` finished jobs in
//! `dir`, builds its site from nothing, adds one result and builds again.
//!
//! `cargo run --release -p git-ci-site --example site_bench -- 10000`

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use git_ci_core::done::{self, Content, Entry};
use git_ci_core::hub::{LocalHub, RefEdit};
use git_ci_core::model::{Job, JobResult, JobSpec, Status, TestCounts};
use git_ci_core::{Hub, JobId, refs};
use gix::ObjectId;

use crate::{Options, Report, Site};

pub type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

#[derive(Clone, Debug)]
pub struct Figures {
    pub jobs: usize,
    /// Making the hub (not part of the site's cost).
    pub fill: Duration,
    pub full: Report,
    /// After one more result.
    pub rebuild: Report,
    /// With nothing new.
    pub noop: Report,
}

impl Figures {
    pub fn per_job_full(&self) -> Duration {
        self.full.elapsed / self.jobs.max(1) as u32
    }

    /// The rebuild's time as a share of the full build's.
    pub fn rebuild_ratio(&self) -> f64 {
        self.rebuild.elapsed.as_secs_f64() / self.full.elapsed.as_secs_f64()
    }
}

/// A directory for history written only to be fetched elsewhere: on
/// /dev/shm when the machine has one, so that its churn stays off the disk
/// being measured (see [`measure`]). Gone when dropped.
pub fn scratch_dir(prefix: &str) -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    if shm.is_dir() { builder.tempdir_in(shm) } else { builder.tempdir() }
}

/// Fills a hub in `dir` with `jobs` results and times the site's builds.
///
/// The results are written in a scratch hub (on /dev/shm when there is
/// one) and fetched into the measured one as a pack, as a hub's history
/// arrives over time. Written in place they were ~4 loose objects a job,
/// which the repack then deleted; on an ext4 without a journal every file
/// the site then wrote paid a scan past those recently deleted inodes
/// (`perf`: `recently_deleted` in `__ext4_new_inode`), and the build
/// measured the disk's bookkeeping rather than the site.
pub fn measure(dir: &Path, jobs: usize) -> BenchResult<Figures> {
    let hub_path = dir.join("hub.git");
    gix::init_bare(&hub_path)?;
    let started = Instant::now();
    let scratch = scratch_dir("git-ci-site-fill-")?;
    let scratch_hub = scratch.path().join("hub.git");
    gix::init_bare(&scratch_hub)?;
    let source = LocalHub::open(&scratch_hub)?;
    let fixture = Fixture::new(&source)?;
    fixture.fill(&source, jobs)?;
    let git = || git_ci_core::git::Git::new(&hub_path);
    git()?.args(["fetch", "-q"]).arg(&scratch_hub).arg("+refs/*:refs/*").run()?;
    drop(scratch);
    // Hubs are packed in real life (`git gc`).
    git()?.args(["repack", "-a", "-d", "-q"]).run()?;
    let hub = LocalHub::open(&hub_path)?;
    let fill = started.elapsed();
    let site = Site::new(Options::new(dir.join("site")))?;
    let full = site.build(&hub, &|_| {})?;
    fixture.add(&hub, jobs)?;
    let rebuild = site.build(&hub, &|_| {})?;
    let noop = site.build(&hub, &|_| {})?;
    Ok(Figures { jobs, fill, full, rebuild, noop })
}

/// Commits, branches and job names that results are spread over.
pub struct Fixture {
    commits: Vec<(ObjectId, ObjectId)>,
    start: SystemTime,
}

const BRANCHES: [&str; 8] =
    ["main", "release-1.x", "feature/login", "feature/search", "fix/crash", "dev", "docs", "perf"];
const NAMES: [&str; 5] = ["build", "test", "lint", "docs", "integration"];
const WRITERS: [&str; 4] = ["worker-1", "worker-2", "worker-3", "_hub"];
const DAYS: u64 = 50;
const BATCH: usize = 500;

impl Fixture {
    /// Writes 200 commits into the hub for the results to point at.
    pub fn new(hub: &dyn Hub) -> BenchResult<Fixture> {
        let repo = hub.repo();
        let tree = ObjectId::empty_tree(repo.object_hash());
        let sig = done::signature();
        let mut time = Default::default();
        let sig = sig.to_ref(&mut time);
        let mut parent: Option<ObjectId> = None;
        let mut commits = Vec::new();
        for i in 0..200 {
            let msg = format!("Change number {i}: tune the \x1b[1mwidget\x1b[0m <fast> path\n\nBody.\n");
            let id = repo.new_commit_as(sig, sig, msg, tree, parent)?.id;
            commits.push((id, tree));
            parent = Some(id);
        }
        // A branch holds them, as the hub of a real project would.
        if let Some(tip) = parent {
            hub.transact(&[RefEdit::create("refs/heads/main", tip)])?;
        }
        Ok(Fixture { commits, start: SystemTime::now() - Duration::from_secs(86_400 * DAYS) })
    }

    /// Publishes jobs `0..n` into the writers' chains.
    pub fn fill(&self, hub: &dyn Hub, n: usize) -> BenchResult<()> {
        for (w, writer) in WRITERS.iter().enumerate() {
            let mine: Vec<usize> = (0..n).filter(|i| i % WRITERS.len() == w).collect();
            let mut tip = None;
            for chunk in mine.chunks(BATCH) {
                let entries: Vec<Entry> = chunk.iter().map(|i| self.entry(*i, n, writer)).collect();
                tip = Some(done::append(hub, tip, &entries)?);
            }
            if let Some(tip) = tip {
                hub.transact(&[RefEdit::create(refs::done(writer), tip)])?;
            }
        }
        Ok(())
    }

    /// Publishes job `i` (the newest) on its writer's chain.
    pub fn add(&self, hub: &dyn Hub, i: usize) -> BenchResult<()> {
        let writer = WRITERS[i % WRITERS.len()];
        let name = refs::done(writer);
        let tip = hub.get(&name)?;
        let new = done::append(hub, tip, &[self.entry(i, i, writer)])?;
        hub.transact(&[RefEdit::set(name, tip, new)])?;
        Ok(())
    }

    /// The `i`th of `n` results, spread evenly over [`DAYS`] days.
    fn entry(&self, i: usize, n: usize, writer: &str) -> Entry {
        let at = self.start + Duration::from_millis((DAYS * 86_400_000) * i as u64 / n.max(1) as u64);
        let (commit, tree) = self.commits[i / 50 % self.commits.len()];
        let name = NAMES[i % NAMES.len()];
        let mut spec = JobSpec::ad_hoc(&format!("make {name}"));
        spec.name = name.to_owned();
        spec.ad_hoc = false;
        let branch = BRANCHES[(i / 50 / 7) % BRANCHES.len()];
        let mut job = Job::new(spec, &commit.to_string(), &tree.to_string(), &format!("refs/heads/{branch}"), "bench");
        job.id = JobId::new(at, &i.to_le_bytes());
        job.submitted_at = git_ci_core::time::rfc3339(at);
        let status = match i % 50 {
            0..=2 => Status::Failed,
            3 => Status::Timeout,
            _ => Status::Passed,
        };
        let mut result = JobResult::without_run(&job.id, status, writer, 1, String::new());
        result.reason = None;
        result.exit_code = Some(if status == Status::Passed { 0 } else { 1 });
        result.started_at = git_ci_core::time::rfc3339(at + Duration::from_secs(2));
        result.finished_at = git_ci_core::time::rfc3339(at + Duration::from_secs(62));
        result.duration_ms = 60_000 + (i as u64 % 7_000);
        if name == "test" {
            result.tests = TestCounts { total: 120, passed: 118, failed: 0, skipped: 2 };
        }
        let log = log(i, status);
        result.log_bytes = log.len() as u64;
        result.log_sha256 = git_ci_core::digest::sha256_hex(&log);
        Entry {
            id: job.id.clone(),
            job_json: job.to_json(),
            result,
            log: Content::Bytes(log),
            files: vec![],
            cache_key: None,
        }
    }
}

/// A log of 60 lines, some coloured, like a build tool's.
fn log(i: usize, status: Status) -> Vec<u8> {
    let mut s = String::with_capacity(4096);
    for line in 0..60 {
        match line % 10 {
            0 => s.push_str(&format!("\x1b[1;32m   Compiling\x1b[0m crate-{line} v0.{i}.0 (/work/crate-{line})\n")),
            5 => s.push_str(&format!("\x1b[33mwarning\x1b[0m: unused variable `x{line}` <in> src/lib.rs:{line}\n")),
            _ => s.push_str(&format!("test module_{line}::case_{i} ... ok ({line} ms)\n")),
        }
    }
    if status != Status::Passed {
        s.push_str("\x1b[31merror\x1b[0m: process didn't exit successfully (exit status: 1)\n");
    }
    s.into_bytes()
}
