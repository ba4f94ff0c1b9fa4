//! Where each page lives, relative to the site's top. Every user-named
//! part goes through [`slug`]; ids and commits are checked before they get
//! here. Pages are at most one folder deep, so `root` is `""` or `"../"`.

use crate::slug::slug;

pub fn job(id: &str) -> String {
    format!("jobs/{id}.html")
}

pub fn job_api(id: &str) -> String {
    format!("api/jobs/{id}.json")
}

/// The log as the job wrote it, escape codes and all.
pub fn log(id: &str) -> String {
    format!("logs/{id}.txt")
}

/// The log as plain text: escape codes (colours, cursor moves) taken out.
pub fn plain_log(id: &str) -> String {
    format!("logs/{id}.plain.txt")
}

pub fn commit(sha: &str) -> String {
    format!("commits/{sha}.html")
}

pub fn branch(key: &str) -> String {
    format!("branches/{}.html", slug(key))
}

pub fn branch_api(key: &str) -> String {
    format!("api/branches/{}.json", slug(key))
}

/// The runs of job `name` on a branch: two folders deep.
pub fn runs(key: &str, name: &str) -> String {
    format!("runs/{}/{}.html", slug(key), slug(name))
}

pub fn badge(key: &str) -> String {
    format!("badges/{}.svg", slug(key))
}

pub fn job_badge(key: &str, job: &str) -> String {
    format!("badges/{}/{}.svg", slug(key), slug(job))
}

/// Page `part` (from 1) of the jobs submitted on `day` (`YYYYMMDD`).
pub fn day(day: &str, part: usize) -> String {
    if part <= 1 { format!("days/{day}.html") } else { format!("days/{day}-{part}.html") }
}

pub fn artifact(id: &str, safe_path: &str) -> String {
    format!("artifacts/{id}/{safe_path}")
}
