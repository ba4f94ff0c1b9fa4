//! What the site shows of a commit besides its id: subject, author, date.
//! Read from the hub's object store (or, for a remote hub, the cache with
//! the user's clone as an alternate); a commit that is not there shows its
//! id alone.

use std::collections::HashMap;

use gix::ObjectId;
use serde::{Deserialize, Serialize};

use super::row::Row;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommitInfo {
    pub subject: String,
    pub author: String,
    /// RFC 3339.
    pub time: String,
    /// `false`: the commit was not in the object store when last looked for.
    pub found: bool,
    /// The first parent's id, `""` for a root commit.
    pub parent: String,
}

/// Looks up the commits of `rows` that `known` lacks. A commit missing
/// once is not looked for again until the next full build.
pub fn update(repo: &gix::Repository, known: &mut HashMap<String, CommitInfo>, rows: &[Row]) {
    for row in rows {
        if !row.commit.is_empty() && !known.contains_key(&row.commit) {
            known.insert(row.commit.clone(), read(repo, &row.commit));
        }
    }
}

fn read(repo: &gix::Repository, sha: &str) -> CommitInfo {
    let Some(commit) = ObjectId::from_hex(sha.as_bytes()).ok().and_then(|id| repo.find_commit(id).ok()) else {
        return CommitInfo::default();
    };
    let subject = commit.message().map(|m| m.summary().to_string()).unwrap_or_default();
    let author = commit.author().map(|a| a.name.to_string()).unwrap_or_default();
    let time = commit
        .time()
        .ok()
        .and_then(|t| u64::try_from(t.seconds).ok())
        .map(|s| git_ci_core::time::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s)))
        .unwrap_or_default();
    let parent = commit.parent_ids().next().map(|p| p.to_string()).unwrap_or_default();
    CommitInfo { subject: cap(subject, 300), author: cap(author, 100), time, found: true, parent }
}

fn cap(s: String, max: usize) -> String {
    if s.chars().count() <= max { s } else { s.chars().take(max).chain(['…']).collect() }
}
