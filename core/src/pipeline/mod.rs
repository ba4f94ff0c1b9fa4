//! `.git-ci.toml`: the jobs a commit asks for.
//!
//! Errors carry the file, line and column of the offending field, because
//! the person reading them is looking at the file in an editor.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, de};
use toml::Spanned;

use crate::model::spec_rules as rules;
use crate::model::{JobSpec, Matrix, NAME_LABEL};

mod expand;
pub mod matrix;

pub use expand::{MAX_JOBS, MAX_REPEAT, SelectError};

pub const FILE_NAME: &str = ".git-ci.toml";

/// One `[job.NAME]` with the trigger settings that do not travel into `job.json`.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineJob {
    pub spec: JobSpec,
    /// Branch patterns the hook triggers on; `None` means every branch.
    pub branches: Option<Vec<String>>,
    /// Tag patterns the hook triggers on; empty means none.
    pub tags: Vec<String>,
    /// A newer push to the branch cancels pending runs of this job.
    pub supersede: bool,
    /// Names of the jobs that must pass first.
    pub needs: Vec<String>,
    /// Its matrix, expanded: one job per entry (none: one job).
    pub matrix: Vec<Matrix>,
    /// A 5-field cron expression (UTC): `git ci watch` queues it then.
    pub schedule: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pipeline {
    pub jobs: BTreeMap<String, PipelineJob>,
}

#[derive(Debug, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}")]
pub struct PipelineError {
    /// Where the text came from: a path, or `<commit>:.git-ci.toml`.
    pub origin: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    job: BTreeMap<Spanned<String>, RawJob>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    #[serde(deserialize_with = "script")]
    run: String,
    #[serde(default, deserialize_with = "queue_name")]
    queue: Option<String>,
    #[serde(default)]
    requires: BTreeMap<String, String>,
    branches: Option<Vec<String>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default, deserialize_with = "duration")]
    timeout: Option<Duration>,
    #[serde(default, deserialize_with = "env")]
    env: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "artifacts")]
    artifacts: Vec<String>,
    #[serde(default, deserialize_with = "junit")]
    junit: Vec<String>,
    #[serde(default)]
    cache: Vec<String>,
    #[serde(default)]
    priority: i32,
    #[serde(default, deserialize_with = "attempts")]
    max_attempts: Option<u32>,
    #[serde(default)]
    supersede: Option<bool>,
    #[serde(default)]
    needs: Vec<Spanned<String>>,
    #[serde(default, deserialize_with = "matrix::deserialize")]
    matrix: Option<matrix::MatrixDef>,
    #[serde(default, deserialize_with = "schedule")]
    schedule: Option<String>,
    #[serde(default)]
    network: bool,
    #[serde(default)]
    serve: bool,
    #[serde(default, deserialize_with = "ready")]
    ready: Option<String>,
    worker: Option<Spanned<String>>,
}

// Each field's rule fails its own deserialization, so that the error
// carries the field's line (see `model::spec_rules`).

fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    let dur = crate::time::parse_duration_at_most(&s, "timeout", rules::MAX_TIMEOUT).map_err(de::Error::custom)?;
    if dur.is_zero() {
        return Err(de::Error::custom("timeout must be longer than zero"));
    }
    Ok(Some(dur))
}

fn script<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    rules::script(&s).map_err(de::Error::custom)?;
    Ok(s)
}

fn env<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let vars = BTreeMap::<String, String>::deserialize(d)?;
    for (k, v) in &vars {
        rules::env_var(k, v).map_err(de::Error::custom)?;
    }
    Ok(vars)
}

fn ready<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    rules::script(&s).map_err(de::Error::custom)?;
    Ok(Some(s))
}

fn patterns<'de, D: serde::Deserializer<'de>>(d: D, field: &str) -> Result<Vec<String>, D::Error> {
    let patterns = Vec::<String>::deserialize(d)?;
    for p in &patterns {
        rules::pattern(field, p).map_err(de::Error::custom)?;
    }
    Ok(patterns)
}

fn artifacts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    patterns(d, "artifacts")
}

fn junit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    patterns(d, "junit")
}

fn queue_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    crate::refs::check_component("queue", &s).map_err(serde::de::Error::custom)?;
    Ok(Some(s))
}

fn schedule<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    crate::schedule::Schedule::parse(&s).map_err(de::Error::custom)?;
    Ok(Some(s))
}

fn attempts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(serde::de::Error::custom("max_attempts must be at least 1")),
        n => Ok(Some(n)),
    }
}

impl Pipeline {
    /// Parses the text of a `.git-ci.toml`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Pipeline, PipelineError> {
        let at = |offset: usize, message: String| {
            let before = &text[..offset.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            PipelineError { origin: origin.to_owned(), line, column, message }
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at(offset, e.message().trim().to_owned())
        })?;
        let mut jobs = BTreeMap::new();
        let mut needs = BTreeMap::new();
        for (name, mut raw) in raw.job {
            crate::refs::check_component("job name", name.get_ref()).map_err(|m| at(name.span().start, m))?;
            if raw.ready.is_some() && !raw.serve {
                let why = "`ready` probes a service: add `serve = true`, or remove `ready`";
                return Err(at(name.span().start, why.into()));
            }
            let name = name.into_inner();
            raw.aim().map_err(|(offset, m)| at(offset, m))?;
            needs.insert(name.clone(), std::mem::take(&mut raw.needs));
            jobs.insert(name.clone(), raw.into_job(name));
        }
        expand::check_needs(&jobs, &needs).map_err(|(offset, message)| at(offset, message))?;
        for (name, edges) in needs {
            let job = jobs.get_mut(&name).expect("collected together");
            job.needs = edges.into_iter().map(Spanned::into_inner).collect();
        }
        Ok(Pipeline { jobs })
    }

    /// Reads `.git-ci.toml` from a commit's tree; `Ok(None)` when it has none.
    pub fn at_commit(repo: &gix::Repository, commit: gix::ObjectId) -> Result<Option<Pipeline>, PipelineAtCommitError> {
        let origin = format!("{}:{FILE_NAME}", &commit.to_hex_with_len(10));
        let read = || -> Result<Option<Vec<u8>>, gix::Error> {
            let tree = repo.find_commit(commit)?.tree()?;
            match tree.lookup_entry_by_path(FILE_NAME)? {
                Some(entry) => Ok(Some(entry.object()?.detach().data)),
                None => Ok(None),
            }
        };
        let Some(bytes) = read().map_err(|e| PipelineAtCommitError::Read { commit, message: e.to_string() })? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            PipelineAtCommitError::Parse(PipelineError {
                origin: origin.clone(),
                line: 1,
                column: 1,
                message: "the file is not UTF-8".into(),
            })
        })?;
        Ok(Some(Pipeline::parse(&text, &origin)?))
    }

    pub fn names(&self) -> Vec<&str> {
        self.jobs.keys().map(String::as_str).collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no job named {name:?} in {FILE_NAME} (defined: {defined})")]
pub struct UnknownJob {
    pub name: String,
    pub defined: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineAtCommitError {
    #[error("could not read {FILE_NAME} of commit {commit}: {message}")]
    Read { commit: gix::ObjectId, message: String },
    #[error(transparent)]
    Parse(#[from] PipelineError),
}

impl RawJob {
    /// `worker = "w2"` is stored as the requirement `name=w2` (see
    /// [`crate::model::JobSpec::aimed_at`]), so that a worker of any
    /// version honours it.
    fn aim(&mut self) -> Result<(), (usize, String)> {
        let Some(worker) = self.worker.take() else { return Ok(()) };
        let offset = worker.span().start;
        let worker = worker.into_inner();
        crate::refs::check_component("worker", &worker).map_err(|m| (offset, m))?;
        match self.requires.get(NAME_LABEL) {
            Some(other) if *other != worker => Err((
                offset,
                format!("worker = {worker:?} contradicts requires {NAME_LABEL} = {other:?}: keep one of them"),
            )),
            _ => {
                self.requires.insert(NAME_LABEL.to_owned(), worker);
                Ok(())
            }
        }
    }

    fn into_job(self, name: String) -> PipelineJob {
        let spec = JobSpec {
            name,
            queue: self.queue.unwrap_or_else(|| "default".into()),
            requires: self.requires,
            run: self.run,
            env: self.env,
            timeout: self.timeout.map_or(JobSpec::DEFAULT_TIMEOUT_SECS, |d| d.as_secs().max(1)),
            artifacts: self.artifacts,
            junit: self.junit,
            cache: self.cache,
            priority: self.priority,
            max_attempts: self.max_attempts.unwrap_or(JobSpec::DEFAULT_MAX_ATTEMPTS),
            matrix: Matrix::default(),
            network: self.network,
            ad_hoc: false,
            serve: self.serve,
            ready: self.ready,
        };
        PipelineJob {
            spec,
            branches: self.branches,
            tags: self.tags,
            supersede: self.supersede.unwrap_or(true),
            needs: vec![],
            matrix: self.matrix.map(|m| m.expand()).unwrap_or_default(),
            schedule: self.schedule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serve_job_keeps_its_probe_and_a_probe_needs_serve() {
        let text = "[job.app]\nrun = \"./app\"\nserve = true\nready = \"curl -fs localhost:$PORT\"\n";
        let app = &Pipeline::parse(text, ".git-ci.toml").unwrap().jobs["app"];
        assert!(app.spec.serve);
        assert_eq!(app.spec.ready.as_deref(), Some("curl -fs localhost:$PORT"));
        let doc = String::from_utf8(crate::model::Job::new(app.spec.clone(), "c", "t", "r", "s").to_json()).unwrap();
        assert!(doc.contains("\"serve\": true"), "{doc}");
        let e = Pipeline::parse("\n[job.app]\nrun = \"x\"\nready = \"true\"\n", "f").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.to_string().contains("add `serve = true`"), "{e}");
    }

    #[test]
    fn parses_every_documented_field() {
        let text = r#"
[job.test]
run = "cargo test --workspace"
queue = "default"
requires = { os = "linux" }
branches = ["main", "release/*"]
timeout = "30m"
env = { RUST_BACKTRACE = "1" }
artifacts = ["target/*.tar.gz"]
junit = ["target/nextest/ci/junit.xml"]
cache = ["target"]
priority = 5
max_attempts = 2
supersede = false
tags = ["v*"]
network = true

[job.lint]
run = "cargo clippy"
"#;
        let p = Pipeline::parse(text, ".git-ci.toml").unwrap();
        assert_eq!(p.names(), ["lint", "test"]);
        let t = &p.jobs["test"];
        assert_eq!(t.spec.timeout, 1800);
        assert_eq!(t.spec.requires["os"], "linux");
        assert_eq!(t.spec.max_attempts, 2);
        assert!(!t.supersede);
        assert_eq!(t.tags, ["v*"]);
        assert!(t.spec.network);
        let l = &p.jobs["lint"];
        assert!(!l.spec.network);
        let doc = crate::model::Job::new(l.spec.clone(), "c", "t", "r", "s").to_json();
        assert!(!String::from_utf8(doc).unwrap().contains("network"), "old definitions keep their identity");
        assert_eq!((l.spec.queue.as_str(), l.spec.timeout, l.branches.clone()), ("default", 3600, None));
        assert!(l.supersede);
    }

    #[test]
    fn errors_point_at_line_and_field() {
        let cases = [
            ("[job.a]\nrun = \"x\"\nrn = 1\n", 3, "unknown field `rn`"),
            ("[job.a]\nrun = \"x\"\ntimeout = \"soon\"\n", 3, "invalid duration"),
            ("[job.a]\nqueue = \"x\"\n", 1, "missing field `run`"),
            ("[job.a]\nrun = \"x\"\nqueue = \"a/b\"\n", 3, "queue \"a/b\""),
            ("[job.\"a b\"]\nrun = \"x\"\n", 1, "job name \"a b\""),
            ("[job.a]\nrun = \"x\"\nmax_attempts = 0\n", 3, "at least 1"),
            ("[job.a\nrun = 1", 1, ""),
            ("[job.a]\nrun = \"x\"\ntimeout = \"500000000000y\"\n", 3, "the maximum is 7days"),
            ("[job.a]\nrun = \"x\"\n\ntimeout = \"8d\"\n", 4, "timeout \"8d\" is too long"),
            ("[job.a]\nrun = \"a\\u0000b\"\n", 2, "NUL"),
            ("[job.a]\nrun = \"x\"\nenv = { A = \"1\\u0000\" }\n", 3, "NUL"),
            (
                "[job.a]\nrun = \"x\"\nartifacts = [\"ok\", \"out/[z\"]\n",
                3,
                "artifacts: \"out/[z\" is not a valid glob",
            ),
            ("[job.a]\nrun = \"x\"\njunit = [\"a/[b\"]\n", 3, "junit"),
        ];
        for (text, line, needle) in cases {
            let e = Pipeline::parse(text, ".git-ci.toml").unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
            assert!(e.to_string().starts_with(".git-ci.toml:"), "{e}");
        }
    }

    #[test]
    fn an_empty_file_has_no_jobs() {
        assert!(Pipeline::parse("", "x").unwrap().jobs.is_empty());
    }
}
