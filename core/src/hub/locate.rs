//! Which hub a command talks to (DESIGN.md, "Commands"): `--hub`, else git
//! config `ci.hub`, else `$GIT_CI_HUB`, else the remote `origin`, else the
//! current repository itself.

use std::path::{Path, PathBuf};

/// Where a hub lives, before it is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubLocation {
    /// A repository on this machine, used in-process through gix.
    Path(PathBuf),
    /// Anything git can push to: `git://`, `ssh://`, `https://`, `file://`,
    /// `host:path`. `file://` deliberately goes through `git` like any
    /// remote, which is how a hub on a shared filesystem is used safely.
    Url(String),
}

impl HubLocation {
    /// Classifies what the user wrote; relative paths are taken from `base`.
    pub fn parse(s: &str, base: &Path) -> HubLocation {
        let is_url = s.contains("://") || scp_like(s);
        if is_url { HubLocation::Url(s.to_owned()) } else { HubLocation::Path(base.join(s)) }
    }

    /// For messages: a password in a URL is masked.
    pub fn display(&self) -> String {
        match self {
            HubLocation::Path(p) => p.display().to_string(),
            HubLocation::Url(u) => super::redact(u).into_owned(),
        }
    }
}

/// `user@host:path` or `host:path` (git's scp syntax), but not `C:\x` or `./a:b`.
fn scp_like(s: &str) -> bool {
    match s.split_once(':') {
        Some((host, _)) => !host.is_empty() && host.len() > 1 && !host.contains('/'),
        None => false,
    }
}

/// Resolves the hub for a command run in `repo` (the user's repository, if any).
///
/// Returns the location and where it came from, for `git ci doctor` and for
/// error messages that must tell the user what to change.
pub fn locate(flag: Option<&str>, repo: Option<&gix::Repository>) -> Option<(HubLocation, &'static str)> {
    let base = repo
        .and_then(|r| r.workdir().map(Path::to_path_buf).or_else(|| Some(r.git_dir().to_path_buf())))
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_default();
    if let Some(f) = flag {
        return Some((HubLocation::parse(f, &std::env::current_dir().unwrap_or(base)), "--hub"));
    }
    let config = repo.map(|r| r.config_snapshot());
    if let Some(v) = config.as_ref().and_then(|c| c.string("ci.hub")) {
        return Some((HubLocation::parse(&v.to_string(), &base), "git config ci.hub"));
    }
    if let Some(v) = std::env::var("GIT_CI_HUB").ok().filter(|v| !v.is_empty()) {
        return Some((HubLocation::parse(&v, &std::env::current_dir().unwrap_or(base)), "$GIT_CI_HUB"));
    }
    if let Some(v) = config.as_ref().and_then(|c| c.string("remote.origin.url")) {
        return Some((HubLocation::parse(&v.to_string(), &base), "the remote origin"));
    }
    let repo = repo?;
    Some((HubLocation::Path(repo.git_dir().to_path_buf()), "this repository"))
}

/// Where git-ci keeps per-hub caches on this machine: `$GIT_CI_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/git-ci`, else `~/.cache/git-ci`.
pub fn cache_root() -> PathBuf {
    let env = |k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("GIT_CI_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("git-ci")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/git-ci")))
        .unwrap_or_else(|| std::env::temp_dir().join("git-ci-cache"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_paths_are_told_apart() {
        let base = Path::new("/work");
        assert_eq!(
            HubLocation::parse("git://127.0.0.1:9418/hub", base),
            HubLocation::Url("git://127.0.0.1:9418/hub".into())
        );
        assert_eq!(HubLocation::parse("file:///srv/hub", base), HubLocation::Url("file:///srv/hub".into()));
        assert_eq!(HubLocation::parse("git@host:hub.git", base), HubLocation::Url("git@host:hub.git".into()));
        assert_eq!(HubLocation::parse("../hub.git", base), HubLocation::Path("/work/../hub.git".into()));
        assert_eq!(HubLocation::parse("/srv/hub", base), HubLocation::Path("/srv/hub".into()));
        assert_eq!(HubLocation::parse("./a:b", base), HubLocation::Path("/work/./a:b".into()));
    }
}
