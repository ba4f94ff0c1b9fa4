//! `job.json`: what to run ([`JobSpec`], one `[job.NAME]` of
//! `.git-ci.toml` or an ad-hoc `submit --run`) bound to a commit ([`Job`]),
//! with the jobs it needs and its place among repeats. A job's id is derived
//! from its whole document, so the same blob is the same job everywhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::matrix::Matrix;
use super::{DocError, VERSION, parse_doc, to_json};
use crate::id::JobId;

/// The label every worker has implicitly, its name: a job that requires
/// `name=w2` (`submit --worker w2`, `worker = "w2"`) is aimed at the worker
/// named w2 and no other. Kept as an ordinary requirement so that workers
/// older than the aim already refuse the job (they lack the label), rather
/// than run it anywhere.
pub const NAME_LABEL: &str = "name";

/// What to run, independent of where and when: one `[job.NAME]` of
/// `.git-ci.toml`, or an ad-hoc `git ci submit --run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    pub queue: String,
    #[serde(default)]
    pub requires: BTreeMap<String, String>,
    pub run: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Seconds.
    pub timeout: u64,
    #[serde(default)]
    pub artifacts: Vec<String>,
    #[serde(default)]
    pub junit: Vec<String>,
    #[serde(default)]
    pub cache: Vec<String>,
    #[serde(default)]
    pub priority: i32,
    pub max_attempts: u32,
    /// A matrix job's values, each also an environment variable of its run.
    #[serde(default, skip_serializing_if = "Matrix::is_empty")]
    pub matrix: Matrix,
    /// Asks for the network inside a sandbox (`git ci worker --sandbox`);
    /// the worker must also allow it (`--sandbox-network`). Left out of the
    /// document when false, so that definitions written before it keep
    /// their identity (the tree cache compares documents).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
    /// A one-off script (`git ci submit --run`), not a job of the project:
    /// listed with the rest, but never part of a branch's health, badges or
    /// matrix, where one `exit 1` tried by hand would paint a green branch
    /// red. Left out when false, like `network`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ad_hoc: bool,
    /// A live instance (`serve = true`): `run` is a service, given a port in
    /// `$PORT`, published `passed` with its `url` once it answers, and kept
    /// running until superseded or stopped ([`crate::worker`]). Left out
    /// when false, like `network`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub serve: bool,
    /// A service's readiness probe (`ready = "curl -fs localhost:$PORT/health"`),
    /// run until it passes; absent: the port accepting connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<String>,
}

impl JobSpec {
    pub const DEFAULT_TIMEOUT_SECS: u64 = 3600;
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

    pub fn ad_hoc(run: &str) -> Self {
        JobSpec {
            name: "adhoc".into(),
            queue: "default".into(),
            requires: BTreeMap::new(),
            run: run.into(),
            env: BTreeMap::new(),
            timeout: Self::DEFAULT_TIMEOUT_SECS,
            artifacts: vec![],
            junit: vec![],
            cache: vec![],
            priority: 0,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            matrix: Matrix::default(),
            network: false,
            ad_hoc: true,
            serve: false,
            ready: None,
        }
    }

    /// The worker this job is aimed at, if any (see [`NAME_LABEL`]).
    pub fn aimed_at(&self) -> Option<&str> {
        self.requires.get(NAME_LABEL).map(String::as_str)
    }

    /// `test (python=3.11, db=postgres)`: the name a person reads.
    pub fn label(&self) -> String {
        if self.matrix.is_empty() { self.name.clone() } else { format!("{} ({})", self.name, self.matrix) }
    }

    /// What no worker could run as written (see [`super::spec_rules`]).
    pub fn check(&self) -> Result<(), String> {
        use super::spec_rules as rules;
        rules::timeout_secs(self.timeout)?;
        rules::script(&self.run)?;
        for (k, v) in &self.env {
            rules::env_var(k, v)?;
        }
        for (k, v) in self.matrix.iter() {
            rules::matrix_key(k)?;
            rules::env_var(k, v)?;
        }
        if let Some(ready) = &self.ready {
            if !self.serve {
                return Err("ready is a probe of a service: it needs serve = true".into());
            }
            rules::script(ready)?;
        }
        for (field, patterns) in [("artifacts", &self.artifacts), ("junit", &self.junit)] {
            for p in patterns {
                rules::pattern(field, p)?;
            }
        }
        Ok(())
    }

    /// Identifies "the same job on the same code": a pass with an equal key
    /// lets `git ci run` skip the job. Everything that can change the outcome
    /// is in it; queue and priority are not.
    pub fn definition_key(&self, tree: &str) -> String {
        use sha2::{Digest, Sha256};
        let material = serde_json::json!({
            "tree": tree, "name": self.name, "run": self.run, "env": self.env,
            "requires": self.requires, "timeout": self.timeout,
            "artifacts": self.artifacts, "junit": self.junit,
        });
        // Added only when set, so that keys of jobs without a matrix stay
        // what older git-ci wrote (their passes still count).
        let mut material = material;
        if !self.matrix.is_empty() {
            material["matrix"] = serde_json::to_value(&self.matrix).expect("a matrix serializes");
        }
        let digest = Sha256::digest(material.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `job.json`: a spec bound to a commit, as queued on the hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub version: u32,
    pub id: JobId,
    pub commit: String,
    /// The branch or tag it came from (`refs/heads/main`), or `""`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The commit's tree, for the "already passed on this tree" check.
    #[serde(default)]
    pub tree: String,
    #[serde(flatten)]
    pub spec: JobSpec,
    pub attempt: u32,
    pub submitted_at: String,
    pub submitted_by: String,
    /// Makes every submission a distinct document (and id): two triggers
    /// submitting the same job in the same millisecond must not produce
    /// one blob whose "create" both would see succeed.
    #[serde(default)]
    pub nonce: String,
    /// The jobs of the same submission that must pass before this one may
    /// be claimed ([`crate::needs`]); their artifacts are put in its checkout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<Need>,
    /// Names of the jobs that need this one: its publisher then moves them
    /// on, in the same transaction.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needed_by: Vec<String>,
    /// One of several runs of the same job (`submit --repeat N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Repeat>,
    /// Where the definition came from when not the commit's own
    /// `.git-ci.toml`: `"path:ci.toml"`, `"rev:<commit>:.git-ci.toml"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_from: Option<String>,
    /// The cron tick (RFC 3339) a scheduled run was queued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<String>,
    /// The repository the commit comes from, when a hub serves several
    /// (`origin`'s name, or `git config ci.project`). `""`, and absent
    /// from documents written before projects: the hub's own project.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project: String,
}

/// A job that must pass first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    pub id: JobId,
    /// Its label, for reasons and displays (`build`, `test (python=3.11)`).
    pub label: String,
}

/// Run `index` of `count` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeat {
    pub index: u32,
    pub count: u32,
}

impl Job {
    /// Binds `spec` to a commit; the id is derived from the document itself.
    pub fn new(spec: JobSpec, commit: &str, tree: &str, git_ref: &str, submitted_by: &str) -> Job {
        Job::unsealed(spec, commit, tree, git_ref, submitted_by).sealed()
    }

    /// [`Job::new`] without its id yet: set `needs`, `repeat`, ... then
    /// [`Job::sealed`], which derives the id from the whole document.
    pub fn unsealed(spec: JobSpec, commit: &str, tree: &str, git_ref: &str, submitted_by: &str) -> Job {
        let at = submission_time();
        let placeholder = JobId::new(at, b"");
        Job {
            version: VERSION,
            id: placeholder,
            commit: commit.into(),
            git_ref: git_ref.into(),
            tree: tree.into(),
            spec,
            attempt: 1,
            submitted_at: crate::time::rfc3339(at),
            submitted_by: submitted_by.into(),
            nonce: format!("{:016x}", fastrand::u64(..)),
            needs: vec![],
            needed_by: vec![],
            repeat: None,
            config_from: None,
            scheduled: None,
            project: String::new(),
        }
    }

    /// Gives the job its id: the submission time (kept in the placeholder)
    /// and a digest of the document.
    pub fn sealed(mut self) -> Job {
        let at = crate::time::parse_rfc3339(&self.submitted_at).unwrap_or_else(std::time::SystemTime::now);
        self.id = JobId::new(at, b"");
        self.id = JobId::new(at, &to_json(&self));
        self
    }

    /// `test (python=3.11) #3`: the name a person reads.
    pub fn label(&self) -> String {
        match self.repeat {
            Some(r) => format!("{} #{}", self.spec.label(), r.index),
            None => self.spec.label(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        to_json(self)
    }

    pub fn from_json(bytes: &[u8]) -> Result<Job, DocError> {
        let job: Job = parse_doc("job", bytes)?;
        job.check()?;
        Ok(job)
    }

    /// What serde cannot say: names fit refs, the commit is an object id.
    fn check(&self) -> Result<(), DocError> {
        crate::refs::check_component("queue", &self.spec.queue).map_err(DocError::Invalid)?;
        crate::refs::check_component("job name", &self.spec.name).map_err(DocError::Invalid)?;
        if self.commit.len() != 40 || !self.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DocError::Invalid(format!("commit {:?} is not a full object id", self.commit)));
        }
        if self.spec.max_attempts == 0 {
            return Err(DocError::Invalid("max_attempts must be at least 1".into()));
        }
        self.check_pipeline_fields().map_err(DocError::Invalid)?;
        self.spec.check().map_err(DocError::Invalid)
    }

    /// The most jobs one job may need (a pipeline's submission limit).
    pub const MAX_NEEDS: usize = 5000;

    /// `needs`, `needed_by`, `repeat`, `scheduled`, `config_from`: what a
    /// reader relies on.
    fn check_pipeline_fields(&self) -> Result<(), String> {
        if self.needs.len() > Self::MAX_NEEDS {
            return Err(format!("the job needs {} jobs, over the limit of {}", self.needs.len(), Self::MAX_NEEDS));
        }
        if self.needs.iter().any(|n| n.id == self.id) {
            return Err("a job cannot need itself".into());
        }
        for name in &self.needed_by {
            crate::refs::check_component("needed_by", name)?;
        }
        if let Some(r) = self.repeat
            && !(1..=r.count).contains(&r.index)
        {
            return Err(format!("repeat {} of {} is not a run of the repeat", r.index, r.count));
        }
        if let Some(tick) = &self.scheduled
            && crate::time::parse_rfc3339(tick).is_none()
        {
            return Err(format!("scheduled {tick:?} is not an RFC 3339 time"));
        }
        if !self.project.is_empty() {
            crate::refs::check_component("project", &self.project)?;
        }
        if let Some(from) = &self.config_from
            && !(from.starts_with("path:") || from.starts_with("rev:"))
        {
            return Err(format!("config_from {from:?} is neither path:<file> nor rev:<commit>:<file>"));
        }
        Ok(())
    }

    pub fn short_commit(&self) -> &str {
        &self.commit[..self.commit.len().min(10)]
    }

    /// `main` for `refs/heads/main`, `v1.0` for `refs/tags/v1.0`.
    pub fn branch(&self) -> &str {
        self.git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| self.git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(&self.git_ref)
    }
}

/// Now, but strictly later than the previous job made by this process, so
/// that jobs made in one go (a range, a pipeline) queue in the order made:
/// ids sort by their millisecond first.
fn submission_time() -> std::time::SystemTime {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, UNIX_EPOCH};
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    let now = crate::time::millis_since_epoch(std::time::SystemTime::now());
    let prev = LAST_MS.fetch_max(now, Ordering::SeqCst);
    let ms = if prev >= now { LAST_MS.fetch_add(1, Ordering::SeqCst) + 1 } else { now };
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job::new(JobSpec::ad_hoc("true"), &"a".repeat(40), &"b".repeat(40), "refs/heads/main", "me")
    }

    #[test]
    fn jobs_made_together_sort_in_the_order_made() {
        let ids: Vec<JobId> = (0..50).map(|_| job().id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn round_trips_and_ignores_unknown_fields() {
        let j = job();
        let mut v: serde_json::Value = serde_json::from_slice(&j.to_json()).unwrap();
        v["from_the_future"] = 1.into();
        let back = Job::from_json(v.to_string().as_bytes()).unwrap();
        assert_eq!(back, j);
        assert_eq!(back.branch(), "main");
    }

    #[test]
    fn a_matrix_keeps_its_order_through_the_hub() {
        let mut spec = JobSpec::ad_hoc("true");
        spec.matrix = Matrix(vec![("python".into(), "3.11".into()), ("db".into(), "pg".into())]);
        let j = Job::new(spec, &"a".repeat(40), &"b".repeat(40), "", "me");
        let back = Job::from_json(&j.to_json()).unwrap();
        assert_eq!(back.label(), "adhoc (python=3.11, db=pg)");
    }

    #[test]
    fn bad_documents_say_why() {
        let j = job();
        let mut v: serde_json::Value = serde_json::from_slice(&j.to_json()).unwrap();
        v["version"] = 2.into();
        assert!(Job::from_json(v.to_string().as_bytes()).unwrap_err().to_string().contains("version 2"));
        v["version"] = 1.into();
        v["queue"] = "../x".into();
        assert!(Job::from_json(v.to_string().as_bytes()).unwrap_err().to_string().contains("queue"));
        assert!(matches!(Job::from_json(b"nope"), Err(DocError::Parse { .. })));
        let huge = vec![b' '; MAX + 1];
        assert!(matches!(Job::from_json(&huge), Err(DocError::TooLarge { .. })));
    }
    const MAX: usize = super::super::MAX_DOC_BYTES;

    #[test]
    fn documents_no_worker_could_run_are_refused() {
        let j = job();
        let bad = |field: &str, value: serde_json::Value| {
            let mut v: serde_json::Value = serde_json::from_slice(&j.to_json()).unwrap();
            v[field] = value;
            Job::from_json(v.to_string().as_bytes()).unwrap_err().to_string()
        };
        let e = bad("timeout", u64::MAX.into());
        assert!(e.contains("timeout 18446744073709551615") && e.contains("604800"), "{e}");
        assert!(bad("timeout", 0.into()).contains("at least 1 second"));
        assert!(bad("run", "echo a\0b".into()).contains("NUL"));
        assert!(bad("env", serde_json::json!({"A": "x\0y"})).contains("NUL"));
        assert!(bad("env", serde_json::json!({"A=B": "x"})).contains("\"A=B\""));
        let e = bad("artifacts", serde_json::json!(["out/[z-a"]));
        assert!(e.contains("artifacts") && e.contains("out/[z-a"), "{e}");
        assert!(bad("junit", serde_json::json!(["a/[b"])).contains("junit"));
        assert!(bad("repeat", serde_json::json!({"index": 3, "count": 2})).contains("repeat 3 of 2"));
        assert!(bad("scheduled", "yesterday".into()).contains("RFC 3339"));
        assert!(bad("config_from", "somewhere".into()).contains("config_from"));
        assert!(bad("needed_by", serde_json::json!(["a/b"])).contains("needed_by"));
        let mut v: serde_json::Value = serde_json::from_slice(&j.to_json()).unwrap();
        v["timeout"] = (7 * 86_400).into();
        Job::from_json(v.to_string().as_bytes()).expect("a week is allowed");
    }
}
