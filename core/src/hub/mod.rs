//! The hub: the one shared repository that holds the queue.
//!
//! Two transports behind one trait. A local hub (a path) is read and written
//! in-process with gix: a compare-and-swap is a ref transaction of ~0.2 ms.
//! A remote hub (any URL, `file://` included) is mirrored into a cache
//! repository with `git fetch` of exact ref prefixes and written with
//! `git push --atomic --force-with-lease`, because gix cannot push.
//!
//! Either way, objects are read from and written to [`Hub::repo`]: the hub
//! itself when local, the cache repository when remote (a push then carries
//! them over).

mod denial;
mod local;
mod locate;
mod porcelain;
mod redact;
mod remote;
pub mod ssh;

use std::path::PathBuf;

use gix::ObjectId;

pub use denial::Denial;
pub use local::LocalHub;
pub use locate::{HubLocation, cache_root, locate};
pub use redact::redact;
pub use remote::RemoteHub;

/// One compare-and-swap on one ref; a transaction applies all or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefEdit {
    pub name: String,
    /// `None` deletes the ref.
    pub new: Option<ObjectId>,
    /// `None`: the ref must not exist.
    pub expected: Option<ObjectId>,
}

impl RefEdit {
    pub fn create(name: impl Into<String>, new: ObjectId) -> RefEdit {
        RefEdit { name: name.into(), new: Some(new), expected: None }
    }
    pub fn update(name: impl Into<String>, expected: ObjectId, new: ObjectId) -> RefEdit {
        RefEdit { name: name.into(), new: Some(new), expected: Some(expected) }
    }
    /// Creates when `expected` is `None`, else moves from `expected`.
    pub fn set(name: impl Into<String>, expected: Option<ObjectId>, new: ObjectId) -> RefEdit {
        RefEdit { name: name.into(), new: Some(new), expected }
    }
    pub fn delete(name: impl Into<String>, expected: ObjectId) -> RefEdit {
        RefEdit { name: name.into(), new: None, expected: Some(expected) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Someone else changed a ref first. Not a failure of the hub: re-read
    /// and decide again.
    #[error("lost a race on {refname}: {detail}")]
    Conflict {
        refname: String,
        detail: String,
        /// The other refs of the transaction that lost too, where the hub
        /// says (a push reports each stale lease at once).
        also: Vec<String>,
    },
    /// The hub could not be talked to at all; retrying later may work.
    #[error("could not reach the hub {hub}: {message}")]
    Unreachable { hub: String, message: String },
    /// The hub will not let us in at all (see [`Denial`]): trying again
    /// helps only once someone has fixed what `cause` names.
    #[error("the hub {hub} refused access ({}): {message}", cause.what())]
    Denied { hub: String, cause: Denial, message: String },
    /// The hub answered and said no to these refs (permissions, a hook, a full disk).
    #[error("the hub {hub} refused to update {refname}: {message}")]
    Refused { hub: String, refname: String, message: String },
    /// Our side failed: the cache repository, an object, the disk.
    #[error("{context} (hub {hub}): {message}")]
    Local { hub: String, context: String, message: String },
    /// The hub applied only some refs of an atomic transaction and would
    /// not take the rest. git does this to an `--atomic` push when a ref
    /// fails a check made before the transaction (a hidden ref; a
    /// connectivity check that raced another push deleting refs): those
    /// refs are skipped and the rest applied. `applied` names the refs that
    /// moved as asked; every other ref of the transaction is as it was.
    #[error("the hub {hub} applied only part of a transaction ({}), not {refname}: {message}", applied.join(", "))]
    Partial { hub: String, applied: Vec<String>, refname: String, message: String },
}

impl HubError {
    pub fn is_conflict(&self) -> bool {
        matches!(self, HubError::Conflict { .. })
    }

    /// The hub said no, and will say it again until someone changes
    /// something there (unlike a lost race or an outage).
    pub fn is_refusal(&self) -> bool {
        matches!(self, HubError::Denied { .. } | HubError::Refused { .. })
    }

    /// The ref a lost race or a refusal was about, if any.
    pub fn refname(&self) -> &str {
        match self {
            HubError::Conflict { refname, .. }
            | HubError::Refused { refname, .. }
            | HubError::Partial { refname, .. } => refname,
            _ => "",
        }
    }

    /// The refs a lost race lost on: `refname` and any others the hub named.
    pub fn lost(&self) -> Vec<&str> {
        match self {
            HubError::Conflict { refname, also, .. } => {
                std::iter::once(refname).chain(also).map(String::as_str).collect()
            }
            _ => vec![],
        }
    }

    /// Whether the hub's hook (git-ci's guard) refused the update: a reason
    /// in what was pushed, which pushing it again will not change.
    pub fn declined_by_hook(&self) -> bool {
        matches!(self, HubError::Refused { message, .. } if message.contains("hook declined"))
    }

    /// What the hub or git said, without the hub's name.
    pub fn message(&self) -> &str {
        match self {
            HubError::Conflict { detail: message, .. }
            | HubError::Unreachable { message, .. }
            | HubError::Denied { message, .. }
            | HubError::Refused { message, .. }
            | HubError::Local { message, .. }
            | HubError::Partial { message, .. } => message,
        }
    }

    /// The refs a failed transaction moved anyway (see [`HubError::Partial`]).
    pub fn applied(&self) -> &[String] {
        match self {
            HubError::Partial { applied, .. } => applied,
            _ => &[],
        }
    }
}

/// What [`Hub::fingerprint`] returns: equal when the refs were.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn of(refs: &[(String, ObjectId)]) -> Fingerprint {
        use sha2::Digest;
        let mut digest = sha2::Sha256::new();
        for (name, id) in refs {
            digest.update(format!("{id} {name}\n").as_bytes());
        }
        Fingerprint(digest.finalize().into())
    }
}

/// A hub as the queue protocol needs it. Implementations are cheap to share
/// between threads; [`Hub::repo`] hands out a thread-local handle.
pub trait Hub: Send + Sync {
    /// The URL or path as the user gave it, for messages: any password in
    /// it is masked ([`redact`]).
    fn url(&self) -> &str;

    /// The object store: read blobs and trees here, write new objects here
    /// before naming them in [`Hub::transact`].
    fn repo(&self) -> gix::Repository;

    /// Makes [`Hub::repo`]'s refs under each prefix (ending in `/`) match the
    /// hub's. A no-op for a local hub, whose refs are the hub's.
    fn refresh(&self, prefixes: &[&str]) -> Result<(), HubError>;

    /// The hub's refs under each prefix by the cheapest look there is (for
    /// a URL, one `git ls-remote`: a request that carries no objects),
    /// sorted by name; `None` for a hub whose refs [`Hub::repo`] reads
    /// directly (a local hub), where no look is cheaper than reading them.
    fn peek(&self, prefixes: &[&str]) -> Result<Option<Vec<(String, ObjectId)>>, HubError> {
        let _ = prefixes;
        Ok(None)
    }

    /// Refreshes one exact ref (and the objects it reaches); `None` when the
    /// hub has no such ref.
    fn refresh_ref(&self, name: &str) -> Result<Option<ObjectId>, HubError>;

    /// Applies every edit or none. A lost compare-and-swap is
    /// [`HubError::Conflict`].
    fn transact(&self, edits: &[RefEdit]) -> Result<(), HubError>;

    /// [`Hub::transact`] carrying push options (`git push -o`) for the
    /// hub's hooks to read: `git ci gc` sends `ci.gc` so that the guard lets
    /// it rewrite `done` chains. A local hub runs no hooks and ignores them.
    fn transact_with_options(&self, edits: &[RefEdit], options: &[&str]) -> Result<(), HubError> {
        let _ = options;
        self.transact(edits)
    }

    /// Where ref changes can be watched on disk, for a local hub.
    fn watch_path(&self) -> Option<PathBuf>;

    /// Makes `commit` (and its history) available to [`Hub::transact`]
    /// before a ref names it: a push carries it to a remote hub; a local hub
    /// that lacks it fetches it from the user's repository.
    fn import_commit(&self, commit: ObjectId) -> Result<(), HubError>;

    /// The branch the hub's `HEAD` names (`refs/heads/main`): the branch a
    /// scheduled job without `branches` runs on. `None` when `HEAD` names
    /// no branch (and for a hub that cannot tell).
    fn default_branch(&self) -> Result<Option<String>, HubError> {
        Ok(None)
    }

    /// A short stable name for per-hub state kept on this machine (caches).
    fn cache_key(&self) -> String {
        let digest = <sha2::Sha256 as sha2::Digest>::digest(self.url().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

impl dyn Hub + '_ {
    /// Refs under `prefix` in [`Hub::repo`], sorted by name.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, HubError> {
        // Another process deleting a ref's emptied directory while we walk
        // the loose refs makes the walk fail: that is a moment, not a broken
        // hub, so look again before saying so. (A ref file deleted under the
        // walk is just left out: see `list_once`.)
        let mut attempt = 0;
        loop {
            match self.list_once(prefix) {
                Err(_) if attempt < 3 => attempt += 1,
                other => return other,
            }
        }
    }

    fn list_once(&self, prefix: &str) -> Result<Vec<(String, ObjectId)>, HubError> {
        let repo = self.repo();
        let local = |e: gix::Error| self.local_error(format!("could not list {prefix}*"), e);
        let mut out = Vec::new();
        for r in repo.references().map_err(local)?.prefixed(prefix).map_err(local)? {
            let r = match r {
                Ok(r) => r,
                // Deleted by another process between the directory listing
                // and the read: it is simply not there any more.
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(self.local_error(format!("could not list {prefix}*"), e)),
            };
            // refs/ci/* refs are direct: reading their target needs no
            // object lookup (peeling would read every blob's header).
            if let Some(id) = r.target().try_id() {
                out.push((r.name().as_bstr().to_string(), id.to_owned()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Refs under any of `prefixes` in [`Hub::repo`], sorted by name.
    pub fn list_all(&self, prefixes: &[&str]) -> Result<Vec<(String, ObjectId)>, HubError> {
        let mut out = Vec::new();
        for prefix in prefixes {
            out.extend(self.list(prefix)?);
        }
        out.sort();
        Ok(out)
    }

    /// A digest of the hub's refs under `prefixes` whose names `keep`
    /// accepts, that changes whenever one of them does: the cheapest "did
    /// anything change" there is (one `git ls-remote` for a URL, a listing
    /// for a local hub). A waiter compares it with the last one before
    /// reading anything more.
    pub fn fingerprint(&self, prefixes: &[&str], keep: impl Fn(&str) -> bool) -> Result<Fingerprint, HubError> {
        let refs = match self.peek(prefixes)? {
            Some(refs) => refs,
            None => self.list_all(prefixes)?,
        };
        let kept: Vec<_> = refs.into_iter().filter(|(name, _)| keep(name)).collect();
        Ok(Fingerprint::of(&kept))
    }

    /// [`Hub::refresh`], but only when a [`Hub::peek`] shows the hub's refs
    /// under `prefixes` differ from [`Hub::repo`]'s: an idle look costs the
    /// hub one ref listing and this machine no fetch. Returns whether it
    /// fetched. Refs unchanged on the hub are as good as fetched: their
    /// objects came with them.
    pub fn refresh_if_changed(&self, prefixes: &[&str]) -> Result<bool, HubError> {
        if let Some(theirs) = self.peek(prefixes)?
            && theirs == self.list_all(prefixes)?
        {
            return Ok(false);
        }
        self.refresh(prefixes)?;
        Ok(true)
    }

    /// The ref's current target in [`Hub::repo`].
    pub fn get(&self, name: &str) -> Result<Option<ObjectId>, HubError> {
        let repo = self.repo();
        let found = repo.try_find_reference(name).map_err(|e| self.local_error(format!("could not read {name}"), e))?;
        Ok(found.and_then(|r| r.target().try_id().map(|id| id.to_owned())))
    }

    pub fn read_blob(&self, id: ObjectId) -> Result<Vec<u8>, HubError> {
        let repo = self.repo();
        let blob = repo.find_blob(id).map_err(|e| self.local_error(format!("could not read blob {id}"), e))?;
        Ok(blob.detach().data)
    }

    pub fn write_blob(&self, bytes: &[u8]) -> Result<ObjectId, HubError> {
        let repo = self.repo();
        let id = repo.write_blob(bytes).map_err(|e| self.local_error("could not write a blob".into(), e))?;
        Ok(id.detach())
    }

    pub fn local_error(&self, context: String, e: impl std::fmt::Display) -> HubError {
        HubError::Local { hub: self.url().to_owned(), context, message: e.to_string() }
    }
}

/// Opens the hub at `location`.
///
/// `from_repo` is the user's repository, whose objects (the commits to test)
/// a remote hub's pushes must be able to send. `owner` separates the cache
/// repositories of processes that must not share one (each worker has its
/// own; client commands use `"client"`).
pub fn open_hub(
    location: &HubLocation,
    from_repo: Option<&std::path::Path>,
    owner: &str,
) -> Result<Box<dyn Hub>, HubError> {
    Ok(match location {
        HubLocation::Path(path) => Box::new(LocalHub::open(path)?.importing_from(from_repo)),
        HubLocation::Url(url) => Box::new(RemoteHub::open(url, from_repo, owner)?),
    })
}
