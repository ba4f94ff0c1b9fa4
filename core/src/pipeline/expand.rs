//! `needs`: which jobs a selection brings along, in what order, and the job
//! documents that name each other ([`crate::needs`] runs them).

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::{FILE_NAME, Pipeline, PipelineJob};
use crate::model::{Job, JobSpec, Need, Repeat};

/// Checks every `needs` of a parsed file: known names, no job needing
/// itself, no cycle. The error carries the offset of the offending entry.
pub(super) fn check_needs(
    jobs: &BTreeMap<String, PipelineJob>,
    needs: &BTreeMap<String, Vec<Spanned<String>>>,
) -> Result<(), (usize, String)> {
    let defined = || jobs.keys().map(String::as_str).collect::<Vec<_>>().join(", ");
    for (name, edges) in needs {
        for edge in edges {
            let need = edge.get_ref();
            if need == name {
                return Err((edge.span().start, format!("job {name:?} needs itself")));
            }
            if !jobs.contains_key(need) {
                return Err((
                    edge.span().start,
                    format!(
                        "needs: no job named {need:?} in {FILE_NAME} (defined: {}); a job can only need jobs of the same file",
                        defined()
                    ),
                ));
            }
        }
    }
    // Depth-first, keeping the path: the edge that reaches a job on the
    // path closes a cycle, and the path names it.
    fn visit<'a>(
        name: &'a str,
        needs: &'a BTreeMap<String, Vec<Spanned<String>>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Result<(), (usize, String)> {
        if done.contains(name) {
            return Ok(());
        }
        path.push(name);
        for edge in needs.get(name).into_iter().flatten() {
            let next = edge.get_ref().as_str();
            if let Some(start) = path.iter().position(|p| *p == next) {
                let mut cycle: Vec<&str> = path[start..].to_vec();
                cycle.push(next);
                return Err((edge.span().start, format!("needs form a cycle: {}", cycle.join(" → "))));
            }
            visit(next, needs, path, done)?;
        }
        path.pop();
        done.insert(name);
        Ok(())
    }
    let mut done = BTreeSet::new();
    for name in needs.keys() {
        visit(name, needs, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error(transparent)]
    Unknown(#[from] super::UnknownJob),
    #[error("--repeat {0} is out of range: repeat a job 1 to {max} times", max = MAX_REPEAT)]
    Repeat(u32),
    #[error("this selection makes {0} jobs, over the limit of {max} per submission", max = MAX_JOBS)]
    TooMany(usize),
}

/// The most runs `--repeat` queues of one job.
pub const MAX_REPEAT: u32 = 1000;
/// The most jobs one submission queues (one push).
pub const MAX_JOBS: usize = 5000;

impl PipelineJob {
    /// A job with a `schedule` and no `branches` or `tags` runs only on
    /// its schedule (or when named).
    pub fn scheduled_only(&self) -> bool {
        self.schedule.is_some() && self.branches.is_none() && self.tags.is_empty()
    }
}

impl Pipeline {
    /// The jobs named in `wanted` (all but the scheduled-only ones when
    /// empty) and every job they need, transitively, each after what it
    /// needs.
    pub fn select(&self, wanted: &[String]) -> Result<Vec<&PipelineJob>, super::UnknownJob> {
        let roots: Vec<&str> = if wanted.is_empty() {
            self.jobs.values().filter(|j| !j.scheduled_only()).map(|j| j.spec.name.as_str()).collect()
        } else {
            let mut roots = Vec::new();
            for name in wanted {
                if !self.jobs.contains_key(name) {
                    return Err(super::UnknownJob { name: name.clone(), defined: self.names().join(", ") });
                }
                roots.push(name.as_str());
            }
            roots
        };
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for root in roots {
            self.post_order(root, &mut seen, &mut order);
        }
        Ok(order)
    }

    fn post_order<'a>(&'a self, name: &str, seen: &mut BTreeSet<String>, order: &mut Vec<&'a PipelineJob>) {
        if !seen.insert(name.to_owned()) {
            return;
        }
        let job = &self.jobs[name];
        for need in &job.needs {
            self.post_order(need, seen, order);
        }
        order.push(job);
    }

    /// The job documents of [`Pipeline::select`]: one per matrix
    /// combination, `repeat` times each for the jobs named in `wanted`
    /// (all when empty), each naming the ids of the jobs it needs.
    /// `bind` makes an unsealed job of a spec ([`Job::unsealed`]); it may
    /// change the spec on the way.
    pub fn jobs(&self, wanted: &[String], repeat: u32, bind: &dyn Fn(JobSpec) -> Job) -> Result<Vec<Job>, SelectError> {
        if !(1..=MAX_REPEAT).contains(&repeat) {
            return Err(SelectError::Repeat(repeat));
        }
        let selected = self.select(wanted)?;
        let count: usize = selected
            .iter()
            .map(|j| {
                let runs = if wanted.is_empty() || wanted.contains(&j.spec.name) { repeat as usize } else { 1 };
                j.matrix.len().max(1) * runs
            })
            .sum();
        if count > MAX_JOBS {
            return Err(SelectError::TooMany(count));
        }
        let names: BTreeSet<&str> = selected.iter().map(|j| j.spec.name.as_str()).collect();
        let mut made: BTreeMap<&str, Vec<Need>> = BTreeMap::new();
        let mut jobs = Vec::with_capacity(count);
        for pj in selected {
            let name = pj.spec.name.as_str();
            let runs = if wanted.is_empty() || wanted.iter().any(|w| w == name) { repeat } else { 1 };
            let needs: Vec<Need> =
                pj.needs.iter().flat_map(|n| made.get(n.as_str()).cloned().unwrap_or_default()).collect();
            let needed_by: Vec<String> = self
                .jobs
                .values()
                .filter(|j| names.contains(j.spec.name.as_str()) && j.needs.iter().any(|n| n == name))
                .map(|j| j.spec.name.clone())
                .collect();
            let combos = if pj.matrix.is_empty() { vec![Default::default()] } else { pj.matrix.clone() };
            let mut mine = Vec::new();
            for combo in combos {
                for index in 1..=runs {
                    let mut spec = pj.spec.clone();
                    spec.matrix = combo.clone();
                    let mut job = bind(spec);
                    job.needs = needs.clone();
                    job.needed_by = needed_by.clone();
                    job.repeat = (runs > 1).then_some(Repeat { index, count: runs });
                    let job = job.sealed();
                    mine.push(Need { id: job.id.clone(), label: job.label() });
                    jobs.push(job);
                }
            }
            made.insert(name, mine);
        }
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[job.build]
run = "make"
artifacts = ["dist/**"]

[job.test]
needs = ["build"]
matrix = { python = ["3.11", "3.12"], db = ["sqlite", "postgres"] }
run = "tox -e py$python-$db"

[job.deploy]
needs = ["test"]
branches = ["main"]
run = "deploy"

[job.nightly]
schedule = "0 3 * * *"
run = "long"
"#;

    fn bind(spec: JobSpec) -> Job {
        Job::unsealed(spec, &"a".repeat(40), &"b".repeat(40), "refs/heads/main", "me")
    }

    #[test]
    fn a_pipeline_expands_in_order_with_its_needs() {
        let p = Pipeline::parse(FILE, FILE_NAME).unwrap();
        let jobs = p.jobs(&[], 1, &bind).unwrap();
        let labels: Vec<String> = jobs.iter().map(Job::label).collect();
        assert_eq!(
            labels,
            [
                "build",
                "test (python=3.11, db=sqlite)",
                "test (python=3.11, db=postgres)",
                "test (python=3.12, db=sqlite)",
                "test (python=3.12, db=postgres)",
                "deploy"
            ]
        );
        assert_eq!(jobs[0].needed_by, ["test"]);
        assert!(jobs[1..5].iter().all(|t| t.needs.len() == 1 && t.needs[0].id == jobs[0].id));
        let deploy = &jobs[5];
        assert_eq!(
            deploy.needs.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
            jobs[1..5].iter().map(|j| j.id.clone()).collect::<Vec<_>>()
        );
        assert_eq!(jobs[2].spec.matrix.get("db"), Some("postgres"));
        // Ids sort in the order made, so the queue runs build first.
        assert!(jobs.windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn naming_a_job_brings_what_it_needs_and_repeats_only_it() {
        let p = Pipeline::parse(FILE, FILE_NAME).unwrap();
        let jobs = p.jobs(&["deploy".into()], 3, &bind).unwrap();
        assert_eq!(jobs.len(), 1 + 4 + 3);
        assert_eq!(jobs[7].label(), "deploy #3");
        assert!(jobs[..5].iter().all(|j| j.repeat.is_none()));
        let nightly = p.jobs(&["nightly".into()], 1, &bind).unwrap();
        assert_eq!(nightly.len(), 1);
        assert!(matches!(p.jobs(&[], 0, &bind), Err(SelectError::Repeat(0))));
    }

    #[test]
    fn bad_needs_point_at_their_line() {
        let cases = [
            ("[job.a]\nrun = \"x\"\nneeds = [\"b\"]\n", 3, "no job named \"b\""),
            ("[job.a]\nrun = \"x\"\nneeds = [\"a\"]\n", 3, "needs itself"),
            ("[job.a]\nrun = \"x\"\nneeds = [\"b\"]\n[job.b]\nrun = \"y\"\nneeds = [\"a\"]\n", 6, "cycle: a → b → a"),
            ("[job.a]\nrun = \"x\"\nneeds = \"b\"\n", 3, "invalid type"),
            ("[job.a]\nrun = \"x\"\nmatrix = { v = [] }\n", 3, "empty"),
            ("[job.a]\nrun = \"x\"\nmatrix = { v = [3.10] }\n", 3, "quote it"),
            ("[job.a]\nrun = \"x\"\nmatrix = { \"a b\" = [\"1\"] }\n", 3, "matrix"),
            ("[job.a]\nrun = \"x\"\nmatrix = { v = [\"1\"], exclude = [{ v = \"1\" }] }\n", 3, "leaves no"),
            (
                "[job.a]\nrun = \"x\"\nmatrix = { a = [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\"], b = [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\"], c = [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"] }\n",
                3,
                "over the limit",
            ),
        ];
        for (text, line, needle) in cases {
            let e = Pipeline::parse(text, FILE_NAME).expect_err(text);
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
    }
}
