//! What a commit page says above everything else: the names of its failing
//! tests, from the JUnit files of its jobs, each linked to the failure on
//! its job's page (issue 17, "beyond the peers").

use git_ci_core::junit::Outcome;
use serde::Serialize;

use super::{Build, paths};
use crate::error::SiteError;
use crate::junit;
use crate::model::{JobDir, Row};

/// Failing tests a commit page lists; the rest are counted.
const MAX_LISTED: usize = 100;

#[derive(Serialize)]
pub struct FailingTests<'a> {
    pub tests: Vec<FailingTest<'a>>,
    /// Failing tests past [`MAX_LISTED`], not listed.
    pub more: usize,
}

#[derive(Serialize)]
pub struct FailingTest<'a> {
    pub suite: String,
    pub class: String,
    pub name: String,
    /// The job it failed in: its label, and its branch.
    pub job: &'a str,
    pub branch: &'a str,
    /// The failure on the job's page: `jobs/<id>.html#failure-<n>`.
    pub href: String,
}

/// The anchor of the `n`th (from 1) failing case on a job's page, which
/// lists failures first, in [`junit::parse`]'s order; `job.html` writes
/// the same ids (`failure-{{ loop.index }}`).
pub fn anchor(n: usize) -> String {
    format!("failure-{n}")
}

/// The failing tests of `rows` (one commit's jobs). Only a job's latest
/// attempt counts (a retry that passed supersedes its failures), and only
/// jobs whose result counts failed tests are read: the others cost nothing.
pub fn failing_tests<'a>(b: &'a Build<'a>, rows: &[&'a Row]) -> Result<FailingTests<'a>, SiteError> {
    let mut out = FailingTests { tests: Vec::new(), more: 0 };
    // A handle on the object store only for a commit with failures: most
    // commit pages (and a full build's cost) need none.
    let mut repo = None;
    for row in rows.iter().copied().filter(|r| has_failures(r) && is_latest(b, r)) {
        let repo = repo.get_or_insert_with(|| b.repo());
        let Some(dir) = row.dir() else { continue };
        let files = match b.data.read.get(&row.id) {
            Some(known) => known.junit(repo)?,
            None => JobDir::read(repo, dir)?.junit(repo)?,
        };
        let report = junit::parse(&files);
        let failed = report.cases.into_iter().take_while(|c| matches!(c.outcome, Outcome::Failed | Outcome::Error));
        for (i, case) in failed.enumerate() {
            if out.tests.len() == MAX_LISTED {
                out.more += 1;
                continue;
            }
            out.tests.push(FailingTest {
                suite: case.suite,
                class: case.class,
                name: case.name,
                job: row.label.as_str(),
                branch: row.branch(),
                href: format!("{}#{}", paths::job(row.id.as_str()), anchor(i + 1)),
            });
        }
    }
    Ok(out)
}

/// Whether no newer attempt at `row`'s work (its commit, ref and label) exists.
fn is_latest(b: &Build, row: &Row) -> bool {
    b.groups.attempts(row).first().is_some_and(|a| std::ptr::eq(*a, row))
}

fn has_failures(row: &Row) -> bool {
    !row.is_live() && row.tests.is_some_and(|t| t.failed > 0)
}
