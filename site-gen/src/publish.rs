//! `git ci site publish`: the built site becomes the tree of a new commit
//! on a branch of the hub (parent: the branch's previous tip), which any
//! static host that serves a branch (GitHub or GitLab Pages...) can serve.
//!
//! The branch moves like every ref git-ci moves: with a lease on the tip
//! it read. On a local hub that is a gix ref transaction; on a remote one
//! the objects are written into the hub's cache repository and sent with
//! `git push --force-with-lease` (both through [`Hub::transact`]).

use std::path::Path;

use git_ci_core::Hub;
use git_ci_core::hub::RefEdit;
use gix::ObjectId;
use gix::objs::tree::EntryKind;

use crate::error::SiteError;
use crate::manifest::STATE_DIR;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    pub refname: String,
    /// The branch's tip now.
    pub commit: ObjectId,
    pub parent: Option<ObjectId>,
    pub files: usize,
    /// `false`: the site was the same as the branch's tip; nothing was pushed.
    pub changed: bool,
}

pub fn publish(hub: &dyn Hub, site: &Path, branch: &str) -> Result<Published, SiteError> {
    let refname = branch_ref(branch)?;
    if !site.join("index.html").is_file() {
        return Err(SiteError::Publish(format!(
            "{} holds no built site (no index.html): run `git ci site build --out {}` first",
            site.display(),
            site.display()
        )));
    }
    let parent = hub.refresh_ref(&refname)?;
    let repo = hub.repo();
    let (tree, files) = write_tree(&repo, site)?;
    let local = |e: &dyn std::fmt::Display| SiteError::Publish(format!("could not write the site's commit: {e}"));
    if let Some(p) = parent {
        let same = repo.find_commit(p).ok().and_then(|c| c.tree_id().ok()).is_some_and(|t| t == tree);
        if same {
            return Ok(Published { refname, commit: p, parent, files, changed: false });
        }
    }
    let message = format!("git-ci site: {files} files\n\nRendered by git-ci {}.\n", env!("CARGO_PKG_VERSION"));
    let sig = git_ci_core::done::signature();
    let mut time = Default::default();
    let sig = sig.to_ref(&mut time);
    let commit = repo.new_commit_as(sig, sig, message, tree, parent).map_err(|e| local(&e))?.id;
    hub.transact(&[RefEdit::set(refname.clone(), parent, commit)])?;
    Ok(Published { refname, commit, parent, files, changed: true })
}

/// `ci-pages` -> `refs/heads/ci-pages`; a full `refs/...` name is kept.
/// An error for names git refuses and for git-ci's own `refs/ci/`.
pub fn branch_ref(branch: &str) -> Result<String, SiteError> {
    let full = if branch.starts_with("refs/") { branch.to_owned() } else { format!("refs/heads/{branch}") };
    let valid = gix::refs::FullName::try_from(full.as_str()).is_ok();
    if !valid || branch.is_empty() || full.starts_with(git_ci_core::refs::ROOT) {
        return Err(SiteError::Publish(format!(
            "{branch:?} is not a branch the site can be published on: use a branch name such as ci-pages"
        )));
    }
    Ok(full)
}

/// Writes every file of the site (not its build state, nor temporary
/// files of a build that died) as blobs and trees; returns the root tree.
fn write_tree(repo: &gix::Repository, site: &Path) -> Result<(ObjectId, usize), SiteError> {
    let err = |e: &dyn std::fmt::Display| SiteError::Publish(format!("could not store the site in the hub: {e}"));
    let mut editor = repo.edit_tree(ObjectId::empty_tree(repo.object_hash())).map_err(|e| err(&e))?;
    let mut files = 0;
    let mut stack = vec![site.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let read_err = |source| SiteError::Read { path: dir.clone(), source };
        for entry in std::fs::read_dir(&dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let kind = entry.file_type().map_err(read_err)?;
            if name == STATE_DIR || name.starts_with(git_ci_core::atomic::TEMP_PREFIX) {
                continue;
            }
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path).map_err(|source| SiteError::Read { path: path.clone(), source })?;
                let blob = repo.write_blob(&bytes).map_err(|e| err(&e))?.detach();
                let rel = path.strip_prefix(site).unwrap_or(&path).to_string_lossy().replace('\\', "/");
                editor.upsert(rel.as_str(), EntryKind::Blob, blob).map_err(|e| err(&e))?;
                files += 1;
            }
        }
    }
    Ok((editor.write().map_err(|e| err(&e))?.detach(), files))
}

#[cfg(test)]
mod tests {
    use super::branch_ref;

    #[test]
    fn branch_names_are_checked() {
        assert_eq!(branch_ref("ci-pages").unwrap(), "refs/heads/ci-pages");
        assert_eq!(branch_ref("refs/heads/gh-pages").unwrap(), "refs/heads/gh-pages");
        for bad in ["", "a..b", "refs/ci/done/x", "x y"] {
            assert!(branch_ref(bad).is_err(), "{bad:?}");
        }
    }
}
