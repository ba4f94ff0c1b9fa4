//! The hub's durability settings (DESIGN.md, "The protocol"): what
//! `git ci hooks install` sets and `git ci doctor` checks.
//!
//! A claim or a result is acknowledged once the push that wrote it returns,
//! so a hub that must not lose one on power loss has to fsync both the
//! objects and the ref update. git's `core.fsync=committed` covers objects
//! only (git-config(1): "currently equivalent to objects"), so we set
//! `committed,reference`: DESIGN's setting plus the refs, ~1.5 ms a push
//! (NOTES.md). `receive.fsckObjects` makes the hub refuse corrupt objects
//! instead of storing them.
//!
//! `gc.packRefs=false`: `git pack-refs --all` (which `git gc --auto` runs
//! after pushes) racing a local worker's gix transaction that deletes a
//! packed ref lost ref updates in a test loop (NOTES.md); `git ci gc` packs
//! every ref but the live ones instead.
//!
//! `receive.autogc` is left alone on purpose: turning it off would save ~6 ms
//! a push (NOTES.md), but then nothing packs the hub's loose objects and
//! refs, and every push pays far more for a loose hub than that (NOTES.md:
//! 433 ms loose against 139 ms packed at 10k refs). A hub whose owner runs
//! `git maintenance` may turn it off by hand.

use std::path::Path;

use git_ci_core::git::{Git, GitError};

/// One setting git-ci wants on a hub.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub key: &'static str,
    /// What install writes when the current value does not do.
    pub value: &'static str,
    /// Whether a current value does (`None`: unset).
    pub ok: fn(Option<&str>) -> bool,
    pub why: &'static str,
    /// What can go wrong without it.
    pub risk: &'static str,
}

pub const SETTINGS: [Setting; 3] = [
    Setting {
        key: "core.fsync",
        value: "committed,reference",
        ok: fsync_is_durable,
        why: "objects and refs reach the disk before a push is acknowledged",
        risk: "an acknowledged claim or result can be lost on power loss",
    },
    Setting {
        key: "receive.fsckObjects",
        value: "true",
        ok: |v| v == Some("true"),
        why: "corrupt objects are refused instead of stored",
        risk: "a corrupt object pushed by a broken client is stored and breaks readers later",
    },
    Setting {
        key: "gc.packRefs",
        value: "false",
        ok: |v| v == Some("false"),
        why: "git's automatic gc leaves live refs/ci refs loose; `git ci gc` packs the others safely",
        risk: "git gc packing queue and claim refs while workers on this machine update them can lose ref updates",
    },
];

/// A setting as found on a hub.
#[derive(Clone, Debug)]
pub struct Found {
    pub setting: Setting,
    pub current: Option<String>,
}

impl Found {
    pub fn ok(&self) -> bool {
        (self.setting.ok)(self.current.as_deref())
    }
}

/// Reads every setting (as git itself will see it: repository, global and
/// system configuration).
pub fn inspect(hub: &Path) -> Result<Vec<Found>, GitError> {
    SETTINGS.iter().map(|s| Ok(Found { setting: *s, current: get(hub, s)? })).collect()
}

/// Sets what is not already good enough in the hub's own configuration;
/// returns what changed.
pub fn ensure(hub: &Path) -> Result<Vec<Found>, GitError> {
    let mut changed = Vec::new();
    for found in inspect(hub)? {
        if !found.ok() {
            Git::new(hub)?.args(["config", "--local", found.setting.key, found.setting.value]).run()?;
            changed.push(found);
        }
    }
    Ok(changed)
}

fn get(hub: &Path, s: &Setting) -> Result<Option<String>, GitError> {
    let mut git = reading_config(hub)?.args(["config", "--get"]);
    if s.value == "true" {
        // Normalises yes/on/1 to true.
        git = git.arg("--type=bool");
    }
    let args = format!("config --get {}", s.key);
    let out = git.arg(s.key).output()?;
    match out.status.code() {
        Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
        // Exit 1: the key is not set.
        Some(1) => Ok(None),
        _ => Err(git_ci_core::git::failed(args, &out)),
    }
}

/// git in `hub` to read its configuration or paths, also when the hub
/// belongs to another user (`doctor` run as root): git then refuses the hub
/// or reads only the global and system files, reporting the hub's settings
/// as unset ("dubious ownership"), so the hub is trusted for this one read.
/// Reading config runs nothing that the hub's config could name.
pub(crate) fn reading_config(hub: &Path) -> Result<Git, GitError> {
    Ok(Git::new(hub)?.args(["-c", "safe.directory=*"]))
}

const OBJECTS: [&str; 2] = ["loose-object", "pack"];

/// Whether a `core.fsync` value hardens loose objects, packs and refs, as
/// git evaluates it: from the platform default (`committed,-loose-object`),
/// items added, `-items` removed, `none` clearing, aggregates expanded.
pub fn fsync_is_durable(value: Option<&str>) -> bool {
    let mut set: Vec<&str> = vec!["pack"];
    for item in value.unwrap_or("").split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item == "none" {
            set.clear();
            continue;
        }
        let (remove, name) = match item.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, item),
        };
        for c in expand(name) {
            set.retain(|x| x != c);
            if !remove {
                set.push(c);
            }
        }
    }
    OBJECTS.iter().chain(&["reference"]).all(|c| set.contains(c))
}

fn expand(item: &str) -> &'static [&'static str] {
    match item {
        "loose-object" => &["loose-object"],
        "pack" => &["pack"],
        "pack-metadata" => &["pack-metadata"],
        "commit-graph" => &["commit-graph"],
        "index" => &["index"],
        "reference" => &["reference"],
        "objects" | "committed" => &OBJECTS,
        "derived-metadata" => &["pack-metadata", "commit-graph"],
        "added" => &["loose-object", "pack", "index"],
        "all" => &["loose-object", "pack", "pack-metadata", "commit-graph", "index", "reference"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_values_are_judged_like_git() {
        for good in ["committed,reference", "all", "objects,reference", "loose-object,pack,reference", "none,all"] {
            assert!(fsync_is_durable(Some(good)), "{good}");
        }
        for bad in ["", "committed", "reference", "all,-reference", "all,none", "added", "committed,reference,-pack"] {
            assert!(!fsync_is_durable(Some(bad)), "{bad}");
        }
        assert!(!fsync_is_durable(None));
    }
}
