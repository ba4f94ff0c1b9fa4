//! Tree editing for chains that only grow: `done`, `archive`, notes.
//!
//! gix's `Repository::edit_tree` checks, when writing, that every entry of
//! every tree it writes exists in the object database: appending one job
//! to a `done` tree then costs a lookup per result of that day (a `stat`
//! each while objects are loose), so a busy day's completes slow down as it
//! goes. The ids written here were just written or read from trees already
//! stored, so this editor skips that check; names are ours (job ids, fixed
//! file names, artifact paths checked when collected).

use gix::ObjectId;
use gix::objs::tree::EntryKind;

pub struct TreeEditor<'r> {
    repo: &'r gix::Repository,
    inner: gix::objs::tree::Editor<'r>,
}

impl<'r> TreeEditor<'r> {
    /// An editor starting from the tree `base` (the empty tree for a new root).
    pub fn new(repo: &'r gix::Repository, base: ObjectId) -> Result<TreeEditor<'r>, String> {
        let root = if base == ObjectId::empty_tree(repo.object_hash()) {
            gix::objs::Tree::empty()
        } else {
            let tree = repo.find_tree(base).map_err(|e| format!("could not read tree {base}: {e}"))?;
            tree.decode().map_err(|e| format!("could not decode tree {base}: {e}"))?.into()
        };
        Ok(TreeEditor { repo, inner: gix::objs::tree::Editor::new(root, &repo.objects, repo.object_hash()) })
    }

    /// Puts `id` at the `/`-separated `path`, making trees on the way.
    pub fn upsert(&mut self, path: &str, kind: EntryKind, id: ObjectId) -> Result<&mut Self, String> {
        self.inner.upsert(path.split('/'), kind, id).map_err(|e| format!("could not put {path} in a tree: {e}"))?;
        Ok(self)
    }

    /// Removes whatever is at `path`, if anything.
    pub fn remove(&mut self, path: &str) -> Result<&mut Self, String> {
        self.inner.remove(path.split('/')).map_err(|e| format!("could not remove {path} from a tree: {e}"))?;
        Ok(self)
    }

    /// Writes the changed trees and returns the root tree's id.
    pub fn write(&mut self) -> Result<ObjectId, String> {
        let repo = self.repo;
        self.inner
            .write(|tree| repo.write_object(tree).map(|id| id.detach()))
            .map_err(|e| format!("could not write a tree: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_nested_paths_like_gix_does() {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init_bare(dir.path()).unwrap();
        let blob = repo.write_blob(b"x").unwrap().detach();
        let empty = ObjectId::empty_tree(repo.object_hash());
        let mut ours = TreeEditor::new(&repo, empty).unwrap();
        ours.upsert("results/20261122/a/log", EntryKind::Blob, blob).unwrap();
        ours.upsert("cache/ab/key", EntryKind::Blob, blob).unwrap();
        let first = ours.write().unwrap();
        let mut theirs = repo.edit_tree(empty).unwrap();
        theirs.upsert("results/20261122/a/log", EntryKind::Blob, blob).unwrap();
        theirs.upsert("cache/ab/key", EntryKind::Blob, blob).unwrap();
        assert_eq!(first, theirs.write().unwrap().detach());

        let mut again = TreeEditor::new(&repo, first).unwrap();
        again.upsert("results/20261122/b/log", EntryKind::Blob, blob).unwrap();
        again.remove("cache/ab/key").unwrap();
        let second = again.write().unwrap();
        let tree = repo.find_tree(second).unwrap();
        assert!(tree.lookup_entry_by_path("results/20261122/a/log").unwrap().is_some());
        assert!(tree.lookup_entry_by_path("results/20261122/b/log").unwrap().is_some());
        assert!(tree.lookup_entry_by_path("cache").unwrap().is_none(), "an emptied tree goes");
    }
}
