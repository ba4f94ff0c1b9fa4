//! Settings in git config, where git users look first. Flags override them.
//!
//! | key | for | value |
//! |---|---|---|
//! | `ci.hub` | every command | the hub (see `git_ci_core::hub::locate`) |
//! | `ci.worker.name` | `worker` | the worker's name on the hub |
//! | `ci.worker.queues` | `worker` | queues to serve (repeatable, or comma-separated) |
//! | `ci.worker.labels` | `worker` | `K=V` labels (repeatable, or comma-separated) |
//! | `ci.worker.jobs` | `worker` | jobs at once |
//! | `ci.siteDir` | `site build` | where the report site goes |
//!
//! Read from the repository's config (which includes the user's and the
//! system's), or the user's and system's alone outside a repository.

use crate::error::{CliError, CliResult};

/// The git configuration git-ci reads settings from.
pub struct GitConfig(Option<gix::config::File>);

impl GitConfig {
    pub fn load(repo: Option<&gix::Repository>) -> GitConfig {
        match repo {
            Some(repo) => GitConfig(Some((*repo.config_snapshot()).clone())),
            None => GitConfig(gix::config::File::from_globals().ok()),
        }
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.0.as_ref()?.string(key).map(|v| v.to_string()).filter(|v| !v.is_empty())
    }

    /// Every value of a multi-valued key, each also split at commas.
    pub fn list(&self, key: &str) -> Vec<String> {
        let values = self.0.as_ref().and_then(|c| c.strings(key)).unwrap_or_default();
        values
            .iter()
            .flat_map(|v| v.to_string().split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// `git ci worker`'s settings from git config, before flags.
#[derive(Debug, Default, PartialEq)]
pub struct WorkerSettings {
    pub name: Option<String>,
    pub queues: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub jobs: Option<usize>,
}

impl WorkerSettings {
    pub fn read(config: &GitConfig) -> CliResult<WorkerSettings> {
        let bad = |key: &str, msg: String| {
            CliError::usage_hint(
                format!("git config {key}: {msg}"),
                format!("fix it with `git config --edit`, or `git config --unset-all {key}`"),
            )
        };
        let labels = config
            .list("ci.worker.labels")
            .iter()
            .map(|l| crate::cli::parse_key_value(l).map_err(|e| bad("ci.worker.labels", e)))
            .collect::<CliResult<_>>()?;
        let jobs = match config.string("ci.worker.jobs") {
            None => None,
            Some(v) => Some(
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad("ci.worker.jobs", format!("{v:?} is not a positive number")))?,
            ),
        };
        Ok(WorkerSettings {
            name: config.string("ci.worker.name"),
            queues: config.list("ci.worker.queues"),
            labels,
            jobs,
        })
    }
}

/// The settings a worker started here would use, each with where it came
/// from, for `git ci doctor`: `(setting, value, source)`.
pub fn effective(repo: Option<&gix::Repository>) -> CliResult<Vec<(&'static str, String, String)>> {
    let config = GitConfig::load(repo);
    let worker = WorkerSettings::read(&config)?;
    let origins = repo.map(|r| origins(&crate::context::repo_dir(r))).unwrap_or_default();
    let from = |key: &str, default: &str| -> String {
        let found: Vec<&str> =
            origins.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, where_)| where_.as_str()).collect();
        match found.as_slice() {
            [] if config.string(key).is_some() => format!("git config {key}"),
            [] => default.to_owned(),
            some => format!("git config {key}, {}", some.join(", ")),
        }
    };
    let mut labels = git_ci_core::worker::Config::default_labels();
    labels.extend(worker.labels.iter().cloned());
    let labels = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    Ok(vec![
        (
            "worker name",
            worker.name.clone().unwrap_or_else(crate::context::hostname),
            from("ci.worker.name", "the host name"),
        ),
        (
            "worker queues",
            if worker.queues.is_empty() { "every queue".into() } else { worker.queues.join(",") },
            from("ci.worker.queues", "default"),
        ),
        ("worker labels", labels, from("ci.worker.labels", "os and arch of this machine")),
        ("worker jobs", worker.jobs.unwrap_or(1).to_string(), from("ci.worker.jobs", "default")),
        (
            "site directory",
            config.string("ci.siteDir").unwrap_or_else(|| "none".into()),
            from("ci.siteDir", "site build needs --out"),
        ),
    ])
}

/// Each git-ci setting that is set, as `(key, "scope file:path")`, from
/// `git config --show-scope --show-origin`.
fn origins(dir: &std::path::Path) -> Vec<(String, String)> {
    // Exit 1 means no such key: nothing set, an empty list.
    let out = git_ci_core::git::Git::new(dir)
        .and_then(|g| g.args(["config", "--show-scope", "--show-origin", "--get-regexp", r"^ci\."]).output());
    let Ok(out) = out else { return vec![] };
    // `<scope>\t<origin>\t<key> <value>`.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let (scope, origin, rest) = (parts.next()?, parts.next()?, parts.next()?);
            let key = rest.split(' ').next()?;
            Some((key.to_owned(), format!("{scope} {origin}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> GitConfig {
        GitConfig(Some(gix::config::File::try_from(text).unwrap()))
    }

    #[test]
    fn worker_settings_come_from_git_config() {
        let c = config(
            "[ci \"worker\"]\n\tname = box1\n\tqueues = a, b\n\tqueues = c\n\tlabels = gpu=a100\n\tlabels = os=linux,arch=x86_64\n\tjobs = 3\n",
        );
        let s = WorkerSettings::read(&c).unwrap();
        assert_eq!(s.name.as_deref(), Some("box1"));
        assert_eq!(s.queues, ["a", "b", "c"]);
        assert_eq!(s.labels.len(), 3);
        assert_eq!(s.labels[0], ("gpu".to_owned(), "a100".to_owned()));
        assert_eq!(s.jobs, Some(3));
        assert_eq!(WorkerSettings::read(&config("")).unwrap(), WorkerSettings::default());
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            ("[ci \"worker\"]\n\tjobs = many\n", "ci.worker.jobs"),
            ("[ci \"worker\"]\n\tjobs = 0\n", "ci.worker.jobs"),
            ("[ci \"worker\"]\n\tlabels = gpu\n", "ci.worker.labels"),
        ] {
            let e = WorkerSettings::read(&config(text)).unwrap_err().report().unwrap();
            assert!(e.contains(key), "{e}");
        }
    }
}
