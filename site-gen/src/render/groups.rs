//! The rows grouped the ways pages list them, computed once per build.
//! Every list keeps the rows' order: newest first.

use std::collections::{BTreeMap, HashMap};

use crate::model::{Data, Row};

pub struct Groups<'a> {
    pub by_commit: HashMap<&'a str, Vec<&'a Row>>,
    /// By branch key ([`Row::branch`]); rows without a ref are left out.
    pub by_branch: HashMap<&'a str, Vec<&'a Row>>,
    /// Branch keys, most recently active first.
    pub branches: Vec<&'a str>,
    /// By day of submission (`YYYYMMDD`, the job id's prefix).
    pub by_day: BTreeMap<&'a str, Vec<&'a Row>>,
    /// Attempts at the same work: one commit, ref and job name.
    pub by_work: HashMap<(&'a str, &'a str, &'a str), Vec<&'a Row>>,
}

impl<'a> Groups<'a> {
    pub fn new(data: &'a Data) -> Groups<'a> {
        let mut g = Groups {
            by_commit: HashMap::new(),
            by_branch: HashMap::new(),
            branches: Vec::new(),
            by_day: BTreeMap::new(),
            by_work: HashMap::new(),
        };
        for row in &data.rows {
            if !row.commit.is_empty() {
                g.by_commit.entry(&row.commit).or_default().push(row);
            }
            if !row.git_ref.is_empty() {
                let list = g.by_branch.entry(row.branch()).or_default();
                if list.is_empty() {
                    g.branches.push(row.branch());
                }
                list.push(row);
            }
            g.by_day.entry(row.id.day()).or_default().push(row);
            g.by_work.entry((&row.commit, &row.git_ref, &row.name)).or_default().push(row);
        }
        g
    }

    /// The attempts at `row`'s work (with `row`), newest first.
    pub fn attempts(&self, row: &'a Row) -> &[&'a Row] {
        self.by_work.get(&(row.commit.as_str(), row.git_ref.as_str(), row.name.as_str())).map_or(&[], Vec::as_slice)
    }

    /// The latest row of each job name on a branch, by name (jobs whose
    /// document is unreadable have no name, and are left out).
    pub fn latest_by_name(&self, branch: &str) -> BTreeMap<&'a str, &'a Row> {
        let mut latest = BTreeMap::new();
        for row in self.by_branch.get(branch).into_iter().flatten().filter(|r| !r.name.is_empty()) {
            latest.entry(row.name.as_str()).or_insert(*row);
        }
        latest
    }
}
