//! Which jobs `submit` and `run` make: where the definition comes from
//! (each commit's `.git-ci.toml`, `--config`, `--config-from`, `--run`),
//! on which commits, with which parameters.

use clap::Args;
use std::collections::BTreeMap;
use std::path::Path;

use git_ci_core::Job;
use git_ci_core::model::{JobSpec, Matrix, NAME_LABEL};
use git_ci_core::pipeline::{FILE_NAME, MAX_JOBS, Pipeline, PipelineJob, SelectError};

use crate::cli::{parse_key_value, parse_timeout};
use crate::context;
use crate::error::{CliError, CliResult};

/// Where the jobs are defined, when not in each commit's own .git-ci.toml.
#[derive(Debug, Args, Clone, Default)]
pub struct DefinitionArgs {
    /// Take the jobs from this file of the working tree instead of each
    /// commit's .git-ci.toml (for history that has none, or to try a new
    /// definition before committing it).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["config_from", "run"], help_heading = "Job definition")]
    pub config: Option<std::path::PathBuf>,
    /// Take the jobs from .git-ci.toml as it is at REV (a branch, tag or
    /// commit) instead of each commit's own.
    #[arg(long, value_name = "REV", conflicts_with = "run", help_heading = "Job definition")]
    pub config_from: Option<String>,
    /// An ad-hoc shell script to run (with sh -e) instead of .git-ci.toml's
    /// jobs; its job is named `adhoc` unless --name says otherwise.
    #[arg(long, value_name = "SCRIPT", conflicts_with = "jobs", help_heading = "Job definition")]
    pub run: Option<String>,
    /// The ad-hoc job's name (--run only), so that its runs are listed and
    /// compared under a name that means something (`bench-parser`).
    #[arg(long, value_name = "NAME", requires = "run", help_heading = "Job definition")]
    pub name: Option<String>,
}

/// What `submit` changes in every job it queues.
#[derive(Debug, Args, Clone, Default)]
pub struct ParamArgs {
    /// The queue to put the jobs in, instead of their own.
    #[arg(long, value_name = "Q", help_heading = "Job parameters")]
    pub queue: Option<String>,
    /// A label the worker must have, added to the job's `requires`
    /// (repeatable; replaces the value of the same key).
    #[arg(long = "require", value_name = "K=V", value_parser = parse_key_value, help_heading = "Job parameters")]
    pub requires: Vec<(String, String)>,
    /// Aim the jobs at the worker of this name: no other worker takes them
    /// (the same as --require name=NAME: every worker has the label
    /// name=<its name>).
    #[arg(long, value_name = "NAME", help_heading = "Job parameters")]
    pub worker: Option<String>,
    /// An environment variable of the job's run, added to its `env`
    /// (repeatable; replaces the value of the same name).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_key_value, help_heading = "Job parameters")]
    pub env: Vec<(String, String)>,
    /// The jobs' timeout, instead of their own (e.g. 90s, 30m, 2h; at most 7 days).
    #[arg(long, value_name = "DUR", value_parser = parse_timeout, help_heading = "Job parameters")]
    pub timeout: Option<std::time::Duration>,
    /// Queue N runs of each job named with --job, or of every job without
    /// --job (the jobs they need run once), numbered #1..#N; `git ci
    /// status` and `git ci junit` give their pass rate. 1 to 1000.
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Job parameters")]
    pub repeat: u32,
    /// The jobs' priority, instead of their own (`priority` in
    /// .git-ci.toml, default 0): a worker takes the highest first, then the
    /// oldest. Negative numbers wait for everything else.
    #[arg(long, value_name = "N", allow_hyphen_values = true, help_heading = "Job parameters")]
    pub priority: Option<i32>,
    /// Files the ad-hoc job keeps as artifacts (a glob, repeatable; --run
    /// only: a job of .git-ci.toml lists its own).
    #[arg(long = "artifacts", value_name = "GLOB", help_heading = "Job parameters")]
    pub artifacts: Vec<String>,
    /// JUnit XML files the ad-hoc job writes (a glob, repeatable; --run only).
    #[arg(long = "junit", value_name = "GLOB", help_heading = "Job parameters")]
    pub junit: Vec<String>,
}

/// Where the jobs are defined.
pub enum Source {
    /// Each commit's own `.git-ci.toml`.
    EachCommit,
    /// One definition for every commit; `from` is what `Job::config_from`
    /// records (`None` for an ad-hoc job: the command line is the definition).
    Fixed { pipeline: Pipeline, from: Option<String> },
}

impl Source {
    /// Reads `--config` or `--config-from`, or makes the ad-hoc job of
    /// `--run` (with `--artifacts` and `--junit`).
    pub fn new(repo: &gix::Repository, def: &DefinitionArgs, params: &ParamArgs) -> CliResult<Source> {
        if def.run.is_none() {
            for (flag, given) in [("--artifacts", &params.artifacts), ("--junit", &params.junit)] {
                if !given.is_empty() {
                    return Err(CliError::usage_hint(
                        format!("{flag} applies to an ad-hoc job (--run) only"),
                        format!("a job of {FILE_NAME} lists its own `{}` in the file", &flag[2..]),
                    ));
                }
            }
        }
        if let Some(script) = &def.run {
            let mut spec = JobSpec::ad_hoc(script);
            if let Some(name) = &def.name {
                git_ci_core::refs::check_component("--name", name).map_err(CliError::usage)?;
                spec.name = name.clone();
            }
            spec.artifacts = params.artifacts.clone();
            spec.junit = params.junit.clone();
            return Ok(Source::Fixed { pipeline: ad_hoc(spec), from: None });
        }
        if let Some(path) = &def.config {
            return from_path(repo, path);
        }
        if let Some(rev) = &def.config_from {
            let (commit, _) = context::resolve_commit(repo, rev)?;
            let pipeline = Pipeline::at_commit(repo, commit)?.ok_or_else(|| {
                CliError::usage_hint(
                    format!("--config-from {rev}: commit {} has no {FILE_NAME}", commit.to_hex_with_len(10)),
                    "name a commit or branch that has one (e.g. --config-from main), or a file with --config",
                )
            })?;
            return Ok(Source::Fixed { pipeline, from: Some(format!("rev:{commit}:{FILE_NAME}")) });
        }
        Ok(Source::EachCommit)
    }
}

/// A pipeline of one job, so that an ad-hoc job repeats like any other.
fn ad_hoc(spec: JobSpec) -> Pipeline {
    let job = PipelineJob {
        spec,
        branches: None,
        tags: vec![],
        supersede: true,
        needs: vec![],
        matrix: vec![],
        schedule: None,
    };
    Pipeline { jobs: BTreeMap::from([(job.spec.name.clone(), job)]) }
}

/// `--config PATH`: recorded relative to the top of the working tree when
/// inside it, so that the record means the same on every clone.
fn from_path(repo: &gix::Repository, path: &Path) -> CliResult<Source> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("could not read --config {}: {e}", path.display())))?;
    let pipeline = Pipeline::parse(&text, &path.display().to_string())?;
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let top = std::fs::canonicalize(context::repo_dir(repo)).ok();
    let shown = top.and_then(|t| absolute.strip_prefix(t).ok().map(Path::to_path_buf)).unwrap_or(absolute);
    Ok(Source::Fixed { pipeline, from: Some(format!("path:{}", shown.display())) })
}

/// What a submission asks for, besides its source and commits.
pub struct Request<'a> {
    pub wanted: &'a [String],
    pub repeat: u32,
    pub params: &'a ParamArgs,
    pub git_ref: &'a str,
    pub by: &'a str,
}

/// Every job of the submission, commit by commit in the order given
/// (oldest first), each in the order its needs ask for.
pub fn jobs(
    repo: &gix::Repository,
    source: &Source,
    commits: &[(gix::ObjectId, gix::ObjectId)],
    req: &Request,
) -> CliResult<Vec<Job>> {
    let mut all = Vec::new();
    // Which repository the jobs come from, for hubs that serve several.
    let project = git_ci_core::project::of_repo(repo, true).unwrap_or_default();
    for &(commit, tree) in commits {
        let own;
        let (pipeline, from) = match source {
            Source::Fixed { pipeline, from } => (pipeline, from.clone()),
            Source::EachCommit => {
                own = Pipeline::at_commit(repo, commit)?.ok_or_else(|| no_file(commit, commits.len() > 1))?;
                (&own, None)
            }
        };
        check_params(pipeline, req)?;
        let (commit_hex, tree_hex) = (commit.to_string(), tree.to_string());
        let bind = |spec: JobSpec| {
            let mut job = Job::unsealed(apply(req.params, spec), &commit_hex, &tree_hex, req.git_ref, req.by);
            job.config_from = from.clone();
            job.project = project.clone();
            job
        };
        let jobs = pipeline.jobs(req.wanted, req.repeat, &bind)?;
        if jobs.is_empty() {
            let at = commit.to_hex_with_len(10);
            return Err(CliError::usage_hint(
                format!("{FILE_NAME} at {at} defines no jobs to run"),
                "add a [job.NAME] table with `run = \"...\"` (a job with only a `schedule` runs when named with --job)",
            ));
        }
        all.extend(jobs);
        if all.len() > MAX_JOBS {
            return Err(SelectError::TooMany(all.len()).into());
        }
    }
    for job in &all {
        // The rules every definition follows, the flags' values too.
        job.spec.check().map_err(|e| CliError::usage(format!("{}: {e}", job.label())))?;
    }
    Ok(all)
}

fn no_file(commit: gix::ObjectId, range: bool) -> CliError {
    let at = commit.to_hex_with_len(10);
    let hint = if range {
        "for history from before .git-ci.toml, take today's jobs with --config-from main (or --config FILE)"
    } else {
        "add a .git-ci.toml with a [job.NAME] table and `run = \"...\"`, take the jobs from elsewhere with \
         --config-from REV or --config FILE, or give an ad-hoc job with --run"
    };
    CliError::usage_hint(format!("commit {at} has no {FILE_NAME}"), hint)
}

/// `--env`, `--require`, `--queue`, `--timeout`, `--priority` over the file's values.
fn apply(params: &ParamArgs, mut spec: JobSpec) -> JobSpec {
    if let Some(q) = &params.queue {
        spec.queue = q.clone();
    }
    spec.requires.extend(params.requires.iter().cloned());
    if let Some(w) = &params.worker {
        spec.requires.insert(NAME_LABEL.to_owned(), w.clone());
    }
    spec.env.extend(params.env.iter().cloned());
    if let Some(t) = params.timeout {
        spec.timeout = t.as_secs().max(1);
    }
    if let Some(p) = params.priority {
        spec.priority = p;
    }
    spec
}

/// Refuses what the flags cannot do to these jobs, rather than queue
/// something other than what was asked.
fn check_params(pipeline: &Pipeline, req: &Request) -> CliResult {
    if let Some(q) = &req.params.queue {
        git_ci_core::refs::check_component("queue", q).map_err(CliError::usage)?;
    }
    if let Some(w) = &req.params.worker {
        git_ci_core::refs::check_component("--worker", w).map_err(CliError::usage)?;
        if let Some((_, other)) = req.params.requires.iter().find(|(k, v)| k == NAME_LABEL && v != w) {
            return Err(CliError::usage(format!(
                "--worker {w} contradicts --require {NAME_LABEL}={other}: a job is aimed at one worker"
            )));
        }
    }
    for job in pipeline.select(req.wanted)? {
        let keys = job.matrix.iter().flat_map(Matrix::iter).map(|(k, _)| k);
        for key in keys {
            if req.params.env.iter().any(|(k, _)| k == key) {
                return Err(CliError::usage_hint(
                    format!("--env {key}=...: {key} is a matrix variable of job {:?}", job.spec.name),
                    format!("each combination of its matrix sets {key}; change its values in {FILE_NAME}"),
                ));
            }
        }
    }
    Ok(())
}
