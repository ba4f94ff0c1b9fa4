//! Reading job directories out of the object store, with one tree decode
//! per directory (the core's `done::read` decodes the tree per file).

use std::collections::BTreeMap;

use gix::ObjectId;

use crate::error::SiteError;

/// A tree's entries by name: `(object, is a tree)`.
pub type Entries = BTreeMap<String, (ObjectId, bool)>;

pub fn entries(repo: &gix::Repository, tree: ObjectId) -> Result<Entries, SiteError> {
    let t = repo.find_tree(tree).map_err(|e| SiteError::object(format!("tree {tree}"), e))?;
    let decoded = t.decode().map_err(|e| SiteError::object(format!("tree {tree}"), e))?;
    Ok(decoded.entries.iter().map(|e| (e.filename.to_string(), (e.oid.to_owned(), e.mode.is_tree()))).collect())
}

pub fn blob(repo: &gix::Repository, id: ObjectId) -> Result<Vec<u8>, SiteError> {
    let mut b = repo.find_blob(id).map_err(|e| SiteError::object(format!("blob {id}"), e))?;
    Ok(b.take_data())
}

/// The blob named `name` in `entries`, if there is one.
pub fn file(repo: &gix::Repository, entries: &Entries, name: &str) -> Option<Vec<u8>> {
    match entries.get(name) {
        Some((id, false)) => blob(repo, *id).ok(),
        _ => None,
    }
}

/// Every blob under `tree`, as `(path, blob)`, depth first, sorted; bounded
/// so that a hostile tree cannot make the build walk forever.
pub fn walk(repo: &gix::Repository, tree: ObjectId) -> Vec<(String, ObjectId)> {
    const MAX_FILES: usize = 10_000;
    const MAX_DEPTH: usize = 32;
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), tree, 0)];
    while let Some((prefix, tree, depth)) = stack.pop() {
        let Ok(list) = entries(repo, tree) else { continue };
        for (name, (id, is_tree)) in list.into_iter().rev() {
            let path = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            if is_tree && depth < MAX_DEPTH {
                stack.push((path, id, depth + 1));
            } else if !is_tree && out.len() < MAX_FILES {
                out.push((path, id));
            }
        }
    }
    out.sort();
    out
}
