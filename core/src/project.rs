//! Which project a job belongs to, when one hub serves several
//! repositories: the name recorded in `job.json`'s `project`.
//!
//! A clone's project is `git config ci.project`, else the last part of its
//! `origin` URL without `.git` (`git@host:team/app.git` is `app`), else the
//! name of its directory. A branch pushed to the hub itself is the hub's
//! project: `ci.project` in the hub's config, else the hub's directory
//! name without `.git`. So a clone of the hub and the hub agree.

use std::path::Path;

/// `raw` made a valid project name (see [`crate::refs::check_component`]):
/// characters outside letters, digits, `.`, `_` and `-` become `-`, and
/// at most 64 are kept. `None` when nothing usable is left.
pub fn sanitize(raw: &str) -> Option<String> {
    let clean: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' })
        .take(64)
        .collect();
    let clean = clean.trim_start_matches(['.', '-']).trim_end_matches(".lock").to_owned();
    let clean = clean.replace("..", ".");
    crate::refs::check_component("project", &clean).is_ok().then_some(clean)
}

/// The project named by a repository URL or path: its last part, without
/// `.git` (and without a trailing `/.git` of a non-bare repository).
pub fn from_url(url: &str) -> Option<String> {
    let trimmed = url.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/.git").unwrap_or(trimmed);
    let last = trimmed.rsplit(['/', ':', '\\']).find(|s| !s.is_empty())?;
    sanitize(last.strip_suffix(".git").unwrap_or(last))
}

/// The project of a repository: `ci.project` in its config, else
/// `origin`'s name (when `use_origin`), else its directory's name.
pub fn of_repo(repo: &gix::Repository, use_origin: bool) -> Option<String> {
    let config = repo.config_snapshot();
    if let Some(name) = config.string("ci.project") {
        return sanitize(&name.to_string());
    }
    if use_origin
        && let Some(url) = config.string("remote.origin.url")
        && let Some(name) = from_url(&url.to_string())
    {
        return Some(name);
    }
    let dir = repo.workdir().unwrap_or_else(|| repo.git_dir());
    from_url(&dir.display().to_string()).or_else(|| from_url(&canonical(dir)))
}

/// The hub's own project, for jobs its branch pushes and schedules queue:
/// [`of_repo`] of a hub on this machine (its `ci.project`, else its
/// directory's name), else the name in its URL.
pub fn of_hub(hub: &dyn crate::Hub) -> String {
    let name = if hub.watch_path().is_some() { of_repo(&hub.repo(), false) } else { from_url(hub.url()) };
    name.unwrap_or_default()
}

fn canonical(dir: &Path) -> String {
    dir.canonicalize().map(|p| p.display().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_part_of_a_url_without_git() {
        for (url, want) in [
            ("git@github.com:team/app.git", "app"),
            ("https://example.com/team/app", "app"),
            ("https://example.com/team/app.git/", "app"),
            ("/srv/ci-hub.git", "ci-hub"),
            ("/home/me/app/.git", "app"),
            ("git://h/my%20lib.git", "my-20lib"),
        ] {
            assert_eq!(from_url(url).as_deref(), Some(want), "{url}");
        }
        assert_eq!(from_url("/"), None);
        assert_eq!(sanitize("..."), None);
        assert_eq!(sanitize("a b").as_deref(), Some("a-b"));
    }
}
