//! A hub reached through the `git` binary.
//!
//! Reads go through a bare cache repository on this machine whose
//! `refs/ci/...` mirror the hub's for the prefixes last refreshed. Writes are
//! one `git push --atomic --porcelain` with a `--force-with-lease` per ref,
//! then the mirror is moved to match, so the next read needs no fetch.

use std::io::Write;
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefLog};
use gix::refs::{FullName, Target};

use super::porcelain;
use super::{Denial, Hub, HubError, RefEdit, redact};
use crate::git::{Git, GitError};

pub struct RemoteHub {
    /// The URL as given, for git; `shown` is it with any password masked,
    /// for messages.
    address: String,
    shown: String,
    cache: gix::ThreadSafeRepository,
    /// Fetches made, to let git's automatic maintenance run on some only.
    fetches: std::sync::atomic::AtomicU32,
}

/// One fetch in this many lets git run `git maintenance run --auto` after
/// it. git starts that process after every fetch, and a worker fetches
/// every poll: that was half the processes a busy worker started. The
/// cache still needs it now and then, to pack the loose objects that
/// every publish writes.
const MAINTAIN_EVERY: u32 = 50;
/// What git says when a ref of the repository it fetches into names an
/// object the repository does not have (`fatal: bad object <ref>`).
const DANGLING: &str = "bad object";

impl RemoteHub {
    /// Opens (creating on first use) the cache repository for `url`.
    pub fn open(url: &str, from_repo: Option<&Path>, owner: &str) -> Result<RemoteHub, HubError> {
        let from = from_repo.map(|p| p.canonicalize().unwrap_or_else(|_| p.to_path_buf()));
        let dir = cache_dir(url, from.as_deref(), owner);
        Self::open_at(url, from, &dir)
    }

    /// [`RemoteHub::open`] with the cache repository at `dir`.
    pub(crate) fn open_at(url: &str, from: Option<PathBuf>, dir: &Path) -> Result<RemoteHub, HubError> {
        let local = |context: &str, e: &dyn std::fmt::Display| HubError::Local {
            hub: redact(url).into_owned(),
            context: context.to_owned(),
            message: redact(&e.to_string()).into_owned(),
        };
        let dir = dir.to_path_buf();
        let mut repo = match gix::open(&dir) {
            Ok(repo) => repo,
            Err(_) => init_cache(&dir).map_err(|e| local("could not create the cache repository", &e))?,
        };
        if let Some(from) = from {
            link_objects(&repo, &from)
                .map_err(|e| local("could not link the repository's objects into the cache", &e))?;
            // Reopen so the object database sees the new alternate.
            repo = gix::open(&dir).map_err(|e| local("could not open the cache repository", &e))?;
        }
        let shown = redact(url).into_owned();
        Ok(RemoteHub { address: url.to_owned(), shown, cache: repo.into_sync(), fetches: Default::default() })
    }

    fn git(&self) -> Result<Git, HubError> {
        let git = Git::new(self.cache.git_dir()).map_err(|e| self.unreachable(e))?;
        // An ssh hub: one shared connection instead of a handshake a call.
        Ok(match super::ssh::for_hub(&self.address, &self.cache) {
            Some(command) => git.env("GIT_SSH_COMMAND", command),
            None => git,
        })
    }

    /// A git command that could not talk to the hub: refused, or unreachable.
    fn unreachable(&self, e: GitError) -> HubError {
        let message = match &e {
            GitError::Failed { stderr, .. } if !stderr.is_empty() => stderr.clone(),
            _ => e.to_string(),
        };
        self.failed_talking(&message)
    }

    /// What git said when it got no answer to a fetch or a push: a hub
    /// that refused us ([`Denial`]), or one that could not be reached.
    fn failed_talking(&self, stderr: &str) -> HubError {
        let (hub, message) = (self.shown.clone(), redact(stderr.trim()).into_owned());
        match Denial::classify(stderr) {
            Some(cause) => HubError::Denied { hub, cause, message },
            None => HubError::Unreachable { hub, message },
        }
    }

    /// `git fetch` of `specs` into the mirror. Three races fail a fetch
    /// without any outage, so it is retried at once: a ref that moves on
    /// the hub between git's ref listing and its object request
    /// (`upload-pack: not our ref`, seen with 16 workers over git daemon),
    /// and another git-ci process of this user updating the same mirror ref
    /// (`cannot lock ref … but expected`, seen with parallel `git ci cancel`),
    /// and a mirror ref moved under git's connectivity check (`bad object`).
    fn fetch(&self, flags: &[&str], specs: &[String]) -> Result<std::process::Output, HubError> {
        // "bad object": git's connectivity check after the fetch read a
        // mirror ref that another thread of this process moved or deleted
        // meanwhile (seen with 4 workers of 2 slots racing pipelines over
        // git daemon: the ref was gone a moment later); a second fetch
        // passes. A ref that stays dangling is dropped first (below).
        const RACES: [&str; 4] = ["not our ref", "cannot lock ref", "Unable to create", DANGLING];
        let mut tries = 0;
        let mut healed = false;
        let n = self.fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let maintain = if n % MAINTAIN_EVERY == MAINTAIN_EVERY - 1 { "true" } else { "false" };
        loop {
            // One writer of the cache's refs at a time (see `refs_lock`).
            let lock = self.refs_lock();
            let out = self
                .git()?
                .args(["-c", &format!("maintenance.auto={maintain}")])
                .args(["fetch", "--no-tags", "--no-write-fetch-head", "--quiet"])
                .args(flags)
                .args(["--", &self.address])
                .args(specs)
                .output()
                .map_err(|e| self.unreachable(e))?;
            drop(lock);
            tries += 1;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() && !healed && stderr.contains(DANGLING) {
                healed = true;
                if self.forget_dangling_refs()? > 0 {
                    continue;
                }
            }
            if out.status.success() || tries >= 5 || !RACES.iter().any(|r| stderr.contains(r)) {
                return Ok(out);
            }
            tracing::debug!(target: "git", "fetch raced a ref update; fetching again");
            std::thread::sleep(std::time::Duration::from_millis(fastrand::u64(5..50)));
        }
    }

    /// Drops the mirror refs whose objects are gone; returns how many.
    ///
    /// The cache borrows the user's objects (see [`link_objects`]), so a
    /// pin it mirrors names a commit that only the user's repository holds.
    /// Once the user rewrites that commit (`commit --amend`) and prunes it
    /// (`gc --prune=now`), the ref dangles, and git refuses every later
    /// fetch into the cache ("bad object"). A mirror ref is only a copy of
    /// the hub's: without it the next fetch that wants it brings it back,
    /// objects included, from the hub.
    fn forget_dangling_refs(&self) -> Result<usize, HubError> {
        // A fresh handle: this process's own may still see an object that
        // git's maintenance has since moved or removed, and call a ref
        // fine that git calls "bad object".
        let repo = gix::open(self.cache.git_dir()).unwrap_or_else(|_| self.repo());
        let refs = (self as &dyn Hub).list(crate::refs::ROOT)?;
        let dangling: Vec<RefEdit> =
            refs.into_iter().filter(|(_, id)| !repo.has_object(*id)).map(|(n, id)| RefEdit::delete(n, id)).collect();
        if !dangling.is_empty() {
            let names: Vec<&str> = dangling.iter().map(|e| e.name.as_str()).collect();
            tracing::info!("the cache's refs {} name objects that are gone; refetching them", names.join(", "));
            self.mirror(&dangling)?;
        }
        Ok(dangling.len())
    }

    /// Moves the mirror refs the way a successful push moved the hub's.
    ///
    /// Other git-ci processes of this user (a worker, a `git ci cancel`)
    /// share the mirror, and two writers of `packed-refs` fail rather than
    /// wait; the mirror takes any value, so trying again is safe.
    fn mirror(&self, edits: &[RefEdit]) -> Result<(), HubError> {
        let mut tries = 0;
        loop {
            match self.mirror_once(edits) {
                Err(e) if tries < 5 => {
                    tries += 1;
                    tracing::debug!(target: "git", "the cache's refs were busy, trying again: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(fastrand::u64(5..50) << tries));
                }
                other => return other,
            }
        }
    }

    /// Holds the cache's ref lock while it lives: fetches and mirror
    /// updates into one cache, from this process's threads or from other
    /// git-ci processes of this user (a worker, `git ci cancel`, `show`),
    /// take turns instead of failing each other's ref transactions
    /// (`cannot lock ref … but expected`, seen with two cancels beside
    /// 3 workers over git daemon, failing 5 fetches in a row). `None`
    /// when the lock file cannot be had: then they race as before, and
    /// the fetch's retries cover it.
    fn refs_lock(&self) -> Option<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.cache.git_dir().join("git-ci-refs.lock"))
            .ok()?;
        file.lock().ok()?;
        Some(file)
    }

    fn mirror_once(&self, edits: &[RefEdit]) -> Result<(), HubError> {
        let _lock = self.refs_lock();
        let gix_edits = edits.iter().filter_map(|e| {
            let name = FullName::try_from(e.name.as_str()).ok()?;
            let change = match e.new {
                Some(new) => Change::Update {
                    log: LogChange { mode: RefLog::AndReference, force_create_reflog: false, message: "git-ci".into() },
                    expected: PreviousValue::Any,
                    new: Target::Object(new),
                },
                None => Change::Delete { expected: PreviousValue::Any, log: RefLog::AndReference },
            };
            Some(gix::refs::transaction::RefEdit { change, name, deref: false })
        });
        let sig = crate::identity::signature();
        let mut time = Default::default();
        self.repo()
            .edit_references_as(gix_edits, Some(sig.to_ref(&mut time)))
            .map(drop)
            .map_err(|e| (self as &dyn Hub).local_error("could not update the cache repository".into(), e))
    }

    /// Turns a failed push into a race, a refusal or an unreachable hub.
    fn classify(&self, out: &std::process::Output) -> HubError {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let statuses = porcelain::parse(&stdout);
        let rejected: Vec<_> = statuses.iter().filter(|s| s.rejected()).collect();
        if rejected.is_empty() {
            return self.failed_talking(&stderr);
        }
        // Each ref's own reason, else the ref the hub's error names: an
        // atomic push lost on the hub says `atomic transaction failed` of
        // every ref (the first of them was taken for the loser, so a lost
        // claim riding with a publish looked like a lost publish, which
        // costs a reconcile: two fetches instead of none).
        let locked = porcelain::locked_refs(&stderr);
        let culprit = rejected
            .iter()
            .find(|s| !s.only_atomic())
            .or_else(|| rejected.iter().find(|s| locked.iter().any(|(name, _)| *name == s.refname)))
            .unwrap_or(&rejected[0]);
        if culprit.only_atomic()
            && let Some((_, why)) = locked.iter().find(|(name, _)| *name == culprit.refname)
            && porcelain::is_race(&stderr)
        {
            let also = locked.iter().filter(|(name, _)| *name != culprit.refname).map(|(n, _)| (*n).to_owned());
            return HubError::Conflict {
                refname: culprit.refname.clone(),
                detail: (*why).to_owned(),
                also: also.collect(),
            };
        }
        if porcelain::is_race(culprit.reason()) || porcelain::is_race(&stderr) {
            let (refname, detail) = (culprit.refname.clone(), culprit.reason().to_owned());
            let also = rejected.iter().filter(|s| s.refname != refname && porcelain::is_race(s.reason()));
            let also = also.map(|s| s.refname.clone()).collect();
            return HubError::Conflict { refname, detail, also };
        }
        let remote_says: Vec<&str> = stderr.lines().filter_map(|l| l.strip_prefix("remote: ")).collect();
        let message = if remote_says.is_empty() {
            culprit.summary.clone()
        } else {
            format!("{} ({})", culprit.summary, remote_says.join(" / "))
        };
        let message = redact(&message).into_owned();
        HubError::Refused { hub: self.shown.clone(), refname: culprit.refname.clone(), message }
    }

    /// One atomic push with a lease per ref, then the mirror follows.
    ///
    /// When the hub applies only part of it (see [`HubError::Partial`]),
    /// the refs it skipped are pushed again, alone, a few times: the usual
    /// cause, a connectivity check that raced another push, passes on a
    /// second look. What still fails is returned with the refs that moved.
    fn push(&self, edits: &[RefEdit], options: &[&str]) -> Result<(), HubError> {
        const RETRIES: u32 = 4;
        let mut pending = edits.to_vec();
        let mut applied: Vec<String> = Vec::new();
        for attempt in 0.. {
            let out = match self.push_once(&pending, options)? {
                None => return self.mirror(&pending),
                Some(out) => out,
            };
            let statuses = porcelain::parse(&String::from_utf8_lossy(&out.stdout));
            let moved = |e: &RefEdit| statuses.iter().any(|s| s.refname == e.name && s.applied());
            let (now, rest): (Vec<RefEdit>, Vec<RefEdit>) = pending.into_iter().partition(|e| moved(e));
            let error = self.classify(&out);
            if now.is_empty() && applied.is_empty() {
                return Err(error);
            }
            self.mirror(&now)?;
            applied.extend(now.into_iter().map(|e| e.name));
            if now_is_final(attempt, RETRIES, &error) {
                let (refname, message) = match error {
                    HubError::Conflict { refname, detail, .. } => (refname, detail),
                    HubError::Refused { refname, message, .. } => (refname, message),
                    other => (rest.first().map(|e| e.name.clone()).unwrap_or_default(), other.to_string()),
                };
                return Err(HubError::Partial { hub: self.shown.clone(), applied, refname, message });
            }
            tracing::debug!(target: "git", "the hub applied part of a push; pushing the rest again: {error}");
            std::thread::sleep(std::time::Duration::from_millis(20 << attempt));
            pending = rest;
        }
        unreachable!("the loop returns")
    }

    /// One `git push --atomic`; `None` when it went through.
    fn push_once(&self, edits: &[RefEdit], options: &[&str]) -> Result<Option<std::process::Output>, HubError> {
        let mut git = self.git()?.args(["push", "--atomic", "--porcelain", "--no-verify"]);
        git = git.args(options.iter().map(|o| format!("--push-option={o}")));
        for e in edits {
            let expected = e.expected.map(|x| x.to_string()).unwrap_or_default();
            git = git.arg(format!("--force-with-lease={}:{expected}", e.name));
        }
        git = git.args(["--", &self.address]);
        for e in edits {
            let src = e.new.map(|n| n.to_string()).unwrap_or_default();
            git = git.arg(format!("{src}:{}", e.name));
        }
        let out = git.output().map_err(|e| self.unreachable(e))?;
        if out.status.success() {
            return Ok(None);
        }
        // A hub that does not take push options runs no hook that reads
        // them (`git ci hooks install` turns them on): push without.
        if !options.is_empty() && String::from_utf8_lossy(&out.stderr).contains("does not support push options") {
            return self.push_once(edits, &[]);
        }
        Ok(Some(out))
    }
}

/// Whether a push applied in part is to be tried no more: a lost race or
/// an unreachable hub will not change by pushing again at once.
fn now_is_final(attempt: u32, retries: u32, error: &HubError) -> bool {
    attempt >= retries || !matches!(error, HubError::Refused { .. })
}

impl Hub for RemoteHub {
    fn url(&self) -> &str {
        &self.shown
    }

    fn repo(&self) -> gix::Repository {
        self.cache.to_thread_local()
    }

    fn refresh(&self, prefixes: &[&str]) -> Result<(), HubError> {
        let specs: Vec<String> = prefixes.iter().map(|p| format!("+{p}*:{p}*")).collect();
        let out = self.fetch(&["--prune"], &specs)?;
        if out.status.success() {
            return Ok(());
        }
        Err(self.unreachable(crate::git::failed(format!("fetch {}", specs.join(" ")), &out)))
    }

    fn peek(&self, prefixes: &[&str]) -> Result<Option<Vec<(String, ObjectId)>>, HubError> {
        // One request and no objects. `ls-remote` sends the hub no ref
        // prefixes for its patterns (they match the ends of names), so the
        // hub lists every ref either way: filtered here.
        let out = self.git()?.args(["ls-remote", "--refs", "--", &self.address]).run();
        let out = out.map_err(|e| self.unreachable(e))?;
        let mut refs: Vec<(String, ObjectId)> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|line| {
                let (id, name) = line.split_once('\t')?;
                let wanted = prefixes.iter().any(|p| name.starts_with(p));
                Some((name.to_owned(), ObjectId::from_hex(id.as_bytes()).ok()?)).filter(|_| wanted)
            })
            .collect();
        refs.sort();
        Ok(Some(refs))
    }

    fn refresh_ref(&self, name: &str) -> Result<Option<ObjectId>, HubError> {
        let spec = format!("+{name}:{name}");
        let out = self.fetch(&[], std::slice::from_ref(&spec))?;
        if out.status.success() {
            return (self as &dyn Hub).get(name);
        }
        if String::from_utf8_lossy(&out.stderr).contains("couldn't find remote ref") {
            if let Some(old) = (self as &dyn Hub).get(name)? {
                self.mirror(&[RefEdit::delete(name, old)])?;
            }
            return Ok(None);
        }
        Err(self.unreachable(crate::git::failed(format!("fetch {spec}"), &out)))
    }

    fn transact(&self, edits: &[RefEdit]) -> Result<(), HubError> {
        self.push(edits, &[])
    }

    fn transact_with_options(&self, edits: &[RefEdit], options: &[&str]) -> Result<(), HubError> {
        self.push(edits, options)
    }

    fn watch_path(&self) -> Option<PathBuf> {
        None
    }

    fn default_branch(&self) -> Result<Option<String>, HubError> {
        // `ref: refs/heads/main<TAB>HEAD`, then the commit; nothing of the
        // first form when HEAD is detached.
        let out = self.git()?.args(["ls-remote", "--symref", "--", &self.address, "HEAD"]).run();
        let out = out.map_err(|e| self.unreachable(e))?;
        Ok(String::from_utf8_lossy(&out).lines().find_map(|line| {
            let target = line.strip_prefix("ref: ")?.strip_suffix("\tHEAD")?;
            target.starts_with("refs/heads/").then(|| target.to_owned())
        }))
    }

    fn import_commit(&self, commit: ObjectId) -> Result<(), HubError> {
        // The push carries it, from the cache or its alternate (the user's
        // repository); only its presence there is needed.
        // A handle opened before another git-ci process linked the user's
        // objects (`link_objects`) may not see them: look once more
        // through a fresh one.
        if self.repo().has_object(commit) || gix::open(self.cache.git_dir()).is_ok_and(|r| r.has_object(commit)) {
            Ok(())
        } else {
            Err((self as &dyn Hub)
                .local_error(format!("commit {commit} is in neither the cache nor this repository"), "not found"))
        }
    }
}

fn cache_dir(url: &str, from: Option<&Path>, owner: &str) -> PathBuf {
    use sha2::Digest;
    let key = format!("{url}\n{}\n{owner}", from.map(|p| p.display().to_string()).unwrap_or_default());
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let tail: String = url
        .rsplit(['/', ':'])
        .find(|s| !s.is_empty())
        .unwrap_or("hub")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .take(32)
        .collect();
    super::cache_root().join("hubs").join(format!("{tail}-{hex}"))
}

/// Creates the bare cache repository; a concurrent creator may win, which is fine.
fn init_cache(dir: &Path) -> Result<gix::Repository, Box<dyn std::error::Error + Send + Sync>> {
    let parent = dir.parent().ok_or("cache directory has no parent")?;
    std::fs::create_dir_all(parent)?;
    let tmp = tempfile::Builder::new().prefix(".init-").tempdir_in(parent)?;
    gix::init_bare(tmp.path())?;
    match std::fs::rename(tmp.path(), dir) {
        Ok(()) => std::mem::forget(tmp),
        Err(_) if dir.exists() => {}
        Err(e) => return Err(e.into()),
    }
    Ok(gix::open(dir)?)
}

/// Lets the cache repository see (and so push) the user's commits without
/// copying them: one line in `objects/info/alternates`.
fn link_objects(cache: &gix::Repository, from: &Path) -> std::io::Result<()> {
    let objects = gix::open(from)
        .map(|r| r.objects.store_ref().path().to_path_buf())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let file = cache.git_dir().join("objects/info/alternates");
    let line = objects.display().to_string();
    let current = std::fs::read_to_string(&file).unwrap_or_default();
    if current.lines().any(|l| l == line) {
        return Ok(());
    }
    std::fs::create_dir_all(file.parent().expect("has parent"))?;
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(&file)?;
    writeln!(f, "{line}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare hub and a remote hub on it over `file://`, its cache in the same temporary directory.
    fn world() -> (tempfile::TempDir, PathBuf, RemoteHub) {
        let dir = tempfile::tempdir().unwrap();
        let hub = dir.path().join("hub.git");
        gix::init_bare(&hub).unwrap();
        let remote = RemoteHub::open_at(&format!("file://{}", hub.display()), None, &dir.path().join("cache")).unwrap();
        (dir, hub, remote)
    }

    fn blob(hub: &dyn Hub, bytes: &str) -> ObjectId {
        hub.write_blob(bytes.as_bytes()).unwrap()
    }

    #[test]
    fn a_lost_race_is_a_conflict_with_nothing_applied() {
        let (_dir, _hub, remote) = world();
        let hub: &dyn Hub = &remote;
        let queued = blob(hub, "job");
        hub.transact(&[RefEdit::create("refs/ci/queue/default/j", queued)]).unwrap();
        let claim = |n: &str| {
            let claimed = blob(hub, &format!("claimed by {n}"));
            vec![
                RefEdit::create("refs/ci/claims/j", blob(hub, n)),
                RefEdit::update("refs/ci/queue/default/j", queued, claimed),
            ]
        };
        hub.transact(&claim("first")).unwrap();
        let lost = hub.transact(&claim("second")).unwrap_err();
        assert!(lost.is_conflict() && lost.applied().is_empty(), "{lost:?}");

        // A batch that lost two of its three: the hub names both.
        let edits = ["j", "k", "l"].map(|id| RefEdit::create(format!("refs/ci/claims/{id}"), blob(hub, id)));
        hub.transact(&[RefEdit::create("refs/ci/claims/k", blob(hub, "another worker's"))]).unwrap();
        let lost = hub.transact(&edits).unwrap_err();
        let mut names = lost.lost();
        names.sort();
        assert_eq!(names, ["refs/ci/claims/j", "refs/ci/claims/k"], "{lost:?}");
        assert_eq!(hub.get("refs/ci/claims/l").unwrap(), None, "atomic: nothing applied");
    }

    /// A ref moved on the hub after it advertised its refs to the push and
    /// before its transaction (here by a pre-receive hook, as another
    /// worker's push does): the porcelain says `atomic transaction failed`
    /// of every ref, the hub's error names the one that lost. It used to be
    /// blamed on the first ref of the push, here the log a publish deletes.
    #[test]
    fn a_race_lost_on_the_hub_blames_the_ref_the_hub_names() {
        let (_dir, hub_dir, remote) = world();
        let hub: &dyn Hub = &remote;
        let (log, queued) = (blob(hub, "log"), blob(hub, "job"));
        hub.transact(&[RefEdit::create("refs/ci/logs/a", log), RefEdit::create("refs/ci/queue/default/j", queued)])
            .unwrap();
        // The hook runs in the push's quarantine, where refs may not move:
        // it steps out of it, as a concurrent push is.
        let hook = hub_dir.join("hooks/pre-receive");
        std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
        std::fs::write(
            &hook,
            "#!/bin/sh\ncat >/dev/null\nunset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n\
             git update-ref refs/ci/queue/default/j $(echo another | git hash-object -w --stdin)\n",
        )
        .unwrap();
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let edits = [
            RefEdit::delete("refs/ci/logs/a", log),
            RefEdit::update("refs/ci/queue/default/j", queued, blob(hub, "claimed")),
        ];
        let e = hub.transact(&edits).unwrap_err();
        assert!(e.is_conflict() && e.applied().is_empty(), "{e:?}");
        assert_eq!(e.lost(), ["refs/ci/queue/default/j"], "{e:?}");
    }

    #[test]
    fn a_push_the_hub_takes_in_part_says_what_moved() {
        let (_dir, hub_dir, remote) = world();
        let hub: &dyn Hub = &remote;
        let a = blob(hub, "a");
        hub.transact(&[RefEdit::create("refs/ci/logs/a", a)]).unwrap();
        Git::new(&hub_dir).unwrap().args(["config", "receive.hideRefs", "refs/ci/logs/b"]).run().unwrap();
        let edits = [RefEdit::delete("refs/ci/logs/a", a), RefEdit::create("refs/ci/logs/b", blob(hub, "b"))];
        let e = hub.transact(&edits).unwrap_err();
        assert!(matches!(&e, HubError::Partial { refname, .. } if refname == "refs/ci/logs/b"), "{e:?}");
        assert_eq!(e.applied(), ["refs/ci/logs/a"]);
        assert_eq!(hub.get("refs/ci/logs/a").unwrap(), None, "the mirror follows what moved");
    }
}
