//! `git ci doctor`: checks a hub end to end and says what to fix.
//!
//! Each check is a [`Check`]: fine, worth knowing, or a problem with its
//! fix. The CLI prints them and exits 1 when any is a problem.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use git_ci_core::git::Git;
use git_ci_core::hub::{Hub, HubError, RefEdit};
use git_ci_core::model::WorkerInfo;
use git_ci_core::queue::Snapshot;
use git_ci_core::time::{human_duration, parse_rfc3339};
use git_ci_core::{Job, refs};
use gix::ObjectId;

use crate::durability;
use crate::install::{self, HookState};

pub use crate::check::{Check, Level};

/// The oldest git whose `push --atomic --force-with-lease` and protocol v2
/// ref prefixes git-ci relies on.
pub const MIN_GIT: (u32, u32) = (2, 38);
/// Pending longer than this is a finding.
pub const PENDING_TOO_LONG: Duration = Duration::from_secs(3600);
/// Clocks differ between machines: a lease is reported as run out only
/// this long after its stated end.
const CLOCK_SLACK: Duration = Duration::from_secs(30);
/// Findings of one kind listed one by one before the rest are counted.
const LIST_AT_MOST: usize = 10;

/// The `git` on PATH, and whether it is new enough.
pub fn git_version() -> Check {
    let out = Git::new(Path::new(".")).and_then(|g| g.arg("version").run());
    let text = match out {
        Ok(o) => String::from_utf8_lossy(&o).trim().to_owned(),
        Err(e) => {
            return Check::problem(format!("git does not run: {e}"), "install git 2.38 or newer and put it on PATH");
        }
    };
    match parse_git_version(&text) {
        Some(v) if v >= MIN_GIT => Check::ok(text),
        Some(_) => Check::problem(
            format!("{text} is too old: git-ci needs {}.{} or newer", MIN_GIT.0, MIN_GIT.1),
            "upgrade git (atomic pushes with leases and protocol v2 ref prefixes are what the queue relies on)",
        ),
        None => Check::info(format!("could not tell the version of git from {text:?}")),
    }
}

fn parse_git_version(text: &str) -> Option<(u32, u32)> {
    let v = text.strip_prefix("git version ")?;
    let mut parts = v.split(['.', ' ']).map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

/// Everything about the hub. `local` is its path when it is on this
/// machine: only then can its hooks and settings be read.
pub fn hub(hub: &dyn Hub, local: Option<&Path>, now: SystemTime) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Err(e) = hub.refresh(&[refs::QUEUE, refs::CLAIMS, refs::CANCEL, refs::WORKERS]) {
        let fix = match &e {
            HubError::Denied { cause, .. } => cause.fix().to_owned(),
            _ => {
                format!("check the hub's address and that it is up: `git ls-remote {}` must work from here", hub.url())
            }
        };
        checks.push(Check::problem(e.to_string(), fix));
        return checks;
    }
    checks.push(Check::ok(format!("hub {} answers", hub.url())));
    match local {
        Some(path) => checks.extend(local_setup(path)),
        None => checks.extend([
            write_rights(hub),
            Check::info(
                "hooks and durability settings of a remote hub cannot be read from here: run `git ci doctor --hub \
                 PATH` on the hub's machine (a hosted hub runs no hooks: run `git ci watch` somewhere)",
            ),
        ]),
    }
    let snapshot = match Snapshot::read(hub, &[]) {
        Ok(s) => s.with_parked(hub),
        Err(e) => {
            checks.push(Check::problem(format!("could not read the queue: {e}"), "run `git ci doctor` again"));
            return checks;
        }
    };
    let workers = read_workers(hub, now);
    checks.extend(workers.iter().map(|w| w.check.clone()));
    checks.extend(claims(hub, &snapshot, now));
    checks.extend(orphan_cancels(hub, &snapshot));
    checks.extend(pending(hub, &snapshot, &workers, now));
    checks.extend(aimed(hub, &snapshot));
    checks
}

/// Push rights under `refs/ci/` of a remote hub, tested by doing what
/// every worker does on start and stop: registering under
/// `refs/ci/workers/` and removing the registration, each with a lease. A scratch ref of our own (say
/// `refs/ci/doctor/*`) would be an unknown ref that the hub's guard must
/// refuse; a worker document is a known kind that passes it, and the write
/// goes the very way workers' claims and results go.
fn write_rights(hub: &dyn Hub) -> Check {
    let name = format!("doctor-{:016x}", fastrand::u64(..));
    let labels = [("role".to_owned(), "git-ci-doctor".to_owned())].into();
    let info = WorkerInfo::new(&name, labels, vec![], 0, 1000);
    let refname = refs::worker(&name);
    let blob = match hub.write_blob(&info.to_json()) {
        Ok(b) => b,
        Err(e) => return Check::problem(format!("could not write an object: {e}"), "check the disk and permissions"),
    };
    if let Err(e) = hub.transact(&[RefEdit::create(&refname, blob)]) {
        return Check::problem(format!("cannot write refs/ci/*: {e}"), write_fix(&e));
    }
    match hub.transact(&[RefEdit::delete(&refname, blob)]) {
        Ok(()) => Check::ok("can write refs/ci/* (registered and removed a scratch worker)"),
        Err(e) => Check::problem(
            format!("wrote {refname} but could not remove it: {e}"),
            format!("remove it by hand: git push --force-with-lease={refname}:{blob} {} :{refname}", hub.url()),
        ),
    }
}

fn write_fix(e: &HubError) -> String {
    match e {
        HubError::Refused { .. } => "give this user push rights to refs/ci/* on the hub (workers push claims and \
                                     results there); with hooks, check what the hub's pre-receive hook says above"
            .into(),
        HubError::Unreachable { .. } => "let this user push to the hub: `git daemon` needs --enable=receive-pack; \
                                         ssh and https need a key or token with write access"
            .into(),
        HubError::Denied { cause, .. } => cause.fix().into(),
        _ => "check the hub's permissions and run `git ci doctor` again".into(),
    }
}

/// Ownership, hooks and durability settings of a hub on this machine,
/// read without writing anything to it (see [`crate::ownership`]).
fn local_setup(path: &Path) -> Vec<Check> {
    // gix, not `git rev-parse`: git refuses to look into a repository of
    // another user ("dubious ownership"), which made a bare hub read as a
    // working repository and its missing hooks go unreported.
    let repo = match gix::open_opts(path, gix::open::Options::isolated()) {
        Ok(repo) => repo,
        Err(e) => return vec![Check::problem(format!("could not open the hub: {e}"), "check the path")],
    };
    if !repo.is_bare() {
        return vec![Check::info(
            "the hub is a working repository (as with `git ci run`): push hooks and durability settings matter for \
             a shared bare hub only",
        )];
    }
    let shared = repo.config_snapshot().string("core.sharedRepository").is_some();
    let mut checks = crate::ownership::checks(path, shared);
    let install = format!("git ci hooks install --hub {}", path.display());
    checks.push(match install::inspect(path) {
        Err(e) => Check::problem(format!("could not read the hub's hooks: {e}"), "check the hub's permissions"),
        Ok(HookState::Missing) => Check::problem("no post-receive hook: pushes queue no jobs", install.clone()),
        Ok(HookState::Foreign) => {
            Check::problem("the post-receive hook is not git-ci's: pushes queue no jobs", install.clone())
        }
        Ok(HookState::Ours { executable: false, .. }) => {
            Check::problem("the post-receive hook is not executable: git skips it", install.clone())
        }
        Ok(HookState::Ours { exe_runs: false, exe, .. }) => Check::problem(
            format!("the post-receive hook runs {}, which is not an executable file any more", exe.display()),
            format!("{install} (with the git-ci you want the hook to run)"),
        ),
        Ok(HookState::Ours { exe, .. }) => Check::ok(format!("post-receive hook installed, runs {}", exe.display())),
    });
    checks.extend(guard(path, &install));
    match durability::inspect(path) {
        Err(e) => checks.push(Check::problem(format!("could not read the hub's configuration: {e}"), "check git")),
        Ok(found) => checks.extend(found.into_iter().map(|f| setting_check(f, path))),
    }
    checks
}

/// The pre-receive guard: installed, switched on, and the limits it applies.
fn guard(path: &Path, install: &str) -> Vec<Check> {
    let hook = match install::inspect_guard(path) {
        Err(e) => Check::problem(format!("could not read the hub's hooks: {e}"), "check the hub's permissions"),
        Ok(HookState::Missing) => {
            Check::problem("no pre-receive guard: malformed refs/ci updates are stored", install.to_owned())
        }
        Ok(HookState::Foreign) => Check::problem(
            "the pre-receive hook is not git-ci's: malformed refs/ci updates are stored",
            install.to_owned(),
        ),
        Ok(HookState::Ours { executable: false, .. }) => {
            Check::problem("the pre-receive guard is not executable: git skips it", install.to_owned())
        }
        Ok(HookState::Ours { exe_runs: false, exe, .. }) => Check::problem(
            format!("the pre-receive guard runs {}, which is not an executable file any more", exe.display()),
            format!("{install} (with the git-ci you want the hooks to run)"),
        ),
        Ok(HookState::Ours { exe, .. }) => Check::ok(format!("pre-receive guard installed, runs {}", exe.display())),
    };
    let mut checks = vec![hook];
    // As the guard reads it: the hub's own configuration only.
    let Ok(repo) = gix::open_opts(path, gix::open::Options::isolated()) else { return checks };
    let config = repo.config_snapshot();
    if config.boolean(crate::guard::SWITCH) == Some(false) {
        checks.push(Check::problem(
            "the guard is switched off (ci.guard=false): malformed refs/ci updates are stored",
            format!("git -C {} config --unset ci.guard", path.display()),
        ));
    } else {
        let limits = git_ci_core::validate::Limits::from_config(&config);
        checks.push(Check::ok(format!(
            "guard limits: documents {} bytes, ci.maxLogBytes {}, ci.maxArtifactBytes {}",
            limits.doc_bytes, limits.log_bytes, limits.artifact_bytes
        )));
    }
    match install::inspect_setting(path, install::PUSH_OPTIONS) {
        Ok(f) => checks.push(setting_check(f, path)),
        Err(e) => checks.push(Check::problem(format!("could not read the hub's configuration: {e}"), "check git")),
    }
    checks
}

fn setting_check(f: durability::Found, path: &Path) -> Check {
    let current = f.current.as_deref().unwrap_or("unset");
    let key = f.setting.key;
    if f.ok() {
        return Check::ok(format!("{key} = {current}: {}", f.setting.why));
    }
    Check::problem(
        format!("{key} is {current}: {}", f.setting.risk),
        format!("git -C {} config {key} {} (or `git ci hooks install`)", path.display(), f.setting.value),
    )
}

/// A registered worker and what to say about it.
struct Seen {
    info: Option<WorkerInfo>,
    live: bool,
    check: Check,
}

fn read_workers(hub: &dyn Hub, now: SystemTime) -> Vec<Seen> {
    let list = match hub.list(refs::WORKERS) {
        Ok(l) => l,
        Err(e) => {
            let check = Check::problem(format!("could not list workers: {e}"), "run `git ci doctor` again");
            return vec![Seen { info: None, live: false, check }];
        }
    };
    list.into_iter().map(|(name, blob)| worker(hub, &name, blob, now)).collect()
}

fn worker(hub: &dyn Hub, refname: &str, blob: ObjectId, now: SystemTime) -> Seen {
    let remove = format!("git push --force-with-lease={refname}:{blob} {} :{refname}", hub.url());
    let name = refname.strip_prefix(git_ci_core::refs::WORKERS).unwrap_or(refname);
    let info = match hub.read_blob(blob).map(|b| git_ci_core::validate::worker_blob(&b, name)) {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => {
            let check = Check::problem(format!("{refname} is not a worker registration: the {e}"), remove);
            return Seen { info: None, live: false, check };
        }
        Err(e) => return Seen { info: None, live: false, check: Check::problem(e.to_string(), "run again") },
    };
    let age = parse_rfc3339(&info.last_seen).and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
    let stale_after = git_ci_core::model::gone_after(Duration::from_millis(info.refresh_ms));
    let name = &info.name;
    let check = if age > stale_after {
        Check::problem(
            format!(
                "worker {name} last seen {} ago (it checks in every {}): it died, or cannot reach the hub",
                human_duration(age),
                human_duration(Duration::from_millis(info.refresh_ms))
            ),
            format!("restart it; if it is gone for good, remove its registration: {remove}"),
        )
    } else {
        let isolation = match &info.sandbox {
            Some(s) => format!("sandboxed: {}", s.summary()),
            None => "jobs not sandboxed (they run as the worker's user)".to_owned(),
        };
        Check::ok(format!(
            "worker {name} seen {} ago: {} slot(s), running {}, {}; {isolation}",
            human_duration(age),
            info.jobs,
            info.running.len(),
            serves(&info)
        ))
    };
    Seen { live: age <= stale_after, info: Some(info), check }
}

fn serves(w: &WorkerInfo) -> String {
    let queues = if w.queues.is_empty() { "every queue".to_owned() } else { format!("queues {}", w.queues.join(",")) };
    let labels: Vec<String> = w.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{queues}, labels {}", labels.join(","))
}

/// Claims whose lease ran out, and claims left over from finished jobs.
fn claims(hub: &dyn Hub, snapshot: &Snapshot, now: SystemTime) -> Vec<Check> {
    let queued: HashMap<_, _> = snapshot.queued.iter().map(|q| (&q.id, q)).collect();
    let mut out = Vec::new();
    let mut claims: Vec<_> = snapshot.claims.iter().collect();
    claims.sort();
    for (id, blob) in claims {
        let refname = refs::claim(id);
        let remove = format!("git push --force-with-lease={refname}:{blob} {} :{refname}", hub.url());
        let Some(q) = queued.get(id) else {
            out.push(Check::problem(format!("a claim on {id} is left over from a finished job"), remove));
            continue;
        };
        let Some(claim) = git_ci_core::queue::read_claim(hub, *blob, id) else { continue };
        let Some(over) = parse_rfc3339(&claim.lease_expires_at).and_then(|t| now.duration_since(t + CLOCK_SLACK).ok())
        else {
            continue;
        };
        out.push(Check::problem(
            format!(
                "job {id} (queue {}): the claim of worker {} (attempt {}) ran out {} ago",
                q.queue,
                claim.worker,
                claim.attempt,
                human_duration(over + CLOCK_SLACK)
            ),
            format!(
                "its worker died or lost the hub; any worker serving queue {} takes it over after one lease: \
                 start one if none runs (`git ci worker --queue {}`)",
                q.queue, q.queue
            ),
        ));
    }
    if out.is_empty() {
        out.push(Check::ok(format!("{} running job(s), no claim past its lease", snapshot.claims.len())));
    }
    out
}

/// Cancel requests that outlived their job (see [`git_ci_core::gc::orphans`]).
fn orphan_cancels(hub: &dyn Hub, snapshot: &Snapshot) -> Vec<Check> {
    let orphans = git_ci_core::gc::orphans::cancels(snapshot);
    if orphans.is_empty() {
        return vec![];
    }
    let shown: Vec<String> = orphans.iter().take(LIST_AT_MOST).map(|(id, _)| id.to_string()).collect();
    let more = orphans.len().saturating_sub(LIST_AT_MOST);
    let more = if more > 0 { format!(" and {more} more") } else { String::new() };
    vec![Check::problem(
        format!(
            "{} cancel request(s) left over from jobs that finished first: {}{more}",
            orphans.len(),
            shown.join(", ")
        ),
        format!("`git ci gc --hub {}` removes them", hub.url()),
    )]
}

/// Jobs nobody claimed for over an hour, with who could run them. A job
/// waiting for the jobs it needs is not stuck: it waits for them.
fn pending(hub: &dyn Hub, snapshot: &Snapshot, workers: &[Seen], now: SystemTime) -> Vec<Check> {
    let unclaimed: Vec<_> = snapshot.unclaimed().collect();
    let mut old = Vec::new();
    for q in unclaimed.iter().filter(|q| !q.is_waiting(hub)) {
        let Ok((job, _)) = q.read_job(hub) else { continue };
        let age = parse_rfc3339(&job.submitted_at).and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
        if age > PENDING_TOO_LONG {
            old.push((job, age));
        }
    }
    let live: Vec<&WorkerInfo> = workers.iter().filter(|w| w.live).filter_map(|w| w.info.as_ref()).collect();
    let mut out: Vec<Check> = old.iter().take(LIST_AT_MOST).map(|(job, age)| stuck(hub, job, *age, &live)).collect();
    if old.len() > LIST_AT_MOST {
        out.push(Check::problem(
            format!("and {} more jobs pending for over an hour", old.len() - LIST_AT_MOST),
            "see `git ci status --state pending`",
        ));
    }
    if out.is_empty() {
        out.push(Check::ok(format!("{} pending job(s), none waiting over an hour", unclaimed.len())));
    }
    if live.is_empty() && !unclaimed.is_empty() {
        out.push(Check::problem(
            format!("{} job(s) pending and no worker is running", unclaimed.len()),
            format!("start one: git ci worker --hub {}", hub.url()),
        ));
    } else if live.is_empty() {
        out.push(Check::info("no worker is registered (none is needed while nothing is pending)"));
    }
    out
}

/// Pending jobs aimed at one worker (`submit --worker`) that it cannot
/// take: it is gone, or never came. Flagged at once, not after an hour:
/// no other worker will ever take them.
fn aimed(hub: &dyn Hub, snapshot: &Snapshot) -> Vec<Check> {
    let Ok(fleet) = git_ci_core::live_workers::LiveWorkers::read(hub) else { return vec![] };
    let mut out = Vec::new();
    for q in snapshot.unclaimed().filter(|q| !q.is_waiting(hub)) {
        let Ok((job, _)) = q.read_job(hub) else { continue };
        let (Some(name), Some(why)) = (job.spec.aimed_at(), fleet.why_unserved(&job)) else { continue };
        out.push(Check::problem(
            format!("job {} {} (queue {}) waits: {why}", job.spec.name, job.id, job.spec.queue),
            format!(
                "start worker {name} (`git ci worker --name {name} --hub {}`), or cancel the job                  (`git ci cancel {}`) and submit it without --worker",
                hub.url(),
                job.id
            ),
        ));
    }
    if out.len() > LIST_AT_MOST {
        let more = out.len() - LIST_AT_MOST;
        out.truncate(LIST_AT_MOST);
        out.push(Check::problem(
            format!("and {more} more jobs aimed at workers that cannot take them"),
            "see `git ci status --state pending`",
        ));
    }
    out
}

fn stuck(hub: &dyn Hub, job: &Job, age: Duration, live: &[&WorkerInfo]) -> Check {
    let what =
        format!("job {} {} (queue {}) pending for {}", job.spec.name, job.id, job.spec.queue, human_duration(age));
    let able: Vec<&str> = live.iter().filter(|w| w.can_run(job)).map(|w| w.name.as_str()).collect();
    if able.is_empty() {
        let labels: String = job.spec.requires.iter().map(|(k, v)| format!(" --label {k}={v}")).collect();
        return Check::problem(
            what,
            format!(
                "no running worker serves queue {} with the labels it requires: start one: \
                 git ci worker --hub {} --queue {}{labels}",
                job.spec.queue,
                hub.url(),
                job.spec.queue
            ),
        );
    }
    Check::problem(what, format!("the workers that can run it ({}) are busy: add workers or --jobs", able.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_versions_parse() {
        assert_eq!(parse_git_version("git version 2.47.3"), Some((2, 47)));
        assert_eq!(parse_git_version("git version 2.39.2 (Apple Git-143)"), Some((2, 39)));
        assert_eq!(parse_git_version("git version 2.45.windows.1"), Some((2, 45)));
        assert_eq!(parse_git_version("hub version 2"), None);
        assert!((2, 37) < MIN_GIT && (2, 38) >= MIN_GIT && (3, 0) > MIN_GIT);
    }
}
