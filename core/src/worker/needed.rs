//! The artifacts of the jobs a job needs, put into its checkout at the
//! paths they were stored under before its script starts.

use std::path::{Component, Path};

use crate::done;
use crate::hub::Hub;
use crate::model::{Job, Status};

/// Writes every artifact of every job `job` needs into `checkout`; returns
/// notes for the log. An error is the reason the job cannot run: a need
/// that did not pass, or an artifact that cannot be read or written.
pub fn place_artifacts(hub: &dyn Hub, job: &Job, checkout: &Path) -> Result<Vec<String>, String> {
    if job.needs.is_empty() {
        return Ok(vec![]);
    }
    hub.refresh(&[crate::refs::DONE, crate::refs::ARCHIVE])
        .map_err(|e| format!("could not read the results of the jobs it needs: {e}"))?;
    let tips = done::tips(hub).map_err(|e| e.to_string())?;
    let repo = hub.repo();
    let mut notes = Vec::new();
    for need in &job.needs {
        let located = done::find(hub, &tips, &need.id).map_err(|e| e.to_string())?.ok_or_else(|| {
            format!("{} ({}) has no result on the hub, yet this job was let run", need.label, need.id)
        })?;
        let result = done::read_result(hub, located.dir)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the result of {} ({}) cannot be read", need.label, need.id))?;
        if result.status != Status::Passed {
            return Err(format!(
                "{} ({}) ended {}, yet this job was let run",
                need.label,
                need.id,
                result.status.as_str()
            ));
        }
        let tree =
            repo.find_tree(located.dir).map_err(|e| format!("could not read the results of {}: {e}", need.label))?;
        for artifact in &result.artifacts {
            let rel = Path::new(&artifact.path);
            if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(format!("{} stored an artifact at {:?}, outside any checkout", need.label, artifact.path));
            }
            let entry =
                tree.lookup_entry_by_path(format!("artifacts/{}", artifact.path)).ok().flatten().ok_or_else(|| {
                    format!("artifact {} of {} is missing from its result", artifact.path, need.label)
                })?;
            let bytes = entry
                .object()
                .map_err(|e| format!("could not read artifact {} of {}: {e}", artifact.path, need.label))?
                .detach()
                .data;
            if crate::digest::sha256_hex(&bytes) != artifact.sha256 {
                return Err(format!("artifact {} of {} does not match its recorded sha256", artifact.path, need.label));
            }
            let dest = checkout.join(rel);
            let write = || -> std::io::Result<()> {
                if let Some(parent) = dest.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&dest, &bytes)?;
                if entry.mode().is_executable() {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
                }
                Ok(())
            };
            write().map_err(|e| format!("could not write artifact {} of {}: {e}", artifact.path, need.label))?;
        }
        if !result.artifacts.is_empty() {
            notes.push(format!("placed {} artifact(s) of {} ({})", result.artifacts.len(), need.label, need.id));
        }
    }
    Ok(notes)
}
