//! Job states as git notes: one commit on `refs/notes/ci` whose tree maps
//! each annotated commit to its note, moved with a compare-and-swap. Only
//! the tree edits and the ref move are here; which jobs a note lists, and
//! how, is the `git ci notes` command's.

use gix::ObjectId;
use gix::objs::tree::EntryKind;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
use gix::refs::{FullName, Target};

use crate::tree_edit::TreeEditor;

/// Where git-ci's notes live; `git log --notes=ci` shows them.
pub const NOTES_REF: &str = "refs/notes/ci";

/// Why the notes could not be written; each names [`NOTES_REF`].
#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("could not read {NOTES_REF}: {0}")]
    Read(String),
    #[error("could not write {NOTES_REF}: {0}")]
    Write(String),
    /// The ref did not move: a repository that refuses it, or a race lost
    /// five times over.
    #[error("could not update {NOTES_REF}: {0}")]
    Update(String),
}

/// Writes all `notes` (commit, text) as one commit on [`NOTES_REF`],
/// moved with a compare-and-swap; retried on a lost race (another `git ci
/// notes`, or `git notes --ref=ci` run meanwhile). Returns false when
/// nothing changed. `message` is the notes commit's.
pub fn write(repo: &gix::Repository, notes: &[(ObjectId, String)], message: &str) -> Result<bool, NotesError> {
    if notes.is_empty() {
        return Ok(false);
    }
    let mut last = String::new();
    for _ in 0..5 {
        let tip = notes_tip(repo)?;
        let Some(commit) = notes_commit(repo, tip, notes, message)? else {
            return Ok(false);
        };
        match move_ref(repo, tip, commit) {
            Ok(()) => return Ok(true),
            Err(e) => last = e,
        }
        if notes_tip(repo)? == tip {
            break; // not a race: a broken repository, or a lock left behind
        }
    }
    Err(NotesError::Update(last))
}

fn notes_tip(repo: &gix::Repository) -> Result<Option<ObjectId>, NotesError> {
    let found = repo.try_find_reference(NOTES_REF).map_err(|e| NotesError::Read(e.to_string()))?;
    Ok(found.and_then(|r| r.target().try_id().map(|id| id.to_owned())))
}

/// A commit on top of `tip` whose tree holds `notes`; `None` when the tree
/// would not change.
fn notes_commit(
    repo: &gix::Repository,
    tip: Option<ObjectId>,
    notes: &[(ObjectId, String)],
    message: &str,
) -> Result<Option<ObjectId>, NotesError> {
    fn err(e: impl std::fmt::Display) -> NotesError {
        NotesError::Write(e.to_string())
    }
    let base = match tip {
        Some(tip) => repo.find_commit(tip).map_err(err)?.tree_id().map_err(err)?.detach(),
        None => ObjectId::empty_tree(repo.object_hash()),
    };
    let mut editor = TreeEditor::new(repo, base).map_err(err)?;
    for (commit, text) in notes {
        let hex = commit.to_string();
        // git fans notes out into `ab/cdef...` (and deeper) as they grow,
        // and would show a note at two places as two notes: drop every
        // place this commit's note may be before writing it flat, which
        // git reads whatever fanout the rest of the tree uses.
        for level in 1..=2 {
            let fanned: String = (0..level).map(|i| format!("{}/", &hex[2 * i..2 * i + 2])).collect();
            editor.remove(&format!("{fanned}{}", &hex[2 * level..])).map_err(err)?;
        }
        let blob = repo.write_blob(text.as_bytes()).map_err(err)?.detach();
        editor.upsert(&hex, EntryKind::Blob, blob).map_err(err)?;
    }
    let tree = editor.write().map_err(err)?;
    if tree == base {
        return Ok(None);
    }
    Ok(Some(crate::done::commit(repo, message.to_owned(), tree, tip).map_err(err)?))
}

fn move_ref(repo: &gix::Repository, tip: Option<ObjectId>, new: ObjectId) -> Result<(), String> {
    let expected = match tip {
        Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
        None => PreviousValue::MustNotExist,
    };
    let edit = RefEdit {
        change: Change::Update {
            log: LogChange { mode: RefLog::AndReference, force_create_reflog: false, message: "git ci notes".into() },
            expected,
            new: Target::Object(new),
        },
        name: FullName::try_from(NOTES_REF).expect("a valid ref name"),
        deref: false,
    };
    repo.edit_reference(edit).map(drop).map_err(|e| e.to_string())
}
