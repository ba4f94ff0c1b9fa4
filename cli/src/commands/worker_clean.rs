//! `git ci worker --clean`: what a worker leaves on disk, removed, with a
//! report of what that freed (the rules are in `core::worker::clean`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use git_ci_core::worker::{self, Freed, human_bytes};

use crate::error::{CliError, CliResult};
use crate::ui::Ui;

/// What `--clean` counts as unused without `--older-than`.
const DEFAULT_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

pub fn cmd_clean(ui: &Ui, name: String, work_dir: Option<PathBuf>, older_than: Option<Duration>) -> CliResult {
    git_ci_core::refs::check_component("worker name", &name).map_err(CliError::usage)?;
    // A worker of this name running here uses its checkouts and caches:
    // hold its name, as a worker would, for as long as we clean.
    let _held = super::worker_name::hold(Some(name.clone()), &name).map_err(|_| {
        CliError::usage_hint(
            format!("worker {name:?} runs on this machine: its checkouts and caches are in use"),
            "stop it first, or let it clean as it runs with `git ci worker --cache-max-size SIZE`",
        )
    })?;
    let root = git_ci_core::hub::cache_root();
    let work_dir = work_dir.unwrap_or_else(|| root.join("work").join(&name));
    let age = older_than.unwrap_or(DEFAULT_AGE);
    let freed = worker::clean(&work_dir, Some(&root.join("hubs")), age);
    report(ui, &freed, &work_dir, age);
    if let Some((path, e)) = freed.failed.first() {
        return Err(CliError::Internal(format!("could not remove {}: {e}", path.display())));
    }
    Ok(())
}

/// At the start of a worker with `--cache-max-size`, which holds its name.
pub fn leftover_checkouts(ui: &Ui, name: &str, work_dir: &Path) {
    let freed = worker::leftover_checkouts(work_dir);
    if freed.dirs() > 0 {
        let (n, bytes) = freed.checkouts;
        ui.err(&format!(
            "git-ci worker {name}: removed {n} checkout(s) left by a stopped worker, {}",
            human_bytes(bytes)
        ));
    }
}

fn report(ui: &Ui, freed: &Freed, work_dir: &Path, age: Duration) {
    let age = git_ci_core::time::human_duration(age);
    for ((n, bytes), what) in [
        (freed.checkouts, "checkout(s) left by stopped workers".to_owned()),
        (freed.caches, format!("cache director(ies) unused for {age}")),
        (freed.mirrors, format!("hub mirror(s) unused for {age}")),
    ] {
        if n > 0 {
            ui.out(&format!("removed {n} {what}: {}", human_bytes(bytes)));
        }
    }
    let bytes = freed.bytes();
    ui.out(&format!("freed {} ({bytes} bytes) from {}", human_bytes(bytes), work_dir.display()));
}
