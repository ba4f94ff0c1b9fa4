//! A hub on this machine, read and written in-process with gix.

use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefLog};
use gix::refs::{FullName, Target};

use super::{Hub, HubError, RefEdit};

pub struct LocalHub {
    url: String,
    repo: gix::ThreadSafeRepository,
    /// The user's repository, where commits to submit come from.
    from_repo: Option<PathBuf>,
}

impl LocalHub {
    pub fn open(path: &Path) -> Result<LocalHub, HubError> {
        let url = path.display().to_string();
        let repo = gix::open(path).map_err(|e| HubError::Unreachable {
            hub: url.clone(),
            message: format!("no git repository there ({e})"),
        })?;
        Ok(LocalHub { url, repo: repo.into_sync(), from_repo: None })
    }

    /// Commits submitted through this hub that it lacks are copied from `repo`.
    pub fn importing_from(mut self, repo: Option<&Path>) -> LocalHub {
        self.from_repo = repo.map(|p| p.canonicalize().unwrap_or_else(|_| p.to_path_buf()));
        self
    }

    fn to_gix(edit: &RefEdit) -> Result<gix::refs::transaction::RefEdit, String> {
        let name = FullName::try_from(edit.name.as_str()).map_err(|e| format!("bad ref name {:?}: {e}", edit.name))?;
        let expected = match edit.expected {
            Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
            None => PreviousValue::MustNotExist,
        };
        let log = RefLog::AndReference;
        let change = match edit.new {
            Some(new) => Change::Update {
                log: LogChange { mode: log, force_create_reflog: false, message: "git-ci".into() },
                expected,
                new: Target::Object(new),
            },
            None => Change::Delete { expected, log },
        };
        Ok(gix::refs::transaction::RefEdit { change, name, deref: false })
    }

    /// After a failed transaction: the first edit whose expectation no
    /// longer holds, if any. Re-reading is how we tell a lost race from a
    /// broken repository without depending on error texts.
    fn stale_edit(&self, edits: &[RefEdit]) -> Option<(String, String)> {
        let repo = self.repo();
        edits.iter().find_map(|e| {
            let actual =
                repo.try_find_reference(e.name.as_str()).ok()?.and_then(|r| r.target().try_id().map(|i| i.to_owned()));
            (actual != e.expected).then(|| {
                let detail = match (actual, e.expected) {
                    (Some(a), None) => format!("already exists at {a}"),
                    (None, Some(_)) => "no longer exists".to_owned(),
                    (Some(a), Some(x)) => format!("is at {a} but expected {x}"),
                    (None, None) => unreachable!("equal"),
                };
                (e.name.clone(), detail)
            })
        })
    }
}

impl Hub for LocalHub {
    fn url(&self) -> &str {
        &self.url
    }

    fn repo(&self) -> gix::Repository {
        self.repo.to_thread_local()
    }

    fn refresh(&self, _prefixes: &[&str]) -> Result<(), HubError> {
        Ok(())
    }

    fn refresh_ref(&self, name: &str) -> Result<Option<ObjectId>, HubError> {
        (self as &dyn Hub).get(name)
    }

    fn transact(&self, edits: &[RefEdit]) -> Result<(), HubError> {
        let gix_edits = edits.iter().map(Self::to_gix).collect::<Result<Vec<_>, _>>().map_err(|m| HubError::Local {
            hub: self.url.clone(),
            context: "invalid ref edit".into(),
            message: m,
        })?;
        let repo = self.repo();
        let sig = crate::identity::signature();
        let mut time = Default::default();
        // A lock held by a concurrent writer fails the transaction while the
        // expectations may still hold: retry those few times.
        let mut last = String::new();
        for attempt in 0..5 {
            match repo.edit_references_as(gix_edits.clone(), Some(sig.to_ref(&mut time))) {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            if let Some((refname, detail)) = self.stale_edit(edits) {
                return Err(HubError::Conflict { refname, detail, also: vec![] });
            }
            std::thread::sleep(std::time::Duration::from_millis(1 << attempt));
        }
        Err(HubError::Local { hub: self.url.clone(), context: "ref transaction failed".into(), message: last })
    }

    fn watch_path(&self) -> Option<PathBuf> {
        Some(self.repo.git_dir().to_path_buf())
    }

    fn default_branch(&self) -> Result<Option<String>, HubError> {
        let name = self.repo().head_name().map_err(|e| HubError::Local {
            hub: self.url.clone(),
            context: "could not read HEAD".into(),
            message: e.to_string(),
        })?;
        Ok(name.map(|n| n.as_bstr().to_string()).filter(|n| n.starts_with("refs/heads/")))
    }

    fn import_commit(&self, commit: ObjectId) -> Result<(), HubError> {
        if self.repo().has_object(commit) {
            return Ok(());
        }
        let local = |message: String| HubError::Local {
            hub: self.url.clone(),
            context: format!("could not copy commit {commit} into the hub"),
            message,
        };
        let from = self
            .from_repo
            .as_ref()
            .ok_or_else(|| local("the hub does not have it and no repository was given to copy it from".into()))?;
        // Objects only, no refs: protocol v2 serves any reachable commit.
        crate::git::Git::new(self.repo.git_dir())
            .and_then(|g| {
                g.args(["fetch", "--no-tags", "--no-write-fetch-head", "--quiet", "--"])
                    .arg(from)
                    .arg(commit.to_string())
                    .run()
            })
            .map(drop)
            .map_err(|e| local(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loose ref another process deletes while we walk the directory is
    /// skipped, not an error. One thread creates and deletes refs while
    /// another lists them, with no retry: each listing must succeed.
    #[test]
    fn a_ref_deleted_during_a_listing_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        gix::init_bare(dir.path()).unwrap();
        let writer = LocalHub::open(dir.path()).unwrap();
        let blob = (&writer as &dyn Hub).write_blob(b"{}").unwrap();
        for i in 0..50 {
            (&writer as &dyn Hub).transact(&[RefEdit::create(format!("refs/ci/queue/default/keep{i}"), blob)]).unwrap();
        }
        let done = std::sync::atomic::AtomicBool::new(false);
        let (listings, failures) = std::thread::scope(|s| {
            s.spawn(|| {
                let hub = &writer as &dyn Hub;
                for i in 0..3000 {
                    let name = format!("refs/ci/queue/default/churn{}", i % 7);
                    hub.transact(&[RefEdit::create(name.clone(), blob)]).unwrap();
                    hub.transact(&[RefEdit::delete(name, blob)]).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::Relaxed);
            });
            let reader = LocalHub::open(dir.path()).unwrap();
            let hub = &reader as &dyn Hub;
            let (mut listings, mut failures) = (0, Vec::new());
            // At least one listing, however fast the churn ends.
            loop {
                listings += 1;
                match hub.list_once("refs/ci/queue/") {
                    Ok(refs) => assert!(refs.len() >= 50, "{} refs listed", refs.len()),
                    Err(e) => failures.push(e.to_string()),
                }
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
            }
            (listings, failures)
        });
        assert!(failures.is_empty(), "{} of {listings} listings failed, first: {}", failures.len(), failures[0]);
    }
}
