//! The runs of a repeated job (`git ci submit --repeat N`) read as one: a
//! soak asks "how often does it pass, and which runs failed?", which a
//! hundred lines of the same name do not answer.

use std::collections::HashMap;

use git_ci_core::state::{JobView, State};
use git_ci_core::{Job, Status};

/// A job on its own, or the runs of one repeated job of one submission.
pub enum Entry<'a> {
    One(&'a JobView),
    Runs(Runs<'a>),
}

pub struct Runs<'a> {
    /// As found; [`Runs::failing_first`] orders them for reading.
    pub runs: Vec<&'a JobView>,
    /// How many runs were queued (some may not be among the views).
    pub count: u32,
}

/// Groups the runs of each repeated job where its first run appears; other
/// jobs stay as they are. Two submissions of the same repeated job on the
/// same commit stay apart: a run whose number the group already holds
/// starts another group.
pub fn group(views: &[JobView]) -> Vec<Entry<'_>> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut open: HashMap<(String, String, u32, String), Vec<usize>> = HashMap::new();
    for v in views {
        let Some((job, repeat)) = v.job.as_ref().and_then(|j| j.repeat.map(|r| (j, r))) else {
            entries.push(Entry::One(v));
            continue;
        };
        let key = (job.commit.clone(), job.spec.label(), repeat.count, job.submitted_by.clone());
        let slots = open.entry(key).or_default();
        let has_room = |e: &Entry| match e {
            Entry::Runs(g) => g.runs.iter().all(|r| run_index(r) != Some(repeat.index)),
            Entry::One(_) => false,
        };
        match slots.iter().copied().find(|&i| has_room(&entries[i])) {
            Some(i) => {
                if let Entry::Runs(g) = &mut entries[i] {
                    g.runs.push(v);
                }
            }
            None => {
                slots.push(entries.len());
                entries.push(Entry::Runs(Runs { runs: vec![v], count: repeat.count }));
            }
        }
    }
    entries
}

fn run_index(v: &JobView) -> Option<u32> {
    v.job.as_ref().and_then(|j| j.repeat).map(|r| r.index)
}

fn failed(v: &JobView) -> bool {
    v.state.is_finished() && v.state != State::Finished(Status::Passed)
}

impl<'a> Runs<'a> {
    pub fn job(&self) -> &'a Job {
        self.runs[0].job.as_ref().expect("grouped by their job")
    }

    /// Failed runs first, then those still pending or running, then the
    /// passes; by run number within each.
    pub fn failing_first(&self) -> Vec<&'a JobView> {
        let mut runs = self.runs.clone();
        runs.sort_by_key(|v| {
            (
                if failed(v) {
                    0
                } else if v.state.is_finished() {
                    2
                } else {
                    1
                },
                run_index(v),
            )
        });
        runs
    }

    /// `test (db=pg) ×20 at 1c2d3e4f5a (main)`.
    pub fn title(&self) -> String {
        let job = self.job();
        let on = if job.branch().is_empty() { String::new() } else { format!(" ({})", job.branch()) };
        format!("{} ×{} at {}{on}", job.spec.label(), self.count, job.short_commit())
    }

    /// `17/20 passed (85%), failed: #3, #9, #14`.
    pub fn summary(&self) -> String {
        let total = self.runs.len();
        let finished = self.runs.iter().filter(|v| v.state.is_finished()).count();
        let passed = self.runs.iter().filter(|v| v.state == State::Finished(Status::Passed)).count();
        let mut s = format!("{passed}/{total} passed");
        // Of the finished runs: a soak half done already says how it goes.
        match (passed * 100).checked_div(finished) {
            Some(pct) if finished == total => s.push_str(&format!(" ({pct}%)")),
            Some(pct) => s.push_str(&format!(" ({pct}% of {finished} finished), {} to go", total - finished)),
            None => s.push_str(&format!(", {total} to go")),
        }
        let failing: Vec<String> = self
            .failing_first()
            .into_iter()
            .take_while(|v| failed(v))
            .filter_map(run_index)
            .map(|i| format!("#{i}"))
            .collect();
        if !failing.is_empty() {
            const SHOWN: usize = 12;
            let more = if failing.len() > SHOWN { format!(" and {} more", failing.len() - SHOWN) } else { "".into() };
            s.push_str(&format!(", failed: {}{more}", failing[..failing.len().min(SHOWN)].join(", ")));
        }
        if (total as u64) < u64::from(self.count) {
            s.push_str(&format!("; {} of the {} runs not listed", self.count as usize - total, self.count));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use git_ci_core::model::{JobSpec, Repeat};

    use super::*;

    fn run(index: u32, count: u32, state: State) -> JobView {
        let mut job = Job::unsealed(JobSpec::ad_hoc("true"), &"a".repeat(40), &"b".repeat(40), "refs/heads/main", "me");
        job.repeat = Some(Repeat { index, count });
        let job = job.sealed();
        JobView {
            id: job.id.clone(),
            job: Some(job),
            state,
            result: None,
            claim: None,
            located: None,
            waiting_for: vec![],
            parked: false,
        }
    }

    const PASSED: State = State::Finished(Status::Passed);
    const FAILED: State = State::Finished(Status::Failed);

    #[test]
    fn runs_read_as_one_with_the_failing_first() {
        let views = vec![run(1, 4, PASSED), run(2, 4, FAILED), run(3, 4, State::Running), run(4, 4, FAILED)];
        let entries = group(&views);
        let [Entry::Runs(runs)] = &entries[..] else { panic!("one group") };
        assert_eq!(runs.title(), "adhoc ×4 at aaaaaaaaaa (main)");
        assert_eq!(runs.summary(), "1/4 passed (33% of 3 finished), 1 to go, failed: #2, #4");
        let order: Vec<u32> = runs.failing_first().iter().filter_map(|v| run_index(v)).collect();
        assert_eq!(order, [2, 4, 3, 1]);
    }

    #[test]
    fn two_submissions_of_one_job_stay_apart() {
        let views = vec![run(1, 2, PASSED), run(2, 2, PASSED), run(1, 2, FAILED), run(2, 2, PASSED)];
        let summaries: Vec<String> = group(&views)
            .iter()
            .map(|e| match e {
                Entry::Runs(r) => r.summary(),
                Entry::One(_) => "one".into(),
            })
            .collect();
        assert_eq!(summaries, ["2/2 passed (100%)", "1/2 passed (50%), failed: #1"]);
    }

    #[test]
    fn runs_not_given_are_counted_as_such() {
        let views = vec![run(3, 10, PASSED)];
        let [Entry::Runs(runs)] = &group(&views)[..] else { panic!("one group") };
        assert_eq!(runs.summary(), "1/1 passed (100%); 9 of the 10 runs not listed");
    }
}
